//! The production topology, run locally without Docker: two stateless `amtsweg serve` processes on one PostgreSQL,
//! the stored files in an S3-compatible store (moto), the signed events on NATS JetStream, one mail relay, one
//! key-encryption key given to both. Citizens submit through both processes; one is killed (SIGKILL) in the middle
//! of the load. Afterwards every acknowledged submit is there with its case number and its attachment (read through
//! the other process, from S3), every receipt is rendered (the jobs the dead process held ran again after their
//! lease), each submit's event is on the stream once, and the cases claimed through the dead process stay with
//! their case worker. Needs `AMTSWEG_TEST_POSTGRES_URL` (skipped with a notice without it; a failure when `CI=true`).
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    reason = "a failed unwrap is a failed test"
)]

use std::collections::{BTreeSet, HashMap};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use amtsweg_test_support::process::{Launcher, PgDatabase, postgres_or_skip, staff_token};
use amtsweg_test_support::{S3Server, SmtpServer};
use serde_json::{Value, json};
use sha2::{Digest, Sha256};

const PASSWORD: &str = "kaffeetasse wolkenkratzer lindenau";

fn pdf(n: usize) -> Vec<u8> {
    format!(
        "%PDF-1.7\n1 0 obj\n<< /Type /Catalog /Pages 2 0 R >>\nendobj\n2 0 obj\n<< /Type /Pages /Kids [] /Count 0 >>\nendobj\ntrailer\n<< /Root 1 0 R >>\n% {n}\n%%EOF\n"
    )
    .into_bytes()
}

