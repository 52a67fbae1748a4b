//! The `amtsweg` binary as an operator uses it.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    reason = "a failed unwrap is a failed test"
)]

use std::io::{BufRead, BufReader};

use diesel::Connection;
use diesel::connection::SimpleConnection;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Duration;

fn amtsweg() -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_amtsweg"));
    command.current_dir(Path::new(env!("CARGO_MANIFEST_DIR")).join("../.."));
    for (key, _) in std::env::vars() {
        if key.starts_with("AMTSWEG__") {
            command.env_remove(key);
        }
    }
    command
}

fn run(command: &mut Command) -> (bool, String, String) {
    let output = command.output().expect("the binary runs");
    (
        output.status.success(),
        String::from_utf8_lossy(&output.stdout).into_owned(),
        String::from_utf8_lossy(&output.stderr).into_owned(),
    )
}

#[test]
fn every_subcommand_explains_itself() {
    for (args, expected) in [
        (vec!["--help"], "serve"),
        (vec!["serve", "--help"], "Run the HTTP service"),
        (vec!["migrate", "--help"], "Apply pending database migrations"),
        (vec!["openapi", "--help"], "OpenAPI 3.1"),
        (vec!["catalogue", "check", "--help"], "without starting anything"),
        (vec!["workflow", "check", "--help"], "unreachable states"),
        (vec!["backup", "--help"], "key-encryption key is never included"),
        (vec!["restore", "--help"], "still empty database"),
    ] {
        let (ok, stdout, _) = run(amtsweg().args(&args));
        assert!(ok, "{args:?}");
        assert!(stdout.contains(expected), "{args:?}: {stdout}");
    }
}

#[test]
fn catalogue_check_accepts_the_shipped_catalogue() {
    let (ok, stdout, _) = run(amtsweg().args(["catalogue", "check", "procedures"]));
    assert!(ok);
    assert!(stdout.contains("6 procedures, all valid"), "{stdout}");
}

#[test]
fn catalogue_check_names_file_path_and_reason() {
    let dir = tempfile::tempdir().unwrap();
    let shipped = std::fs::read_to_string(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../../procedures/meldebescheinigung.yaml"),
    )
    .unwrap();
    std::fs::write(
        dir.path().join("meldebescheinigung.yaml"),
        shipped.replace("einfach: 500", "einfach: null"),
    )
    .unwrap();
    let (ok, _, stderr) = run(amtsweg().args(["catalogue", "check"]).arg(dir.path()));
    assert!(!ok);
    assert!(
        stderr.contains("meldebescheinigung.yaml: fees[0]: amounts_cents.einfach: invalid type: null"),
        "{stderr}"
    );
    assert!(stderr.contains("1 problem(s) found"), "{stderr}");
}

#[test]
fn workflow_check_accepts_the_shipped_workflows() {
    let (ok, stdout, stderr) = run(amtsweg().args(["workflow", "check", "workflows"]));
    assert!(ok, "{stderr}");
    assert!(
        stdout.contains("5 workflows, all valid; every procedure names one of them"),
        "{stdout}"
    );
}

#[test]
fn workflow_check_names_file_path_and_reason_and_missing_workflows() {
    let dir = tempfile::tempdir().unwrap();
    let shipped = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../workflows");
    for entry in std::fs::read_dir(&shipped).unwrap() {
        let path = entry.unwrap().path();
        let name = path.file_name().unwrap().to_owned();
        let text = std::fs::read_to_string(&path).unwrap();
        if name == "steuerfestsetzung.yaml" {
            continue; // the dog tax procedure names it
        }
        let text = if name == "bauantrag.yaml" {
            text.replace("roles: [supervisor, case_worker]", "roles: [hausmeister]")
        } else {
            text
        };
        std::fs::write(dir.path().join(name), text).unwrap();
    }
    let (ok, _, stderr) = run(amtsweg().args(["workflow", "check"]).arg(dir.path()));
    assert!(!ok);
    assert!(
        stderr.contains("bauantrag.yaml: transitions[10].roles[0]: unknown role \"hausmeister\""),
        "{stderr}"
    );
    assert!(stderr.contains("1 problem(s) found"), "{stderr}");

    std::fs::write(
        dir.path().join("bauantrag.yaml"),
        std::fs::read_to_string(shipped.join("bauantrag.yaml")).unwrap(),
    )
    .unwrap();
    let (ok, _, stderr) = run(amtsweg().args(["workflow", "check"]).arg(dir.path()));
    assert!(!ok);
    assert!(
        stderr.contains(
            "procedure \"hundesteuer-anmeldung\" names the workflow \"steuerfestsetzung\", which does not exist"
        ),
        "{stderr}"
    );
}

