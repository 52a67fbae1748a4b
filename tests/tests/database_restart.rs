//! PostgreSQL restarted under load — a private throwaway cluster this test starts itself (never the shared one on
//! 5432): while it is away every request is answered within a second or two with 503 and `Retry-After` (no hangs,
//! never a 500), the service is ready again within 10 s after the database accepts connections, and every write
//! that was acknowledged is there afterwards, whole (with its audit entry).
//!
//! Needs the PostgreSQL server binaries (`/usr/lib/postgresql/*/bin`); without them the test is skipped with a
//! notice, and fails when `CI=true`.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use amtsweg_test_support::{Backend, TestApp};
use diesel::{Connection, QueryableByName, RunQueryDsl};
use reqwest::StatusCode;
use serde_json::json;

/// A PostgreSQL cluster in a temporary directory, on a port of its own; stopped and removed when dropped.
struct PrivateCluster {
    bin: PathBuf,
    dir: tempfile::TempDir,
    port: u16,
}

fn server_binaries() -> Option<PathBuf> {
    let mut versions: Vec<PathBuf> = std::fs::read_dir("/usr/lib/postgresql")
        .ok()?
        .flatten()
        .map(|entry| entry.path().join("bin"))
        .filter(|bin| bin.join("initdb").exists() && bin.join("pg_ctl").exists())
        .collect();
    versions.sort();
    versions.pop()
}

