//! Writers on one SQLite file never see `SQLITE_BUSY`, even from two pools (as from two processes — the server
//! and a command-line tool) that read before they write.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    reason = "a failed unwrap is a failed test"
)]

use amtsweg_db::{Database, DatabaseUrl, DbError, PoolOptions};
use diesel::connection::SimpleConnection;
use diesel::{QueryableByName, RunQueryDsl, sql_types::BigInt};

#[derive(QueryableByName)]
struct Count {
    #[diesel(sql_type = BigInt)]
    n: i64,
}

#[test]
fn two_pools_write_the_same_file_without_busy_errors() {
    let dir = tempfile::tempdir().unwrap();
    let url = DatabaseUrl::Sqlite(dir.path().join("shared.sqlite"));
    let first = Database::connect(
        &url,
        PoolOptions {
            max_size: 4,
            ..PoolOptions::default()
        },
    )
    .unwrap();
    let second = Database::connect(
        &url,
        PoolOptions {
            max_size: 4,
            ..PoolOptions::default()
        },
    )
    .unwrap();
    first
        .connection()
        .unwrap()
        .batch_execute("CREATE TABLE entries (n BIGINT NOT NULL)")
        .unwrap();

    let workers: Vec<_> = (0..8)
        .map(|i| {
            let db = if i % 2 == 0 { first.clone() } else { second.clone() };
            std::thread::spawn(move || {
                for _ in 0..40 {
                    db.write_blocking(|conn| {
                        // Read, then write: the pattern that fails in deferred transactions.
                        let count: Count =
                            diesel::sql_query("SELECT count(*) AS n FROM entries").get_result(conn)?;
                        diesel::sql_query(format!("INSERT INTO entries (n) VALUES ({})", count.n))
                            .execute(conn)?;
                        Ok::<_, DbError>(())
                    })
                    .unwrap();
                }
            })
        })
        .collect();
    for worker in workers {
        worker.join().unwrap();
    }
    let total: Count = diesel::sql_query("SELECT count(*) AS n FROM entries")
        .get_result(&mut **first.connection().unwrap())
        .unwrap();
    assert_eq!(total.n, 320);
}
