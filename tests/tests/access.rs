//! Who may do what: the JWT attack suite, the access matrix between citizens, staff and API clients, signing key
//! rotation, and the tamper-evident audit log.

use amtsweg_db::DbConnection;
use amtsweg_test_support::{Backend, Citizen, TestApp, Tokens, backend_tests};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use chrono::Duration;
use diesel::connection::SimpleConnection;
use diesel::{QueryableByName, RunQueryDsl, sql_types::Text};
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use reqwest::StatusCode;
use serde_json::{Value, json};

async fn body(response: reqwest::Response) -> Value {
    response.json().await.expect("JSON body")
}

fn connect(app: &TestApp) -> DbConnection {
    app.connect()
}

#[derive(QueryableByName)]
struct Key {
    #[diesel(sql_type = Text)]
    kid: String,
    #[diesel(sql_type = Text)]
    private_key: String,
}

/// The service's active signing key, as an attacker who stole both the database and the key-encryption key file —
/// or a test that needs valid signatures on invalid claims — would hold it.
fn signing_key(app: &TestApp) -> (String, EncodingKey) {
    let mut conn = connect(app);
    let key: Key = diesel::sql_query("SELECT kid, private_key FROM signing_keys WHERE retired_at IS NULL")
        .get_result(&mut conn)
        .unwrap();
    let kek =
        amtsweg_auth::KeyEncryptionKey::read_file(&app.data_dir.join("secrets/signing-keys.kek")).unwrap();
    let mut der = vec![
        0x30, 0x2e, 0x02, 0x01, 0x00, 0x30, 0x05, 0x06, 0x03, 0x2b, 0x65, 0x70, 0x04, 0x22, 0x04, 0x20,
    ];
    der.extend(kek.unwrap(&key.kid, &key.private_key).unwrap());
    (key.kid, EncodingKey::from_ed_der(&der))
}

fn claims_of(token: &str) -> Value {
    let payload = token.split('.').nth(1).unwrap();
    serde_json::from_slice(&URL_SAFE_NO_PAD.decode(payload).unwrap()).unwrap()
}

fn sign(kid: &str, key: &EncodingKey, claims: &Value) -> String {
    let mut header = Header::new(Algorithm::EdDSA);
    header.typ = Some("at+jwt".into());
    header.kid = Some(kid.into());
    jsonwebtoken::encode(&header, claims, key).unwrap()
}

async fn rejected(app: &TestApp, path: &str, token: &str, case: &str) {
    let response = app.get_as(path, token).await;
    assert_eq!(
        response.status(),
        StatusCode::UNAUTHORIZED,
        "{case} must be rejected"
    );
    assert!(response.headers().contains_key("www-authenticate"), "{case}");
    let code = body(response).await["code"].as_str().unwrap().to_owned();
    assert!(
        ["invalid_token", "unauthorized", "session_ended"].contains(&code.as_str()),
        "{case}: {code}"
    );
}

