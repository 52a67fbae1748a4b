//! The Postfach routes of citizens and staff, delivery evidence and print batches.

use actix_web::http::StatusCode;
use actix_web::http::header::{CACHE_CONTROL, CONTENT_DISPOSITION};
use actix_web::{HttpRequest, HttpResponse, get, post, web};
use amtsweg_auth::{CitizenAuth, StaffAuth, StaffOrClient};
use amtsweg_files::FileStore;
use amtsweg_kernel::http::{Json, Path, Query, json_response, ok};
use amtsweg_kernel::pagination::{Page, PageQuery};
use amtsweg_kernel::problem::ProblemDoc;
use amtsweg_kernel::{ApiError, Lang};
use serde::Deserialize;
use utoipa::IntoParams;

use crate::Mailroom;
use crate::evidence::Evidence;
use crate::inbound::{Assignment, INBOUND, InboundFilter, InboundItem, InboundMeta, Uploader};
use crate::postfach::{MessageFilter, MessageSummary, MessageView, NewMessage, Reply, StaffMessage};
use crate::print::{Batch, Posted, Served};

pub fn configure(cfg: &mut utoipa_actix_web::service_config::ServiceConfig) {
    cfg.service(list)
        .service(send)
        .service(open)
        .service(reply)
        .service(archive)
        .service(attachment)
        .service(seal)
        .service(staff_list)
        .service(staff_send)
        .service(staff_open)
        .service(staff_reply)
        .service(staff_attachment)
        .service(case_deliveries)
        .service(evidence)
        .service(evidence_pdf)
        .service(formal_service)
        .service(served)
        .service(create_batch)
        .service(batch)
        .service(batch_archive)
        .service(batch_posted)
        .service(inbound_upload)
        .service(inbound_list)
        .service(inbound_get)
        .service(inbound_document)
        .service(inbound_assign);
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
struct ListQuery {
    /// Only messages not yet opened by their recipient side.
    #[serde(default)]
    unread: bool,
    /// Only messages about this application.
    application_id: Option<String>,
    /// Include archived messages (citizens).
    #[serde(default)]
    archived: bool,
    /// Only this unit's messages (staff).
    unit_id: Option<String>,
    limit: Option<u32>,
    cursor: Option<String>,
}

impl ListQuery {
    fn split(self) -> (MessageFilter, PageQuery) {
        (
            MessageFilter {
                unread: self.unread,
                application_id: self.application_id,
                archived: self.archived,
                unit_id: self.unit_id,
            },
            PageQuery {
                limit: self.limit,
                cursor: self.cursor,
            },
        )
    }
}

async fn send_file(
    store: &FileStore,
    req: &HttpRequest,
    file: &amtsweg_files::FileView,
) -> Result<HttpResponse, ApiError> {
    let mut response = amtsweg_files::download(store, req, file).await?;
    response.headers_mut().insert(
        CACHE_CONTROL,
        actix_web::http::header::HeaderValue::from_static("no-store"),
    );
    Ok(response)
}

/// The messages of the caller's Postfach and of their organisations', newest first: subjects only (listing is
/// not a retrieval).
#[utoipa::path(
    tag = "mailbox",
    security(("citizen" = [])),
    params(ListQuery),
    responses(
        (status = 200, description = "One page", body = Page<MessageSummary>),
        (status = 400, description = "`invalid_query` or `invalid_cursor`", body = ProblemDoc, content_type = "application/problem+json"),
    )
)]
#[get("/mailbox/messages")]
async fn list(
    service: web::Data<Mailroom>,
    auth: CitizenAuth,
    query: Query<ListQuery>,
) -> Result<HttpResponse, ApiError> {
    let (filter, page) = query.into_inner().split();
    ok(&service
        .citizen_messages(&auth.account_id, filter, page.parse()?)
        .await?)
}

