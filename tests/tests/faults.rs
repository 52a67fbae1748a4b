//! Faults an operator meets: a mail relay down for two hours, storage that runs full (the file quota; a SQLite
//! database that cannot grow — a real "database or disk is full"). Clear answers, nothing lost or corrupt, and the
//! service carries on when the fault is gone.

use std::time::{Duration, Instant};

use amtsweg_test_support::{Backend, STRONG_PASSWORD, SmtpServer, TestApp, backend_tests, free_port};
use diesel::connection::SimpleConnection;
use diesel::{QueryableByName, RunQueryDsl};
use reqwest::StatusCode;
use serde_json::{Value, json};

/// Two hours without a mail relay (the service's clock moves; its job runner tries on its backoff), then the relay
/// returns: every notification arrives, each exactly once, and no mail job died.
async fn a_two_hour_mail_outage_delivers_every_notice_once(backend: Backend) {
    let port = free_port();
    // The clock below jumps half an hour at a time. A send in flight during a jump would look abandoned (its
    // five-minute lease on the service's clock ran out) and be taken over and sent again — right when a runner has
    // really died, an artefact of jumping time here — so the lease outlasts every jump of this test.
    let app = TestApp::builder(backend)
        .smtp_at(port)
        .configure(|s| s.jobs.lease_secs = 2 * 24 * 3600)
        .spawn()
        .await
        .unwrap();
    let addresses: Vec<String> = (0..8).map(|n| format!("geduld{n}@example.de")).collect();
    for address in &addresses {
        let registered = app.register(address, STRONG_PASSWORD, "Geduld").await;
        assert_eq!(registered.status(), StatusCode::ACCEPTED);
    }
    // Two hours in ten-minute steps; the runner gets a moment after each to try what is due.
    for _ in 0..12 {
        app.clock.advance(chrono::Duration::minutes(10));
        tokio::time::sleep(Duration::from_millis(150)).await;
    }
    let failing = app
        .get_as(
            "/api/v1/admin/jobs?kind=mail.send&status=dead",
            &app.admin().await.access_token,
        )
        .await;
    let failing: Value = failing.json().await.unwrap();
    assert_eq!(
        failing["items"].as_array().unwrap().len(),
        0,
        "no mail gave up: {failing}"
    );

    let smtp = SmtpServer::start_on(port);
    // The next tries come on the backoff (after an hour's wait, every six hours).
    let started = Instant::now();
    loop {
        app.clock.advance(chrono::Duration::minutes(30));
        tokio::time::sleep(Duration::from_millis(150)).await;
        if addresses.iter().all(|address| !smtp.to(address).is_empty()) {
            break;
        }
        assert!(
            started.elapsed() < Duration::from_secs(30),
            "every notice arrives after the outage"
        );
    }
    // More time passes: nothing is sent twice.
    for _ in 0..4 {
        app.clock.advance(chrono::Duration::hours(6));
        tokio::time::sleep(Duration::from_millis(150)).await;
    }
    for address in &addresses {
        assert_eq!(smtp.to(address).len(), 1, "{address} got its notice once");
    }
}

const BOUNDARY: &str = "amtsweg-faults-boundary";

async fn upload(app: &TestApp, token: &str, content: &[u8]) -> reqwest::Response {
    let mut body = format!(
        "--{BOUNDARY}\r\nContent-Disposition: form-data; name=\"file\"; filename=\"scan.pdf\"\r\nContent-Type: application/pdf\r\n\r\n"
    )
    .into_bytes();
    body.extend_from_slice(content);
    body.extend_from_slice(format!("\r\n--{BOUNDARY}--\r\n").as_bytes());
    app.client
        .post(app.url("/api/v1/files"))
        .bearer_auth(token)
        .header(
            "content-type",
            format!("multipart/form-data; boundary={BOUNDARY}"),
        )
        .body(body)
        .send()
        .await
        .unwrap()
}

/// A PDF of about `size` bytes, different for each `n`.
fn pdf(n: usize, size: usize) -> Vec<u8> {
    let mut content = format!(
        "%PDF-1.7\n1 0 obj\n<< /Type /Catalog /Pages 2 0 R >>\nendobj\n2 0 obj\n<< /Type /Pages /Kids [] /Count 0 >>\nendobj\ntrailer\n<< /Root 1 0 R >>\n% {n}\n"
    )
    .into_bytes();
    content.resize(size, b' ');
    content.extend_from_slice(b"\n%%EOF\n");
    content
}

#[derive(QueryableByName)]
struct Count {
    #[diesel(sql_type = diesel::sql_types::BigInt)]
    n: i64,
}

fn count(app: &TestApp, sql: &str) -> i64 {
    diesel::sql_query(sql)
        .get_result::<Count>(&mut app.connect())
        .unwrap()
        .n
}

