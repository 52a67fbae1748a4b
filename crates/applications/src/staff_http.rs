//! The case workers' routes. A staff token with a case-work role (`case_worker`, `supervisor`) in the case's unit
//! is needed; cases of other units do not exist for the caller.

use actix_web::http::StatusCode;
use actix_web::http::header::{ETAG, IF_MATCH};
use actix_web::{HttpRequest, HttpResponse, get, post, web};
use amtsweg_auth::StaffAuth;
use amtsweg_kernel::http::{Json, Path, json_response, ok};
use amtsweg_kernel::problem::ProblemDoc;
use amtsweg_kernel::{ApiError, Lang, Text};
use serde::Deserialize;
use utoipa::ToSchema;

use crate::decision::DecisionInput;
use crate::requests::NewInformationRequest;
use crate::search::CaseFilter;
use crate::service::ApplicationService;
use crate::staff::{CaseSummary, CaseWorker, NoteView, QueueView, StaffCaseView};
use amtsweg_files::FileStore;
use amtsweg_kernel::http::Query;
use amtsweg_kernel::pagination::{Page, PageQuery};
use utoipa::IntoParams;

pub fn configure(cfg: &mut utoipa_actix_web::service_config::ServiceConfig) {
    cfg.service(queues)
        .service(search)
        .service(claim_next)
        .service(claim)
        .service(release)
        .service(fetch)
        .service(transition)
        .service(decide)
        .service(cosign)
        .service(decision_document)
        .service(case_notifications)
        .service(add_note)
        .service(request_information)
        .service(extend_fiction)
        .service(attachment)
        .service(assign);
}

