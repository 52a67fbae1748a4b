//! The database: one connection type over PostgreSQL and SQLite, a bounded pool, embedded migrations per backend,
//! and a way to run blocking diesel work off the async executor.
//!
//! The backend is chosen from the URL scheme alone (`postgres://` / `postgresql://` versus `sqlite://`, `sqlite:` or
//! a plain file path), never by trying connections in turn.

mod commit;
mod connection;
pub mod counter;
mod database;
mod migrations;
pub mod personal_data;
mod url;

pub use commit::{InTransaction, after_commit, nothing};
pub use connection::{DbConnection, MultiBackend};
pub use database::{Database, DbError, Manager, PoolOptions, PoolStatus, Pooled};
pub use migrations::{
    FINGERPRINT as MIGRATIONS_FINGERPRINT, MigrationError, applied_migrations, revert_last_migration,
    run_migrations, run_next_migration,
};
pub use url::{Backend, DatabaseUrl, UrlError};
