//! Files: streaming uploads checked by their content, downloads with ranges and safe names, one blob per content
//! with owner counts, nothing left behind by a refused or aborted upload — on the local disk and on S3 (moto).

use std::io::Write;
use std::net::TcpStream;
use std::time::{Duration, Instant};

use amtsweg_test_support::{Backend, S3Server, TestApp, backend_tests};
use diesel::prelude::*;
use diesel::sql_types::BigInt;
use reqwest::StatusCode;
use serde_json::Value;
use sha2::{Digest, Sha256};

const BOUNDARY: &str = "amtsweg-test-boundary-7d0a";

fn multipart(name: &str, declared_type: &str, content: &[u8]) -> Vec<u8> {
    let mut body = format!(
        "--{BOUNDARY}\r\nContent-Disposition: form-data; name=\"file\"; filename=\"{name}\"\r\nContent-Type: {declared_type}\r\n\r\n"
    )
    .into_bytes();
    body.extend_from_slice(content);
    body.extend_from_slice(format!("\r\n--{BOUNDARY}--\r\n").as_bytes());
    body
}

async fn upload(
    app: &TestApp,
    token: &str,
    name: &str,
    declared_type: &str,
    content: &[u8],
) -> reqwest::Response {
    app.client
        .post(app.url("/api/v1/files"))
        .bearer_auth(token)
        .header(
            "content-type",
            format!("multipart/form-data; boundary={BOUNDARY}"),
        )
        .body(multipart(name, declared_type, content))
        .send()
        .await
        .unwrap()
}

const PDF: &[u8] = b"%PDF-1.7\n1 0 obj\n<< /Type /Catalog /Pages 2 0 R >>\nendobj\n2 0 obj\n<< /Type /Pages /Kids [] /Count 0 >>\nendobj\ntrailer\n<< /Root 1 0 R >>\n%%EOF\n";

/// A PNG of `size` bytes: the signature and a header, then filler (the type is recognised from the start).
fn png(size: usize) -> Vec<u8> {
    let mut bytes = vec![
        0x89, b'P', b'N', b'G', 0x0d, 0x0a, 0x1a, 0x0a, 0, 0, 0, 0x0d, b'I', b'H', b'D', b'R',
    ];
    let mut state: u32 = 0x1234_5678;
    while bytes.len() < size {
        state = state.wrapping_mul(1_664_525).wrapping_add(1_013_904_223);
        bytes.push((state >> 24) as u8);
    }
    bytes
}

#[derive(QueryableByName)]
struct Count {
    #[diesel(sql_type = BigInt)]
    n: i64,
}

fn count(app: &TestApp, query: &str) -> i64 {
    diesel::sql_query(query)
        .get_result::<Count>(&mut app.connect())
        .unwrap()
        .n
}

/// Files left under `dir`, recursively.
fn files_under(dir: &std::path::Path) -> Vec<std::path::PathBuf> {
    let mut found = Vec::new();
    if let Ok(entries) = std::fs::read_dir(dir) {
        for entry in entries.flatten() {
            let path = entry.path();
            if path.is_dir() {
                found.extend(files_under(&path));
            } else {
                found.push(path);
            }
        }
    }
    found
}

