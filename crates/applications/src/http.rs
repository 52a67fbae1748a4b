//! The citizen's application routes. Every object-level route checks that the caller may see the application
//! (their own, or one of an organisation they act for); anything else answers 404 like an unknown id.

use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse, delete, get, patch, post, web};
use amtsweg_auth::CitizenAuth;
use amtsweg_db::Database;
use amtsweg_files::{FileStore, UploadPolicy};
use amtsweg_idempotency::{self as idempotency, Begun, IdempotencyKey, Start};
use amtsweg_kernel::http::{Json, Path, Query, json_response, ok};
use amtsweg_kernel::pagination::{Page, PageQuery};
use amtsweg_kernel::problem::ProblemDoc;
use amtsweg_kernel::{ApiError, FieldError, Lang, SharedClock, Text};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use utoipa::{IntoParams, ToSchema};

use crate::error::ApplicationError;
use crate::requests::{Answer, InformationRequestView};
use crate::service::{ApplicationService, ListFilter, NewDraft};
use crate::view::{ApplicationView, AttachmentView};

/// What citizens may attach; each procedure narrows it per document type.
const ATTACHMENTS: UploadPolicy = UploadPolicy {
    allowed: &["application/pdf", "image/jpeg", "image/png"],
    owner_module: "uploads",
    expires: true,
};

pub fn configure(cfg: &mut utoipa_actix_web::service_config::ServiceConfig) {
    crate::staff_http::configure(cfg);
    cfg.service(create)
        .service(list)
        .service(fetch)
        .service(change)
        .service(remove)
        .service(submit)
        .service(withdraw)
        .service(attach)
        .service(download)
        .service(detach)
        .service(requests)
        .service(answer)
        .service(receipt)
        .service(pay)
        .service(payments)
        .service(payment);
}

#[derive(Debug, Deserialize, Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewApplication {
    /// The catalogue procedure.
    procedure_id: String,
    /// An organisation the caller acts for.
    #[serde(default)]
    on_behalf_of: Option<String>,
    /// Initial form data.
    #[serde(default)]
    #[schema(value_type = Option<Object>)]
    data: Option<Value>,
}

/// Starts a draft application, pinned to the procedure's current version.
#[utoipa::path(
    tag = "applications",
    security(("citizen" = [])),
    params(("Idempotency-Key" = Option<String>, Header, description = "Optional; a retry with the same key and body gets the first answer again")),
    request_body = NewApplication,
    responses(
        (status = 201, description = "The draft", body = ApplicationView),
        (status = 422, description = "`unknown_procedure`, `not_a_member`", body = ProblemDoc, content_type = "application/problem+json"),
    )
)]
#[post("/applications")]
async fn create(
    service: web::Data<ApplicationService>,
    db: web::Data<Database>,
    clock: web::Data<SharedClock>,
    auth: CitizenAuth,
    key: IdempotencyKey,
    lang: Lang,
    body: Json<NewApplication>,
) -> Result<HttpResponse, ApiError> {
    let body = body.into_inner();
    let caller = format!("citizen:{}", auth.account_id);
    let claim = match idempotency::start(
        &db,
        &clock,
        key,
        caller,
        "POST /api/v1/applications".into(),
        &body,
    )
    .await?
    {
        Start::Replay(response) => return Ok(response),
        Start::Proceed(claim) => claim,
    };
    let draft = NewDraft {
        procedure_id: body.procedure_id,
        on_behalf_of: body.on_behalf_of,
        data: body.data,
    };
    let created = service
        .create_draft(
            &auth.account_id,
            draft,
            lang,
            idempotency::recorder(claim.as_ref(), StatusCode::CREATED),
        )
        .await?;
    json_response(StatusCode::CREATED, &created)
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ListQuery {
    /// `draft` or `submitted`.
    status: Option<String>,
    /// A workflow state, e.g. `eingegangen`.
    state: Option<String>,
    procedure_id: Option<String>,
    #[param(minimum = 1, maximum = 100)]
    limit: Option<u32>,
    cursor: Option<String>,
}

/// The caller's applications and those of the organisations they act for, newest first.
#[utoipa::path(
    tag = "applications",
    security(("citizen" = [])),
    params(ListQuery),
    responses((status = 200, description = "One page", body = Page<ApplicationView>))
)]
#[get("/applications")]
async fn list(
    service: web::Data<ApplicationService>,
    auth: CitizenAuth,
    lang: Lang,
    query: Query<ListQuery>,
) -> Result<HttpResponse, ApiError> {
    let query = query.into_inner();
    let page = PageQuery {
        limit: query.limit,
        cursor: query.cursor,
    }
    .parse()?;
    if let Some(status) = &query.status
        && status != "draft"
        && status != "submitted"
    {
        return Err(ApiError::validation(vec![FieldError::at_parameter(
            "status",
            "not_allowed",
            Text::fixed(
                "Erlaubt sind „draft“ und „submitted“.",
                "Allowed are “draft” and “submitted”.",
            ),
        )]));
    }
    let filter = ListFilter {
        status: query.status,
        state: query.state,
        procedure_id: query.procedure_id,
    };
    ok(&service.list(&auth.account_id, filter, page, lang).await?)
}

