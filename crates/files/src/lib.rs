//! Files: blobs in an object store (the local disk by default, any S3-compatible store by configuration, so several
//! instances can share them), content-addressed by SHA-256, with their metadata in the database.
//!
//! - Uploads stream: the body is never held whole in memory; the size limit, the SHA-256 and the media type
//!   (sniffed from the content — the declared type and the extension are never trusted) are worked out while the
//!   bytes pass, and PDFs that are encrypted or carry JavaScript or launch actions are refused. When anything
//!   fails, nothing is left behind: no object, no row.
//! - Blobs with the same content are stored once and count their owners; a blob is deleted (by a job, after the
//!   commit that removed its last owner) only when its last owner is gone.
//! - Downloads stream too, with a safe `Content-Disposition`, `nosniff` and range requests.

mod download;
pub mod http;
mod pdf;
mod schema;
mod settings;
mod upload;

use std::sync::Arc;

use actix_web::http::StatusCode;
use amtsweg_db::{Database, DbConnection, DbError};
use amtsweg_jobs::{JobError, JobSpec, Period, Registry, Schedule, handler_fn};
use amtsweg_kernel::{ApiError, SharedClock, Text, Timestamp};
use diesel::prelude::*;
use object_store::path::Path as ObjectPath;
use object_store::{ObjectStore, ObjectStoreExt};
use serde::Serialize;
use serde_json::json;
use utoipa::ToSchema;

pub use download::download;
pub use pdf::{PdfProblem, PdfScanner};
pub use settings::{FilesSettings, S3Settings};
pub use upload::{UploadPolicy, receive_form, receive_multipart};

use schema::{blobs, files};

/// The job that deletes a blob's object once its last owner is gone.
const DELETE_BLOB: &str = "files.delete_blob";
/// The job that removes uploads nothing took up in time.
const PURGE_UNATTACHED: &str = "files.purge_unattached";

/// Why a file was not taken or cannot be given.
#[derive(Debug, thiserror::Error)]
pub enum FileError {
    #[error("the file is larger than {limit} bytes")]
    TooLarge { limit: u64 },
    #[error("the file is empty")]
    Empty,
    #[error("files of type {detected} are not accepted")]
    NotAllowed { detected: String },
    #[error("the PDF is encrypted")]
    PdfEncrypted,
    #[error("the PDF carries active content")]
    PdfActiveContent,
    #[error("the upload is not a readable multipart/form-data body: {0}")]
    Malformed(String),
    #[error("the request body stopped arriving")]
    Stalled,
    #[error("no such file")]
    NotFound,
    #[error("the storage for files is full ({quota} bytes)")]
    StorageFull { quota: u64 },
    #[error("object store: {0}")]
    Store(#[from] object_store::Error),
    #[error(transparent)]
    Db(#[from] DbError),
}

impl From<diesel::result::Error> for FileError {
    fn from(err: diesel::result::Error) -> Self {
        FileError::Db(DbError::from(err))
    }
}

impl From<FileError> for ApiError {
    fn from(err: FileError) -> ApiError {
        let unprocessable = |code: &'static str, de: &'static str, en: &'static str| {
            ApiError::new(StatusCode::UNPROCESSABLE_ENTITY, code, Text::fixed(de, en))
        };
        match err {
            FileError::TooLarge { limit } => ApiError::from_status(StatusCode::PAYLOAD_TOO_LARGE)
                .with_detail(Text::new(
                    format!("Die Datei darf höchstens {} MB groß sein.", limit / 1_000_000),
                    format!("The file may be at most {} MB.", limit / 1_000_000),
                )),
            FileError::Empty => unprocessable("file_empty", "Die Datei ist leer.", "The file is empty."),
            FileError::NotAllowed { detected } => ApiError::new(
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                "media_type_not_allowed",
                Text::fixed(
                    "Dieser Dateityp wird nicht angenommen.",
                    "This type of file is not accepted.",
                ),
            )
            .with_detail(Text::new(
                format!("Erkannt wurde {detected}. Angenommen werden PDF, JPEG und PNG."),
                format!("Detected {detected}. Accepted are PDF, JPEG and PNG."),
            )),
            FileError::PdfEncrypted => unprocessable(
                "pdf_encrypted",
                "Verschlüsselte PDF-Dateien können nicht angenommen werden. Bitte speichern Sie die Datei ohne Kennwort.",
                "Encrypted PDF files cannot be accepted. Please save the file without a password.",
            ),
            FileError::PdfActiveContent => unprocessable(
                "pdf_active_content",
                "PDF-Dateien mit JavaScript oder Startaktionen werden nicht angenommen.",
                "PDF files with JavaScript or launch actions are not accepted.",
            ),
            FileError::Malformed(reason) => ApiError::bad_request(
                "malformed_upload",
                Text::fixed(
                    "Der Upload ist kein lesbares multipart/form-data mit einem Feld „file“.",
                    "The upload is not readable multipart/form-data with a field “file”.",
                ),
            )
            .with_detail(Text::new(reason.clone(), reason)),
            FileError::Stalled => ApiError::from_status(StatusCode::REQUEST_TIMEOUT),
            FileError::NotFound => ApiError::new(
                StatusCode::NOT_FOUND,
                "file_not_found",
                Text::fixed("Datei nicht gefunden.", "File not found."),
            ),
            FileError::StorageFull { quota } => {
                tracing::error!(
                    quota,
                    "file storage full: uploads are refused until space is made or the quota raised"
                );
                ApiError::new(
                    StatusCode::INSUFFICIENT_STORAGE,
                    "storage_full",
                    Text::fixed(
                        "Der Speicher für Dateien ist voll. Die Verwaltung ist informiert; bitte versuchen Sie es später noch einmal.",
                        "The storage for files is full. The administration has been told; please try again later.",
                    ),
                )
            }
            FileError::Db(DbError::Unavailable(cause)) => ApiError::unavailable(cause),
            FileError::Db(other) => ApiError::internal(other),
            FileError::Store(err) => ApiError::unavailable(err),
        }
    }
}

/// A stored file (the marker of its ids).
pub enum File {}

/// The id of a stored file.
pub type FileId = amtsweg_kernel::id::Id<File>;

/// A stored file as its owner sees it.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct FileView {
    pub id: FileId,
    /// The name given at upload, cleaned of paths and control characters.
    pub name: String,
    /// As sniffed from the content.
    pub media_type: String,
    pub size: i64,
    /// Hex SHA-256 of the content.
    pub sha256: String,
    pub created_at: String,
    /// When an upload that nothing took up is removed.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub expires_at: Option<String>,
}

