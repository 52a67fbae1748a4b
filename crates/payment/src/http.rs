//! The routes the payment platform and the payer's browser reach without a token: notifications and the return
//! page. The citizen's and staff's payment routes check ownership in the module that owns the payment.

use actix_web::http::header::{CACHE_CONTROL, CONTENT_TYPE};
use actix_web::{HttpRequest, HttpResponse, get, post, web};
use amtsweg_auth::StaffAuth;
use amtsweg_kernel::http::{Json, Path, Query, json_response, ok};
use amtsweg_kernel::pagination::{Page, PageQuery};
use amtsweg_kernel::problem::ProblemDoc;
use amtsweg_kernel::{ApiError, FieldError, Text};
use serde::Deserialize;
use utoipa::IntoParams;

use crate::model::State;
use crate::service::{PaymentError, PaymentService, PaymentView};
use crate::staff::{NewRefund, OfflineReceipt, PaymentFilter, RefundView, ReportLine, Resolve, reach, staff};

pub fn configure(cfg: &mut utoipa_actix_web::service_config::ServiceConfig) {
    cfg.service(notification)
        .service(payer_returns)
        .service(staff_list)
        .service(staff_report)
        .service(staff_fetch)
        .service(offline_receipt)
        .service(resolution)
        .service(refunds);
}

/// A notification of the payment platform (ePayBL: form fields with the SHA-256 hash). A verified one makes the
/// service ask the platform for the payment's status at once; the notification's own content never settles a
/// payment. One that does not verify changes nothing and is logged.
#[utoipa::path(
    tag = "payments",
    params(("provider" = String, Path, description = "`epaybl`")),
    request_body(content = String, content_type = "application/x-www-form-urlencoded", description = "mandant, bewirtschafter, zvgid, kassenzeichen, tan, zvp, zahlverfahren, aktivierung, status, hash"),
    responses(
        (status = 200, description = "Taken (or ignored, for `status=notify`)"),
        (status = 400, description = "`notification_rejected`: malformed or not verified", body = ProblemDoc, content_type = "application/problem+json"),
        (status = 404, description = "`payment_provider_not_found`: not the configured provider", body = ProblemDoc, content_type = "application/problem+json"),
    )
)]
#[post("/payments/notifications/{provider}")]
async fn notification(
    service: web::Data<PaymentService>,
    provider: Path<String>,
    req: HttpRequest,
    body: web::Bytes,
) -> Result<HttpResponse, ApiError> {
    if provider.as_str() != service.provider_name() {
        return Err(ApiError::not_found(
            "payment_provider_not_found",
            amtsweg_kernel::Text::fixed(
                "Diese Zahlungsplattform ist nicht eingerichtet.",
                "This payment platform is not configured.",
            ),
        ));
    }
    let content_type = req
        .headers()
        .get(CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("application/x-www-form-urlencoded")
        .to_owned();
    match service.notified(&content_type, &body).await {
        Ok(_) => Ok(HttpResponse::Ok().finish()),
        // A provider that cannot be reached now is asked again by the reconciliation job.
        Err(PaymentError::Provider(_)) => Ok(HttpResponse::Ok().finish()),
        Err(err) => Err(err.into()),
    }
}

#[derive(Debug, Deserialize, IntoParams)]
struct Outcome {
    /// `success`, `error` or `cancel`: where the payer came from. Never taken as the result.
    #[allow(dead_code, reason = "documented; the status query decides")]
    outcome: Option<String>,
}

/// Where payers were sent back before the portal had its own page: kept for links already out, it sends the browser
/// on to the portal's payment page (`/zahlung/{id}`), which asks the platform for the state (the redirect alone
/// never counts as paid) and shows it.
#[utoipa::path(
    tag = "payments",
    params(("id" = String, Path, description = "Payment id"), Outcome),
    responses(
        (status = 303, description = "On to the portal's payment page"),
        (status = 400, description = "`invalid_query`", body = ProblemDoc, content_type = "application/problem+json"),
        (status = 404, description = "`payment_not_found`", body = ProblemDoc, content_type = "application/problem+json"),
    )
)]
#[get("/payments/{id}/return")]
async fn payer_returns(
    service: web::Data<PaymentService>,
    id: Path<String>,
    _outcome: Query<Outcome>,
) -> Result<HttpResponse, ApiError> {
    service.get(&id).await?;
    // The id was found, so it is one of ours; only its unreserved characters are kept in the address.
    let target: String = id
        .chars()
        .filter(|c| c.is_ascii_alphanumeric() || *c == '-' || *c == '_')
        .collect();
    Ok(HttpResponse::SeeOther()
        .insert_header((actix_web::http::header::LOCATION, format!("/zahlung/{target}")))
        .insert_header((CACHE_CONTROL, "no-store"))
        .finish())
}