/// Registers, verifies through the relay's mail and logs in; answers the access token.
async fn citizen(client: &reqwest::Client, base: &str, smtp: &SmtpServer, email: &str) -> String {
    let registered = client
        .post(format!("{base}/api/v1/accounts"))
        .json(&json!({"email": email, "password": PASSWORD, "name": "Erika Mustermann"}))
        .send()
        .await
        .unwrap();
    assert_eq!(registered.status(), 202);
    let token = smtp.wait_for(email, 1).await.remove(0).token();
    let verified = client
        .post(format!("{base}/api/v1/accounts/verify-email"))
        .json(&json!({"token": token}))
        .send()
        .await
        .unwrap();
    assert_eq!(verified.status(), 200);
    let login: Value = client
        .post(format!("{base}/api/v1/auth/login"))
        .json(&json!({"email": email, "password": PASSWORD}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    login["access_token"].as_str().unwrap().to_owned()
}

/// Draft, attachment, submit through `base`; answers (id, case number) when the submit was acknowledged, `None`
/// when the process went away on the way (nothing acknowledged).
async fn submit(client: &reqwest::Client, base: &str, token: &str, n: usize) -> Option<(String, String)> {
    let draft: Value = client
        .post(format!("{base}/api/v1/applications"))
        .bearer_auth(token)
        .json(&json!({"procedure_id": "hundesteuer-anmeldung", "data": amtsweg_test_support::dog(u32::try_from(n).unwrap())}))
        .send()
        .await
        .ok()?
        .json()
        .await
        .ok()?;
    let id = draft["id"].as_str()?.to_owned();
    let boundary = "scale-out-boundary";
    let mut form = format!(
        "--{boundary}\r\nContent-Disposition: form-data; name=\"document_type\"\r\n\r\nhaftpflichtnachweis\r\n--{boundary}\r\nContent-Disposition: form-data; name=\"file\"; filename=\"nachweis.pdf\"\r\nContent-Type: application/pdf\r\n\r\n"
    )
    .into_bytes();
    form.extend_from_slice(&pdf(n));
    form.extend_from_slice(format!("\r\n--{boundary}--\r\n").as_bytes());
    let attached = client
        .post(format!("{base}/api/v1/applications/{id}/attachments"))
        .bearer_auth(token)
        .header(
            "content-type",
            format!("multipart/form-data; boundary={boundary}"),
        )
        .body(form)
        .send()
        .await
        .ok()?;
    if attached.status() != 201 {
        return None;
    }
    let submitted = client
        .post(format!("{base}/api/v1/applications/{id}/submit"))
        .bearer_auth(token)
        .header("idempotency-key", format!("scale-{n}"))
        .send()
        .await
        .ok()?;
    if submitted.status() != 201 {
        return None;
    }
    let submitted: Value = submitted.json().await.ok()?;
    Some((id, submitted["case_number"].as_str()?.to_owned()))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn two_instances_share_everything_and_lose_nothing_when_one_is_killed() {
    let Some(base_url) = postgres_or_skip("the scale-out test on PostgreSQL") else {
        return;
    };
    let database = PgDatabase::create(&base_url);
    let s3 = S3Server::start();
    let bucket = s3.bucket("amtsweg-scale-out");
    let smtp = SmtpServer::start();
    let suffix = std::process::id();
    let (stream, prefix) = (
        format!("AMTSWEG_SCALE_{suffix}"),
        format!("amtsweg_scale_{suffix}"),
    );
    let kek = {
        use base64::Engine;
        base64::engine::general_purpose::STANDARD.encode(rand::random::<[u8; 32]>())
    };
    let env: Vec<(String, String)> = [
        ("AMTSWEG__KEYS__ENCRYPTION_KEY", kek),
        ("AMTSWEG__STORAGE__FILES__URL", format!("s3://{bucket}/dateien")),
        ("AMTSWEG__STORAGE__FILES__S3__ENDPOINT", s3.endpoint()),
        ("AMTSWEG__STORAGE__FILES__S3__REGION", "eu-central-1".into()),
        ("AMTSWEG__STORAGE__FILES__S3__ACCESS_KEY_ID", "test".into()),
        ("AMTSWEG__STORAGE__FILES__S3__SECRET_ACCESS_KEY", "test".into()),
        ("AMTSWEG__STORAGE__FILES__S3__ALLOW_HTTP", "true".into()),
        ("AMTSWEG__INTEGRATION__NATS__URL", "nats://127.0.0.1:4222".into()),
        ("AMTSWEG__INTEGRATION__NATS__STREAM", stream.clone()),
        ("AMTSWEG__INTEGRATION__NATS__SUBJECT_PREFIX", prefix.clone()),
        ("AMTSWEG__MAIL__SMTP__HOST", "127.0.0.1".into()),
        ("AMTSWEG__MAIL__SMTP__PORT", smtp.port.to_string()),
        ("AMTSWEG__MAIL__SMTP__TLS", "none".into()),
        ("AMTSWEG__ACCOUNT__AUTH_REQUESTS_PER_MINUTE", "100000".into()),
        ("AMTSWEG__JOBS__LEASE_SECS", "5".into()),
        ("AMTSWEG__JOBS__POLL_INTERVAL_MS", "200".into()),
    ]
    .into_iter()
    .map(|(key, value)| (key.to_owned(), value))
    .collect();
    // Each process has a data directory of its own: nothing in it is shared state.
    let (data_a, data_b) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let launcher = |data: &tempfile::TempDir| Launcher {
        binary: env!("CARGO_BIN_EXE_amtsweg").into(),
        data: data.path().to_owned(),
        database: database.url.clone(),
        env: env.clone(),
    };
    let (launcher_a, launcher_b) = (launcher(&data_a), launcher(&data_b));
    let mut first = launcher_a.start();
    let second = launcher_b.start();
    let client = reqwest::Client::builder()
        .timeout(Duration::from_secs(20))
        .build()
        .unwrap();
    let password = launcher_a.add_staff("verteilt@stadt.example", "case_worker:steueramt");
    let worker = staff_token(&client, &second.base, "verteilt@stadt.example", &password).await;

    let mut citizens = Vec::new();
    for n in 0..4 {
        let base = if n % 2 == 0 { &first.base } else { &second.base };
        citizens.push(citizen(&client, base, &smtp, &format!("buerger{n}@example.de")).await);
    }

    // Eight callers submit, alternating between the two processes; the first one is killed after two seconds and
    // the callers go on through the second.
    let bases = Arc::new(Mutex::new(vec![first.base.clone(), second.base.clone()]));
    let acknowledged = Arc::new(Mutex::new(Vec::<(String, String, String, String)>::new()));
    let started = Instant::now();
    let callers: Vec<_> = (0..8)
        .map(|caller| {
            let (client, bases, acknowledged) = (client.clone(), bases.clone(), acknowledged.clone());
            let token = citizens[caller % citizens.len()].clone();
            tokio::spawn(async move {
                let mut n = 1_000 * (caller + 1);
                while started.elapsed() < Duration::from_secs(5) {
                    let base = {
                        let bases = bases.lock().unwrap();
                        bases[n % bases.len()].clone()
                    };
                    if let Some((id, case_number)) = submit(&client, &base, &token, n).await {
                        acknowledged
                            .lock()
                            .unwrap()
                            .push((id, case_number, base, token.clone()));
                    }
                    n += 1;
                }
            })
        })
        .collect();
    tokio::time::sleep(Duration::from_millis(1_500)).await;
    // Three cases claimed through the first process before it dies.
    let mut claimed = Vec::new();
    for _ in 0..3 {
        let case = claim_next(&client, &first.base, &worker).await;
        claimed.push(case["id"].as_str().unwrap().to_owned());
    }
    tokio::time::sleep(Duration::from_millis(500)).await;
    let killed = first.base.clone();
    first.kill();
    bases.lock().unwrap().retain(|base| *base != killed);
    for caller in callers {
        caller.await.unwrap();
    }
    let acknowledged = acknowledged.lock().unwrap().clone();
    let through_killed = acknowledged
        .iter()
        .filter(|(_, _, base, _)| *base == killed)
        .count();
    assert!(
        through_killed > 0 && through_killed < acknowledged.len(),
        "the load went to both processes: {through_killed} of {}",
        acknowledged.len()
    );
    let case_numbers: BTreeSet<&String> = acknowledged.iter().map(|(_, number, _, _)| number).collect();
    assert_eq!(case_numbers.len(), acknowledged.len(), "case numbers are unique");

    // Everything acknowledged is there, read through the survivor; receipts are rendered by its runner too.
    for (id, case_number, _, token) in &acknowledged {
        let application: Value = client
            .get(format!("{}/api/v1/applications/{id}", second.base))
            .bearer_auth(token)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        assert_eq!(application["case_number"], case_number.as_str());
        let attachment = &application["attachments"][0];
        let content = client
            .get(format!(
                "{}/api/v1/applications/{id}/attachments/{}",
                second.base,
                attachment["id"].as_str().unwrap()
            ))
            .bearer_auth(token)
            .send()
            .await
            .unwrap();
        assert_eq!(content.status(), 200);
        assert_eq!(
            hex(&Sha256::digest(content.bytes().await.unwrap())),
            attachment["sha256"].as_str().unwrap()
        );
        let asked = Instant::now();
        loop {
            let receipt = client
                .get(format!("{}/api/v1/applications/{id}/receipt", second.base))
                .bearer_auth(token)
                .send()
                .await
                .unwrap();
            if receipt.status() == 200 {
                break;
            }
            let status = receipt.status();
            let problem = receipt.text().await.unwrap_or_default();
            assert!(
                asked.elapsed() < Duration::from_secs(30),
                "the receipt of {case_number} is rendered: {status} {problem}"
            );
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }
    // The claims made through the dead process belong to the case worker, not to the process.
    for id in &claimed {
        let case: Value = client
            .get(format!("{}/api/v1/staff/cases/{id}", second.base))
            .bearer_auth(&worker)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        assert!(
            case["assignee"].is_object() || case["assignee"].is_string(),
            "{case}"
        );
    }
    let next = claim_next(&client, &second.base, &worker).await;
    assert!(
        !claimed.contains(&next["id"].as_str().unwrap().to_owned()),
        "a claimed case is not handed out again"
    );

    // Each submit's event is on the stream, once.
    let nats = async_nats::connect("127.0.0.1:4222")
        .await
        .expect("NATS with JetStream on 127.0.0.1:4222");
    let jetstream = async_nats::jetstream::new(nats);
    let submitted_ids: BTreeSet<&String> = acknowledged.iter().map(|(id, _, _, _)| id).collect();
    let asked = Instant::now();
    loop {
        let mut handle = jetstream.get_stream(&stream).await.unwrap();
        let messages = handle.info().await.unwrap().state.messages;
        let mut submitted: HashMap<String, usize> = HashMap::new();
        for sequence in 1..=messages {
            let Ok(message) = handle.get_raw_message(sequence).await else {
                continue;
            };
            let event: Value = serde_json::from_slice(&message.payload).unwrap();
            if event["type"]
                .as_str()
                .is_some_and(|t| t.ends_with("application.submitted.v1"))
            {
                *submitted
                    .entry(event["subject"].as_str().unwrap_or_default().to_owned())
                    .or_default() += 1;
            }
        }
        if submitted_ids.iter().all(|id| submitted.contains_key(*id)) {
            assert!(submitted.values().all(|n| *n == 1), "once each: {submitted:?}");
            break;
        }
        assert!(
            asked.elapsed() < Duration::from_secs(30),
            "{} of {} submits on the stream",
            submitted.len(),
            submitted_ids.len()
        );
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    jetstream.delete_stream(&stream).await.unwrap();
}

async fn claim_next(client: &reqwest::Client, base: &str, worker: &str) -> Value {
    client
        .post(format!(
            "{base}/api/v1/staff/queues/steueramt.hundesteuer-anmeldung/claim-next"
        ))
        .bearer_auth(worker)
        .json(&json!({}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap()
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}