/// One application with its business status and timeline.
#[utoipa::path(
    tag = "applications",
    security(("citizen" = [])),
    params(("id" = String, Path, description = "Application id")),
    responses(
        (status = 200, description = "The application", body = ApplicationView),
        (status = 404, description = "Not found, or not the caller's", body = ProblemDoc, content_type = "application/problem+json"),
    )
)]
#[get("/applications/{id}")]
async fn fetch(
    service: web::Data<ApplicationService>,
    auth: CitizenAuth,
    lang: Lang,
    id: Path<String>,
) -> Result<HttpResponse, ApiError> {
    ok(&service.get(&auth.account_id, &id.into_inner(), lang).await?)
}

/// Changes a draft with a JSON merge patch (`application/merge-patch+json`, RFC 7396), e.g. `{"data": {…}}`; a
/// member set to `null` is removed. Answers the draft with what the form still finds wrong as `warnings`.
#[utoipa::path(
    tag = "applications",
    security(("citizen" = [])),
    params(("id" = String, Path, description = "Application id")),
    request_body(content = Object, content_type = "application/merge-patch+json"),
    responses(
        (status = 200, description = "The draft, with warnings", body = ApplicationView),
        (status = 404, description = "Not found", body = ProblemDoc, content_type = "application/problem+json"),
        (status = 409, description = "`application_not_draft`", body = ProblemDoc, content_type = "application/problem+json"),
        (status = 422, description = "`not_patchable`, `invalid_type`", body = ProblemDoc, content_type = "application/problem+json"),
    )
)]
#[patch("/applications/{id}")]
async fn change(
    service: web::Data<ApplicationService>,
    auth: CitizenAuth,
    lang: Lang,
    id: Path<String>,
    body: Json<Value>,
) -> Result<HttpResponse, ApiError> {
    ok(&service
        .patch(&auth.account_id, &id.into_inner(), body.into_inner(), lang)
        .await?)
}

/// Deletes a draft and its attachments.
#[utoipa::path(
    tag = "applications",
    security(("citizen" = [])),
    params(("id" = String, Path, description = "Application id")),
    responses(
        (status = 204, description = "Deleted"),
        (status = 404, description = "Not found", body = ProblemDoc, content_type = "application/problem+json"),
        (status = 409, description = "`application_not_draft`", body = ProblemDoc, content_type = "application/problem+json"),
    )
)]
#[delete("/applications/{id}")]
async fn remove(
    service: web::Data<ApplicationService>,
    auth: CitizenAuth,
    id: Path<String>,
) -> Result<HttpResponse, ApiError> {
    service.delete(&auth.account_id, &id.into_inner()).await?;
    Ok(HttpResponse::NoContent().finish())
}