/// Writes to the unit handling one of the caller's applications (`application_id`), or to a unit of the
/// catalogue (`unit_id`, optionally for an organisation). Attachments are files uploaded before.
#[utoipa::path(
    tag = "mailbox",
    security(("citizen" = [])),
    request_body = NewMessage,
    responses(
        (status = 201, description = "Sent", body = MessageView),
        (status = 422, description = "Invalid: every problem with its pointer", body = ProblemDoc, content_type = "application/problem+json"),
    )
)]
#[post("/mailbox/messages")]
async fn send(
    service: web::Data<Mailroom>,
    auth: CitizenAuth,
    body: Json<NewMessage>,
    lang: Lang,
) -> Result<HttpResponse, ApiError> {
    let view = service.citizen_send(&auth, body.into_inner(), lang).await?;
    json_response(StatusCode::CREATED, &view)
}

/// Opens a message (marking it read). Needs a session at the message's trust level, else 401
/// `insufficient_user_authentication` with `acr_values` (RFC 9470): step up and retry. Opening the message is not
/// yet the retrieval of a decision; opening its document is.
#[utoipa::path(
    tag = "mailbox",
    security(("citizen" = [])),
    params(("id" = String, Path, description = "Message id")),
    responses(
        (status = 200, description = "The message", body = MessageView),
        (status = 401, description = "`insufficient_user_authentication`", body = ProblemDoc, content_type = "application/problem+json"),
        (status = 404, description = "`message_not_found`", body = ProblemDoc, content_type = "application/problem+json"),
    )
)]
#[get("/mailbox/messages/{id}")]
async fn open(
    service: web::Data<Mailroom>,
    auth: CitizenAuth,
    id: Path<String>,
    lang: Lang,
) -> Result<HttpResponse, ApiError> {
    ok(&service.citizen_message(&auth, &id, lang).await?)
}

/// Answers in the message's thread, to its unit.
#[utoipa::path(
    tag = "mailbox",
    security(("citizen" = [])),
    params(("id" = String, Path, description = "Message id")),
    request_body = Reply,
    responses(
        (status = 201, description = "Sent", body = MessageView),
        (status = 401, description = "`insufficient_user_authentication`", body = ProblemDoc, content_type = "application/problem+json"),
        (status = 404, description = "`message_not_found`", body = ProblemDoc, content_type = "application/problem+json"),
        (status = 422, description = "Invalid", body = ProblemDoc, content_type = "application/problem+json"),
    )
)]
#[post("/mailbox/messages/{id}/reply")]
async fn reply(
    service: web::Data<Mailroom>,
    auth: CitizenAuth,
    id: Path<String>,
    body: Json<Reply>,
    lang: Lang,
) -> Result<HttpResponse, ApiError> {
    let view = service.citizen_reply(&auth, &id, body.into_inner(), lang).await?;
    json_response(StatusCode::CREATED, &view)
}

/// Archives a message: it leaves the default list (`archived=true` shows it).
#[utoipa::path(
    tag = "mailbox",
    security(("citizen" = [])),
    params(("id" = String, Path, description = "Message id")),
    responses(
        (status = 200, description = "Archived", body = MessageSummary),
        (status = 404, description = "`message_not_found`", body = ProblemDoc, content_type = "application/problem+json"),
    )
)]
#[post("/mailbox/messages/{id}/archive")]
async fn archive(
    service: web::Data<Mailroom>,
    auth: CitizenAuth,
    id: Path<String>,
) -> Result<HttpResponse, ApiError> {
    ok(&service.citizen_archive(&auth.account_id, &id).await?)
}

/// Opens or downloads an attachment (supports `Range`), at the message's trust level. For a delivered decision
/// this is the retrieval the law counts; a decision whose provision ended answers 410 `provision_ended` (it goes
/// out on paper).
#[utoipa::path(
    tag = "mailbox",
    security(("citizen" = [])),
    params(
        ("id" = String, Path, description = "Message id"),
        ("attachment_id" = String, Path, description = "Attachment id"),
    ),
    responses(
        (status = 200, description = "The content", content_type = "application/octet-stream"),
        (status = 206, description = "The requested range", content_type = "application/octet-stream"),
        (status = 401, description = "`insufficient_user_authentication`", body = ProblemDoc, content_type = "application/problem+json"),
        (status = 404, description = "`message_not_found` or `attachment_not_found`", body = ProblemDoc, content_type = "application/problem+json"),
        (status = 410, description = "`provision_ended`", body = ProblemDoc, content_type = "application/problem+json"),
    )
)]
#[get("/mailbox/messages/{id}/attachments/{attachment_id}")]
async fn attachment(
    service: web::Data<Mailroom>,
    store: web::Data<FileStore>,
    auth: CitizenAuth,
    ids: Path<(String, String)>,
    req: HttpRequest,
) -> Result<HttpResponse, ApiError> {
    let (id, attachment_id) = ids.into_inner();
    let file = service.citizen_attachment(&auth, &id, &attachment_id).await?;
    send_file(&store, &req, &file).await
}

