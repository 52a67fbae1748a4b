//! `amtsweg backup` and `amtsweg restore`: the database and the stored files, consistent with each other, while the
//! service runs — and never the key-encryption key (it belongs apart from the backup: whoever holds both could mint
//! tokens).
//!
//! A backup directory holds `manifest.json`, the database (`amtsweg.sqlite`, made with `VACUUM INTO`; or
//! `amtsweg.pgdump`, `pg_dump --format=custom`) and `files/blobs/…`. The files are copied after the database
//! snapshot, exactly those the snapshot refers to, so that nothing in the copy points at a missing file.

use std::path::{Path, PathBuf};

use amtsweg_db::{Database, DatabaseUrl, DbConnection, DbError};
use anyhow::{Context, anyhow, bail};
use diesel::connection::SimpleConnection;
use diesel::{Connection, QueryableByName, RunQueryDsl};
use serde::{Deserialize, Serialize};

const MANIFEST: &str = "manifest.json";
const SQLITE_FILE: &str = "amtsweg.sqlite";
const PG_FILE: &str = "amtsweg.pgdump";

/// What a backup holds.
#[derive(Debug, Serialize, Deserialize)]
pub struct Manifest {
    pub format: u32,
    pub created_at: String,
    pub version: String,
    pub backend: String,
    pub database_file: String,
    /// Stored files copied (content-addressed blobs).
    pub blobs: usize,
    pub blob_bytes: u64,
    /// Where the files live when they are not in the backup (an S3 store: back it up with versioning or replication).
    pub files_elsewhere: Option<String>,
    pub key_encryption_key: String,
}

/// Where the service keeps what a backup needs.
pub struct Layout<'a> {
    pub data_dir: &'a Path,
    /// `storage.files.url`: set, the files are in an S3 store and not copied.
    pub files_url: Option<&'a str>,
}

impl Layout<'_> {
    fn blobs(&self) -> PathBuf {
        self.data_dir.join("files").join("blobs")
    }
}

#[derive(QueryableByName)]
struct Blob {
    #[diesel(sql_type = diesel::sql_types::Text)]
    sha256: String,
}

fn blob_path(root: &Path, sha256: &str) -> PathBuf {
    root.join(&sha256[..2.min(sha256.len())]).join(sha256)
}

/// Writes a backup of the running service into `out` (which must not exist or be empty).
pub async fn backup(db: &Database, layout: &Layout<'_>, out: &Path) -> anyhow::Result<Manifest> {
    if out.exists() && std::fs::read_dir(out)?.next().is_some() {
        bail!(
            "{} is not empty; a backup goes into a new directory",
            out.display()
        );
    }
    create_private_dir(out)?;
    let (database_file, blobs) = match db.url().clone() {
        DatabaseUrl::Sqlite(_) => {
            let target = out.join(SQLITE_FILE);
            let into = target.to_string_lossy().into_owned();
            db.read(move |conn| {
                // A consistent snapshot of the live database, taken while writers go on (WAL).
                diesel::sql_query("VACUUM INTO ?")
                    .bind::<diesel::sql_types::Text, _>(into)
                    .execute(conn)
                    .map_err(DbError::from)
            })
            .await?;
            let path = target.clone();
            let blobs = tokio::task::spawn_blocking(move || -> anyhow::Result<Vec<Blob>> {
                let mut snapshot = diesel::SqliteConnection::establish(&path.to_string_lossy())?;
                Ok(diesel::sql_query("SELECT sha256 FROM blobs").load(&mut snapshot)?)
            })
            .await??;
            (SQLITE_FILE, blobs)
        }
        DatabaseUrl::Postgres(url) => {
            let target = out.join(PG_FILE);
            let pool = db.clone();
            let blobs = tokio::task::spawn_blocking(move || pg_dump(&pool, &url, &target)).await??;
            (PG_FILE, blobs)
        }
    };
    let (copied, blob_bytes) = match layout.files_url {
        Some(_) => (0, 0),
        None => copy_blobs(&layout.blobs(), &out.join("files").join("blobs"), &blobs)?,
    };
    let manifest = Manifest {
        format: 1,
        created_at: chrono::Utc::now().to_rfc3339(),
        version: env!("CARGO_PKG_VERSION").to_owned(),
        backend: db.backend().to_string(),
        database_file: database_file.to_owned(),
        blobs: copied,
        blob_bytes,
        files_elsewhere: layout.files_url.map(str::to_owned),
        key_encryption_key: "not included: restore it separately (keys.encryption_key_file, by default \
                             {storage.data_dir}/secrets/signing-keys.kek)"
            .to_owned(),
    };
    std::fs::write(out.join(MANIFEST), serde_json::to_vec_pretty(&manifest)?)?;
    make_private(out)?;
    Ok(manifest)
}

/// A backup holds personal data: its directory is the owner's alone (0700).
fn create_private_dir(dir: &Path) -> anyhow::Result<()> {
    let mut builder = std::fs::DirBuilder::new();
    builder.recursive(true);
    #[cfg(unix)]
    std::os::unix::fs::DirBuilderExt::mode(&mut builder, 0o700);
    builder
        .create(dir)
        .with_context(|| format!("cannot create {}", dir.display()))
}

