//! How fast the portal's pages are, against the API call a page is built on, measured in the same run:
//! `cargo bench -p amtsweg-tests --bench portal` (SQLite; set AMTSWEG_TEST_POSTGRES_URL for PostgreSQL).
//! Aim: pages in a few milliseconds — a page adds its rendering and one loopback call to the API's own time.

use std::time::{Duration, Instant};

use amtsweg_test_support::{Backend, STRONG_PASSWORD, TestApp};
use reqwest::StatusCode;

const ROUNDS: usize = 400;

fn percentile(sorted: &[Duration], p: f64) -> f64 {
    #[allow(
        clippy::cast_possible_truncation,
        clippy::cast_sign_loss,
        clippy::cast_precision_loss,
        reason = "an index into a short list"
    )]
    let index = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[index].as_secs_f64() * 1000.0
}

async fn measure(label: &str, request: impl Fn() -> reqwest::RequestBuilder) {
    let mut times = Vec::with_capacity(ROUNDS);
    for _ in 0..ROUNDS {
        let started = Instant::now();
        let response = request().send().await.expect("answer");
        assert_eq!(response.status(), StatusCode::OK, "{label}");
        let _ = response.bytes().await.expect("body");
        times.push(started.elapsed());
    }
    times.sort();
    println!(
        "{label:<48} p50 {:>6.2} ms   p99 {:>6.2} ms",
        percentile(&times, 0.5),
        percentile(&times, 0.99)
    );
}

fn csrf_of(html: &str) -> String {
    let marker = r#"name="csrf" value=""#;
    let start = html.find(marker).expect("a form") + marker.len();
    html[start..].split('"').next().expect("token").to_owned()
}

fn main() {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    runtime.block_on(async {
        let backend = Backend::postgres().unwrap_or(Backend::Sqlite);
        let app = TestApp::spawn(backend.clone()).await;
        println!(
            "portal pages on {}, {ROUNDS} sequential requests each",
            if backend.is_postgres() {
                "PostgreSQL"
            } else {
                "SQLite"
            }
        );
        let citizen = app.citizen("bench@example.de").await;
        let browser = reqwest::Client::builder()
            .cookie_store(true)
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .expect("client");
        let login = browser.get(app.url("/login")).send().await.expect("login page");
        let csrf = csrf_of(&login.text().await.expect("page"));
        let signed_in = browser
            .post(app.url("/login"))
            .form(&[
                ("csrf", csrf.as_str()),
                ("email", citizen.email.as_str()),
                ("password", STRONG_PASSWORD),
            ])
            .send()
            .await
            .expect("login");
        assert_eq!(signed_in.status(), StatusCode::SEE_OTHER);
        let page = browser.get(app.url("/antraege")).send().await.expect("page");
        let csrf = csrf_of(&page.text().await.expect("page"));
        let started = browser
            .post(app.url("/leistungen/bewohnerparkausweis/antrag"))
            .form(&[("csrf", csrf.as_str())])
            .send()
            .await
            .expect("draft");
        let draft = started.headers()["location"]
            .to_str()
            .expect("location")
            .to_owned();
        let id = draft.rsplit('/').next().expect("id").to_owned();
        let token = citizen.tokens.access_token.clone();

        measure("public: start page (catalogue)", || browser.get(app.url("/"))).await;
        measure("public: procedure page", || {
            browser.get(app.url("/leistungen/bewohnerparkausweis"))
        })
        .await;
        measure("API: GET /api/v1/applications/{id}", || {
            app.client
                .get(app.url(&format!("/api/v1/applications/{id}")))
                .bearer_auth(&token)
        })
        .await;
        measure("portal: the draft's form page (1 API call)", || {
            browser.get(app.url(&draft))
        })
        .await;
        measure("API: GET /api/v1/applications", || {
            app.client
                .get(app.url("/api/v1/applications?limit=50"))
                .bearer_auth(&token)
        })
        .await;
        measure("portal: my applications (1 API call)", || {
            browser.get(app.url("/antraege"))
        })
        .await;
        measure("portal: my account (4 API calls at once)", || {
            browser.get(app.url("/konto"))
        })
        .await;
    });
}
