//! A representative audited write path — granting a consent — over HTTP, against the same statements executed
//! directly on the database in the same run, with the same concurrency (the event's numbering happens after the
//! commit, in the background, and is not part of either side). The project's aim: every write path
//! reaches at least half of the raw rate. `cargo bench -p amtsweg-tests --bench writes` (SQLite; set
//! AMTSWEG_TEST_POSTGRES_URL for PostgreSQL).

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use amtsweg_db::DbConnection;
use amtsweg_test_support::{Backend, TestApp};
use diesel::connection::SimpleConnection;
use diesel::{Connection, RunQueryDsl};
use reqwest::StatusCode;

const WINDOW: Duration = Duration::from_secs(5);
const CLIENTS: usize = 8;

async fn over_http(app: &TestApp, token: &str) -> f64 {
    let done = Arc::new(AtomicU64::new(0));
    let started = Instant::now();
    let tasks: Vec<_> = (0..CLIENTS)
        .map(|_| {
            let (client, url, token, done) = (app.client.clone(), app.url("/api/v1/me/consents"), token.to_owned(), done.clone());
            tokio::spawn(async move {
                let body = serde_json::json!({"recipient": {"kind": "procedure", "id": "bewohnerparkausweis"}, "attributes": ["address"]});
                while started.elapsed() < WINDOW {
                    let response = client.post(&url).bearer_auth(&token).json(&body).send().await.expect("request");
                    assert_eq!(response.status(), StatusCode::CREATED);
                    done.fetch_add(1, Ordering::Relaxed);
                }
            })
        })
        .collect();
    for task in tasks {
        task.await.expect("task");
    }
    done.load(Ordering::Relaxed) as f64 / started.elapsed().as_secs_f64()
}

/// The statements one consent request runs — session check, consent, security event, audit append — each
/// request in its own transaction, from `CLIENTS` threads with their own connections.
fn raw(url: &str, account: &str, session: &str, postgres: bool) -> f64 {
    let done = Arc::new(AtomicU64::new(0));
    let started = Instant::now();
    let threads: Vec<_> = (0..CLIENTS)
        .map(|worker| {
            let (url, account, session, done) = (url.to_owned(), account.to_owned(), session.to_owned(), done.clone());
            std::thread::spawn(move || {
                let mut conn = DbConnection::establish(&url).expect("connect");
                if !postgres {
                    conn.batch_execute("PRAGMA busy_timeout = 5000; PRAGMA synchronous = FULL;").expect("pragmas");
                }
                let begin = if postgres { "BEGIN" } else { "BEGIN IMMEDIATE" };
                let lock = if postgres { " FOR UPDATE" } else { "" };
                let mut n = 0u64;
                while started.elapsed() < WINDOW {
                    n += 1;
                    let id = format!("raw-{worker}-{n}");
                    let statements = [
                        format!("SELECT s.revoked_at, a.status FROM sessions s JOIN accounts a ON a.id = s.account_id WHERE s.id = '{session}'"),
                        begin.to_owned(),
                        format!("INSERT INTO consents (id, account_id, recipient_kind, recipient_id, attributes, granted_at) VALUES ('{id}', '{account}', 'procedure', 'bewohnerparkausweis', 'address', CURRENT_TIMESTAMP)"),
                        format!("INSERT INTO security_events (id, account_id, at, kind) VALUES ('{id}', '{account}', CURRENT_TIMESTAMP, 'consent_granted')"),
                        format!("INSERT INTO events (id, source, event_type, subject, time, data) VALUES ('{id}', 'urn:amtsweg:account', 'de.amtsweg.account.consent_granted.v1', '{account}', CURRENT_TIMESTAMP, '{{}}')"),
                        format!("SELECT seq, hash FROM audit_head WHERE id = 1{lock}"),
                        format!("INSERT INTO audit_log (seq, id, at, actor_kind, actor_id, action, object_kind, object_id, outcome, prev_hash, hash) SELECT seq + 1000000 + {n} * 100 + {worker}, '{id}', CURRENT_TIMESTAMP, 'citizen', '{account}', 'consent_granted', 'account', '{account}', 'success', hash, hash FROM audit_head WHERE id = 1"),
                        "UPDATE audit_head SET hash = hash WHERE id = 1".to_owned(),
                        "COMMIT".to_owned(),
                    ];
                    for statement in &statements {
                        diesel::sql_query(statement).execute(&mut conn).expect("statement");
                    }
                    done.fetch_add(1, Ordering::Relaxed);
                }
            })
        })
        .collect();
    for thread in threads {
        thread.join().expect("thread");
    }
    done.load(Ordering::Relaxed) as f64 / started.elapsed().as_secs_f64()
}

fn main() {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    runtime.block_on(async {
        let backend = Backend::postgres().unwrap_or(Backend::Sqlite);
        let postgres = backend.is_postgres();
        let app = TestApp::builder(backend)
            .configure(|s| {
                s.server.workers = None;
                s.database.pool_size = 8;
            })
            .spawn()
            .await
            .expect("app");
        let citizen = app.citizen("schreiben@example.de").await;
        let session = {
            let payload = citizen
                .tokens
                .access_token
                .split('.')
                .nth(1)
                .expect("payload")
                .to_owned();
            let claims: serde_json::Value = serde_json::from_slice(
                &base64::Engine::decode(&base64::engine::general_purpose::URL_SAFE_NO_PAD, payload)
                    .expect("base64"),
            )
            .expect("claims");
            claims["sid"].as_str().expect("sid").to_owned()
        };
        let http = over_http(&app, &citizen.tokens.access_token).await;
        let url = app.database.url_string();
        let url = url.strip_prefix("sqlite://").unwrap_or(&url).to_owned();
        let (account, session_id) = (citizen.id.clone(), session.clone());
        let raw = tokio::task::spawn_blocking(move || raw(&url, &account, &session_id, postgres))
            .await
            .expect("raw");
        let name = if postgres { "PostgreSQL" } else { "SQLite" };
        println!("\nAudited write path: grant a consent ({name}, {CLIENTS} concurrent clients)");
        println!("  over HTTP (token, session check, consent, security event, event, audit): {http:8.1}/s");
        println!("  the same statements directly on the database:                           {raw:8.1}/s");
        println!(
            "  ratio:                                                                  {:8.2}  (aim ≥ 0.50)",
            http / raw
        );
    });
}
