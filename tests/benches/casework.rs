//! Antragsmanagement against raw statements in the same run, with the same concurrency:
//!
//! - submit (validation, case number, state, workflow instance, timer, mail, events, receipt snapshot, audit,
//!   idempotency) over HTTP against the same statements straight on the database — once with the audit append,
//!   once without it, to show what the audit log's head row costs;
//! - claim-next sustained over a large queue (`AMTSWEG_BENCH_CLAIM_SECONDS`, 180 by default, with the rate of every
//!   30 seconds) against the raw `FOR UPDATE SKIP LOCKED` claim (checking that no case is handed out twice);
//! - a decision (the decision document rendered and stored, the workflow's decision transition, the timer stopped,
//!   audit, event) against the same statements straight on the database (which render no document);
//! - a case search over many cases (1,000,000 by default; `AMTSWEG_BENCH_CASES`): p50/p99 of a filtered first page
//!   at 16 concurrent users over HTTP against the raw SQL query, with PostgreSQL's plan.
//!
//! `cargo bench -p amtsweg-tests --bench casework` (SQLite; set AMTSWEG_TEST_POSTGRES_URL for PostgreSQL).

use std::collections::HashSet;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use amtsweg_db::DbConnection;
use amtsweg_test_support::{Backend, TestApp};
use diesel::connection::SimpleConnection;
use diesel::{Connection, QueryableByName, RunQueryDsl};
use reqwest::StatusCode;
use serde_json::{Value, json};

const WINDOW: Duration = Duration::from_secs(5);
const CLIENTS: usize = 8;
const SEARCHERS: usize = 16;
const SEARCHES: usize = 1_600;

fn connect(url: &str, postgres: bool) -> DbConnection {
    let mut conn = DbConnection::establish(url).expect("connect");
    if !postgres {
        conn.batch_execute("PRAGMA busy_timeout = 60000; PRAGMA synchronous = FULL;")
            .expect("pragmas");
    }
    conn
}

/// `CLIENTS` threads run `work(item)` — a list of statements, in one transaction each — over the items until the
/// window ends or the items run out; answers the rate.
fn raw_rate(
    url: &str,
    postgres: bool,
    items: Vec<String>,
    work: impl Fn(&str, usize) -> Vec<String> + Send + Sync + 'static,
) -> f64 {
    raw_rate_for(WINDOW, url, postgres, items, work)
}