#[test]
fn bad_configuration_stops_start_up_naming_the_key() {
    let (ok, _, stderr) = run(amtsweg().arg("migrate").env("AMTSWEG__DATABASE__URLL", "x"));
    assert!(!ok);
    assert!(stderr.contains("database.urll"), "{stderr}");

    let (ok, _, stderr) = run(amtsweg().arg("migrate").env("AMTSWEG__SERVER__PORT", "achtzig"));
    assert!(!ok);
    assert!(stderr.contains("server.port"), "{stderr}");

    let (ok, _, stderr) = run(amtsweg().args(["--config", "/nonexistent/amtsweg.toml", "migrate"]));
    assert!(!ok);
    assert!(
        stderr.contains("/nonexistent/amtsweg.toml does not exist"),
        "{stderr}"
    );

    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("amtsweg.toml");
    std::fs::write(
        &config,
        "[database]\nurl = \"postgres://amtsweg:streng-geheim@127.0.0.1:1/amtsweg\"\n",
    )
    .unwrap();
    let (ok, stdout, stderr) = run(amtsweg().arg("--config").arg(&config).arg("migrate"));
    assert!(!ok, "nothing listens on port 1");
    assert!(
        !stderr.contains("streng-geheim") && !stdout.contains("streng-geheim"),
        "{stderr}"
    );
}

#[test]
fn migrate_prepares_an_empty_sqlite_database() {
    let dir = tempfile::tempdir().unwrap();
    let (ok, _, stderr) = run(amtsweg()
        .arg("migrate")
        .env("AMTSWEG__STORAGE__DATA_DIR", dir.path()));
    assert!(ok, "{stderr}");
    assert!(dir.path().join("amtsweg.sqlite").exists());
    assert!(stderr.contains("applied migration"), "{stderr}");
    let (ok, _, stderr) = run(amtsweg()
        .arg("migrate")
        .env("AMTSWEG__STORAGE__DATA_DIR", dir.path()));
    assert!(ok);
    assert!(
        !stderr.contains("applied migration"),
        "nothing is pending the second time: {stderr}"
    );
}

#[test]
fn backup_and_restore_from_the_command_line() {
    let live = tempfile::tempdir().unwrap();
    let (ok, _, stderr) = run(amtsweg()
        .arg("migrate")
        .env("AMTSWEG__STORAGE__DATA_DIR", live.path()));
    assert!(ok, "{stderr}");
    let backups = tempfile::tempdir().unwrap();
    let out = backups.path().join("2026-12-01");
    let (ok, stdout, stderr) = run(amtsweg()
        .args(["backup", "--output"])
        .arg(&out)
        .env("AMTSWEG__STORAGE__DATA_DIR", live.path()));
    assert!(ok, "{stderr}");
    assert!(stdout.contains("sqlite database"), "{stdout}");
    assert!(
        stdout.contains("key-encryption key is not in the backup"),
        "{stdout}"
    );
    assert!(out.join("manifest.json").exists() && out.join("amtsweg.sqlite").exists());
    let (ok, _, stderr) = run(amtsweg()
        .args(["backup", "--output"])
        .arg(&out)
        .env("AMTSWEG__STORAGE__DATA_DIR", live.path()));
    assert!(
        !ok && stderr.contains("not empty"),
        "never over an earlier backup: {stderr}"
    );

    let fresh = tempfile::tempdir().unwrap();
    let (ok, stdout, stderr) = run(amtsweg()
        .args(["restore", "--from"])
        .arg(&out)
        .env("AMTSWEG__STORAGE__DATA_DIR", fresh.path()));
    assert!(ok, "{stdout} {stderr}");
    assert!(stdout.contains("audit log intact"), "{stdout}");
    let (ok, _, stderr) = run(amtsweg()
        .args(["restore", "--from"])
        .arg(&out)
        .env("AMTSWEG__STORAGE__DATA_DIR", fresh.path()));
    assert!(
        !ok && stderr.contains("exists"),
        "never over a database: {stderr}"
    );
    // The backup itself is on the record of the live service.
    let (ok, stdout, _) = run(amtsweg()
        .args(["audit", "verify"])
        .env("AMTSWEG__STORAGE__DATA_DIR", live.path()));
    assert!(ok && stdout.contains("audit log intact"), "{stdout}");
}

#[test]
fn openapi_writes_the_document() {
    let (ok, stdout, _) = run(amtsweg().arg("openapi"));
    assert!(ok);
    let spec: serde_json::Value = serde_json::from_str(&stdout).unwrap();
    assert_eq!(spec["openapi"], "3.1.0");
}