/// Stored files beyond `storage.files.quota_bytes` are refused with 507 `storage_full`, leaving nothing behind;
/// content already stored still goes (it takes no space); space made by deleting lets uploads in again.
async fn a_full_file_store_refuses_clearly_and_recovers(backend: Backend) {
    let app = TestApp::builder(backend)
        .configure(|s| s.storage.files.quota_bytes = Some(30_000))
        .spawn()
        .await
        .unwrap();
    let token = app.citizen("speicher@example.de").await.tokens.access_token;
    let first = upload(&app, &token, &pdf(1, 20_000)).await;
    assert_eq!(first.status(), StatusCode::CREATED);
    let first: Value = first.json().await.unwrap();

    let refused = upload(&app, &token, &pdf(2, 20_000)).await;
    assert_eq!(refused.status(), StatusCode::INSUFFICIENT_STORAGE);
    let problem: Value = refused.json().await.unwrap();
    assert_eq!(problem["code"], "storage_full");
    assert_eq!(
        count(&app, "SELECT COUNT(*) AS n FROM files"),
        1,
        "nothing half-stored"
    );
    assert_eq!(count(&app, "SELECT COUNT(*) AS n FROM blobs"), 1);
    let same_again = upload(&app, &token, &pdf(1, 20_000)).await;
    assert_eq!(
        same_again.status(),
        StatusCode::CREATED,
        "known content takes no space"
    );

    // Space returns once both copies are deleted and the content is gone.
    let same_again: Value = same_again.json().await.unwrap();
    for file in [&first, &same_again] {
        let deleted = app
            .delete_as(&format!("/api/v1/files/{}", file["id"].as_str().unwrap()), &token)
            .await;
        assert_eq!(deleted.status(), StatusCode::NO_CONTENT);
    }
    let started = Instant::now();
    loop {
        let retried = upload(&app, &token, &pdf(2, 20_000)).await;
        if retried.status() == StatusCode::CREATED {
            break;
        }
        assert_eq!(retried.status(), StatusCode::INSUFFICIENT_STORAGE);
        assert!(started.elapsed() < Duration::from_secs(10), "space comes back");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// SQLite whose file may not grow any more (`PRAGMA max_page_count`, the real "database or disk is full"): writes
/// are answered 503 with `Retry-After` and roll back whole, reads go on, the file stays intact, and writes work
/// again once it may grow.
///
/// SQLite only: PostgreSQL's disk cannot be filled from a test; its "no space left on device" takes the same path
/// (a unit test in amtsweg-db checks the classification).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_sqlite_database_refuses_writes_and_recovers() {
    let app = TestApp::spawn(Backend::Sqlite).await;
    let token = app.citizen("voll@example.de").await.tokens.access_token;
    // Every connection of the pool (four in tests) is limited to the file's present size.
    let limit = |grow: bool| {
        let pool = app.pool.clone();
        tokio::task::spawn_blocking(move || {
            let mut held = Vec::new();
            for _ in 0..4 {
                let mut conn = pool.connection().unwrap();
                let pages = if grow {
                    "PRAGMA max_page_count = 1073741823;".to_owned()
                } else {
                    let current: Count = diesel::sql_query("SELECT page_count AS n FROM pragma_page_count()")
                        .get_result(&mut **conn)
                        .unwrap();
                    format!("PRAGMA max_page_count = {};", current.n)
                };
                conn.batch_execute(&pages).unwrap();
                held.push(conn);
            }
        })
    };
    limit(false).await.unwrap();
    let mut acknowledged = Vec::new();
    let mut refused = None;
    for n in 0..400 {
        let draft = app
            .post_as(
                "/api/v1/applications",
                &token,
                &json!({"procedure_id": "kita-platz", "data": {"kind": {"vorname": "x".repeat(2000 + n)}}}),
            )
            .await;
        match draft.status() {
            StatusCode::CREATED => acknowledged.push(
                draft.json::<Value>().await.unwrap()["id"]
                    .as_str()
                    .unwrap()
                    .to_owned(),
            ),
            StatusCode::SERVICE_UNAVAILABLE => {
                assert!(draft.headers().contains_key("retry-after"));
                refused = Some(draft.json::<Value>().await.unwrap());
                break;
            }
            other => panic!("only 201 or 503, never {other}: {:?}", draft.text().await),
        }
    }
    let refused = refused.expect("the database ran full");
    assert_eq!(refused["code"], "service_unavailable", "{refused}");
    // Reads go on; every acknowledged draft is there.
    for id in &acknowledged {
        let read = app.get_as(&format!("/api/v1/applications/{id}"), &token).await;
        assert_eq!(read.status(), StatusCode::OK);
    }
    let integrity = app
        .pool
        .read(|conn| {
            #[derive(QueryableByName)]
            struct Check {
                #[diesel(sql_type = diesel::sql_types::Text)]
                integrity_check: String,
            }
            diesel::sql_query("PRAGMA integrity_check")
                .get_result::<Check>(conn)
                .map_err(amtsweg_db::DbError::from)
        })
        .await
        .unwrap();
    assert_eq!(integrity.integrity_check, "ok");

    limit(true).await.unwrap();
    let again = app
        .post_as(
            "/api/v1/applications",
            &token,
            &json!({"procedure_id": "kita-platz", "data": {}}),
        )
        .await;
    assert_eq!(
        again.status(),
        StatusCode::CREATED,
        "writes work again when the file may grow"
    );
    let verified = app.pool.read(amtsweg_audit::verify).await.unwrap();
    assert_eq!(verified.broken, None, "the audit chain is whole");
}

backend_tests!(
    a_two_hour_mail_outage_delivers_every_notice_once,
    a_full_file_store_refuses_clearly_and_recovers,
);
