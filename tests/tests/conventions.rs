//! The API conventions every module follows: problem+json for every error, request ids, languages, JSON bodies.

use amtsweg_test_support::{Backend, TestApp, backend_tests};
use reqwest::StatusCode;
use serde_json::{Value, json};

async fn problem(response: reqwest::Response, status: StatusCode, code: &str) -> Value {
    assert_eq!(response.status(), status);
    assert_eq!(
        response.headers()["content-type"],
        "application/problem+json; charset=utf-8"
    );
    let request_id = response.headers()["x-request-id"].to_str().unwrap().to_owned();
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["code"], code, "{body}");
    assert_eq!(body["status"], status.as_u16());
    assert_eq!(body["type"], format!("urn:amtsweg:problem:{code}"));
    assert!(body["title"].as_str().is_some_and(|t| !t.is_empty()));
    assert!(body["detail"].as_str().is_some_and(|t| !t.is_empty()));
    assert_eq!(body["instance"], format!("urn:amtsweg:request:{request_id}"));
    body
}

async fn every_error_answers_as_problem_json(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let validate = app.url("/api/v1/procedures/kita-platz/validate");

    let unknown = problem(
        app.get("/api/v1/nirgendwo").await,
        StatusCode::NOT_FOUND,
        "not_found",
    )
    .await;
    assert_eq!(unknown["title"], "Nicht gefunden.");

    let wrong_method = app
        .client
        .delete(app.url("/api/v1/procedures/kita-platz"))
        .send()
        .await
        .unwrap();
    assert_eq!(wrong_method.headers()["allow"], "GET");
    problem(wrong_method, StatusCode::METHOD_NOT_ALLOWED, "method_not_allowed").await;
    let wrong_method = app.client.get(&validate).send().await.unwrap();
    assert_eq!(wrong_method.headers()["allow"], "POST");
    problem(wrong_method, StatusCode::METHOD_NOT_ALLOWED, "method_not_allowed").await;

    let malformed = app
        .client
        .post(&validate)
        .header("content-type", "application/json")
        .header("accept-language", "en")
        .body("{\"kind\": ")
        .send()
        .await
        .unwrap();
    let body = problem(malformed, StatusCode::BAD_REQUEST, "malformed_json").await;
    assert_eq!(body["detail"], "Syntax error at line 1, column 9.");

    let empty = app
        .client
        .post(&validate)
        .header("content-type", "application/json")
        .send()
        .await
        .unwrap();
    problem(empty, StatusCode::BAD_REQUEST, "malformed_json").await;

    let wrong_type = app
        .client
        .post(&validate)
        .header("content-type", "text/plain")
        .body("{}")
        .send()
        .await
        .unwrap();
    problem(
        wrong_type,
        StatusCode::UNSUPPORTED_MEDIA_TYPE,
        "unsupported_media_type",
    )
    .await;
    let no_type = app.client.post(&validate).body("{}").send().await.unwrap();
    problem(
        no_type,
        StatusCode::UNSUPPORTED_MEDIA_TYPE,
        "unsupported_media_type",
    )
    .await;

    let huge = json!({"kind": {"vorname": "x".repeat(300 * 1024)}});
    let oversized = app
        .post_json("/api/v1/procedures/kita-platz/validate", &huge)
        .await;
    problem(oversized, StatusCode::PAYLOAD_TOO_LARGE, "payload_too_large").await;

    let chunked = app
        .client
        .post(&validate)
        .header("content-type", "application/json")
        .body(reqwest::Body::wrap_stream(futures_stream(vec![
            b"[".to_vec();
            300 * 1024
        ])))
        .send()
        .await
        .unwrap();
    problem(chunked, StatusCode::PAYLOAD_TOO_LARGE, "payload_too_large").await;
}

fn futures_stream(chunks: Vec<Vec<u8>>) -> impl futures_util::Stream<Item = Result<Vec<u8>, std::io::Error>> {
    futures_util::stream::iter(chunks.into_iter().map(Ok))
}

async fn request_ids_follow_the_request(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let given = app
        .client
        .get(app.url("/health/live"))
        .header("x-request-id", "portal-4711.a")
        .send()
        .await
        .unwrap();
    assert_eq!(given.headers()["x-request-id"], "portal-4711.a");

    let generated = app.get("/health/live").await;
    let id = generated.headers()["x-request-id"].to_str().unwrap().to_owned();
    assert_eq!(id.len(), 36, "a UUID is generated");

    let hostile = app
        .client
        .get(app.url("/api/v1/nirgendwo"))
        .header("x-request-id", "x".repeat(500))
        .send()
        .await
        .unwrap();
    let replaced = hostile.headers()["x-request-id"].to_str().unwrap().to_owned();
    assert_eq!(replaced.len(), 36, "an unusable id is replaced");
    let body: Value = hostile.json().await.unwrap();
    assert_eq!(body["instance"], format!("urn:amtsweg:request:{replaced}"));
}

async fn texts_follow_the_requested_language(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let german = app.get("/api/v1/procedures/unbekannt").await;
    assert_eq!(german.headers()["content-language"], "de");
    assert_eq!(
        german.json::<Value>().await.unwrap()["title"],
        "Verfahren nicht gefunden."
    );

    let english = app
        .client
        .get(app.url("/api/v1/procedures/unbekannt"))
        .header("accept-language", "en-GB")
        .send()
        .await
        .unwrap();
    assert_eq!(english.headers()["content-language"], "en");
    assert_eq!(
        english.json::<Value>().await.unwrap()["title"],
        "Procedure not found."
    );

    let query_wins = app
        .client
        .get(app.url("/api/v1/procedures/unbekannt?lang=de"))
        .header("accept-language", "en")
        .send()
        .await
        .unwrap();
    assert_eq!(
        query_wins.json::<Value>().await.unwrap()["title"],
        "Verfahren nicht gefunden."
    );
}

/// A failure nobody planned for (here: a table vanished under the running service) is a 500 problem whose cause
/// stays in the log.
async fn unexpected_failures_reveal_nothing(backend: Backend) {
    use diesel::connection::SimpleConnection;
    let app = TestApp::spawn(backend).await;
    let mut conn = app.connect();
    conn.batch_execute("DROP TABLE procedure_versions").unwrap();
    let response = app.get("/api/v1/procedures/kita-platz/versions?lang=en").await;
    let body = problem(response, StatusCode::INTERNAL_SERVER_ERROR, "internal_error").await;
    assert_eq!(body["title"], "An unexpected error occurred.");
    let text = body.to_string();
    assert!(
        !text.contains("procedure_versions") && !text.to_lowercase().contains("table"),
        "{text}"
    );
}

backend_tests!(
    every_error_answers_as_problem_json,
    request_ids_follow_the_request,
    texts_follow_the_requested_language,
    unexpected_failures_reveal_nothing,
);
