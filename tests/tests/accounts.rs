//! Bürgerkonto: the citizen life cycle, sessions, password reset, enumeration resistance and brute-force
//! protection — on both backends, with a real SMTP server where mail matters.

use amtsweg_test_support::{Backend, STRONG_PASSWORD, TestApp, Tokens, backend_tests};
use chrono::Duration;
use reqwest::StatusCode;
use serde_json::{Value, json};

async fn body(response: reqwest::Response) -> Value {
    response.json().await.expect("JSON body")
}

async fn problem_code(response: reqwest::Response) -> String {
    body(response).await["code"]
        .as_str()
        .unwrap_or_default()
        .to_owned()
}

async fn citizen_life_cycle(backend: Backend) {
    let app = TestApp::builder(backend).with_smtp().spawn().await.unwrap();
    let email = "erika.mustermann@example.de";

    // Register: a verification mail arrives at a real SMTP server.
    let registered = app.register(email, STRONG_PASSWORD, "Erika Mustermann").await;
    assert_eq!(registered.status(), StatusCode::ACCEPTED);
    let mail = app.smtp().wait_for(email, 1).await.remove(0);
    assert_eq!(mail.subject, "Bitte bestätigen Sie Ihre E-Mail-Adresse");
    // Not verified yet: nothing the registering person typed appears in the mail.
    assert!(!mail.body.contains("Erika Mustermann"), "{}", mail.body);
    assert!(mail.body.contains("/verify-email?token="), "{}", mail.body);

    // Not verified yet: the right password still cannot log in.
    let early = app.login(email, STRONG_PASSWORD, None).await;
    assert_eq!(early.status(), StatusCode::FORBIDDEN);
    assert_eq!(problem_code(early).await, "email_not_verified");

    let verify = app
        .post_json("/api/v1/accounts/verify-email", &json!({"token": mail.token()}))
        .await;
    assert_eq!(verify.status(), StatusCode::OK);
    let again = app
        .post_json("/api/v1/accounts/verify-email", &json!({"token": mail.token()}))
        .await;
    assert_eq!(again.status(), StatusCode::BAD_REQUEST, "the code is single-use");

    // Login with a case variant of the address: basic level, password only.
    let login = app
        .login("Erika.Mustermann@Example.DE", STRONG_PASSWORD, None)
        .await;
    assert_eq!(login.status(), StatusCode::OK);
    assert_eq!(login.headers()["cache-control"], "no-store");
    let tokens: Tokens = login.json().await.unwrap();
    assert_eq!(
        (tokens.acr.as_str(), tokens.amr.clone()),
        ("basic", vec!["pwd".to_owned()])
    );
    assert!(tokens.expires_in <= 15 * 60);
    let me = body(app.get_as("/api/v1/me", &tokens.access_token).await).await;
    assert_eq!(me["email"], email);
    assert_eq!(me["name"], "Erika Mustermann");
    assert_eq!(me["session_level"], "basic");

    // Refresh: new tokens, the old refresh token is spent.
    let refreshed: Tokens = app.refresh(&tokens.refresh_token).await;
    assert_ne!(refreshed.refresh_token, tokens.refresh_token);

    // Two-factor: the next login needs a code and reaches `substantial`; a notice is mailed.
    let basic_session = refreshed.clone();
    let mut citizen = amtsweg_test_support::Citizen {
        id: me["id"].as_str().unwrap().to_owned(),
        email: email.to_owned(),
        password: STRONG_PASSWORD.to_owned(),
        tokens: refreshed,
        totp_secret: None,
        recovery_codes: Vec::new(),
    };
    citizen = app.with_totp(citizen).await;
    assert_eq!(citizen.tokens.acr, "substantial");
    assert_eq!(citizen.tokens.amr, ["pwd", "otp"]);
    assert_eq!(citizen.recovery_codes.len(), 10);
    let notice = app.smtp().wait_for(email, 2).await.remove(1);
    assert!(
        notice.body.contains("Zwei-Faktor-Anmeldung eingerichtet"),
        "{}",
        notice.body
    );
    let without_code = app.login(email, STRONG_PASSWORD, None).await;
    assert_eq!(problem_code(without_code).await, "totp_required");
    let secret = citizen.totp_secret.clone().unwrap();

    // A recovery code works once in place of a code.
    let recovered = app
        .login(email, STRONG_PASSWORD, Some(&citizen.recovery_codes[0]))
        .await;
    assert_eq!(recovered.status(), StatusCode::OK);
    let used_again = app
        .login(email, STRONG_PASSWORD, Some(&citizen.recovery_codes[0]))
        .await;
    assert_eq!(problem_code(used_again).await, "totp_invalid");
    app.clock.advance(Duration::seconds(1));

    // The session opened with the password alone must step up before consenting to a `substantial` procedure
    // (RFC 9470): 401 names the level, a TOTP code raises the same session, the retry succeeds.
    let consent = json!({"recipient": {"kind": "procedure", "id": "meldebescheinigung"}, "attributes": ["given_name", "family_name", "date_of_birth"]});
    let refused = app
        .post_as("/api/v1/me/consents", &basic_session.access_token, &consent)
        .await;
    assert_eq!(refused.status(), StatusCode::UNAUTHORIZED);
    let challenge = refused.headers()["www-authenticate"].to_str().unwrap().to_owned();
    assert!(
        challenge.contains("error=\"insufficient_user_authentication\""),
        "{challenge}"
    );
    assert!(challenge.contains("acr_values=\"substantial\""), "{challenge}");
    let problem = body(refused).await;
    assert_eq!(problem["code"], "insufficient_user_authentication");
    assert_eq!(problem["acr_values"], "substantial");
    let stepped = app
        .post_as(
            "/api/v1/auth/reauthenticate",
            &basic_session.access_token,
            &json!({"totp_code": app.totp(&secret)}),
        )
        .await;
    assert_eq!(stepped.status(), StatusCode::OK);
    app.next_totp_step();
    let stepped: Tokens = stepped.json().await.unwrap();
    assert_eq!(stepped.acr, "substantial");
    let granted = app
        .post_as("/api/v1/me/consents", &stepped.access_token, &consent)
        .await;
    assert_eq!(granted.status(), StatusCode::CREATED);
    let granted = body(granted).await;
    assert_eq!(
        granted["attributes"],
        json!(["date_of_birth", "family_name", "given_name"])
    );

    // Export within 10 minutes of authenticating: everything, from every module.
    let export = app.get_as("/api/v1/me/export", &stepped.access_token).await;
    assert_eq!(export.status(), StatusCode::OK);
    assert!(
        export.headers()["content-disposition"]
            .to_str()
            .unwrap()
            .contains("attachment")
    );
    let export = body(export).await;
    let account = &export["sections"]["account"];
    assert_eq!(account["account"]["email"], email);
    assert_eq!(account["consents"][0]["recipient_id"], "meldebescheinigung");
    assert!(account["sessions"].as_array().unwrap().len() >= 3);
    let kinds: Vec<&str> = account["security_events"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["kind"].as_str().unwrap())
        .collect();
    for kind in [
        "registered",
        "email_verified",
        "login_succeeded",
        "totp_enabled",
        "consent_granted",
        "exported",
    ] {
        assert!(kinds.contains(&kind), "{kind} missing in {kinds:?}");
    }
    assert!(
        export["sections"]["mail"]["messages"].as_array().unwrap().len() >= 2,
        "the mail module exports too"
    );

    // Eleven minutes later the export needs a fresh authentication.
    app.clock.advance(Duration::minutes(11));
    let refreshed: Tokens = app.refresh(&stepped.refresh_token).await;
    let stale = app.get_as("/api/v1/me/export", &refreshed.access_token).await;
    assert_eq!(stale.status(), StatusCode::UNAUTHORIZED);
    assert!(
        stale.headers()["www-authenticate"]
            .to_str()
            .unwrap()
            .contains("max_age=\"600\"")
    );
    let fresh: Tokens = app
        .post_as(
            "/api/v1/auth/reauthenticate",
            &refreshed.access_token,
            &json!({"password": STRONG_PASSWORD}),
        )
        .await
        .json()
        .await
        .unwrap();

    // Delete: personal data goes, what must be kept is named with its legal basis.
    let deleted = app.delete_as("/api/v1/me", &fresh.access_token).await;
    assert_eq!(deleted.status(), StatusCode::OK);
    let report = body(deleted).await;
    assert_eq!(report["deleted"], true);
    let retained: Vec<&str> = report["retained"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["category"].as_str().unwrap())
        .collect();
    assert!(
        retained.contains(&"consents") && retained.contains(&"audit_log"),
        "{retained:?}"
    );
    assert!(
        report["retained"][0]["legal_basis"]
            .as_str()
            .unwrap()
            .contains("DSGVO")
    );
    let goodbye = app.smtp().wait_for(email, 3).await;
    assert!(
        goodbye
            .iter()
            .any(|m| m.subject == "Ihr Bürgerkonto wurde gelöscht")
    );

    assert_eq!(
        app.get_as("/api/v1/me", &fresh.access_token).await.status(),
        StatusCode::UNAUTHORIZED,
        "sessions end"
    );
    app.next_totp_step();
    let gone = app.login(email, STRONG_PASSWORD, Some(&app.totp(&secret))).await;
    assert_eq!(problem_code(gone).await, "login_failed");
    let reregistered = app.register(email, STRONG_PASSWORD, "Erika Neu").await;
    assert_eq!(
        reregistered.status(),
        StatusCode::ACCEPTED,
        "the address is free again"
    );
}

