//! Backup and restore drill: a backup made while citizens keep submitting restores into a fresh database and data
//! directory with an intact audit log, and every application, attachment, receipt, decision and Postfach message in
//! it is there and readable — with the key-encryption key restored separately, as the backup never holds it.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use amtsweg_server::backup::{Layout, backup, restore};
use amtsweg_test_support::{Backend, STRONG_PASSWORD, TestApp, backend_tests};
use reqwest::StatusCode;
use serde_json::{Value, json};
use sha2::{Digest, Sha256};

/// A small PDF, different for every `n` (so that each attachment is a blob of its own).
fn pdf(n: usize) -> Vec<u8> {
    format!(
        "%PDF-1.7\n1 0 obj\n<< /Type /Catalog /Pages 2 0 R >>\nendobj\n2 0 obj\n<< /Type /Pages /Kids [] /Count 0 >>\nendobj\ntrailer\n<< /Root 1 0 R >>\n% {n}\n%%EOF\n"
    )
    .into_bytes()
}

async fn body(response: reqwest::Response) -> Value {
    response.json().await.unwrap()
}

/// A dog-tax application with one attachment, submitted; answers its id.
async fn apply(app: &TestApp, token: &str, n: usize) -> String {
    let created = app
        .post_as(
            "/api/v1/applications",
            token,
            &json!({"procedure_id": "hundesteuer-anmeldung", "data": amtsweg_test_support::dog(u32::try_from(n).unwrap())}),
        )
        .await;
    assert_eq!(created.status(), StatusCode::CREATED);
    let id = body(created).await["id"].as_str().unwrap().to_owned();
    let attached = app
        .attach_pdf(
            token,
            &id,
            "haftpflichtnachweis",
            &format!("nachweis-{n}.pdf"),
            &pdf(n),
        )
        .await;
    assert_eq!(attached.status(), StatusCode::CREATED);
    let submitted = app
        .client
        .post(app.url(&format!("/api/v1/applications/{id}/submit")))
        .bearer_auth(token)
        .header("idempotency-key", format!("backup-{n}"))
        .send()
        .await
        .unwrap();
    assert_eq!(submitted.status(), StatusCode::CREATED);
    id
}

async fn decide(app: &TestApp, worker: &str, id: &str) {
    let claimed = app
        .post_as(&format!("/api/v1/staff/cases/{id}/claim"), worker, &json!({}))
        .await;
    assert_eq!(claimed.status(), StatusCode::OK, "{:?}", claimed.text().await);
    for (path, payload) in [
        ("transitions", json!({"action": "bearbeitung_beginnen"})),
        (
            "decision",
            json!({"result": "approved", "reasons": "Die Hundesteuer wird nach der Satzung festgesetzt."}),
        ),
    ] {
        let case = app.get_as(&format!("/api/v1/staff/cases/{id}"), worker).await;
        let etag = case.headers()["etag"].to_str().unwrap().to_owned();
        let done = app
            .client
            .post(app.url(&format!("/api/v1/staff/cases/{id}/{path}")))
            .bearer_auth(worker)
            .header("if-match", etag)
            .json(&payload)
            .send()
            .await
            .unwrap();
        assert_eq!(done.status(), StatusCode::OK, "{path}: {:?}", done.text().await);
    }
}

