//! Login with the eID card through an external OpenID Connect provider — a real one (oidc-provider), run by the
//! test — reaching trust level `high`, with the account linked by the provider's subject.

use amtsweg_test_support::{Backend, EidProvider, TestApp, Tokens, backend_tests};
use reqwest::StatusCode;
use serde_json::{Value, json};

async fn body(response: reqwest::Response) -> Value {
    response.json().await.expect("JSON body")
}

async fn eid_login_reaches_high_and_links_by_subject(backend: Backend) {
    let provider = EidProvider::start();
    let settings = provider.settings();
    let app = TestApp::builder(backend)
        .configure(move |s| s.account.eid = Some(settings))
        .spawn()
        .await
        .unwrap();

    let response = app.eid_login(&provider, None, None).await;
    assert_eq!(response.status(), StatusCode::OK, "{:?}", response.text().await);
    let tokens: Tokens = response.json().await.unwrap();
    assert_eq!(tokens.acr, "high");
    assert_eq!(tokens.amr, ["eid"]);

    // A new account with the eID's data, marked verified.
    let me = body(app.get_as("/api/v1/me", &tokens.access_token).await).await;
    assert_eq!(me["eid_linked"], true);
    assert_eq!(me["given_name"], "Erika");
    assert_eq!(me["family_name"], "Mustermann");
    assert_eq!(me["date_of_birth"], "1964-08-12");
    assert_eq!(me["address"]["city"], "Köln");
    assert_eq!(me["email"], "eid-4711@eid.example");
    let verified: Vec<&str> = me["verified_fields"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f.as_str().unwrap())
        .collect();
    for field in [
        "given_name",
        "family_name",
        "date_of_birth",
        "street",
        "postal_code",
        "city",
        "country",
    ] {
        assert!(verified.contains(&field), "{field} in {verified:?}");
    }
    let edit = app
        .patch_as(
            "/api/v1/me",
            &tokens.access_token,
            &json!({"family_name": "Musterfrau", "phone": "0341 1234"}),
        )
        .await;
    assert_eq!(edit.status(), StatusCode::UNPROCESSABLE_ENTITY);
    let problem = body(edit).await;
    assert_eq!(problem["errors"][0]["code"], "verified_field");
    assert_eq!(problem["errors"][0]["pointer"], "/family_name");

    // `high` satisfies every procedure without a step-up.
    let consent =
        json!({"recipient": {"kind": "procedure", "id": "meldebescheinigung"}, "attributes": ["given_name"]});
    assert_eq!(
        app.post_as("/api/v1/me/consents", &tokens.access_token, &consent)
            .await
            .status(),
        StatusCode::CREATED
    );

    // The same eID logs into the same account again.
    let again: Tokens = app.eid_login(&provider, None, None).await.json().await.unwrap();
    let me_again = body(app.get_as("/api/v1/me", &again.access_token).await).await;
    assert_eq!(me_again["id"], me["id"]);

    // A citizen with a password account links another eID to it.
    let citizen = app.citizen("verlinkt@example.de").await;
    let linked = app
        .eid_login(&provider, Some(&citizen.tokens.access_token), Some("eid-0815"))
        .await;
    assert_eq!(linked.status(), StatusCode::OK);
    let linked: Tokens = linked.json().await.unwrap();
    let linked_me = body(app.get_as("/api/v1/me", &linked.access_token).await).await;
    assert_eq!(linked_me["id"], citizen.id.as_str());
    assert_eq!(linked_me["eid_linked"], true);
    assert_eq!(
        linked_me["email"], "verlinkt@example.de",
        "the account keeps its own address"
    );

    // That eID cannot be linked to a second account.
    let other = app.citizen("andere@example.de").await;
    let conflict = app
        .eid_login(&provider, Some(&other.tokens.access_token), Some("eid-0815"))
        .await;
    assert_eq!(conflict.status(), StatusCode::CONFLICT);
    assert_eq!(body(conflict).await["code"], "eid_linked_elsewhere");
}

async fn eid_callbacks_cannot_be_replayed_or_forged(backend: Backend) {
    let provider = EidProvider::start();
    let settings = provider.settings();
    let app = TestApp::builder(backend)
        .configure(move |s| s.account.eid = Some(settings))
        .spawn()
        .await
        .unwrap();
    let start = body(
        app.client
            .post(app.url("/api/v1/auth/eid/start"))
            .send()
            .await
            .unwrap(),
    )
    .await;
    let (code, state) = provider
        .authorize(start["authorization_url"].as_str().unwrap(), None)
        .await;

    let forged_state = app
        .post_json(
            "/api/v1/auth/eid/callback",
            &json!({"code": code, "state": "erfunden"}),
        )
        .await;
    assert_eq!(forged_state.status(), StatusCode::BAD_REQUEST);
    let wrong_code = app
        .post_json(
            "/api/v1/auth/eid/callback",
            &json!({"code": "erfunden", "state": state}),
        )
        .await;
    assert_eq!(
        wrong_code.status(),
        StatusCode::BAD_GATEWAY,
        "the provider refuses the code"
    );
    assert_eq!(body(wrong_code).await["code"], "eid_failed");
    let replay = app
        .post_json(
            "/api/v1/auth/eid/callback",
            &json!({"code": code, "state": state}),
        )
        .await;
    assert_eq!(
        replay.status(),
        StatusCode::BAD_REQUEST,
        "a state is used once, even after a failure"
    );
}

async fn eid_is_not_found_when_not_configured(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let response = app
        .client
        .post(app.url("/api/v1/auth/eid/start"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::NOT_FOUND);
    assert_eq!(body(response).await["code"], "eid_not_configured");
}

backend_tests!(
    eid_login_reaches_high_and_links_by_subject,
    eid_callbacks_cannot_be_replayed_or_forged,
    eid_is_not_found_when_not_configured,
);