#[test]
fn serve_logs_json_with_request_ids_and_stops_on_sigterm() {
    let dir = tempfile::tempdir().unwrap();
    let mut child = amtsweg()
        .arg("serve")
        .env("AMTSWEG__STORAGE__DATA_DIR", dir.path())
        .env("AMTSWEG__SERVER__PORT", "0")
        .env("AMTSWEG__LOG__FORMAT", "json")
        .env_remove("RUST_LOG")
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stderr.take().unwrap()).lines();
    let mut port = None;
    for line in lines.by_ref() {
        let line = line.unwrap();
        let entry: serde_json::Value =
            serde_json::from_str(&line).unwrap_or_else(|_| panic!("not JSON: {line}"));
        let message = entry["message"].as_str().unwrap_or_default().to_owned();
        if let Some(rest) = message.strip_prefix("Amtsweg listening on http://127.0.0.1:") {
            assert!(
                message.contains("/docs/"),
                "the start line names the docs: {message}"
            );
            port = rest.split(' ').next().and_then(|p| p.parse::<u16>().ok());
            break;
        }
    }
    let port = port.expect("the start line names the port");
    let response = std::process::Command::new("curl")
        .args([
            "-s",
            "-H",
            "X-Request-Id: cli-test-1",
            &format!("http://127.0.0.1:{port}/health/ready"),
        ])
        .output()
        .unwrap();
    assert!(String::from_utf8_lossy(&response.stdout).contains("ready"));

    let mut request_logged = false;
    for line in lines.by_ref() {
        let entry: serde_json::Value = serde_json::from_str(&line.unwrap()).unwrap();
        if entry["message"] == "request finished" {
            assert_eq!(entry["span"]["request_id"], "cli-test-1", "{entry}");
            request_logged = true;
            break;
        }
    }
    assert!(request_logged);

    Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    let started = std::time::Instant::now();
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            assert!(status.success(), "graceful stop exits 0");
            break;
        }
        assert!(started.elapsed() < Duration::from_secs(10), "stops within 10 s");
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn operators_manage_staff_clients_keys_and_audit_from_the_command_line() {
    let dir = tempfile::tempdir().unwrap();
    let with_data = |command: &mut Command| {
        command
            .env("AMTSWEG__STORAGE__DATA_DIR", dir.path())
            .env_remove("RUST_LOG");
    };

    let mut add = amtsweg();
    with_data(&mut add);
    add.args([
        "staff",
        "add",
        "--email",
        "k.weber@stadt.example",
        "--name",
        "Klara Weber",
        "--role",
        "case_worker:ordnungsamt",
    ]);
    let (ok, stdout, stderr) = run(&mut add);
    assert!(ok, "{stderr}");
    assert!(stdout.contains("one-time password: "), "{stdout}");
    assert!(
        stderr.contains("first start: created the system administrator; one-time password"),
        "the first start creates and announces the administrator: {stderr}"
    );

    let mut again = amtsweg();
    with_data(&mut again);
    again.args([
        "staff",
        "add",
        "--email",
        "K.Weber@stadt.example",
        "--name",
        "Klara",
        "--role",
        "supervisor:ordnungsamt",
    ]);
    let (ok, _, stderr) = run(&mut again);
    assert!(!ok);
    assert!(stderr.contains("staff_exists"), "{stderr}");
    assert!(
        !stderr.contains("one-time password"),
        "the administrator is announced only once: {stderr}"
    );

    let mut bad_role = amtsweg();
    with_data(&mut bad_role);
    bad_role.args([
        "staff",
        "add",
        "--email",
        "x@stadt.example",
        "--name",
        "X",
        "--role",
        "case_worker:mond",
    ]);
    let (ok, _, stderr) = run(&mut bad_role);
    assert!(!ok);
    assert!(stderr.contains("/roles/0/unit"), "{stderr}");

    let mut client = amtsweg();
    with_data(&mut client);
    client.args([
        "client",
        "add",
        "--name",
        "OK.VERKEHR",
        "--scope",
        "applications:read:bewohnerparkausweis",
    ]);
    let (ok, stdout, stderr) = run(&mut client);
    assert!(ok, "{stderr}");
    assert!(
        stdout.contains("client_id: fv-") && stdout.contains("client_secret: "),
        "{stdout}"
    );

    let mut rotate = amtsweg();
    with_data(&mut rotate);
    rotate.args(["keys", "rotate"]);
    let (ok, stdout, _) = run(&mut rotate);
    assert!(ok);
    assert!(stdout.contains("signing with new key k"), "{stdout}");

    let mut verify = amtsweg();
    with_data(&mut verify);
    verify.args(["audit", "verify"]);
    let (ok, stdout, _) = run(&mut verify);
    assert!(ok, "{stdout}");
    assert!(stdout.contains("audit log intact"), "{stdout}");

    // Someone with write access to the file edits an entry behind the triggers' back.
    let database = dir.path().join("amtsweg.sqlite");
    let mut conn = diesel::SqliteConnection::establish(database.to_str().unwrap()).unwrap();
    conn.batch_execute(
        "DROP TRIGGER audit_log_no_update; UPDATE audit_log SET action = 'staff.deleted' WHERE seq = 2;",
    )
    .unwrap();
    let mut verify = amtsweg();
    with_data(&mut verify);
    verify.args(["audit", "verify"]);
    let (ok, stdout, _) = run(&mut verify);
    assert!(!ok, "a broken chain exits non-zero");
    assert!(stdout.contains("audit log broken at entry 2"), "{stdout}");
}

