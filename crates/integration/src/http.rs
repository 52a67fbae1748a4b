//! Routes of the integration platform: the pull API and event feed for specialised procedures (client
//! credentials), their webhook subscriptions, the administrators' view of dead deliveries, and open data.

use std::sync::Arc;

use actix_multipart::Multipart;
use actix_web::http::StatusCode;
use actix_web::http::header::CACHE_CONTROL;
use actix_web::{HttpRequest, HttpResponse, delete, get, post, web};
use amtsweg_applications::clients::{ClientApplicationView, ClientDecision};
use amtsweg_auth::{ClientAuth, StaffAuth};
use amtsweg_db::Database;
use amtsweg_files::FileStore;
use amtsweg_idempotency::{self as idempotency, Begun, IdempotencyKey, Start};
use amtsweg_kernel::http::{Json, Path, Query, json_response, ok};
use amtsweg_kernel::pagination::{Page, PageQuery, encode_cursor};
use amtsweg_kernel::problem::ProblemDoc;
use amtsweg_kernel::{ApiError, FieldError, SharedClock, Text};
use futures_util::StreamExt;
use serde::{Deserialize, Serialize};
use sha2::Digest;
use utoipa::{IntoParams, ToSchema};
use utoipa_actix_web::service_config::ServiceConfig;

use crate::feed::SignedEvent;
use crate::pull::{Acknowledgement, AcknowledgementView, PendingApplication};
use crate::scopes::{self, READ, WRITE};
use crate::statistics::Statistics;
use crate::webhooks::{self, DeliveryView, NewSubscription, SubscriptionView};
use crate::{Failure, Integration};

pub fn configure(cfg: &mut ServiceConfig) {
    cfg.service(pending)
        .service(application)
        .service(attachment)
        .service(acknowledge)
        .service(status)
        .service(decision)
        .service(feed)
        .service(subscribe)
        .service(subscriptions)
        .service(subscription)
        .service(unsubscribe)
        .service(delivery_log)
        .service(replay)
        .service(dead_deliveries)
        .service(admin_replay)
        .service(statistics);
}

fn db_error(err: amtsweg_db::DbError) -> ApiError {
    crate::pull::db(err)
}

/// 400 `invalid_query` naming the parameter.
fn invalid_query(parameter: &str, code: &'static str, text: Text) -> ApiError {
    ApiError::bad_request(
        "invalid_query",
        Text::fixed("Ungültige Abfrageparameter.", "Invalid query parameters."),
    )
    .with_errors(vec![FieldError::at_parameter(parameter, code, text)])
}

/// The feed position a cursor of this module stands for (0: from the start).
fn cursor_position(page: &amtsweg_kernel::pagination::PageRequest) -> Result<i64, ApiError> {
    match &page.after {
        None => Ok(0),
        Some(key) => key.parse().map_err(|_| {
            invalid_query(
                "cursor",
                "invalid_cursor",
                Text::fixed(
                    "Der Cursor ist ungültig; verwenden Sie next_cursor der vorigen Seite.",
                    "The cursor is invalid; use next_cursor of the previous page.",
                ),
            )
        }),
    }
}

/// Submitted applications of the client's procedures (those processed by specialised procedures) that it has
/// not acknowledged yet, oldest first, in a stable order.
#[utoipa::path(
    tag = "integration",
    security(("client" = [])),
    params(PageQuery),
    responses(
        (status = 200, description = "A page of pending applications", body = Page<PendingApplication>),
        (status = 400, description = "`invalid_query`", body = ProblemDoc, content_type = "application/problem+json"),
        (status = 403, description = "No `applications:read` scope", body = ProblemDoc, content_type = "application/problem+json"),
    )
)]
#[get("/integration/applications")]
async fn pending(
    integration: web::Data<Integration>,
    auth: ClientAuth,
    query: Query<PageQuery>,
) -> Result<HttpResponse, ApiError> {
    let procedures = scopes::require(&auth, READ)?;
    let page = query.into_inner().parse()?;
    let after = cursor_position(&page)?;
    let limit = page.limit;
    let client = auth.client_id.clone();
    let items = integration
        .db()
        .read(move |conn| {
            crate::pull::pending(
                conn,
                &client,
                &procedures,
                after,
                i64::try_from(limit).unwrap_or(100) + 1,
            )
        })
        .await
        .map_err(db_error)?;
    ok(&Page::from_overfetched(items, limit, |p| p.position.to_string()))
}

