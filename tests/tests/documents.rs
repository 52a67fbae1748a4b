//! Generated documents, read back as a person or an archive would (pypdf): the information letter of Art. 15
//! GDPR in the account's language, with the checksum of the data it summarises, fonts embedded, tagged, PDF/A —
//! and kept among the account's files with the file's own hash.

use amtsweg_test_support::{Backend, TestApp, backend_tests, inspect_pdf};
use reqwest::StatusCode;
use serde_json::{Value, json};
use sha2::{Digest, Sha256};

async fn letter(app: &TestApp, token: &str) -> reqwest::Response {
    app.get_as("/api/v1/me/export/letter", token).await
}

async fn the_information_letter_says_what_is_stored(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let citizen = app.citizen("auskunft@example.de").await;
    let token = citizen.tokens.access_token.as_str();
    let patched = app
        .patch_as(
            "/api/v1/me",
            token,
            &json!({"address": {"street": "Markt", "house_number": "1", "postal_code": "04109", "city": "Leipzig", "country": "DE"}}),
        )
        .await;
    assert_eq!(patched.status(), StatusCode::OK);
    app.post_as(
        "/api/v1/me/consents",
        token,
        &json!({"recipient": {"kind": "procedure", "id": "bewohnerparkausweis"}, "attributes": ["address"]}),
    )
    .await;

    let response = letter(&app, token).await;
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(response.headers()["content-type"], "application/pdf");
    let data_sha = response.headers()["x-data-sha256"].to_str().unwrap().to_owned();
    let location = response.headers()["location"].to_str().unwrap().to_owned();
    let pdf = response.bytes().await.unwrap().to_vec();

    let read = inspect_pdf(&pdf);
    let text = read["text"].as_str().unwrap();
    for expected in [
        "Auskunft nach Art. 15 DSGVO",
        "Erika Mustermann",
        "Markt 1",
        "04109 Leipzig",
        "auskunft@example.de",
        "Zwei-Faktor-Anmeldung",
        "bewohnerparkausweis",
        "Seite 1 von",
    ] {
        assert!(text.contains(expected), "{expected} missing in:\n{text}");
    }
    assert!(
        text.replace('\n', "").contains(&data_sha),
        "the footer names the data's SHA-256:\n{text}"
    );
    assert_eq!(read["lang"], "de");
    assert_eq!(read["title"], "Auskunft nach Art. 15 DSGVO");
    assert_eq!(read["marked"], true);
    assert_eq!(read["structure"], true);
    assert_eq!(read["pdfa_part"], "2");
    assert!(read["fonts"].as_u64().unwrap() > 0);
    assert_eq!(read["fonts"], read["embedded_fonts"], "every font is embedded");

    // The copy among the caller's files is the same PDF, its hash recorded with it.
    let stored = app.get_as(&location, token).await;
    assert_eq!(stored.status(), StatusCode::OK);
    assert_eq!(stored.bytes().await.unwrap().as_ref(), pdf.as_slice());
    let files: Value = app.get_as("/api/v1/files", token).await.json().await.unwrap();
    let entry = files["items"]
        .as_array()
        .unwrap()
        .iter()
        .find(|f| location.ends_with(f["id"].as_str().unwrap()))
        .unwrap();
    assert_eq!(entry["sha256"], hex::encode(Sha256::digest(&pdf)));
    assert!(entry.get("expires_at").is_none(), "a document is kept");
}

async fn the_letter_speaks_the_account_language(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let citizen = app.citizen("english@example.de").await;
    let token = citizen.tokens.access_token.as_str();
    app.patch_as("/api/v1/me", token, &json!({"preferred_language": "en"}))
        .await;
    let pdf = letter(&app, token).await.bytes().await.unwrap().to_vec();
    let read = inspect_pdf(&pdf);
    let text = read["text"].as_str().unwrap();
    assert!(text.contains("Information under Art. 15 GDPR"), "{text}");
    assert!(text.contains("Page 1 of"), "{text}");
    assert_eq!(read["lang"], "en");

    // Like the export, it needs a recent authentication.
    app.clock.advance(chrono::Duration::minutes(11));
    let fresh: amtsweg_test_support::Tokens = app
        .post_as(
            "/api/v1/auth/refresh",
            "",
            &json!({"refresh_token": citizen.tokens.refresh_token}),
        )
        .await
        .json()
        .await
        .unwrap();
    let stale = letter(&app, &fresh.access_token).await;
    assert_eq!(stale.status(), StatusCode::UNAUTHORIZED);
}

backend_tests!(
    the_information_letter_says_what_is_stored,
    the_letter_speaks_the_account_language,
);