/// Submits a draft and answers it with its final case number. Needs an `Idempotency-Key`: a retry with the same
/// key gets the same answer; while the first request runs, others with the key get 409. Checks the whole form
/// (422 with every violation as a pointer), the required documents (`/attachments/{type}`) and the session's
/// trust level (401 `insufficient_user_authentication` with the level to step up to).
#[utoipa::path(
    tag = "applications",
    security(("citizen" = [])),
    params(
        ("id" = String, Path, description = "Application id"),
        ("Idempotency-Key" = String, Header, description = "Required; 1–255 visible ASCII characters"),
    ),
    responses(
        (status = 201, description = "Submitted, with `case_number` and business status", body = ApplicationView),
        (status = 400, description = "`idempotency_key_required`", body = ProblemDoc, content_type = "application/problem+json"),
        (status = 401, description = "`insufficient_user_authentication`: the procedure needs a higher trust level, or (written form) a login with the eID card", body = ProblemDoc, content_type = "application/problem+json"),
        (status = 404, description = "Not found", body = ProblemDoc, content_type = "application/problem+json"),
        (status = 409, description = "`application_not_draft`, `procedure_changed`, `idempotency_key_in_use`", body = ProblemDoc, content_type = "application/problem+json"),
        (status = 422, description = "Form violations, `document_missing`, `idempotency_key_reused`", body = ProblemDoc, content_type = "application/problem+json"),
    )
)]
#[post("/applications/{id}/submit")]
async fn submit(
    service: web::Data<ApplicationService>,
    db: web::Data<Database>,
    clock: web::Data<SharedClock>,
    auth: CitizenAuth,
    key: IdempotencyKey,
    lang: Lang,
    id: Path<String>,
) -> Result<HttpResponse, ApiError> {
    let key = key.required()?;
    let id = id.into_inner();
    let caller = format!("citizen:{}", auth.account_id);
    let route = format!("POST /api/v1/applications/{id}/submit");
    let claim = match idempotency::begin(&db, &clock, key, caller, route, &id).await? {
        Begun::Replay(response) => return Ok(response),
        Begun::Fresh(claim) => claim,
    };
    let (level, written_form) = service.submit_requirements(&auth.account_id, &id).await?;
    if written_form {
        auth.require_eid()?;
    }
    auth.require_level(level)?;
    let submitted = service
        .submit(
            &auth.account_id,
            &auth.session_id,
            &id,
            lang,
            idempotency::recorder(Some(&claim), StatusCode::CREATED),
        )
        .await?;
    json_response(StatusCode::CREATED, &submitted)
}

/// Withdraws a submitted application while its workflow allows it.
#[utoipa::path(
    tag = "applications",
    security(("citizen" = [])),
    params(("id" = String, Path, description = "Application id")),
    responses(
        (status = 200, description = "Withdrawn", body = ApplicationView),
        (status = 404, description = "Not found", body = ProblemDoc, content_type = "application/problem+json"),
        (status = 409, description = "`withdrawal_not_possible` at this stage (or a draft: delete it instead)", body = ProblemDoc, content_type = "application/problem+json"),
    )
)]
#[post("/applications/{id}/withdraw")]
async fn withdraw(
    service: web::Data<ApplicationService>,
    auth: CitizenAuth,
    lang: Lang,
    id: Path<String>,
) -> Result<HttpResponse, ApiError> {
    ok(&service.withdraw(&auth.account_id, &id.into_inner(), lang).await?)
}

/// The attachment form.
#[derive(ToSchema)]
#[allow(dead_code, reason = "describes the multipart form for the OpenAPI document")]
pub struct AttachmentForm {
    /// The catalogue's document type (before `file` in the form).
    document_type: String,
    /// The document; its type is recognised from the content and must be one the procedure accepts for it.
    #[schema(value_type = String, format = Binary)]
    file: Vec<u8>,
}