/// Downloads an attachment of the case; supports `Range`. The read is recorded.
#[utoipa::path(
    tag = "casework",
    security(("staff" = [])),
    params(
        ("id" = String, Path, description = "Case (application) id"),
        ("attachment_id" = String, Path, description = "Attachment id"),
    ),
    responses(
        (status = 200, description = "The content", content_type = "application/octet-stream"),
        (status = 206, description = "The requested range", content_type = "application/octet-stream"),
        (status = 404, description = "`case_not_found`, `application_not_found`", body = ProblemDoc, content_type = "application/problem+json"),
    )
)]
#[get("/staff/cases/{id}/attachments/{attachment_id}")]
async fn attachment(
    service: web::Data<ApplicationService>,
    store: web::Data<FileStore>,
    auth: StaffAuth,
    ids: Path<(String, String)>,
    req: HttpRequest,
) -> Result<HttpResponse, ApiError> {
    let (id, attachment_id) = ids.into_inner();
    let (file_id, holder) = service
        .staff_attachment(worker(&auth), &id, &attachment_id)
        .await?;
    let file = store.file_of(&holder, &file_id).await?;
    Ok(amtsweg_files::download(&store, &req, &file).await?)
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewNote {
    /// 1–10,000 characters; internal, never shown to the citizen.
    text: String,
}

/// Adds an internal note to the case.
#[utoipa::path(
    tag = "casework",
    security(("staff" = [])),
    params(("id" = String, Path, description = "Case (application) id")),
    request_body = NewNote,
    responses(
        (status = 201, description = "The note", body = NoteView),
        (status = 404, description = "`case_not_found`", body = ProblemDoc, content_type = "application/problem+json"),
        (status = 422, description = "`invalid_length`", body = ProblemDoc, content_type = "application/problem+json"),
    )
)]
#[post("/staff/cases/{id}/notes")]
async fn add_note(
    service: web::Data<ApplicationService>,
    auth: StaffAuth,
    id: Path<String>,
    body: Json<NewNote>,
) -> Result<HttpResponse, ApiError> {
    let note = service
        .add_note(worker(&auth), &id.into_inner(), &body.into_inner().text)
        .await?;
    json_response(StatusCode::CREATED, &note)
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Assignment {
    /// A member of staff with a case-work role in the case's unit.
    staff_id: String,
}

/// A supervisor of the unit hands a waiting case to a case worker of the unit.
#[utoipa::path(
    tag = "casework",
    security(("staff" = [])),
    params(("id" = String, Path, description = "Case (application) id")),
    request_body = Assignment,
    responses(
        (status = 200, description = "Assigned", body = CaseSummary),
        (status = 403, description = "Not a supervisor of the unit", body = ProblemDoc, content_type = "application/problem+json"),
        (status = 404, description = "`case_not_found`", body = ProblemDoc, content_type = "application/problem+json"),
        (status = 409, description = "`case_not_claimable`", body = ProblemDoc, content_type = "application/problem+json"),
        (status = 422, description = "`not_a_case_worker_here`", body = ProblemDoc, content_type = "application/problem+json"),
    )
)]
#[post("/staff/cases/{id}/assign")]
async fn assign(
    service: web::Data<ApplicationService>,
    auth: StaffAuth,
    id: Path<String>,
    body: Json<Assignment>,
) -> Result<HttpResponse, ApiError> {
    ok(&service
        .assign(worker(&auth), &id.into_inner(), &body.into_inner().staff_id)
        .await?)
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct SearchQuery {
    /// A workflow state, e.g. `in_pruefung`.
    state: Option<String>,
    procedure_id: Option<String>,
    /// One of the caller's units.
    unit_id: Option<String>,
    /// A staff id, `me`, or `none` for unclaimed cases.
    assignee: Option<String>,
    /// `true`: only cases past their processing deadline; `false`: only those that are not.
    overdue: Option<bool>,
    /// First day of submission (`YYYY-MM-DD`, Europe/Berlin), included.
    submitted_from: Option<String>,
    /// Last day of submission (`YYYY-MM-DD`, Europe/Berlin), included.
    submitted_to: Option<String>,
    /// The exact case number (Aktenzeichen).
    case_number: Option<String>,
    /// Word prefixes of the applicant's name as recorded at submission (person or organisation), e.g. `muster`
    /// or `erika must`; up to four words, case-insensitive.
    applicant: Option<String>,
    #[param(minimum = 1, maximum = 100)]
    limit: Option<u32>,
    cursor: Option<String>,
}

/// Searches the submitted cases of the caller's units, newest submission first. Cases of other units are never
/// found, whatever the filters say.
#[utoipa::path(
    tag = "casework",
    security(("staff" = [])),
    params(SearchQuery),
    responses(
        (status = 200, description = "One page", body = Page<CaseSummary>),
        (status = 400, description = "`invalid_query` (`invalid_date`, `out_of_range`, `invalid_cursor`, `too_many_words`)", body = ProblemDoc, content_type = "application/problem+json"),
    )
)]
#[get("/staff/cases")]
async fn search(
    service: web::Data<ApplicationService>,
    auth: StaffAuth,
    query: Query<SearchQuery>,
) -> Result<HttpResponse, ApiError> {
    let query = query.into_inner();
    let page = PageQuery {
        limit: query.limit,
        cursor: query.cursor.clone(),
    }
    .parse()?;
    let date = |name: &str, value: &Option<String>| -> Result<Option<chrono::NaiveDate>, ApiError> {
        value
            .as_deref()
            .map(|text| {
                chrono::NaiveDate::parse_from_str(text, "%Y-%m-%d").map_err(|_| {
                    ApiError::bad_request(
                        "invalid_query",
                        Text::fixed("Ungültige Abfrageparameter.", "Invalid query parameters."),
                    )
                    .with_errors(vec![amtsweg_kernel::FieldError::at_parameter(
                        name,
                        "invalid_date",
                        Text::fixed("Ein Datum wie 2026-11-30.", "A date such as 2026-11-30."),
                    )])
                })
            })
            .transpose()
    };
    let filter = CaseFilter {
        submitted_from: date("submitted_from", &query.submitted_from)?,
        submitted_to: date("submitted_to", &query.submitted_to)?,
        state: query.state,
        procedure_id: query.procedure_id,
        unit_id: query.unit_id,
        assignee: query.assignee,
        overdue: query.overdue,
        case_number: query.case_number,
        applicant: query.applicant,
    };
    let found = service
        .search_cases(worker(&auth), filter, page)
        .await
        .map_err(|err| match err {
            crate::ApplicationError::Validation(errors) => ApiError::bad_request(
                "invalid_query",
                Text::fixed("Ungültige Abfrageparameter.", "Invalid query parameters."),
            )
            .with_errors(errors),
            other => other.into(),
        })?;
    ok(&found)
}

