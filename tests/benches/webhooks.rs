//! Webhook delivery: events committed by 8 writers, fanned out to one subscription and POSTed (signed: JWS plus
//! Standard Webhooks HMAC) to a receiver on loopback that answers 204 at once. Reports deliveries per second from the
//! first commit to the last receipt of a burst, and the commit-to-delivery latency (p50, p99, max) of the burst
//! and of a steady rate below it (`WEBHOOK_RATE`, default 400 events/s for 5 s).
//! `cargo bench -p amtsweg-tests --bench webhooks` (SQLite; set AMTSWEG_TEST_POSTGRES_URL for PostgreSQL;
//! `WEBHOOK_EVENTS` and `WEBHOOK_CONCURRENCY` change the defaults of 5,000 events and 64 deliveries at a time).

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use amtsweg_events::EventType;
use amtsweg_test_support::{Backend, TestApp};
use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

const WRITERS: usize = 8;
const BENCH: EventType = EventType {
    source: "urn:amtsweg:bench",
    name: "de.amtsweg.bench.happened.v1",
};

fn micros_now() -> u128 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default()
        .as_micros()
}

/// Latencies in microseconds, one per received event.
type Latencies = Arc<Mutex<Vec<u128>>>;

async fn receiver(latencies: Latencies) -> u16 {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let port = listener.local_addr().expect("port").port();
    tokio::spawn(async move {
        loop {
            let Ok((mut stream, _)) = listener.accept().await else {
                return;
            };
            let latencies = latencies.clone();
            tokio::spawn(async move {
                let mut buffer = Vec::new();
                loop {
                    let head_end = loop {
                        if let Some(at) = buffer.windows(4).position(|w| w == b"\r\n\r\n") {
                            break at + 4;
                        }
                        let mut chunk = [0u8; 16384];
                        match stream.read(&mut chunk).await {
                            Ok(0) | Err(_) => return,
                            Ok(n) => buffer.extend_from_slice(&chunk[..n]),
                        }
                    };
                    let head = String::from_utf8_lossy(&buffer[..head_end]).to_ascii_lowercase();
                    let length: usize = head
                        .lines()
                        .find_map(|l| l.strip_prefix("content-length:"))
                        .and_then(|v| v.trim().parse().ok())
                        .unwrap_or(0);
                    while buffer.len() < head_end + length {
                        let mut chunk = [0u8; 16384];
                        match stream.read(&mut chunk).await {
                            Ok(0) | Err(_) => return,
                            Ok(n) => buffer.extend_from_slice(&chunk[..n]),
                        }
                    }
                    let received = micros_now();
                    if let Ok(event) = serde_json::from_slice::<Value>(&buffer[head_end..head_end + length]) {
                        let sent: u128 = event["data"]["committed_us"]
                            .as_str()
                            .and_then(|s| s.parse().ok())
                            .unwrap_or(received);
                        latencies
                            .lock()
                            .expect("latencies")
                            .push(received.saturating_sub(sent));
                    }
                    buffer.drain(..head_end + length);
                    if stream
                        .write_all(b"HTTP/1.1 204 No Content\r\nContent-Length: 0\r\n\r\n")
                        .await
                        .is_err()
                    {
                        return;
                    }
                }
            });
        }
    });
    port
}

fn percentile(sorted: &[u128], p: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    let rank = ((p * sorted.len() as f64).ceil() as usize).clamp(1, sorted.len());
    sorted[rank - 1] as f64 / 1000.0
}

