//! Regressions of the outside security test of the account layer (issue 6): every secret check shares the login
//! throttle, single-use tokens are used once under concurrency, unique-key races end in the answer the loser
//! would get without the race, and mail only goes to stored addresses with no requester-chosen text.

use amtsweg_db::DbConnection;
use amtsweg_test_support::{Backend, STRONG_PASSWORD, TestApp, Tokens, backend_tests};
use chrono::Duration;
use diesel::prelude::*;
use diesel::sql_types::{BigInt, Text};
use futures_util::future::join_all;
use reqwest::StatusCode;
use serde_json::{Value, json};

async fn code_of(response: reqwest::Response) -> String {
    let body: Value = response.json().await.expect("JSON body");
    body["code"].as_str().unwrap_or_default().to_owned()
}

fn connect(app: &TestApp) -> DbConnection {
    app.connect()
}

#[derive(QueryableByName)]
struct Count {
    #[diesel(sql_type = BigInt)]
    n: i64,
}

fn count(app: &TestApp, query: &str, bind: &str) -> i64 {
    let mut conn = connect(app);
    let query = match &mut conn {
        DbConnection::Postgres(_) => query.replace('?', "$1"),
        DbConnection::Sqlite(_) => query.to_owned(),
    };
    diesel::sql_query(query)
        .bind::<Text, _>(bind)
        .get_result::<Count>(&mut conn)
        .expect("count")
        .n
}

fn statuses(responses: &[reqwest::Response]) -> Vec<u16> {
    let mut all: Vec<u16> = responses.iter().map(|r| r.status().as_u16()).collect();
    all.sort_unstable();
    all
}

