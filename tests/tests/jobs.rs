//! The job runner, black-box: jobs exist only with the write that queued them, retries back off and end in dead
//! jobs an administrator can retry, a lost lease hands the job to another runner, two instances on one database
//! run every job exactly once and never one job twice at the same time, and schedules run once per period.

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use amtsweg_db::{DbConnection, DbError};
use amtsweg_jobs::{JobError, JobSpec, Period, Registry, Schedule, handler_fn};
use amtsweg_test_support::{Backend, TestApp, backend_tests};
use diesel::prelude::*;
use diesel::sql_types::{BigInt, Text};
use reqwest::StatusCode;
use serde_json::{Value, json};

#[derive(QueryableByName)]
struct Count {
    #[diesel(sql_type = BigInt)]
    n: i64,
}

fn count_jobs(conn: &mut DbConnection, kind: &str, status: &str) -> i64 {
    let query = match conn {
        DbConnection::Postgres(_) => "SELECT COUNT(*) AS n FROM jobs WHERE kind = $1 AND status = $2",
        DbConnection::Sqlite(_) => "SELECT COUNT(*) AS n FROM jobs WHERE kind = ? AND status = ?",
    };
    diesel::sql_query(query)
        .bind::<Text, _>(kind)
        .bind::<Text, _>(status)
        .get_result::<Count>(conn)
        .expect("count")
        .n
}