/// Every application of the caller — id, status, attachments — with the attachments' bytes and, once submitted,
/// its receipt checked as the API serves them.
async fn everything_of(app: &TestApp, token: &str) -> Vec<(String, String, Vec<(String, String)>)> {
    let listed = body(app.get_as("/api/v1/applications?limit=100", token).await).await;
    let mut applications = Vec::new();
    for item in listed["items"].as_array().unwrap() {
        let id = item["id"].as_str().unwrap().to_owned();
        let application = body(app.get_as(&format!("/api/v1/applications/{id}"), token).await).await;
        let mut attachments = Vec::new();
        for attachment in application["attachments"].as_array().unwrap() {
            let attachment_id = attachment["id"].as_str().unwrap();
            let content = app
                .get_as(
                    &format!("/api/v1/applications/{id}/attachments/{attachment_id}"),
                    token,
                )
                .await;
            assert_eq!(content.status(), StatusCode::OK, "attachment of {id}");
            let sha = hex::encode(Sha256::digest(content.bytes().await.unwrap()));
            assert_eq!(attachment["sha256"].as_str().unwrap(), sha, "{attachment}");
            attachments.push((attachment_id.to_owned(), sha));
        }
        let status = application["status"].as_str().unwrap().to_owned();
        if status == "draft" {
            applications.push((id, status, attachments));
            continue;
        }
        // The receipt is rendered by a job after the submit (after a restore, by the restored instance's runner).
        let asked = std::time::Instant::now();
        let receipt = loop {
            let receipt = app
                .get_as(&format!("/api/v1/applications/{id}/receipt"), token)
                .await;
            if receipt.status() != StatusCode::NOT_FOUND || asked.elapsed().as_secs() > 10 {
                break receipt;
            }
            tokio::time::sleep(std::time::Duration::from_millis(100)).await;
        };
        assert_eq!(receipt.status(), StatusCode::OK, "receipt of {id}");
        assert!(receipt.bytes().await.unwrap().starts_with(b"%PDF"));

        applications.push((id, status, attachments));
    }
    applications.sort();
    applications
}

/// The caller's Postfach: each message with the SHA-256 of its documents.
async fn postfach_of(app: &TestApp, token: &str) -> Vec<(String, Vec<String>)> {
    let listed = body(app.get_as("/api/v1/mailbox/messages", token).await).await;
    let mut messages = Vec::new();
    for item in listed["items"].as_array().unwrap() {
        let id = item["id"].as_str().unwrap().to_owned();
        let message = body(app.get_as(&format!("/api/v1/mailbox/messages/{id}"), token).await).await;
        let mut documents = Vec::new();
        for attachment in message["attachments"].as_array().unwrap() {
            let attachment_id = attachment["id"].as_str().unwrap();
            let content = app
                .get_as(
                    &format!("/api/v1/mailbox/messages/{id}/attachments/{attachment_id}"),
                    token,
                )
                .await;
            assert_eq!(content.status(), StatusCode::OK);
            documents.push(hex::encode(Sha256::digest(content.bytes().await.unwrap())));
        }
        messages.push((id, documents));
    }
    messages.sort();
    messages
}