/// The full application: form data, attachments with hashes and download links, applicant, fee and payment
/// status, case number, state, and the actions this client may take.
#[utoipa::path(
    tag = "integration",
    security(("client" = [])),
    params(("id" = String, Path, description = "Application id")),
    responses(
        (status = 200, description = "The application", body = ClientApplicationView),
        (status = 403, description = "No `applications:read` scope", body = ProblemDoc, content_type = "application/problem+json"),
        (status = 404, description = "`application_not_found` (also for applications of other procedures)", body = ProblemDoc, content_type = "application/problem+json"),
    )
)]
#[get("/integration/applications/{id}")]
async fn application(
    integration: web::Data<Integration>,
    auth: ClientAuth,
    id: Path<String>,
) -> Result<HttpResponse, ApiError> {
    let procedures = scopes::require(&auth, READ)?;
    ok(&integration
        .applications()
        .client_application(&auth.client_id, &procedures, &id)
        .await?)
}

/// Downloads an attachment (supports `Range`); its SHA-256 is in the application.
#[utoipa::path(
    tag = "integration",
    security(("client" = [])),
    params(
        ("id" = String, Path, description = "Application id"),
        ("attachment_id" = String, Path, description = "Attachment id"),
    ),
    responses(
        (status = 200, description = "The content", content_type = "application/octet-stream"),
        (status = 206, description = "The requested range", content_type = "application/octet-stream"),
        (status = 403, description = "No `applications:read` scope", body = ProblemDoc, content_type = "application/problem+json"),
        (status = 404, description = "`application_not_found`", body = ProblemDoc, content_type = "application/problem+json"),
    )
)]
#[get("/integration/applications/{id}/attachments/{attachment_id}")]
async fn attachment(
    integration: web::Data<Integration>,
    store: web::Data<FileStore>,
    auth: ClientAuth,
    ids: Path<(String, String)>,
    req: HttpRequest,
) -> Result<HttpResponse, ApiError> {
    let procedures = scopes::require(&auth, READ)?;
    let (id, attachment_id) = ids.into_inner();
    let (file_id, holder) = integration
        .applications()
        .client_attachment(&auth.client_id, &procedures, &id, &attachment_id)
        .await?;
    let file = store.file_of(&holder, &file_id).await?;
    Ok(amtsweg_files::download(&store, &req, &file).await?)
}

