//! Embedded migrations, one set per backend with identical names.

use diesel_migrations::{EmbeddedMigrations, MigrationHarness, embed_migrations};

use crate::DbConnection;

/// Changes with every migration file (see `build.rs`); reading it makes a changed set rebuild this crate.
pub const FINGERPRINT: &str = env!("AMTSWEG_MIGRATIONS_FINGERPRINT");

const POSTGRES: EmbeddedMigrations = embed_migrations!("../../migrations/postgres");
const SQLITE: EmbeddedMigrations = embed_migrations!("../../migrations/sqlite");

#[derive(Debug, thiserror::Error)]
#[error("migration failed: {0}")]
pub struct MigrationError(String);

fn failed(err: impl std::fmt::Display) -> MigrationError {
    MigrationError(err.to_string())
}

/// Applies every pending migration; returns the names applied now.
pub fn run_migrations(conn: &mut DbConnection) -> Result<Vec<String>, MigrationError> {
    let applied = match conn {
        DbConnection::Postgres(c) => c.run_pending_migrations(POSTGRES).map_err(failed)?,
        DbConnection::Sqlite(c) => c.run_pending_migrations(SQLITE).map_err(failed)?,
    };
    Ok(applied.into_iter().map(|version| version.to_string()).collect())
}

/// Names of the applied migrations, oldest first.
pub fn applied_migrations(conn: &mut DbConnection) -> Result<Vec<String>, MigrationError> {
    let mut versions = match conn {
        DbConnection::Postgres(c) => c.applied_migrations().map_err(failed)?,
        DbConnection::Sqlite(c) => c.applied_migrations().map_err(failed)?,
    };
    versions.sort();
    Ok(versions.into_iter().map(|version| version.to_string()).collect())
}

/// Reverts the newest applied migration (its `down.sql`).
pub fn revert_last_migration(conn: &mut DbConnection) -> Result<String, MigrationError> {
    let reverted = match conn {
        DbConnection::Postgres(c) => c.revert_last_migration(POSTGRES).map_err(failed)?,
        DbConnection::Sqlite(c) => c.revert_last_migration(SQLITE).map_err(failed)?,
    };
    Ok(reverted.to_string())
}

/// Applies exactly the next pending migration.
pub fn run_next_migration(conn: &mut DbConnection) -> Result<Option<String>, MigrationError> {
    let pending = match conn {
        DbConnection::Postgres(c) => {
            let pending = c.pending_migrations(POSTGRES).map_err(failed)?;
            match pending.first() {
                Some(next) => Some(c.run_migration(next.as_ref()).map_err(failed)?),
                None => None,
            }
        }
        DbConnection::Sqlite(c) => {
            let pending = c.pending_migrations(SQLITE).map_err(failed)?;
            match pending.first() {
                Some(next) => Some(c.run_migration(next.as_ref()).map_err(failed)?),
                None => None,
            }
        }
    };
    Ok(pending.map(|version| version.to_string()))
}
