//! Real `amtsweg serve` processes for tests that kill them: a database of the test's own on the shared
//! PostgreSQL, instances started from the binary and killed with SIGKILL, staff created through the command line
//! and logged in with their first TOTP set-up.

use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use diesel::connection::SimpleConnection;
use diesel::{Connection, PgConnection, QueryableByName, RunQueryDsl};
use serde_json::{Value, json};

/// A database of the test's own on the shared server, dropped at the end.
pub struct PgDatabase {
    admin_url: String,
    name: String,
    pub url: String,
}

impl PgDatabase {
    pub fn create(base: &str) -> PgDatabase {
        let name = format!(
            "amtsweg_procs_{}_{}",
            std::process::id(),
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .expect("clock")
                .subsec_nanos()
        );
        let mut conn = PgConnection::establish(base).expect("the test PostgreSQL");
        conn.batch_execute(&format!("CREATE DATABASE {name}"))
            .expect("create database");
        let (server, _) = base.rsplit_once('/').expect("a database URL");
        PgDatabase {
            admin_url: base.to_owned(),
            url: format!("{server}/{name}"),
            name,
        }
    }

    pub fn connect(&self) -> PgConnection {
        PgConnection::establish(&self.url).expect("the test database")
    }
}

impl Drop for PgDatabase {
    fn drop(&mut self) {
        if let Ok(mut conn) = PgConnection::establish(&self.admin_url) {
            let _ = conn.batch_execute(&format!("DROP DATABASE IF EXISTS {} WITH (FORCE)", self.name));
        }
    }
}

#[derive(QueryableByName)]
struct Count {
    #[diesel(sql_type = diesel::sql_types::BigInt)]
    n: i64,
}

/// `SELECT COUNT(*) AS n …`
pub fn count(conn: &mut PgConnection, sql: &str) -> i64 {
    diesel::sql_query(sql).get_result::<Count>(conn).expect("count").n
}

/// How to run the binary: which one, with which data directory, database and settings.
#[derive(Clone)]
pub struct Launcher {
    pub binary: PathBuf,
    pub data: PathBuf,
    pub database: String,
    /// Further `AMTSWEG__…` settings.
    pub env: Vec<(String, String)>,
}

impl Launcher {
    pub fn command(&self) -> Command {
        let mut command = Command::new(&self.binary);
        command.current_dir(crate::workspace_root());
        for (key, _) in std::env::vars() {
            if key.starts_with("AMTSWEG__") {
                command.env_remove(key);
            }
        }
        command
            .env("AMTSWEG__STORAGE__DATA_DIR", &self.data)
            .env("AMTSWEG__DATABASE__URL", &self.database)
            .env("AMTSWEG__SERVER__PORT", "0")
            .env("RUST_LOG", "warn,amtsweg_server=info");
        for (key, value) in &self.env {
            command.env(key, value);
        }
        command
    }

    /// Adds a member of staff through the command line; answers the one-time password.
    pub fn add_staff(&self, email: &str, role: &str) -> String {
        let output = self
            .command()
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
            .expect("amtsweg staff add");
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

    pub fn start(&self) -> Instance {
        Instance::start(self)
    }
}

/// A running `amtsweg serve`; killed (SIGKILL) when dropped.
pub struct Instance {
    child: Child,
    pub base: String,
}

impl Instance {
    fn start(launcher: &Launcher) -> Instance {
        let mut child = launcher
            .command()
            .arg("serve")
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("amtsweg serve");
        let stderr = child.stderr.take().expect("stderr");
        let (found, port) = std::sync::mpsc::channel();
        // Read the log on a thread of its own for as long as the process lives, so it never blocks on a full pipe.
        std::thread::spawn(move || {
            let mut found = Some(found);
            for line in BufReader::new(stderr).lines() {
                let Ok(line) = line else { break };
                // The test's own output (shown when it fails): what the instance logged.
                eprintln!("[amtsweg serve] {line}");
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

    /// SIGKILL: no shutdown, no flush.
    pub fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for Instance {
    fn drop(&mut self) {
        self.kill();
    }
}

fn now_unix() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("clock")
        .as_secs()
}

/// The first login of a member of staff: TOTP set up with a code of this 30-second step, then the login with the
/// next step's (one step of skew is accepted; a step is used once).
pub async fn staff_token(client: &reqwest::Client, base: &str, email: &str, password: &str) -> String {
    let first = client
        .post(format!("{base}/api/v1/staff/auth/login"))
        .json(&json!({"email": email, "password": password}))
        .send()
        .await
        .expect("login");
    let problem: Value = first.json().await.expect("problem");
    assert_eq!(problem["code"], "totp_enrollment_required", "{problem}");
    let enrolment_token = problem["enrollment_token"].as_str().expect("token");
    let enrolment: Value = client
        .post(format!("{base}/api/v1/staff/auth/totp"))
        .json(&json!({"enrollment_token": enrolment_token}))
        .send()
        .await
        .expect("enrolment")
        .json()
        .await
        .expect("enrolment body");
    let secret = enrolment["secret"].as_str().expect("secret");
    let now = now_unix();
    let code = |at| amtsweg_account::domain::totp::code_at(secret, at).expect("code");
    let confirmed = client
        .post(format!("{base}/api/v1/staff/auth/totp/confirm"))
        .json(&json!({"enrollment_token": enrolment_token, "code": code(now)}))
        .send()
        .await
        .expect("confirm");
    assert_eq!(confirmed.status(), 200, "{:?}", confirmed.text().await);
    let login = client
        .post(format!("{base}/api/v1/staff/auth/login"))
        .json(&json!({"email": email, "password": password, "totp_code": code(now + 30)}))
        .send()
        .await
        .expect("login");
    assert_eq!(login.status(), 200, "{:?}", login.text().await);
    login.json::<Value>().await.expect("tokens")["access_token"]
        .as_str()
        .expect("access token")
        .to_owned()
}

/// The PostgreSQL URL of the shared test server, or `None` (with a notice; a failure under `CI=true`).
pub fn postgres_or_skip(what: &str) -> Option<String> {
    match std::env::var("AMTSWEG_TEST_POSTGRES_URL") {
        Ok(url) => Some(url),
        Err(_) => {
            assert!(
                std::env::var("CI").as_deref() != Ok("true"),
                "CI runs the PostgreSQL tests: set AMTSWEG_TEST_POSTGRES_URL"
            );
            eprintln!("skipped: set AMTSWEG_TEST_POSTGRES_URL to run {what}");
            None
        }
    }
}