async fn refresh_token_reuse_ends_the_session(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let citizen = app.citizen("anna@example.de").await;
    let first = citizen.tokens.refresh_token.clone();
    let rotated = app
        .post_json("/api/v1/auth/refresh", &json!({"refresh_token": first}))
        .await;
    assert_eq!(rotated.status(), StatusCode::OK);
    let rotated: Tokens = rotated.json().await.unwrap();

    // The old token again: refused, and the whole session family ends.
    let replay = app
        .post_json("/api/v1/auth/refresh", &json!({"refresh_token": first}))
        .await;
    assert_eq!(replay.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(body(replay).await["error"], "invalid_grant");
    let after = app
        .post_json(
            "/api/v1/auth/refresh",
            &json!({"refresh_token": rotated.refresh_token}),
        )
        .await;
    assert_eq!(
        after.status(),
        StatusCode::UNAUTHORIZED,
        "the newest token of the family is dead too"
    );
    let access = app.get_as("/api/v1/me", &rotated.access_token).await;
    assert_eq!(access.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(problem_code(access).await, "session_ended");

    // The citizen sees why.
    let fresh: Tokens = app
        .login(&citizen.email, STRONG_PASSWORD, None)
        .await
        .json()
        .await
        .unwrap();
    let events = body(
        app.get_as("/api/v1/me/security-events", &fresh.access_token)
            .await,
    )
    .await;
    let kinds: Vec<&str> = events["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["kind"].as_str().unwrap())
        .collect();
    assert!(kinds.contains(&"refresh_token_reused"), "{kinds:?}");

    // Logout ends a session at once; an expired refresh token is refused.
    assert_eq!(
        app.post_as("/api/v1/auth/logout", &fresh.access_token, &json!({}))
            .await
            .status(),
        StatusCode::NO_CONTENT
    );
    assert_eq!(
        app.get_as("/api/v1/me", &fresh.access_token).await.status(),
        StatusCode::UNAUTHORIZED
    );
    let later: Tokens = app
        .login(&citizen.email, STRONG_PASSWORD, None)
        .await
        .json()
        .await
        .unwrap();
    app.clock.advance(Duration::days(31));
    let expired = app
        .post_json(
            "/api/v1/auth/refresh",
            &json!({"refresh_token": later.refresh_token}),
        )
        .await;
    assert_eq!(expired.status(), StatusCode::UNAUTHORIZED);
}

async fn password_reset_by_mail(backend: Backend) {
    let app = TestApp::builder(backend).with_smtp().spawn().await.unwrap();
    let citizen = app.citizen("jonas@example.de").await;
    let unknown = app
        .post_json(
            "/api/v1/auth/password-reset",
            &json!({"email": "niemand@example.de"}),
        )
        .await;
    let known = app
        .post_json(
            "/api/v1/auth/password-reset",
            &json!({"email": "JONAS@example.de"}),
        )
        .await;
    assert_eq!(unknown.status(), StatusCode::ACCEPTED);
    assert_eq!(known.status(), StatusCode::ACCEPTED);
    assert_eq!(body(unknown).await, body(known).await, "the answer does not tell");
    let mail = app.smtp().wait_for(&citizen.email, 2).await.remove(1);
    assert_eq!(mail.subject, "Passwort zurücksetzen");
    assert!(mail.body.contains("30 Minuten"), "{}", mail.body);
    assert!(app.smtp().to("niemand@example.de").is_empty());

    let weak = app
        .post_json(
            "/api/v1/auth/password-reset/confirm",
            &json!({"token": mail.token(), "new_password": "passwort1"}),
        )
        .await;
    assert_eq!(weak.status(), StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(body(weak).await["errors"][0]["pointer"], "/new_password");

    let new_password = "radweg elster auwald brücke";
    let reset = app
        .post_json(
            "/api/v1/auth/password-reset/confirm",
            &json!({"token": mail.token(), "new_password": new_password}),
        )
        .await;
    assert_eq!(reset.status(), StatusCode::OK);
    assert_eq!(
        app.get_as("/api/v1/me", &citizen.tokens.access_token)
            .await
            .status(),
        StatusCode::UNAUTHORIZED,
        "all sessions end"
    );
    let replay = app
        .post_json(
            "/api/v1/auth/password-reset/confirm",
            &json!({"token": mail.token(), "new_password": "noch ein neues langes passwort"}),
        )
        .await;
    assert_eq!(replay.status(), StatusCode::BAD_REQUEST, "single use");
    assert_eq!(
        app.login(&citizen.email, STRONG_PASSWORD, None).await.status(),
        StatusCode::UNAUTHORIZED
    );
    app.clock.advance(Duration::seconds(1));
    assert_eq!(
        app.login(&citizen.email, new_password, None).await.status(),
        StatusCode::OK
    );
    let notice = app.smtp().wait_for(&citizen.email, 3).await.remove(2);
    assert!(notice.body.contains("zurückgesetzt"), "{}", notice.body);

    // A link older than 30 minutes does not work.
    app.post_json("/api/v1/auth/password-reset", &json!({"email": citizen.email}))
        .await;
    let late = app.smtp().wait_for(&citizen.email, 4).await.remove(3);
    app.clock.advance(Duration::minutes(31));
    let expired = app
        .post_json(
            "/api/v1/auth/password-reset/confirm",
            &json!({"token": late.token(), "new_password": "ganz anderes langes kennwort"}),
        )
        .await;
    assert_eq!(expired.status(), StatusCode::BAD_REQUEST);
    assert_eq!(body(expired).await["code"], "invalid_or_expired_token");
}

async fn registration_does_not_reveal_existing_accounts(backend: Backend) {
    let app = TestApp::builder(backend).with_smtp().spawn().await.unwrap();
    let started = std::time::Instant::now();
    let first = app.register("lena@example.de", STRONG_PASSWORD, "Lena").await;
    let new_account = started.elapsed();
    let (status, first_body) = (first.status(), body(first).await);
    let started = std::time::Instant::now();
    let second = app
        .register("Lena@Example.de", "ein anderes sehr langes kennwort", "Mallory")
        .await;
    let existing = started.elapsed();
    assert_eq!(second.status(), status);
    assert_eq!(body(second).await, first_body, "identical answers");
    // Both paths hash the password; neither is an order of magnitude faster.
    let ratio = new_account.as_secs_f64() / existing.as_secs_f64();
    assert!(
        (0.2..5.0).contains(&ratio),
        "new {new_account:?} vs existing {existing:?}"
    );

    // The owner is told; the second registrant cannot take over.
    let mails = app.smtp().wait_for("lena@example.de", 2).await;
    assert_eq!(mails[1].subject, "Registrierungsversuch mit Ihrer E-Mail-Adresse");
    assert!(mails[1].body.contains("reset-password?token="));
    assert!(
        !mails[1].body.contains("Mallory"),
        "nothing of the attempt's data is passed on"
    );
}

async fn login_failures_slow_down_and_reset(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    // Failures count per UTC day and the test spends about an hour of clock time: start it in the morning of the
    // next day, so that it never runs over midnight whenever it runs.
    let today = amtsweg_kernel::Clock::now(app.clock.as_ref()).start_of_day();
    app.clock.set(today + Duration::days(1) + Duration::hours(8));
    let citizen = app.citizen("paul@example.de").await;
    let wrong = "falsches passwort mit länge";

    // Three failures — one of them through a case variant of the address — bring a 3 s delay.
    for email in ["paul@example.de", "PAUL@example.de", "Paul@Example.De"] {
        let failed = app.login(email, wrong, None).await;
        assert_eq!(problem_code(failed).await, "login_failed");
        app.clock.advance(Duration::seconds(1));
    }
    let during_delay = app.login(&citizen.email, STRONG_PASSWORD, None).await;
    assert_eq!(
        during_delay.status(),
        StatusCode::UNAUTHORIZED,
        "the right password during a delay fails too"
    );
    assert_eq!(
        problem_code(during_delay).await,
        "login_failed",
        "with the same generic error"
    );
    app.clock.advance(Duration::seconds(3));
    assert_eq!(
        app.login(&citizen.email, STRONG_PASSWORD, None).await.status(),
        StatusCode::OK,
        "the delay ends"
    );

    // A wrong TOTP code counts as a failure as well.
    let citizen = app.with_totp(citizen).await;
    let secret = citizen.totp_secret.clone().unwrap();
    let bad_code = app.login(&citizen.email, STRONG_PASSWORD, Some("000000")).await;
    assert_eq!(problem_code(bad_code).await, "totp_invalid");
    let blocked = app
        .login(&citizen.email, STRONG_PASSWORD, Some(&app.totp(&secret)))
        .await;
    assert_eq!(
        problem_code(blocked).await,
        "login_failed",
        "delayed after the wrong code"
    );
    app.next_totp_step();
    assert_eq!(
        app.login(&citizen.email, STRONG_PASSWORD, Some(&app.totp(&secret)))
            .await
            .status(),
        StatusCode::OK
    );

    // A used code cannot be replayed.
    let replay = app
        .login(&citizen.email, STRONG_PASSWORD, Some(&app.totp(&secret)))
        .await;
    assert_eq!(problem_code(replay).await, "totp_invalid");
    app.clock.advance(Duration::seconds(2));

    // 100 failures in a row, each after the delay of the one before: then locked until the next UTC day.
    let mut attempts = 0;
    let started = amtsweg_kernel::Clock::now(app.clock.as_ref());
    let mut failures_in_first_hour = 0;
    while attempts < 100 {
        let response = app.login(&citizen.email, wrong, None).await;
        assert_eq!(problem_code(response).await, "login_failed");
        attempts += 1;
        if amtsweg_kernel::Clock::now(app.clock.as_ref()) - started < Duration::hours(1) {
            failures_in_first_hour += 1;
        }
        let delay = match attempts {
            1..=2 => 1,
            3..=8 => 3,
            9..=24 => 5,
            _ => 10,
        };
        app.clock.advance(Duration::seconds(delay));
    }
    assert!(failures_in_first_hour <= 100);
    app.clock.advance(Duration::minutes(30));
    app.next_totp_step();
    let locked = app
        .login(&citizen.email, STRONG_PASSWORD, Some(&app.totp(&secret)))
        .await;
    assert_eq!(
        problem_code(locked).await,
        "login_failed",
        "locked for the rest of the day"
    );
    let now = amtsweg_kernel::Clock::now(app.clock.as_ref());
    let tomorrow = now.start_of_day() + Duration::days(1) + Duration::seconds(1);
    app.clock.set(tomorrow);
    let unlocked = app
        .login(&citizen.email, STRONG_PASSWORD, Some(&app.totp(&secret)))
        .await;
    assert_eq!(unlocked.status(), StatusCode::OK, "no permanent lock-out");
    let tokens: Tokens = unlocked.json().await.unwrap();

    let events = body(
        app.get_as("/api/v1/me/security-events?limit=5", &tokens.access_token)
            .await,
    )
    .await;
    assert_eq!(events["items"].as_array().unwrap().len(), 5);
    assert!(events["next_cursor"].is_string());
}

async fn each_address_is_rate_limited(backend: Backend) {
    let app = TestApp::builder(backend)
        .configure(|s| s.account.auth_requests_per_minute = 5)
        .spawn()
        .await
        .unwrap();
    for _ in 0..5 {
        assert_eq!(
            app.login("x@example.de", "irgendein passwort", None)
                .await
                .status(),
            StatusCode::UNAUTHORIZED
        );
    }
    let limited = app.login("y@example.de", "irgendein passwort", None).await;
    assert_eq!(limited.status(), StatusCode::TOO_MANY_REQUESTS);
    assert!(limited.headers().contains_key("retry-after"));
    assert_eq!(problem_code(limited).await, "too_many_requests");
}

async fn profile_is_patched_and_validated(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let citizen = app.citizen("marie@example.de").await;
    let token = &citizen.tokens.access_token;
    let patched = app
        .patch_as(
            "/api/v1/me",
            token,
            &json!({"given_name": "Marie", "family_name": "Curie", "date_of_birth": "1967-11-07", "phone": "+49 341 123456",
                    "address": {"street": "Markt", "house_number": "1", "postal_code": "04109", "city": "Leipzig", "country": "DE"},
                    "preferred_language": "en"}),
        )
        .await;
    assert_eq!(patched.status(), StatusCode::OK);
    let profile = body(patched).await;
    assert_eq!(profile["address"]["city"], "Leipzig");
    assert_eq!(profile["preferred_language"], "en");
    let cleared = body(app.patch_as("/api/v1/me", token, &json!({"phone": null})).await).await;
    assert_eq!(cleared["phone"], Value::Null, "null clears");
    assert_eq!(cleared["given_name"], "Marie", "absent members stay");

    let invalid = app
        .patch_as(
            "/api/v1/me",
            token,
            &json!({"date_of_birth": "07.11.1967", "address": {"country": "Deutschland"}, "nickname": "x"}),
        )
        .await;
    assert_eq!(invalid.status(), StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(body(invalid).await["errors"][0]["pointer"], "/nickname");
    let invalid = app
        .patch_as(
            "/api/v1/me",
            token,
            &json!({"preferred_language": 7, "date_of_birth": "07.11.1967", "address": {"country": "Deutschland"}}),
        )
        .await;
    let pointers: Vec<String> = body(invalid).await["errors"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["pointer"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(
        pointers,
        ["/preferred_language", "/date_of_birth", "/address/country"],
        "a member of the wrong type is reported with the others, not alone"
    );
    let cleared_language = app
        .patch_as("/api/v1/me", token, &json!({"preferred_language": null}))
        .await;
    assert_eq!(
        cleared_language.status(),
        StatusCode::UNPROCESSABLE_ENTITY,
        "the language cannot be cleared"
    );
    let unchanged = body(app.get_as("/api/v1/me", token).await).await;
    assert_eq!(unchanged["preferred_language"], "en");

    // Consents: list, grant, validate, revoke (the record stays).
    let bad = app
        .post_as("/api/v1/me/consents", token, &json!({"recipient": {"kind": "procedure", "id": "reisepass"}, "attributes": ["given_name", "shoe_size"]}))
        .await;
    assert_eq!(bad.status(), StatusCode::UNPROCESSABLE_ENTITY);
    let pointers: Vec<String> = body(bad).await["errors"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["pointer"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(pointers, ["/recipient/id", "/attributes/1"]);
    // An authority may use the data for any of its procedures: the most demanding one (the building permit, in
    // written form) sets the level. A procedure asks for its own.
    let to_authority =
        json!({"recipient": {"kind": "authority", "id": "14713000"}, "attributes": ["address"]});
    let too_weak = app.post_as("/api/v1/me/consents", token, &to_authority).await;
    assert_eq!(too_weak.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(body(too_weak).await["acr_values"], "high");
    let to_trade_office =
        json!({"recipient": {"kind": "procedure", "id": "gewerbeanmeldung"}, "attributes": ["address"]});
    let too_weak = app.post_as("/api/v1/me/consents", token, &to_trade_office).await;
    assert_eq!(body(too_weak).await["acr_values"], "substantial");
    let citizen = app.with_totp(citizen.clone()).await;
    let token = &citizen.tokens.access_token;
    let too_weak = app.post_as("/api/v1/me/consents", token, &to_authority).await;
    assert_eq!(body(too_weak).await["acr_values"], "high");
    let granted = app.post_as("/api/v1/me/consents", token, &to_trade_office).await;
    assert_eq!(granted.status(), StatusCode::CREATED);
    let id = body(granted).await["id"].as_str().unwrap().to_owned();
    let revoked = body(app.delete_as(&format!("/api/v1/me/consents/{id}"), token).await).await;
    assert!(revoked["revoked_at"].is_string());
    let list = body(app.get_as("/api/v1/me/consents", token).await).await;
    assert_eq!(list["items"].as_array().unwrap().len(), 1);
    assert!(list["items"][0]["revoked_at"].is_string());
}

/// Runs the inactivity job as the administrator; returns its report.
/// Runs the inactivity schedule now as the administrator; returns the finished job.
async fn flag_inactive(app: &TestApp, admin: &Tokens) -> Value {
    let response = app
        .post_as(
            "/api/v1/admin/schedules/flag-inactive-accounts/run",
            &admin.access_token,
            &json!({}),
        )
        .await;
    assert_eq!(response.status(), StatusCode::OK);
    body(response).await
}

async fn unused_accounts_are_flagged_after_two_years(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let citizen = app.citizen("alt@example.de").await;
    let admin = app.admin().await;
    let run = flag_inactive(&app, &admin).await;
    assert_eq!(run["status"], "succeeded");
    assert_eq!(run["result"]["flagged"], 0);

    // Two years later the daily schedule flags the account by itself and tells its owner.
    app.clock.advance(Duration::days(731));
    let notices = app.mails_to(&citizen.email, 2).await;
    assert_eq!(notices[1].subject, "Ihr Bürgerkonto wird bald gelöscht");
    let admin = app.admin().await;
    let again = flag_inactive(&app, &admin).await;
    assert_eq!(again["result"]["flagged"], 0, "flagged once");

    // Logging in keeps the account.
    let tokens: Tokens = app
        .login(&citizen.email, STRONG_PASSWORD, None)
        .await
        .json()
        .await
        .unwrap();
    let me = body(app.get_as("/api/v1/me", &tokens.access_token).await).await;
    assert!(me.get("deletion_flagged_at").is_none(), "{me}");
}

backend_tests!(
    citizen_life_cycle,
    refresh_token_reuse_ends_the_session,
    password_reset_by_mail,
    registration_does_not_reveal_existing_accounts,
    login_failures_slow_down_and_reset,
    each_address_is_rate_limited,
    profile_is_patched_and_validated,
    unused_accounts_are_flagged_after_two_years,
    a_login_storm_is_answered_not_piled_up,
    sensitive_changes_need_a_recent_login,
);

async fn a_login_storm_is_answered_not_piled_up(backend: Backend) {
    let app = TestApp::builder(backend)
        .configure(|s| s.account.hash_queue_timeout_ms = 100)
        .spawn()
        .await
        .unwrap();
    let citizen = app.citizen("ansturm@example.de").await;
    let attempts = (0..48).map(|_| app.login(&citizen.email, STRONG_PASSWORD, None));
    let responses = futures_util::future::join_all(attempts).await;
    let ok = responses.iter().filter(|r| r.status() == StatusCode::OK).count();
    let busy: Vec<&reqwest::Response> = responses
        .iter()
        .filter(|r| r.status() == StatusCode::SERVICE_UNAVAILABLE)
        .collect();
    assert_eq!(
        ok + busy.len(),
        48,
        "every login is answered: logged in or told to retry"
    );
    assert!(ok >= 1, "hashing slots keep working");
    assert!(!busy.is_empty(), "excess logins are refused instead of queued");
    assert_eq!(busy[0].headers()["retry-after"], "1");
}

async fn sensitive_changes_need_a_recent_login(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let citizen = app.with_totp(app.citizen("umzug@example.de").await).await;
    let secret = citizen.totp_secret.clone().unwrap();
    app.clock.advance(Duration::minutes(11));
    let tokens: Tokens = app.refresh(&citizen.tokens.refresh_token).await;

    // Both changing the address and switching off 2FA want a fresh authentication.
    for (method, path) in [("POST", "/api/v1/me/email"), ("DELETE", "/api/v1/me/totp")] {
        let response = match method {
            "POST" => {
                app.post_as(path, &tokens.access_token, &json!({"email": "neu@example.de"}))
                    .await
            }
            _ => app.delete_as(path, &tokens.access_token).await,
        };
        assert_eq!(response.status(), StatusCode::UNAUTHORIZED, "{path}");
        assert_eq!(body(response).await["max_age"], 600, "{path}");
    }
    let fresh: Tokens = app
        .post_as(
            "/api/v1/auth/reauthenticate",
            &tokens.access_token,
            &json!({"password": STRONG_PASSWORD, "totp_code": app.totp(&secret)}),
        )
        .await
        .json()
        .await
        .unwrap();
    app.next_totp_step();

    // The new address is confirmed from its own mailbox; the old one hears about it.
    let requested = app
        .post_as(
            "/api/v1/me/email",
            &fresh.access_token,
            &json!({"email": "Neu@Example.de"}),
        )
        .await;
    assert_eq!(requested.status(), StatusCode::ACCEPTED);
    let code = app.mails_to("Neu@Example.de", 1).await.remove(0).token();
    assert!(
        app.mails_to(&citizen.email, 3)
            .await
            .iter()
            .any(|m| m.body.contains("neue E-Mail-Adresse"))
    );
    let wrong = app
        .post_as(
            "/api/v1/me/email/confirm",
            &fresh.access_token,
            &json!({"token": "falsch"}),
        )
        .await;
    assert_eq!(wrong.status(), StatusCode::BAD_REQUEST);
    let confirmed = body(
        app.post_as(
            "/api/v1/me/email/confirm",
            &fresh.access_token,
            &json!({"token": code}),
        )
        .await,
    )
    .await;
    assert_eq!(confirmed["email"], "Neu@Example.de");
    assert_eq!(
        app.login("neu@example.de", STRONG_PASSWORD, Some(&app.totp(&secret)))
            .await
            .status(),
        StatusCode::OK
    );
    app.next_totp_step();

    // Switching 2FA off: logins need only the password again.
    assert_eq!(
        app.delete_as("/api/v1/me/totp", &fresh.access_token)
            .await
            .status(),
        StatusCode::NO_CONTENT
    );
    let plain: Tokens = app
        .login("neu@example.de", STRONG_PASSWORD, None)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(plain.acr, "basic");
    let again = app.delete_as("/api/v1/me/totp", &fresh.access_token).await;
    assert_eq!(again.status(), StatusCode::CONFLICT);
}
