//! Payment notifications against raw statements in the same run, with the same concurrency: a signed ePayBL
//! notification over HTTP — verified (SHA-256, constant time), the payment found, the platform asked (the in-process
//! simulator, over HTTP), the state changed with its history step, event and audit entry — against the same
//! statements straight on the database (no signature, no status query). Aim: ≥ 0.5.
//!
//! `cargo bench -p amtsweg-tests --bench payments` (SQLite; set AMTSWEG_TEST_POSTGRES_URL for PostgreSQL;
//! `AMTSWEG_BENCH_PAYMENTS` payments, 3,000 by default).

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::time::Instant;

use amtsweg_db::DbConnection;
use amtsweg_payment::epaybl::signed_notification;
use amtsweg_test_support::{Backend, TestApp};
use diesel::connection::SimpleConnection;
use diesel::{Connection, QueryableByName, RunQueryDsl};
use reqwest::StatusCode;
use serde_json::{Value, json};

const CLIENTS: usize = 8;
const SECRET: &str = "bench-secret";

fn connect(url: &str, postgres: bool) -> DbConnection {
    let mut conn = DbConnection::establish(url).expect("connect");
    if !postgres {
        conn.batch_execute("PRAGMA busy_timeout = 60000; PRAGMA synchronous = FULL;")
            .expect("pragmas");
    }
    conn
}

#[derive(QueryableByName)]
struct Count {
    #[diesel(sql_type = diesel::sql_types::BigInt)]
    n: i64,
}

/// A signed notification about `kassenzeichen`, as the simulator sends them.
fn notification(kassenzeichen: &str) -> Vec<(String, String)> {
    let values = [
        "SIMULATOR",
        "00000000",
        "ZVG-BENCH",
        kassenzeichen,
        "TAN",
        "ZVP",
        "KREDITKARTE",
        "1",
        "bezahlt",
    ];
    signed_notification(values, SECRET)
}

/// Creates `n` Kassenzeichen at the simulator and pays them there (their notifications held back); answers them.
async fn paid_at_the_platform(app: &TestApp, n: usize) -> Vec<String> {
    let held = app
        .client
        .put(app.url("/sim/epaybl/control"))
        .json(&json!({"hold_notifications": true}))
        .send()
        .await
        .expect("switches");
    assert_eq!(held.status(), StatusCode::OK);
    let create = app.url(
        "/sim/epaybl/epayment/fachverfahren/v1_0/mandanten/SIMULATOR/bewirtschafter/00000000/buchungslisten",
    );
    let next = Arc::new(AtomicUsize::new(0));
    let tasks: Vec<_> = (0..16)
        .map(|_| {
            let (client, create, next) = (app.client.clone(), create.clone(), next.clone());
            tokio::spawn(async move {
                let mut made = Vec::new();
                loop {
                    let i = next.fetch_add(1, Ordering::Relaxed);
                    if i >= n {
                        return made;
                    }
                    let body = json!({
                        "transaktionsnummer": format!("BENCH{i}"),
                        "betrag": "30.70",
                        "beschreibung": "Bewohnerparkausweis",
                        "buchungen": [{"bruttobetrag": "30.70", "buchungstext": "BEWOHNERPARKAUSWEIS", "kontierung": {"haushaltstelle": "1.2.2.1.01", "objektnummer": "12210000"}}],
                        "fachverfahrendaten": {"notifyUrl": "http://127.0.0.1:9/", "successUrl": "http://127.0.0.1:9/", "errorUrl": "http://127.0.0.1:9/", "cancelUrl": "http://127.0.0.1:9/"},
                    });
                    let created: Value = client.post(&create).json(&body).send().await.expect("create").json().await.expect("json");
                    let kassenzeichen = created["kassenzeichennummer"].as_str().expect("kassenzeichen").to_owned();
                    let paypage = created["zahlvorgangsInfo"]["rechnungUrls"]["PAYPAGE"].as_str().expect("paypage");
                    let paid = client.post(paypage).form(&[("action", "pay")]).send().await.expect("pay");
                    assert_eq!(paid.status(), StatusCode::SEE_OTHER);
                    made.push(kassenzeichen);
                }
            })
        })
        .collect();
    let mut all = Vec::new();
    for task in tasks {
        all.extend(task.await.expect("task"));
    }
    all
}

