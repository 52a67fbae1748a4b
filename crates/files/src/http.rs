//! A citizen's uploads: documents are uploaded first and referenced later (by an application, say), as with
//! FIT-Connect's attachments. Only the owner sees, downloads or deletes a file; uploads nothing takes up are
//! removed after `storage.files.unattached_hours`.

use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse, delete, get, post, web};
use amtsweg_auth::{CitizenAuth, StaffAuth};
use amtsweg_kernel::ApiError;
use amtsweg_kernel::http::{Path, Query, json_response, ok};
use amtsweg_kernel::pagination::{Page, PageQuery, encode_cursor};
use amtsweg_kernel::problem::ProblemDoc;
use utoipa::ToSchema;

use crate::{FileId, FileStore, FileView, UploadPolicy, download, receive_multipart};

/// What citizens may upload: documents and scans.
pub const DOCUMENTS: UploadPolicy = UploadPolicy {
    allowed: &["application/pdf", "image/jpeg", "image/png"],
    owner_module: "uploads",
    expires: true,
};

pub fn configure(cfg: &mut utoipa_actix_web::service_config::ServiceConfig) {
    cfg.service(upload)
        .service(staff_upload)
        .service(list)
        .service(fetch)
        .service(remove);
}

/// The upload form.
#[derive(ToSchema)]
#[allow(dead_code, reason = "describes the multipart form for the OpenAPI document")]
pub struct UploadForm {
    /// PDF, JPEG or PNG; the type is recognised from the content.
    #[schema(value_type = String, format = Binary)]
    file: Vec<u8>,
}

/// A file's content.
#[derive(ToSchema)]
#[schema(value_type = String, format = Binary)]
pub struct FileContent(#[allow(dead_code, reason = "describes the body for the OpenAPI document")] Vec<u8>);

/// Uploads a document (`multipart/form-data`, field `file`). It is streamed, never held whole in memory; its type
/// is recognised from the content (PDF, JPEG, PNG); encrypted PDFs and PDFs with JavaScript or launch actions are
/// refused. Answers the stored file with its SHA-256.
#[utoipa::path(
    tag = "files",
    security(("citizen" = [])),
    request_body(content = UploadForm, content_type = "multipart/form-data"),
    responses(
        (status = 201, description = "Stored", body = FileView),
        (status = 400, description = "`malformed_upload`", body = ProblemDoc, content_type = "application/problem+json"),
        (status = 408, description = "The body stopped arriving", body = ProblemDoc, content_type = "application/problem+json"),
        (status = 413, description = "Larger than `storage.files.max_upload_bytes`", body = ProblemDoc, content_type = "application/problem+json"),
        (status = 507, description = "`storage_full`: the stored files reached `storage.files.quota_bytes`", body = ProblemDoc, content_type = "application/problem+json"),
        (status = 415, description = "`media_type_not_allowed`", body = ProblemDoc, content_type = "application/problem+json"),
        (status = 422, description = "`file_empty`, `pdf_encrypted`, `pdf_active_content`", body = ProblemDoc, content_type = "application/problem+json"),
    )
)]
#[post("/files")]
async fn upload(
    store: web::Data<FileStore>,
    auth: CitizenAuth,
    req: HttpRequest,
    payload: web::Payload,
) -> Result<HttpResponse, ApiError> {
    let stored = receive_multipart(&store, &req, payload.into_inner(), &auth.account_id, DOCUMENTS).await?;
    json_response(StatusCode::CREATED, &stored)
}

/// A member of staff uploads a document to attach to a message (`multipart/form-data`, field `file`), with the
/// same checks as a citizen's upload. Unattached uploads are removed after a while.
#[utoipa::path(
    tag = "files",
    security(("staff" = [])),
    request_body(content = UploadForm, content_type = "multipart/form-data"),
    responses(
        (status = 201, description = "Stored", body = FileView),
        (status = 400, description = "`malformed_upload`", body = ProblemDoc, content_type = "application/problem+json"),
        (status = 408, description = "The body stopped arriving", body = ProblemDoc, content_type = "application/problem+json"),
        (status = 413, description = "Larger than `storage.files.max_upload_bytes`", body = ProblemDoc, content_type = "application/problem+json"),
        (status = 507, description = "`storage_full`: the stored files reached `storage.files.quota_bytes`", body = ProblemDoc, content_type = "application/problem+json"),
        (status = 415, description = "`media_type_not_allowed`", body = ProblemDoc, content_type = "application/problem+json"),
        (status = 422, description = "`file_empty`, `pdf_encrypted`, `pdf_active_content`", body = ProblemDoc, content_type = "application/problem+json"),
    )
)]
#[post("/staff/files")]
async fn staff_upload(
    store: web::Data<FileStore>,
    auth: StaffAuth,
    req: HttpRequest,
    payload: web::Payload,
) -> Result<HttpResponse, ApiError> {
    let stored = receive_multipart(&store, &req, payload.into_inner(), &auth.account_id, DOCUMENTS).await?;
    json_response(StatusCode::CREATED, &stored)
}

/// The caller's files, newest first.
#[utoipa::path(
    tag = "files",
    security(("citizen" = [])),
    params(PageQuery),
    responses((status = 200, description = "One page of files", body = Page<FileView>))
)]
#[get("/files")]
async fn list(
    store: web::Data<FileStore>,
    auth: CitizenAuth,
    query: Query<PageQuery>,
) -> Result<HttpResponse, ApiError> {
    let page = query.0.parse()?;
    let mut items = store
        .files_of(
            &auth.account_id,
            page.after.map(FileId::from_string),
            page.limit + 1,
        )
        .await?;
    let next_cursor = if items.len() > page.limit {
        items.truncate(page.limit);
        items.last().map(|f| encode_cursor(f.id.as_str()))
    } else {
        None
    };
    ok(&Page { items, next_cursor })
}

/// Downloads one of the caller's files; supports `Range: bytes=…`.
#[utoipa::path(
    tag = "files",
    security(("citizen" = [])),
    params(("id" = String, Path, description = "File id")),
    responses(
        (status = 200, description = "The content", body = FileContent, content_type = "application/octet-stream"),
        (status = 206, description = "The requested range", body = FileContent, content_type = "application/octet-stream"),
        (status = 404, description = "No file of the caller with this id", body = ProblemDoc, content_type = "application/problem+json"),
        (status = 416, description = "The range lies outside the file", body = ProblemDoc, content_type = "application/problem+json"),
    )
)]
#[get("/files/{id}")]
async fn fetch(
    store: web::Data<FileStore>,
    auth: CitizenAuth,
    id: Path<String>,
    req: HttpRequest,
) -> Result<HttpResponse, ApiError> {
    let file = store
        .file_of(&auth.account_id, &FileId::from_string(id.into_inner()))
        .await?;
    Ok(download(&store, &req, &file).await?)
}

/// Deletes one of the caller's files.
#[utoipa::path(
    tag = "files",
    security(("citizen" = [])),
    params(("id" = String, Path, description = "File id")),
    responses(
        (status = 204, description = "Deleted"),
        (status = 404, description = "No file of the caller with this id", body = ProblemDoc, content_type = "application/problem+json"),
    )
)]
#[delete("/files/{id}")]
async fn remove(
    store: web::Data<FileStore>,
    auth: CitizenAuth,
    id: Path<String>,
) -> Result<HttpResponse, ApiError> {
    store
        .delete_of(&auth.account_id, &FileId::from_string(id.into_inner()))
        .await?;
    Ok(HttpResponse::NoContent().finish())
}
