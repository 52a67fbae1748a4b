//! Streaming uploads: `multipart/form-data` with one field `file`, written to a temporary object part by part
//! while the size, the SHA-256, the media type and (for PDFs) the content are checked; then moved to its
//! content address and recorded. Any failure removes the temporary object; no row is written before the end.

use actix_web::HttpRequest;
use actix_web::http::header::CONTENT_TYPE;
use bytes::Bytes;
use chrono::Duration;
use diesel::prelude::*;
use futures_util::{Stream, StreamExt};
use object_store::path::Path as ObjectPath;
use object_store::{ObjectStoreExt, WriteMultipart};
use sha2::{Digest, Sha256};

use crate::pdf::{PdfProblem, PdfScanner};
use crate::schema::{blobs, files};
use crate::{FileError, FileId, FileRow, FileStore, FileView, blob_path};

/// What an upload route accepts.
#[derive(Debug, Clone, Copy)]
pub struct UploadPolicy {
    /// Media types accepted, as sniffed from the content.
    pub allowed: &'static [&'static str],
    /// The module the file belongs to, e.g. `uploads`.
    pub owner_module: &'static str,
    /// Whether the file is removed unless something takes it up in time (an upload), or kept (a document).
    pub expires: bool,
}

/// Bytes looked at to recognise the media type.
const SNIFF: usize = 8 * 1024;
/// Parts written but not yet stored, at most.
const IN_FLIGHT: usize = 2;

/// Reads the `file` field of a multipart body and stores it for `account_id`.
pub async fn receive_multipart(
    store: &FileStore,
    req: &HttpRequest,
    payload: actix_web::dev::Payload,
    account_id: &str,
    policy: UploadPolicy,
) -> Result<FileView, FileError> {
    receive_form(store, req, payload, account_id, policy)
        .await
        .map(|(file, _)| file)
}

/// Small text fields sent before the file (at most this many bytes each, and this many fields).
const FIELD_LIMIT: usize = 1024;
const FIELDS: usize = 8;