async fn a_backup_made_under_load_restores_completely(backend: Backend) {
    let app = TestApp::builder(backend.clone())
        .with_smtp()
        .spawn()
        .await
        .unwrap();
    let admin = app.admin().await.access_token;
    let worker = app
        .staff_member(&admin, "steuer@stadt.example", &[("case_worker", "steueramt")])
        .await;
    let settled = app.citizen("erika@example.de").await.tokens.access_token;
    let consented = app
        .client
        .put(app.url("/api/v1/me/electronic-delivery"))
        .bearer_auth(&settled)
        .send()
        .await
        .unwrap();
    assert_eq!(consented.status(), StatusCode::OK);
    let first = apply(&app, &settled, 1).await;
    apply(&app, &settled, 2).await;
    decide(&app, &worker, &first).await;
    let message = app
        .post_as(
            "/api/v1/mailbox/messages",
            &settled,
            &json!({"application_id": first, "subject": "Frage", "body": "Wann kommt die Steuermarke?"}),
        )
        .await;
    assert_eq!(
        message.status(),
        StatusCode::CREATED,
        "{:?}",
        message.text().await
    );
    let before = everything_of(&app, &settled).await;
    let postfach_before = postfach_of(&app, &settled).await;
    assert_eq!(before.len(), 2);
    assert!(
        postfach_before.iter().any(|(_, documents)| !documents.is_empty()),
        "the decision with its document is in the Postfach: {postfach_before:?}"
    );

    // Another citizen keeps submitting while the backup is made.
    let busy = app.citizen("max@example.de").await.tokens.access_token;
    let app = Arc::new(app);
    let stop = Arc::new(AtomicBool::new(false));
    let first_acknowledged = Arc::new(tokio::sync::Notify::new());
    let writer = {
        let (app, busy, stop) = (app.clone(), busy.clone(), stop.clone());
        let first_acknowledged = first_acknowledged.clone();
        tokio::spawn(async move {
            let mut acknowledged = Vec::new();
            let mut n = 100;
            while !stop.load(Ordering::Relaxed) {
                acknowledged.push(apply(&app, &busy, n).await);
                first_acknowledged.notify_one();
                n += 1;
            }
            acknowledged
        })
    };
    // The backup begins once the busy citizen has one submit acknowledged (on a busy machine that takes a while).
    first_acknowledged.notified().await;
    let out = tempfile::tempdir().unwrap();
    let out = out.path().join("sicherung");
    let layout = Layout {
        data_dir: &app.data_dir,
        files_url: None,
    };
    let manifest = backup(&app.pool, &layout, &out).await.unwrap();
    stop.store(true, Ordering::Relaxed);
    let acknowledged = writer.await.unwrap();
    assert!(manifest.blobs >= 3, "{manifest:?}");
    assert!(
        !out.join("secrets").exists()
            && std::fs::read_dir(&out).unwrap().all(|entry| !entry
                .unwrap()
                .file_name()
                .to_string_lossy()
                .contains("kek")),
        "the key-encryption key is never in a backup"
    );
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        assert_eq!(
            std::fs::metadata(&out).unwrap().permissions().mode() & 0o777,
            0o700
        );
    }

    // Restore into a fresh database and data directory; the key comes back from where it is kept apart.
    let target = backend.fresh_database(false);
    let data = Arc::new(tempfile::tempdir().unwrap());
    let restored_layout = Layout {
        data_dir: data.path(),
        files_url: None,
    };
    restore(&out, &target.url, &restored_layout).unwrap();
    assert!(
        restore(&out, &target.url, &restored_layout).is_err(),
        "a restore never overwrites a database"
    );
    std::fs::create_dir_all(data.path().join("secrets")).unwrap();
    std::fs::copy(
        app.data_dir.join("secrets/signing-keys.kek"),
        data.path().join("secrets/signing-keys.kek"),
    )
    .unwrap();
    let restored = TestApp::builder(backend)
        .database(target)
        .data(data)
        .with_smtp()
        .spawn()
        .await
        .unwrap();
    let verified = restored.pool.read(amtsweg_audit::verify).await.unwrap();
    assert_eq!(verified.broken, None, "the audit log is intact");
    assert!(verified.rows > 10);

    let login = |email: &'static str| {
        let restored = &restored;
        async move {
            let response = restored.login(email, STRONG_PASSWORD, None).await;
            assert_eq!(
                response.status(),
                StatusCode::OK,
                "{email} logs in after the restore"
            );
            body(response).await["access_token"].as_str().unwrap().to_owned()
        }
    };
    let settled = login("erika@example.de").await;
    assert_eq!(everything_of(&restored, &settled).await, before);
    assert_eq!(postfach_of(&restored, &settled).await, postfach_before);

    // What the busy citizen had acknowledged before the backup began is there; whatever of the rest made it into
    // the snapshot is whole (its attachments readable) — a submitted application, or a draft caught between its
    // steps.
    let busy = login("max@example.de").await;
    let restored_ids: Vec<String> = everything_of(&restored, &busy)
        .await
        .into_iter()
        .filter(|(_, status, _)| status == "submitted")
        .map(|(id, _, attachments)| {
            assert_eq!(attachments.len(), 1, "{id} restored with its attachment");
            id
        })
        .collect();
    assert!(!restored_ids.is_empty(), "submits before the backup are in it");
    for id in &restored_ids {
        assert!(acknowledged.contains(id), "{id} was acknowledged");
    }
    assert!(
        acknowledged
            .first()
            .is_some_and(|first| restored_ids.contains(first)),
        "the first acknowledged submit (before the backup began) is restored"
    );
}

backend_tests!(a_backup_made_under_load_restores_completely);
