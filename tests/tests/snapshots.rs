//! What clients and people read, as snapshots (`insta`): problem bodies and mails. A change in wording or shape
//! shows as a readable diff in review; accept it with `cargo insta review` (or `INSTA_UPDATE=always`).

use amtsweg_test_support::{Backend, STRONG_PASSWORD, TestApp, backend_tests};
use serde_json::{Value, json};

/// A problem body without what differs per request.
async fn problem(response: reqwest::Response) -> String {
    let mut body: Value = response.json().await.expect("problem JSON");
    if let Some(members) = body.as_object_mut() {
        members.remove("instance");
    }
    serde_json::to_string_pretty(&body).expect("JSON")
}

async fn problem_bodies(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let invalid = app
        .post_json(
            "/api/v1/accounts",
            &json!({"email": "kein-at", "password": "kurz", "name": "", "preferred_language": "fr"}),
        )
        .await;
    insta::assert_snapshot!("registration_invalid_de", problem(invalid).await);
    let english = app
        .client
        .post(app.url("/api/v1/accounts"))
        .header("accept-language", "en")
        .json(&json!({"email": "kein-at", "password": "kurz", "name": "", "preferred_language": "fr"}))
        .send()
        .await
        .unwrap();
    insta::assert_snapshot!("registration_invalid_en", problem(english).await);
    let not_json = app
        .client
        .post(app.url("/api/v1/auth/login"))
        .header("content-type", "application/json")
        .body("{\"email\": ")
        .send()
        .await
        .unwrap();
    insta::assert_snapshot!("malformed_json", problem(not_json).await);
    let wrong_method = app
        .client
        .delete(app.url("/api/v1/procedures"))
        .send()
        .await
        .unwrap();
    insta::assert_snapshot!("method_not_allowed", problem(wrong_method).await);
    let nul = app
        .post_json(
            "/api/v1/auth/login",
            &json!({"email": "a\u{0}b@example.de", "password": "x"}),
        )
        .await;
    insta::assert_snapshot!("nul_in_body", problem(nul).await);
}

/// A mail with its single-use token replaced.
fn mail_text(mail: &amtsweg_test_support::Mail) -> String {
    let token = mail.token();
    format!(
        "Subject: {}\n\n{}",
        mail.subject,
        mail.body.replace(&token, "[token]")
    )
}

async fn mails(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    assert_eq!(
        app.register("schnappschuss@example.de", STRONG_PASSWORD, "Schnapp Schuss")
            .await
            .status(),
        202
    );
    let verification = app.mails_to("schnappschuss@example.de", 1).await.remove(0);
    let text = mail_text(&verification).replace(&app.address, "[portal]");
    insta::assert_snapshot!(
        "verification_mail_de",
        text.replace("http://127.0.0.1:8080", "[portal]")
    );
}

backend_tests!(problem_bodies, mails);