/// Like [`receive_multipart`], also answering the text fields that come before `file` (name, value), e.g. the
/// document type of an attachment.
pub async fn receive_form(
    store: &FileStore,
    req: &HttpRequest,
    payload: actix_web::dev::Payload,
    account_id: &str,
    policy: UploadPolicy,
) -> Result<(FileView, Vec<(String, String)>), FileError> {
    let content_type = req
        .headers()
        .get(CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default();
    if !content_type
        .to_ascii_lowercase()
        .starts_with("multipart/form-data")
    {
        return Err(FileError::Malformed(
            "the body must be multipart/form-data".into(),
        ));
    }
    let declared = req
        .headers()
        .get(actix_web::http::header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    let limit = store.settings.max_upload_bytes;
    // The multipart framing adds a little; a body declared far beyond the limit is refused before reading it.
    if declared.is_some_and(|length| length > limit + 64 * 1024) {
        return Err(FileError::TooLarge { limit });
    }
    let mut multipart = actix_multipart::Multipart::new(req.headers(), payload);
    let mut fields = Vec::new();
    while let Some(field) = multipart.next().await {
        let mut field = field.map_err(multipart_error)?;
        if field.name() != Some("file") {
            let name = field.name().unwrap_or_default().to_owned();
            let mut value = Vec::new();
            while let Some(chunk) = field.next().await {
                value.extend_from_slice(&chunk.map_err(multipart_error)?);
                if value.len() > FIELD_LIMIT {
                    return Err(FileError::Malformed(format!(
                        "the field `{name}` is longer than {FIELD_LIMIT} bytes"
                    )));
                }
            }
            let value = String::from_utf8(value)
                .ok()
                .filter(|v| amtsweg_kernel::text::storable(v))
                .ok_or_else(|| FileError::Malformed(format!("the field `{name}` is not text")))?;
            if fields.len() == FIELDS {
                return Err(FileError::Malformed(format!("more than {FIELDS} fields")));
            }
            fields.push((name, value));
            continue;
        }
        let name = clean_name(
            field
                .content_disposition()
                .and_then(|d| d.get_filename())
                .unwrap_or("upload"),
        );
        let chunks = field.map(|chunk| chunk.map_err(multipart_error));
        let file = store.upload(Box::pin(chunks), &name, account_id, policy).await?;
        return Ok((file, fields));
    }
    Err(FileError::Malformed("there is no field `file`".into()))
}

fn multipart_error(err: actix_multipart::MultipartError) -> FileError {
    use std::error::Error as _;
    // The body's own stream failed: a pause beyond the idle timeout shows as a timed-out payload.
    if let Some(actix_web::error::PayloadError::Io(io)) = err
        .source()
        .and_then(|s| s.downcast_ref::<actix_web::error::PayloadError>())
        && io.kind() == std::io::ErrorKind::TimedOut
    {
        return FileError::Stalled;
    }
    if err.to_string().to_lowercase().contains("timed out") || err.to_string().contains("stopped arriving") {
        return FileError::Stalled;
    }
    FileError::Malformed(err.to_string())
}

/// A file name fit for a database and a header: no directories, no control characters, at most 200 characters.
fn clean_name(raw: &str) -> String {
    let base = raw.rsplit(['/', '\\']).next().unwrap_or_default();
    let cleaned: String = base
        .chars()
        .filter(|c| !c.is_control() && *c != '"')
        .take(200)
        .collect();
    let cleaned = cleaned.trim().trim_start_matches('.').to_owned();
    if cleaned.is_empty() {
        "upload".into()
    } else {
        cleaned
    }
}

impl FileStore {
    /// Stores bytes made by the service itself (a generated document) as a file of `account_id`. Their type is
    /// recognised and checked against the policy like any upload's; the scan of a PDF for active content is left
    /// out, since the service wrote it.
    pub async fn store_bytes(
        &self,
        bytes: Bytes,
        name: &str,
        account_id: &str,
        policy: UploadPolicy,
    ) -> Result<FileView, FileError> {
        let chunks = futures_util::stream::iter([Ok::<_, FileError>(bytes)]);
        self.store(chunks, &clean_name(name), account_id, policy, false)
            .await
    }

    /// Stores a stream of bytes as a file of `account_id` under `policy`.
    pub async fn upload(
        &self,
        chunks: impl Stream<Item = Result<Bytes, FileError>> + Unpin,
        name: &str,
        account_id: &str,
        policy: UploadPolicy,
    ) -> Result<FileView, FileError> {
        self.store(chunks, name, account_id, policy, true).await
    }

    async fn store(
        &self,
        mut chunks: impl Stream<Item = Result<Bytes, FileError>> + Unpin,
        name: &str,
        account_id: &str,
        policy: UploadPolicy,
        scan: bool,
    ) -> Result<FileView, FileError> {
        let temporary = ObjectPath::from(format!("tmp/{}", amtsweg_kernel::id::new_id()));
        let upload = self.objects.put_multipart(&temporary).await?;
        let mut writer = WriteMultipart::new_with_chunk_size(upload, self.part_size);
        let received = self.receive(&mut chunks, &mut writer, policy, scan).await;
        let received = match received {
            Ok(received) => received,
            Err(err) => {
                if let Err(abort) = writer.abort().await {
                    tracing::warn!(error = %abort, "upload: the temporary object could not be removed");
                }
                return Err(err);
            }
        };
        writer.finish().await?;
        match self.commit(&temporary, received, name, account_id, policy).await {
            Ok(view) => Ok(view),
            Err(err) => {
                let _ = self.objects.delete(&temporary).await;
                Err(err)
            }
        }
    }

    async fn receive(
        &self,
        chunks: &mut (impl Stream<Item = Result<Bytes, FileError>> + Unpin),
        writer: &mut WriteMultipart,
        policy: UploadPolicy,
        scan: bool,
    ) -> Result<Received, FileError> {
        let limit = self.settings.max_upload_bytes;
        let mut hasher = Sha256::new();
        let mut size: u64 = 0;
        let mut head: Vec<u8> = Vec::with_capacity(SNIFF);
        let mut media_type: Option<&'static str> = None;
        let mut pdf: Option<PdfScanner> = None;
        while let Some(chunk) = chunks.next().await {
            let chunk = chunk?;
            size += chunk.len() as u64;
            if size > limit {
                return Err(FileError::TooLarge { limit });
            }
            hasher.update(&chunk);
            if media_type.is_none() {
                let wanted = SNIFF - head.len();
                head.extend_from_slice(&chunk[..wanted.min(chunk.len())]);
                if head.len() >= SNIFF {
                    let (kind, scanner) = classify(&head, policy)?;
                    media_type = Some(kind);
                    pdf = scanner.filter(|_| scan);
                    if let Some(scanner) = pdf.as_mut() {
                        scanner.feed(&head).map_err(pdf_error)?;
                        let rest = &chunk[wanted.min(chunk.len())..];
                        scanner.feed(rest).map_err(pdf_error)?;
                    }
                }
            } else if let Some(scanner) = pdf.as_mut() {
                scanner.feed(&chunk).map_err(pdf_error)?;
            }
            writer.wait_for_capacity(IN_FLIGHT).await?;
            writer.put(chunk);
        }
        if size == 0 {
            return Err(FileError::Empty);
        }
        let media_type = match media_type {
            Some(kind) => kind,
            None => {
                let (kind, scanner) = classify(&head, policy)?;
                pdf = scanner.filter(|_| scan);
                if let Some(scanner) = pdf.as_mut() {
                    scanner.feed(&head).map_err(pdf_error)?;
                }
                kind
            }
        };
        if let Some(scanner) = pdf.as_mut() {
            scanner.finish().map_err(pdf_error)?;
        }
        Ok(Received {
            sha256: hex::encode(hasher.finalize()),
            size: i64::try_from(size).unwrap_or(i64::MAX),
            media_type,
        })
    }

    /// Records the file and its blob in one transaction, then puts the content at its address (unless a blob with
    /// the same content is there already).
    async fn commit(
        &self,
        temporary: &ObjectPath,
        received: Received,
        name: &str,
        account_id: &str,
        policy: UploadPolicy,
    ) -> Result<FileView, FileError> {
        let now = self.clock.now();
        let expires = policy
            .expires
            .then(|| now + Duration::hours(self.settings.unattached_hours));
        let id = FileId::new();
        let row = FileRow {
            id: id.clone(),
            sha256: received.sha256.clone(),
            owner_module: policy.owner_module.to_owned(),
            account_id: Some(account_id.to_owned()),
            name: name.to_owned(),
            media_type: received.media_type.to_owned(),
            size: received.size,
            created_at: now,
            expires_at: expires,
        };
        let record = row.clone();
        let quota = self.settings.quota_bytes;
        let first_owner = self
            .db
            .write(move |conn| {
                if let Some(quota) = quota {
                    // Only new content takes space; the sum is read under the write (SQLite) or is at worst one
                    // concurrent upload off (PostgreSQL), which a quota can bear.
                    let known = blobs::table
                        .find(&record.sha256)
                        .select(blobs::sha256)
                        .first::<String>(conn)
                        .optional()?
                        .is_some();
                    let used =
                        diesel::sql_query("SELECT CAST(COALESCE(SUM(size), 0) AS BIGINT) AS n FROM blobs")
                            .get_result::<Used>(conn)?
                            .n;
                    let used = u64::try_from(used).unwrap_or(0);
                    if !known && used + u64::try_from(record.size).unwrap_or(0) > quota {
                        return Err(FileError::StorageFull { quota });
                    }
                }
                let upsert = diesel::insert_into(blobs::table)
                    .values((
                        blobs::sha256.eq(&record.sha256),
                        blobs::size.eq(record.size),
                        blobs::media_type.eq(&record.media_type),
                        blobs::owners.eq(1),
                        blobs::created_at.eq(record.created_at),
                    ))
                    .on_conflict(blobs::sha256)
                    .do_update()
                    .set(blobs::owners.eq(blobs::owners + 1));
                match conn {
                    amtsweg_db::DbConnection::Postgres(pg) => upsert.execute(pg)?,
                    amtsweg_db::DbConnection::Sqlite(lite) => upsert.execute(lite)?,
                };
                let owners: i32 = blobs::table
                    .find(&record.sha256)
                    .select(blobs::owners)
                    .first(conn)?;
                diesel::insert_into(files::table)
                    .values((
                        files::id.eq(&record.id),
                        files::sha256.eq(&record.sha256),
                        files::owner_module.eq(&record.owner_module),
                        files::account_id.eq(&record.account_id),
                        files::name.eq(&record.name),
                        files::media_type.eq(&record.media_type),
                        files::size.eq(record.size),
                        files::created_at.eq(record.created_at),
                        files::expires_at.eq(record.expires_at),
                    ))
                    .execute(conn)?;
                Ok::<_, FileError>(owners == 1)
            })
            .await?;
        let target = blob_path(&received.sha256);
        let placed = if first_owner {
            self.objects.rename(temporary, &target).await
        } else {
            self.objects.delete(temporary).await
        };
        if let Err(err) = placed {
            // The row must not point at nothing: take it back.
            let now = self.clock.now();
            let _ = self.db.write(move |conn| crate::remove(conn, &id, now)).await;
            return Err(FileError::Store(err));
        }
        Ok(row.view())
    }
}

#[derive(QueryableByName)]
struct Used {
    #[diesel(sql_type = diesel::sql_types::BigInt)]
    n: i64,
}

struct Received {
    sha256: String,
    size: i64,
    media_type: &'static str,
}

/// The media type the content shows, if the policy accepts it; with a scanner for PDFs.
fn classify(head: &[u8], policy: UploadPolicy) -> Result<(&'static str, Option<PdfScanner>), FileError> {
    let detected = if head.starts_with(b"%PDF-") {
        "application/pdf"
    } else {
        infer::get(head).map_or("application/octet-stream", |kind| kind.mime_type())
    };
    let Some(accepted) = policy.allowed.iter().find(|allowed| **allowed == detected) else {
        return Err(FileError::NotAllowed {
            detected: detected.to_owned(),
        });
    };
    let scanner = (*accepted == "application/pdf").then(PdfScanner::new);
    Ok((accepted, scanner))
}

fn pdf_error(problem: PdfProblem) -> FileError {
    match problem {
        PdfProblem::Encrypted => FileError::PdfEncrypted,
        PdfProblem::ActiveContent => FileError::PdfActiveContent,
    }
}

#[cfg(test)]
mod tests {
    use super::clean_name;

    #[test]
    fn names_lose_paths_and_control_characters() {
        assert_eq!(clean_name("C:\\Users\\erika\\Ausweis.pdf"), "Ausweis.pdf");
        assert_eq!(clean_name("../../etc/passwd"), "passwd");
        assert_eq!(clean_name("a\u{0}b\"c\n.pdf"), "abc.pdf");
        assert_eq!(clean_name("..."), "upload");
        assert_eq!(clean_name("Bescheid – März.pdf"), "Bescheid – März.pdf");
    }
}