/// The seal of an attachment: a JWS (EdDSA) over the document's SHA-256, checkable with
/// `POST /api/v1/seals/verify` or against `/.well-known/seal-keys.json`.
#[utoipa::path(
    tag = "mailbox",
    security(("citizen" = [])),
    params(
        ("id" = String, Path, description = "Message id"),
        ("attachment_id" = String, Path, description = "Attachment id"),
    ),
    responses(
        (status = 200, description = "The seal (compact JWS)", body = String, content_type = "application/jose"),
        (status = 404, description = "`message_not_found`, `attachment_not_found` or `seal_not_found`", body = ProblemDoc, content_type = "application/problem+json"),
    )
)]
#[get("/mailbox/messages/{id}/attachments/{attachment_id}/seal")]
async fn seal(
    service: web::Data<Mailroom>,
    auth: CitizenAuth,
    ids: Path<(String, String)>,
) -> Result<HttpResponse, ApiError> {
    let (id, attachment_id) = ids.into_inner();
    let seal = service
        .citizen_seal(&auth.account_id, &id, &attachment_id)
        .await?;
    Ok(HttpResponse::Ok()
        .content_type("application/jose")
        .insert_header((CACHE_CONTROL, "no-store"))
        .body(seal))
}

/// The messages of the caller's units (as `case_worker` or `supervisor`), newest first.
#[utoipa::path(
    tag = "mailbox",
    security(("staff" = [])),
    params(ListQuery),
    responses(
        (status = 200, description = "One page", body = Page<MessageSummary>),
        (status = 403, description = "No unit role", body = ProblemDoc, content_type = "application/problem+json"),
    )
)]
#[get("/staff/mailbox/messages")]
async fn staff_list(
    service: web::Data<Mailroom>,
    auth: StaffAuth,
    query: Query<ListQuery>,
) -> Result<HttpResponse, ApiError> {
    let (filter, page) = query.into_inner().split();
    ok(&service.staff_messages(&auth, filter, page.parse()?).await?)
}

/// Writes to the applicant of a case of the caller's unit, with documents uploaded at `POST /api/v1/staff/files`;
/// the applicant is told by mail (without the content).
#[utoipa::path(
    tag = "mailbox",
    security(("staff" = [])),
    request_body = StaffMessage,
    responses(
        (status = 201, description = "Sent", body = MessageView),
        (status = 422, description = "Invalid, or no case of the caller's units", body = ProblemDoc, content_type = "application/problem+json"),
    )
)]
#[post("/staff/mailbox/messages")]
async fn staff_send(
    service: web::Data<Mailroom>,
    auth: StaffAuth,
    body: Json<StaffMessage>,
    lang: Lang,
) -> Result<HttpResponse, ApiError> {
    let view = service.staff_send(&auth, body.into_inner(), lang).await?;
    json_response(StatusCode::CREATED, &view)
}

/// A message of the caller's units; a message to the unit is marked read.
#[utoipa::path(
    tag = "mailbox",
    security(("staff" = [])),
    params(("id" = String, Path, description = "Message id")),
    responses(
        (status = 200, description = "The message", body = MessageView),
        (status = 404, description = "`message_not_found` (also for another unit's message)", body = ProblemDoc, content_type = "application/problem+json"),
    )
)]
#[get("/staff/mailbox/messages/{id}")]
async fn staff_open(
    service: web::Data<Mailroom>,
    auth: StaffAuth,
    id: Path<String>,
    lang: Lang,
) -> Result<HttpResponse, ApiError> {
    ok(&service.staff_message(&auth, &id, lang).await?)
}