async fn forged_and_misused_tokens_are_rejected(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let citizen = app.citizen("ziel@example.de").await;
    let token = citizen.tokens.access_token.clone();
    assert_eq!(
        app.get_as("/api/v1/me", &token).await.status(),
        StatusCode::OK,
        "the genuine token works"
    );
    let claims = claims_of(&token);
    let (kid, key) = signing_key(&app);
    let header_of =
        |alg: &str| URL_SAFE_NO_PAD.encode(json!({"alg": alg, "typ": "at+jwt", "kid": kid}).to_string());
    let payload = URL_SAFE_NO_PAD.encode(claims.to_string());

    // alg: none
    rejected(
        &app,
        "/api/v1/me",
        &format!("{}.{payload}.", header_of("none")),
        "alg none",
    )
    .await;

    // HS256 "signed" with the public key from the JWKS (algorithm confusion)
    let jwks = body(app.get("/.well-known/jwks.json").await).await;
    let public = URL_SAFE_NO_PAD
        .decode(jwks["keys"][0]["x"].as_str().unwrap())
        .unwrap();
    let mut hs_header = Header::new(Algorithm::HS256);
    hs_header.typ = Some("at+jwt".into());
    hs_header.kid = Some(kid.clone());
    let confused =
        jsonwebtoken::encode(&hs_header, &claims, &EncodingKey::from_secret(&public).unwrap()).unwrap();
    rejected(&app, "/api/v1/me", &confused, "HS256 with the public key").await;
    let confused = jsonwebtoken::encode(
        &hs_header,
        &claims,
        &EncodingKey::from_secret(jwks.to_string().as_bytes()).unwrap(),
    )
    .unwrap();
    rejected(&app, "/api/v1/me", &confused, "HS256 with the JWKS").await;

    // Valid signatures on bad claims.
    let now = claims["iat"].as_i64().unwrap();
    let mut expired = claims.clone();
    expired["exp"] = json!(now - 1);
    rejected(&app, "/api/v1/me", &sign(&kid, &key, &expired), "expired").await;
    let mut early = claims.clone();
    early["nbf"] = json!(now + 600);
    rejected(&app, "/api/v1/me", &sign(&kid, &key, &early), "not yet valid").await;
    let mut audience = claims.clone();
    audience["aud"] = json!("amtsweg:staff");
    rejected(&app, "/api/v1/me", &sign(&kid, &key, &audience), "wrong aud").await;
    let mut issuer = claims.clone();
    issuer["iss"] = json!("https://evil.example");
    rejected(&app, "/api/v1/me", &sign(&kid, &key, &issuer), "wrong iss").await;
    let mut refresh_use = claims.clone();
    refresh_use["token_use"] = json!("refresh");
    rejected(
        &app,
        "/api/v1/me",
        &sign(&kid, &key, &refresh_use),
        "token_use refresh",
    )
    .await;
    let mut no_exp = claims.clone();
    no_exp.as_object_mut().unwrap().remove("exp");
    rejected(&app, "/api/v1/me", &sign(&kid, &key, &no_exp), "no exp").await;
    rejected(
        &app,
        "/api/v1/me",
        &sign("k-unknown", &key, &claims),
        "unknown kid",
    )
    .await;
    let mut stranger = [0u8; 32];
    rand::RngCore::fill_bytes(&mut rand::rngs::OsRng, &mut stranger);
    let mut der = vec![
        0x30, 0x2e, 0x02, 0x01, 0x00, 0x30, 0x05, 0x06, 0x03, 0x2b, 0x65, 0x70, 0x04, 0x22, 0x04, 0x20,
    ];
    der.extend(stranger);
    rejected(
        &app,
        "/api/v1/me",
        &sign(&kid, &EncodingKey::from_ed_der(&der), &claims),
        "foreign key under our kid",
    )
    .await;
    let mut wrong_type = Header::new(Algorithm::EdDSA);
    wrong_type.kid = Some(kid.clone());
    wrong_type.typ = Some("JWT".into());
    rejected(
        &app,
        "/api/v1/me",
        &jsonwebtoken::encode(&wrong_type, &claims, &key).unwrap(),
        "typ JWT",
    )
    .await;

    // Tampered payload: someone else's id under the original signature.
    let mut tampered_claims = claims.clone();
    tampered_claims["sub"] = json!("01900000-0000-7000-8000-000000000000");
    let parts: Vec<&str> = token.split('.').collect();
    let tampered = format!(
        "{}.{}.{}",
        parts[0],
        URL_SAFE_NO_PAD.encode(tampered_claims.to_string()),
        parts[2]
    );
    rejected(&app, "/api/v1/me", &tampered, "tampered payload").await;

    // Tokens of other audiences and other kinds.
    rejected(&app, "/api/v1/staff/me", &token, "citizen token on a staff route").await;
    rejected(
        &app,
        "/api/v1/admin/staff",
        &token,
        "citizen token on an admin route",
    )
    .await;
    rejected(
        &app,
        "/api/v1/me",
        &citizen.tokens.refresh_token,
        "refresh token as access token",
    )
    .await;
    rejected(&app, "/api/v1/me", "", "empty token").await;
    let admin = app.admin().await;
    rejected(
        &app,
        "/api/v1/me",
        &admin.access_token,
        "staff token on a citizen route",
    )
    .await;
    let (client_id, secret) = app.api_client(&admin, &["procedures:read"]).await;
    let client: Value = body(app.client_token(&client_id, &secret).await).await;
    let client_token = client["access_token"].as_str().unwrap();
    rejected(
        &app,
        "/api/v1/me",
        client_token,
        "client token on a citizen route",
    )
    .await;
    rejected(
        &app,
        "/api/v1/staff/me",
        client_token,
        "client token on a staff route",
    )
    .await;
    rejected(
        &app,
        "/api/v1/client/me",
        &token,
        "citizen token on a client route",
    )
    .await;

    // And time: the genuine token expires with the service's clock, 15 minutes at most.
    app.clock.advance(Duration::minutes(16));
    rejected(&app, "/api/v1/me", &token, "expired by time").await;
    app.clock.advance(Duration::minutes(-90));
    rejected(&app, "/api/v1/me", &token, "not yet valid by time").await;
}