fn bad_query(name: &str, code: &'static str, message: Text) -> ApiError {
    ApiError::bad_request(
        "invalid_query",
        Text::fixed("Ungültige Abfrageparameter.", "Invalid query parameters."),
    )
    .with_errors(vec![FieldError::at_parameter(name, code, message)])
}

#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
struct PaymentQuery {
    /// `initial`, `pending`, `paid`, `cancelled`, `failed`, `expired` or `review`.
    state: Option<String>,
    unit_id: Option<String>,
    kassenzeichen: Option<String>,
    /// The owner reference, e.g. `application:{id}`.
    owner: Option<String>,
    /// Items per page, 1–100 (default 20).
    limit: Option<u32>,
    /// `next_cursor` of the previous page.
    cursor: Option<String>,
}

/// Payments of the caller's units (cash office: all it holds the role for; a supervisor: the unit's), newest
/// first, with their history.
#[utoipa::path(
    tag = "payments",
    security(("staff" = [])),
    params(PaymentQuery),
    responses(
        (status = 200, description = "One page", body = Page<PaymentView>),
        (status = 400, description = "`invalid_query`", body = ProblemDoc, content_type = "application/problem+json"),
        (status = 403, description = "Neither cash office nor supervisor", body = ProblemDoc, content_type = "application/problem+json"),
    )
)]
#[get("/staff/payments")]
async fn staff_list(
    service: web::Data<PaymentService>,
    auth: StaffAuth,
    query: Query<PaymentQuery>,
) -> Result<HttpResponse, ApiError> {
    let units = reach(&auth)?;
    let query = query.into_inner();
    let page = PageQuery {
        limit: query.limit,
        cursor: query.cursor,
    }
    .parse()?;
    let state = match query.state.as_deref() {
        None => None,
        Some(text) => Some(State::parse(text).ok_or_else(|| {
            bad_query(
                "state",
                "unknown_state",
                Text::fixed(
                    "initial, pending, paid, cancelled, failed, expired oder review.",
                    "initial, pending, paid, cancelled, failed, expired or review.",
                ),
            )
        })?),
    };
    let filter = PaymentFilter {
        state,
        unit_id: query.unit_id,
        kassenzeichen: query.kassenzeichen,
        owner: query.owner,
    };
    ok(&service.list(units, filter, page).await?)
}

#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
struct ReportQuery {
    /// The day (Europe/Berlin) the payments were settled, `YYYY-MM-DD`.
    day: String,
    /// `csv` (German conventions: `;`, decimal comma, `dd.mm.yyyy`) or `json` (default).
    format: Option<String>,
}

/// The cash office's daily report: every booking line of the payments settled on a day, with Kassenzeichen,
/// Haushaltsstelle, Objektnummer, Buchungstext, amount and dates.
#[utoipa::path(
    tag = "payments",
    security(("staff" = [])),
    params(ReportQuery),
    responses(
        (status = 200, description = "The report", content((Vec<ReportLine> = "application/json"), (String = "text/csv"))),
        (status = 400, description = "`invalid_query`", body = ProblemDoc, content_type = "application/problem+json"),
        (status = 403, description = "Neither cash office nor supervisor", body = ProblemDoc, content_type = "application/problem+json"),
    )
)]
#[get("/staff/payments/report")]
async fn staff_report(
    service: web::Data<PaymentService>,
    auth: StaffAuth,
    query: Query<ReportQuery>,
) -> Result<HttpResponse, ApiError> {
    let units = reach(&auth)?;
    let query = query.into_inner();
    let day = chrono::NaiveDate::parse_from_str(&query.day, "%Y-%m-%d").map_err(|_| {
        bad_query(
            "day",
            "invalid_date",
            Text::fixed("Ein Datum wie 2026-11-30.", "A date such as 2026-11-30."),
        )
    })?;
    let lines = service.report(units, day).await?;
    match query.format.as_deref() {
        None | Some("json") => ok(&lines),
        Some("csv") => Ok(HttpResponse::Ok()
            .content_type("text/csv; charset=utf-8")
            .insert_header((
                actix_web::http::header::CONTENT_DISPOSITION,
                format!("attachment; filename=\"zahlungen-{day}.csv\""),
            ))
            .insert_header((CACHE_CONTROL, "no-store"))
            .body(crate::staff::csv(&lines))),
        Some(_) => Err(bad_query(
            "format",
            "unknown_format",
            Text::fixed("csv oder json.", "csv or json."),
        )),
    }
}