/// Publishes `per_writer` events from each of the writers, one per transaction, optionally one every `every`.
async fn publish(app: &TestApp, per_writer: usize, every: Option<Duration>) {
    let writers: Vec<_> = (0..WRITERS)
        .map(|w| {
            let (db, clock) = (app.pool.clone(), app.clock.clone());
            tokio::spawn(async move {
                let mut tick = every.map(tokio::time::interval);
                for i in 0..per_writer {
                    if let Some(tick) = tick.as_mut() {
                        tick.tick().await;
                    }
                    let now = amtsweg_kernel::Clock::now(clock.as_ref());
                    db.write(move |conn| {
                        let data = json!({"committed_us": micros_now().to_string(), "w": w, "i": i});
                        amtsweg_events::publish_about(
                            conn,
                            &BENCH,
                            &format!("bench-{w}-{i}"),
                            "bench",
                            &data,
                            now,
                        )
                    })
                    .await
                    .expect("publish");
                }
            })
        })
        .collect();
    for writer in writers {
        writer.await.expect("writer");
    }
}

async fn wait_for(latencies: &Latencies, count: usize) {
    let deadline = Instant::now() + Duration::from_secs(600);
    while latencies.lock().expect("latencies").len() < count {
        assert!(Instant::now() < deadline, "deliveries stalled");
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

fn report(label: &str, mut latencies: Vec<u128>) {
    latencies.sort_unstable();
    println!(
        "{label} p50 {:.1} ms, p99 {:.1} ms, max {:.1} ms",
        percentile(&latencies, 0.5),
        percentile(&latencies, 0.99),
        percentile(&latencies, 1.0)
    );
}

fn main() {
    let events: usize = std::env::var("WEBHOOK_EVENTS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(5_000);
    let concurrency: usize = std::env::var("WEBHOOK_CONCURRENCY")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(64);
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    runtime.block_on(async move {
        let backend = Backend::postgres().unwrap_or(Backend::Sqlite);
        let name = if backend.is_postgres() { "PostgreSQL" } else { "SQLite" };
        let app = TestApp::builder(backend)
            .configure(move |s| {
                s.server.workers = None;
                s.database.pool_size = 16;
                s.jobs.concurrency = concurrency;
                s.jobs.poll_interval_ms = 100;
                s.integration.webhooks.allow = vec!["127.0.0.1".into()];
            })
            .spawn()
            .await
            .expect("app");
        let latencies: Latencies = Arc::new(Mutex::new(Vec::with_capacity(events)));
        let port = receiver(latencies.clone()).await;
        let admin = app.admin().await;
        let (id, secret) = app.api_client(&admin, &["applications:read:*"]).await;
        let token: Value = app.client_token(&id, &secret).await.json().await.expect("token");
        let token = token["access_token"].as_str().expect("token").to_owned();
        let created = app
            .post_as(
                "/api/v1/integration/subscriptions",
                &token,
                &json!({"url": format!("http://127.0.0.1:{port}/hook")}),
            )
            .await;
        assert_eq!(created.status(), reqwest::StatusCode::CREATED);

        // Burst: every writer as fast as it can.
        let total = events / WRITERS * WRITERS;
        let started = Instant::now();
        publish(&app, events / WRITERS, None).await;
        wait_for(&latencies, total).await;
        let elapsed = started.elapsed().as_secs_f64();
        let burst = std::mem::take(&mut *latencies.lock().expect("latencies"));
        // Paced: a steady rate below the burst's throughput, the latency a receiver sees in normal operation.
        let rate: usize = std::env::var("WEBHOOK_RATE").ok().and_then(|v| v.parse().ok()).unwrap_or(400);
        let paced_total = rate * 5 / WRITERS * WRITERS;
        let every = Duration::from_secs_f64(WRITERS as f64 / rate as f64);
        publish(&app, paced_total / WRITERS, Some(every)).await;
        wait_for(&latencies, paced_total).await;
        let paced = std::mem::take(&mut *latencies.lock().expect("latencies"));
        println!("\nWebhooks to one subscription ({name}, {concurrency} deliveries at a time)");
        println!(
            "  burst of {total} events from {WRITERS} writers: {:8.1} deliveries/s (first commit to last receipt; aim ≥ 1000)",
            total as f64 / elapsed
        );
        report("  burst, commit to delivery:", burst);
        report(&format!("  steady {rate} events/s for 5 s, commit to delivery (aim p99 ≤ 1000 ms):"), paced);
    });
}