fn worker(auth: &StaffAuth) -> CaseWorker {
    CaseWorker::new(&auth.account_id, &auth.roles)
}

/// The queues of the caller's units: one per unit and procedure, with waiting and claimed counts, the oldest
/// waiting case and how many are overdue.
#[utoipa::path(
    tag = "casework",
    security(("staff" = [])),
    responses((status = 200, description = "Queues", body = Vec<QueueView>))
)]
#[get("/staff/queues")]
async fn queues(service: web::Data<ApplicationService>, auth: StaffAuth) -> Result<HttpResponse, ApiError> {
    ok(&service.queues(worker(&auth)).await?)
}

/// Hands the longest-waiting unclaimed case of the queue to the caller; each case goes to exactly one caller,
/// however many claim at once. 204 when the queue is empty.
#[utoipa::path(
    tag = "casework",
    security(("staff" = [])),
    params(("queue_id" = String, Path, description = "`{unit}.{procedure}`")),
    responses(
        (status = 200, description = "The claimed case", body = CaseSummary),
        (status = 204, description = "Nothing waits"),
        (status = 404, description = "`queue_not_found` (or not one of the caller's units)", body = ProblemDoc, content_type = "application/problem+json"),
    )
)]
#[post("/staff/queues/{queue_id}/claim-next")]
async fn claim_next(
    service: web::Data<ApplicationService>,
    auth: StaffAuth,
    queue_id: Path<String>,
) -> Result<HttpResponse, ApiError> {
    match service.claim_next(worker(&auth), &queue_id.into_inner()).await? {
        Some(case) => ok(&case),
        None => Ok(HttpResponse::NoContent().finish()),
    }
}

/// Claims a waiting case.
#[utoipa::path(
    tag = "casework",
    security(("staff" = [])),
    params(("id" = String, Path, description = "Case (application) id")),
    responses(
        (status = 200, description = "Claimed by the caller", body = CaseSummary),
        (status = 404, description = "`case_not_found`", body = ProblemDoc, content_type = "application/problem+json"),
        (status = 409, description = "`case_not_claimable`: held by someone else or not waiting", body = ProblemDoc, content_type = "application/problem+json"),
    )
)]
#[post("/staff/cases/{id}/claim")]
async fn claim(
    service: web::Data<ApplicationService>,
    auth: StaffAuth,
    id: Path<String>,
) -> Result<HttpResponse, ApiError> {
    ok(&service.claim(worker(&auth), &id.into_inner()).await?)
}

/// Gives a claimed case back to its queue (its holder, or a supervisor of the unit).
#[utoipa::path(
    tag = "casework",
    security(("staff" = [])),
    params(("id" = String, Path, description = "Case (application) id")),
    responses(
        (status = 200, description = "Back in the queue", body = CaseSummary),
        (status = 403, description = "Held by someone else", body = ProblemDoc, content_type = "application/problem+json"),
        (status = 404, description = "`case_not_found`", body = ProblemDoc, content_type = "application/problem+json"),
    )
)]
#[post("/staff/cases/{id}/release")]
async fn release(
    service: web::Data<ApplicationService>,
    auth: StaffAuth,
    id: Path<String>,
) -> Result<HttpResponse, ApiError> {
    ok(&service.release(worker(&auth), &id.into_inner()).await?)
}