/// Attaches a document to a draft (`multipart/form-data` with `document_type`, then `file`). Streamed and checked
/// like every upload, then against the procedure's media types and size for that document type.
#[utoipa::path(
    tag = "applications",
    security(("citizen" = [])),
    params(("id" = String, Path, description = "Application id")),
    request_body(content = AttachmentForm, content_type = "multipart/form-data"),
    responses(
        (status = 201, description = "Attached", body = AttachmentView),
        (status = 400, description = "`malformed_upload`", body = ProblemDoc, content_type = "application/problem+json"),
        (status = 404, description = "Not found", body = ProblemDoc, content_type = "application/problem+json"),
        (status = 409, description = "`application_not_draft`", body = ProblemDoc, content_type = "application/problem+json"),
        (status = 413, description = "Larger than the upload limit", body = ProblemDoc, content_type = "application/problem+json"),
        (status = 507, description = "`storage_full`: the stored files reached `storage.files.quota_bytes`", body = ProblemDoc, content_type = "application/problem+json"),
        (status = 415, description = "`media_type_not_allowed`", body = ProblemDoc, content_type = "application/problem+json"),
        (status = 422, description = "`unknown_document_type`, `media_type_not_allowed`, `file_too_large`, PDF checks", body = ProblemDoc, content_type = "application/problem+json"),
    )
)]
#[post("/applications/{id}/attachments")]
async fn attach(
    service: web::Data<ApplicationService>,
    store: web::Data<FileStore>,
    auth: CitizenAuth,
    id: Path<String>,
    req: HttpRequest,
    payload: web::Payload,
) -> Result<HttpResponse, ApiError> {
    let id = id.into_inner();
    // Unknown or foreign applications are refused before anything is stored.
    service.submit_requirements(&auth.account_id, &id).await?;
    let (file, fields) =
        amtsweg_files::receive_form(&store, &req, payload.into_inner(), &auth.account_id, ATTACHMENTS)
            .await?;
    let document_type = fields
        .iter()
        .find(|(name, _)| name == "document_type")
        .map(|(_, value)| value.clone());
    let attached = match document_type {
        Some(document_type) => {
            service
                .attach(&auth.account_id, &id, &document_type, file.clone())
                .await
        }
        None => Err(ApplicationError::field(
            "/document_type",
            "required",
            Text::fixed(
                "Bitte geben Sie die Art der Unterlage an (Feld „document_type“ vor „file“).",
                "Please give the document type (field “document_type” before “file”).",
            ),
        )),
    };
    match attached {
        Ok(attachment) => json_response(StatusCode::CREATED, &attachment),
        Err(err) => {
            // The upload is not kept when it cannot be attached.
            let _ = store.delete_of(&auth.account_id, &file.id).await;
            Err(err.into())
        }
    }
}

/// Downloads an attachment; supports `Range`.
#[utoipa::path(
    tag = "applications",
    security(("citizen" = [])),
    params(
        ("id" = String, Path, description = "Application id"),
        ("attachment_id" = String, Path, description = "Attachment id"),
    ),
    responses(
        (status = 200, description = "The content", content_type = "application/octet-stream"),
        (status = 206, description = "The requested range", content_type = "application/octet-stream"),
        (status = 404, description = "Not found", body = ProblemDoc, content_type = "application/problem+json"),
    )
)]
#[get("/applications/{id}/attachments/{attachment_id}")]
async fn download(
    service: web::Data<ApplicationService>,
    store: web::Data<FileStore>,
    auth: CitizenAuth,
    ids: Path<(String, String)>,
    req: HttpRequest,
) -> Result<HttpResponse, ApiError> {
    let (id, attachment_id) = ids.into_inner();
    let (file_id, holder) = service.attachment(&auth.account_id, &id, &attachment_id).await?;
    let file = store.file_of(&holder, &file_id).await?;
    Ok(amtsweg_files::download(&store, &req, &file).await?)
}