async fn citizens_never_see_each_other(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let alice = app.citizen("alice@example.de").await;
    let bob = app.citizen("bob@example.de").await;
    let carl = app.citizen("carl@example.de").await;
    let consent =
        json!({"recipient": {"kind": "procedure", "id": "bewohnerparkausweis"}, "attributes": ["address"]});
    let bobs = body(
        app.post_as("/api/v1/me/consents", &bob.tokens.access_token, &consent)
            .await,
    )
    .await;
    let bobs_id = bobs["id"].as_str().unwrap();

    // Bob's consent does not exist for Alice: neither to revoke nor in her list.
    let steal = app
        .delete_as(
            &format!("/api/v1/me/consents/{bobs_id}"),
            &alice.tokens.access_token,
        )
        .await;
    assert_eq!(steal.status(), StatusCode::NOT_FOUND);
    assert_eq!(body(steal).await["code"], "consent_not_found");
    assert_eq!(
        body(
            app.get_as("/api/v1/me/consents", &alice.tokens.access_token)
                .await
        )
        .await["items"],
        json!([])
    );
    let still = body(app.get_as("/api/v1/me/consents", &bob.tokens.access_token).await).await;
    assert!(
        still["items"][0]["revoked_at"].is_null(),
        "Bob's consent is untouched"
    );

    // Profile, events and export are always the caller's own.
    app.patch_as(
        "/api/v1/me",
        &bob.tokens.access_token,
        &json!({"given_name": "Robert"}),
    )
    .await;
    let alice_me = body(app.get_as("/api/v1/me", &alice.tokens.access_token).await).await;
    assert_eq!(alice_me["id"], alice.id);
    assert_ne!(alice_me["given_name"], "Robert");
    let events = body(
        app.get_as("/api/v1/me/security-events?limit=100", &alice.tokens.access_token)
            .await,
    )
    .await;
    assert!(
        events["items"]
            .as_array()
            .unwrap()
            .iter()
            .all(|e| e["kind"] != "consent_granted")
    );
    let export = body(app.get_as("/api/v1/me/export", &alice.tokens.access_token).await).await;
    let text = export.to_string();
    assert!(
        !text.contains("bob@example.de") && !text.contains(&bob.id) && !text.contains("Robert"),
        "{text}"
    );

    // Organisations: only members see one, only representatives change it.
    let org = body(
        app.post_as(
            "/api/v1/organisations",
            &alice.tokens.access_token,
            &json!({"name": "Bäckerei Sonnenschein GmbH", "register_number": "HRB 12345"}),
        )
        .await,
    )
    .await;
    let org_id = org["id"].as_str().unwrap();
    assert_eq!(org["role"], "representative");
    let peek = app
        .get_as(
            &format!("/api/v1/organisations/{org_id}"),
            &bob.tokens.access_token,
        )
        .await;
    assert_eq!(peek.status(), StatusCode::NOT_FOUND);
    let join = app
        .post_as(
            &format!("/api/v1/organisations/{org_id}/invitations"),
            &bob.tokens.access_token,
            &json!({"email": "bob@example.de"}),
        )
        .await;
    assert_eq!(join.status(), StatusCode::NOT_FOUND);
    let invited = app
        .post_as(
            &format!("/api/v1/organisations/{org_id}/invitations"),
            &alice.tokens.access_token,
            &json!({"email": "bob@example.de"}),
        )
        .await;
    assert_eq!(invited.status(), StatusCode::ACCEPTED);
    let received = body(
        app.get_as("/api/v1/me/invitations", &bob.tokens.access_token)
            .await,
    )
    .await;
    let invitation = received["items"][0]["id"].as_str().unwrap().to_owned();
    let foreign = app
        .post_as(
            &format!("/api/v1/me/invitations/{invitation}/accept"),
            &carl.tokens.access_token,
            &json!({}),
        )
        .await;
    assert_eq!(
        foreign.status(),
        StatusCode::NOT_FOUND,
        "only the invited person answers"
    );
    let added = body(
        app.post_as(
            &format!("/api/v1/me/invitations/{invitation}/accept"),
            &bob.tokens.access_token,
            &json!({}),
        )
        .await,
    )
    .await;
    assert_eq!(added["members"].as_array().unwrap().len(), 2);
    let as_member = app
        .post_as(
            &format!("/api/v1/organisations/{org_id}/invitations"),
            &bob.tokens.access_token,
            &json!({"email": "carl@example.de"}),
        )
        .await;
    assert_eq!(as_member.status(), StatusCode::FORBIDDEN);
    assert_eq!(
        body(
            app.get_as("/api/v1/organisations", &bob.tokens.access_token)
                .await
        )
        .await[0]["role"],
        "member"
    );

    // Citizens are not staff.
    let admin_route = app
        .get_as("/api/v1/admin/staff", &alice.tokens.access_token)
        .await;
    assert_eq!(admin_route.status(), StatusCode::UNAUTHORIZED);
    let _: &Citizen = &alice;
}