fn raw_rate_for(
    window: Duration,
    url: &str,
    postgres: bool,
    items: Vec<String>,
    work: impl Fn(&str, usize) -> Vec<String> + Send + Sync + 'static,
) -> f64 {
    let items = Arc::new(items);
    let next = Arc::new(AtomicUsize::new(0));
    let done = Arc::new(AtomicU64::new(0));
    let work = Arc::new(work);
    let started = Instant::now();
    let threads: Vec<_> = (0..CLIENTS)
        .map(|_| {
            let (url, items, next, done, work) = (
                url.to_owned(),
                items.clone(),
                next.clone(),
                done.clone(),
                work.clone(),
            );
            std::thread::spawn(move || {
                let mut conn = connect(&url, postgres);
                while started.elapsed() < window {
                    let n = next.fetch_add(1, Ordering::Relaxed);
                    let Some(item) = items.get(n) else { break };
                    for statement in work(item, n) {
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

fn series(n: usize) -> String {
    format!("WITH RECURSIVE s(n) AS (SELECT 1 UNION ALL SELECT n + 1 FROM s WHERE n < {n})")
}

/// Copies the draft `template` `n` times as `{prefix}{i}`; answers the ids.
fn copy_drafts(conn: &mut DbConnection, template: &str, prefix: &str, n: usize) -> Vec<String> {
    diesel::sql_query(format!(
        "{} INSERT INTO applications (id, account_id, procedure_id, procedure_version, procedure_hash, unit_id, data, prefilled, status, version, created_at, updated_at, queued) \
         SELECT '{prefix}' || s.n, a.account_id, a.procedure_id, a.procedure_version, a.procedure_hash, a.unit_id, a.data, a.prefilled, 'draft', 1, a.created_at, a.updated_at, FALSE \
         FROM s, applications a WHERE a.id = '{template}'",
        series(n)
    ))
    .execute(conn)
    .expect("drafts");
    (1..=n).map(|i| format!("{prefix}{i}")).collect()
}

async fn submit_over_http(app: &TestApp, token: &str, drafts: Vec<String>) -> f64 {
    let drafts = Arc::new(drafts);
    let next = Arc::new(AtomicUsize::new(0));
    let done = Arc::new(AtomicU64::new(0));
    let started = Instant::now();
    let tasks: Vec<_> = (0..CLIENTS)
        .map(|_| {
            let (client, base, token, drafts, next, done) = (
                app.client.clone(),
                app.url(""),
                token.to_owned(),
                drafts.clone(),
                next.clone(),
                done.clone(),
            );
            tokio::spawn(async move {
                while started.elapsed() < WINDOW {
                    let n = next.fetch_add(1, Ordering::Relaxed);
                    let Some(id) = drafts.get(n) else { break };
                    let response = client
                        .post(format!("{base}/api/v1/applications/{id}/submit"))
                        .bearer_auth(&token)
                        .header("idempotency-key", format!("bench-{n}"))
                        .send()
                        .await
                        .expect("request");
                    assert_eq!(
                        response.status(),
                        StatusCode::CREATED,
                        "{:?}",
                        response.text().await
                    );
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

/// The statements of one submit of a dog registration (steuerfestsetzung: first state queued, a mail, a timer, two
/// events, a receipt snapshot and its job), as the service runs them.
fn submit_statements(id: &str, n: usize, ctx: &Ctx, audited: bool) -> Vec<String> {
    let Ctx {
        account,
        session,
        postgres,
        ..
    } = ctx;
    let (begin, lock) = if *postgres {
        ("BEGIN", " FOR UPDATE")
    } else {
        ("BEGIN IMMEDIATE", "")
    };
    let now = "CURRENT_TIMESTAMP";
    let key = format!("raw-{id}");
    let mut statements = vec![
        format!(
            "SELECT s.revoked_at, a.status FROM sessions s JOIN accounts a ON a.id = s.account_id WHERE s.id = '{session}'"
        ),
        format!("SELECT id, account_id, on_behalf_of, status FROM applications WHERE id = '{id}'"),
        format!(
            "INSERT INTO idempotency_keys (caller, route, idempotency_key, request_hash, state, locked_until, created_at, expires_at) VALUES ('citizen:{account}', 'POST /api/v1/applications/{id}/submit', '{key}', 'x', 'running', {now}, {now}, {now})"
        ),
        begin.to_owned(),
        format!("SELECT * FROM applications WHERE id = '{id}'"),
        format!("SELECT document_type FROM application_attachments WHERE application_id = '{id}'"),
        format!(
            "SELECT email, preferred_language, display_name, kind FROM accounts WHERE id = '{account}' AND status <> 'deactivated'"
        ),
    ];
    if *postgres {
        statements.push("SELECT nextval('case_numbers')".into());
    } else {
        statements.push("INSERT INTO case_numbers DEFAULT VALUES".into());
        statements.push("SELECT last_insert_rowid()".into());
        statements.push("DELETE FROM case_numbers".into());
    }
    statements.extend([
        format!("UPDATE applications SET status = 'submitted', case_number = 'raw-{id}', workflow_id = 'steuerfestsetzung', workflow_hash = 'x', state = 'eingegangen', version = 2, applicant_name = 'Erika Mustermann', fee_cents = 0, submitted_at = {now}, updated_at = {now} WHERE id = '{id}' AND version = 1 AND status = 'draft'"),
        format!("INSERT INTO application_name_tokens (token, application_id) VALUES ('erika', '{id}')"),
        format!("INSERT INTO application_name_tokens (token, application_id) VALUES ('mustermann', '{id}')"),
        format!("SELECT MAX(seq) FROM application_steps WHERE application_id = '{id}'"),
        format!("INSERT INTO application_steps (application_id, seq, at, action, from_state, to_state, actor_kind, actor_id, comment, public) VALUES ('{id}', 1, {now}, 'submit', NULL, 'eingegangen', 'citizen', '{account}', NULL, FALSE)"),
        format!("UPDATE applications SET state = 'eingegangen', queued = TRUE, queued_since = {now}, assignee = NULL, claimed_at = NULL WHERE id = '{id}'"),
        format!("SELECT email, preferred_language, display_name, kind FROM accounts WHERE id = '{account}' AND status <> 'deactivated'"),
        format!("INSERT INTO mail_outbox (id, account_id, to_address, subject, body_text, kind, status, created_at) VALUES ('{key}', '{account}', 'x@example.de', 'Hundesteuer – Aktenzeichen raw-{n}', 'Guten Tag, Ihr Antrag ist eingegangen.', 'applications.notice', 'pending', {now})"),
        format!("INSERT INTO jobs (id, kind, payload, dedupe_key, status, run_at, created_at) VALUES ('{key}-mail', 'bench.raw', '{{}}', 'mail:{key}', 'succeeded', {now}, {now})"),
        format!("DELETE FROM application_timers WHERE application_id = '{id}' AND timer_id = 'bearbeitungsfrist'"),
        format!("INSERT INTO application_timers (application_id, timer_id, started_at, due_on, alert_on, kind) VALUES ('{id}', 'bearbeitungsfrist', {now}, '2026-12-21', '2026-12-16', 'deadline')"),
        format!("INSERT INTO events (id, source, event_type, subject, time, data) VALUES ('{key}-accepted', 'urn:amtsweg:applications', 'de.amtsweg.application.accepted.v1', '{id}', {now}, '{{}}')"),
    ]);
    statements.extend([
        format!("INSERT INTO events (id, source, event_type, subject, time, data) VALUES ('{key}-submitted', 'urn:amtsweg:applications', 'de.amtsweg.application.submitted.v1', '{id}', {now}, '{{}}')"),
        format!("SELECT * FROM applications WHERE id = '{id}'"),
        format!("SELECT * FROM application_attachments WHERE application_id = '{id}'"),
        format!("SELECT * FROM application_steps WHERE application_id = '{id}' ORDER BY seq"),
        format!("SELECT due_on FROM application_timers WHERE application_id = '{id}' AND timer_id IN ('bearbeitungsfrist') ORDER BY due_on LIMIT 1"),
        format!("INSERT INTO application_receipts (application_id, snapshot) VALUES ('{id}', '{{\"case_number\": \"raw-{n}\"}}')"),
        format!("INSERT INTO jobs (id, kind, payload, dedupe_key, status, run_at, created_at) VALUES ('{key}-receipt', 'bench.raw', '{{}}', 'receipt:{key}', 'succeeded', {now}, {now})"),
        format!("UPDATE idempotency_keys SET state = 'done', response_status = 201, response_body = '{{}}' WHERE caller = 'citizen:{account}' AND route = 'POST /api/v1/applications/{id}/submit' AND idempotency_key = '{key}'"),
    ]);
    // Last, as the service does: the audit append locks the head row until the commit.
    if audited {
        statements.extend([
            format!("SELECT seq, hash FROM audit_head WHERE id = 1{lock}"),
            format!("INSERT INTO audit_log (seq, id, at, actor_kind, actor_id, action, object_kind, object_id, outcome, prev_hash, hash) SELECT seq + 1, '{key}', {now}, 'citizen', '{account}', 'application.submitted', 'application', '{id}', 'success', hash, hash FROM audit_head WHERE id = 1"),
            "UPDATE audit_head SET seq = seq + 1, hash = hash WHERE id = 1".to_owned(),
        ]);
    }
    statements.push("COMMIT".to_owned());
    statements
}

#[derive(Clone)]
struct Ctx {
    account: String,
    session: String,
    staff_session: String,
    staff: String,
    postgres: bool,
}

fn session_of(token: &str) -> String {
    let payload = token.split('.').nth(1).expect("payload");
    let claims: Value = serde_json::from_slice(
        &base64::Engine::decode(&base64::engine::general_purpose::URL_SAFE_NO_PAD, payload).expect("base64"),
    )
    .expect("claims");
    claims["sid"].as_str().expect("sid").to_owned()
}

fn subject_of(token: &str) -> String {
    let payload = token.split('.').nth(1).expect("payload");
    let claims: Value = serde_json::from_slice(
        &base64::Engine::decode(&base64::engine::general_purpose::URL_SAFE_NO_PAD, payload).expect("base64"),
    )
    .expect("claims");
    claims["sub"].as_str().expect("sub").to_owned()
}

/// `n` submitted, queued, unclaimed dog-tax cases.
fn queued_cases(conn: &mut DbConnection, prefix: &str, n: usize) {
    diesel::sql_query(format!(
        "{} INSERT INTO applications (id, account_id, procedure_id, procedure_version, procedure_hash, unit_id, data, prefilled, status, case_number, workflow_id, workflow_hash, state, version, applicant_name, submitted_at, created_at, updated_at, queued, queued_since) \
         SELECT '{prefix}' || s.n, 'bench', 'hundesteuer-anmeldung', 1, 'x', 'steueramt', '{{}}', '[]', 'submitted', '{prefix}' || s.n, 'steuerfestsetzung', 'x', 'eingegangen', 1, 'Bench', CURRENT_TIMESTAMP, CURRENT_TIMESTAMP, CURRENT_TIMESTAMP, TRUE, CURRENT_TIMESTAMP FROM s",
        series(n)
    ))
    .execute(conn)
    .expect("queued cases");
}

/// How long claim-next is measured.
fn claim_window() -> Duration {
    Duration::from_secs(
        std::env::var("AMTSWEG_BENCH_CLAIM_SECONDS")
            .ok()
            .and_then(|s| s.parse().ok())
            .unwrap_or(180),
    )
}

/// The rate in each 30-second slice of a run, from the claim times.
fn slices(times: &[Duration]) -> String {
    let slices = (claim_window().as_secs() as usize).div_ceil(30).max(1);
    let mut counts = vec![0usize; slices];
    for t in times {
        counts[(t.as_secs() as usize / 30).min(slices - 1)] += 1;
    }
    counts
        .iter()
        .map(|c| format!("{:.0}", *c as f64 / 30.0))
        .collect::<Vec<_>>()
        .join(" ")
}

async fn claim_over_http(app: &TestApp, token: &str) -> (f64, Vec<String>, Vec<Duration>) {
    let window = claim_window();
    let claimed = Arc::new(Mutex::new(Vec::new()));
    let started = Instant::now();
    let url = app.url("/api/v1/staff/queues/steueramt.hundesteuer-anmeldung/claim-next");
    let tasks: Vec<_> = (0..CLIENTS)
        .map(|_| {
            let (client, url, token, claimed) =
                (app.client.clone(), url.clone(), token.to_owned(), claimed.clone());
            tokio::spawn(async move {
                while started.elapsed() < window {
                    let response = client
                        .post(&url)
                        .bearer_auth(&token)
                        .json(&json!({}))
                        .send()
                        .await
                        .expect("request");
                    assert_eq!(response.status(), StatusCode::OK);
                    let case: Value = response.json().await.expect("case");
                    claimed
                        .lock()
                        .expect("lock")
                        .push((case["id"].as_str().expect("id").to_owned(), started.elapsed()));
                }
            })
        })
        .collect();
    for task in tasks {
        task.await.expect("task");
    }
    let claimed = std::mem::take(&mut *claimed.lock().expect("lock"));
    let rate = claimed.len() as f64 / started.elapsed().as_secs_f64();
    let (ids, times) = claimed.into_iter().unzip();
    (rate, ids, times)
}

/// `n` dog-tax cases in processing, claimed by `staff`, under the workflow version of the submitted case `like`.
fn cases_in_processing(
    conn: &mut DbConnection,
    like: &str,
    prefix: &str,
    staff: &str,
    n: usize,
) -> Vec<String> {
    diesel::sql_query(format!(
        "{} INSERT INTO applications (id, account_id, procedure_id, procedure_version, procedure_hash, unit_id, data, prefilled, status, case_number, workflow_id, workflow_hash, state, version, applicant_name, fee_cents, submitted_at, created_at, updated_at, queued, queued_since, assignee, claimed_at) \
         SELECT '{prefix}' || s.n, a.account_id, a.procedure_id, a.procedure_version, a.procedure_hash, a.unit_id, a.data, a.prefilled, 'submitted', '{prefix}' || s.n, a.workflow_id, a.workflow_hash, 'in_bearbeitung', 1, a.applicant_name, 0, CURRENT_TIMESTAMP, CURRENT_TIMESTAMP, CURRENT_TIMESTAMP, TRUE, CURRENT_TIMESTAMP, '{staff}', CURRENT_TIMESTAMP \
         FROM s, applications a WHERE a.id = '{like}'",
        series(n)
    ))
    .execute(conn)
    .expect("cases in processing");
    diesel::sql_query(format!(
        "{} INSERT INTO application_timers (application_id, timer_id, started_at, due_on, alert_on, kind) \
         SELECT '{prefix}' || s.n, 'bearbeitungsfrist', CURRENT_TIMESTAMP, '2099-12-21', '2099-12-16', 'deadline' FROM s",
        series(n)
    ))
    .execute(conn)
    .expect("timers");
    (1..=n).map(|i| format!("{prefix}{i}")).collect()
}

async fn decide_over_http(app: &TestApp, token: &str, cases: Vec<String>) -> f64 {
    let cases = Arc::new(cases);
    let next = Arc::new(AtomicUsize::new(0));
    let done = Arc::new(AtomicU64::new(0));
    let started = Instant::now();
    let tasks: Vec<_> = (0..CLIENTS)
        .map(|_| {
            let (client, base, token, cases, next, done) = (
                app.client.clone(),
                app.url(""),
                token.to_owned(),
                cases.clone(),
                next.clone(),
                done.clone(),
            );
            tokio::spawn(async move {
                while started.elapsed() < WINDOW {
                    let n = next.fetch_add(1, Ordering::Relaxed);
                    let Some(id) = cases.get(n) else { break };
                    let response = client
                        .post(format!("{base}/api/v1/staff/cases/{id}/decision"))
                        .bearer_auth(&token)
                        .header("if-match", "\"1\"")
                        .json(&json!({"result": "approved", "reasons": "Die Hundesteuer wird nach der Satzung festgesetzt."}))
                        .send()
                        .await
                        .expect("request");
                    assert_eq!(response.status(), StatusCode::OK, "{:?}", response.text().await);
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

/// The statements of one decision as the service runs them: the read and check, the document stored (blob and
/// file, in their own transaction), then the decision, the transition into delivery, the timer stopped, the event,
/// the fiction check, the audit append, and the reads of the answer.
fn decision_statements(id: &str, n: usize, ctx: &Ctx) -> Vec<String> {
    let Ctx {
        account,
        staff,
        staff_session,
        postgres,
        ..
    } = ctx;
    let (begin, head) = if *postgres {
        ("BEGIN", " FOR UPDATE")
    } else {
        ("BEGIN IMMEDIATE", "")
    };
    let now = "CURRENT_TIMESTAMP";
    let file = format!("rawfile-{id}");
    vec![
        format!(
            "SELECT s.revoked_at, a.status FROM sessions s JOIN accounts a ON a.id = s.account_id WHERE s.id = '{staff_session}'"
        ),
        format!("SELECT * FROM applications WHERE id = '{id}' AND unit_id IN ('steueramt')"),
        format!(
            "SELECT email, preferred_language, display_name, kind FROM accounts WHERE id = '{account}' AND status <> 'deactivated'"
        ),
        begin.to_owned(),
        format!("SELECT owners FROM blobs WHERE sha256 = 'raw-{n}'"),
        format!(
            "INSERT INTO blobs (sha256, size, media_type, owners, created_at) VALUES ('raw-{n}', 30000, 'application/pdf', 1, {now})"
        ),
        format!(
            "INSERT INTO files (id, sha256, owner_module, account_id, name, media_type, size, created_at, expires_at) VALUES ('{file}', 'raw-{n}', 'uploads', '{account}', 'Bescheid.pdf', 'application/pdf', 30000, {now}, {now})"
        ),
        "COMMIT".to_owned(),
        begin.to_owned(),
        format!("SELECT * FROM applications WHERE id = '{id}' AND unit_id IN ('steueramt')"),
        format!("SELECT document_type FROM application_attachments WHERE application_id = '{id}'"),
        format!(
            "SELECT timer_id FROM application_timers WHERE application_id = '{id}' AND due_on < '2026-01-01'"
        ),
        format!(
            "UPDATE files SET owner_module = 'applications', expires_at = NULL WHERE id = '{file}' AND account_id = '{account}' AND expires_at IS NOT NULL"
        ),
        format!("SELECT * FROM files WHERE id = '{file}'"),
        format!(
            "INSERT INTO application_decisions (id, application_id, result, reasons, fee_cents, author, created_at, file_id, pdf_sha256, data_sha256) VALUES ('raw-{n}', '{id}', 'approved', 'Die Hundesteuer wird nach der Satzung festgesetzt.', 0, '{staff}', {now}, '{file}', 'x', 'x')"
        ),
        format!(
            "UPDATE applications SET version = 2, updated_at = {now}, fee_cents = 0, fee_lines = '[]' WHERE id = '{id}'"
        ),
        format!("SELECT MAX(seq) FROM application_steps WHERE application_id = '{id}'"),
        format!(
            "INSERT INTO application_steps (application_id, seq, at, action, from_state, to_state, actor_kind, actor_id, comment, public) VALUES ('{id}', 1, {now}, 'festsetzen', 'in_bearbeitung', 'bescheid_zustellung', 'staff', '{staff}', 'x', FALSE)"
        ),
        format!(
            "UPDATE approval_fictions SET stopped_at = {now}, stop_reason = 'x' WHERE application_id = '{id}' AND occurred_at IS NULL AND stopped_at IS NULL"
        ),
        format!(
            "UPDATE applications SET state = 'bescheid_zustellung', queued = FALSE, queued_since = NULL, assignee = NULL, claimed_at = NULL WHERE id = '{id}'"
        ),
        format!(
            "DELETE FROM application_timers WHERE application_id = '{id}' AND timer_id = 'bearbeitungsfrist'"
        ),
        format!(
            "INSERT INTO events (id, source, event_type, subject, time, data) VALUES ('rawdecision-{n}', 'urn:amtsweg:applications', 'de.amtsweg.application.transitioned.v1', '{id}', {now}, '{{}}')"
        ),
        format!(
            "UPDATE approval_fictions SET stopped_at = {now}, stop_reason = 'decided' WHERE application_id = '{id}' AND occurred_at IS NULL AND stopped_at IS NULL"
        ),
        format!("SELECT * FROM applications WHERE id = '{id}'"),
        format!("SELECT * FROM application_attachments WHERE application_id = '{id}'"),
        format!("SELECT * FROM application_steps WHERE application_id = '{id}' ORDER BY seq"),
        format!("SELECT * FROM application_notes WHERE application_id = '{id}'"),
        format!("SELECT * FROM information_requests WHERE application_id = '{id}'"),
        format!("SELECT * FROM approval_fictions WHERE application_id = '{id}'"),
        format!("SELECT seq, hash FROM audit_head WHERE id = 1{head}"),
        format!(
            "INSERT INTO audit_log (seq, id, at, actor_kind, actor_id, action, object_kind, object_id, outcome, prev_hash, hash) SELECT seq + 1, 'decision-{n}', {now}, 'staff', '{staff}', 'case.decided', 'application', '{id}', 'success', hash, hash FROM audit_head WHERE id = 1"
        ),
        "UPDATE audit_head SET seq = seq + 1, hash = hash WHERE id = 1".to_owned(),
        "COMMIT".to_owned(),
    ]
}

fn claim_statements(ctx: &Ctx, n: usize) -> Vec<String> {
    let Ctx {
        staff,
        staff_session,
        postgres,
        ..
    } = ctx;
    let (begin, lock) = if *postgres {
        ("BEGIN", " FOR UPDATE SKIP LOCKED")
    } else {
        ("BEGIN IMMEDIATE", "")
    };
    let head = if *postgres { " FOR UPDATE" } else { "" };
    let pick = format!(
        "SELECT id FROM applications WHERE unit_id = 'steueramt' AND procedure_id = 'hundesteuer-anmeldung' AND queued = TRUE AND assignee IS NULL ORDER BY queued_since, id LIMIT 1{lock}"
    );
    vec![
        format!(
            "SELECT s.revoked_at, a.status FROM sessions s JOIN accounts a ON a.id = s.account_id WHERE s.id = '{staff_session}'"
        ),
        begin.to_owned(),
        pick.clone(),
        // The pick again finds the row this transaction has just locked; RETURNING stands for reading it back.
        format!(
            "UPDATE applications SET assignee = '{staff}', claimed_at = CURRENT_TIMESTAMP, version = version + 1 WHERE id = ({pick}) RETURNING *"
        ),
        format!("SELECT seq, hash FROM audit_head WHERE id = 1{head}"),
        format!(
            "INSERT INTO audit_log (seq, id, at, actor_kind, actor_id, action, object_kind, object_id, outcome, prev_hash, hash) SELECT seq + 1, 'claim-{n}', CURRENT_TIMESTAMP, 'staff', '{staff}', 'case.claimed', 'application', 'x', 'success', hash, hash FROM audit_head WHERE id = 1"
        ),
        "UPDATE audit_head SET seq = seq + 1, hash = hash WHERE id = 1".to_owned(),
        "COMMIT".to_owned(),
    ]
}

/// `n` submitted cases over the shipped units and procedures, states and 1,000 applicant names, with their name
/// words; one in four queued.
fn many_cases(conn: &mut DbConnection, n: usize) {
    // Fixed-width lists, picked with substr (the same on both backends).
    const PROCEDURES: [(&str, &str, &str, &str); 5] = [
        (
            "hundesteuer-anmeldung",
            "steueramt",
            "steuerfestsetzung",
            "eingegangen",
        ),
        (
            "bewohnerparkausweis",
            "ordnungsamt",
            "standard-pruefung",
            "in_pruefung",
        ),
        (
            "gewerbeanmeldung",
            "ordnungsamt",
            "standard-pruefung",
            "eingegangen",
        ),
        ("baugenehmigung", "bauordnungsamt", "bauantrag", "fachpruefung"),
        (
            "kita-platz",
            "amt-fuer-jugend-und-familie",
            "platzvergabe",
            "warteliste",
        ),
    ];
    const FIRST: [&str; 10] = [
        "anna", "paul", "erika", "max", "lena", "jonas", "marie", "lukas", "sophie", "felix",
    ];
    const LAST: [&str; 20] = [
        "mueller",
        "schmidt",
        "schneider",
        "fischer",
        "weber",
        "meyer",
        "wagner",
        "becker",
        "schulz",
        "hoffmann",
        "koch",
        "richter",
        "klein",
        "wolf",
        "schroeder",
        "neumann",
        "schwarz",
        "braun",
        "zimmermann",
        "krueger",
    ];
    let procedures: String = PROCEDURES
        .iter()
        .map(|(p, u, w, st)| format!("{p:<24}{u:<28}{w:<20}{st:<16}"))
        .collect();
    let pick = |offset: usize, width: usize| {
        format!(
            "trim(substr('{procedures}', (s.n % 5) * 88 + {} , {width}))",
            offset + 1
        )
    };
    let names = |list: &[&str]| list.iter().map(|name| format!("{name:<12}")).collect::<String>();
    let first = format!("trim(substr('{}', ((s.n / 5) % 10) * 12 + 1, 12))", names(&FIRST));
    let last = format!("trim(substr('{}', ((s.n / 50) % 20) * 12 + 1, 12))", names(&LAST));
    let (procedure, unit, workflow, state) = (pick(0, 24), pick(24, 28), pick(52, 20), pick(72, 16));
    let now = "CURRENT_TIMESTAMP";
    diesel::sql_query(format!(
        "{} INSERT INTO applications (id, account_id, procedure_id, procedure_version, procedure_hash, unit_id, data, prefilled, status, case_number, workflow_id, workflow_hash, state, version, applicant_name, submitted_at, created_at, updated_at, queued, queued_since) \
         SELECT 'many-' || s.n, 'bench', {procedure}, 1, 'x', {unit}, '{{}}', '[]', 'submitted', 'many-' || s.n, {workflow}, 'x', {state}, 1, {first} || ' ' || {last}, {now}, {now}, {now}, s.n % 4 = 0, {now} FROM s",
        series(n),
    ))
    .execute(conn)
    .expect("cases");
    for name in [&first, &last] {
        diesel::sql_query(format!(
            "{} INSERT INTO application_name_tokens (token, application_id) SELECT {name}, 'many-' || s.n FROM s",
            series(n)
        ))
        .execute(conn)
        .expect("tokens");
    }
}

/// Latencies of `SEARCHES` filtered first pages from `SEARCHERS` concurrent users over HTTP.
async fn search_over_http(app: &TestApp, token: &str, query: &str) -> (f64, Vec<Duration>) {
    let next = Arc::new(AtomicUsize::new(0));
    let latencies = Arc::new(Mutex::new(Vec::with_capacity(SEARCHES)));
    let started = Instant::now();
    let url = app.url(&format!("/api/v1/staff/cases?{query}"));
    // A fresh client: connections left idle while the cases were generated have been closed by the server.
    let client = reqwest::Client::new();
    let tasks: Vec<_> = (0..SEARCHERS)
        .map(|_| {
            let (client, url, token, next, latencies) = (
                client.clone(),
                url.clone(),
                token.to_owned(),
                next.clone(),
                latencies.clone(),
            );
            tokio::spawn(async move {
                while next.fetch_add(1, Ordering::Relaxed) < SEARCHES {
                    let sent = Instant::now();
                    let response = client
                        .get(&url)
                        .bearer_auth(&token)
                        .send()
                        .await
                        .expect("request");
                    assert_eq!(response.status(), StatusCode::OK);
                    let page: Value = response.json().await.expect("page");
                    assert!(!page["items"].as_array().expect("items").is_empty(), "{page}");
                    latencies.lock().expect("lock").push(sent.elapsed());
                }
            })
        })
        .collect();
    for task in tasks {
        task.await.expect("task");
    }
    let latencies = std::mem::take(&mut *latencies.lock().expect("lock"));
    (
        latencies.len() as f64 / started.elapsed().as_secs_f64(),
        latencies,
    )
}

fn search_over_sql(url: &str, postgres: bool, statements: Vec<String>) -> (f64, Vec<Duration>) {
    let next = Arc::new(AtomicUsize::new(0));
    let latencies = Arc::new(Mutex::new(Vec::with_capacity(SEARCHES)));
    let statements = Arc::new(statements);
    let started = Instant::now();
    let threads: Vec<_> = (0..SEARCHERS)
        .map(|_| {
            let (url, next, latencies, statements) = (
                url.to_owned(),
                next.clone(),
                latencies.clone(),
                statements.clone(),
            );
            std::thread::spawn(move || {
                let mut conn = connect(&url, postgres);
                while next.fetch_add(1, Ordering::Relaxed) < SEARCHES {
                    let sent = Instant::now();
                    for statement in statements.iter() {
                        diesel::sql_query(statement).execute(&mut conn).expect("search");
                    }
                    latencies.lock().expect("lock").push(sent.elapsed());
                }
            })
        })
        .collect();
    for thread in threads {
        thread.join().expect("thread");
    }
    let latencies = std::mem::take(&mut *latencies.lock().expect("lock"));
    (
        latencies.len() as f64 / started.elapsed().as_secs_f64(),
        latencies,
    )
}

fn percentile(latencies: &mut [Duration], p: f64) -> f64 {
    latencies.sort();
    let index = ((latencies.len() as f64 * p).ceil() as usize)
        .saturating_sub(1)
        .min(latencies.len() - 1);
    latencies[index].as_secs_f64() * 1000.0
}

#[derive(QueryableByName)]
struct Count {
    #[diesel(sql_type = diesel::sql_types::BigInt)]
    n: i64,
}

#[derive(QueryableByName)]
struct LitePlan {
    #[diesel(sql_type = diesel::sql_types::Text)]
    detail: String,
}

#[derive(QueryableByName)]
struct Plan {
    #[diesel(sql_type = diesel::sql_types::Text, column_name = "QUERY PLAN")]
    line: String,
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
        let cases: usize = std::env::var("AMTSWEG_BENCH_CASES").ok().and_then(|n| n.parse().ok()).unwrap_or(1_000_000);
        let app = TestApp::builder(backend)
            .configure(|s| {
                s.server.workers = None;
                s.database.pool_size = 8;
            })
            .spawn()
            .await
            .expect("app");
        let url = app.database.url_string();
        let url = url.strip_prefix("sqlite://").unwrap_or(&url).to_owned();
        let citizen = app.citizen("bench@example.de").await;
        let token = citizen.tokens.access_token.clone();
        let admin = app.admin().await.access_token;
        let created = app
            .post_as(
                "/api/v1/admin/staff",
                &admin,
                &json!({"email": "bench@stadt.example", "name": "Bench", "roles": [{"role": "case_worker", "unit": "steueramt"}]}),
            )
            .await;
        let password = created.json::<Value>().await.expect("staff")["initial_password"].as_str().expect("password").to_owned();
        let (staff_tokens, _) = app.staff_login("bench@stadt.example", &password, None).await;
        let staff_token = staff_tokens.access_token;
        let ctx = Ctx {
            account: citizen.id.clone(),
            session: session_of(&token),
            staff_session: session_of(&staff_token),
            staff: subject_of(&staff_token),
            postgres,
        };

        // Submit.
        let template = app
            .post_as(
                "/api/v1/applications",
                &token,
                &json!({"procedure_id": "hundesteuer-anmeldung", "data": {
                    "halter": {"vorname": "Erika", "nachname": "Mustermann", "geburtsdatum": "1980-04-01"},
                    "hund": {"name": "Bello", "rasse": "Labrador", "chipnummer": "276098106000001"},
                    "haltung_seit": "2026-11-01"
                }}),
            )
            .await
            .json::<Value>()
            .await
            .expect("draft")["id"]
            .as_str()
            .expect("id")
            .to_owned();
        let mut conn = connect(&url, postgres);
        let drafts = copy_drafts(&mut conn, &template, "http-", 20_000);
        let raw_drafts = copy_drafts(&mut conn, &template, "raw-", 20_000);
        let bare_drafts = copy_drafts(&mut conn, &template, "bare-", 20_000);
        let http_submit = submit_over_http(&app, &token, drafts).await;
        let c = ctx.clone();
        let raw_url = url.clone();
        let raw_submit = tokio::task::spawn_blocking(move || raw_rate(&raw_url, postgres, raw_drafts, move |id, n| submit_statements(id, n, &c, true)))
            .await
            .expect("raw");
        let c = ctx.clone();
        let raw_url = url.clone();
        let bare_submit = tokio::task::spawn_blocking(move || raw_rate(&raw_url, postgres, bare_drafts, move |id, n| submit_statements(id, n, &c, false)))
            .await
            .expect("raw");
        println!("\nSubmit a dog registration ({name}, {CLIENTS} concurrent clients)");
        println!("  over HTTP (validation, case number, state, timer, mail, events, receipt, audit, idempotency): {http_submit:8.1}/s");
        println!("  the same statements directly on the database:                                               {raw_submit:8.1}/s  ratio {:5.2} (aim ≥ 0.50)", http_submit / raw_submit);
        println!("  the same statements without the audit append:                                               {bare_submit:8.1}/s  ratio {:5.2}", http_submit / bare_submit);

        // Decide.
        let decided = cases_in_processing(&mut conn, "http-1", "decide-", &ctx.staff, 5_000);
        let raw_decided = cases_in_processing(&mut conn, "http-1", "rawdecide-", &ctx.staff, 20_000);
        let http_decide = decide_over_http(&app, &staff_token, decided).await;
        let c = ctx.clone();
        let raw_url = url.clone();
        let raw_decide = tokio::task::spawn_blocking(move || raw_rate(&raw_url, postgres, raw_decided, move |id, n| decision_statements(id, n, &c)))
            .await
            .expect("raw");
        println!("\nDecide a case in processing ({name}, {CLIENTS} concurrent clients)");
        println!("  over HTTP (decision document rendered and stored, transition, timer, event, audit): {http_decide:8.1}/s");
        println!("  the same statements directly on the database (no document rendered):             {raw_decide:8.1}/s  ratio {:5.2} (aim ≥ 0.50)", http_decide / raw_decide);

        // Claim-next.
        queued_cases(&mut conn, "queue-", 400_000);
        // As autovacuum would after such a change.
        conn.batch_execute(if postgres { "ANALYZE applications;" } else { "ANALYZE;" })
            .expect("analyze");
        let (http_claim, claimed, times) = claim_over_http(&app, &staff_token).await;
        let unique: HashSet<&String> = claimed.iter().collect();
        assert_eq!(unique.len(), claimed.len(), "a case was handed out twice");
        // Claimed cases stay in their first state with their holder (the cases decided above left it).
        let holders: i64 = diesel::sql_query(format!("SELECT COUNT(*) AS n FROM applications WHERE assignee = '{}' AND state = 'eingegangen'", ctx.staff))
            .get_result::<Count>(&mut conn)
            .expect("count")
            .n;
        assert_eq!(holders as usize, claimed.len(), "every claim answered is one case held");
        let c = ctx.clone();
        let raw_url = url.clone();
        let items: Vec<String> = (0..1_000_000).map(|i| i.to_string()).collect();
        let raw_claim = tokio::task::spawn_blocking(move || raw_rate_for(claim_window(), &raw_url, postgres, items, move |_, n| claim_statements(&c, n)))
            .await
            .expect("raw");
        println!("\nClaim the next case of a queue of 400,000 for {} s ({name}, {CLIENTS} concurrent clients)", claim_window().as_secs());
        println!("  over HTTP (claim-next, audit):              {http_claim:8.1}/s  ({} cases, none twice; per 30 s: {})", claimed.len(), slices(&times));
        println!("  the raw SKIP LOCKED claim and audit append: {raw_claim:8.1}/s  ratio {:5.2} (aim ≥ 0.50)", http_claim / raw_claim);

        // Search.
        let generated = Instant::now();
        many_cases(&mut conn, cases);
        if postgres {
            conn.batch_execute("ANALYZE applications; ANALYZE application_name_tokens;").expect("analyze");
        } else {
            conn.batch_execute("ANALYZE;").expect("analyze");
        }
        println!("\nCase search over {cases} generated cases (generated in {:.1} s; {name}, {SEARCHERS} concurrent users, {SEARCHES} searches)", generated.elapsed().as_secs_f64());
        let columns = "id, account_id, on_behalf_of, procedure_id, procedure_version, procedure_hash, unit_id, data, status, case_number, workflow_id, state, version, applicant_name, fee_cents, submitted_at, created_at, updated_at, assignee";
        let session = format!("SELECT s.revoked_at, a.status FROM sessions s JOIN accounts a ON a.id = s.account_id WHERE s.id = '{}'", ctx.staff_session);
        let filtered = format!("SELECT {columns} FROM applications WHERE status = 'submitted' AND unit_id IN ('steueramt') AND procedure_id = 'hundesteuer-anmeldung' AND state = 'eingegangen' ORDER BY submitted_at DESC, id DESC LIMIT 21");
        let by_name = format!("SELECT {columns} FROM applications WHERE status = 'submitted' AND unit_id IN ('steueramt') AND EXISTS (SELECT 1 FROM application_name_tokens t WHERE t.application_id = applications.id AND t.token LIKE 'schm%' ESCAPE '\\') ORDER BY submitted_at DESC, id DESC LIMIT 21");
        for (label, query, sql) in [
            ("procedure and state", "procedure_id=hundesteuer-anmeldung&state=eingegangen", &filtered),
            ("applicant name prefix", "applicant=schm", &by_name),
        ] {
            let (http_rate, mut http) = search_over_http(&app, &staff_token, query).await;
            let (raw_url, statements) = (url.clone(), vec![session.clone(), sql.clone()]);
            let (raw_rate, mut raw) = tokio::task::spawn_blocking(move || search_over_sql(&raw_url, postgres, statements)).await.expect("raw");
            println!(
                "  {label:22} HTTP p50 {:6.1} ms  p99 {:6.1} ms  {http_rate:7.1}/s | SQL p50 {:6.1} ms  p99 {:6.1} ms  {raw_rate:7.1}/s | ratio {:5.2} (aim ≥ 0.40)",
                percentile(&mut http, 0.5),
                percentile(&mut http, 0.99),
                percentile(&mut raw, 0.5),
                percentile(&mut raw, 0.99),
                http_rate / raw_rate
            );
            if postgres {
                let plan: Vec<Plan> = diesel::sql_query(format!("EXPLAIN {sql}")).load(&mut conn).expect("plan");
                for line in plan {
                    println!("      {}", line.line);
                }
            } else if sql.contains("LIKE 'schm%'") {
                // The plan of the statement as the service sends it: the pattern as a bound parameter.
                let bound = sql.replace("LIKE 'schm%'", "LIKE ?");
                let plan: Vec<LitePlan> = diesel::sql_query(format!("EXPLAIN QUERY PLAN {bound}"))
                    .bind::<diesel::sql_types::Text, _>("schm%")
                    .load(&mut conn)
                    .expect("plan");
                for line in plan {
                    println!("      {}", line.detail);
                }
                let started = Instant::now();
                for _ in 0..20 {
                    diesel::sql_query(&bound)
                        .bind::<diesel::sql_types::Text, _>("schm%")
                        .execute(&mut conn)
                        .expect("bound");
                }
                println!("      bound: {:.1} ms each", started.elapsed().as_secs_f64() * 1000.0 / 20.0);
            }
        }
    });
}
