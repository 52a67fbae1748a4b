//! About 300 decisions made while the server is killed twice (SIGKILL) and restarted and the mail relay is down:
//! every decision is provided exactly once, every notification reaches the relay at least once and at most once
//! more per kill (counted by Message-ID), and the evidence of every delivery is complete. On PostgreSQL, the
//! production database; skipped with a notice without `AMTSWEG_TEST_POSTGRES_URL` (a failure when `CI=true`).
//!
//! The same with 10,000 decisions: `DECISIONS=10000 cargo test --release -p amtsweg-server --test
//! decisions_survive_kills -- --ignored` (a drill outside `.ci/run`).
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    reason = "a failed unwrap is a failed test"
)]

use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};

use amtsweg_test_support::SmtpServer;
use amtsweg_test_support::process::{Instance, Launcher, PgDatabase, count, postgres_or_skip, staff_token};
use diesel::PgConnection;
use diesel::connection::SimpleConnection;
use serde_json::json;

const CITIZEN: &str = "zustellung@example.de";

/// `n` dog-tax cases being processed, of one citizen who consented to electronic delivery.
fn seed(conn: &mut PgConnection, n: usize) {
    let hash = "(SELECT sha256 FROM workflow_versions WHERE workflow_id = 'steuerfestsetzung' ORDER BY version DESC LIMIT 1)";
    let procedure = "(SELECT version FROM procedure_versions WHERE procedure_id = 'hundesteuer-anmeldung' ORDER BY version DESC LIMIT 1)";
    let procedure_hash = "(SELECT content_hash FROM procedure_versions WHERE procedure_id = 'hundesteuer-anmeldung' ORDER BY version DESC LIMIT 1)";
    conn.batch_execute(&format!(
        "INSERT INTO accounts (id, realm, kind, email, email_key, display_name, preferred_language, status, created_at, updated_at) \
         VALUES ('kill-citizen', 'citizen', 'person', '{CITIZEN}', '{CITIZEN}', 'Erika Mustermann', 'de', 'active', now(), now());
         INSERT INTO delivery_consents (id, account_id, granted_at, granted_via) VALUES ('kill-consent', 'kill-citizen', now(), 'test');
         INSERT INTO applications (id, account_id, procedure_id, procedure_version, procedure_hash, unit_id, data, prefilled, status, case_number, workflow_id, workflow_hash, state, version, applicant_name, submitted_at, created_at, updated_at, queued, queued_since) \
         SELECT 'kill-' || s.n, 'kill-citizen', 'hundesteuer-anmeldung', {procedure}, {procedure_hash}, 'steueramt', '{{}}', '[]', 'submitted', 'steueramt-2026-k' || s.n, 'steuerfestsetzung', {hash}, 'in_bearbeitung', 1, 'Erika Mustermann', now(), now(), now(), TRUE, now() \
         FROM generate_series(1, {n}) AS s(n);"
    ))
    .expect("seed");
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// Decides case `kill-{n}`, retrying through restarts until the decision is known to have committed.
async fn decide(client: &reqwest::Client, base: &RwLock<String>, token: &str, n: usize) {
    let id = format!("kill-{n}");
    loop {
        let base = base.read().unwrap().clone();
        let answer = client
            .post(format!("{base}/api/v1/staff/cases/{id}/decision"))
            .bearer_auth(token)
            .header("if-match", "\"1\"")
            .json(&json!({"result": "approved", "reasons": "Die Hundesteuer wird nach der Satzung festgesetzt."}))
            .timeout(Duration::from_secs(30))
            .send()
            .await;
        let Ok(answer) = answer else {
            // The instance is down (killed mid-request): ask the next one.
            tokio::time::sleep(Duration::from_millis(200)).await;
            continue;
        };
        match answer.status().as_u16() {
            200 => return,
            // A retry of a decision that committed before the kill finds the case moved on.
            412 | 409 | 422 => {
                let case = client
                    .get(format!("{base}/api/v1/staff/cases/{id}"))
                    .bearer_auth(token)
                    .send()
                    .await;
                if let Ok(case) = case
                    && let Ok(case) = case.json::<serde_json::Value>().await
                    && case["state"] == "bescheid_zustellung"
                {
                    return;
                }
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
            503 | 502 => tokio::time::sleep(Duration::from_millis(200)).await,
            other => panic!("deciding {id} answered {other}: {:?}", answer.text().await),
        }
    }
}

async fn run(decisions: usize) {
    let Some(base_url) = postgres_or_skip("the kill test on PostgreSQL") else {
        return;
    };
    let database = PgDatabase::create(&base_url);
    let data = tempfile::tempdir().unwrap();
    let smtp_port = free_port();
    let launcher = Launcher {
        binary: env!("CARGO_BIN_EXE_amtsweg").into(),
        data: data.path().to_owned(),
        database: database.url.clone(),
        env: [
            ("AMTSWEG__MAIL__SMTP__HOST", "127.0.0.1".to_owned()),
            ("AMTSWEG__MAIL__SMTP__PORT", smtp_port.to_string()),
            ("AMTSWEG__MAIL__SMTP__TLS", "none".to_owned()),
            ("AMTSWEG__MAIL__BACKOFF_SECS", "[1, 2, 3, 5]".to_owned()),
            ("AMTSWEG__JOBS__LEASE_SECS", "5".to_owned()),
            ("AMTSWEG__JOBS__POLL_INTERVAL_MS", "200".to_owned()),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_owned(), v))
        .collect(),
    };
    let mut instance: Instance = launcher.start();
    let mut conn = database.connect();
    seed(&mut conn, decisions);
    let client = reqwest::Client::new();
    let password = launcher.add_staff("zustellung@stadt.example", "case_worker:steueramt");
    let token = staff_token(&client, &instance.base, "zustellung@stadt.example", &password).await;

    // Four callers decide while the mail relay is down; the instance is killed twice on the way.
    let base = Arc::new(RwLock::new(instance.base.clone()));
    let (next, done) = (Arc::new(AtomicUsize::new(1)), Arc::new(AtomicUsize::new(0)));
    let callers: Vec<_> = (0..4)
        .map(|_| {
            let (client, base, token, next, done) = (
                client.clone(),
                base.clone(),
                token.clone(),
                next.clone(),
                done.clone(),
            );
            tokio::spawn(async move {
                loop {
                    let n = next.fetch_add(1, Ordering::SeqCst);
                    if n > decisions {
                        return;
                    }
                    decide(&client, &base, &token, n).await;
                    done.fetch_add(1, Ordering::SeqCst);
                }
            })
        })
        .collect();
    let started = Instant::now();
    for kill_at in [decisions / 3, 2 * decisions / 3] {
        while done.load(Ordering::SeqCst) < kill_at {
            assert!(started.elapsed() < Duration::from_secs(1800), "decisions stalled");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        instance.kill();
        instance = tokio::task::spawn_blocking({
            let launcher = launcher.clone();
            move || launcher.start()
        })
        .await
        .unwrap();
        *base.write().unwrap() = instance.base.clone();
    }
    for caller in callers {
        caller.await.unwrap();
    }
    eprintln!("{decisions} decisions in {:?}", started.elapsed());

    // Exactly once: one decision, one delivery, one Postfach message per case.
    let n = decisions as i64;
    assert_eq!(
        count(&mut conn, "SELECT COUNT(*) AS n FROM application_decisions"),
        n
    );
    assert_eq!(
        count(&mut conn, "SELECT COUNT(DISTINCT case_ref) AS n FROM deliveries"),
        n
    );
    assert_eq!(count(&mut conn, "SELECT COUNT(*) AS n FROM deliveries"), n);
    assert_eq!(
        count(
            &mut conn,
            "SELECT COUNT(*) AS n FROM mailbox_messages WHERE kind = 'decision'"
        ),
        n
    );
    assert_eq!(
        count(
            &mut conn,
            "SELECT COUNT(*) AS n FROM deliveries WHERE provided_at IS NULL OR channel <> 'postfach'"
        ),
        0
    );

    // The relay comes back: every notification arrives, and its hand-over is recorded.
    let smtp = tokio::task::spawn_blocking(move || SmtpServer::start_on(smtp_port))
        .await
        .unwrap();
    let relay_up = Instant::now();
    loop {
        let notified = count(
            &mut conn,
            "SELECT COUNT(*) AS n FROM deliveries WHERE notified_at IS NOT NULL",
        );
        if notified == n {
            break;
        }
        assert!(
            relay_up.elapsed() < Duration::from_secs(600),
            "{notified} of {n} notifications recorded as handed to the relay"
        );
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    eprintln!(
        "all notifications out {:?} after the relay came back",
        relay_up.elapsed()
    );
    let mails: Vec<_> = smtp
        .to(CITIZEN)
        .into_iter()
        .filter(|m| m.subject.contains("Neues Dokument"))
        .collect();
    let mut by_id: HashMap<String, usize> = HashMap::new();
    for mail in &mails {
        *by_id
            .entry(mail.message_id.clone().expect("a Message-ID"))
            .or_default() += 1;
    }
    assert_eq!(by_id.len(), decisions, "one notification per decision");
    let duplicates = mails.len() - by_id.len();
    assert!(duplicates <= 2, "{duplicates} duplicates after two kills");
    for n in 1..=decisions {
        let number = format!("steueramt-2026-k{n})");
        assert!(
            mails.iter().any(|m| m.subject.ends_with(&number)),
            "no notification for case {n}"
        );
    }
    // Evidence complete: provided, notified with address, the notification delivered.
    assert_eq!(
        count(
            &mut conn,
            "SELECT COUNT(*) AS n FROM deliveries WHERE provided_at IS NOT NULL AND notified_at IS NOT NULL \
             AND notification_address IS NOT NULL AND consent_id = 'kill-consent'"
        ),
        n
    );
    assert_eq!(
        count(
            &mut conn,
            "SELECT COUNT(*) AS n FROM mail_outbox WHERE reference LIKE 'delivery:%' AND status = 'delivered'"
        ),
        n
    );
    assert_eq!(
        count(
            &mut conn,
            "SELECT COUNT(*) AS n FROM audit_log WHERE action = 'delivery.provided'"
        ),
        n
    );
    drop(instance);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn three_hundred_decisions_survive_two_kills_and_a_mail_outage() {
    run(300).await;
}

/// The drill: `DECISIONS` (default 10,000) decisions, outside `.ci/run`.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
#[ignore = "a drill: run with --ignored, preferably --release"]
async fn drill_many_decisions_survive_two_kills_and_a_mail_outage() {
    let decisions = std::env::var("DECISIONS")
        .ok()
        .and_then(|d| d.parse().ok())
        .unwrap_or(10_000);
    run(decisions).await;
}
