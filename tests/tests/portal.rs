//! The citizen portal's public catalogue: search by words and office, a procedure's page, German by default and
//! English by choice or `Accept-Language`, strict security headers, an embedded stylesheet with cache headers.

use amtsweg_test_support::{Backend, TestApp, backend_tests};
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

backend_tests!(the_catalogue_is_searchable_and_each_procedure_has_its_page);