/// A session that predates TOTP enrolment ends with it; the enrolling session stays at its level; wrong codes and
/// passwords at step-up and password change are delayed and counted like failed logins.
async fn step_up_and_password_change_pass_the_login_throttle(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let citizen = app.citizen("mara@example.de").await;
    let older: Tokens = app
        .login(&citizen.email, STRONG_PASSWORD, None)
        .await
        .json()
        .await
        .unwrap();
    let citizen = {
        let enrolling = citizen.clone();
        let enrolment: Value = app
            .post_as("/api/v1/me/totp", &enrolling.tokens.access_token, &json!({}))
            .await
            .json()
            .await
            .unwrap();
        let secret = enrolment["secret"].as_str().unwrap().to_owned();
        let confirmed = app
            .post_as(
                "/api/v1/me/totp/confirm",
                &enrolling.tokens.access_token,
                &json!({"code": app.totp(&secret)}),
            )
            .await;
        assert_eq!(confirmed.status(), StatusCode::OK);
        app.next_totp_step();
        amtsweg_test_support::Citizen {
            totp_secret: Some(secret),
            ..enrolling
        }
    };
    let secret = citizen.totp_secret.clone().unwrap();
    let session = citizen.tokens.access_token.clone();

    // ASVS 7.4.3: the other session ended; the enrolling one stays `basic` until it steps up.
    let old = app.get_as("/api/v1/me", &older.access_token).await;
    assert_eq!(
        old.status(),
        StatusCode::UNAUTHORIZED,
        "a session from before TOTP ends"
    );
    let me: Value = app.get_as("/api/v1/me", &session).await.json().await.unwrap();
    assert_eq!(me["session_level"], "basic");

    // A wrong code at step-up counts; the next attempt inside the delay is refused without a check.
    let wrong = app
        .post_as(
            "/api/v1/auth/reauthenticate",
            &session,
            &json!({"totp_code": "000000"}),
        )
        .await;
    assert_eq!(code_of(wrong).await, "totp_invalid");
    let hurried = app
        .post_as(
            "/api/v1/auth/reauthenticate",
            &session,
            &json!({"totp_code": app.totp(&secret)}),
        )
        .await;
    assert_eq!(hurried.status(), StatusCode::TOO_MANY_REQUESTS);
    assert!(hurried.headers().contains_key("retry-after"));
    assert_eq!(code_of(hurried).await, "too_many_attempts");

    // Wrong passwords at step-up and at password change count against the same key…
    app.clock.advance(Duration::seconds(1));
    let wrong_password = app
        .post_as(
            "/api/v1/auth/reauthenticate",
            &session,
            &json!({"password": "nicht das passwort"}),
        )
        .await;
    assert_eq!(wrong_password.status(), StatusCode::UNAUTHORIZED);
    app.clock.advance(Duration::seconds(1));
    let wrong_current = app
        .post_as(
            "/api/v1/me/password",
            &session,
            &json!({"current_password": "nicht das passwort", "new_password": "ein ganz neues langes passwort"}),
        )
        .await;
    assert_eq!(wrong_current.status(), StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(
        count(
            &app,
            "SELECT CAST(failures AS BIGINT) AS n FROM login_throttle WHERE login_key = ?",
            "citizen:mara@example.de"
        ),
        3
    );

    // …so the third failure brings a 3 s delay, for logins as well.
    app.clock.advance(Duration::seconds(1));
    let password_change = app
        .post_as(
            "/api/v1/me/password",
            &session,
            &json!({"current_password": STRONG_PASSWORD, "new_password": "ein ganz neues langes passwort"}),
        )
        .await;
    assert_eq!(password_change.status(), StatusCode::TOO_MANY_REQUESTS);
    let login = app
        .login(&citizen.email, STRONG_PASSWORD, Some(&app.totp(&secret)))
        .await;
    assert_eq!(code_of(login).await, "login_failed");

    // After the delay the right code steps the session up.
    app.clock.advance(Duration::seconds(3));
    let stepped = app
        .post_as(
            "/api/v1/auth/reauthenticate",
            &session,
            &json!({"password": STRONG_PASSWORD, "totp_code": app.totp(&secret)}),
        )
        .await;
    assert_eq!(stepped.status(), StatusCode::OK);
    let stepped: Tokens = stepped.json().await.unwrap();
    assert_eq!(stepped.acr, "substantial");
    assert_eq!(
        count(
            &app,
            "SELECT COUNT(*) AS n FROM login_throttle WHERE login_key = ?",
            "citizen:mara@example.de"
        ),
        0,
        "proving every factor clears the count"
    );
}

/// One reset link, eight requests at once: one new password, seven refusals.
async fn a_reset_token_works_once_under_concurrency(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let citizen = app.citizen("lena@example.de").await;
    let requested = app
        .post_json("/api/v1/auth/password-reset", &json!({"email": citizen.email}))
        .await;
    assert_eq!(requested.status(), StatusCode::ACCEPTED);
    let token = app.mails_to(&citizen.email, 2).await.remove(1).token();
    let app = &app;
    let attempts = (0..8).map(|i| {
        let body = json!({"token": token, "new_password": format!("neues passwort nummer {i} ist lang")});
        async move { app.post_json("/api/v1/auth/password-reset/confirm", &body).await }
    });
    let responses = join_all(attempts).await;
    assert_eq!(statuses(&responses), [200, 400, 400, 400, 400, 400, 400, 400]);
}

/// One verification code, six requests at once: verified once.
async fn a_verification_token_works_once_under_concurrency(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let email = "jonas@example.de";
    assert_eq!(
        app.register(email, STRONG_PASSWORD, "Jonas").await.status(),
        StatusCode::ACCEPTED
    );
    let token = app.mails_to(email, 1).await.remove(0).token();
    let app_ref = &app;
    let attempts = (0..6).map(|_| {
        let body = json!({"token": token});
        let app = app_ref;
        async move { app.post_json("/api/v1/accounts/verify-email", &body).await }
    });
    let responses = join_all(attempts).await;
    assert_eq!(statuses(&responses), [200, 400, 400, 400, 400, 400]);
    assert_eq!(
        count(
            &app,
            "SELECT COUNT(*) AS n FROM security_events WHERE kind = 'email_verified' AND account_id IN (SELECT id FROM accounts WHERE email_key = ?)",
            email
        ),
        1
    );
}

/// Eight registrations of one new address at once: eight times the usual 202, one account; every loser's mail
/// goes to the owner as "already registered".
async fn parallel_registrations_end_in_one_account(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let email = "zwilling@example.de";
    let attempts = (0..8).map(|_| app.register(email, STRONG_PASSWORD, "Zwilling"));
    let responses = join_all(attempts).await;
    assert_eq!(statuses(&responses), [202; 8]);
    assert_eq!(
        count(
            &app,
            "SELECT COUNT(*) AS n FROM accounts WHERE email_key = ?",
            email
        ),
        1
    );
    let mails = app.mails_to(email, 8).await;
    let verifications = mails
        .iter()
        .filter(|m| m.subject == "Bitte bestätigen Sie Ihre E-Mail-Adresse")
        .count();
    assert_eq!((verifications, mails.len()), (1, 8));
}

/// Eight wrong logins for one address at once: each answered like any wrong login, each one that was checked
/// counted — none lost to a collision on the throttle's key.
async fn parallel_failed_logins_are_all_answered_and_counted(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let citizen = app.citizen("tim@example.de").await;
    let attempts = (0..8).map(|_| app.login(&citizen.email, "ganz falsches passwort", None));
    let responses = join_all(attempts).await;
    assert_eq!(statuses(&responses), [401; 8]);
    for response in responses {
        assert_eq!(code_of(response).await, "login_failed");
    }
    let checked = count(
        &app,
        "SELECT COUNT(*) AS n FROM security_events WHERE kind = 'login_failed' AND account_id = ?",
        &citizen.id,
    );
    let counted = count(
        &app,
        "SELECT CAST(failures AS BIGINT) AS n FROM login_throttle WHERE login_key = ?",
        "citizen:tim@example.de",
    );
    assert!(checked >= 1);
    assert_eq!(counted, checked, "every checked failure is counted");
}

/// A reset or a duplicate registration for a variant of the address (case, KELVIN SIGN) is mailed to the address
/// stored on the account — never to the variant as typed.
async fn mail_goes_only_to_the_stored_address(backend: Backend) {
    let app = TestApp::builder(backend).with_smtp().spawn().await.unwrap();
    let stored = "kevin@example.de";
    app.citizen(stored).await;
    for variant in ["\u{212A}evin@example.de", "KEVIN@example.de"] {
        let reset = app
            .post_json("/api/v1/auth/password-reset", &json!({"email": variant}))
            .await;
        assert_eq!(reset.status(), StatusCode::ACCEPTED);
    }
    let again = app.register("Kevin@Example.de", STRONG_PASSWORD, "Kevin").await;
    assert_eq!(again.status(), StatusCode::ACCEPTED);
    let mails = app.smtp().wait_for(stored, 4).await;
    assert_eq!(mails.len(), 4);
    for mail in app.smtp().all() {
        if mail.to != amtsweg_test_support::ADMIN_EMAIL {
            assert_eq!(mail.to, stored, "{mail:#?}");
        }
    }
}

/// Nothing the requester typed reaches an address that is not verified: not at registration, not at an
/// e-mail change.
async fn unverified_addresses_get_no_requester_text(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let name = "Gewinnspiel http://phish.example/login";
    assert_eq!(
        app.register("opfer@example.de", STRONG_PASSWORD, name)
            .await
            .status(),
        StatusCode::ACCEPTED
    );
    let mail = app.mails_to("opfer@example.de", 1).await.remove(0);
    assert!(!mail.body.contains("phish.example"), "{}", mail.body);

    let citizen = app.citizen("absender@example.de").await;
    let renamed = app
        .patch_as("/api/v1/me", &citizen.tokens.access_token, &json!({"name": name}))
        .await;
    assert_eq!(renamed.status(), StatusCode::OK);
    let reauth = app
        .post_as(
            "/api/v1/auth/reauthenticate",
            &citizen.tokens.access_token,
            &json!({"password": STRONG_PASSWORD}),
        )
        .await;
    let fresh: Tokens = reauth.json().await.unwrap();
    let change = app
        .post_as(
            "/api/v1/me/email",
            &fresh.access_token,
            &json!({"email": "zweites-opfer@example.de"}),
        )
        .await;
    assert_eq!(change.status(), StatusCode::ACCEPTED);
    let mail = app.mails_to("zweites-opfer@example.de", 1).await.remove(0);
    assert!(!mail.body.contains("phish.example"), "{}", mail.body);
}

/// Inviting reveals nothing about who has an account: the same 202 for known and unknown addresses, a generic mail
/// and a security event only for an existing account, nothing for an unknown one; nobody is a member before
/// accepting; a decline or a withdrawal ends the invitation.
async fn organisation_invitations_reveal_nothing_and_need_consent(backend: Backend) {
    let app = TestApp::builder(backend).with_smtp().spawn().await.unwrap();
    let boss = app.citizen("chefin@example.de").await;
    let staff = app.citizen("geselle@example.de").await;
    let org: Value = app
        .post_as(
            "/api/v1/organisations",
            &boss.tokens.access_token,
            &json!({"name": "Gewinn! Klicken Sie http://phish.example"}),
        )
        .await
        .json()
        .await
        .unwrap();
    let invitations = format!(
        "/api/v1/organisations/{}/invitations",
        org["id"].as_str().unwrap()
    );
    let invite = |email: &'static str| {
        let (app, path, token) = (&app, &invitations, &boss.tokens.access_token);
        async move {
            app.post_as(path, token, &json!({"email": email, "role": "member"}))
                .await
        }
    };
    let known = invite("Geselle@Example.de").await;
    let unknown = invite("niemand@example.de").await;
    assert_eq!(
        (known.status(), unknown.status()),
        (StatusCode::ACCEPTED, StatusCode::ACCEPTED)
    );
    assert_eq!(
        (known.text().await.unwrap(), unknown.text().await.unwrap()),
        (String::new(), String::new()),
        "no account id, no name"
    );

    // The existing account: one mail with fixed text to its stored address, and a security event.
    let mails = app.smtp().wait_for(&staff.email, 2).await;
    let mail = &mails[1];
    assert_eq!(mail.to, staff.email);
    assert_eq!(mail.subject, "Neue Einladung in Ihrem Bürgerkonto");
    assert!(!mail.body.contains("phish.example"), "{}", mail.body);
    let events: Value = app
        .get_as("/api/v1/me/security-events", &staff.tokens.access_token)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(events["items"][0]["kind"], "invitation_received");
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    assert!(
        app.smtp().to("niemand@example.de").is_empty(),
        "an unknown address gets no mail"
    );

    // Not a member yet; the organisation lists both open invitations.
    let orgs: Value = app
        .get_as("/api/v1/organisations", &staff.tokens.access_token)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(orgs, json!([]));
    let open: Value = app
        .get_as(&invitations, &boss.tokens.access_token)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(open["items"].as_array().unwrap().len(), 2);
    let hidden = app.get_as(&invitations, &staff.tokens.access_token).await;
    assert_eq!(hidden.status(), StatusCode::NOT_FOUND);

    // Declined: gone for both sides, and no membership.
    let received: Value = app
        .get_as("/api/v1/me/invitations", &staff.tokens.access_token)
        .await
        .json()
        .await
        .unwrap();
    let id = received["items"][0]["id"].as_str().unwrap().to_owned();
    let declined = app
        .post_as(
            &format!("/api/v1/me/invitations/{id}/decline"),
            &staff.tokens.access_token,
            &json!({}),
        )
        .await;
    assert_eq!(declined.status(), StatusCode::NO_CONTENT);
    let late = app
        .post_as(
            &format!("/api/v1/me/invitations/{id}/accept"),
            &staff.tokens.access_token,
            &json!({}),
        )
        .await;
    assert_eq!(late.status(), StatusCode::NOT_FOUND);

    // Invited again and accepted: a member in the invited role.
    assert_eq!(invite("geselle@example.de").await.status(), StatusCode::ACCEPTED);
    let received: Value = app
        .get_as("/api/v1/me/invitations", &staff.tokens.access_token)
        .await
        .json()
        .await
        .unwrap();
    let id = received["items"][0]["id"].as_str().unwrap().to_owned();
    let joined: Value = app
        .post_as(
            &format!("/api/v1/me/invitations/{id}/accept"),
            &staff.tokens.access_token,
            &json!({}),
        )
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(joined["role"], "member");

    // The unknown address's invitation can be withdrawn.
    let open: Value = app
        .get_as(&invitations, &boss.tokens.access_token)
        .await
        .json()
        .await
        .unwrap();
    let pending = open["items"].as_array().unwrap();
    assert_eq!(pending.len(), 1);
    assert_eq!(pending[0]["email"], "niemand@example.de");
    let withdrawn = app
        .delete_as(
            &format!("{invitations}/{}", pending[0]["id"].as_str().unwrap()),
            &boss.tokens.access_token,
        )
        .await;
    assert_eq!(withdrawn.status(), StatusCode::NO_CONTENT);
}

