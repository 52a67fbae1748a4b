//! `Idempotency-Key` on creating requests: one creation however often it is sent, the first answer replayed, a
//! reused key refused, concurrent duplicates refused, failures releasing the key, secrets never replayed.

use amtsweg_test_support::{Backend, TestApp, backend_tests};
use futures_util::future::join_all;
use reqwest::StatusCode;
use serde_json::{Value, json};

async fn create(app: &TestApp, token: &str, key: &str, body: &Value) -> reqwest::Response {
    app.client
        .post(app.url("/api/v1/organisations"))
        .bearer_auth(token)
        .header("Idempotency-Key", key)
        .json(body)
        .send()
        .await
        .unwrap()
}

fn replayed(response: &reqwest::Response) -> bool {
    response
        .headers()
        .get("idempotent-replayed")
        .is_some_and(|v| v == "true")
}

async fn organisations(app: &TestApp, token: &str) -> usize {
    let list: Value = app
        .get_as("/api/v1/organisations", token)
        .await
        .json()
        .await
        .unwrap();
    list.as_array().unwrap().len()
}

async fn ten_identical_requests_create_one_organisation(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let citizen = app.citizen("firma@example.de").await;
    let token = citizen.tokens.access_token.as_str();
    let body = json!({"name": "Bäckerei Sonnenschein GmbH"});
    let responses = join_all((0..10).map(|_| create(&app, token, "gruendung-1", &body))).await;
    let fresh: Vec<&reqwest::Response> = responses
        .iter()
        .filter(|r| r.status() == StatusCode::CREATED && !replayed(r))
        .collect();
    assert_eq!(fresh.len(), 1, "one request did the work");
    for response in &responses {
        assert!(
            response.status() == StatusCode::CONFLICT || response.status() == StatusCode::CREATED,
            "{}",
            response.status()
        );
        if response.status() == StatusCode::CONFLICT {
            assert!(response.headers().contains_key("retry-after"));
        }
    }
    let mut first: Option<Value> = None;
    for response in responses {
        if response.status() == StatusCode::CREATED && !replayed(&response) {
            first = Some(response.json().await.unwrap());
        }
    }
    let first = first.unwrap();

    // A later retry gets the first answer again; still one organisation.
    let retry = create(&app, token, "gruendung-1", &body).await;
    assert_eq!(retry.status(), StatusCode::CREATED);
    assert!(replayed(&retry));
    let again: Value = retry.json().await.unwrap();
    assert_eq!(again, first);
    assert_eq!(organisations(&app, token).await, 1);

    // The key belongs to this caller: another citizen's identical request is a request of its own.
    let other = app.citizen("andere@example.de").await;
    let theirs = create(&app, &other.tokens.access_token, "gruendung-1", &body).await;
    assert_eq!(theirs.status(), StatusCode::CREATED);
    assert!(!replayed(&theirs));
}

async fn a_reused_key_is_refused_and_a_failed_request_releases_it(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let citizen = app.citizen("verein@example.de").await;
    let token = citizen.tokens.access_token.as_str();

    // Refused before any write: the key is free again.
    let invalid = create(&app, token, "k-2", &json!({"name": ""})).await;
    assert_eq!(invalid.status(), StatusCode::UNPROCESSABLE_ENTITY);
    let valid = create(&app, token, "k-2", &json!({"name": "Sportverein Lindenau e. V."})).await;
    assert_eq!(valid.status(), StatusCode::CREATED);
    assert!(!replayed(&valid));

    let other_body = create(&app, token, "k-2", &json!({"name": "Ein anderer Verein"})).await;
    assert_eq!(other_body.status(), StatusCode::UNPROCESSABLE_ENTITY);
    let problem: Value = other_body.json().await.unwrap();
    assert_eq!(problem["code"], "idempotency_key_reused");

    let malformed = create(&app, token, "", &json!({"name": "X"})).await;
    assert_eq!(malformed.status(), StatusCode::BAD_REQUEST);

    // After 24 hours the key is forgotten.
    app.clock.advance(chrono::Duration::hours(25));
    let tokens: amtsweg_test_support::Tokens = app
        .login(&citizen.email, amtsweg_test_support::STRONG_PASSWORD, None)
        .await
        .json()
        .await
        .unwrap();
    let later = create(
        &app,
        &tokens.access_token,
        "k-2",
        &json!({"name": "Ein anderer Verein"}),
    )
    .await;
    assert_eq!(later.status(), StatusCode::CREATED);
    assert!(!replayed(&later));
}

/// A secret shown once is not stored for replay: the replay says it was shown.
async fn a_replay_never_shows_a_secret_again(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let admin = app.admin().await;
    let send = || {
        app.client
            .post(app.url("/api/v1/admin/clients"))
            .bearer_auth(&admin.access_token)
            .header("Idempotency-Key", "client-1")
            .json(&json!({"name": "OK.VERKEHR", "scopes": ["procedures:read"]}))
            .send()
    };
    let first: Value = send().await.unwrap().json().await.unwrap();
    assert!(first["client_secret"].is_string());
    let retry = send().await.unwrap();
    assert_eq!(retry.status(), StatusCode::CREATED);
    assert!(replayed(&retry));
    let again: Value = retry.json().await.unwrap();
    assert_eq!(again["client_id"], first["client_id"]);
    assert!(again.get("client_secret").is_none(), "{again}");
    assert_eq!(again["secret_already_shown"], true);
    let secret = first["client_secret"].as_str().unwrap().to_owned();
    let mut conn = app.connect();
    let stored: Vec<StoredBody> = diesel::RunQueryDsl::load(
        diesel::sql_query("SELECT response_body FROM idempotency_keys"),
        &mut conn,
    )
    .unwrap();
    assert!(stored.iter().all(|row| !row.response_body.contains(&secret)));
}

#[derive(diesel::QueryableByName)]
struct StoredBody {
    #[diesel(sql_type = diesel::sql_types::Text)]
    response_body: String,
}

/// The OpenAPI document says which routes take the header.
async fn the_api_description_names_the_header(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let doc: Value = app.get("/openapi.json").await.json().await.unwrap();
    for path in [
        "/api/v1/organisations",
        "/api/v1/admin/clients",
        "/api/v1/admin/staff",
    ] {
        let parameters = doc["paths"][path]["post"]["parameters"].as_array().unwrap();
        let header = parameters
            .iter()
            .find(|p| p["name"] == "Idempotency-Key")
            .unwrap_or_else(|| panic!("{path}"));
        assert_eq!(header["in"], "header");
        assert_eq!(header["required"], false);
    }
}

backend_tests!(
    ten_identical_requests_create_one_organisation,
    a_reused_key_is_refused_and_a_failed_request_releases_it,
    a_replay_never_shows_a_secret_again,
    the_api_description_names_the_header,
);