async fn an_upload_is_recognised_by_its_content_and_downloaded_in_ranges(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let citizen = app.citizen("datei@example.de").await;
    let token = citizen.tokens.access_token.as_str();

    // Declared as a PNG named .png: it is a PDF, and stored as one.
    let response = upload(&app, token, "Scans/Meldebescheinigung März.png", "image/png", PDF).await;
    assert_eq!(response.status(), StatusCode::CREATED);
    let file: Value = response.json().await.unwrap();
    assert_eq!(file["media_type"], "application/pdf");
    assert_eq!(file["name"], "Meldebescheinigung März.png");
    assert_eq!(file["size"], PDF.len());
    assert_eq!(file["sha256"], hex::encode(Sha256::digest(PDF)));
    let id = file["id"].as_str().unwrap();

    let whole = app.get_as(&format!("/api/v1/files/{id}"), token).await;
    assert_eq!(whole.status(), StatusCode::OK);
    assert_eq!(whole.headers()["content-type"], "application/pdf");
    assert_eq!(whole.headers()["x-content-type-options"], "nosniff");
    let disposition = whole.headers()["content-disposition"]
        .to_str()
        .unwrap()
        .to_owned();
    assert!(
        disposition.starts_with("attachment; filename=\""),
        "{disposition}"
    );
    assert!(
        disposition.contains("filename*=UTF-8''Meldebescheinigung%20M%C3%A4rz.png"),
        "{disposition}"
    );
    assert_eq!(whole.bytes().await.unwrap().as_ref(), PDF);

    let part = app
        .client
        .get(app.url(&format!("/api/v1/files/{id}")))
        .bearer_auth(token)
        .header("range", "bytes=5-7")
        .send()
        .await
        .unwrap();
    assert_eq!(part.status(), StatusCode::PARTIAL_CONTENT);
    assert_eq!(
        part.headers()["content-range"],
        format!("bytes 5-7/{}", PDF.len())
    );
    assert_eq!(part.bytes().await.unwrap().as_ref(), &PDF[5..8]);
    let outside = app
        .client
        .get(app.url(&format!("/api/v1/files/{id}")))
        .bearer_auth(token)
        .header("range", "bytes=9999-")
        .send()
        .await
        .unwrap();
    assert_eq!(outside.status(), StatusCode::RANGE_NOT_SATISFIABLE);

    // Nobody else sees it.
    let other = app.citizen("fremd@example.de").await;
    let foreign = app
        .get_as(&format!("/api/v1/files/{id}"), &other.tokens.access_token)
        .await;
    assert_eq!(foreign.status(), StatusCode::NOT_FOUND);
    let listed: Value = app.get_as("/api/v1/files", token).await.json().await.unwrap();
    assert_eq!(listed["items"][0]["id"], id);
}

async fn refused_uploads_leave_nothing_behind(backend: Backend) {
    let app = TestApp::builder(backend)
        .configure(|s| s.storage.files.max_upload_bytes = 1_000_000)
        .spawn()
        .await
        .unwrap();
    let citizen = app.citizen("abgelehnt@example.de").await;
    let token = citizen.tokens.access_token.as_str();
    let encrypted =
        b"%PDF-1.7\n1 0 obj << >> endobj\ntrailer\n<< /Root 1 0 R /Encrypt 9 0 R >>\n%%EOF\n".to_vec();
    let scripted =
        b"%PDF-1.7\n1 0 obj << /OpenAction << /S /JavaScript /JS (app.alert(1)) >> >> endobj\n".to_vec();
    let cases: Vec<(&str, &str, Vec<u8>, StatusCode, &str)> = vec![
        (
            "text.pdf",
            "application/pdf",
            b"just some text, not a PDF".to_vec(),
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "media_type_not_allowed",
        ),
        (
            "geheim.pdf",
            "application/pdf",
            encrypted,
            StatusCode::UNPROCESSABLE_ENTITY,
            "pdf_encrypted",
        ),
        (
            "skript.pdf",
            "application/pdf",
            scripted,
            StatusCode::UNPROCESSABLE_ENTITY,
            "pdf_active_content",
        ),
        (
            "leer.pdf",
            "application/pdf",
            Vec::new(),
            StatusCode::UNPROCESSABLE_ENTITY,
            "file_empty",
        ),
        (
            "gross.png",
            "image/png",
            png(1_500_000),
            StatusCode::PAYLOAD_TOO_LARGE,
            "payload_too_large",
        ),
    ];
    for (name, declared, content, status, code) in cases {
        let response = upload(&app, token, name, declared, &content).await;
        assert_eq!(response.status(), status, "{name}");
        let problem: Value = response.json().await.unwrap();
        assert_eq!(problem["code"], code, "{name}");
    }
    let malformed = app
        .client
        .post(app.url("/api/v1/files"))
        .bearer_auth(token)
        .header("content-type", "application/json")
        .body("{}")
        .send()
        .await
        .unwrap();
    assert_eq!(malformed.status(), StatusCode::BAD_REQUEST);
    assert_eq!(count(&app, "SELECT COUNT(*) AS n FROM files"), 0);
    assert_eq!(count(&app, "SELECT COUNT(*) AS n FROM blobs"), 0);
    assert!(
        files_under(&app.data_dir.join("files")).is_empty(),
        "{:?}",
        files_under(&app.data_dir.join("files"))
    );
}