async fn wait_until(what: &str, limit: Duration, mut done: impl FnMut() -> bool) {
    let started = Instant::now();
    while !done() {
        assert!(started.elapsed() < limit, "{what}: not within {limit:?}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

async fn enqueue(app: &TestApp, specs: Vec<JobSpec>, commit: bool) {
    let db = app.pool.clone();
    let now = amtsweg_kernel::Clock::now(app.clock.as_ref());
    let outcome = db
        .write(move |conn| {
            for spec in &specs {
                amtsweg_jobs::enqueue(conn, spec, now)?;
            }
            if commit {
                Ok(())
            } else {
                Err(DbError::Task("rolled back on purpose".into()))
            }
        })
        .await;
    assert_eq!(outcome.is_ok(), commit);
}

/// Runs recorded per job id, and runs that overlapped another run of the same job.
#[derive(Default)]
struct Ledger {
    runs: HashMap<String, u32>,
    running: HashSet<String>,
    overlaps: Vec<String>,
}

fn counting(kind: &'static str, ledger: Arc<Mutex<Ledger>>) -> Registry {
    Registry::new().handler(handler_fn(kind, 3, move |job| {
        let ledger = ledger.clone();
        async move {
            let id = job.id.to_string();
            {
                let mut book = ledger.lock().unwrap();
                *book.runs.entry(id.clone()).or_default() += 1;
                if !book.running.insert(id.clone()) {
                    book.overlaps.push(id.clone());
                }
            }
            tokio::time::sleep(Duration::from_millis(2)).await;
            ledger.lock().unwrap().running.remove(&id);
            Ok(Some(json!({"done": true})))
        }
    }))
}

async fn a_job_exists_only_with_its_commit(backend: Backend) {
    let ledger = Arc::new(Mutex::new(Ledger::default()));
    let app = TestApp::builder(backend)
        .jobs(counting("test.count", ledger.clone()))
        .spawn()
        .await
        .unwrap();
    enqueue(&app, vec![JobSpec::new("test.count", json!({"n": 1}))], false).await;
    enqueue(&app, vec![JobSpec::new("test.count", json!({"n": 2}))], true).await;
    // Woken by the commit, not by the poll interval of a second.
    let started = Instant::now();
    wait_until("the committed job ran", Duration::from_secs(5), || {
        ledger.lock().unwrap().runs.len() == 1
    })
    .await;
    assert!(
        started.elapsed() < Duration::from_millis(900),
        "{:?}",
        started.elapsed()
    );
    let mut conn = app.connect();
    // The outcome is recorded in the runner's next round.
    wait_until("the outcome is recorded", Duration::from_secs(5), || {
        count_jobs(&mut conn, "test.count", "succeeded") == 1
    })
    .await;
    assert_eq!(
        count_jobs(&mut conn, "test.count", "queued"),
        0,
        "the rolled back one does not exist"
    );

    // A dedupe key queues one job, however often it is given.
    let twice = vec![
        JobSpec::new("test.count", json!({})).dedupe("once"),
        JobSpec::new("test.count", json!({})).dedupe("once"),
    ];
    enqueue(&app, twice, true).await;
    wait_until("the deduplicated job ran", Duration::from_secs(5), || {
        ledger.lock().unwrap().runs.len() == 2
    })
    .await;
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert_eq!(ledger.lock().unwrap().runs.len(), 2);
}

async fn failures_retry_with_backoff_then_die_and_can_be_retried(backend: Backend) {
    let attempts = Arc::new(Mutex::new(Vec::<(String, u32)>::new()));
    let seen = attempts.clone();
    let registry = Registry::new()
        .handler(handler_fn("test.flaky", 3, move |job| {
            let seen = seen.clone();
            async move {
                seen.lock().unwrap().push((job.id.to_string(), job.attempt));
                Err(JobError::Transient(format!(
                    "peer down (attempt {})",
                    job.attempt
                )))
            }
        }))
        .handler(handler_fn("test.refused", 3, |_| async {
            Err(JobError::Permanent("invalid input".into()))
        }));
    let app = TestApp::builder(backend).jobs(registry).spawn().await.unwrap();
    enqueue(
        &app,
        vec![
            JobSpec::new("test.flaky", json!({})),
            JobSpec::new("test.refused", json!({})),
        ],
        true,
    )
    .await;
    wait_until("first attempt", Duration::from_secs(5), || {
        attempts.lock().unwrap().len() == 1
    })
    .await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(attempts.lock().unwrap().len(), 1, "no retry before the backoff");

    // 5 s after the first failure (less up to a tenth), then 10 s after the second; then dead.
    app.clock.advance(chrono::Duration::seconds(5));
    wait_until("second attempt", Duration::from_secs(5), || {
        attempts.lock().unwrap().len() == 2
    })
    .await;
    app.clock.advance(chrono::Duration::seconds(10));
    wait_until("third attempt", Duration::from_secs(5), || {
        attempts.lock().unwrap().len() == 3
    })
    .await;
    let mut conn = app.connect();
    wait_until("both jobs are dead", Duration::from_secs(5), || {
        count_jobs(&mut conn, "test.flaky", "dead") + count_jobs(&mut conn, "test.refused", "dead") == 2
    })
    .await;
    let admin = app.admin().await;
    let dead: Value = app
        .get_as("/api/v1/admin/jobs?status=dead", &admin.access_token)
        .await
        .json()
        .await
        .unwrap();
    let items = dead["items"].as_array().unwrap();
    let kinds: HashSet<&str> = items.iter().map(|j| j["kind"].as_str().unwrap()).collect();
    assert_eq!(kinds, HashSet::from(["test.flaky", "test.refused"]));
    let flaky = items.iter().find(|j| j["kind"] == "test.flaky").unwrap();
    assert_eq!(flaky["attempts"], 3);
    assert_eq!(flaky["last_error"], "peer down (attempt 3)");
    let refused = items.iter().find(|j| j["kind"] == "test.refused").unwrap();
    assert_eq!(refused["attempts"], 1, "a permanent failure is not retried");

    // An administrator queues the dead job again.
    let id = flaky["id"].as_str().unwrap();
    let retried = app
        .post_as(
            &format!("/api/v1/admin/jobs/{id}/retry"),
            &admin.access_token,
            &json!({}),
        )
        .await;
    assert_eq!(retried.status(), StatusCode::OK);
    wait_until("the retried job ran", Duration::from_secs(5), || {
        attempts.lock().unwrap().len() == 4
    })
    .await;
    assert_eq!(attempts.lock().unwrap()[3].1, 1, "from its first attempt");
    let not_dead = app
        .post_as(
            &format!("/api/v1/admin/jobs/{id}/retry"),
            &admin.access_token,
            &json!({}),
        )
        .await;
    assert_eq!(not_dead.status(), StatusCode::NOT_FOUND);
}

/// A runner that died mid-job leaves the job `running` with a lease; when the lease ends, a live runner takes it.
async fn a_lost_lease_hands_the_job_over(backend: Backend) {
    let ledger = Arc::new(Mutex::new(Ledger::default()));
    let app = TestApp::builder(backend)
        .jobs(counting("test.count", ledger.clone()))
        .spawn()
        .await
        .unwrap();
    let now = amtsweg_kernel::Clock::now(app.clock.as_ref());
    let mut conn = app.connect();
    let insert = "INSERT INTO jobs (id, kind, payload, status, attempts, run_at, locked_until, worker, created_at) \
                  VALUES ('orphan', 'test.count', '{}', 'running', 1, ?, ?, 'a-dead-runner', ?)";
    let insert = match &conn {
        DbConnection::Postgres(_) => insert
            .replacen('?', "$1", 1)
            .replacen('?', "$2", 1)
            .replacen('?', "$3", 1),
        DbConnection::Sqlite(_) => insert.to_owned(),
    };
    diesel::sql_query(insert)
        .bind::<diesel::sql_types::Timestamp, _>(now)
        .bind::<diesel::sql_types::Timestamp, _>(now + chrono::Duration::minutes(5))
        .bind::<diesel::sql_types::Timestamp, _>(now)
        .execute(&mut conn)
        .unwrap();
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(
        ledger.lock().unwrap().runs.is_empty(),
        "not while the lease holds"
    );
    app.clock.advance(chrono::Duration::minutes(6));
    wait_until("the orphan ran", Duration::from_secs(5), || {
        ledger.lock().unwrap().runs.contains_key("orphan")
    })
    .await;
    wait_until("recorded", Duration::from_secs(5), || {
        count_jobs(&mut conn, "test.count", "succeeded") == 1
    })
    .await;
}

/// Two instances on one database, 2,000 jobs: each runs exactly once, to completion, never twice at a time.
async fn two_instances_run_every_job_exactly_once(backend: Backend) {
    let ledger = Arc::new(Mutex::new(Ledger::default()));
    let first = TestApp::builder(backend)
        .jobs(counting("test.count", ledger.clone()))
        .configure(|s| s.jobs.concurrency = 8)
        .spawn()
        .await
        .unwrap();
    let second = first
        .restart_builder()
        .jobs(counting("test.count", ledger.clone()))
        .configure(|s| s.jobs.concurrency = 8)
        .spawn()
        .await
        .unwrap();
    for batch in 0..4 {
        let specs = (0..500)
            .map(|i| JobSpec::new("test.count", json!({"batch": batch, "i": i})))
            .collect();
        enqueue(&first, specs, true).await;
    }
    let mut conn = first.connect();
    wait_until("2,000 jobs finished", Duration::from_secs(120), || {
        count_jobs(&mut conn, "test.count", "succeeded") == 2_000
    })
    .await;
    let book = ledger.lock().unwrap();
    assert_eq!(book.runs.len(), 2_000);
    assert!(book.runs.values().all(|&runs| runs == 1), "a job ran twice");
    assert!(book.overlaps.is_empty(), "{:?}", book.overlaps);
    drop(book);
    let workers: i64 = {
        #[derive(QueryableByName)]
        struct Workers {
            #[diesel(sql_type = BigInt)]
            n: i64,
        }
        diesel::sql_query("SELECT COUNT(DISTINCT worker) AS n FROM jobs WHERE kind = 'test.count'")
            .get_result::<Workers>(&mut conn)
            .unwrap()
            .n
    };
    assert_eq!(workers, 2, "both instances took part");
    drop(second);
}

/// A schedule runs once per period however many instances there are.
async fn schedules_run_once_per_period_across_instances(backend: Backend) {
    let ledger = Arc::new(Mutex::new(Ledger::default()));
    let registry = |ledger: Arc<Mutex<Ledger>>| {
        counting("test.count", ledger).schedule(Schedule {
            name: "test-hourly",
            period: Period::Every(chrono::Duration::hours(1)),
            kind: "test.count",
            payload: json!({}),
        })
    };
    let first = TestApp::builder(backend)
        .jobs(registry(ledger.clone()))
        .spawn()
        .await
        .unwrap();
    let second = first
        .restart_builder()
        .jobs(registry(ledger.clone()))
        .spawn()
        .await
        .unwrap();
    wait_until("this hour's run", Duration::from_secs(5), || {
        ledger.lock().unwrap().runs.len() == 1
    })
    .await;
    tokio::time::sleep(Duration::from_millis(400)).await;
    assert_eq!(
        ledger.lock().unwrap().runs.len(),
        1,
        "once, not once per instance"
    );
    first.clock.advance(chrono::Duration::hours(1));
    wait_until("the next hour's run", Duration::from_secs(5), || {
        ledger.lock().unwrap().runs.len() == 2
    })
    .await;
    tokio::time::sleep(Duration::from_millis(400)).await;
    assert_eq!(ledger.lock().unwrap().runs.len(), 2);
    let admin = first.admin().await;
    let schedules: Value = first
        .get_as("/api/v1/admin/schedules", &admin.access_token)
        .await
        .json()
        .await
        .unwrap();
    let names: Vec<&str> = schedules
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["name"].as_str().unwrap())
        .collect();
    assert!(
        names.contains(&"test-hourly") && names.contains(&"flag-inactive-accounts"),
        "{names:?}"
    );
    drop(second);
}

/// The queue shows in the metrics: counts by kind and status, and the age of the oldest due job.
async fn metrics_show_the_queue(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    app.citizen("metrik@example.de").await;
    let text = app.get("/metrics").await.text().await.unwrap();
    assert!(
        text.contains("amtsweg_jobs{kind=\"mail.send\",status=\"succeeded\"}"),
        "{text}"
    );
    assert!(text.contains("amtsweg_jobs_oldest_due_seconds"), "{text}");
}

backend_tests!(
    a_job_exists_only_with_its_commit,
    failures_retry_with_backoff_then_die_and_can_be_retried,
    a_lost_lease_hands_the_job_over,
    two_instances_run_every_job_exactly_once,
    schedules_run_once_per_period_across_instances,
    metrics_show_the_queue,
);