/// The case: form data with labels, attachments, fee, documents and payment status, every step, and the actions
/// the caller may take now. The `ETag` is the case version for `If-Match`. The read is recorded.
#[utoipa::path(
    tag = "casework",
    security(("staff" = [])),
    params(("id" = String, Path, description = "Case (application) id")),
    responses(
        (status = 200, description = "The case", body = StaffCaseView, headers(("ETag" = String, description = "The case version, quoted"))),
        (status = 404, description = "`case_not_found`", body = ProblemDoc, content_type = "application/problem+json"),
    )
)]
#[get("/staff/cases/{id}")]
async fn fetch(
    service: web::Data<ApplicationService>,
    auth: StaffAuth,
    lang: Lang,
    id: Path<String>,
) -> Result<HttpResponse, ApiError> {
    let case = service.staff_case(worker(&auth), &id.into_inner(), lang).await?;
    with_etag(StatusCode::OK, &case)
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct TransitionRequest {
    /// A workflow action the case offers now (see `actions` of the case).
    action: String,
    /// The reason; required where the action says so.
    #[serde(default)]
    comment: Option<String>,
}

/// Takes a workflow action. Needs `If-Match` with the case's `ETag`: without it 428, with a stale one 412
/// (`version_mismatch`, nothing changed). Decisions go through the decision route.
#[utoipa::path(
    tag = "casework",
    security(("staff" = [])),
    params(
        ("id" = String, Path, description = "Case (application) id"),
        ("If-Match" = String, Header, description = "The case's ETag"),
    ),
    request_body = TransitionRequest,
    responses(
        (status = 200, description = "The case after the step", body = StaffCaseView, headers(("ETag" = String, description = "The new version"))),
        (status = 404, description = "`case_not_found`", body = ProblemDoc, content_type = "application/problem+json"),
        (status = 412, description = "`version_mismatch`", body = ProblemDoc, content_type = "application/problem+json"),
        (status = 422, description = "`unknown_action`, `action_not_available`, `action_not_allowed`, `guard_not_satisfied`, `comment_required`, `decision_action`", body = ProblemDoc, content_type = "application/problem+json"),
        (status = 428, description = "`if_match_required`", body = ProblemDoc, content_type = "application/problem+json"),
    )
)]
#[post("/staff/cases/{id}/transitions")]
async fn transition(
    service: web::Data<ApplicationService>,
    auth: StaffAuth,
    lang: Lang,
    id: Path<String>,
    req: HttpRequest,
    body: Json<TransitionRequest>,
) -> Result<HttpResponse, ApiError> {
    let version = if_match(&req)?;
    let body = body.into_inner();
    let case = service
        .transition(
            worker(&auth),
            &id.into_inner(),
            version,
            &body.action,
            body.comment,
            lang,
        )
        .await?;
    with_etag(StatusCode::OK, &case)
}

