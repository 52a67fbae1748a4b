//! Per-test PostgreSQL databases, copied from a template that is migrated once per migration set.

use std::path::Path;

use amtsweg_db::DbConnection;
use diesel::connection::SimpleConnection;
use diesel::{Connection, PgConnection};
use sha2::{Digest, Sha256};

/// Any fixed key; serialises template creation across concurrently running test processes.
const TEMPLATE_LOCK: i64 = 0x0061_6d74_7377_6567;

/// Replaces the database name in a PostgreSQL URL.
pub fn url_with_database(url: &str, name: &str) -> String {
    let (base, query) = match url.split_once('?') {
        Some((base, query)) => (base, Some(query)),
        None => (url, None),
    };
    let scheme_end = base.find("://").map_or(0, |i| i + 3);
    let path_start = base[scheme_end..]
        .find('/')
        .map_or(base.len(), |i| scheme_end + i);
    let mut out = format!("{}/{name}", &base[..path_start]);
    if let Some(query) = query {
        out.push('?');
        out.push_str(query);
    }
    out
}

fn migrations_fingerprint() -> String {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../migrations/postgres");
    let mut files: Vec<_> = walk(&dir);
    files.sort();
    let mut hasher = Sha256::new();
    for file in files {
        hasher.update(file.to_string_lossy().as_bytes());
        hasher.update(std::fs::read(&file).expect("migration file"));
    }
    hex::encode(hasher.finalize())[..12].to_owned()
}

fn walk(dir: &Path) -> Vec<std::path::PathBuf> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir(dir).expect("migrations directory").flatten() {
        let path = entry.path();
        if path.is_dir() {
            out.extend(walk(&path));
        } else {
            out.push(path);
        }
    }
    out
}

fn admin(url: &str) -> PgConnection {
    PgConnection::establish(url).unwrap_or_else(|err| panic!("cannot connect to PostgreSQL for tests: {err}"))
}

fn exists(conn: &mut PgConnection, name: &str) -> bool {
    #[derive(diesel::QueryableByName)]
    struct Found {
        #[diesel(sql_type = diesel::sql_types::Integer)]
        #[allow(dead_code)]
        one: i32,
    }
    use diesel::RunQueryDsl;
    let rows: Vec<Found> = diesel::sql_query("SELECT 1 AS one FROM pg_database WHERE datname = $1")
        .bind::<diesel::sql_types::Text, _>(name)
        .load(conn)
        .expect("query pg_database");
    !rows.is_empty()
}

/// Creates a uniquely named database, migrated (from the template) or empty; returns its name.
pub fn create_database(admin_url: &str, migrated: bool) -> String {
    let name = format!("amtsweg_test_{}", uuid::Uuid::now_v7().simple());
    let mut conn = admin(admin_url);
    conn.batch_execute(&format!("SELECT pg_advisory_lock({TEMPLATE_LOCK})"))
        .expect("advisory lock");
    let template = if migrated {
        let template = format!("amtsweg_template_{}", migrations_fingerprint());
        if !exists(&mut conn, &template) {
            conn.batch_execute(&format!("CREATE DATABASE {template}"))
                .expect("create template");
            let mut db = DbConnection::Postgres(admin(&url_with_database(admin_url, &template)));
            amtsweg_db::run_migrations(&mut db).expect("migrate template");
        }
        template
    } else {
        "template0".to_owned()
    };
    let created = conn.batch_execute(&format!("CREATE DATABASE {name} TEMPLATE {template}"));
    let _ = conn.batch_execute(&format!("SELECT pg_advisory_unlock({TEMPLATE_LOCK})"));
    created.expect("create test database");
    name
}

pub fn drop_database(admin_url: &str, name: &str) {
    if let Ok(mut conn) = PgConnection::establish(admin_url) {
        let _ = conn.batch_execute(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"));
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn database_names_are_replaced() {
        assert_eq!(
            super::url_with_database("postgres://u@h:5432/test", "x"),
            "postgres://u@h:5432/x"
        );
        assert_eq!(
            super::url_with_database("postgres://u@h/test?sslmode=disable", "x"),
            "postgres://u@h/x?sslmode=disable"
        );
        assert_eq!(
            super::url_with_database("postgres://u@h", "x"),
            "postgres://u@h/x"
        );
    }
}
