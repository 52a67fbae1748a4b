//! Login throughput against the raw Argon2id rate of this machine, measured in the same run, and token
//! verification per second. `cargo bench -p amtsweg-tests --bench login` (SQLite; set AMTSWEG_TEST_POSTGRES_URL
//! for PostgreSQL). Goal: logins/s ≥ 0.9 × raw verifications/s — the service adds little to the hash itself.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use amtsweg_test_support::{Backend, STRONG_PASSWORD, TestApp};
use argon2::Argon2;
use argon2::password_hash::phc::PasswordHash;
use argon2::password_hash::{PasswordHasher, PasswordVerifier};
use reqwest::StatusCode;

const WINDOW: Duration = Duration::from_secs(6);

/// Argon2id verifications per second with one thread per core: the ceiling for password logins.
fn raw_verifications_per_second() -> f64 {
    let hash = Argon2::default()
        .hash_password(STRONG_PASSWORD.as_bytes())
        .expect("hash")
        .to_string();
    let cores = std::thread::available_parallelism().map(|n| n.get()).unwrap_or(2);
    let done = Arc::new(AtomicU64::new(0));
    let started = Instant::now();
    let threads: Vec<_> = (0..cores)
        .map(|_| {
            let (hash, done) = (hash.clone(), done.clone());
            std::thread::spawn(move || {
                let parsed = PasswordHash::new(&hash).expect("parse");
                while started.elapsed() < WINDOW {
                    Argon2::default()
                        .verify_password(STRONG_PASSWORD.as_bytes(), &parsed)
                        .expect("verify");
                    done.fetch_add(1, Ordering::Relaxed);
                }
            })
        })
        .collect();
    for thread in threads {
        thread.join().expect("thread");
    }
    done.load(Ordering::Relaxed) as f64 / started.elapsed().as_secs_f64()
}

/// The same with each thread reusing its working memory, as the service's hashing threads do: the stricter
/// ceiling.
fn raw_reused_memory_per_second() -> f64 {
    let hash = Argon2::default()
        .hash_password(STRONG_PASSWORD.as_bytes())
        .expect("hash")
        .to_string();
    let cores = std::thread::available_parallelism().map(|n| n.get()).unwrap_or(2);
    let done = Arc::new(AtomicU64::new(0));
    let started = Instant::now();
    let threads: Vec<_> = (0..cores)
        .map(|_| {
            let (hash, done) = (hash.clone(), done.clone());
            std::thread::spawn(move || {
                let parsed = PasswordHash::new(&hash).expect("parse");
                let params = argon2::Params::try_from(&parsed).expect("params");
                let salt = parsed.salt.expect("salt");
                let mut memory = vec![argon2::Block::default(); params.block_count()];
                let mut out = [0u8; 32];
                let argon = Argon2::new(argon2::Algorithm::Argon2id, argon2::Version::V0x13, params);
                while started.elapsed() < WINDOW {
                    argon
                        .hash_password_into_with_memory(
                            STRONG_PASSWORD.as_bytes(),
                            salt.as_ref(),
                            &mut out,
                            &mut memory,
                        )
                        .expect("hash");
                    done.fetch_add(1, Ordering::Relaxed);
                }
            })
        })
        .collect();
    for thread in threads {
        thread.join().expect("thread");
    }
    done.load(Ordering::Relaxed) as f64 / started.elapsed().as_secs_f64()
}

async fn logins_per_second(app: &TestApp, emails: &[String], clients: usize) -> (f64, u64) {
    let ok = Arc::new(AtomicU64::new(0));
    let refused = Arc::new(AtomicU64::new(0));
    let started = Instant::now();
    let tasks: Vec<_> = (0..clients)
        .map(|i| {
            let (client, url, ok, refused) = (
                app.client.clone(),
                app.url("/api/v1/auth/login"),
                ok.clone(),
                refused.clone(),
            );
            let email = emails[i % emails.len()].clone();
            tokio::spawn(async move {
                while started.elapsed() < WINDOW {
                    let response = client
                        .post(&url)
                        .json(&serde_json::json!({"email": email, "password": STRONG_PASSWORD}))
                        .send()
                        .await
                        .expect("login");
                    if response.status() == StatusCode::OK {
                        ok.fetch_add(1, Ordering::Relaxed);
                    } else {
                        refused.fetch_add(1, Ordering::Relaxed);
                    }
                }
            })
        })
        .collect();
    for task in tasks {
        task.await.expect("task");
    }
    (
        ok.load(Ordering::Relaxed) as f64 / started.elapsed().as_secs_f64(),
        refused.load(Ordering::Relaxed),
    )
}

/// Mean latency of logins one after another: the service's own cost per login beside the hash.
async fn sequential_login_ms(app: &TestApp, email: &str) -> f64 {
    let started = Instant::now();
    for _ in 0..40 {
        let response = app.login(email, STRONG_PASSWORD, None).await;
        assert_eq!(response.status(), StatusCode::OK);
    }
    started.elapsed().as_secs_f64() * 1000.0 / 40.0
}