/// Asks the applicant for more: a message, form fields they may change, documents they must send, and a reply
/// window. The case then waits for the citizen (the workflow's `information_request` action) and comes back into
/// its queue when answered or when the window has run out. Needs `If-Match`.
#[utoipa::path(
    tag = "casework",
    security(("staff" = [])),
    params(
        ("id" = String, Path, description = "Case (application) id"),
        ("If-Match" = String, Header, description = "The case's ETag"),
    ),
    request_body = NewInformationRequest,
    responses(
        (status = 201, description = "The case with the open request", body = StaffCaseView, headers(("ETag" = String, description = "The new version"))),
        (status = 404, description = "`case_not_found`", body = ProblemDoc, content_type = "application/problem+json"),
        (status = 409, description = "`information_request_not_possible` at this stage", body = ProblemDoc, content_type = "application/problem+json"),
        (status = 412, description = "`version_mismatch`", body = ProblemDoc, content_type = "application/problem+json"),
        (status = 422, description = "`invalid_length`, `out_of_range`, `unknown_field`, `unknown_document_type`, `action_not_allowed`", body = ProblemDoc, content_type = "application/problem+json"),
        (status = 428, description = "`if_match_required`", body = ProblemDoc, content_type = "application/problem+json"),
    )
)]
#[post("/staff/cases/{id}/information-requests")]
async fn request_information(
    service: web::Data<ApplicationService>,
    auth: StaffAuth,
    lang: Lang,
    id: Path<String>,
    req: HttpRequest,
    body: Json<NewInformationRequest>,
) -> Result<HttpResponse, ApiError> {
    let version = if_match(&req)?;
    let case = service
        .request_information(worker(&auth), &id.into_inner(), version, body.into_inner(), lang)
        .await?;
    with_etag(StatusCode::CREATED, &case)
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct FictionExtension {
    /// By how many months (at most the procedure's `max_extension_months`).
    months: u32,
    /// Why the matter is difficult enough to need longer (1–5,000 characters); the citizen reads them in the
    /// timeline.
    reasons: String,
}

/// Extends the period of the case's fiction of approval (§ 42a (2) VwVfG) once, with reasons, while it runs; the
/// citizen is told by mail and sees the reasons in the timeline. Needs `If-Match`.
#[utoipa::path(
    tag = "casework",
    security(("staff" = [])),
    params(
        ("id" = String, Path, description = "Case (application) id"),
        ("If-Match" = String, Header, description = "The case's ETag"),
    ),
    request_body = FictionExtension,
    responses(
        (status = 200, description = "The case with the extended period (`approval_fiction`)", body = StaffCaseView, headers(("ETag" = String, description = "The new version"))),
        (status = 404, description = "`case_not_found`", body = ProblemDoc, content_type = "application/problem+json"),
        (status = 409, description = "`fiction_not_running` (none, ended, deemed or stopped), `fiction_already_extended`", body = ProblemDoc, content_type = "application/problem+json"),
        (status = 412, description = "`version_mismatch`", body = ProblemDoc, content_type = "application/problem+json"),
        (status = 422, description = "`invalid_length`, `out_of_range`", body = ProblemDoc, content_type = "application/problem+json"),
        (status = 428, description = "`if_match_required`", body = ProblemDoc, content_type = "application/problem+json"),
    )
)]
#[post("/staff/cases/{id}/approval-fiction/extension")]
async fn extend_fiction(
    service: web::Data<ApplicationService>,
    auth: StaffAuth,
    lang: Lang,
    id: Path<String>,
    req: HttpRequest,
    body: Json<FictionExtension>,
) -> Result<HttpResponse, ApiError> {
    let version = if_match(&req)?;
    let body = body.into_inner();
    let case = service
        .extend_fiction(
            worker(&auth),
            &id.into_inner(),
            version,
            body.months,
            &body.reasons,
            lang,
        )
        .await?;
    with_etag(StatusCode::OK, &case)
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct DecisionRequest {
    /// `approved`, `rejected` or `partially_approved`.
    result: String,
    /// The reasons, printed in the decision document.
    reasons: String,
    /// Overrides the assessed fee (procedures invoiced with the decision only), e.g. a reduced fee for a rejection.
    #[serde(default)]
    fee_cents: Option<i64>,
}

/// Decides the case: the workflow's decision action for `result`, with the decision document (PDF/A, tagged, in
/// the applicant's language, with the notice of legal remedies) rendered into the case file. Where the workflow
/// needs four eyes the case then waits for `…/decision/cosign`. Needs `If-Match`.
#[utoipa::path(
    tag = "casework",
    security(("staff" = [])),
    params(
        ("id" = String, Path, description = "Case (application) id"),
        ("If-Match" = String, Header, description = "The case's ETag"),
    ),
    request_body = DecisionRequest,
    responses(
        (status = 200, description = "The case after the decision", body = StaffCaseView, headers(("ETag" = String, description = "The new version"))),
        (status = 404, description = "`case_not_found`", body = ProblemDoc, content_type = "application/problem+json"),
        (status = 412, description = "`version_mismatch`", body = ProblemDoc, content_type = "application/problem+json"),
        (status = 422, description = "`decision_not_available`, `fee_not_adjustable`, `guard_not_satisfied`, invalid fields", body = ProblemDoc, content_type = "application/problem+json"),
        (status = 428, description = "`if_match_required`", body = ProblemDoc, content_type = "application/problem+json"),
    )
)]
#[post("/staff/cases/{id}/decision")]
async fn decide(
    service: web::Data<ApplicationService>,
    auth: StaffAuth,
    lang: Lang,
    id: Path<String>,
    req: HttpRequest,
    body: Json<DecisionRequest>,
) -> Result<HttpResponse, ApiError> {
    let version = if_match(&req)?;
    let body = body.into_inner();
    let input = DecisionInput {
        result: body.result,
        reasons: body.reasons,
        fee_cents: body.fee_cents,
    };
    let case = service
        .decide(worker(&auth), &id.into_inner(), version, input, lang)
        .await?;
    with_etag(StatusCode::OK, &case)
}

