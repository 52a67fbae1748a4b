//! What operators rely on: health, readiness that follows the database, metrics, API documentation.

use std::time::{Duration, Instant};

use amtsweg_test_support::{Backend, TcpProxy, TestApp, backend_tests};
use reqwest::StatusCode;
use serde_json::Value;

async fn status_within(app: &TestApp, path: &str, expected: StatusCode, limit: Duration) -> Duration {
    let started = Instant::now();
    loop {
        let asked = Instant::now();
        let status = app.get(path).await.status();
        assert!(
            asked.elapsed() < Duration::from_secs(2),
            "{path} must answer within 2 s"
        );
        if status == expected {
            return started.elapsed();
        }
        assert!(
            started.elapsed() < limit,
            "{path} did not become {expected} within {limit:?} (is {status})"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

async fn liveness_and_readiness(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let live = app.get("/health/live").await;
    assert_eq!(live.status(), StatusCode::OK);
    assert_eq!(live.json::<Value>().await.unwrap()["status"], "up");
    let ready = app.get("/health/ready").await;
    assert_eq!(ready.status(), StatusCode::OK);
    assert_eq!(ready.json::<Value>().await.unwrap()["status"], "ready");
}

/// PostgreSQL: the connection to the database is cut by a proxy and restored.
/// SQLite: the database file disappears (moved away) and comes back.
async fn readiness_follows_the_database(backend: Backend) {
    match backend {
        Backend::Postgres(_) => {
            let database = backend.fresh_database(true);
            let amtsweg_db::DatabaseUrl::Postgres(url) = &database.url else {
                unreachable!()
            };
            let proxy = TcpProxy::start("127.0.0.1:5432".parse().unwrap()).await;
            let through_proxy = url.replacen("127.0.0.1:5432", &format!("127.0.0.1:{}", proxy.port()), 1);
            assert_ne!(&through_proxy, url, "the test URL must name 127.0.0.1:5432");
            let app = TestApp::builder(backend)
                .database(database)
                .database_url(through_proxy)
                .spawn()
                .await
                .unwrap();
            status_within(&app, "/health/ready", StatusCode::OK, Duration::from_secs(2)).await;

            proxy.cut();
            let down = app.get("/health/ready").await;
            assert_eq!(down.status(), StatusCode::SERVICE_UNAVAILABLE);
            assert_eq!(down.headers()["retry-after"], "5");
            assert_eq!(down.json::<Value>().await.unwrap()["code"], "not_ready");
            assert_eq!(
                app.get("/health/live").await.status(),
                StatusCode::OK,
                "the process stays live"
            );
            // A write while the database is gone is "service unavailable" with a time to come back, never a 500 —
            // and, the database being known to be away, at once rather than after the 5 s check-out timeout.
            for attempt in 0..3 {
                let asked = Instant::now();
                let write = app
                    .post_json(
                        "/api/v1/accounts",
                        &serde_json::json!({"email": format!("weg{attempt}@example.de"), "password": "Ein langes Passwort 2026", "name": "Weg"}),
                    )
                    .await;
                assert_eq!(write.status(), StatusCode::SERVICE_UNAVAILABLE);
                assert_eq!(write.headers()["retry-after"], "5");
                assert!(
                    asked.elapsed() < Duration::from_secs(1),
                    "a write while the database is known to be down answered after {:?}",
                    asked.elapsed()
                );
            }

            proxy.restore();
            status_within(&app, "/health/ready", StatusCode::OK, Duration::from_secs(10)).await;
        }
        Backend::Sqlite => {
            let app = TestApp::spawn(backend).await;
            let file = app.database.sqlite_path.clone().unwrap();
            let moved = file.with_extension("moved");
            std::fs::rename(&file, &moved).unwrap();
            status_within(
                &app,
                "/health/ready",
                StatusCode::SERVICE_UNAVAILABLE,
                Duration::from_secs(2),
            )
            .await;
            std::fs::rename(&moved, &file).unwrap();
            status_within(&app, "/health/ready", StatusCode::OK, Duration::from_secs(5)).await;
        }
    }
}

async fn metrics_count_requests_per_route(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    app.get("/api/v1/procedures").await;
    app.get("/api/v1/procedures/kita-platz").await;
    app.get("/api/v1/procedures/gibt-es-nicht").await;
    let response = app.get("/metrics").await;
    assert_eq!(response.status(), StatusCode::OK);
    assert!(
        response.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/plain; version=0.0.4")
    );
    let text = response.text().await.unwrap();
    for expected in [
        r#"amtsweg_http_requests_total{method="GET",route="/api/v1/procedures",status="200"} 1"#,
        r#"amtsweg_http_requests_total{method="GET",route="/api/v1/procedures/{id}",status="200"} 1"#,
        r#"amtsweg_http_requests_total{method="GET",route="/api/v1/procedures/{id}",status="404"} 1"#,
        r#"amtsweg_http_request_duration_seconds_bucket{method="GET",route="/api/v1/procedures",status="200",le="#,
        "amtsweg_db_pool_connections{state=\"idle\"}",
        "amtsweg_db_pool_max_connections 4",
        "amtsweg_catalogue_procedures 6",
        "amtsweg_http_requests_in_flight_limit 64",
        "amtsweg_process_resident_memory_bytes",
        "amtsweg_process_cpu_seconds_total",
    ] {
        assert!(text.contains(expected), "missing {expected} in\n{text}");
    }
}

async fn serves_its_api_description_offline(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let spec: Value = app.get("/openapi.json").await.json().await.unwrap();
    assert_eq!(spec["openapi"], "3.1.0");
    for path in [
        "/api/v1/procedures",
        "/api/v1/procedures/{id}",
        "/api/v1/procedures/{id}/validate",
        "/api/v1/procedures/{id}/fee",
    ] {
        assert!(spec["paths"][path].is_object(), "{path} is documented");
    }
    let redirect = app.get("/docs").await;
    assert_eq!(redirect.status(), StatusCode::PERMANENT_REDIRECT);
    let page = app.get("/docs/").await;
    assert_eq!(page.status(), StatusCode::OK);
    let html = page.text().await.unwrap();
    assert!(html.contains("swagger-ui"), "{html}");
    for asset in [
        "/docs/swagger-ui.css",
        "/docs/swagger-ui-bundle.js",
        "/docs/swagger-initializer.js",
    ] {
        let response = app.get(asset).await;
        assert_eq!(
            response.status(),
            StatusCode::OK,
            "{asset} is served from the binary"
        );
    }
    let initializer = app
        .get("/docs/swagger-initializer.js")
        .await
        .text()
        .await
        .unwrap();
    assert!(initializer.contains("/openapi.json"));
    assert!(
        !html.contains("https://") && !initializer.contains("https://"),
        "nothing is loaded from the internet"
    );
}

/// A full service turns API requests away at once with 503 and `Retry-After` instead of queueing them; health,
/// readiness and metrics still answer, and the next request after the load is served.
async fn a_full_service_turns_requests_away(backend: Backend) {
    let app = TestApp::builder(backend)
        .configure(|settings| {
            settings.server.max_in_flight = 1;
            settings.server.admission_wait_ms = 50;
        })
        .spawn()
        .await
        .unwrap();
    // A request whose body arrives slowly holds the one slot.
    let (body, chunks) = tokio::sync::mpsc::channel::<Result<Vec<u8>, std::io::Error>>(4);
    body.send(Ok(br#"{"kind": {"vorname": "#.to_vec())).await.unwrap();
    let stream = futures_util::stream::unfold(chunks, |mut chunks| async move {
        chunks.recv().await.map(|chunk| (chunk, chunks))
    });
    let slow = tokio::spawn(
        app.client
            .post(app.url("/api/v1/procedures/kita-platz/validate"))
            .header("content-type", "application/json")
            .body(reqwest::Body::wrap_stream(stream))
            .send(),
    );
    let started = Instant::now();
    while !app
        .get("/metrics")
        .await
        .text()
        .await
        .unwrap()
        .contains("amtsweg_http_requests_in_flight 1")
    {
        assert!(
            started.elapsed() < Duration::from_secs(5),
            "the slow request never started"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }

    let asked = Instant::now();
    let turned_away = app.get("/api/v1/procedures").await;
    assert!(asked.elapsed() < Duration::from_secs(1), "answered at once");
    assert_eq!(turned_away.status(), StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(turned_away.headers()["retry-after"], "1");
    assert_eq!(turned_away.json::<Value>().await.unwrap()["code"], "overloaded");
    assert_eq!(app.get("/health/ready").await.status(), StatusCode::OK);

    body.send(Ok(br#""Erika"}}"#.to_vec())).await.unwrap();
    drop(body);
    let finished = slow.await.unwrap().unwrap();
    assert_eq!(
        finished.json::<Value>().await.unwrap()["code"],
        "validation_failed",
        "the slow request was served to the end"
    );
    assert_eq!(app.get("/api/v1/procedures").await.status(), StatusCode::OK);
    let metrics = app.get("/metrics").await.text().await.unwrap();
    assert!(
        metrics.contains(
            r#"amtsweg_http_requests_total{method="GET",route="/api/v1/procedures",status="503"} 1"#
        ),
        "{metrics}"
    );
}

backend_tests!(
    a_full_service_turns_requests_away,
    liveness_and_readiness,
    readiness_follows_the_database,
    metrics_count_requests_per_route,
    serves_its_api_description_offline,
);
