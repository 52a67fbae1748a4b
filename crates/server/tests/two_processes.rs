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
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use diesel::connection::SimpleConnection;
use diesel::{Connection, PgConnection, QueryableByName, RunQueryDsl};
use serde_json::{Value, json};

const QUEUED: usize = 600;
const WAITING: usize = 50;
const STAFF: usize = 4;

/// A database of the test's own on the shared server, dropped at the end.
struct Database {
    admin_url: String,
    name: String,
    url: String,
}

impl Database {
    fn create(base: &str) -> Database {
        let name = format!(
            "amtsweg_procs_{}_{}",
            std::process::id(),
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap()
                .subsec_nanos()
        );
        let mut conn = PgConnection::establish(base).expect("the test PostgreSQL");
        conn.batch_execute(&format!("CREATE DATABASE {name}")).unwrap();
        let (server, _) = base.rsplit_once('/').expect("a database URL");
        Database {
            admin_url: base.to_owned(),
            url: format!("{server}/{name}"),
            name,
        }
    }
}

impl Drop for Database {
    fn drop(&mut self) {
        if let Ok(mut conn) = PgConnection::establish(&self.admin_url) {
            let _ = conn.batch_execute(&format!("DROP DATABASE IF EXISTS {} WITH (FORCE)", self.name));
        }
    }
}

fn amtsweg(data: &Path, database: &str) -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_amtsweg"));
    command.current_dir(Path::new(env!("CARGO_MANIFEST_DIR")).join("../.."));
    for (key, _) in std::env::vars() {
        if key.starts_with("AMTSWEG__") {
            command.env_remove(key);
        }
    }
    command
        .env("AMTSWEG__STORAGE__DATA_DIR", data)
        .env("AMTSWEG__DATABASE__URL", database)
        .env("AMTSWEG__SERVER__PORT", "0")
        .env("RUST_LOG", "warn,amtsweg_server=info");
    command
}

/// A running `amtsweg serve`; killed (SIGKILL) when dropped.
struct Instance {
    child: Child,
    base: String,
}

impl Instance {
    fn start(data: &Path, database: &str) -> Instance {
        let mut child = amtsweg(data, database)
            .arg("serve")
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("amtsweg serve");
        let stderr = child.stderr.take().unwrap();
        let (found, port) = std::sync::mpsc::channel();
        // Read the log on a thread of its own for as long as the process lives, so it never blocks on a full pipe.
        std::thread::spawn(move || {
            let mut found = Some(found);
            for line in BufReader::new(stderr).lines() {
                let Ok(line) = line else { break };
                if let Some(rest) = line.split("Amtsweg listening on http://127.0.0.1:").nth(1)
                    && let Some(sender) = found.take()
                {
                    let _ = sender.send(rest.split(' ').next().unwrap_or_default().to_owned());
                }
            }
        });
        let port = port
            .recv_timeout(Duration::from_secs(60))
            .expect("the instance starts and names its port");
        Instance {
            child,
            base: format!("http://127.0.0.1:{port}"),
        }
    }

    fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for Instance {
    fn drop(&mut self) {
        self.kill();
    }
}

fn add_staff(data: &Path, database: &str, email: &str, role: &str) -> String {
    let output = amtsweg(data, database)
        .args([
            "staff",
            "add",
            "--email",
            email,
            "--name",
            "Sachbearbeitung",
            "--role",
            role,
        ])
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "{stdout} {}",
        String::from_utf8_lossy(&output.stderr)
    );
    stdout
        .split("one-time password: ")
        .nth(1)
        .and_then(|rest| rest.split_whitespace().next())
        .expect("the one-time password")
        .to_owned()
}

fn now_unix() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

/// The first login of a member of staff: TOTP set up with a code of this 30-second step, then the login with the
/// next step's (one step of skew is accepted; a step is used once).
async fn staff_token(client: &reqwest::Client, base: &str, email: &str, password: &str) -> String {
    let first = client
        .post(format!("{base}/api/v1/staff/auth/login"))
        .json(&json!({"email": email, "password": password}))
        .send()
        .await
        .unwrap();
    let problem: Value = first.json().await.unwrap();
    assert_eq!(problem["code"], "totp_enrollment_required", "{problem}");
    let enrolment_token = problem["enrollment_token"].as_str().unwrap();
    let enrolment: Value = client
        .post(format!("{base}/api/v1/staff/auth/totp"))
        .json(&json!({"enrollment_token": enrolment_token}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let secret = enrolment["secret"].as_str().unwrap();
    let now = now_unix();
    let confirmed = client
        .post(format!("{base}/api/v1/staff/auth/totp/confirm"))
        .json(&json!({"enrollment_token": enrolment_token, "code": amtsweg_account::domain::totp::code_at(secret, now).unwrap()}))
        .send()
        .await
        .unwrap();
    assert_eq!(confirmed.status(), 200, "{:?}", confirmed.text().await);
    let login = client
        .post(format!("{base}/api/v1/staff/auth/login"))
        .json(&json!({"email": email, "password": password, "totp_code": amtsweg_account::domain::totp::code_at(secret, now + 30).unwrap()}))
        .send()
        .await
        .unwrap();
    assert_eq!(login.status(), 200, "{:?}", login.text().await);
    login.json::<Value>().await.unwrap()["access_token"]
        .as_str()
        .unwrap()
        .to_owned()
}

#[derive(QueryableByName)]
struct Count {
    #[diesel(sql_type = diesel::sql_types::BigInt)]
    n: i64,
}

fn count(conn: &mut PgConnection, sql: &str) -> i64 {
    diesel::sql_query(sql).get_result::<Count>(conn).unwrap().n
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
    let Ok(base_url) = std::env::var("AMTSWEG_TEST_POSTGRES_URL") else {
        assert!(
            std::env::var("CI").as_deref() != Ok("true"),
            "CI runs the PostgreSQL tests: set AMTSWEG_TEST_POSTGRES_URL"
        );
        eprintln!("skipped: set AMTSWEG_TEST_POSTGRES_URL to run two processes on PostgreSQL");
        return;
    };
    let database = Database::create(&base_url);
    let data = tempfile::tempdir().unwrap();
    let data: PathBuf = data.path().to_owned();
    let url = database.url.clone();

    let mut first = Instance::start(&data, &url);
    let second = Instance::start(&data, &url);
    let mut conn = PgConnection::establish(&url).unwrap();
    seed(&mut conn);

    let client = reqwest::Client::new();
    let mut tokens = Vec::new();
    for i in 0..STAFF {
        let email = format!("procs{i}@stadt.example");
        let password = add_staff(&data, &url, &email, "case_worker:steueramt");
        let base = if i % 2 == 0 { &first.base } else { &second.base };
        tokens.push(staff_token(&client, base, &email, &password).await);
    }
    let admin_password = add_staff(&data, &url, "procs-admin@stadt.example", "system_admin");
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
    assert_eq!(claimed.len(), QUEUED, "every queued case was handed out");
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