#[test]
fn signing_keys_are_rewrapped_under_a_new_key_encryption_key() {
    let dir = tempfile::tempdir().unwrap();
    let data = |command: &mut Command| {
        command
            .env("AMTSWEG__STORAGE__DATA_DIR", dir.path())
            .env_remove("RUST_LOG");
    };
    let mut migrate = amtsweg();
    data(&mut migrate);
    let (ok, _, stderr) = run(migrate.args(["keys", "rotate"]));
    assert!(ok, "{stderr}");
    assert!(dir.path().join("secrets/signing-keys.kek").exists());

    let new_key = dir.path().join("new.kek");
    let mut rewrap = amtsweg();
    data(&mut rewrap);
    let (ok, stdout, stderr) =
        run(rewrap.args(["keys", "rewrap", "--new-key-file", new_key.to_str().unwrap()]));
    assert!(ok, "{stderr}");
    assert!(stdout.contains("re-wrapped 2 signing key(s)"), "{stdout}");

    // The old key no longer opens them; the new one does.
    let mut old = amtsweg();
    data(&mut old);
    let (ok, _, stderr) = run(old.args(["keys", "rotate"]));
    assert!(!ok);
    assert!(
        stderr.contains("was wrapped under key-encryption key"),
        "{stderr}"
    );
    let mut new = amtsweg();
    data(&mut new);
    let (ok, stdout, stderr) = run(new
        .env("AMTSWEG__KEYS__ENCRYPTION_KEY_FILE", &new_key)
        .args(["keys", "rotate"]));
    assert!(ok, "{stderr}");
    assert!(stdout.contains("signing with new key"), "{stdout}");
}

#[test]
fn outside_the_repository_the_shipped_catalogue_is_used_and_maintenance_needs_none() {
    let elsewhere = tempfile::tempdir().unwrap();
    let data = tempfile::tempdir().unwrap();
    let run_here = |args: &[&str]| {
        let mut command = amtsweg();
        command
            .current_dir(elsewhere.path())
            .env("AMTSWEG__STORAGE__DATA_DIR", data.path())
            .env_remove("RUST_LOG")
            .args(args);
        run(&mut command)
    };
    // Maintenance commands do not load (or need) a catalogue.
    let (ok, stdout, stderr) = run_here(&["keys", "rotate"]);
    assert!(ok, "{stderr}");
    assert!(stdout.contains("signing with new key"), "{stdout}");
    let (ok, stdout, stderr) = run_here(&["audit", "verify"]);
    assert!(ok, "{stderr}");
    assert!(stdout.contains("audit log intact"), "{stdout}");
    assert!(!stderr.contains("catalogue"), "{stderr}");

    // Serving from a directory without `procedures/` uses the catalogue compiled into the binary.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let log = elsewhere.path().join("serve.log");
    let mut child = amtsweg()
        .current_dir(elsewhere.path())
        .env("AMTSWEG__STORAGE__DATA_DIR", data.path())
        .env("AMTSWEG__SERVER__PORT", port.to_string())
        .env_remove("RUST_LOG")
        .arg("serve")
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(&log).unwrap())
        .spawn()
        .unwrap();
    let started = std::time::Instant::now();
    let listing = loop {
        let answer = std::process::Command::new("curl")
            .args([
                "-s",
                "-f",
                &format!("http://127.0.0.1:{port}/api/v1/procedures?limit=100"),
            ])
            .output()
            .unwrap();
        if answer.status.success() {
            break answer.stdout;
        }
        assert!(
            started.elapsed() < Duration::from_secs(30),
            "the service did not start"
        );
        std::thread::sleep(Duration::from_millis(100));
    };
    let _ = child.kill();
    let _ = child.wait();
    let logged = std::fs::read_to_string(&log).unwrap();
    assert!(logged.contains("catalogue shipped in the binary"), "{logged}");
    assert!(logged.contains("workflows shipped in the binary"), "{logged}");
    let body: serde_json::Value = serde_json::from_slice(&listing).unwrap();
    assert_eq!(body["items"].as_array().unwrap().len(), 6);
}