/// The technical receipt (FIT-Connect semantics): `accepted`, or `rejected` with RFC 9457 problems. Either takes
/// the application off this client's pending list; the same acknowledgement again answers the recorded one.
#[utoipa::path(
    tag = "integration",
    security(("client" = [])),
    params(
        ("id" = String, Path, description = "Application id"),
        ("Idempotency-Key" = Option<String>, Header, description = "Optional"),
    ),
    request_body = Acknowledgement,
    responses(
        (status = 200, description = "Recorded", body = AcknowledgementView),
        (status = 403, description = "No `applications:write` scope", body = ProblemDoc, content_type = "application/problem+json"),
        (status = 404, description = "`application_not_found`", body = ProblemDoc, content_type = "application/problem+json"),
        (status = 409, description = "`already_acknowledged` differently", body = ProblemDoc, content_type = "application/problem+json"),
        (status = 422, description = "Invalid outcome or problems", body = ProblemDoc, content_type = "application/problem+json"),
    )
)]
#[post("/integration/applications/{id}/acknowledge")]
async fn acknowledge(
    integration: web::Data<Integration>,
    db: web::Data<Database>,
    clock: web::Data<SharedClock>,
    auth: ClientAuth,
    key: IdempotencyKey,
    id: Path<String>,
    body: Json<Acknowledgement>,
) -> Result<HttpResponse, ApiError> {
    let procedures = scopes::require(&auth, WRITE)?;
    let (id, ack) = (id.into_inner(), body.into_inner());
    ack.check()?;
    let caller = format!("client:{}", auth.client_id);
    let route = format!("POST /api/v1/integration/applications/{id}/acknowledge");
    let claim = match idempotency::start(
        &db,
        &clock,
        key,
        caller,
        route,
        &(&id, &ack.outcome, &ack.problems),
    )
    .await?
    {
        Start::Replay(response) => return Ok(response),
        Start::Proceed(claim) => claim,
    };
    let record = idempotency::recorder(claim.as_ref(), StatusCode::OK);
    let (client, now) = (auth.client_id.clone(), clock.now());
    let view = integration
        .db()
        .write(move |conn| {
            let view = crate::pull::acknowledge(conn, &client, &procedures, &id, &ack, now)?;
            record(conn, &view)?;
            Ok::<_, Failure>(view)
        })
        .await?;
    ok(&view)
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct StatusReport {
    /// A workflow action declared for clients (`by: client`), as listed in the application's `actions`.
    pub action: String,
    /// A reason or remark; shown to the citizen where the workflow makes the step public.
    #[serde(default)]
    pub comment: Option<String>,
}

/// Reports a status change: a workflow transition the workflow allows for clients; the citizen sees it in the
/// timeline. Requires an `Idempotency-Key`: a retry with the same key answers the first result.
#[utoipa::path(
    tag = "integration",
    security(("client" = [])),
    params(
        ("id" = String, Path, description = "Application id"),
        ("Idempotency-Key" = String, Header, description = "Required"),
    ),
    request_body = StatusReport,
    responses(
        (status = 200, description = "The application after the step", body = ClientApplicationView),
        (status = 400, description = "`idempotency_key_required`", body = ProblemDoc, content_type = "application/problem+json"),
        (status = 403, description = "No `applications:write` scope", body = ProblemDoc, content_type = "application/problem+json"),
        (status = 404, description = "`application_not_found`", body = ProblemDoc, content_type = "application/problem+json"),
        (status = 409, description = "`idempotency_key_in_use`", body = ProblemDoc, content_type = "application/problem+json"),
        (status = 412, description = "Changed meanwhile by someone else", body = ProblemDoc, content_type = "application/problem+json"),
        (status = 422, description = "`unknown_action`, `action_not_available`, `action_not_allowed`, `comment_required`, `idempotency_key_reused`", body = ProblemDoc, content_type = "application/problem+json"),
    )
)]
#[post("/integration/applications/{id}/status")]
async fn status(
    integration: web::Data<Integration>,
    db: web::Data<Database>,
    clock: web::Data<SharedClock>,
    auth: ClientAuth,
    key: IdempotencyKey,
    id: Path<String>,
    body: Json<StatusReport>,
) -> Result<HttpResponse, ApiError> {
    let procedures = scopes::require(&auth, WRITE)?;
    let key = key.required()?;
    let (id, report) = (id.into_inner(), body.into_inner());
    if report.comment.as_ref().is_some_and(|c| c.chars().count() > 5_000) {
        return Err(ApiError::validation(vec![FieldError::at_pointer(
            "/comment",
            "too_long",
            Text::fixed("Höchstens 5.000 Zeichen.", "At most 5,000 characters."),
        )]));
    }
    let caller = format!("client:{}", auth.client_id);
    let route = format!("POST /api/v1/integration/applications/{id}/status");
    let claim = match idempotency::begin(&db, &clock, key, caller, route, &report).await? {
        Begun::Replay(response) => return Ok(response),
        Begun::Fresh(claim) => claim,
    };
    let view = integration
        .applications()
        .client_transition(
            &auth.client_id,
            &procedures,
            &id,
            &report.action,
            report.comment,
            idempotency::recorder(Some(&claim), StatusCode::OK),
        )
        .await?;
    ok(&view)
}

fn malformed(detail: &str) -> ApiError {
    ApiError::bad_request(
        "malformed_request",
        Text::fixed("Die Anfrage ist fehlerhaft.", "The request is malformed."),
    )
    .with_detail(Text::new(detail.to_owned(), detail.to_owned()))
}

/// The multipart body of a decision, with the document's hash (what the idempotency key is checked against).
#[derive(Serialize)]
struct DecisionFingerprint<'a> {
    result: &'a str,
    reasons: &'a str,
    sha256: String,
}