/// Invitations are rate-limited per client address like registration.
async fn invitations_are_rate_limited(backend: Backend) {
    let app = TestApp::builder(backend)
        .configure(|settings| settings.account.auth_requests_per_minute = 5)
        .spawn()
        .await
        .unwrap();
    let boss = app.citizen("chef@example.de").await;
    let org: Value = app
        .post_as(
            "/api/v1/organisations",
            &boss.tokens.access_token,
            &json!({"name": "Firma"}),
        )
        .await
        .json()
        .await
        .unwrap();
    let path = format!(
        "/api/v1/organisations/{}/invitations",
        org["id"].as_str().unwrap()
    );
    let mut statuses = Vec::new();
    for i in 0..8 {
        let response = app
            .post_as(
                &path,
                &boss.tokens.access_token,
                &json!({"email": format!("probe{i}@example.de")}),
            )
            .await;
        statuses.push(response.status().as_u16());
    }
    assert!(statuses.contains(&429), "{statuses:?}");
}

/// Behind a trusted reverse proxy, per-address limits count the client it names in `X-Forwarded-For`; without
/// that setting (or from anyone else) the header changes nothing.
async fn a_trusted_proxy_names_the_client(backend: Backend) {
    async fn registrations(app: &TestApp, from: &str, first: usize) -> Vec<u16> {
        let mut statuses = Vec::new();
        for n in first..first + 4 {
            let response = app
                .client
                .post(app.url("/api/v1/accounts"))
                .header("x-forwarded-for", format!("198.51.100.99, {from}"))
                .json(&json!({"email": format!("neu{n}@example.de"), "password": "Ein langes Passwort 2026", "name": "Neu"}))
                .send()
                .await
                .unwrap();
            statuses.push(response.status().as_u16());
        }
        statuses
    }
    let behind_proxy = TestApp::builder(backend.clone())
        .configure(|settings| {
            settings.account.auth_requests_per_minute = 3;
            // The test client (loopback) stands for the load balancer.
            settings.server.trusted_proxies = vec!["127.0.0.0/8".into()];
        })
        .spawn()
        .await
        .unwrap();
    assert_eq!(
        registrations(&behind_proxy, "203.0.113.7", 0).await,
        [202, 202, 202, 429]
    );
    assert_eq!(
        registrations(&behind_proxy, "203.0.113.8", 10).await,
        [202, 202, 202, 429],
        "another citizen behind the same proxy has a budget of their own"
    );

    let direct = TestApp::builder(backend)
        .configure(|settings| settings.account.auth_requests_per_minute = 3)
        .spawn()
        .await
        .unwrap();
    assert_eq!(
        registrations(&direct, "203.0.113.7", 0).await,
        [202, 202, 202, 429]
    );
    assert_eq!(
        registrations(&direct, "203.0.113.8", 10).await,
        [429, 429, 429, 429],
        "a header from an untrusted caller is not believed"
    );
}

backend_tests!(
    a_trusted_proxy_names_the_client,
    step_up_and_password_change_pass_the_login_throttle,
    a_reset_token_works_once_under_concurrency,
    a_verification_token_works_once_under_concurrency,
    parallel_registrations_end_in_one_account,
    parallel_failed_logins_are_all_answered_and_counted,
    mail_goes_only_to_the_stored_address,
    unverified_addresses_get_no_requester_text,
    organisation_invitations_reveal_nothing_and_need_consent,
    invitations_are_rate_limited,
);
