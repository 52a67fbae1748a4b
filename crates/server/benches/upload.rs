//! Uploads against the running binary: the throughput of a 100 MB upload over HTTP against writing and hashing the
//! same bytes straight to a file on the same disk, and the server's peak RSS (VmHWM) before and after a 200 MB
//! upload — it must not grow by more than a few MB, since uploads stream. `cargo bench -p amtsweg-server --bench
//! upload` (SQLite in a temporary data directory).
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::print_stdout,
    reason = "a benchmark that fails says so, and prints its figures"
)]

use std::io::Write;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use sha2::{Digest, Sha256};

const MB: usize = 1024 * 1024;
const BOUNDARY: &str = "amtsweg-bench-boundary";

struct Server {
    child: Child,
    base: String,
    data: tempfile::TempDir,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn start() -> Server {
    let data = tempfile::tempdir().unwrap();
    let port = free_port();
    let child = Command::new(env!("CARGO_BIN_EXE_amtsweg"))
        .arg("serve")
        .current_dir(std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../.."))
        .env("AMTSWEG__STORAGE__DATA_DIR", data.path())
        .env("AMTSWEG__SERVER__PORT", port.to_string())
        .env("AMTSWEG__LOG__LEVEL", "warn")
        .env(
            "AMTSWEG__STORAGE__FILES__MAX_UPLOAD_BYTES",
            (300 * MB).to_string(),
        )
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    Server {
        child,
        base: format!("http://127.0.0.1:{port}"),
        data,
    }
}

/// Peak resident memory of a process so far, in KiB.
fn peak_rss_kib(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap()
}

/// Deterministic PNG-typed filler, produced chunk by chunk.
fn chunk(index: usize, size: usize) -> Vec<u8> {
    let mut bytes = Vec::with_capacity(size);
    if index == 0 {
        bytes.extend_from_slice(&[
            0x89, b'P', b'N', b'G', 0x0d, 0x0a, 0x1a, 0x0a, 0, 0, 0, 0x0d, b'I', b'H', b'D', b'R',
        ]);
    }
    let mut state = u32::try_from(index).unwrap().wrapping_mul(2_654_435_761) | 1;
    while bytes.len() < size {
        state ^= state << 13;
        state ^= state >> 17;
        state ^= state << 5;
        bytes.extend_from_slice(&state.to_le_bytes());
    }
    bytes.truncate(size);
    bytes
}

async fn citizen_token(server: &Server, client: &reqwest::Client) -> String {
    let email = "bench@example.de";
    let password = "kaffeetasse wolkenkratzer lindenau";
    let registered = client
        .post(format!("{}/api/v1/accounts", server.base))
        .json(&serde_json::json!({"email": email, "password": password, "name": "Bench"}))
        .send()
        .await
        .unwrap();
    assert_eq!(registered.status(), 202);
    let mail_dir = server.data.path().join("mail");
    let started = Instant::now();
    let token = loop {
        let found = std::fs::read_dir(&mail_dir).ok().and_then(|entries| {
            entries.flatten().find_map(|e| {
                let raw = std::fs::read(e.path()).ok()?;
                let message = mail_parser::MessageParser::default().parse(&raw)?;
                let body = message.body_text(0)?.into_owned();
                let start = body.find("token=")? + 6;
                Some(
                    body[start..]
                        .chars()
                        .take_while(|c| c.is_ascii_alphanumeric() || *c == '-' || *c == '_')
                        .collect::<String>(),
                )
            })
        });
        if let Some(token) = found {
            break token;
        }
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "no verification mail"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    let verified = client
        .post(format!("{}/api/v1/accounts/verify-email", server.base))
        .json(&serde_json::json!({"token": token}))
        .send()
        .await
        .unwrap();
    assert_eq!(verified.status(), 200);
    let login: serde_json::Value = client
        .post(format!("{}/api/v1/auth/login", server.base))
        .json(&serde_json::json!({"email": email, "password": password}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    login["access_token"].as_str().unwrap().to_owned()
}

/// Uploads `size` bytes as a streamed multipart body; answers the seconds it took.
async fn upload(server: &Server, client: &reqwest::Client, token: &str, size: usize) -> f64 {
    let head = format!(
        "--{BOUNDARY}\r\nContent-Disposition: form-data; name=\"file\"; filename=\"gross.png\"\r\nContent-Type: image/png\r\n\r\n"
    );
    let tail = format!("\r\n--{BOUNDARY}--\r\n");
    let length = head.len() + size + tail.len();
    let parts = size.div_ceil(MB);
    let body = futures_util::stream::iter(
        std::iter::once(bytes::Bytes::from(head.into_bytes()))
            .chain((0..parts).map(move |i| bytes::Bytes::from(chunk(i, MB.min(size - i * MB)))))
            .chain(std::iter::once(bytes::Bytes::from(tail.into_bytes())))
            .map(Ok::<_, std::io::Error>),
    );
    let started = Instant::now();
    let response = client
        .post(format!("{}/api/v1/files", server.base))
        .bearer_auth(token)
        .header(
            "content-type",
            format!("multipart/form-data; boundary={BOUNDARY}"),
        )
        .header("content-length", length)
        .body(reqwest::Body::wrap_stream(body))
        .send()
        .await
        .unwrap();
    let status = response.status();
    let text = response.text().await.unwrap();
    assert_eq!(status, 201, "{text}");
    started.elapsed().as_secs_f64()
}

/// Writes and hashes `size` bytes of the same filler straight to a file in `dir`; answers the seconds.
fn raw_write(dir: &std::path::Path, size: usize) -> f64 {
    let started = Instant::now();
    let mut file = std::fs::File::create(dir.join("raw.bin")).unwrap();
    let mut hasher = Sha256::new();
    for i in 0..size.div_ceil(MB) {
        let bytes = chunk(i, MB.min(size - i * MB));
        hasher.update(&bytes);
        file.write_all(&bytes).unwrap();
    }
    file.flush().unwrap();
    let _ = hasher.finalize();
    let elapsed = started.elapsed().as_secs_f64();
    std::fs::remove_file(dir.join("raw.bin")).unwrap();
    elapsed
}

fn main() {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async {
        let server = start();
        let client = reqwest::Client::new();
        let started = Instant::now();
        while client
            .get(format!("{}/health/ready", server.base))
            .send()
            .await
            .map(|r| !r.status().is_success())
            .unwrap_or(true)
        {
            assert!(
                started.elapsed() < Duration::from_secs(30),
                "the server did not start"
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        let token = citizen_token(&server, &client).await;
        let pid = server.child.id();

        // Warm up (first allocations of the upload path), then measure.
        upload(&server, &client, &token, 4 * MB).await;
        let http = upload(&server, &client, &token, 100 * MB).await;
        let raw = raw_write(server.data.path(), 100 * MB);
        let before = peak_rss_kib(pid);
        upload(&server, &client, &token, 200 * MB).await;
        let after = peak_rss_kib(pid);

        println!(
            "\nUpload of 100 MB over HTTP (multipart, streamed, SHA-256, sniffed, stored on the local disk)"
        );
        println!("  over HTTP:                          {:8.1} MB/s", 100.0 / http);
        println!("  written and hashed straight to disk: {:8.1} MB/s", 100.0 / raw);
        println!(
            "  ratio:                              {:8.2}  (aim ≥ 0.50)",
            raw / http
        );
        println!("Peak RSS of the server (VmHWM) around a 200 MB upload");
        println!(
            "  before: {:.1} MiB, after: {:.1} MiB, growth: {:.1} MiB  (aim: a few MiB)",
            before as f64 / 1024.0,
            after as f64 / 1024.0,
            (after - before) as f64 / 1024.0
        );
    });
}
