//! The GDPR export and erasure can never forget a module: every table that refers to an account is claimed by a
//! registered personal-data section.

use amtsweg_db::DbConnection;
use amtsweg_test_support::{Backend, TestApp, backend_tests};
use diesel::{Connection, QueryableByName, RunQueryDsl, sql_types::Text};

#[derive(QueryableByName)]
struct Table {
    #[diesel(sql_type = Text)]
    name: String,
}

async fn every_table_with_personal_data_is_registered(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let url = app.database.url_string();
    let mut conn = DbConnection::establish(url.strip_prefix("sqlite://").unwrap_or(&url)).unwrap();
    let query = match conn {
        DbConnection::Postgres(_) => {
            "SELECT DISTINCT table_name AS name FROM information_schema.columns
             WHERE table_schema = 'public' AND column_name = 'account_id' ORDER BY 1"
        }
        DbConnection::Sqlite(_) => {
            "SELECT DISTINCT m.name AS name FROM sqlite_master m, pragma_table_info(m.name) p
             WHERE m.type = 'table' AND p.name = 'account_id' ORDER BY 1"
        }
    };
    let tables: Vec<Table> = diesel::sql_query(query).load(&mut conn).unwrap();
    let registered = amtsweg_server::app::personal_data().tables();
    let missing: Vec<&str> = tables
        .iter()
        .map(|t| t.name.as_str())
        .filter(|t| !registered.contains(t))
        .collect();
    assert!(tables.len() >= 10, "the schema has account tables");
    assert!(
        missing.is_empty(),
        "tables with account data that no export/erasure section covers: {missing:?}"
    );
    // The accounts table itself holds the person.
    assert!(registered.contains(&"accounts"));
}

backend_tests!(every_table_with_personal_data_is_registered);