/// One payment of the caller's units, with its history.
#[utoipa::path(
    tag = "payments",
    security(("staff" = [])),
    params(("id" = String, Path, description = "Payment id")),
    responses(
        (status = 200, description = "The payment", body = PaymentView),
        (status = 403, description = "Neither cash office nor supervisor", body = ProblemDoc, content_type = "application/problem+json"),
        (status = 404, description = "`payment_not_found` (also outside the caller's units)", body = ProblemDoc, content_type = "application/problem+json"),
    )
)]
#[get("/staff/payments/{id}")]
async fn staff_fetch(
    service: web::Data<PaymentService>,
    auth: StaffAuth,
    id: Path<String>,
) -> Result<HttpResponse, ApiError> {
    let units = reach(&auth)?;
    ok(&service.staff_get(units, &id).await?)
}

/// Records a bank transfer quoting the Kassenzeichen as received (after the online attempt ended, or instead of
/// it): the payment is settled with the reason in its history.
#[utoipa::path(
    tag = "payments",
    security(("staff" = [])),
    params(("id" = String, Path, description = "Payment id")),
    request_body = OfflineReceipt,
    responses(
        (status = 200, description = "Settled", body = PaymentView),
        (status = 404, description = "`payment_not_found`", body = ProblemDoc, content_type = "application/problem+json"),
        (status = 409, description = "`payment_state`: already paid or under review", body = ProblemDoc, content_type = "application/problem+json"),
        (status = 422, description = "`payment_invalid`: `amount_mismatch`, `reason_required`", body = ProblemDoc, content_type = "application/problem+json"),
    )
)]
#[post("/staff/payments/{id}/offline-receipt")]
async fn offline_receipt(
    service: web::Data<PaymentService>,
    auth: StaffAuth,
    id: Path<String>,
    body: Json<OfflineReceipt>,
) -> Result<HttpResponse, ApiError> {
    let units = reach(&auth)?;
    ok(&service
        .record_offline(units, &id, body.into_inner(), staff(&auth))
        .await?)
}

/// Ends a review: the money is there (`paid`) or nothing valid was paid (`cancelled`), with the reason.
#[utoipa::path(
    tag = "payments",
    security(("staff" = [])),
    params(("id" = String, Path, description = "Payment id")),
    request_body = Resolve,
    responses(
        (status = 200, description = "Resolved", body = PaymentView),
        (status = 404, description = "`payment_not_found`", body = ProblemDoc, content_type = "application/problem+json"),
        (status = 409, description = "`payment_state`: not under review", body = ProblemDoc, content_type = "application/problem+json"),
        (status = 422, description = "`payment_invalid`: `reason_required`", body = ProblemDoc, content_type = "application/problem+json"),
    )
)]
#[post("/staff/payments/{id}/resolution")]
async fn resolution(
    service: web::Data<PaymentService>,
    auth: StaffAuth,
    id: Path<String>,
    body: Json<Resolve>,
) -> Result<HttpResponse, ApiError> {
    let units = reach(&auth)?;
    ok(&service
        .resolve(units, &id, body.into_inner(), staff(&auth))
        .await?)
}

/// Records a refund the cash office made by hand (the platform offers no refund API), never more than was paid
/// less what was refunded before.
#[utoipa::path(
    tag = "payments",
    security(("staff" = [])),
    params(("id" = String, Path, description = "Payment id")),
    request_body = NewRefund,
    responses(
        (status = 201, description = "Recorded", body = RefundView),
        (status = 404, description = "`payment_not_found`", body = ProblemDoc, content_type = "application/problem+json"),
        (status = 409, description = "`payment_state`: not paid", body = ProblemDoc, content_type = "application/problem+json"),
        (status = 412, description = "`refund_amount_available_mismatch`, with `available_cents`", body = ProblemDoc, content_type = "application/problem+json"),
        (status = 422, description = "`payment_invalid`: `refund_exceeds_available`, `reason_required`", body = ProblemDoc, content_type = "application/problem+json"),
    )
)]
#[post("/staff/payments/{id}/refunds")]
async fn refunds(
    service: web::Data<PaymentService>,
    auth: StaffAuth,
    id: Path<String>,
    body: Json<NewRefund>,
) -> Result<HttpResponse, ApiError> {
    let units = reach(&auth)?;
    let refund = service
        .refund(units, &id, body.into_inner(), staff(&auth))
        .await?;
    json_response(actix_web::http::StatusCode::CREATED, &refund)
}