/// Every file and directory of the backup readable by its owner only.
fn make_private(path: &Path) -> anyhow::Result<()> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let is_dir = path.is_dir();
        let mode = if is_dir { 0o700 } else { 0o600 };
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode))?;
        if is_dir {
            for entry in std::fs::read_dir(path)? {
                make_private(&entry?.path())?;
            }
        }
    }
    Ok(())
}

/// `pg_dump` from a snapshot exported by a transaction that also lists the blobs the dump refers to.
fn pg_dump(db: &Database, url: &str, target: &Path) -> anyhow::Result<Vec<Blob>> {
    let mut pooled = db.connection()?;
    let conn: &mut DbConnection = &mut pooled;
    let DbConnection::Postgres(pg) = conn else {
        bail!("not a PostgreSQL connection");
    };
    #[derive(QueryableByName)]
    struct Snapshot {
        #[diesel(sql_type = diesel::sql_types::Text)]
        id: String,
    }
    pg.batch_execute("BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY")?;
    let outcome = (|| -> anyhow::Result<Vec<Blob>> {
        let snapshot: Snapshot = diesel::sql_query("SELECT pg_export_snapshot() AS id").get_result(pg)?;
        let blobs = diesel::sql_query("SELECT sha256 FROM blobs").load(pg)?;
        let output = std::process::Command::new("pg_dump")
            .arg("--format=custom")
            .arg("--no-owner")
            .arg(format!("--snapshot={}", snapshot.id))
            .arg("--file")
            .arg(target)
            .arg(format!("--dbname={url}"))
            .output()
            .context("cannot run pg_dump (install the PostgreSQL client tools of the server's version)")?;
        if !output.status.success() {
            bail!(
                "pg_dump failed: {}",
                String::from_utf8_lossy(&output.stderr).trim()
            );
        }
        Ok(blobs)
    })();
    pg.batch_execute("COMMIT")?;
    outcome
}

fn copy_blobs(from: &Path, to: &Path, blobs: &[Blob]) -> anyhow::Result<(usize, u64)> {
    let mut bytes = 0;
    for blob in blobs {
        let source = blob_path(from, &blob.sha256);
        let target = blob_path(to, &blob.sha256);
        if let Some(dir) = target.parent() {
            std::fs::create_dir_all(dir)?;
        }
        bytes += std::fs::copy(&source, &target).with_context(|| {
            format!(
                "stored file {} is missing (deleted while the backup ran?); run the backup again",
                source.display()
            )
        })?;
    }
    Ok((blobs.len(), bytes))
}

/// Restores a backup into an empty target: the configured database (a SQLite file that does not exist yet, or an
/// empty PostgreSQL database) and the data directory's files.
pub fn restore(from: &Path, database: &DatabaseUrl, layout: &Layout<'_>) -> anyhow::Result<Manifest> {
    let manifest: Manifest = serde_json::from_slice(
        &std::fs::read(from.join(MANIFEST)).with_context(|| format!("{} holds no backup", from.display()))?,
    )?;
    match database {
        DatabaseUrl::Sqlite(path) => {
            if manifest.backend != "sqlite" {
                bail!(
                    "this backup is of a {} database; restore it into one",
                    manifest.backend
                );
            }
            if path.exists() {
                bail!("{} exists; restore into a new database file", path.display());
            }
            if let Some(dir) = path.parent().filter(|dir| !dir.as_os_str().is_empty()) {
                std::fs::create_dir_all(dir)?;
            }
            std::fs::copy(from.join(SQLITE_FILE), path)?;
        }
        DatabaseUrl::Postgres(url) => {
            if manifest.backend != "postgres" {
                bail!(
                    "this backup is of a {} database; restore it into one",
                    manifest.backend
                );
            }
            let mut conn = diesel::PgConnection::establish(url)?;
            #[derive(QueryableByName)]
            struct Count {
                #[diesel(sql_type = diesel::sql_types::BigInt)]
                n: i64,
            }
            let tables: Count = diesel::sql_query(
                "SELECT COUNT(*) AS n FROM information_schema.tables WHERE table_schema = 'public'",
            )
            .get_result(&mut conn)?;
            if tables.n > 0 {
                bail!("the target database is not empty; restore into a new one");
            }
            let output = std::process::Command::new("pg_restore")
                .arg("--no-owner")
                .arg("--exit-on-error")
                .arg(format!("--dbname={url}"))
                .arg(from.join(PG_FILE))
                .output()
                .context(
                    "cannot run pg_restore (install the PostgreSQL client tools of the server's version)",
                )?;
            if !output.status.success() {
                bail!(
                    "pg_restore failed: {}",
                    String::from_utf8_lossy(&output.stderr).trim()
                );
            }
        }
    }
    if layout.files_url.is_none() && manifest.files_elsewhere.is_none() {
        copy_tree(&from.join("files").join("blobs"), &layout.blobs())?;
    }
    Ok(manifest)
}

fn copy_tree(from: &Path, to: &Path) -> anyhow::Result<()> {
    if !from.exists() {
        return Ok(());
    }
    std::fs::create_dir_all(to)?;
    for entry in std::fs::read_dir(from)? {
        let entry = entry?;
        let target = to.join(entry.file_name());
        if entry.file_type()?.is_dir() {
            copy_tree(&entry.path(), &target)?;
        } else {
            std::fs::copy(entry.path(), &target)
                .map_err(|err| anyhow!("copying {}: {err}", entry.path().display()))?;
        }
    }
    Ok(())
}
