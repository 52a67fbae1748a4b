//! The citizen portal in a real browser (Debian's headless Chromium, driven by Playwright from npm): a citizen
//! registers (the link read from the test SMTP server), verifies, logs in, applies for the resident parking permit
//! with an attachment, pays through the simulator's Paypage, sees the case number and timeline; a case worker
//! (through the API, answered here) asks for information, the citizen answers in the portal, the decision is made
//! and the citizen opens it from the Postfach. axe-core checks every page of that journey in German and English
//! (no WCAG 2.1 A/AA violation), the form is filled with the keyboard alone, and the journey runs once more with
//! JavaScript disabled. The script is `tests/browser/journey.mjs`.

use std::process::Stdio;
use std::time::{Duration, Instant};

use amtsweg_test_support::{Backend, TestApp, backend_tests, workspace_root};
use reqwest::StatusCode;
use serde_json::{Value, json};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};

const QUEUE: &str = "/api/v1/staff/queues/ordnungsamt.bewohnerparkausweis/claim-next";

fn chromium() -> String {
    let path = std::env::var("AMTSWEG_CHROMIUM").unwrap_or_else(|_| "/usr/bin/chromium".to_owned());
    assert!(
        std::path::Path::new(&path).exists(),
        "the browser tests need Chromium at {path} (apt-get install chromium; .ci/run installs it)"
    );
    path
}

async fn etag(app: &TestApp, worker: &str, id: &str) -> String {
    let case = app.get_as(&format!("/api/v1/staff/cases/{id}"), worker).await;
    assert_eq!(case.status(), StatusCode::OK);
    case.headers()["etag"].to_str().unwrap().to_owned()
}

async fn staff_post(app: &TestApp, worker: &str, id: &str, path: &str, body: Value) -> Value {
    let etag = etag(app, worker, id).await;
    let response = app
        .client
        .post(app.url(&format!("/api/v1/staff/cases/{id}/{path}")))
        .bearer_auth(worker)
        .header("if-match", etag)
        .json(&body)
        .send()
        .await
        .unwrap();
    let status = response.status();
    let answer: Value = response.json().await.unwrap_or(Value::Null);
    assert!(status.is_success(), "{path}: {status} {answer}");
    answer
}

/// A case worker claims the paid case, starts the review and asks for a new registration number and the keeper's
/// declaration.
async fn request_information(app: &TestApp, worker: &str, id: &str) {
    let started = Instant::now();
    loop {
        let claimed = app.post_as(QUEUE, worker, &json!({})).await;
        if claimed.status() == StatusCode::OK {
            let claimed: Value = claimed.json().await.unwrap();
            assert_eq!(claimed["id"], id, "the paid case is the one in the queue");
            break;
        }
        assert!(
            started.elapsed() < Duration::from_secs(30),
            "the paid case never reached the queue"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    staff_post(
        app,
        worker,
        id,
        "transitions",
        json!({"action": "pruefung_beginnen"}),
    )
    .await;
    staff_post(
        app,
        worker,
        id,
        "information-requests",
        json!({
            "message": "Bitte bestätigen Sie das Kennzeichen und reichen Sie die Überlassungserklärung nach.",
            "fields": ["/kennzeichen"],
            "documents": ["ueberlassungserklaerung"],
        }),
    )
    .await;
}

async fn decide(app: &TestApp, worker: &str, id: &str) {
    let started = Instant::now();
    loop {
        let case: Value = app
            .get_as(&format!("/api/v1/staff/cases/{id}"), worker)
            .await
            .json()
            .await
            .unwrap();
        if case["state"] == "in_pruefung" {
            assert_eq!(
                case["data"]["kennzeichen"], "L-AB 1235",
                "the answer changed the field"
            );
            break;
        }
        assert!(
            started.elapsed() < Duration::from_secs(30),
            "the answer never arrived: {case}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    staff_post(
        app,
        worker,
        id,
        "decision",
        json!({"result": "approved", "reasons": "Die Voraussetzungen des § 45 Abs. 1b StVO liegen vor."}),
    )
    .await;
}

async fn the_citizen_applies_pays_follows_and_receives_in_the_browser(backend: Backend) {
    let chromium = chromium();
    let dir = workspace_root().join("tests/browser");
    amtsweg_test_support::tools::ensure_browser_tests(&dir);
    let app = TestApp::builder(backend).with_smtp().spawn().await.unwrap();
    let admin = app.admin().await.access_token;
    let worker = app
        .staff_member(&admin, "ordnung@stadt.example", &[("case_worker", "ordnungsamt")])
        .await;

    let mut script = tokio::process::Command::new("node")
        .arg(dir.join("journey.mjs"))
        .current_dir(&dir)
        .env("BASE_URL", app.url(""))
        .env("CHROMIUM", chromium)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .kill_on_drop(true)
        .spawn()
        .expect("node runs");
    let mut to_script = script.stdin.take().unwrap();
    let mut lines = BufReader::new(script.stdout.take().unwrap()).lines();
    let mut finished = false;
    let deadline = Instant::now() + Duration::from_secs(600);
    while let Ok(Some(line)) = tokio::time::timeout_at(deadline.into(), lines.next_line())
        .await
        .expect("the browser journey finishes within ten minutes")
    {
        let Some(request) = line.strip_prefix("@@ ") else {
            eprintln!("browser: {line}");
            continue;
        };
        let (command, args) = request.split_once(' ').unwrap();
        let args: Value = serde_json::from_str(args).unwrap();
        let id = args["application_id"].as_str().unwrap_or_default().to_owned();
        let answer = match command {
            "mail" => {
                let to = args["to"].as_str().unwrap();
                let count = usize::try_from(args["count"].as_u64().unwrap()).unwrap();
                let mails = app.smtp().wait_for(to, count).await;
                let mail = mails.last().unwrap();
                json!({"token": mail.token(), "body": mail.body})
            }
            "staff_request" => {
                request_information(&app, &worker, &id).await;
                json!({})
            }
            "staff_decide" => {
                decide(&app, &worker, &id).await;
                json!({})
            }
            "done" => {
                finished = true;
                json!({})
            }
            other => panic!("unknown request of the browser script: {other}"),
        };
        to_script
            .write_all(format!("{answer}\n").as_bytes())
            .await
            .unwrap();
    }
    let status = script.wait().await.unwrap();
    assert!(
        status.success() && finished,
        "the browser journey failed: {status}"
    );

    // Opening the decision's document in the browser is the first retrieval the delivery's evidence records.
    #[derive(diesel::QueryableByName)]
    struct Count {
        #[diesel(sql_type = diesel::sql_types::BigInt)]
        n: i64,
    }
    use diesel::RunQueryDsl;
    let retrieved =
        diesel::sql_query("SELECT COUNT(*) AS n FROM deliveries WHERE first_retrieved_at IS NOT NULL")
            .get_result::<Count>(&mut app.connect())
            .unwrap();
    assert_eq!(retrieved.n, 1, "the retrieval is on record");
}

backend_tests!(the_citizen_applies_pays_follows_and_receives_in_the_browser);
