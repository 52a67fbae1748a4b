//! Job throughput: jobs queued one per transaction by 8 writers and run to completion by the runner (a no-op
//! handler), against the same work done with the raw statements in the same run — inserts, then claims with
//! `FOR UPDATE SKIP LOCKED` (PostgreSQL) or under the single writer lock (SQLite), then completions — with as many
//! jobs in flight on both sides (4 claimers of one job each against a runner of concurrency 4).
//! `cargo bench -p amtsweg-tests --bench jobs` (SQLite; set AMTSWEG_TEST_POSTGRES_URL for PostgreSQL).

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use amtsweg_db::{DbConnection, DbError};
use amtsweg_jobs::{JobSpec, Registry, handler_fn};
use amtsweg_test_support::{Backend, TestApp};
use diesel::connection::SimpleConnection;
use diesel::{Connection, QueryableByName, RunQueryDsl};
use serde_json::json;

const JOBS: usize = 4_000;
const WRITERS: usize = 8;
const RUNNERS: usize = 4;

async fn through_the_runner(app: &TestApp, done: Arc<AtomicU64>) -> f64 {
    let started = Instant::now();
    let writers: Vec<_> = (0..WRITERS)
        .map(|w| {
            let db = app.pool.clone();
            let clock = app.clock.clone();
            tokio::spawn(async move {
                for i in 0..JOBS / WRITERS {
                    let now = amtsweg_kernel::Clock::now(clock.as_ref());
                    db.write(move |conn| {
                        amtsweg_jobs::enqueue(conn, &JobSpec::new("bench.noop", json!({"w": w, "i": i})), now)
                    })
                    .await
                    .expect("enqueue");
                }
            })
        })
        .collect();
    for writer in writers {
        writer.await.expect("writer");
    }
    while done.load(Ordering::Relaxed) < JOBS as u64 {
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    // The last outcomes are recorded in the runner's next round.
    let mut conn = app.connect();
    loop {
        #[derive(QueryableByName)]
        struct Left {
            #[diesel(sql_type = diesel::sql_types::BigInt)]
            n: i64,
        }
        let left: Left = diesel::sql_query(
            "SELECT COUNT(*) AS n FROM jobs WHERE kind = 'bench.noop' AND status <> 'succeeded'",
        )
        .get_result(&mut conn)
        .expect("count");
        if left.n == 0 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    JOBS as f64 / started.elapsed().as_secs_f64()
}

fn raw(url: &str, postgres: bool) -> f64 {
    let connect = || {
        let mut conn = DbConnection::establish(url).expect("connect");
        if !postgres {
            conn.batch_execute("PRAGMA busy_timeout = 5000; PRAGMA synchronous = FULL;")
                .expect("pragmas");
        }
        conn
    };
    let begin = if postgres { "BEGIN" } else { "BEGIN IMMEDIATE" };
    let lock = if postgres { " FOR UPDATE SKIP LOCKED" } else { "" };
    let finished = Arc::new(AtomicU64::new(0));
    let started = Instant::now();
    let writers: Vec<_> = (0..WRITERS)
        .map(|w| {
            let mut conn = connect();
            std::thread::spawn(move || {
                for i in 0..JOBS / WRITERS {
                    let statements = [
                        begin.to_owned(),
                        format!("INSERT INTO jobs (id, kind, payload, status, attempts, run_at, created_at) VALUES ('raw-{w}-{i}', 'raw.noop', '{{}}', 'queued', 0, CURRENT_TIMESTAMP, CURRENT_TIMESTAMP)"),
                        "COMMIT".to_owned(),
                    ];
                    for statement in &statements {
                        diesel::sql_query(statement).execute(&mut conn).expect("insert");
                    }
                }
            })
        })
        .collect();
    let runners: Vec<_> = (0..RUNNERS)
        .map(|r| {
            let mut conn = connect();
            let finished = finished.clone();
            std::thread::spawn(move || {
                #[derive(QueryableByName)]
                struct Claimed {
                    #[diesel(sql_type = diesel::sql_types::Text)]
                    id: String,
                }
                while finished.load(Ordering::Relaxed) < JOBS as u64 {
                    diesel::sql_query(begin).execute(&mut conn).expect("begin");
                    let claimed: Vec<Claimed> = diesel::sql_query(format!(
                        "SELECT id FROM jobs WHERE kind = 'raw.noop' AND status = 'queued' AND run_at <= CURRENT_TIMESTAMP ORDER BY run_at LIMIT 1{lock}"
                    ))
                    .load(&mut conn)
                    .expect("claim");
                    let ids: Vec<String> = claimed.iter().map(|c| format!("'{}'", c.id)).collect();
                    if !ids.is_empty() {
                        diesel::sql_query(format!(
                            "UPDATE jobs SET status = 'running', attempts = attempts + 1, worker = 'raw-{r}', locked_until = CURRENT_TIMESTAMP WHERE id IN ({})",
                            ids.join(",")
                        ))
                        .execute(&mut conn)
                        .expect("lease");
                    }
                    diesel::sql_query("COMMIT").execute(&mut conn).expect("commit");
                    if ids.is_empty() {
                        std::thread::sleep(Duration::from_millis(1));
                        continue;
                    }
                    diesel::sql_query(begin).execute(&mut conn).expect("begin");
                    diesel::sql_query(format!(
                        "UPDATE jobs SET status = 'succeeded', finished_at = CURRENT_TIMESTAMP, locked_until = NULL WHERE id IN ({})",
                        ids.join(",")
                    ))
                    .execute(&mut conn)
                    .expect("complete");
                    diesel::sql_query("COMMIT").execute(&mut conn).expect("commit");
                    finished.fetch_add(ids.len() as u64, Ordering::Relaxed);
                }
            })
        })
        .collect();
    for thread in writers.into_iter().chain(runners) {
        thread.join().expect("thread");
    }
    JOBS as f64 / started.elapsed().as_secs_f64()
}

fn main() {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    runtime.block_on(async {
        let backend = Backend::postgres().unwrap_or(Backend::Sqlite);
        let postgres = backend.is_postgres();
        let done = Arc::new(AtomicU64::new(0));
        let counter = done.clone();
        let registry = Registry::new().handler(handler_fn("bench.noop", 3, move |_| {
            let counter = counter.clone();
            async move {
                counter.fetch_add(1, Ordering::Relaxed);
                Ok(None)
            }
        }));
        let app = TestApp::builder(backend)
            .jobs(registry)
            .configure(|s| {
                s.server.workers = None;
                s.database.pool_size = 12;
                s.jobs.concurrency = RUNNERS;
            })
            .spawn()
            .await
            .expect("app");
        let runner = through_the_runner(&app, done).await;
        let url = app.database.url_string();
        let url = url.strip_prefix("sqlite://").unwrap_or(&url).to_owned();
        let raw = tokio::task::spawn_blocking(move || raw(&url, postgres))
            .await
            .expect("raw");
        let name = if postgres { "PostgreSQL" } else { "SQLite" };
        println!(
            "\nJobs: {JOBS} no-op jobs, each queued in its own transaction by {WRITERS} writers ({name})"
        );
        println!("  queued and run by the job runner ({RUNNERS} at a time):      {runner:8.1}/s");
        println!("  the raw statements (insert, claim, complete; {RUNNERS} claimers):  {raw:8.1}/s");
        println!(
            "  ratio:                                                   {:8.2}  (aim ≥ 0.50)",
            runner / raw
        );
        let _: Option<DbError> = None;
    });
}