async fn staff_and_clients_are_managed_by_administrators(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let admin = app.admin().await;
    let me = body(app.get_as("/api/v1/staff/me", &admin.access_token).await).await;
    assert_eq!(me["roles"], json!([{"role": "system_admin", "unit": "*"}]));
    assert_eq!(admin.amr, ["pwd", "otp"], "staff log in with TOTP");

    // A case worker of the public order office.
    let invalid = app
        .post_as("/api/v1/admin/staff", &admin.access_token, &json!({"email": "k.weber@stadt.example", "name": "Klara Weber", "roles": [{"role": "case_worker", "unit": "marsbehoerde"}, {"role": "kaiser", "unit": "*"}]}))
        .await;
    assert_eq!(invalid.status(), StatusCode::UNPROCESSABLE_ENTITY);
    let pointers: Vec<String> = body(invalid).await["errors"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["pointer"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(pointers, ["/roles/0/unit", "/roles/1/role"]);
    let created = app
        .post_as("/api/v1/admin/staff", &admin.access_token, &json!({"email": "k.weber@stadt.example", "name": "Klara Weber", "roles": [{"role": "case_worker", "unit": "ordnungsamt"}]}))
        .await;
    assert_eq!(created.status(), StatusCode::CREATED);
    let created = body(created).await;
    let password = created["initial_password"].as_str().unwrap().to_owned();
    let (worker, _) = app.staff_login("k.weber@stadt.example", &password, None).await;
    let worker_me = body(app.get_as("/api/v1/staff/me", &worker.access_token).await).await;
    assert_eq!(
        worker_me["roles"],
        json!([{"role": "case_worker", "unit": "ordnungsamt"}])
    );
    let forbidden = app.get_as("/api/v1/admin/staff", &worker.access_token).await;
    assert_eq!(
        forbidden.status(),
        StatusCode::FORBIDDEN,
        "a case worker is no administrator"
    );
    let duplicate = app
        .post_as("/api/v1/admin/staff", &admin.access_token, &json!({"email": "K.Weber@stadt.example", "name": "Klara", "roles": [{"role": "supervisor", "unit": "ordnungsamt"}]}))
        .await;
    assert_eq!(duplicate.status(), StatusCode::CONFLICT);
    let staff = body(app.get_as("/api/v1/admin/staff", &admin.access_token).await).await;
    assert_eq!(staff["items"].as_array().unwrap().len(), 2);
    let first = body(
        app.get_as("/api/v1/admin/staff?limit=1", &admin.access_token)
            .await,
    )
    .await;
    let cursor = first["next_cursor"].as_str().unwrap();
    let second = body(
        app.get_as(
            &format!("/api/v1/admin/staff?limit=1&cursor={cursor}"),
            &admin.access_token,
        )
        .await,
    )
    .await;
    assert_ne!(first["items"][0]["id"], second["items"][0]["id"], "cursor pages");
    assert!(second.get("next_cursor").is_none());
    assert!(
        app.get_as("/api/v1/me", &worker.access_token).await.status() == StatusCode::UNAUTHORIZED,
        "staff tokens are not citizen tokens"
    );

    // API clients: scopes per procedure, secrets once, client credentials grant.
    let bad = app
        .post_as(
            "/api/v1/admin/clients",
            &admin.access_token,
            &json!({"name": "X", "scopes": ["applications:read:reisepass", "alles"]}),
        )
        .await;
    assert_eq!(bad.status(), StatusCode::UNPROCESSABLE_ENTITY);
    let every = app
        .post_as(
            "/api/v1/admin/clients",
            &admin.access_token,
            &json!({"name": "Alle Verfahren", "scopes": ["applications:read:*"]}),
        )
        .await;
    assert_eq!(
        every.status(),
        StatusCode::CREATED,
        "`*` stands for every procedure"
    );
    let (client_id, secret) = app
        .api_client(
            &admin,
            &[
                "applications:read:bewohnerparkausweis",
                "applications:write:bewohnerparkausweis",
            ],
        )
        .await;
    let granted = app.client_token(&client_id, &secret).await;
    assert_eq!(granted.status(), StatusCode::OK);
    assert_eq!(granted.headers()["cache-control"], "no-store");
    let granted = body(granted).await;
    assert_eq!(granted["token_type"], "Bearer");
    assert!(granted["expires_in"].as_i64().unwrap() <= 900);
    let whoami = body(
        app.get_as("/api/v1/client/me", granted["access_token"].as_str().unwrap())
            .await,
    )
    .await;
    assert_eq!(whoami["client_id"], client_id.as_str());
    assert_eq!(
        whoami["scopes"],
        json!([
            "applications:read:bewohnerparkausweis",
            "applications:write:bewohnerparkausweis"
        ])
    );

    let narrow = app
        .client
        .post(app.url("/oauth/token"))
        .basic_auth(&client_id, Some(&secret))
        .form(&[
            ("grant_type", "client_credentials"),
            ("scope", "applications:read:bewohnerparkausweis"),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(
        body(narrow).await["scope"],
        "applications:read:bewohnerparkausweis"
    );
    let wider = app
        .client
        .post(app.url("/oauth/token"))
        .basic_auth(&client_id, Some(&secret))
        .form(&[
            ("grant_type", "client_credentials"),
            ("scope", "applications:read:baugenehmigung"),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(wider.status(), StatusCode::BAD_REQUEST);
    assert_eq!(body(wider).await["error"], "invalid_scope");
    let wrong = app.client_token(&client_id, "falsch").await;
    assert_eq!(wrong.status(), StatusCode::UNAUTHORIZED);
    assert!(
        wrong.headers()["www-authenticate"]
            .to_str()
            .unwrap()
            .starts_with("Basic")
    );
    assert_eq!(body(wrong).await["error"], "invalid_client");
    let grant = app
        .client
        .post(app.url("/oauth/token"))
        .basic_auth(&client_id, Some(&secret))
        .form(&[("grant_type", "password")])
        .send()
        .await
        .unwrap();
    assert_eq!(body(grant).await["error"], "unsupported_grant_type");

    // Rotation: both secrets work during the changeover, then only the new one.
    let rotated = body(
        app.post_as(
            &format!("/api/v1/admin/clients/{client_id}/secret"),
            &admin.access_token,
            &json!({}),
        )
        .await,
    )
    .await;
    let new_secret = rotated["client_secret"].as_str().unwrap().to_owned();
    assert_eq!(
        app.client_token(&client_id, &secret).await.status(),
        StatusCode::OK,
        "old secret during changeover"
    );
    assert_eq!(
        app.client_token(&client_id, &new_secret).await.status(),
        StatusCode::OK
    );
    app.clock.advance(Duration::hours(25));
    assert_eq!(
        app.client_token(&client_id, &secret).await.status(),
        StatusCode::UNAUTHORIZED,
        "old secret after changeover"
    );
    let fresh = body(app.client_token(&client_id, &new_secret).await).await;
    let fresh_token = fresh["access_token"].as_str().unwrap().to_owned();

    // Disabling a client stops its tokens at once.
    let admin = app.admin().await;
    assert_eq!(
        app.delete_as(&format!("/api/v1/admin/clients/{client_id}"), &admin.access_token)
            .await
            .status(),
        StatusCode::NO_CONTENT
    );
    assert_eq!(
        app.get_as("/api/v1/client/me", &fresh_token).await.status(),
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(
        app.client_token(&client_id, &new_secret).await.status(),
        StatusCode::UNAUTHORIZED
    );
}

async fn signing_keys_rotate_without_breaking_sessions(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let citizen = app.citizen("rotation@example.de").await;
    let old_kid = body(app.get("/.well-known/jwks.json").await).await["keys"][0]["kid"]
        .as_str()
        .unwrap()
        .to_owned();
    let admin = app.admin().await;
    let rotated = body(
        app.post_as("/api/v1/admin/keys/rotate", &admin.access_token, &json!({}))
            .await,
    )
    .await;
    let new_kid = rotated["kid"].as_str().unwrap().to_owned();
    assert_ne!(new_kid, old_kid);
    let jwks = body(app.get("/.well-known/jwks.json").await).await;
    let kids: Vec<&str> = jwks["keys"]
        .as_array()
        .unwrap()
        .iter()
        .map(|k| k["kid"].as_str().unwrap())
        .collect();
    assert!(
        kids.contains(&old_kid.as_str()) && kids.contains(&new_kid.as_str()),
        "{kids:?}"
    );
    assert_eq!(
        app.get_as("/api/v1/me", &citizen.tokens.access_token)
            .await
            .status(),
        StatusCode::OK,
        "old tokens still verify"
    );
    let refreshed: Tokens = app.refresh(&citizen.tokens.refresh_token).await;
    let header = jsonwebtoken::decode_header(&refreshed.access_token).unwrap();
    assert_eq!(
        header.kid.as_deref(),
        Some(new_kid.as_str()),
        "new tokens use the new key"
    );
    // Once every token the old key signed has expired, it is no longer published.
    app.clock.advance(Duration::minutes(30));
    let later = body(app.get("/.well-known/jwks.json").await).await;
    let kids: Vec<&str> = later["keys"]
        .as_array()
        .unwrap()
        .iter()
        .map(|k| k["kid"].as_str().unwrap())
        .collect();
    assert_eq!(kids, [new_kid.as_str()]);
}

async fn the_audit_log_is_a_verifiable_chain(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let citizen = app.citizen("audit@example.de").await;
    app.login(&citizen.email, "falsches passwort hier", None).await;
    app.clock.advance(Duration::seconds(2));
    app.admin().await;

    let mut conn = connect(&app);
    let report = amtsweg_audit::verify(&mut conn).unwrap();
    assert!(report.rows >= 6, "{report:?}");
    assert_eq!(report.broken, None);

    // The log refuses edits through the database's own rules …
    let edit = conn.batch_execute("UPDATE audit_log SET action = 'nothing' WHERE seq = 3");
    assert!(edit.is_err(), "append-only");

    // … and when someone with database rights works around them, verification names the first broken link.
    match &mut conn {
        DbConnection::Postgres(pg) => pg
            .batch_execute("ALTER TABLE audit_log DISABLE TRIGGER audit_log_append_only")
            .unwrap(),
        DbConnection::Sqlite(lite) => lite
            .batch_execute("DROP TRIGGER audit_log_no_update; DROP TRIGGER audit_log_no_delete;")
            .unwrap(),
    }
    conn.batch_execute("UPDATE audit_log SET actor_id = 'someone-else' WHERE seq = 4")
        .unwrap();
    let report = amtsweg_audit::verify(&mut conn).unwrap();
    let (seq, why) = report.broken.expect("tampering found");
    assert_eq!(seq, 4);
    assert!(why.contains("edited"), "{why}");

    let mut conn = connect(&app);
    conn.batch_execute("DELETE FROM audit_log WHERE seq = 2").unwrap();
    let report = amtsweg_audit::verify(&mut conn).unwrap();
    assert_eq!(
        report.broken.map(|(seq, _)| seq),
        Some(2),
        "a deleted row is noticed"
    );
}

async fn mail_is_retried_until_the_server_takes_it(backend: Backend) {
    let port = amtsweg_test_support::free_port();
    let app = TestApp::builder(backend).smtp_at(port).spawn().await.unwrap();
    // The mail server is down: the registration still succeeds, the message waits in the queue.
    assert_eq!(
        app.register(
            "geduld@example.de",
            amtsweg_test_support::STRONG_PASSWORD,
            "Geduld"
        )
        .await
        .status(),
        StatusCode::ACCEPTED
    );
    tokio::time::sleep(std::time::Duration::from_millis(500)).await;
    let smtp = amtsweg_test_support::SmtpServer::start_on(port);
    assert!(
        smtp.to("geduld@example.de").is_empty(),
        "nothing was delivered while the server was down"
    );
    // After the backoff the worker tries again and the message arrives.
    app.clock.advance(Duration::seconds(31));
    let mails = smtp.wait_for("geduld@example.de", 1).await;
    assert_eq!(mails[0].subject, "Bitte bestätigen Sie Ihre E-Mail-Adresse");
}

backend_tests!(
    forged_and_misused_tokens_are_rejected,
    citizens_never_see_each_other,
    staff_and_clients_are_managed_by_administrators,
    signing_keys_rotate_without_breaking_sessions,
    the_audit_log_is_a_verifiable_chain,
    mail_is_retried_until_the_server_takes_it,
);