fn raw_single_verification_ms() -> f64 {
    let hash = Argon2::default()
        .hash_password(STRONG_PASSWORD.as_bytes())
        .expect("hash")
        .to_string();
    let parsed = PasswordHash::new(&hash).expect("parse");
    let started = Instant::now();
    for _ in 0..40 {
        Argon2::default()
            .verify_password(STRONG_PASSWORD.as_bytes(), &parsed)
            .expect("verify");
    }
    started.elapsed().as_secs_f64() * 1000.0 / 40.0
}

async fn verifications_per_second(app: &TestApp, token: &str) -> f64 {
    let done = Arc::new(AtomicU64::new(0));
    let started = Instant::now();
    let window = Duration::from_secs(3);
    let tasks: Vec<_> = (0..8)
        .map(|_| {
            let (client, url, token, done) = (
                app.client.clone(),
                app.url("/api/v1/me"),
                token.to_owned(),
                done.clone(),
            );
            tokio::spawn(async move {
                while started.elapsed() < window {
                    let response = client.get(&url).bearer_auth(&token).send().await.expect("me");
                    assert_eq!(response.status(), StatusCode::OK);
                    done.fetch_add(1, Ordering::Relaxed);
                }
            })
        })
        .collect();
    for task in tasks {
        task.await.expect("task");
    }
    done.load(Ordering::Relaxed) as f64 / started.elapsed().as_secs_f64()
}

fn main() {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    runtime.block_on(async {
        let backend = Backend::postgres().unwrap_or(Backend::Sqlite);
        let name = if backend.is_postgres() {
            "PostgreSQL"
        } else {
            "SQLite"
        };
        let app = TestApp::builder(backend)
            .configure(|s| {
                s.server.workers = None;
                s.database.pool_size = 8;
                s.account.hash_queue_timeout_ms = 10_000;
            })
            .spawn()
            .await
            .expect("app");
        let mut emails = Vec::new();
        let mut token = String::new();
        for i in 0..16 {
            let citizen = app.citizen(&format!("bench{i}@example.de")).await;
            token = citizen.tokens.access_token.clone();
            emails.push(citizen.email);
        }

        let raw = raw_verifications_per_second();
        let raw_reused = raw_reused_memory_per_second();
        let sequential = sequential_login_ms(&app, &emails[0]).await;
        let raw_single_ms = raw_single_verification_ms();
        let (logins, refused) = logins_per_second(&app, &emails, 8).await;
        let single_token = runtime_token_rate(&app).await;
        let http_verified = verifications_per_second(&app, &token).await;

        println!(
            "\nLogin throughput ({name}, {} cores)",
            std::thread::available_parallelism().map(|n| n.get()).unwrap_or(0)
        );
        println!("  raw Argon2id verifications/s (m=19 MiB, t=2, p=1): {raw:8.1}");
        println!("  password logins/s over HTTP (8 clients):            {logins:8.1}  (refused: {refused})");
        println!("  raw Argon2id, memory reused per thread:             {raw_reused:8.1}");
        println!(
            "  ratio logins / raw:                                 {:8.2}  (goal ≥ 0.90)",
            logins / raw
        );
        println!(
            "  ratio logins / raw with reused memory:              {:8.2}",
            logins / raw_reused
        );
        println!("  one login at a time: {sequential:.2} ms, of which Argon2id alone {raw_single_ms:.2} ms");
        println!("Token verification");
        println!("  signature + claims checks/s (one thread):           {single_token:8.0}");
        println!("  authenticated GET /api/v1/me/s (8 clients):         {http_verified:8.0}");
    });
}

/// Ed25519 verification of access tokens in process, without HTTP or the session lookup.
async fn runtime_token_rate(app: &TestApp) -> f64 {
    let url = app.database.url_string();
    let db = amtsweg_db::Database::connect(
        &amtsweg_db::DatabaseUrl::parse(&url).expect("url"),
        amtsweg_db::PoolOptions::default(),
    )
    .expect("db");
    let now = amtsweg_kernel::Clock::now(app.clock.as_ref());
    let kek = amtsweg_auth::KeyEncryptionKey::generate();
    let keys = Arc::new(amtsweg_auth::KeyRing::start(db, kek, now).await.expect("keys"));
    let auth = amtsweg_auth::Authenticator::new(keys, "urn:amtsweg", app.clock.clone());
    let (token, _) = auth
        .issue(&amtsweg_auth::TokenSpec {
            audience: amtsweg_auth::Audience::Citizen,
            subject: "bench".into(),
            session_id: Some("s".into()),
            acr: Some("basic".into()),
            amr: vec!["pwd".into()],
            auth_time: Some(now),
            scope: None,
            roles: Vec::new(),
            lifetime: chrono::Duration::minutes(10),
        })
        .expect("token");
    let started = Instant::now();
    let mut count = 0u64;
    while started.elapsed() < Duration::from_secs(2) {
        auth.verify(&token, amtsweg_auth::Audience::Citizen)
            .await
            .expect("valid");
        count += 1;
    }
    count as f64 / started.elapsed().as_secs_f64()
}
