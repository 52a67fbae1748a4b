use std::path::PathBuf;
use std::sync::Arc;

use amtsweg_db::DatabaseUrl;
use tempfile::TempDir;

use crate::postgres;

pub const POSTGRES_URL_VAR: &str = "AMTSWEG_TEST_POSTGRES_URL";

#[derive(Debug, Clone)]
pub enum Backend {
    Sqlite,
    /// Admin URL of a PostgreSQL server on which per-test databases are created.
    Postgres(String),
}

impl Backend {
    /// The PostgreSQL backend when configured. Unset is a skip on a developer machine and a failure in CI.
    pub fn postgres() -> Option<Backend> {
        match std::env::var(POSTGRES_URL_VAR) {
            Ok(url) if !url.trim().is_empty() => Some(Backend::Postgres(url)),
            _ if std::env::var("CI").is_ok_and(|ci| ci == "true") => {
                panic!(
                    "CI=true but {POSTGRES_URL_VAR} is not set: the PostgreSQL suite must not be skipped in CI"
                )
            }
            _ => {
                eprintln!("skipped on PostgreSQL: {POSTGRES_URL_VAR} is not set");
                None
            }
        }
    }

    pub fn is_postgres(&self) -> bool {
        matches!(self, Backend::Postgres(_))
    }

    /// A fresh database of this backend. `migrated` copies it from a migrated template (fast); otherwise it is
    /// empty.
    pub fn fresh_database(&self, migrated: bool) -> FreshDatabase {
        match self {
            Backend::Sqlite => {
                let dir = tempfile::tempdir().expect("temporary directory");
                let path = dir.path().join("amtsweg.sqlite");
                FreshDatabase {
                    url: DatabaseUrl::Sqlite(path.clone()),
                    _guard: Arc::new(Guard::Sqlite(dir)),
                    sqlite_path: Some(path),
                }
            }
            Backend::Postgres(admin) => {
                let name = postgres::create_database(admin, migrated);
                let url = postgres::url_with_database(admin, &name);
                FreshDatabase {
                    url: DatabaseUrl::Postgres(url),
                    _guard: Arc::new(Guard::Postgres {
                        admin: admin.clone(),
                        name,
                    }),
                    sqlite_path: None,
                }
            }
        }
    }
}

/// A per-test database that is removed when the last handle to it goes away.
#[derive(Clone)]
pub struct FreshDatabase {
    pub url: DatabaseUrl,
    pub sqlite_path: Option<PathBuf>,
    _guard: Arc<Guard>,
}

impl FreshDatabase {
    pub fn url_string(&self) -> String {
        match &self.url {
            DatabaseUrl::Postgres(url) => url.clone(),
            DatabaseUrl::Sqlite(path) => format!("sqlite://{}", path.display()),
        }
    }
}

enum Guard {
    Sqlite(
        #[expect(
            dead_code,
            reason = "held only so that the directory is removed with the guard"
        )]
        TempDir,
    ),
    Postgres {
        admin: String,
        name: String,
    },
}

impl Drop for Guard {
    fn drop(&mut self) {
        if let Guard::Postgres { admin, name } = self {
            postgres::drop_database(admin, name);
        }
    }
}
