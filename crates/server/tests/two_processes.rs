//! Two `amtsweg serve` processes on one PostgreSQL database, as a city runs them: claim-next hands every queued case
//! to exactly one caller whichever process answers, a reply window that ran out fires once although both run the
//! timer schedule, and a killed process (SIGKILL) takes no claim with it. Needs `AMTSWEG_TEST_POSTGRES_URL`; without
//! it the test is skipped with a notice (a failure when `CI=true`).
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    reason = "a failed unwrap is a failed test"
)]

use std::collections::HashSet;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use amtsweg_test_support::process::{Launcher, PgDatabase, postgres_or_skip, staff_token};
use diesel::PgConnection;
use diesel::connection::SimpleConnection;
use serde_json::{Value, json};

const QUEUED: usize = 600;
const WAITING: usize = 50;
const STAFF: usize = 4;

fn count(conn: &mut PgConnection, sql: &str) -> i64 {
    amtsweg_test_support::process::count(conn, sql)
}

/// Queued dog-tax cases, and cases waiting for the citizen whose reply window ran out, under the recorded version of
/// the tax workflow — as submissions and information requests would have left them.
fn seed(conn: &mut PgConnection) {
    let series =
        |n: usize| format!("WITH RECURSIVE s(n) AS (SELECT 1 UNION ALL SELECT n + 1 FROM s WHERE n < {n})");
    let hash = "(SELECT sha256 FROM workflow_versions WHERE workflow_id = 'steuerfestsetzung' ORDER BY version DESC LIMIT 1)";
    let procedure = "(SELECT version FROM procedure_versions WHERE procedure_id = 'hundesteuer-anmeldung' ORDER BY version DESC LIMIT 1)";
    let procedure_hash = "(SELECT content_hash FROM procedure_versions WHERE procedure_id = 'hundesteuer-anmeldung' ORDER BY version DESC LIMIT 1)";
    conn.batch_execute(&format!(
        "INSERT INTO accounts (id, realm, kind, display_name, preferred_language, status, created_at, updated_at) \
         VALUES ('procs-citizen', 'citizen', 'person', 'Erika Mustermann', 'de', 'active', now(), now());
         {} INSERT INTO applications (id, account_id, procedure_id, procedure_version, procedure_hash, unit_id, data, prefilled, status, case_number, workflow_id, workflow_hash, state, version, applicant_name, submitted_at, created_at, updated_at, queued, queued_since) \
         SELECT 'queued-' || s.n, 'procs-citizen', 'hundesteuer-anmeldung', {procedure}, {procedure_hash}, 'steueramt', '{{}}', '[]', 'submitted', 'steueramt-2026-q' || s.n, 'steuerfestsetzung', {hash}, 'eingegangen', 1, 'Erika Mustermann', now(), now(), now(), TRUE, now() - s.n * interval '1 second' FROM s;
         {} INSERT INTO applications (id, account_id, procedure_id, procedure_version, procedure_hash, unit_id, data, prefilled, status, case_number, workflow_id, workflow_hash, state, version, applicant_name, submitted_at, created_at, updated_at, queued, waiting_since) \
         SELECT 'waiting-' || s.n, 'procs-citizen', 'hundesteuer-anmeldung', {procedure}, {procedure_hash}, 'steueramt', '{{}}', '[]', 'submitted', 'steueramt-2026-w' || s.n, 'steuerfestsetzung', {hash}, 'nachforderung', 1, 'Erika Mustermann', now(), now(), now(), FALSE, now() FROM s;
         {} INSERT INTO application_timers (application_id, timer_id, started_at, due_on, kind) \
         SELECT 'waiting-' || s.n, 'antwortfrist', now() - interval '40 days', '2020-01-01', 'reply_window' FROM s;",
        series(QUEUED),
        series(WAITING),
        series(WAITING),
    ))
    .expect("seed");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_processes_share_queues_timers_and_survive_a_kill() {
    let Some(base_url) = postgres_or_skip("two processes on PostgreSQL") else {
        return;
    };
    let database = PgDatabase::create(&base_url);
    let data = tempfile::tempdir().unwrap();
    let launcher = Launcher {
        binary: env!("CARGO_BIN_EXE_amtsweg").into(),
        data: data.path().to_owned(),
        database: database.url.clone(),
        env: Vec::new(),
    };

    let mut first = launcher.start();
    let second = launcher.start();
    let mut conn = database.connect();
    seed(&mut conn);

    let client = reqwest::Client::new();
    let mut tokens = Vec::new();
    for i in 0..STAFF {
        let email = format!("procs{i}@stadt.example");
        let password = launcher.add_staff(&email, "case_worker:steueramt");
        let base = if i % 2 == 0 { &first.base } else { &second.base };
        tokens.push(staff_token(&client, base, &email, &password).await);
    }
    let admin_password = launcher.add_staff("procs-admin@stadt.example", "system_admin");
    let admin = staff_token(
        &client,
        &second.base,
        "procs-admin@stadt.example",
        &admin_password,
    )
    .await;

    // Sixteen callers, half on each process, claim until the queue is empty: every case exactly once.
    let claimed = Arc::new(Mutex::new(Vec::new()));
    let mut callers = Vec::new();
    for caller in 0..16 {
        let (client, claimed) = (client.clone(), claimed.clone());
        let token = tokens[caller % STAFF].clone();
        let base = if caller % 2 == 0 {
            first.base.clone()
        } else {
            second.base.clone()
        };
        callers.push(tokio::spawn(async move {
            loop {
                let response = client
                    .post(format!(
                        "{base}/api/v1/staff/queues/steueramt.hundesteuer-anmeldung/claim-next"
                    ))
                    .bearer_auth(&token)
                    .json(&json!({}))
                    .send()
                    .await
                    .unwrap();
                match response.status().as_u16() {
                    200 => {
                        let case: Value = response.json().await.unwrap();
                        claimed
                            .lock()
                            .unwrap()
                            .push(case["id"].as_str().unwrap().to_owned());
                    }
                    204 => break,
                    other => panic!("claim-next answered {other}: {:?}", response.text().await),
                }
            }
        }));
    }
    for caller in callers {
        caller.await.unwrap();
    }
    let claimed = std::mem::take(&mut *claimed.lock().unwrap());
    let unique: HashSet<&String> = claimed.iter().collect();
    assert_eq!(unique.len(), claimed.len(), "a case was handed out twice");
    // The waiting cases may join the queue meanwhile: each process queues the day's timer run when it starts,
    // and their reply windows have run out — then they are handed out too, once each.
    let queued = claimed.iter().filter(|id| id.starts_with("queued-")).count();
    assert_eq!(queued, QUEUED, "every queued case was handed out");
    assert!(claimed.len() <= QUEUED + WAITING);
    assert_eq!(
        count(
            &mut conn,
            "SELECT COUNT(*) AS n FROM applications WHERE id LIKE 'queued-%' AND assignee IS NOT NULL"
        ),
        QUEUED as i64
    );

    // Both processes run the timer schedule at once: each expired reply window fires once.
    let runs: Vec<_> = [&first.base, &second.base]
        .into_iter()
        .map(|base| {
            client
                .post(format!("{base}/api/v1/admin/schedules/application-timers/run"))
                .bearer_auth(&admin)
                .json(&json!({}))
                .send()
        })
        .collect();
    for run in futures_util::future::join_all(runs).await {
        let run = run.unwrap();
        assert_eq!(run.status(), 200, "{:?}", run.text().await);
    }
    let started = Instant::now();
    while count(
        &mut conn,
        "SELECT COUNT(*) AS n FROM applications WHERE id LIKE 'waiting-%' AND state = 'in_bearbeitung'",
    ) < WAITING as i64
    {
        assert!(
            started.elapsed() < Duration::from_secs(30),
            "the reply windows did not fire"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(
        count(
            &mut conn,
            "SELECT COUNT(*) AS n FROM application_steps WHERE action = 'antwortfrist_abgelaufen'"
        ),
        WAITING as i64,
        "each reply window fired once"
    );
    assert_eq!(
        count(
            &mut conn,
            "SELECT COUNT(*) AS n FROM application_timers WHERE timer_id = 'antwortfrist'"
        ),
        0
    );

    // A process killed mid-flight takes no claim with it; the other one goes on serving.
    first.kill();
    assert_eq!(
        count(
            &mut conn,
            "SELECT COUNT(*) AS n FROM applications WHERE id LIKE 'queued-%' AND assignee IS NOT NULL"
        ),
        QUEUED as i64,
        "claims belong to staff, not to processes"
    );
    let back = client
        .post(format!(
            "{}/api/v1/staff/queues/steueramt.hundesteuer-anmeldung/claim-next",
            second.base
        ))
        .bearer_auth(&tokens[1])
        .json(&json!({}))
        .send()
        .await
        .unwrap();
    assert_eq!(
        back.status(),
        200,
        "the cases back from their reply window are handed out"
    );
    let case: Value = back.json().await.unwrap();
    assert!(case["id"].as_str().unwrap().starts_with("waiting-"), "{case}");
    drop(second);
}