/// Removes an attachment from a draft.
#[utoipa::path(
    tag = "applications",
    security(("citizen" = [])),
    params(
        ("id" = String, Path, description = "Application id"),
        ("attachment_id" = String, Path, description = "Attachment id"),
    ),
    responses(
        (status = 204, description = "Removed"),
        (status = 404, description = "Not found", body = ProblemDoc, content_type = "application/problem+json"),
        (status = 409, description = "`application_not_draft`", body = ProblemDoc, content_type = "application/problem+json"),
    )
)]
#[delete("/applications/{id}/attachments/{attachment_id}")]
async fn detach(
    service: web::Data<ApplicationService>,
    auth: CitizenAuth,
    ids: Path<(String, String)>,
) -> Result<HttpResponse, ApiError> {
    let (id, attachment_id) = ids.into_inner();
    service.detach(&auth.account_id, &id, &attachment_id).await?;
    Ok(HttpResponse::NoContent().finish())
}

/// The information requests of the authority on this application, newest first: what is asked, until when, and
/// how each ended.
#[utoipa::path(
    tag = "applications",
    security(("citizen" = [])),
    params(("id" = String, Path, description = "Application id")),
    responses(
        (status = 200, description = "The requests", body = Vec<InformationRequestView>),
        (status = 404, description = "Not found", body = ProblemDoc, content_type = "application/problem+json"),
    )
)]
#[get("/applications/{id}/requests")]
async fn requests(
    service: web::Data<ApplicationService>,
    auth: CitizenAuth,
    lang: Lang,
    id: Path<String>,
) -> Result<HttpResponse, ApiError> {
    ok(&service
        .information_requests(&auth.account_id, &id.into_inner(), lang)
        .await?)
}

/// Answers an open information request: a message, changed details (a merge patch limited to the fields asked
/// for) and the documents asked for (uploaded first through `POST /api/v1/files`). The case goes back to the
/// authority's queue at once.
#[utoipa::path(
    tag = "applications",
    security(("citizen" = [])),
    params(
        ("id" = String, Path, description = "Application id"),
        ("request_id" = String, Path, description = "Request id"),
    ),
    request_body = Answer,
    responses(
        (status = 200, description = "The answered request", body = InformationRequestView),
        (status = 404, description = "`application_not_found`, `request_not_found`", body = ProblemDoc, content_type = "application/problem+json"),
        (status = 409, description = "`request_not_open`", body = ProblemDoc, content_type = "application/problem+json"),
        (status = 422, description = "`empty_answer`, `field_not_requested`, `document_missing`, `unknown_file`, `file_not_available`, form violations under `/data`", body = ProblemDoc, content_type = "application/problem+json"),
    )
)]
#[post("/applications/{id}/requests/{request_id}/answer")]
async fn answer(
    service: web::Data<ApplicationService>,
    auth: CitizenAuth,
    lang: Lang,
    ids: Path<(String, String)>,
    body: Json<Answer>,
) -> Result<HttpResponse, ApiError> {
    let (id, request_id) = ids.into_inner();
    ok(&service
        .answer_request(&auth.account_id, &id, &request_id, body.into_inner(), lang)
        .await?)
}

/// The receipt of a submitted application (Eingangsbestätigung): an accessible PDF with every submitted field under
/// the form's label and in its order, the attachments' names and SHA-256, the case number and the submission time.
#[utoipa::path(
    tag = "applications",
    security(("citizen" = [])),
    params(("id" = String, Path, description = "Application id")),
    responses(
        (status = 200, description = "The receipt", content_type = "application/pdf"),
        (status = 404, description = "`application_not_found`, `receipt_not_found` (a draft)", body = ProblemDoc, content_type = "application/problem+json"),
    )
)]
#[get("/applications/{id}/receipt")]
async fn receipt(
    service: web::Data<ApplicationService>,
    store: web::Data<FileStore>,
    auth: CitizenAuth,
    id: Path<String>,
    req: HttpRequest,
) -> Result<HttpResponse, ApiError> {
    let (file_id, holder) = service.receipt(&auth.account_id, &id.into_inner()).await?;
    let file = store.file_of(&holder, &file_id).await?;
    Ok(amtsweg_files::download(&store, &req, &file).await?)
}