/// Reports a decision with its document, produced by the specialised procedure: `multipart/form-data` with
/// `result` (`approved`, `rejected`, `partially_approved`), `reasons` (text, optional unless the workflow asks
/// for one) and `document` (the PDF). The decision then goes to the Postfach with evidence like one made in
/// Amtsweg. Requires an `Idempotency-Key`.
#[utoipa::path(
    tag = "integration",
    security(("client" = [])),
    params(
        ("id" = String, Path, description = "Application id"),
        ("Idempotency-Key" = String, Header, description = "Required"),
    ),
    request_body(content = String, content_type = "multipart/form-data", description = "`result`, `reasons`, `document` (PDF)"),
    responses(
        (status = 200, description = "The application after the decision", body = ClientApplicationView),
        (status = 400, description = "`idempotency_key_required`, `malformed_request`", body = ProblemDoc, content_type = "application/problem+json"),
        (status = 403, description = "No `applications:write` scope", body = ProblemDoc, content_type = "application/problem+json"),
        (status = 404, description = "`application_not_found`", body = ProblemDoc, content_type = "application/problem+json"),
        (status = 409, description = "`idempotency_key_in_use`", body = ProblemDoc, content_type = "application/problem+json"),
        (status = 413, description = "The document is too large", body = ProblemDoc, content_type = "application/problem+json"),
        (status = 415, description = "The document is no PDF", body = ProblemDoc, content_type = "application/problem+json"),
        (status = 422, description = "`decision_not_available`, `not_allowed`, `comment_required`, `idempotency_key_reused`", body = ProblemDoc, content_type = "application/problem+json"),
    )
)]
#[post("/integration/applications/{id}/decision")]
#[allow(clippy::too_many_arguments, reason = "one extractor per part of the request")]
async fn decision(
    integration: web::Data<Integration>,
    db: web::Data<Database>,
    clock: web::Data<SharedClock>,
    auth: ClientAuth,
    key: IdempotencyKey,
    id: Path<String>,
    req: HttpRequest,
    payload: web::Payload,
) -> Result<HttpResponse, ApiError> {
    let procedures = scopes::require(&auth, WRITE)?;
    let key = key.required()?;
    let id = id.into_inner();
    let is_multipart = req
        .headers()
        .get(actix_web::http::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.to_ascii_lowercase().starts_with("multipart/form-data"));
    if !is_multipart {
        return Err(malformed("The body must be multipart/form-data."));
    }
    let limit = integration.files().settings().max_upload_bytes;
    let mut multipart = Multipart::new(req.headers(), payload.into_inner());
    let (mut result, mut reasons, mut document, mut name) =
        (String::new(), String::new(), Vec::new(), String::new());
    while let Some(field) = multipart.next().await {
        let mut field = field.map_err(|err| malformed(&err.to_string()))?;
        let field_name = field.name().unwrap_or_default().to_owned();
        if field_name == "document" {
            name = field
                .content_disposition()
                .and_then(|d| d.get_filename())
                .unwrap_or_default()
                .to_owned();
        }
        let mut bytes = Vec::new();
        while let Some(chunk) = field.next().await {
            let chunk = chunk.map_err(|err| malformed(&err.to_string()))?;
            let cap = if field_name == "document" {
                limit
            } else {
                20_000 * 4
            };
            if (bytes.len() + chunk.len()) as u64 > cap {
                return Err(ApiError::new(
                    StatusCode::PAYLOAD_TOO_LARGE,
                    "too_large",
                    Text::fixed("Die Anfrage ist zu groß.", "The request is too large."),
                ));
            }
            bytes.extend_from_slice(&chunk);
        }
        let text = || String::from_utf8(bytes.clone()).map_err(|_| malformed("Text fields must be UTF-8."));
        match field_name.as_str() {
            "result" => result = text()?,
            "reasons" => reasons = text()?,
            "document" => document = bytes,
            _ => {}
        }
    }
    if document.is_empty() {
        return Err(ApiError::validation(vec![FieldError::at_pointer(
            "/document",
            "required",
            Text::fixed(
                "Bitte den Bescheid als PDF beifügen.",
                "Please attach the decision as a PDF.",
            ),
        )]));
    }
    let fingerprint = DecisionFingerprint {
        result: &result,
        reasons: &reasons,
        sha256: hex::encode(sha2::Sha256::digest(&document)),
    };
    let caller = format!("client:{}", auth.client_id);
    let route = format!("POST /api/v1/integration/applications/{id}/decision");
    let claim = match idempotency::begin(&db, &clock, key, caller, route, &fingerprint).await? {
        Begun::Replay(response) => return Ok(response),
        Begun::Fresh(claim) => claim,
    };
    let view = integration
        .applications()
        .client_decision(
            &auth.client_id,
            &procedures,
            &id,
            ClientDecision {
                result,
                reasons,
                document: document.into(),
                name,
            },
            idempotency::recorder(Some(&claim), StatusCode::OK),
        )
        .await?;
    ok(&view)
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct FeedQuery {
    /// Items per page, 1–100 (default 20).
    #[param(minimum = 1, maximum = 100)]
    pub limit: Option<u32>,
    /// `next_cursor` of the previous page (absent: from the start of the feed).
    pub cursor: Option<String>,
    /// Only events of this type.
    #[serde(rename = "type")]
    #[param(rename = "type")]
    pub event_type: Option<String>,
}

/// A page of the event feed.
#[derive(Debug, Serialize, ToSchema)]
pub struct EventPage {
    pub items: Vec<SignedEvent>,
    /// Pass as `cursor` for the next page. Always present: the feed goes on, and an event that commits late gets
    /// a later position, so polling with the last cursor never skips one.
    pub next_cursor: String,
}

/// The events about applications of the client's procedures, in feed order, each signed (detached JWS over its
/// RFC 8785 form; keys at `/.well-known/seal-keys.json`).
#[utoipa::path(
    tag = "integration",
    security(("client" = [])),
    params(FeedQuery),
    responses(
        (status = 200, description = "A page of events", body = EventPage),
        (status = 400, description = "`invalid_query`", body = ProblemDoc, content_type = "application/problem+json"),
        (status = 403, description = "No `applications:read` scope", body = ProblemDoc, content_type = "application/problem+json"),
    )
)]
#[get("/integration/events")]
async fn feed(
    integration: web::Data<Integration>,
    auth: ClientAuth,
    query: Query<FeedQuery>,
) -> Result<HttpResponse, ApiError> {
    let procedures = scopes::require(&auth, READ)?;
    let query = query.into_inner();
    let page = PageQuery {
        limit: query.limit,
        cursor: query.cursor,
    }
    .parse()?;
    let after = cursor_position(&page)?;
    let limit = i64::try_from(page.limit).unwrap_or(100);
    let types = query.event_type.map(|t| vec![t]);
    let events = integration
        .db()
        .read(move |conn| {
            let last = amtsweg_events::last_position(conn)?;
            let events = amtsweg_events::read_about(conn, &procedures, after, limit, types.as_deref())?;
            Ok::<_, amtsweg_db::DbError>((events, last))
        })
        .await
        .map_err(db_error)?;
    let (events, last) = events;
    // A short page has seen every event up to the feed's end when it was read; a full one goes on after its last.
    let next = if events.len() < page.limit {
        events.last().map_or(last.max(after), |e| e.position().max(last))
    } else {
        events.last().map_or(after, amtsweg_events::CloudEvent::position)
    };
    let sealer = integration.sealer().clone();
    let items = events
        .into_iter()
        .map(|event| crate::feed::sign(sealer.as_ref(), event))
        .collect::<Result<Vec<_>, _>>()
        .map_err(ApiError::internal)?;
    ok(&EventPage {
        items,
        next_cursor: encode_cursor(&next.to_string()),
    })
}