/// Answers a message of the caller's units in its thread; the citizen is told by mail.
#[utoipa::path(
    tag = "mailbox",
    security(("staff" = [])),
    params(("id" = String, Path, description = "Message id")),
    request_body = Reply,
    responses(
        (status = 201, description = "Sent", body = MessageView),
        (status = 404, description = "`message_not_found`", body = ProblemDoc, content_type = "application/problem+json"),
        (status = 422, description = "Invalid", body = ProblemDoc, content_type = "application/problem+json"),
    )
)]
#[post("/staff/mailbox/messages/{id}/reply")]
async fn staff_reply(
    service: web::Data<Mailroom>,
    auth: StaffAuth,
    id: Path<String>,
    body: Json<Reply>,
    lang: Lang,
) -> Result<HttpResponse, ApiError> {
    let view = service.staff_reply(&auth, &id, body.into_inner(), lang).await?;
    json_response(StatusCode::CREATED, &view)
}

/// An attachment of a message of the caller's units (supports `Range`).
#[utoipa::path(
    tag = "mailbox",
    security(("staff" = [])),
    params(
        ("id" = String, Path, description = "Message id"),
        ("attachment_id" = String, Path, description = "Attachment id"),
    ),
    responses(
        (status = 200, description = "The content", content_type = "application/octet-stream"),
        (status = 206, description = "The requested range", content_type = "application/octet-stream"),
        (status = 404, description = "Not found", body = ProblemDoc, content_type = "application/problem+json"),
    )
)]
#[get("/staff/mailbox/messages/{id}/attachments/{attachment_id}")]
async fn staff_attachment(
    service: web::Data<Mailroom>,
    store: web::Data<FileStore>,
    auth: StaffAuth,
    ids: Path<(String, String)>,
    req: HttpRequest,
) -> Result<HttpResponse, ApiError> {
    let (id, attachment_id) = ids.into_inner();
    let file = service.staff_attachment(&auth, &id, &attachment_id).await?;
    send_file(&store, &req, &file).await
}

/// The deliveries of a case of the caller's units, with their evidence.
#[utoipa::path(
    tag = "mailbox",
    security(("staff" = [])),
    params(("id" = String, Path, description = "Application id")),
    responses(
        (status = 200, description = "Newest first", body = Vec<Evidence>),
        (status = 403, description = "No unit role", body = ProblemDoc, content_type = "application/problem+json"),
    )
)]
#[get("/staff/applications/{id}/deliveries")]
async fn case_deliveries(
    service: web::Data<Mailroom>,
    auth: StaffAuth,
    id: Path<String>,
) -> Result<HttpResponse, ApiError> {
    ok(&service.case_deliveries(&auth, &id).await?)
}

/// The evidence of one delivery: provided, notification sent (channel, address, status), first retrieval,
/// deemed notification, provision ended, posted.
#[utoipa::path(
    tag = "mailbox",
    security(("staff" = [])),
    params(("id" = String, Path, description = "Delivery id")),
    responses(
        (status = 200, description = "The evidence", body = Evidence),
        (status = 404, description = "`delivery_not_found`", body = ProblemDoc, content_type = "application/problem+json"),
    )
)]
#[get("/staff/deliveries/{id}")]
async fn evidence(
    service: web::Data<Mailroom>,
    auth: StaffAuth,
    id: Path<String>,
) -> Result<HttpResponse, ApiError> {
    ok(&service.evidence(&auth, &id).await?)
}

/// The evidence of one delivery as a PDF to print.
#[utoipa::path(
    tag = "mailbox",
    security(("staff" = [])),
    params(("id" = String, Path, description = "Delivery id")),
    responses(
        (status = 200, description = "PDF/A", content_type = "application/pdf"),
        (status = 404, description = "`delivery_not_found`", body = ProblemDoc, content_type = "application/problem+json"),
    )
)]
#[get("/staff/deliveries/{id}/evidence.pdf")]
async fn evidence_pdf(
    service: web::Data<Mailroom>,
    auth: StaffAuth,
    id: Path<String>,
    lang: Lang,
) -> Result<HttpResponse, ApiError> {
    let pdf = service.evidence_pdf(&auth, &id, lang).await?;
    Ok(HttpResponse::Ok()
        .content_type("application/pdf")
        .insert_header((CACHE_CONTROL, "no-store"))
        .insert_header((
            CONTENT_DISPOSITION,
            format!("attachment; filename=\"Zustellnachweis-{}.pdf\"", id.as_str()),
        ))
        .body(pdf))
}