/// Runs a server binary as the `postgres` user when the test runs as root (PostgreSQL refuses to run as root).
fn as_postgres(program: &Path, args: &[&str]) {
    let root = Command::new("id")
        .arg("-u")
        .output()
        .is_ok_and(|out| out.stdout.starts_with(b"0"));
    let mut command = if root {
        let mut command = Command::new("runuser");
        command.args(["-u", "postgres", "--"]).arg(program);
        command
    } else {
        Command::new(program)
    };
    let output = command.args(args).output().expect("the PostgreSQL binaries run");
    assert!(
        output.status.success(),
        "{} {args:?}: {}{}",
        program.display(),
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
}

impl PrivateCluster {
    fn start(bin: PathBuf) -> PrivateCluster {
        let dir = tempfile::Builder::new().prefix("amtsweg-pg-").tempdir().unwrap();
        let _ = Command::new("chown")
            .arg("postgres:postgres")
            .arg(dir.path())
            .status();
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let data = dir.path().join("data");
        as_postgres(
            &bin.join("initdb"),
            &[
                "-D",
                data.to_str().unwrap(),
                "-A",
                "trust",
                "-U",
                "postgres",
                "--no-sync",
            ],
        );
        let cluster = PrivateCluster { bin, dir, port };
        cluster.pg_ctl_start();
        cluster
    }

    fn data(&self) -> String {
        self.dir.path().join("data").to_string_lossy().into_owned()
    }

    fn pg_ctl_start(&self) {
        let options = format!(
            "-p {} -c listen_addresses=127.0.0.1 -c unix_socket_directories={} -c fsync=off",
            self.port,
            self.dir.path().display()
        );
        let log = self.dir.path().join("server.log");
        as_postgres(
            &self.bin.join("pg_ctl"),
            &[
                "-D",
                &self.data(),
                "-o",
                &options,
                "-l",
                log.to_str().unwrap(),
                "-w",
                "start",
            ],
        );
    }

    /// `pg_ctl stop -m fast`: the server ends every session (open transactions roll back) and shuts down.
    fn stop(&self) {
        as_postgres(
            &self.bin.join("pg_ctl"),
            &["-D", &self.data(), "-m", "fast", "-w", "stop"],
        );
    }

    fn url(&self) -> String {
        format!("postgres://postgres@127.0.0.1:{}/postgres", self.port)
    }
}

impl Drop for PrivateCluster {
    fn drop(&mut self) {
        let _ = Command::new("runuser")
            .args(["-u", "postgres", "--"])
            .arg(self.bin.join("pg_ctl"))
            .args(["-D", &self.data(), "-m", "immediate", "stop"])
            .output();
    }
}

#[derive(QueryableByName)]
struct Count {
    #[diesel(sql_type = diesel::sql_types::BigInt)]
    n: i64,
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_database_restart_under_load_loses_nothing_and_hangs_nobody() {
    let Some(bin) = server_binaries() else {
        assert!(
            std::env::var("CI").is_err(),
            "CI needs the PostgreSQL server binaries for the restart drill"
        );
        eprintln!("skipped: no PostgreSQL server binaries under /usr/lib/postgresql");
        return;
    };
    let cluster = PrivateCluster::start(bin);
    let app = TestApp::builder(Backend::Sqlite)
        .database_url(cluster.url())
        .spawn()
        .await
        .unwrap();
    let citizen = app.citizen("neustart@example.de").await.tokens.access_token;

    // A draft every 20 ms (application row and audit entry in one transaction), through the restart.
    let writer = {
        let (client, url, token) = (
            app.client.clone(),
            app.url("/api/v1/applications"),
            citizen.clone(),
        );
        tokio::spawn(async move {
            let mut outcomes = Vec::new();
            let started = Instant::now();
            while started.elapsed() < Duration::from_secs(9) {
                let asked = Instant::now();
                let response = client
                    .post(&url)
                    .bearer_auth(&token)
                    .json(&json!({"procedure_id": "hundesteuer-anmeldung", "data": {"haltung_seit": "2026-11-01"}}))
                    .send()
                    .await
                    .unwrap();
                let took = asked.elapsed();
                let status = response.status();
                let retry_after = response.headers().get("retry-after").is_some();
                let id = if status == StatusCode::CREATED {
                    response.json::<serde_json::Value>().await.unwrap()["id"]
                        .as_str()
                        .map(str::to_owned)
                } else {
                    None
                };
                outcomes.push((status, retry_after, took, id));
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
            outcomes
        })
    };
    tokio::time::sleep(Duration::from_secs(2)).await;
    tokio::task::block_in_place(|| cluster.stop());
    tokio::time::sleep(Duration::from_secs(3)).await;
    tokio::task::block_in_place(|| cluster.pg_ctl_start());
    // pg_ctl -w returns once the server accepts connections.
    let back = Instant::now();
    loop {
        if app.get("/health/ready").await.status() == StatusCode::OK {
            break;
        }
        assert!(
            back.elapsed() < Duration::from_secs(10),
            "ready within 10 s after the database is back"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let ready_after = back.elapsed();
    let outcomes = writer.await.unwrap();

    let acknowledged: Vec<&String> = outcomes.iter().filter_map(|(_, _, _, id)| id.as_ref()).collect();
    let refused = outcomes
        .iter()
        .filter(|(status, _, _, _)| *status == StatusCode::SERVICE_UNAVAILABLE)
        .count();
    eprintln!(
        "{} writes: {} acknowledged, {refused} answered 503; ready {ready_after:?} after the database was back",
        outcomes.len(),
        acknowledged.len()
    );
    assert!(refused > 0, "the outage was noticed");
    for (status, retry_after, took, _) in &outcomes {
        assert!(
            *status == StatusCode::CREATED || (*status == StatusCode::SERVICE_UNAVAILABLE && *retry_after),
            "only 201 or 503 with Retry-After, never {status}"
        );
        assert!(*took < Duration::from_secs(2), "no request hung: {took:?}");
    }
    let mut conn = diesel::PgConnection::establish(&cluster.url()).unwrap();
    for id in &acknowledged {
        let rows: Count = diesel::sql_query(format!(
            "SELECT COUNT(*) AS n FROM applications WHERE id = '{id}'"
        ))
        .get_result(&mut conn)
        .unwrap();
        assert_eq!(rows.n, 1, "acknowledged draft {id} is there");
        let audited: Count = diesel::sql_query(format!(
            "SELECT COUNT(*) AS n FROM audit_log WHERE object_id = '{id}'"
        ))
        .get_result(&mut conn)
        .unwrap();
        assert!(audited.n >= 1, "and its audit entry");
    }
    // Nothing half-written: every draft has its audit entry, and the chain is whole.
    let unaudited: Count = diesel::sql_query(
        "SELECT COUNT(*) AS n FROM applications a WHERE NOT EXISTS (SELECT 1 FROM audit_log l WHERE l.object_id = a.id)",
    )
    .get_result(&mut conn)
    .unwrap();
    assert_eq!(unaudited.n, 0);
    let verified = app.pool.read(amtsweg_audit::verify).await.unwrap();
    assert_eq!(verified.broken, None);
}