/// Starts (or resumes) paying the application's outstanding fee online: answers the payment and the Paypage to
/// redirect the citizen to. After an attempt ended unpaid (aborted, failed, session over) a new attempt for the
/// same debt begins. The return from the Paypage never counts as paid: the platform's answer to a status query does.
#[utoipa::path(
    tag = "payments",
    security(("citizen" = [])),
    params(
        ("id" = String, Path, description = "Application id"),
        ("Idempotency-Key" = String, Header, description = "Required; a retry with the same key gets the first answer again"),
    ),
    responses(
        (status = 201, description = "The payment and the Paypage to redirect to", body = amtsweg_payment::Started),
        (status = 400, description = "`idempotency_key_required`", body = ProblemDoc, content_type = "application/problem+json"),
        (status = 404, description = "`application_not_found`", body = ProblemDoc, content_type = "application/problem+json"),
        (status = 409, description = "`no_payment_outstanding`, `payment_not_payable` (paid or under review), `idempotency_key_in_use`", body = ProblemDoc, content_type = "application/problem+json"),
        (status = 502, description = "`payment_provider_error`: the platform refused", body = ProblemDoc, content_type = "application/problem+json"),
        (status = 503, description = "`payment_provider_unavailable`, with `Retry-After`", body = ProblemDoc, content_type = "application/problem+json"),
    )
)]
#[post("/applications/{id}/payments")]
async fn pay(
    service: web::Data<ApplicationService>,
    db: web::Data<Database>,
    clock: web::Data<SharedClock>,
    auth: CitizenAuth,
    key: IdempotencyKey,
    id: Path<String>,
) -> Result<HttpResponse, ApiError> {
    let key = key.required()?;
    let id = id.into_inner();
    let caller = format!("citizen:{}", auth.account_id);
    let route = format!("POST /api/v1/applications/{id}/payments");
    let claim = match idempotency::begin(&db, &clock, key, caller, route, &id).await? {
        Begun::Replay(response) => return Ok(response),
        Begun::Fresh(claim) => claim,
    };
    let started = service.pay(&auth.account_id, &id).await?;
    // The attempt itself is idempotent (a retry resumes the open Paypage); the answer is kept for the key.
    let record = idempotency::recorder(Some(&claim), StatusCode::CREATED);
    let kept = started.clone();
    db.write(move |conn| record(conn, &kept))
        .await
        .map_err(ApiError::internal)?;
    json_response(StatusCode::CREATED, &started)
}

/// The payments of an application, newest first, each with its history.
#[utoipa::path(
    tag = "payments",
    security(("citizen" = [])),
    params(("id" = String, Path, description = "Application id")),
    responses(
        (status = 200, description = "The payments", body = Vec<amtsweg_payment::PaymentView>),
        (status = 404, description = "`application_not_found`", body = ProblemDoc, content_type = "application/problem+json"),
    )
)]
#[get("/applications/{id}/payments")]
async fn payments(
    service: web::Data<ApplicationService>,
    auth: CitizenAuth,
    id: Path<String>,
) -> Result<HttpResponse, ApiError> {
    ok(&service.payments_of(&auth.account_id, &id.into_inner()).await?)
}

/// One payment of the caller's applications, with its history.
#[utoipa::path(
    tag = "payments",
    security(("citizen" = [])),
    params(("id" = String, Path, description = "Payment id")),
    responses(
        (status = 200, description = "The payment", body = amtsweg_payment::PaymentView),
        (status = 404, description = "`payment_not_found` (also for another person's payment)", body = ProblemDoc, content_type = "application/problem+json"),
    )
)]
#[get("/payments/{id}")]
async fn payment(
    service: web::Data<ApplicationService>,
    auth: CitizenAuth,
    id: Path<String>,
) -> Result<HttpResponse, ApiError> {
    ok(&service.payment(&auth.account_id, &id.into_inner()).await?)
}