/// Pending payments with these Kassenzeichen, as the service would have them after sending the payer away.
fn pending_payments(conn: &mut DbConnection, prefix: &str, kassenzeichen: &[String]) {
    conn.batch_execute("BEGIN").expect("begin");
    for (i, kz) in kassenzeichen.iter().enumerate() {
        diesel::sql_query(format!(
            "INSERT INTO payments (id, transaction_number, owner_ref, unit_id, provider, kassenzeichen, amount_cents, purpose, description, bookings, due_on, state, paypage_url, attempt_started_at, next_check_at, checks, version, created_at, updated_at) \
             VALUES ('{prefix}{i}', '{prefix}T{i}', 'bench:{i}', 'ordnungsamt', 'epaybl', '{kz}', 3070, '2026-000001', 'Bewohnerparkausweis', '[{{\"amount_cents\":3070,\"haushaltsstelle\":\"1.2.2.1.01\",\"objektnummer\":\"12210000\",\"buchungstext\":\"BEWOHNERPARKAUSWEIS\"}}]', '2099-12-31', 'pending', 'http://127.0.0.1:9/', CURRENT_TIMESTAMP, CURRENT_TIMESTAMP, 0, 2, CURRENT_TIMESTAMP, CURRENT_TIMESTAMP)"
        ))
        .execute(conn)
        .expect("payment");
    }
    conn.batch_execute("COMMIT").expect("commit");
}

