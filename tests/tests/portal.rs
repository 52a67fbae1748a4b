//! The citizen portal's public catalogue: search by words and office, a procedure's page, German by default and
//! English by choice or `Accept-Language`, strict security headers, an embedded stylesheet with cache headers.

use amtsweg_test_support::{Backend, STRONG_PASSWORD, TestApp, backend_tests};
use reqwest::StatusCode;

async fn page(
    app: &TestApp,
    path: &str,
    language: Option<&str>,
) -> (StatusCode, reqwest::header::HeaderMap, String) {
    let mut request = app.client.get(app.url(path));
    if let Some(language) = language {
        request = request.header("accept-language", language);
    }
    let response = request.send().await.unwrap();
    let (status, headers) = (response.status(), response.headers().clone());
    (status, headers, response.text().await.unwrap())
}

async fn the_catalogue_is_searchable_and_each_procedure_has_its_page(backend: Backend) {
    let app = TestApp::spawn(backend).await;

    let (status, headers, html) = page(&app, "/", None).await;
    assert_eq!(status, StatusCode::OK);
    assert!(headers["content-type"].to_str().unwrap().starts_with("text/html"));
    let csp = headers["content-security-policy"].to_str().unwrap();
    assert!(
        csp.contains("script-src 'self'") && !csp.contains("unsafe-inline"),
        "{csp}"
    );
    assert!(html.contains(r#"<html lang="de">"#));
    assert!(html.contains(r##"<a class="skip" href="#content">Zum Inhalt springen</a>"##));
    assert!(
        html.contains("Gewerbe anmelden") && html.contains("/leistungen/hundesteuer-anmeldung"),
        "{html}"
    );
    assert!(html.contains(r#"<label for="q">Suchbegriffe</label>"#));

    // Words narrow the list; an office too.
    let (_, _, found) = page(&app, "/?q=gewerbe", None).await;
    assert!(found.contains("Gewerbe anmelden") && !found.contains("/leistungen/hundesteuer-anmeldung"));
    assert!(found.contains("1 Leistung gefunden"));
    let (_, _, none) = page(&app, "/?q=zzzz", None).await;
    assert!(none.contains("Keine Leistung gefunden"));
    let (_, _, by_office) = page(&app, "/?unit=ordnungsamt", None).await;
    assert!(
        by_office.contains("Gewerbe anmelden") && !by_office.contains("/leistungen/hundesteuer-anmeldung")
    );
    // What is typed comes back escaped.
    let (_, _, escaped) = page(&app, "/?q=%3Cscript%3Ealert(1)%3C/script%3E", None).await;
    assert!(!escaped.contains("<script>alert(1)</script>") && escaped.contains("&lt;script&gt;"));

    // A procedure's page: documents, fees, trust level, processing time.
    let (status, _, dog) = page(&app, "/leistungen/hundesteuer-anmeldung", None).await;
    assert_eq!(status, StatusCode::OK);
    assert!(
        dog.contains("Nachweis der Hundehaftpflichtversicherung (freiwillig)"),
        "{dog}"
    );
    assert!(dog.contains("21 Tage") && dog.contains("Gebührenfrei."));
    let (_, _, business) = page(&app, "/leistungen/gewerbeanmeldung", None).await;
    assert!(business.contains("substanziell"), "{business}");
    let (status, _, missing) = page(&app, "/leistungen/gibt-es-nicht", None).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert!(missing.contains("Seite nicht gefunden"), "{missing}");

    // English by Accept-Language, or chosen (and remembered).
    let (_, headers, english) = page(&app, "/leistungen/hundesteuer-anmeldung", Some("en-GB,en;q=0.8")).await;
    assert_eq!(headers["content-language"], "en");
    assert!(
        english.contains(r#"<html lang="en">"#) && english.contains("21 days"),
        "{english}"
    );
    let (_, headers, chosen) = page(&app, "/?lang=en", None).await;
    assert!(chosen.contains("Find a service"));
    assert!(headers["set-cookie"].to_str().unwrap().starts_with("lang=en"));

    // The stylesheet is embedded and cached.
    let css = app.get("/assets/portal.css").await;
    assert_eq!(css.status(), StatusCode::OK);
    assert_eq!(css.headers()["cache-control"], "public, max-age=86400");
    assert!(css.text().await.unwrap().contains(":focus"));
}

/// A browser: keeps cookies, does not follow redirects (each step is looked at).
fn browser() -> reqwest::Client {
    reqwest::Client::builder()
        .cookie_store(true)
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap()
}

/// The CSRF token of the first form on a page.
fn csrf_of(html: &str) -> String {
    let marker = r#"name="csrf" value=""#;
    let start = html.find(marker).expect("a form with a CSRF token") + marker.len();
    html[start..].split('"').next().unwrap().to_owned()
}

async fn html(client: &reqwest::Client, app: &TestApp, path: &str) -> (StatusCode, String) {
    let response = client.get(app.url(path)).send().await.unwrap();
    (response.status(), response.text().await.unwrap())
}

async fn post_form(
    client: &reqwest::Client,
    app: &TestApp,
    path: &str,
    form: &[(&str, &str)],
) -> reqwest::Response {
    client.post(app.url(path)).form(form).send().await.unwrap()
}

/// Logs a citizen in through the portal's form; answers the browser and its session cookie (`name=value`).
async fn portal_login(app: &TestApp, email: &str) -> (reqwest::Client, String) {
    let client = browser();
    let (_, page) = html(&client, app, "/login").await;
    let csrf = csrf_of(&page);
    let response = post_form(
        &client,
        app,
        "/login",
        &[
            ("csrf", &csrf),
            ("email", email),
            ("password", STRONG_PASSWORD),
            ("next", "/antraege"),
        ],
    )
    .await;
    assert_eq!(response.status(), StatusCode::SEE_OTHER);
    assert_eq!(response.headers()["location"], "/antraege");
    let cookie = response
        .headers()
        .get_all("set-cookie")
        .iter()
        .map(|v| v.to_str().unwrap().to_owned())
        .find(|c| c.starts_with("amtsweg_session="))
        .expect("a session cookie");
    assert!(
        cookie.contains("HttpOnly") && cookie.contains("SameSite=Lax"),
        "{cookie}"
    );
    (client, cookie.split(';').next().unwrap().to_owned())
}

async fn forms_need_their_token_and_a_logged_out_session_is_refused(backend: Backend) {
    let app = TestApp::builder(backend).with_smtp().spawn().await.unwrap();
    let citizen = app.citizen("csrf@example.de").await;

    // Without a token, or with a wrong one, a login form is refused.
    let stranger = browser();
    let (_, login) = html(&stranger, &app, "/login").await;
    let csrf = csrf_of(&login);
    for token in ["", "0000", "deadbeef"] {
        let refused = post_form(
            &stranger,
            &app,
            "/login",
            &[
                ("csrf", token),
                ("email", "csrf@example.de"),
                ("password", STRONG_PASSWORD),
            ],
        )
        .await;
        assert_eq!(refused.status(), StatusCode::FORBIDDEN, "token {token:?}");
        assert!(refused.text().await.unwrap().contains("Formular abgelaufen"));
    }
    // A token from another browser does not fit this one's cookie.
    let other = browser();
    let refused = post_form(
        &other,
        &app,
        "/login",
        &[
            ("csrf", &csrf),
            ("email", "csrf@example.de"),
            ("password", STRONG_PASSWORD),
        ],
    )
    .await;
    assert_eq!(refused.status(), StatusCode::FORBIDDEN);

    let (client, cookie) = portal_login(&app, &citizen.email).await;
    let (status, mine) = html(&client, &app, "/antraege").await;
    assert_eq!(status, StatusCode::OK);
    let session_csrf = csrf_of(&mine);
    assert_ne!(session_csrf, csrf, "a login brings a new CSRF token");
    let personal = client.get(app.url("/konto")).send().await.unwrap();
    assert_eq!(
        personal.headers()["cache-control"],
        "no-store",
        "personal pages are never cached"
    );

    // Starting an application with a wrong token changes nothing.
    let refused = post_form(
        &client,
        &app,
        "/leistungen/hundesteuer-anmeldung/antrag",
        &[("csrf", "x")],
    )
    .await;
    assert_eq!(refused.status(), StatusCode::FORBIDDEN);
    let drafts = app
        .get_as("/api/v1/applications", &citizen.tokens.access_token)
        .await;
    assert_eq!(
        drafts.json::<serde_json::Value>().await.unwrap()["items"],
        serde_json::json!([])
    );
    // A multipart form is refused before any file is taken.
    let form = "--B\r\nContent-Disposition: form-data; name=\"csrf\"\r\n\r\nwrong\r\n\
                --B\r\nContent-Disposition: form-data; name=\"file\"; filename=\"a.pdf\"\r\n\
                Content-Type: application/pdf\r\n\r\n%PDF-1.7\r\n--B--\r\n";
    let refused = client
        .post(app.url("/antraege/nope/unterlagen"))
        .header("content-type", "multipart/form-data; boundary=B")
        .body(form)
        .send()
        .await
        .unwrap();
    assert_eq!(refused.status(), StatusCode::FORBIDDEN);

    // Logging out without the token does not log out.
    let refused = post_form(&client, &app, "/logout", &[("csrf", "")]).await;
    assert_eq!(refused.status(), StatusCode::FORBIDDEN);
    assert_eq!(html(&client, &app, "/antraege").await.0, StatusCode::OK);

    // The cookie of a logged-out session is refused, also when presented again later.
    let logged_out = post_form(&client, &app, "/logout", &[("csrf", &session_csrf)]).await;
    assert_eq!(logged_out.status(), StatusCode::OK);
    let replayed = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap()
        .get(app.url("/antraege"))
        .header("cookie", &cookie)
        .send()
        .await
        .unwrap();
    assert_eq!(replayed.status(), StatusCode::SEE_OTHER);
    assert!(
        replayed.headers()["location"]
            .to_str()
            .unwrap()
            .starts_with("/login")
    );

    // Ending the account session elsewhere (the API's logout) ends the browser session too.
    let (second, _) = portal_login(&app, &citizen.email).await;
    assert_eq!(html(&second, &app, "/antraege").await.0, StatusCode::OK);
    let tokens = app.login(&citizen.email, STRONG_PASSWORD, None).await;
    let tokens: serde_json::Value = tokens.json().await.unwrap();
    let token = tokens["access_token"].as_str().unwrap();
    let password = app
        .post_as(
            "/api/v1/me/password",
            token,
            &serde_json::json!({"current_password": STRONG_PASSWORD, "new_password": "Ein ganz anderes Passwort 2026"}),
        )
        .await;
    assert!(password.status().is_success(), "{}", password.status());
    assert_eq!(
        html(&second, &app, "/antraege").await.0,
        StatusCode::SEE_OTHER,
        "a password change ends the other sessions, in the browser too"
    );
}

async fn mail_links_show_a_form_and_use_their_token_only_when_posted(backend: Backend) {
    let app = TestApp::builder(backend).with_smtp().spawn().await.unwrap();
    let registered = app
        .register("link@example.de", STRONG_PASSWORD, "Lena Link")
        .await;
    assert_eq!(registered.status(), StatusCode::ACCEPTED);
    let token = app.mails_to("link@example.de", 1).await.remove(0).token();

    // A mail scanner opening the link uses nothing up.
    let client = browser();
    for _ in 0..2 {
        let (status, page) = html(&client, &app, &format!("/verify-email?token={token}")).await;
        assert_eq!(status, StatusCode::OK);
        assert!(page.contains(&format!(r#"value="{token}""#)), "{page}");
    }
    let pending = app.login("link@example.de", STRONG_PASSWORD, None).await;
    assert_eq!(pending.status(), StatusCode::FORBIDDEN, "still not verified");
    let (_, page) = html(&client, &app, &format!("/verify-email?token={token}")).await;
    let csrf = csrf_of(&page);
    let verified = post_form(
        &client,
        &app,
        "/verify-email",
        &[("csrf", &csrf), ("token", &token)],
    )
    .await;
    assert_eq!(verified.status(), StatusCode::OK);
    assert!(
        verified
            .text()
            .await
            .unwrap()
            .contains("E-Mail-Adresse bestätigt")
    );
    let again = post_form(
        &client,
        &app,
        "/verify-email",
        &[("csrf", &csrf), ("token", &token)],
    )
    .await;
    assert_eq!(
        again.status(),
        StatusCode::UNPROCESSABLE_ENTITY,
        "a used code is refused"
    );
    assert!(again.text().await.unwrap().contains("error-summary"));

    // The forgotten password: the link's GET shows the form, the POST sets the password.
    let (_, page) = html(&client, &app, "/passwort-vergessen").await;
    let asked = post_form(
        &client,
        &app,
        "/passwort-vergessen",
        &[("csrf", &csrf_of(&page)), ("email", "link@example.de")],
    )
    .await;
    assert_eq!(asked.status(), StatusCode::OK);
    let mail = app.mails_to("link@example.de", 2).await.remove(1);
    assert!(mail.body.contains("/reset-password?token="), "{}", mail.body);
    let reset = mail.token();
    let (status, page) = html(&client, &app, &format!("/reset-password?token={reset}")).await;
    assert_eq!(status, StatusCode::OK);
    let weak = post_form(
        &client,
        &app,
        "/reset-password",
        &[
            ("csrf", &csrf_of(&page)),
            ("token", &reset),
            ("new_password", "kurz"),
        ],
    )
    .await;
    assert_eq!(weak.status(), StatusCode::UNPROCESSABLE_ENTITY);
    let done = post_form(
        &client,
        &app,
        "/reset-password",
        &[
            ("csrf", &csrf_of(&page)),
            ("token", &reset),
            ("new_password", "Ein neues langes Passwort 2026"),
        ],
    )
    .await;
    assert_eq!(done.status(), StatusCode::OK);
    let login = app
        .login("link@example.de", "Ein neues langes Passwort 2026", None)
        .await;
    assert_eq!(login.status(), StatusCode::OK);
}

async fn a_stranger_sees_nothing_of_anothers_application(backend: Backend) {
    let app = TestApp::builder(backend).with_smtp().spawn().await.unwrap();
    let owner = app.citizen("eigen@example.de").await;
    let id = app.submit_dog(&owner.tokens.access_token, 7).await;
    let stranger = app.citizen("fremd@example.de").await;
    let (client, _) = portal_login(&app, &stranger.email).await;
    let (_, page) = html(&client, &app, "/antraege").await;
    let csrf = csrf_of(&page);
    for path in [
        format!("/antraege/{id}"),
        format!("/antraege/{id}/pruefen"),
        format!("/antraege/{id}/quittung"),
    ] {
        let (status, page) = html(&client, &app, &path).await;
        assert_eq!(status, StatusCode::NOT_FOUND, "{path}");
        assert!(!page.contains("steueramt-"), "no case number leaks: {path}");
    }
    let withdraw = post_form(
        &client,
        &app,
        &format!("/antraege/{id}/zurueckziehen"),
        &[("csrf", &csrf), ("confirm", "yes")],
    )
    .await;
    assert_eq!(withdraw.status(), StatusCode::NOT_FOUND);
    let (_, mine) = html(&client, &app, &format!("/antraege/{id}")).await;
    assert!(!mine.contains("Hundesteuer"), "{mine}");
    let owners = app
        .get_as(&format!("/api/v1/applications/{id}"), &owner.tokens.access_token)
        .await;
    let owners: serde_json::Value = owners.json().await.unwrap();
    assert_eq!(owners["status"], "submitted", "untouched");
}

async fn sensitive_pages_ask_for_a_fresh_login_and_idle_sessions_end(backend: Backend) {
    let app = TestApp::builder(backend).with_smtp().spawn().await.unwrap();
    let citizen = app.citizen("frisch@example.de").await;
    let (client, _) = portal_login(&app, &citizen.email).await;
    let export = client.get(app.url("/konto/export")).send().await.unwrap();
    assert_eq!(export.status(), StatusCode::OK, "right after the login");
    assert!(
        export.headers()["content-disposition"]
            .to_str()
            .unwrap()
            .contains("attachment")
    );

    app.clock.advance(chrono::Duration::minutes(11));
    let stale = client.get(app.url("/konto/export")).send().await.unwrap();
    assert_eq!(stale.status(), StatusCode::SEE_OTHER);
    let location = stale.headers()["location"].to_str().unwrap().to_owned();
    assert_eq!(location, "/anmeldung-bestaetigen?next=%2Fkonto%2Fexport");
    let (_, page) = html(&client, &app, &location).await;
    let wrong = post_form(
        &client,
        &app,
        "/anmeldung-bestaetigen",
        &[
            ("csrf", &csrf_of(&page)),
            ("password", "falsch falsch falsch"),
            ("next", "/konto/export"),
        ],
    )
    .await;
    assert_eq!(wrong.status(), StatusCode::UNPROCESSABLE_ENTITY);
    // A wrong password slows the next attempt down by a second, like a login.
    app.clock.advance(chrono::Duration::seconds(2));
    let confirmed = post_form(
        &client,
        &app,
        "/anmeldung-bestaetigen",
        &[
            ("csrf", &csrf_of(&page)),
            ("password", STRONG_PASSWORD),
            ("next", "/konto/export"),
        ],
    )
    .await;
    assert_eq!(confirmed.status(), StatusCode::SEE_OTHER);
    assert_eq!(confirmed.headers()["location"], "/konto/export");
    let export = client.get(app.url("/konto/export")).send().await.unwrap();
    assert_eq!(export.status(), StatusCode::OK);
    let data: serde_json::Value = export.json().await.unwrap();
    assert!(data.to_string().contains("frisch@example.de"));

    // Half an hour without a request ends the browser session.
    app.clock.advance(chrono::Duration::minutes(31));
    let idle = client.get(app.url("/antraege")).send().await.unwrap();
    assert_eq!(idle.status(), StatusCode::SEE_OTHER);
    assert!(idle.headers()["location"].to_str().unwrap().starts_with("/login"));
}

async fn barriers_can_be_reported(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let client = browser();
    let (status, page) = html(&client, &app, "/barrierefreiheit").await;
    assert_eq!(status, StatusCode::OK);
    assert!(page.contains("BITV 2.0"));
    let csrf = csrf_of(&page);
    let empty = post_form(
        &client,
        &app,
        "/barrierefreiheit",
        &[("csrf", &csrf), ("message", "  ")],
    )
    .await;
    assert_eq!(empty.status(), StatusCode::UNPROCESSABLE_ENTITY);
    assert!(empty.text().await.unwrap().contains(r##"<a href="#message">"##));
    let sent = post_form(
        &client,
        &app,
        "/barrierefreiheit",
        &[
            ("csrf", &csrf),
            ("page", "/antraege"),
            ("message", "Der Kontrast der Tabellenköpfe ist zu gering."),
            ("contact", "melder@example.de"),
        ],
    )
    .await;
    assert_eq!(sent.status(), StatusCode::OK);
    #[derive(diesel::QueryableByName)]
    struct Count {
        #[diesel(sql_type = diesel::sql_types::BigInt)]
        n: i64,
    }
    use diesel::RunQueryDsl;
    let mut conn = app.connect();
    let stored =
        diesel::sql_query("SELECT COUNT(*) AS n FROM portal_feedback WHERE contact = 'melder@example.de'")
            .get_result::<Count>(&mut conn)
            .unwrap();
    assert_eq!(stored.n, 1);
    let audited = diesel::sql_query(
        "SELECT COUNT(*) AS n FROM audit_log WHERE action = 'portal.accessibility_feedback'",
    )
    .get_result::<Count>(&mut conn)
    .unwrap();
    assert_eq!(audited.n, 1);
    let (status, easy) = html(&client, &app, "/leichte-sprache").await;
    assert_eq!(status, StatusCode::OK);
    assert!(easy.contains("Akten-Zeichen"));
}

/// The text between `start` and the next `end` on a page.
fn between<'a>(html: &'a str, start: &str, end: &str) -> &'a str {
    let from = html
        .find(start)
        .unwrap_or_else(|| panic!("{start} on the page: {html}"))
        + start.len();
    let rest = &html[from..];
    &rest[..rest.find(end).unwrap()]
}

async fn two_factor_is_set_up_in_the_portal_and_the_account_deleted(backend: Backend) {
    let app = TestApp::builder(backend).with_smtp().spawn().await.unwrap();
    let citizen = app.citizen("zwei@example.de").await;
    let (client, _) = portal_login(&app, &citizen.email).await;
    let (_, account) = html(&client, &app, "/konto").await;
    let csrf = csrf_of(&account);
    let started = post_form(&client, &app, "/konto/zwei-faktor", &[("csrf", &csrf)]).await;
    assert_eq!(started.status(), StatusCode::OK);
    let page = started.text().await.unwrap();
    assert!(page.contains(r#"<img src="data:image"#), "the QR code: {page}");
    let secret = between(&page, "<code>", "</code>").to_owned();
    let wrong = post_form(
        &client,
        &app,
        "/konto/zwei-faktor/bestaetigen",
        &[("csrf", &csrf), ("code", "000000")],
    )
    .await;
    assert_eq!(wrong.status(), StatusCode::UNPROCESSABLE_ENTITY);
    app.clock.advance(chrono::Duration::seconds(2));
    // A wrong code leaves the enrolment open: the right one still completes it.
    let confirmed = post_form(
        &client,
        &app,
        "/konto/zwei-faktor/bestaetigen",
        &[("csrf", &csrf), ("code", &app.totp(&secret))],
    )
    .await;
    assert_eq!(confirmed.status(), StatusCode::OK);
    let page = confirmed.text().await.unwrap();
    assert!(
        page.contains(r#"<ul class="codes">"#) && page.matches("<li><code>").count() >= 8,
        "{page}"
    );
    app.next_totp_step();

    // From now on the portal's login wants the code.
    let other = browser();
    let (_, login) = html(&other, &app, "/login").await;
    let login_csrf = csrf_of(&login);
    let without = post_form(
        &other,
        &app,
        "/login",
        &[
            ("csrf", &login_csrf),
            ("email", &citizen.email),
            ("password", STRONG_PASSWORD),
        ],
    )
    .await;
    assert_eq!(without.status(), StatusCode::UNPROCESSABLE_ENTITY);
    assert!(
        without
            .text()
            .await
            .unwrap()
            .contains(r##"<a href="#totp_code">"##)
    );
    let with = post_form(
        &other,
        &app,
        "/login",
        &[
            ("csrf", &login_csrf),
            ("email", &citizen.email),
            ("password", STRONG_PASSWORD),
            ("totp_code", &app.totp(&secret)),
        ],
    )
    .await;
    assert_eq!(with.status(), StatusCode::SEE_OTHER);
    let (_, account) = html(&other, &app, "/konto").await;
    assert!(account.contains("substanziell"), "the session's level: {account}");

    // Deleting needs the tick box, then deletes and ends the session.
    let csrf = csrf_of(&account);
    let unconfirmed = post_form(&other, &app, "/konto/loeschen", &[("csrf", &csrf)]).await;
    assert_eq!(unconfirmed.status(), StatusCode::SEE_OTHER);
    let deleted = post_form(
        &other,
        &app,
        "/konto/loeschen",
        &[("csrf", &csrf), ("confirm", "yes")],
    )
    .await;
    assert_eq!(deleted.status(), StatusCode::OK);
    assert!(deleted.text().await.unwrap().contains("Konto gelöscht"));
    assert_eq!(html(&other, &app, "/konto").await.0, StatusCode::SEE_OTHER);
    let gone = app
        .login(&citizen.email, STRONG_PASSWORD, Some(&app.totp(&secret)))
        .await;
    assert_ne!(gone.status(), StatusCode::OK);
}

async fn a_draft_is_prefilled_under_consent_and_an_application_withdrawn(backend: Backend) {
    let app = TestApp::builder(backend).with_smtp().spawn().await.unwrap();
    let citizen = app.citizen("vorab@example.de").await;
    let (client, _) = portal_login(&app, &citizen.email).await;
    let (_, account) = html(&client, &app, "/konto").await;
    let csrf = csrf_of(&account);
    let saved = post_form(
        &client,
        &app,
        "/konto/profil",
        &[
            ("csrf", &csrf),
            ("name", "Vera Vorab"),
            ("given_name", "Vera"),
            ("family_name", "Vorab"),
            ("date_of_birth", "1980-02-29"),
            ("street", ""),
            ("house_number", ""),
            ("postal_code", ""),
            ("city", ""),
            ("phone", ""),
            ("preferred_language", "de"),
        ],
    )
    .await;
    assert_eq!(saved.status(), StatusCode::SEE_OTHER);
    let (_, procedure) = html(&client, &app, "/leistungen/hundesteuer-anmeldung").await;
    assert!(
        procedure.contains("Vorname, Nachname") || procedure.contains("Geburtsdatum"),
        "{procedure}"
    );

    // Without the tick box nothing is taken from the profile; with it, a consent is recorded and used.
    let plain = post_form(
        &client,
        &app,
        "/leistungen/hundesteuer-anmeldung/antrag",
        &[("csrf", &csrf)],
    )
    .await;
    assert_eq!(plain.status(), StatusCode::SEE_OTHER);
    let (_, draft) = html(&client, &app, plain.headers()["location"].to_str().unwrap()).await;
    assert!(!draft.contains(r#"value="Vera""#), "no consent, no prefill");
    let prefilled = post_form(
        &client,
        &app,
        "/leistungen/hundesteuer-anmeldung/antrag",
        &[("csrf", &csrf), ("prefill", "yes")],
    )
    .await;
    let (_, draft) = html(&client, &app, prefilled.headers()["location"].to_str().unwrap()).await;
    assert!(
        draft.contains(r#"value="Vera""#) && draft.contains(r#"value="Vorab""#),
        "{draft}"
    );
    assert!(draft.contains("(aus Ihrem Konto übernommen)"));
    let (_, account) = html(&client, &app, "/konto").await;
    assert!(
        account.contains("hundesteuer-anmeldung"),
        "the consent is listed: {account}"
    );

    // A member of an organisation applies for it.
    let organisation: serde_json::Value = app
        .post_as(
            "/api/v1/organisations",
            &citizen.tokens.access_token,
            &serde_json::json!({"name": "Vorab Hundepension GmbH"}),
        )
        .await
        .json()
        .await
        .unwrap();
    let org_id = organisation["id"].as_str().unwrap();
    let (_, procedure) = html(&client, &app, "/leistungen/hundesteuer-anmeldung").await;
    assert!(procedure.contains("Vorab Hundepension GmbH"), "{procedure}");
    let for_org = post_form(
        &client,
        &app,
        "/leistungen/hundesteuer-anmeldung/antrag",
        &[("csrf", &csrf), ("on_behalf_of", org_id)],
    )
    .await;
    let draft_id = for_org.headers()["location"]
        .to_str()
        .unwrap()
        .rsplit('/')
        .next()
        .unwrap()
        .to_owned();
    let draft: serde_json::Value = app
        .get_as(
            &format!("/api/v1/applications/{draft_id}"),
            &citizen.tokens.access_token,
        )
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(draft["on_behalf_of"], org_id);

    // A submitted application is withdrawn only with the tick box.
    let id = app.submit_dog(&citizen.tokens.access_token, 9).await;
    let (_, page) = html(&client, &app, &format!("/antraege/{id}")).await;
    assert!(page.contains("steueramt-"), "{page}");
    let path = format!("/antraege/{id}/zurueckziehen");
    let unconfirmed = post_form(&client, &app, &path, &[("csrf", &csrf)]).await;
    assert_eq!(unconfirmed.status(), StatusCode::SEE_OTHER);
    let withdrawn = post_form(&client, &app, &path, &[("csrf", &csrf), ("confirm", "yes")]).await;
    assert_eq!(withdrawn.status(), StatusCode::SEE_OTHER);
    let (_, page) = html(&client, &app, withdrawn.headers()["location"].to_str().unwrap()).await;
    assert!(page.contains("Ihr Antrag ist zurückgezogen."), "{page}");
    assert!(
        !page.contains(&format!(r#"action="{path}""#)),
        "no withdrawal form any more"
    );
    let again = post_form(&client, &app, &path, &[("csrf", &csrf), ("confirm", "yes")]).await;
    assert_eq!(again.status(), StatusCode::CONFLICT, "not twice");
}

async fn the_eid_login_opens_a_browser_session(backend: Backend) {
    let provider = amtsweg_test_support::EidProvider::start();
    let settings = provider.settings();
    let app = TestApp::builder(backend)
        .configure(move |s| s.account.eid = Some(settings))
        .spawn()
        .await
        .unwrap();
    let client = browser();
    let (_, login) = html(&client, &app, "/login").await;
    assert!(
        login.contains("Mit Online-Ausweis anmelden"),
        "the eID button when configured"
    );
    let started = post_form(&client, &app, "/login/eid", &[("csrf", &csrf_of(&login))]).await;
    assert_eq!(started.status(), StatusCode::SEE_OTHER);
    let authorization = started.headers()["location"].to_str().unwrap().to_owned();
    let (code, state) = provider.authorize(&authorization, None).await;
    let callback = format!(
        "/login/eid/callback?{}",
        serde_urlencoded::to_string([("code", &code), ("state", &state)]).unwrap()
    );
    let back = client.get(app.url(&callback)).send().await.unwrap();
    assert_eq!(back.status(), StatusCode::SEE_OTHER);
    let (status, account) = html(&client, &app, "/konto").await;
    assert_eq!(status, StatusCode::OK);
    assert!(account.contains("hoch (Online-Ausweis)"), "{account}");
    // The code works once.
    let replayed = browser().get(app.url(&callback)).send().await.unwrap();
    assert_ne!(replayed.status(), StatusCode::SEE_OTHER);
}

async fn a_message_above_the_sessions_level_asks_to_step_up(backend: Backend) {
    let app = TestApp::builder(backend).with_smtp().spawn().await.unwrap();
    let admin = app.admin().await.access_token;
    let worker = app
        .staff_member(&admin, "post@stadt.example", &[("case_worker", "steueramt")])
        .await;
    let citizen = app.citizen("stufe@example.de").await;
    let id = app.submit_dog(&citizen.tokens.access_token, 11).await;
    let mut sent = Vec::new();
    for (subject, level) in [("Vertraulich", "high"), ("Eingangsbestätigung", "basic")] {
        let message = app
            .post_as(
                "/api/v1/staff/mailbox/messages",
                &worker,
                &serde_json::json!({
                    "application_id": id,
                    "subject": subject,
                    "body": format!("Nachricht auf Niveau {level}."),
                    "required_level": level,
                }),
            )
            .await;
        assert_eq!(message.status(), StatusCode::CREATED);
        let message: serde_json::Value = message.json().await.unwrap();
        sent.push(message["id"].as_str().unwrap().to_owned());
    }
    let (client, _) = portal_login(&app, &citizen.email).await;
    let (_, list) = html(&client, &app, "/postfach").await;
    assert!(
        list.contains("Vertraulich") && list.contains("Eingangsbestätigung"),
        "{list}"
    );
    let (status, basic) = html(&client, &app, &format!("/postfach/{}", sent[1])).await;
    assert_eq!(status, StatusCode::OK);
    assert!(basic.contains("Nachricht auf Niveau basic."));
    let high = client
        .get(app.url(&format!("/postfach/{}", sent[0])))
        .send()
        .await
        .unwrap();
    assert_eq!(high.status(), StatusCode::SEE_OTHER);
    let location = high.headers()["location"].to_str().unwrap().to_owned();
    assert_eq!(
        location,
        format!("/anmeldung-bestaetigen?next=%2Fpostfach%2F{}&level=high", sent[0])
    );
    let (_, step_up) = html(&client, &app, &location).await;
    assert!(step_up.contains("hoch (Online-Ausweis)"), "{step_up}");
    assert!(!step_up.contains("Nachricht auf Niveau high."));
}

/// Only this process's portal can name a browser's address to the API (the header needs a per-process secret).
async fn a_forged_forwarded_address_is_ignored(backend: Backend) {
    let app = TestApp::builder(backend).with_smtp().spawn().await.unwrap();
    let citizen = app.citizen("adresse@example.de").await;
    let forged = app
        .client
        .post(app.url("/api/v1/auth/login"))
        .header("amtsweg-forwarded-for", "0123456789abcdef 203.0.113.7")
        .json(&serde_json::json!({"email": citizen.email, "password": STRONG_PASSWORD}))
        .send()
        .await
        .unwrap();
    assert_eq!(forged.status(), StatusCode::OK);
    let events: serde_json::Value = app
        .get_as("/api/v1/me/security-events", &citizen.tokens.access_token)
        .await
        .json()
        .await
        .unwrap();
    let text = events.to_string();
    assert!(text.contains("127.0.0.1"), "{text}");
    assert!(
        !text.contains("203.0.113.7"),
        "the forged address is not taken: {text}"
    );
}

/// A double click, a reload and a third tab send the review page's key again: ten at once make one case number.
async fn ten_simultaneous_submits_from_one_review_page_make_one_case(backend: Backend) {
    let app = TestApp::builder(backend).with_smtp().spawn().await.unwrap();
    let citizen = app.citizen("zehn@example.de").await;
    let (client, _) = portal_login(&app, &citizen.email).await;
    let created = app
        .post_as(
            "/api/v1/applications",
            &citizen.tokens.access_token,
            &serde_json::json!({"procedure_id": "hundesteuer-anmeldung", "data": amtsweg_test_support::dog(5)}),
        )
        .await;
    let id = created.json::<serde_json::Value>().await.unwrap()["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let (status, review) = html(&client, &app, &format!("/antraege/{id}/pruefen")).await;
    assert_eq!(status, StatusCode::OK, "{review}");
    let csrf = csrf_of(&review);
    let key = between(&review, r#"name="key" value=""#, "\"").to_owned();
    let path = format!("/antraege/{id}/absenden");
    let form = [("csrf", csrf.as_str()), ("key", key.as_str())];
    let answers =
        futures_util::future::join_all((0..10).map(|_| post_form(&client, &app, &path, &form))).await;
    for answer in &answers {
        assert_eq!(
            answer.status(),
            StatusCode::SEE_OTHER,
            "every click ends on the application's page"
        );
    }
    let mine: serde_json::Value = app
        .get_as("/api/v1/applications", &citizen.tokens.access_token)
        .await
        .json()
        .await
        .unwrap();
    let numbers: Vec<&str> = mine["items"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|a| a["case_number"].as_str())
        .collect();
    assert_eq!(numbers.len(), 1, "{mine}");
}

backend_tests!(
    ten_simultaneous_submits_from_one_review_page_make_one_case,
    a_forged_forwarded_address_is_ignored,
    a_message_above_the_sessions_level_asks_to_step_up,
    a_draft_is_prefilled_under_consent_and_an_application_withdrawn,
    the_eid_login_opens_a_browser_session,
    two_factor_is_set_up_in_the_portal_and_the_account_deleted,
    the_catalogue_is_searchable_and_each_procedure_has_its_page,
    forms_need_their_token_and_a_logged_out_session_is_refused,
    mail_links_show_a_form_and_use_their_token_only_when_posted,
    a_stranger_sees_nothing_of_anothers_application,
    sensitive_pages_ask_for_a_fresh_login_and_idle_sessions_end,
    barriers_can_be_reported,
);