/// About 20 MB stream through; an upload the client abandons half-way leaves no object and no row.
async fn large_uploads_stream_and_aborted_ones_vanish(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let citizen = app.citizen("gross@example.de").await;
    let token = citizen.tokens.access_token.clone();
    let content = png(20 * 1024 * 1024);
    let response = upload(&app, &token, "plan.png", "image/png", &content).await;
    assert_eq!(response.status(), StatusCode::CREATED);
    let file: Value = response.json().await.unwrap();
    assert_eq!(file["sha256"], hex::encode(Sha256::digest(&content)));
    let downloaded = app
        .get_as(&format!("/api/v1/files/{}", file["id"].as_str().unwrap()), &token)
        .await;
    assert_eq!(
        Sha256::digest(downloaded.bytes().await.unwrap()).as_slice(),
        Sha256::digest(&content).as_slice()
    );

    // Half of another 20 MB, then the connection drops.
    let other = png(20 * 1024 * 1024 + 7);
    let body = multipart("halb.png", "image/png", &other);
    let address = app.address.trim_start_matches("http://").to_owned();
    tokio::task::block_in_place(|| {
        let mut stream = TcpStream::connect(&address).unwrap();
        let head = format!(
            "POST /api/v1/files HTTP/1.1\r\nHost: amtsweg\r\nAuthorization: Bearer {token}\r\nContent-Type: multipart/form-data; boundary={BOUNDARY}\r\nContent-Length: {}\r\n\r\n",
            body.len()
        );
        stream.write_all(head.as_bytes()).unwrap();
        stream.write_all(&body[..body.len() / 2]).unwrap();
        std::thread::sleep(Duration::from_millis(300));
        drop(stream);
    });
    let started = Instant::now();
    loop {
        let left: Vec<_> = files_under(&app.data_dir.join("files/tmp"));
        if left.is_empty() {
            break;
        }
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "left behind: {left:?}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(count(&app, "SELECT COUNT(*) AS n FROM files"), 1);
    assert_eq!(count(&app, "SELECT COUNT(*) AS n FROM blobs"), 1);
}

/// The same content twice is one blob with two owners; it goes when its last owner goes.
async fn shared_content_is_stored_once_and_deleted_with_its_last_owner(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let anna = app.citizen("anna@example.de").await;
    let ben = app.citizen("ben@example.de").await;
    let first: Value = upload(&app, &anna.tokens.access_token, "a.pdf", "application/pdf", PDF)
        .await
        .json()
        .await
        .unwrap();
    let second: Value = upload(&app, &ben.tokens.access_token, "b.pdf", "application/pdf", PDF)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(first["sha256"], second["sha256"]);
    assert_eq!(count(&app, "SELECT COUNT(*) AS n FROM blobs"), 1);
    assert_eq!(count(&app, "SELECT CAST(owners AS BIGINT) AS n FROM blobs"), 2);
    let blob = app
        .data_dir
        .join("files/blobs")
        .join(&first["sha256"].as_str().unwrap()[..2])
        .join(first["sha256"].as_str().unwrap());
    assert!(blob.exists());

    let deleted = app
        .delete_as(
            &format!("/api/v1/files/{}", first["id"].as_str().unwrap()),
            &anna.tokens.access_token,
        )
        .await;
    assert_eq!(deleted.status(), StatusCode::NO_CONTENT);
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(blob.exists(), "Ben still owns it");
    let still: reqwest::Response = app
        .get_as(
            &format!("/api/v1/files/{}", second["id"].as_str().unwrap()),
            &ben.tokens.access_token,
        )
        .await;
    assert_eq!(still.bytes().await.unwrap().as_ref(), PDF);

    // Ben's account goes: his file with it, and the blob with its last owner.
    let gone = app.delete_as("/api/v1/me", &ben.tokens.access_token).await;
    assert_eq!(gone.status(), StatusCode::OK);
    let started = Instant::now();
    while blob.exists() || count(&app, "SELECT COUNT(*) AS n FROM blobs") > 0 {
        assert!(started.elapsed() < Duration::from_secs(5), "the blob stays");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(count(&app, "SELECT COUNT(*) AS n FROM files"), 0);
}

/// On an S3-compatible store (moto): a 12 MB upload in 5 MiB parts, downloaded whole and in a range, deleted.
async fn files_live_on_s3_when_configured(backend: Backend) {
    let s3 = S3Server::start();
    let bucket = s3.bucket("amtsweg-test");
    let endpoint = s3.endpoint();
    let app = TestApp::builder(backend)
        .configure(move |s| {
            s.storage.files.url = Some(format!("s3://{bucket}/stadt/dateien"));
            s.storage.files.s3.endpoint = Some(endpoint);
            s.storage.files.s3.region = Some("eu-central-1".into());
            s.storage.files.s3.access_key_id = Some("test".into());
            s.storage.files.s3.secret_access_key = Some(secrecy::SecretString::from("test"));
            s.storage.files.s3.allow_http = true;
        })
        .spawn()
        .await
        .unwrap();
    let citizen = app.citizen("wolke@example.de").await;
    let token = citizen.tokens.access_token.as_str();
    let content = png(12 * 1024 * 1024);
    let response = upload(&app, token, "karte.png", "image/png", &content).await;
    assert_eq!(response.status(), StatusCode::CREATED);
    let file: Value = response.json().await.unwrap();
    let sha = file["sha256"].as_str().unwrap().to_owned();
    assert!(
        s3.object_exists(
            "amtsweg-test",
            &format!("stadt/dateien/blobs/{}/{sha}", &sha[..2])
        ),
        "{}",
        s3.listing("amtsweg-test")
    );
    assert!(
        !std::path::Path::new(&app.data_dir.join("files")).exists(),
        "nothing on the local disk"
    );
    let id = file["id"].as_str().unwrap();
    let whole = app.get_as(&format!("/api/v1/files/{id}"), token).await;
    assert_eq!(
        Sha256::digest(whole.bytes().await.unwrap()).as_slice(),
        Sha256::digest(&content).as_slice()
    );
    let part = app
        .client
        .get(app.url(&format!("/api/v1/files/{id}")))
        .bearer_auth(token)
        .header("range", "bytes=-16")
        .send()
        .await
        .unwrap();
    assert_eq!(part.status(), StatusCode::PARTIAL_CONTENT);
    assert_eq!(
        part.bytes().await.unwrap().as_ref(),
        &content[content.len() - 16..]
    );
    app.delete_as(&format!("/api/v1/files/{id}"), token).await;
    let started = Instant::now();
    while s3.object_exists(
        "amtsweg-test",
        &format!("stadt/dateien/blobs/{}/{sha}", &sha[..2]),
    ) {
        assert!(started.elapsed() < Duration::from_secs(10), "the S3 object stays");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

backend_tests!(
    an_upload_is_recognised_by_its_content_and_downloaded_in_ranges,
    refused_uploads_leave_nothing_behind,
    large_uploads_stream_and_aborted_ones_vanish,
    shared_content_is_stored_once_and_deleted_with_its_last_owner,
    files_live_on_s3_when_configured,
);
