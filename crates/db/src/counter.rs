//! Counters that hand out numbers outside any lock: a PostgreSQL sequence, an AUTOINCREMENT table on SQLite (both
//! named `name` and created by a migration). Callers never wait for each other on a counter row; a rolled-back
//! transaction leaves a gap, and no number is handed out twice.

use diesel::prelude::*;
use diesel::sql_types::BigInt;

use crate::{DbConnection, DbError};

#[derive(QueryableByName)]
struct Next {
    #[diesel(sql_type = BigInt)]
    n: i64,
}

/// The next number of the counter `name` (a name from the code, never from input).
pub fn next(conn: &mut DbConnection, name: &'static str) -> Result<i64, DbError> {
    match conn {
        DbConnection::Postgres(pg) => {
            let next: Next = diesel::sql_query(format!("SELECT nextval('{name}') AS n")).get_result(pg)?;
            Ok(next.n)
        }
        DbConnection::Sqlite(lite) => {
            diesel::sql_query(format!("INSERT INTO {name} DEFAULT VALUES")).execute(lite)?;
            let next: Next = diesel::sql_query("SELECT last_insert_rowid() AS n").get_result(lite)?;
            diesel::sql_query(format!("DELETE FROM {name}")).execute(lite)?;
            Ok(next.n)
        }
    }
}