/// Subscribes a target URL to events. The answer shows the signing secret once. Targets resolving to loopback,
/// private, link-local or other special addresses are refused unless the configuration allows them.
#[utoipa::path(
    tag = "integration",
    security(("client" = [])),
    params(("Idempotency-Key" = Option<String>, Header, description = "Optional")),
    request_body = NewSubscription,
    responses(
        (status = 201, description = "The subscription with its secret", body = SubscriptionView),
        (status = 403, description = "No `applications:read` scope", body = ProblemDoc, content_type = "application/problem+json"),
        (status = 409, description = "`too_many_subscriptions`", body = ProblemDoc, content_type = "application/problem+json"),
        (status = 422, description = "`invalid_url`, `target_not_allowed`, `procedure_not_in_scope`, …", body = ProblemDoc, content_type = "application/problem+json"),
    )
)]
#[post("/integration/subscriptions")]
async fn subscribe(
    integration: web::Data<Integration>,
    db: web::Data<Database>,
    clock: web::Data<SharedClock>,
    auth: ClientAuth,
    key: IdempotencyKey,
    body: Json<NewSubscription>,
) -> Result<HttpResponse, ApiError> {
    let readable = scopes::require(&auth, READ)?;
    let request = body.into_inner();
    let (url, scheme) = request.check(&readable)?;
    integration
        .targets()
        .check(&url)
        .await
        .map_err(|refused| webhooks::target_refused(&refused))?;
    let caller = format!("client:{}", auth.client_id);
    let claim = match idempotency::start(
        &db,
        &clock,
        key,
        caller,
        "POST /api/v1/integration/subscriptions".into(),
        &request,
    )
    .await?
    {
        Start::Replay(response) => return Ok(response),
        Start::Proceed(claim) => claim,
    };
    let record = idempotency::recorder_without_secret(claim.as_ref(), StatusCode::CREATED, "secret");
    let (client, now, integration2) = (auth.client_id.clone(), clock.now(), integration.clone());
    let view = integration
        .db()
        .write(move |conn| {
            let view = webhooks::create(conn, integration2.kek(), &client, &url, scheme, &request, now)?;
            record(conn, &view)?;
            Ok::<_, Failure>(view)
        })
        .await?;
    json_response(StatusCode::CREATED, &view)
}