/// Puts every letter waiting for the print line into a new batch (role `print_office`).
#[utoipa::path(
    tag = "mailbox",
    security(("staff" = [])),
    responses(
        (status = 201, description = "The batch", body = Batch),
        (status = 403, description = "Not the print office", body = ProblemDoc, content_type = "application/problem+json"),
        (status = 409, description = "`nothing_to_print`", body = ProblemDoc, content_type = "application/problem+json"),
    )
)]
#[post("/staff/print-batches")]
async fn create_batch(service: web::Data<Mailroom>, auth: StaffAuth) -> Result<HttpResponse, ApiError> {
    json_response(StatusCode::CREATED, &service.create_batch(&auth).await?)
}

/// A batch: as JSON by default, as the ZIP for the print line (one PDF per letter and the manifest in JSON
/// and CSV) with `Accept: application/zip`.
#[utoipa::path(
    tag = "mailbox",
    security(("staff" = [])),
    params(("id" = String, Path, description = "Batch id")),
    responses(
        (status = 200, description = "The batch", body = Batch),
        (status = 403, description = "Not the print office", body = ProblemDoc, content_type = "application/problem+json"),
        (status = 404, description = "`print_batch_not_found`", body = ProblemDoc, content_type = "application/problem+json"),
    )
)]
#[get("/staff/print-batches/{id}")]
async fn batch(
    service: web::Data<Mailroom>,
    auth: StaffAuth,
    id: Path<String>,
    req: HttpRequest,
) -> Result<HttpResponse, ApiError> {
    let wants_zip = req
        .headers()
        .get(actix_web::http::header::ACCEPT)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.contains("application/zip"));
    if wants_zip {
        return archive_response(&service, &auth, &id).await;
    }
    ok(&service.batch(&auth, &id).await?)
}

async fn archive_response(service: &Mailroom, auth: &StaffAuth, id: &str) -> Result<HttpResponse, ApiError> {
    let zip = service.batch_archive(auth, id).await?;
    Ok(HttpResponse::Ok()
        .content_type("application/zip")
        .insert_header((CACHE_CONTROL, "no-store"))
        .insert_header((
            CONTENT_DISPOSITION,
            format!("attachment; filename=\"Druckauftrag-{id}.zip\""),
        ))
        .body(zip))
}

/// The batch for the print line: a ZIP with one PDF per letter and the manifest in JSON and CSV.
#[utoipa::path(
    tag = "mailbox",
    security(("staff" = [])),
    params(("id" = String, Path, description = "Batch id")),
    responses(
        (status = 200, description = "ZIP", content_type = "application/zip"),
        (status = 403, description = "Not the print office", body = ProblemDoc, content_type = "application/problem+json"),
        (status = 404, description = "`print_batch_not_found`", body = ProblemDoc, content_type = "application/problem+json"),
    )
)]
#[get("/staff/print-batches/{id}/archive")]
async fn batch_archive(
    service: web::Data<Mailroom>,
    auth: StaffAuth,
    id: Path<String>,
) -> Result<HttpResponse, ApiError> {
    archive_response(&service, &auth, &id).await
}

/// Records the day the batch's letters were handed to the post (once); each counts as notified on the fourth
/// day after (§ 41 (2) VwVfG).
#[utoipa::path(
    tag = "mailbox",
    security(("staff" = [])),
    params(("id" = String, Path, description = "Batch id")),
    request_body = Posted,
    responses(
        (status = 200, description = "The batch", body = Batch),
        (status = 404, description = "`print_batch_not_found`", body = ProblemDoc, content_type = "application/problem+json"),
        (status = 409, description = "`already_posted`", body = ProblemDoc, content_type = "application/problem+json"),
        (status = 422, description = "`out_of_range`", body = ProblemDoc, content_type = "application/problem+json"),
    )
)]
#[post("/staff/print-batches/{id}/posted")]
async fn batch_posted(
    service: web::Data<Mailroom>,
    auth: StaffAuth,
    id: Path<String>,
    body: Json<Posted>,
) -> Result<HttpResponse, ApiError> {
    ok(&service.batch_posted(&auth, &id, body.0.posted_on).await?)
}