/// Co-signs the pending decision (four eyes): a second staff member of the unit, never its author. The case then
/// goes on where its workflow waits for the co-signature. Needs `If-Match`.
#[utoipa::path(
    tag = "casework",
    security(("staff" = [])),
    params(
        ("id" = String, Path, description = "Case (application) id"),
        ("If-Match" = String, Header, description = "The case's ETag"),
    ),
    responses(
        (status = 200, description = "The case after the co-signature", body = StaffCaseView, headers(("ETag" = String, description = "The new version"))),
        (status = 403, description = "The author cannot co-sign", body = ProblemDoc, content_type = "application/problem+json"),
        (status = 404, description = "`case_not_found`", body = ProblemDoc, content_type = "application/problem+json"),
        (status = 409, description = "`nothing_to_cosign`", body = ProblemDoc, content_type = "application/problem+json"),
        (status = 412, description = "`version_mismatch`", body = ProblemDoc, content_type = "application/problem+json"),
        (status = 428, description = "`if_match_required`", body = ProblemDoc, content_type = "application/problem+json"),
    )
)]
#[post("/staff/cases/{id}/decision/cosign")]
async fn cosign(
    service: web::Data<ApplicationService>,
    auth: StaffAuth,
    lang: Lang,
    id: Path<String>,
    req: HttpRequest,
) -> Result<HttpResponse, ApiError> {
    let version = if_match(&req)?;
    let case = service
        .cosign(worker(&auth), &id.into_inner(), version, lang)
        .await?;
    with_etag(StatusCode::OK, &case)
}

/// The latest decision document of the case (PDF); supports `Range`.
#[utoipa::path(
    tag = "casework",
    security(("staff" = [])),
    params(("id" = String, Path, description = "Case (application) id")),
    responses(
        (status = 200, description = "The PDF", content_type = "application/pdf"),
        (status = 404, description = "`case_not_found`, `decision_not_found`", body = ProblemDoc, content_type = "application/problem+json"),
    )
)]
#[get("/staff/cases/{id}/decision/document")]
async fn decision_document(
    service: web::Data<ApplicationService>,
    store: web::Data<FileStore>,
    auth: StaffAuth,
    id: Path<String>,
    req: HttpRequest,
) -> Result<HttpResponse, ApiError> {
    let (file_id, holder) = service.decision_document(worker(&auth), &id.into_inner()).await?;
    let file = store.file_of(&holder, &file_id).await?;
    Ok(amtsweg_files::download(&store, &req, &file).await?)
}

/// The mails sent to the applicant about the case, oldest first, with their delivery status (GOV.UK Notify's:
/// `created`, `delivered`, `temporary-failure`, `permanent-failure`, `technical-failure`) and the last error.
/// The notifications of a delivered decision are in its delivery evidence.
#[utoipa::path(
    tag = "casework",
    security(("staff" = [])),
    params(("id" = String, Path, description = "Case (application) id")),
    responses(
        (status = 200, description = "The notifications", body = Vec<amtsweg_mail::Notification>),
        (status = 404, description = "`case_not_found`", body = ProblemDoc, content_type = "application/problem+json"),
    )
)]
#[get("/staff/cases/{id}/notifications")]
async fn case_notifications(
    service: web::Data<ApplicationService>,
    auth: StaffAuth,
    id: Path<String>,
) -> Result<HttpResponse, ApiError> {
    ok(&service
        .case_notifications(worker(&auth), &id.into_inner())
        .await?)
}

fn with_etag(status: StatusCode, case: &StaffCaseView) -> Result<HttpResponse, ApiError> {
    let mut response = json_response(status, case)?;
    if let Ok(value) = format!("\"{}\"", case.summary.version).parse() {
        response.headers_mut().insert(ETAG, value);
    }
    Ok(response)
}

/// The version named by `If-Match` (`"7"`, also `W/"7"`).
fn if_match(req: &HttpRequest) -> Result<i64, ApiError> {
    let Some(value) = req.headers().get(IF_MATCH) else {
        return Err(ApiError::new(
            StatusCode::PRECONDITION_REQUIRED,
            "if_match_required",
            Text::fixed(
                "Bitte senden Sie If-Match mit dem ETag des Vorgangs.",
                "Please send If-Match with the case's ETag.",
            ),
        ));
    };
    value
        .to_str()
        .ok()
        .map(|v| v.trim().trim_start_matches("W/").trim_matches('"'))
        .and_then(|v| v.parse().ok())
        .ok_or_else(|| {
            ApiError::bad_request(
                "invalid_if_match",
                Text::fixed(
                    "If-Match muss ein ETag des Vorgangs sein, z. B. \"3\".",
                    "If-Match must be an ETag of the case, e.g. \"3\".",
                ),
            )
        })
}