#[derive(Debug, Clone, Queryable, Selectable)]
#[diesel(table_name = files)]
pub(crate) struct FileRow {
    pub id: FileId,
    pub sha256: String,
    pub owner_module: String,
    pub account_id: Option<String>,
    pub name: String,
    pub media_type: String,
    pub size: i64,
    pub created_at: Timestamp,
    pub expires_at: Option<Timestamp>,
}

impl FileRow {
    pub(crate) fn view(&self) -> FileView {
        FileView {
            id: self.id.clone(),
            name: self.name.clone(),
            media_type: self.media_type.clone(),
            size: self.size,
            sha256: self.sha256.clone(),
            created_at: self.created_at.rfc3339(),
            expires_at: self.expires_at.map(Timestamp::rfc3339),
        }
    }
}

/// Where a blob's content lives.
pub(crate) fn blob_path(sha256: &str) -> ObjectPath {
    ObjectPath::from(format!("blobs/{}/{sha256}", &sha256[..2.min(sha256.len())]))
}

/// The files of every module. Cheap to clone.
#[derive(Clone)]
pub struct FileStore {
    pub(crate) db: Database,
    pub(crate) clock: SharedClock,
    pub(crate) objects: Arc<dyn ObjectStore>,
    pub(crate) settings: Arc<FilesSettings>,
    /// Bytes per part of a streamed upload: small on a local disk, S3's minimum of 5 MiB on S3.
    pub(crate) part_size: usize,
}

impl FileStore {
    /// Opens the configured store: S3 for `s3://bucket/prefix`, else a directory `files/` in `data_dir`.
    pub fn open(
        db: Database,
        clock: SharedClock,
        settings: FilesSettings,
        data_dir: &std::path::Path,
    ) -> Result<FileStore, String> {
        let (objects, part_size): (Arc<dyn ObjectStore>, usize) = match settings.url.as_deref() {
            Some(url) => (s3(url, &settings.s3)?, 5 * 1024 * 1024),
            None => {
                let dir = data_dir.join("files");
                std::fs::create_dir_all(&dir).map_err(|err| format!("{}: {err}", dir.display()))?;
                let local = object_store::local::LocalFileSystem::new_with_prefix(&dir)
                    .map_err(|err| err.to_string())?;
                (Arc::new(local), 1024 * 1024)
            }
        };
        Ok(FileStore {
            db,
            clock,
            objects,
            settings: Arc::new(settings),
            part_size,
        })
    }

    pub fn settings(&self) -> &FilesSettings {
        &self.settings
    }

    /// One file of an account; another account's file does not exist for it.
    pub async fn file_of(&self, account_id: &str, id: &FileId) -> Result<FileView, FileError> {
        Ok(self.row_of(account_id, id).await?.view())
    }

    /// The whole content of a file, for a module that packs it (the print line's batches). Bounded by the
    /// upload limit.
    pub async fn read_all(&self, file: &FileView) -> Result<bytes::Bytes, FileError> {
        Ok(self.objects.get(&blob_path(&file.sha256)).await?.bytes().await?)
    }