/// Records inbound mail: `multipart/form-data` with the text fields `sender`, `received_on` (`YYYY-MM-DD`) and
/// optionally `reference`, `page_count`, `procedure_id`, `unit_id`, then the PDF as `file`. The central scan
/// office (role `scan_office`) or another authority's system (scope `mailroom:inbound`). The item is routed by
/// a case number in the reference or the text layer, then by procedure or unit; otherwise it goes to triage.
#[utoipa::path(
    tag = "mailroom",
    security(("staff" = []), ("client" = [])),
    request_body(content = String, content_type = "multipart/form-data", description = "`sender`, `received_on`, optional `reference`, `page_count`, `procedure_id`, `unit_id`; then `file` (PDF)"),
    responses(
        (status = 201, description = "Recorded and routed (or in triage)", body = InboundItem),
        (status = 400, description = "`invalid_body`", body = ProblemDoc, content_type = "application/problem+json"),
        (status = 403, description = "Not the scan office, or the client lacks the scope", body = ProblemDoc, content_type = "application/problem+json"),
        (status = 413, description = "`file_too_large`", body = ProblemDoc, content_type = "application/problem+json"),
        (status = 507, description = "`storage_full`: the stored files reached `storage.files.quota_bytes`", body = ProblemDoc, content_type = "application/problem+json"),
        (status = 415, description = "`media_type_not_allowed`: not a PDF", body = ProblemDoc, content_type = "application/problem+json"),
        (status = 422, description = "Invalid fields", body = ProblemDoc, content_type = "application/problem+json"),
    )
)]
#[post("/mailroom/inbound")]
async fn inbound_upload(
    service: web::Data<Mailroom>,
    store: web::Data<FileStore>,
    auth: StaffOrClient,
    req: HttpRequest,
    payload: web::Payload,
) -> Result<HttpResponse, ApiError> {
    let uploader = Uploader::of(&auth)?;
    let (file, fields) =
        amtsweg_files::receive_form(&store, &req, payload.into_inner(), &uploader.id, INBOUND).await?;
    let meta = InboundMeta::from_fields(fields);
    let recorded = match service.check_meta(&meta) {
        Ok(()) => service.receive(uploader, file.clone(), meta).await,
        Err(err) => Err(err),
    };
    match recorded {
        Ok(item) => json_response(StatusCode::CREATED, &item),
        Err(err) => {
            // Nothing half-recorded: the upload goes with the refusal.
            let _ = store.delete_of(&file_holder(&auth), &file.id).await;
            Err(err.into())
        }
    }
}

fn file_holder(auth: &StaffOrClient) -> String {
    match auth {
        StaffOrClient::Staff(staff) => staff.account_id.clone(),
        StaffOrClient::Client(client) => client.client_id.clone(),
    }
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
struct InboundQuery {
    /// `triage` or `routed`.
    state: Option<String>,
    unit_id: Option<String>,
    limit: Option<u32>,
    cursor: Option<String>,
}

/// Inbound items, newest first: the scan office sees all (`state=triage` for the triage inbox), a unit's
/// `case_worker` or `supervisor` the items routed to the unit.
#[utoipa::path(
    tag = "mailroom",
    security(("staff" = [])),
    params(InboundQuery),
    responses(
        (status = 200, description = "One page", body = Page<InboundItem>),
        (status = 403, description = "Neither scan office nor unit staff", body = ProblemDoc, content_type = "application/problem+json"),
    )
)]
#[get("/mailroom/inbound")]
async fn inbound_list(
    service: web::Data<Mailroom>,
    auth: StaffAuth,
    query: Query<InboundQuery>,
) -> Result<HttpResponse, ApiError> {
    let query = query.into_inner();
    let page = PageQuery {
        limit: query.limit,
        cursor: query.cursor,
    }
    .parse()?;
    let filter = InboundFilter {
        state: query.state,
        unit_id: query.unit_id,
    };
    ok(&service.inbound_items(&auth, filter, page).await?)
}

