use diesel::{PgConnection, SqliteConnection};

/// A connection to whichever backend the URL named. Queries written against it run on both; SQL only one backend
/// understands lives in a small function that matches on the variant.
#[derive(diesel::MultiConnection)]
pub enum DbConnection {
    Postgres(PgConnection),
    Sqlite(SqliteConnection),
}