/// The client's subscriptions.
#[utoipa::path(
    tag = "integration",
    security(("client" = [])),
    responses(
        (status = 200, description = "The subscriptions", body = Vec<SubscriptionView>),
        (status = 403, description = "No `applications:read` scope", body = ProblemDoc, content_type = "application/problem+json"),
    )
)]
#[get("/integration/subscriptions")]
async fn subscriptions(
    integration: web::Data<Integration>,
    auth: ClientAuth,
) -> Result<HttpResponse, ApiError> {
    scopes::require(&auth, READ)?;
    let client = auth.client_id.clone();
    ok(&integration
        .db()
        .read(move |conn| webhooks::list(conn, &client))
        .await
        .map_err(db_error)?)
}

fn subscription_not_found() -> ApiError {
    ApiError::not_found(
        "subscription_not_found",
        Text::fixed("Abonnement nicht gefunden.", "Subscription not found."),
    )
}

/// One subscription of the client.
#[utoipa::path(
    tag = "integration",
    security(("client" = [])),
    params(("id" = String, Path, description = "Subscription id")),
    responses(
        (status = 200, description = "The subscription", body = SubscriptionView),
        (status = 404, description = "`subscription_not_found`", body = ProblemDoc, content_type = "application/problem+json"),
    )
)]
#[get("/integration/subscriptions/{id}")]
async fn subscription(
    integration: web::Data<Integration>,
    auth: ClientAuth,
    id: Path<String>,
) -> Result<HttpResponse, ApiError> {
    let (client, id) = (auth.client_id.clone(), id.into_inner());
    let found = integration
        .db()
        .read(move |conn| webhooks::find(conn, Some(&client), &id))
        .await
        .map_err(db_error)?
        .ok_or_else(subscription_not_found)?;
    ok(&found.view())
}