    pub(crate) async fn row_of(&self, account_id: &str, id: &FileId) -> Result<FileRow, FileError> {
        let (account, id) = (account_id.to_owned(), id.clone());
        self.db
            .read(move |conn| {
                files::table
                    .find(&id)
                    .filter(files::account_id.eq(&account))
                    .select(FileRow::as_select())
                    .first(conn)
                    .optional()
                    .map_err(DbError::from)
            })
            .await?
            .ok_or(FileError::NotFound)
    }

    /// An account's files, newest first, after the id `before` (cursor pages).
    pub async fn files_of(
        &self,
        account_id: &str,
        before: Option<FileId>,
        limit: usize,
    ) -> Result<Vec<FileView>, FileError> {
        let account = account_id.to_owned();
        let rows: Vec<FileRow> = self
            .db
            .read(move |conn| {
                let mut query = files::table.filter(files::account_id.eq(&account)).into_boxed();
                if let Some(before) = before {
                    query = query.filter(files::id.lt(before));
                }
                query
                    .order(files::id.desc())
                    .limit(i64::try_from(limit).unwrap_or(100))
                    .select(FileRow::as_select())
                    .load(conn)
                    .map_err(DbError::from)
            })
            .await?;
        Ok(rows.iter().map(FileRow::view).collect())
    }

    /// Deletes an account's file.
    pub async fn delete_of(&self, account_id: &str, id: &FileId) -> Result<(), FileError> {
        let row = self.row_of(account_id, id).await?;
        let now = self.clock.now();
        self.db.write(move |conn| remove(conn, &row.id, now)).await?;
        Ok(())
    }
}

impl amtsweg_module::Module for FileStore {
    fn name(&self) -> &'static str {
        "files"
    }

    fn app_data(&self, cfg: &mut actix_web::web::ServiceConfig) {
        cfg.app_data(actix_web::web::Data::new(self.clone()));
    }

    /// Blob deletion and the purge of uploads nobody attached.
    fn jobs(&self) -> Registry {
        let deleter = self.clone();
        let purger = self.clone();
        Registry::new()
            .handler(handler_fn(DELETE_BLOB, 10, move |job| {
                let store = deleter.clone();
                async move {
                    let sha256 = job.payload["sha256"].as_str().unwrap_or_default().to_owned();
                    store
                        .delete_blob(sha256)
                        .await
                        .map_err(|err| JobError::Transient(err.to_string()))
                }
            }))
            .handler(handler_fn(PURGE_UNATTACHED, 3, move |_| {
                let store = purger.clone();
                async move {
                    let now = store.clock.now();
                    let purged = store
                        .db
                        .write(move |conn| {
                            let expired: Vec<FileId> = files::table
                                .filter(files::expires_at.le(now))
                                .select(files::id)
                                .load(conn)?;
                            for id in &expired {
                                remove(conn, id, now)?;
                            }
                            Ok::<_, DbError>(expired.len())
                        })
                        .await
                        .map_err(|err| JobError::Transient(err.to_string()))?;
                    Ok(Some(json!({"purged": purged})))
                }
            }))
            .schedule(Schedule {
                name: "purge-unattached-uploads",
                period: Period::Every(chrono::Duration::hours(1)),
                kind: PURGE_UNATTACHED,
                payload: json!({}),
            })
    }
}

impl FileStore {
    /// Deletes a blob whose last owner is gone. The row is deleted and the object removed while the row is locked,
    /// so an upload of the same content meanwhile waits and then stores it afresh.
    async fn delete_blob(&self, sha256: String) -> Result<Option<serde_json::Value>, FileError> {
        let objects = self.objects.clone();
        let handle = tokio::runtime::Handle::current();
        let deleted = self
            .db
            .write(move |conn| {
                let owners: Option<i32> = match conn {
                    DbConnection::Postgres(pg) => blobs::table
                        .find(&sha256)
                        .select(blobs::owners)
                        .for_update()
                        .first(pg)
                        .optional()?,
                    DbConnection::Sqlite(lite) => blobs::table
                        .find(&sha256)
                        .select(blobs::owners)
                        .first(lite)
                        .optional()?,
                };
                if owners != Some(0) {
                    return Ok::<_, FileError>(false);
                }
                diesel::delete(blobs::table.find(&sha256)).execute(conn)?;
                let path = blob_path(&sha256);
                match handle.block_on(objects.delete(&path)) {
                    Ok(()) | Err(object_store::Error::NotFound { .. }) => Ok(true),
                    Err(err) => Err(FileError::Store(err)),
                }
            })
            .await?;
        Ok(Some(json!({"deleted": deleted})))
    }
}