/// One inbound item.
#[utoipa::path(
    tag = "mailroom",
    security(("staff" = [])),
    params(("id" = String, Path, description = "Inbound item id")),
    responses(
        (status = 200, description = "The item", body = InboundItem),
        (status = 404, description = "`inbound_item_not_found` (also another unit's)", body = ProblemDoc, content_type = "application/problem+json"),
    )
)]
#[get("/mailroom/inbound/{id}")]
async fn inbound_get(
    service: web::Data<Mailroom>,
    auth: StaffAuth,
    id: Path<String>,
) -> Result<HttpResponse, ApiError> {
    ok(&service.inbound_item(&auth, &id).await?)
}

/// The scanned document (supports `Range`).
#[utoipa::path(
    tag = "mailroom",
    security(("staff" = [])),
    params(("id" = String, Path, description = "Inbound item id")),
    responses(
        (status = 200, description = "The PDF", content_type = "application/pdf"),
        (status = 206, description = "The requested range", content_type = "application/pdf"),
        (status = 404, description = "`inbound_item_not_found`", body = ProblemDoc, content_type = "application/problem+json"),
    )
)]
#[get("/mailroom/inbound/{id}/document")]
async fn inbound_document(
    service: web::Data<Mailroom>,
    store: web::Data<FileStore>,
    auth: StaffAuth,
    id: Path<String>,
    req: HttpRequest,
) -> Result<HttpResponse, ApiError> {
    let file = service.inbound_document(&auth, &id).await?;
    send_file(&store, &req, &file).await
}

/// Routes an item to a case (`application_id`) or a unit (`unit_id`): the scan office any item (the triage
/// inbox), a unit's staff the items that went to their unit. Audited; the case's timeline shows the letter.
#[utoipa::path(
    tag = "mailroom",
    security(("staff" = [])),
    params(("id" = String, Path, description = "Inbound item id")),
    request_body = Assignment,
    responses(
        (status = 200, description = "Routed", body = InboundItem),
        (status = 404, description = "`inbound_item_not_found`", body = ProblemDoc, content_type = "application/problem+json"),
        (status = 422, description = "No such application or unit", body = ProblemDoc, content_type = "application/problem+json"),
    )
)]
#[post("/mailroom/inbound/{id}/assign")]
async fn inbound_assign(
    service: web::Data<Mailroom>,
    auth: StaffAuth,
    id: Path<String>,
    body: Json<Assignment>,
) -> Result<HttpResponse, ApiError> {
    ok(&service.assign(&auth, &id, body.into_inner()).await?)
}

/// Orders formal service with a delivery certificate (Postzustellungsurkunde) for the delivery's letter that
/// waits for the print line (staff of the unit). It then counts from the day of service staff record.
#[utoipa::path(
    tag = "mailbox",
    security(("staff" = [])),
    params(("id" = String, Path, description = "Delivery id")),
    responses(
        (status = 200, description = "The evidence", body = Evidence),
        (status = 404, description = "`delivery_not_found`", body = ProblemDoc, content_type = "application/problem+json"),
        (status = 409, description = "`no_letter_waiting`", body = ProblemDoc, content_type = "application/problem+json"),
    )
)]
#[post("/staff/deliveries/{id}/formal-service")]
async fn formal_service(
    service: web::Data<Mailroom>,
    auth: StaffAuth,
    id: Path<String>,
) -> Result<HttpResponse, ApiError> {
    ok(&service.formal_service(&auth, &id).await?)
}

/// Records the day of service from the returned delivery certificate (once); the decision counts as notified on
/// that day.
#[utoipa::path(
    tag = "mailbox",
    security(("staff" = [])),
    params(("id" = String, Path, description = "Delivery id")),
    request_body = Served,
    responses(
        (status = 200, description = "The evidence", body = Evidence),
        (status = 404, description = "`delivery_not_found`", body = ProblemDoc, content_type = "application/problem+json"),
        (status = 409, description = "`not_formally_served` or `already_served`", body = ProblemDoc, content_type = "application/problem+json"),
        (status = 422, description = "`out_of_range`", body = ProblemDoc, content_type = "application/problem+json"),
    )
)]
#[post("/staff/deliveries/{id}/served")]
async fn served(
    service: web::Data<Mailroom>,
    auth: StaffAuth,
    id: Path<String>,
    body: Json<Served>,
) -> Result<HttpResponse, ApiError> {
    ok(&service.served(&auth, &id, body.0.served_on).await?)
}