/// Ends a subscription; deliveries still waiting are cancelled.
#[utoipa::path(
    tag = "integration",
    security(("client" = [])),
    params(("id" = String, Path, description = "Subscription id")),
    responses(
        (status = 204, description = "Ended"),
        (status = 404, description = "`subscription_not_found`", body = ProblemDoc, content_type = "application/problem+json"),
    )
)]
#[delete("/integration/subscriptions/{id}")]
async fn unsubscribe(
    integration: web::Data<Integration>,
    auth: ClientAuth,
    id: Path<String>,
) -> Result<HttpResponse, ApiError> {
    let (client, id, now) = (auth.client_id.clone(), id.into_inner(), integration.clock().now());
    let deleted = integration
        .db()
        .write(move |conn| webhooks::delete(conn, &client, &id, now))
        .await
        .map_err(db_error)?;
    if deleted {
        Ok(HttpResponse::NoContent().finish())
    } else {
        Err(subscription_not_found())
    }
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct LogQuery {
    /// Items per page, 1–100 (default 20).
    #[param(minimum = 1, maximum = 100)]
    pub limit: Option<u32>,
    /// `next_cursor` of the previous page.
    pub cursor: Option<String>,
    /// `pending`, `succeeded`, `dead` or `cancelled`.
    pub status: Option<String>,
}

impl LogQuery {
    fn checked(self) -> Result<(amtsweg_kernel::pagination::PageRequest, Option<String>), ApiError> {
        let page = PageQuery {
            limit: self.limit,
            cursor: self.cursor,
        }
        .parse()?;
        if let Some(wanted) = &self.status
            && !["pending", "succeeded", "dead", "cancelled"].contains(&wanted.as_str())
        {
            return Err(invalid_query(
                "status",
                "not_allowed",
                Text::fixed(
                    "Erlaubt sind pending, succeeded, dead und cancelled.",
                    "Allowed are pending, succeeded, dead and cancelled.",
                ),
            ));
        }
        Ok((page, self.status))
    }
}

async fn log_page(
    integration: &Integration,
    of_subscription: Option<String>,
    query: LogQuery,
) -> Result<Page<DeliveryView>, ApiError> {
    let (page, wanted) = query.checked()?;
    let limit = page.limit;
    let before = page.after.clone();
    let items = integration
        .db()
        .read(move |conn| {
            webhooks::log(
                conn,
                of_subscription.as_deref(),
                wanted.as_deref(),
                before.as_deref(),
                i64::try_from(limit).unwrap_or(100) + 1,
            )
        })
        .await
        .map_err(db_error)?;
    Ok(Page::from_overfetched(items, limit, |d| d.id.clone()))
}

/// The delivery log of a subscription, newest first: every delivery with its attempts and last outcome.
#[utoipa::path(
    tag = "integration",
    security(("client" = [])),
    params(("id" = String, Path, description = "Subscription id"), LogQuery),
    responses(
        (status = 200, description = "A page of deliveries", body = Page<DeliveryView>),
        (status = 400, description = "`invalid_query`", body = ProblemDoc, content_type = "application/problem+json"),
        (status = 404, description = "`subscription_not_found`", body = ProblemDoc, content_type = "application/problem+json"),
    )
)]
#[get("/integration/subscriptions/{id}/deliveries")]
async fn delivery_log(
    integration: web::Data<Integration>,
    auth: ClientAuth,
    id: Path<String>,
    query: Query<LogQuery>,
) -> Result<HttpResponse, ApiError> {
    let (client, id) = (auth.client_id.clone(), id.into_inner());
    let sid = id.clone();
    integration
        .db()
        .read(move |conn| webhooks::find(conn, Some(&client), &sid))
        .await
        .map_err(db_error)?
        .ok_or_else(subscription_not_found)?;
    ok(&log_page(&integration, Some(id), query.into_inner()).await?)
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ReplayRequest {
    /// Replay the events after this feed position (an event's `sequence`; 0 for all).
    pub after_sequence: i64,
}

#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct ReplayStarted {
    /// The job that queues the deliveries (visible to administrators under `/admin/jobs`).
    pub job_id: String,
    pub after_sequence: i64,
    /// The feed position the replay runs to (the end of the feed when it was asked for).
    pub until_sequence: i64,
}

async fn start_replay(
    integration: &Integration,
    client: Option<String>,
    id: String,
    request: ReplayRequest,
) -> Result<HttpResponse, ApiError> {
    if request.after_sequence < 0 {
        return Err(ApiError::validation(vec![FieldError::at_pointer(
            "/after_sequence",
            "out_of_range",
            Text::fixed("Eine Position ab 0.", "A position from 0."),
        )]));
    }
    let now = integration.clock().now();
    let after = request.after_sequence;
    let started = integration
        .db()
        .write(move |conn| {
            let Some(found) = webhooks::find(conn, client.as_deref(), &id)? else {
                return Err(Failure(subscription_not_found()));
            };
            if found.status != "active" {
                return Err(Failure(ApiError::new(
                    StatusCode::CONFLICT,
                    "subscription_not_active",
                    Text::fixed(
                        "Das Abonnement ist nicht aktiv.",
                        "The subscription is not active.",
                    ),
                )));
            }
            let (job_id, until) = crate::webhooks::delivery::start_replay(conn, &id, after, now)?;
            crate::audit(
                conn,
                client.as_deref().unwrap_or("admin"),
                "integration.replay_started",
                ("webhook_subscription", &id),
                now,
            )?;
            Ok::<_, Failure>(ReplayStarted {
                job_id,
                after_sequence: after,
                until_sequence: until,
            })
        })
        .await?;
    json_response(StatusCode::ACCEPTED, &started)
}

/// Delivers the subscription's events after a feed position again (e.g. after the receiver lost them, or
/// deliveries died). Receivers dedupe by event id.
#[utoipa::path(
    tag = "integration",
    security(("client" = [])),
    params(("id" = String, Path, description = "Subscription id")),
    request_body = ReplayRequest,
    responses(
        (status = 202, description = "The replay is queued", body = ReplayStarted),
        (status = 404, description = "`subscription_not_found`", body = ProblemDoc, content_type = "application/problem+json"),
        (status = 409, description = "`subscription_not_active`", body = ProblemDoc, content_type = "application/problem+json"),
        (status = 422, description = "Invalid position", body = ProblemDoc, content_type = "application/problem+json"),
    )
)]
#[post("/integration/subscriptions/{id}/replay")]
async fn replay(
    integration: web::Data<Integration>,
    auth: ClientAuth,
    id: Path<String>,
    body: Json<ReplayRequest>,
) -> Result<HttpResponse, ApiError> {
    start_replay(
        &integration,
        Some(auth.client_id.clone()),
        id.into_inner(),
        body.into_inner(),
    )
    .await
}