async fn notifications_over_http(app: &TestApp, kassenzeichen: Vec<String>) -> f64 {
    let items = Arc::new(kassenzeichen);
    let next = Arc::new(AtomicUsize::new(0));
    let done = Arc::new(AtomicU64::new(0));
    let url = app.url("/api/v1/payments/notifications/epaybl");
    let started = Instant::now();
    let tasks: Vec<_> = (0..CLIENTS)
        .map(|_| {
            let (client, url, items, next, done) = (
                app.client.clone(),
                url.clone(),
                items.clone(),
                next.clone(),
                done.clone(),
            );
            tokio::spawn(async move {
                loop {
                    let i = next.fetch_add(1, Ordering::Relaxed);
                    let Some(kz) = items.get(i) else { return };
                    let answer = client
                        .post(&url)
                        .form(&notification(kz))
                        .send()
                        .await
                        .expect("notify");
                    assert_eq!(answer.status(), StatusCode::OK);
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

/// The statements the service runs for a notification that settles a payment.
fn notification_statements(i: usize, postgres: bool) -> Vec<String> {
    let (begin, lock) = if postgres {
        ("BEGIN", " FOR UPDATE")
    } else {
        ("BEGIN IMMEDIATE", "")
    };
    let id = format!("raw-{i}");
    let now = "CURRENT_TIMESTAMP";
    vec![
        format!("SELECT id FROM payments WHERE kassenzeichen = 'RAW{i}'"),
        format!("SELECT * FROM payments WHERE id = '{id}'"),
        begin.to_owned(),
        format!("SELECT * FROM payments WHERE id = '{id}'"),
        format!(
            "UPDATE payments SET checks = 1, next_check_at = NULL, paid_cents = 3070, paid_at = {now} WHERE id = '{id}'"
        ),
        format!(
            "UPDATE payments SET state = 'paid', version = 3, updated_at = {now} WHERE id = '{id}' AND version = 2"
        ),
        format!(
            "INSERT INTO events (id, source, event_type, subject, time, data) VALUES ('{id}-paid', 'urn:amtsweg:payment', 'de.amtsweg.payment.paid.v1', '{id}', {now}, '{{\"payment_id\":\"{id}\"}}')"
        ),
        format!("SELECT MAX(seq) FROM payment_steps WHERE payment_id = '{id}'"),
        format!(
            "INSERT INTO payment_steps (payment_id, seq, from_state, to_state, reason, note, actor, at) VALUES ('{id}', 1, 'pending', 'paid', 'confirmed_by_provider', NULL, 'provider', {now})"
        ),
        format!("SELECT seq, hash FROM audit_head WHERE id = 1{lock}"),
        format!(
            "INSERT INTO audit_log (seq, id, at, actor_kind, actor_id, action, object_kind, object_id, outcome, prev_hash, hash) SELECT seq + 1, '{id}-audit', {now}, 'system', NULL, 'payment.paid', 'payment', '{id}', 'success', hash, hash FROM audit_head WHERE id = 1"
        ),
        "UPDATE audit_head SET seq = seq + 1, hash = hash WHERE id = 1".to_owned(),
        "COMMIT".to_owned(),
    ]
}

fn raw_rate(url: &str, postgres: bool, n: usize) -> f64 {
    let next = Arc::new(AtomicUsize::new(0));
    let done = Arc::new(AtomicU64::new(0));
    let started = Instant::now();
    let threads: Vec<_> = (0..CLIENTS)
        .map(|_| {
            let (url, next, done) = (url.to_owned(), next.clone(), done.clone());
            std::thread::spawn(move || {
                let mut conn = connect(&url, postgres);
                loop {
                    let i = next.fetch_add(1, Ordering::Relaxed);
                    if i >= n {
                        return;
                    }
                    for statement in notification_statements(i, postgres) {
                        diesel::sql_query(&statement)
                            .execute(&mut conn)
                            .unwrap_or_else(|err| panic!("{statement}: {err}"));
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
        let name = if postgres { "PostgreSQL" } else { "SQLite" };
        let n: usize = std::env::var("AMTSWEG_BENCH_PAYMENTS").ok().and_then(|n| n.parse().ok()).unwrap_or(3_000);
        let app = TestApp::builder(backend)
            .configure(|s| {
                s.server.workers = None;
                s.database.pool_size = 8;
                s.payment.simulator_secret = Some(SECRET.to_owned().into());
            })
            .spawn()
            .await
            .expect("app");
        let url = app.database.url_string();
        let url = url.strip_prefix("sqlite://").unwrap_or(&url).to_owned();
        let kassenzeichen = paid_at_the_platform(&app, n).await;
        let mut conn = connect(&url, postgres);
        pending_payments(&mut conn, "bench-", &kassenzeichen);
        let raw: Vec<String> = (0..n).map(|i| format!("RAW{i}")).collect();
        pending_payments(&mut conn, "raw-", &raw);
        if postgres {
            conn.batch_execute("ANALYZE payments; ANALYZE payment_steps;").expect("analyze");
        }

        let http = notifications_over_http(&app, kassenzeichen).await;
        let settled = diesel::sql_query("SELECT COUNT(*) AS n FROM payments WHERE id LIKE 'bench-%' AND state = 'paid'")
            .get_result::<Count>(&mut conn)
            .expect("count")
            .n;
        assert_eq!(settled as usize, n, "every notification settled its payment");
        let raw_url = url.clone();
        let raw = tokio::task::spawn_blocking(move || raw_rate(&raw_url, postgres, n)).await.expect("raw");
        println!("\nPayment notifications ({name}, {CLIENTS} concurrent senders, {n} payments)");
        println!("  over HTTP (signature, lookup, status query to the simulator, state, history, event, audit): {http:8.1}/s");
        println!("  the same statements directly on the database (no signature, no status query):            {raw:8.1}/s  ratio {:5.2} (aim ≥ 0.50)", http / raw);
    });
}
