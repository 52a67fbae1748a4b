//! Every migration's `down.sql` must restore exactly the schema that was there before its `up.sql`.

use amtsweg_db::DbConnection;
use amtsweg_test_support::{Backend, backend_tests};
use diesel::{Connection, QueryableByName, RunQueryDsl, sql_types::Text};

#[derive(QueryableByName)]
struct Line {
    #[diesel(sql_type = Text)]
    line: String,
}

/// Tables, columns, indexes and constraints, as comparable text.
fn schema(conn: &mut DbConnection) -> Vec<String> {
    let query = match conn {
        DbConnection::Postgres(_) => {
            "SELECT 'column ' || table_name || '.' || column_name || ' ' || data_type || ' ' || is_nullable \
               || ' ' || coalesce(column_default, '') AS line
               FROM information_schema.columns WHERE table_schema = 'public'
             UNION ALL SELECT 'index ' || indexname || ' ' || indexdef FROM pg_indexes WHERE schemaname = 'public'
             UNION ALL SELECT 'constraint ' || conname || ' ' || pg_get_constraintdef(oid)
               FROM pg_constraint WHERE connamespace = 'public'::regnamespace
             UNION ALL SELECT 'sequence ' || sequence_name FROM information_schema.sequences
               WHERE sequence_schema = 'public'
             ORDER BY 1"
        }
        DbConnection::Sqlite(_) => {
            "SELECT type || ' ' || name || ' ' || coalesce(sql, '') AS line FROM sqlite_master
             WHERE name NOT LIKE 'sqlite_%' ORDER BY 1"
        }
    };
    let lines: Vec<Line> = diesel::sql_query(query).load(conn).expect("schema query");
    lines
        .into_iter()
        .map(|l| l.line)
        .filter(|l| !l.contains("__diesel_schema_migrations"))
        .collect()
}

async fn every_down_migration_reverses_its_up(backend: Backend) {
    let database = backend.fresh_database(false);
    let url = database.url_string();
    let url = url.strip_prefix("sqlite://").unwrap_or(&url).to_owned();
    tokio::task::spawn_blocking(move || {
        let mut conn = DbConnection::establish(&url).expect("connect");
        let mut before = Vec::new();
        loop {
            let snapshot = schema(&mut conn);
            match amtsweg_db::run_next_migration(&mut conn).expect("up.sql runs") {
                Some(name) => before.push((name, snapshot)),
                None => break,
            }
        }
        assert!(!before.is_empty(), "there are migrations");
        while let Some((name, expected)) = before.pop() {
            let reverted = amtsweg_db::revert_last_migration(&mut conn).expect("down.sql runs");
            assert_eq!(reverted, name);
            assert_eq!(
                schema(&mut conn),
                expected,
                "down.sql of {name} does not restore the schema before it"
            );
        }
    })
    .await
    .unwrap();
}

backend_tests!(every_down_migration_reverses_its_up);