/// Webhook deliveries of every client, newest first — e.g. `?status=dead` for those whose attempts all failed.
#[utoipa::path(
    tag = "admin",
    security(("staff" = [])),
    params(LogQuery),
    responses(
        (status = 200, description = "A page of deliveries", body = Page<DeliveryView>),
        (status = 403, description = "Not a system administrator", body = ProblemDoc, content_type = "application/problem+json"),
    )
)]
#[get("/admin/integration/deliveries")]
async fn dead_deliveries(
    integration: web::Data<Integration>,
    auth: StaffAuth,
    query: Query<LogQuery>,
) -> Result<HttpResponse, ApiError> {
    auth.require_system_admin()?;
    ok(&log_page(&integration, None, query.into_inner()).await?)
}

/// Replays a client's subscription from a feed position (for an administrator helping a receiver).
#[utoipa::path(
    tag = "admin",
    security(("staff" = [])),
    params(("id" = String, Path, description = "Subscription id")),
    request_body = ReplayRequest,
    responses(
        (status = 202, description = "The replay is queued", body = ReplayStarted),
        (status = 403, description = "Not a system administrator", body = ProblemDoc, content_type = "application/problem+json"),
        (status = 404, description = "`subscription_not_found`", body = ProblemDoc, content_type = "application/problem+json"),
        (status = 409, description = "`subscription_not_active`", body = ProblemDoc, content_type = "application/problem+json"),
    )
)]
#[post("/admin/integration/subscriptions/{id}/replay")]
async fn admin_replay(
    integration: web::Data<Integration>,
    auth: StaffAuth,
    id: Path<String>,
    body: Json<ReplayRequest>,
) -> Result<HttpResponse, ApiError> {
    auth.require_system_admin()?;
    start_replay(&integration, None, id.into_inner(), body.into_inner()).await
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct StatisticsQuery {
    /// `json` (default) or `csv` (also chosen by `Accept: text/csv`).
    pub format: Option<String>,
}

/// Open data: per procedure and month, applications submitted, decided (by result) and withdrawn, with the
/// median and 90th percentile of the days to a decision. No personal data; counts from 1 to 4 are suppressed.
#[utoipa::path(
    tag = "statistics",
    params(StatisticsQuery),
    responses(
        (status = 200, description = "The statistics (JSON, or CSV with `format=csv`)", body = Statistics),
        (status = 400, description = "`invalid_query`", body = ProblemDoc, content_type = "application/problem+json"),
    )
)]
#[get("/statistics")]
async fn statistics(
    integration: web::Data<Integration>,
    query: Query<StatisticsQuery>,
    req: HttpRequest,
) -> Result<HttpResponse, ApiError> {
    let wants_csv = match query.into_inner().format.as_deref() {
        Some("csv") => true,
        Some("json") => false,
        None => req
            .headers()
            .get(actix_web::http::header::ACCEPT)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| v.contains("text/csv")),
        Some(_) => {
            return Err(invalid_query(
                "format",
                "not_allowed",
                Text::fixed("Erlaubt sind json und csv.", "Allowed are json and csv."),
            ));
        }
    };
    let published = match integration.statistics_cache().fresh() {
        Some(kept) => kept,
        None => {
            let figures = integration.applications().statistics().await.map_err(db_error)?;
            let published = Arc::new(crate::statistics::publish(
                figures,
                integration.clock().now().rfc3339(),
            ));
            integration.statistics_cache().keep(published.clone());
            published
        }
    };
    if wants_csv {
        return Ok(HttpResponse::Ok()
            .content_type("text/csv; charset=utf-8")
            .insert_header((CACHE_CONTROL, "public, max-age=300"))
            .body(crate::statistics::csv(&published)));
    }
    let mut response = ok(published.as_ref())?;
    response.headers_mut().insert(
        CACHE_CONTROL,
        actix_web::http::header::HeaderValue::from_static("public, max-age=300"),
    );
    Ok(response)
}