/// Hands an upload of `account_id` over to `owner_module` in the caller's transaction: it no longer expires and
/// from now on it is that module's. Answers the file, or `None` when the account has no such file waiting to be
/// taken up (a file already taken up is not handed over twice).
pub fn take_up(
    conn: &mut DbConnection,
    id: &FileId,
    account_id: &str,
    owner_module: &'static str,
) -> Result<Option<FileView>, DbError> {
    let waiting = files::table
        .find(id)
        .filter(files::account_id.eq(account_id))
        .filter(files::expires_at.is_not_null());
    let updated = diesel::update(waiting)
        .set((
            files::owner_module.eq(owner_module),
            files::expires_at.eq(None::<Timestamp>),
        ))
        .execute(conn)?;
    if updated == 0 {
        return Ok(None);
    }
    let row: FileRow = files::table.find(id).select(FileRow::as_select()).first(conn)?;
    Ok(Some(row.view()))
}

/// A stored file, read in the caller's transaction (by the module that keeps it).
pub fn view_in(conn: &mut DbConnection, id: &FileId) -> Result<Option<FileView>, DbError> {
    let row: Option<FileRow> = files::table
        .find(id)
        .select(FileRow::as_select())
        .first(conn)
        .optional()?;
    Ok(row.map(|row| row.view()))
}

/// Removes a file in the caller's transaction; when it was its blob's last owner, the blob's deletion is queued.
pub fn remove(conn: &mut DbConnection, id: &FileId, now: Timestamp) -> Result<(), DbError> {
    let sha256: Option<String> = files::table
        .find(id)
        .select(files::sha256)
        .first(conn)
        .optional()?;
    let Some(sha256) = sha256 else {
        return Ok(());
    };
    diesel::delete(files::table.find(id)).execute(conn)?;
    diesel::update(blobs::table.find(&sha256))
        .set(blobs::owners.eq(blobs::owners - 1))
        .execute(conn)?;
    let owners: i32 = blobs::table.find(&sha256).select(blobs::owners).first(conn)?;
    if owners <= 0 {
        amtsweg_jobs::enqueue(conn, &JobSpec::new(DELETE_BLOB, json!({"sha256": sha256})), now)?;
    }
    Ok(())
}

fn s3(url: &str, settings: &S3Settings) -> Result<Arc<dyn ObjectStore>, String> {
    let rest = url
        .strip_prefix("s3://")
        .ok_or_else(|| format!("`storage.files.url`: `{url}` is not an s3://bucket/prefix URL"))?;
    let bucket = rest.split('/').next().unwrap_or_default();
    if bucket.is_empty() {
        return Err(format!("`storage.files.url`: `{url}` names no bucket"));
    }
    let mut builder = object_store::aws::AmazonS3Builder::from_env()
        .with_bucket_name(bucket)
        .with_allow_http(settings.allow_http);
    if let Some(endpoint) = &settings.endpoint {
        builder = builder.with_endpoint(endpoint);
    }
    if let Some(region) = &settings.region {
        builder = builder.with_region(region);
    }
    if let Some(key) = &settings.access_key_id {
        builder = builder.with_access_key_id(key);
    }
    if let Some(secret) = &settings.secret_access_key {
        builder = builder.with_secret_access_key(secrecy::ExposeSecret::expose_secret(secret));
    }
    let store = builder.build().map_err(|err| format!("`storage.files`: {err}"))?;
    let prefix = rest
        .split_once('/')
        .map(|(_, p)| p.trim_matches('/'))
        .unwrap_or_default();
    if prefix.is_empty() {
        return Ok(Arc::new(store));
    }
    Ok(Arc::new(object_store::prefix::PrefixStore::new(store, prefix)))
}

/// An account's files belong to its export; an erasure deletes them (their blobs go with their last owner).
pub struct FilesPersonalData;

impl amtsweg_db::personal_data::PersonalData for FilesPersonalData {
    fn section(&self) -> &'static str {
        "files"
    }

    fn tables(&self) -> &'static [&'static str] {
        &["files"]
    }

    fn export(&self, conn: &mut DbConnection, account_id: &str) -> Result<serde_json::Value, DbError> {
        let rows: Vec<FileRow> = files::table
            .filter(files::account_id.eq(account_id))
            .order(files::created_at.asc())
            .select(FileRow::as_select())
            .load(conn)?;
        Ok(json!({"files": rows.iter().map(FileRow::view).collect::<Vec<_>>()}))
    }

    fn erase(
        &self,
        conn: &mut DbConnection,
        account_id: &str,
        now: Timestamp,
    ) -> Result<Vec<amtsweg_db::personal_data::Retained>, DbError> {
        let ids: Vec<FileId> = files::table
            .filter(files::account_id.eq(account_id))
            .select(files::id)
            .load(conn)?;
        for id in ids {
            remove(conn, &id, now)?;
        }
        Ok(Vec::new())
    }
}
