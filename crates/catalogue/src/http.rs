//! The public catalogue API (no login): list, read, validate a candidate payload, compute its fee.

use std::collections::BTreeMap;
use std::sync::Arc;

use actix_web::http::header::{ETAG, IF_NONE_MATCH, VARY};
use actix_web::{HttpRequest, HttpResponse, get, post, web};
use amtsweg_kernel::http::{Json, Path, Query, ok};
use amtsweg_kernel::pagination::{Page, PageQuery};
use amtsweg_kernel::problem::ProblemDoc;
use amtsweg_kernel::{ApiError, Lang, TrustLevel};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use utoipa::{IntoParams, ToSchema};

use crate::catalogue::{ListFilter, LoadedProcedure};
use crate::domain::{Booking, FeeRule, PaymentPolicy, Rounding, Widget};
use crate::error::CatalogueError;
use crate::service::CatalogueService;

pub fn configure(cfg: &mut utoipa_actix_web::service_config::ServiceConfig) {
    cfg.service(list_procedures)
        .service(get_procedure)
        .service(list_versions)
        .service(validate_payload)
        .service(compute_fee);
}

#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct ListQuery {
    /// Search words; all must occur in title, description, keywords, unit, id or LeiKa key (any case).
    q: Option<String>,
    /// Only procedures of this organisational unit (its id).
    unit: Option<String>,
    /// Only procedures that require exactly this trust level.
    trust_level: Option<TrustLevel>,
    /// Only procedures usable with this trust level (requiring it or less).
    max_trust_level: Option<TrustLevel>,
    /// Items per page, 1–100 (default 20).
    #[param(minimum = 1, maximum = 100)]
    limit: Option<u32>,
    /// `next_cursor` of the previous page.
    cursor: Option<String>,
    /// Language of texts, `de` (default) or `en`; overrides `Accept-Language`; other values mean German.
    #[expect(
        dead_code,
        reason = "the Lang extractor reads it; declared so it is documented and not refused"
    )]
    #[param(example = "en")]
    lang: Option<String>,
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct LangQuery {
    /// Language of texts, `de` (default) or `en`; overrides `Accept-Language`; other values mean German.
    #[expect(
        dead_code,
        reason = "the Lang extractor reads it; declared for the documentation"
    )]
    #[param(example = "en")]
    lang: Option<String>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct UnitDto {
    id: String,
    name: String,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct AuthorityDto {
    name: String,
    /// Amtlicher Gemeindeschlüssel.
    ags: String,
}

/// A procedure in a list.
#[derive(Debug, Serialize, ToSchema)]
pub struct ProcedureSummary {
    id: String,
    version: u32,
    leika_key: String,
    title: String,
    description: String,
    unit: UnitDto,
    authority: AuthorityDto,
    trust_level: TrustLevel,
    /// Whether the procedure charges a fee.
    has_fees: bool,
    payment: PaymentPolicy,
    /// Target processing time in days.
    target_days: u32,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct UiHintDto {
    /// JSON Pointer of the field in the payload.
    field: String,
    label: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    help: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    widget: Option<Widget>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct FormDto {
    /// JSON Schema (draft 2020-12) of the application payload.
    #[schema(value_type = Object)]
    schema: Value,
    /// Fields in the order a form shows them, with labels in the requested language.
    ui: Vec<UiHintDto>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct DocumentDto {
    #[serde(rename = "type")]
    kind: String,
    name: String,
    required: bool,
    media_types: Vec<String>,
    max_size_bytes: u64,
}

/// One rule of the fee schedule; which members are present depends on `rule`.
#[derive(Debug, Serialize, ToSchema)]
pub struct FeeRuleDto {
    /// `fixed`, `per_item`, `percentage` or `by_value`.
    rule: &'static str,
    description: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    amount_cents: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    field: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    free_items: Option<u32>,
    /// Decimal percentage, e.g. `"0.5"`.
    #[serde(skip_serializing_if = "Option::is_none")]
    percent: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    minimum_cents: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    maximum_cents: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    rounding: Option<Rounding>,
    #[serde(skip_serializing_if = "Option::is_none")]
    amounts_cents: Option<BTreeMap<String, i64>>,
    booking: Booking,
}

/// A procedure in full: the current version with its form, documents and fees.
#[derive(Debug, Serialize, ToSchema)]
pub struct ProcedureDetail {
    id: String,
    version: u32,
    /// SHA-256 of the definition; applications pin it together with `version`.
    content_hash: String,
    leika_key: String,
    title: String,
    description: String,
    keywords: Vec<String>,
    authority: AuthorityDto,
    unit: UnitDto,
    trust_level: TrustLevel,
    /// The application replaces a written form (§ 3a (2) VwVfG): it can only be submitted after a login with the
    /// eID card.
    written_form: bool,
    /// Where a statute orders a fiction of approval (§ 42a VwVfG): the statute and the period in months.
    #[serde(skip_serializing_if = "Option::is_none")]
    approval_fiction: Option<FictionDto>,
    form: FormDto,
    documents: Vec<DocumentDto>,
    fees: Vec<FeeRuleDto>,
    payment: PaymentPolicy,
    target_days: u32,
    retention_years: u32,
    workflow: String,
    /// Who processes the applications: `staff`, `client` (a specialised procedure) or `both`.
    processed_by: crate::domain::procedure::ProcessedBy,
    /// Form fields (JSON Pointer) the profile fills where the citizen consented to share the attribute named.
    #[serde(skip_serializing_if = "std::collections::BTreeMap::is_empty")]
    prefill: std::collections::BTreeMap<String, String>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct FictionDto {
    statute: String,
    months: u32,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct ValidationOk {
    valid: bool,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct FeeLineDto {
    description: String,
    amount_cents: i64,
    booking: Booking,
}

/// The fee a payload would cost.
#[derive(Debug, Serialize, ToSchema)]
pub struct FeeQuote {
    currency: &'static str,
    total_cents: i64,
    payment: PaymentPolicy,
    lines: Vec<FeeLineDto>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct VersionDto {
    version: u32,
    content_hash: String,
    /// When this version was first loaded.
    loaded_at: String,
    /// Whether this is the version new applications use.
    current: bool,
}

fn summary(p: &LoadedProcedure, lang: Lang) -> ProcedureSummary {
    let d = &p.procedure;
    ProcedureSummary {
        id: d.id.clone(),
        version: d.version,
        leika_key: d.leika_key.clone(),
        title: d.title.get(lang).to_owned(),
        description: d.description.get(lang).to_owned(),
        unit: UnitDto {
            id: d.unit.id.clone(),
            name: d.unit.name.get(lang).to_owned(),
        },
        authority: AuthorityDto {
            name: d.authority.name.get(lang).to_owned(),
            ags: d.authority.ags.clone(),
        },
        trust_level: d.trust_level,
        has_fees: !d.fees.is_empty(),
        payment: d.payment,
        target_days: d.processing.target_days,
    }
}

fn fee_rule(rule: &FeeRule, lang: Lang) -> FeeRuleDto {
    let mut dto = FeeRuleDto {
        rule: rule.kind(),
        description: rule.description().get(lang).to_owned(),
        amount_cents: None,
        field: rule.field().map(str::to_owned),
        free_items: None,
        percent: None,
        minimum_cents: None,
        maximum_cents: None,
        rounding: None,
        amounts_cents: None,
        booking: rule.booking().clone(),
    };
    match rule {
        FeeRule::Fixed { amount_cents, .. } => dto.amount_cents = Some(*amount_cents),
        FeeRule::PerItem {
            amount_cents,
            free_items,
            ..
        } => {
            dto.amount_cents = Some(*amount_cents);
            dto.free_items = Some(*free_items);
        }
        FeeRule::Percentage {
            percent,
            minimum_cents,
            maximum_cents,
            rounding,
            ..
        } => {
            dto.percent = Some(percent.normalize().to_string());
            dto.minimum_cents = *minimum_cents;
            dto.maximum_cents = *maximum_cents;
            dto.rounding = Some(*rounding);
        }
        FeeRule::ByValue { amounts_cents, .. } => dto.amounts_cents = Some(amounts_cents.clone()),
    }
    dto
}

fn detail(p: &LoadedProcedure, lang: Lang) -> ProcedureDetail {
    let d = &p.procedure;
    ProcedureDetail {
        id: d.id.clone(),
        version: d.version,
        content_hash: p.content_hash.clone(),
        leika_key: d.leika_key.clone(),
        title: d.title.get(lang).to_owned(),
        description: d.description.get(lang).to_owned(),
        keywords: d.keywords.clone(),
        authority: AuthorityDto {
            name: d.authority.name.get(lang).to_owned(),
            ags: d.authority.ags.clone(),
        },
        unit: UnitDto {
            id: d.unit.id.clone(),
            name: d.unit.name.get(lang).to_owned(),
        },
        trust_level: d.trust_level,
        form: FormDto {
            schema: d.form.schema.clone(),
            ui: d
                .form
                .ui
                .iter()
                .map(|hint| UiHintDto {
                    field: hint.field.clone(),
                    label: hint.label.get(lang).to_owned(),
                    help: hint.help.as_ref().map(|help| help.get(lang).to_owned()),
                    widget: hint.widget,
                })
                .collect(),
        },
        documents: d
            .documents
            .iter()
            .map(|doc| DocumentDto {
                kind: doc.kind.clone(),
                name: doc.name.get(lang).to_owned(),
                required: doc.required,
                media_types: doc.media_types.clone(),
                max_size_bytes: doc.max_size_bytes,
            })
            .collect(),
        fees: d.fees.iter().map(|rule| fee_rule(rule, lang)).collect(),
        payment: d.payment,
        target_days: d.processing.target_days,
        retention_years: d.retention.years,
        workflow: d.workflow.clone(),
        processed_by: d.processing.by,
        written_form: d.written_form,
        approval_fiction: d.approval_fiction.as_ref().map(|f| FictionDto {
            statute: f.statute.clone(),
            months: f.months,
        }),
        prefill: d.prefill.clone(),
    }
}

/// Lists the procedures citizens and companies can apply for, filtered and paginated, with texts in the
/// requested language.
#[utoipa::path(
    tag = "catalogue",
    params(ListQuery),
    responses(
        (status = 200, description = "One page of procedures, ordered by id", body = Page<ProcedureSummary>),
        (status = 400, description = "Invalid query parameter", body = ProblemDoc, content_type = "application/problem+json"),
    )
)]
#[get("/procedures")]
async fn list_procedures(
    service: web::Data<CatalogueService>,
    query: Query<ListQuery>,
    lang: Lang,
) -> Result<HttpResponse, ApiError> {
    let query = query.into_inner();
    let page = PageQuery {
        limit: query.limit,
        cursor: query.cursor,
    }
    .parse()?;
    let filter = ListFilter {
        text: query.q,
        unit: query.unit,
        trust_level: query.trust_level,
        max_trust_level: query.max_trust_level,
    };
    let found = service.catalogue().list(&filter, &page);
    let page = Page {
        items: found.items.iter().map(|p| summary(p, lang)).collect(),
        next_cursor: found.next_cursor,
    };
    ok(&page)
}

fn find(service: &CatalogueService, id: &str) -> Result<Arc<LoadedProcedure>, ApiError> {
    service
        .catalogue()
        .get(id)
        .ok_or_else(|| CatalogueError::NotFound(id.to_owned()).into())
}

/// The current version of a procedure in full, including the JSON Schema of its form and the UI hints. Answers
/// 304 to a matching `If-None-Match`.
#[utoipa::path(
    tag = "catalogue",
    params(("id" = String, Path, description = "Procedure id (slug)"), LangQuery),
    responses(
        (status = 200, description = "The procedure", body = ProcedureDetail,
            headers(("ETag" = String, description = "Changes with version and language"))),
        (status = 304, description = "Unchanged since the ETag given in If-None-Match"),
        (status = 404, description = "No such procedure", body = ProblemDoc, content_type = "application/problem+json"),
    )
)]
#[get("/procedures/{id}")]
async fn get_procedure(
    service: web::Data<CatalogueService>,
    id: Path<String>,
    lang: Lang,
    req: HttpRequest,
) -> Result<HttpResponse, ApiError> {
    let procedure = find(&service, &id)?;
    let etag = format!("\"{}-{}\"", &procedure.content_hash[..16], lang.code());
    let unchanged = req
        .headers()
        .get(IF_NONE_MATCH)
        .and_then(|value| value.to_str().ok())
        .is_some_and(|value| {
            value
                .split(',')
                .any(|tag| tag.trim() == etag || tag.trim() == "*")
        });
    if unchanged {
        return Ok(HttpResponse::NotModified().insert_header((ETAG, etag)).finish());
    }
    let mut response = ok(&detail(&procedure, lang))?;
    let headers = response.headers_mut();
    if let Ok(value) = etag.parse() {
        headers.insert(ETAG, value);
    }
    headers.insert(
        VARY,
        actix_web::http::header::HeaderValue::from_static("Accept-Language"),
    );
    Ok(response)
}

/// Every version of a procedure the service has loaded, newest first. Applications record the version they were
/// made under; this shows which versions exist.
#[utoipa::path(
    tag = "catalogue",
    params(("id" = String, Path, description = "Procedure id (slug)")),
    responses(
        (status = 200, description = "Recorded versions", body = Vec<VersionDto>),
        (status = 404, description = "No such procedure", body = ProblemDoc, content_type = "application/problem+json"),
        (status = 503, description = "Database unavailable", body = ProblemDoc, content_type = "application/problem+json"),
    )
)]
#[get("/procedures/{id}/versions")]
async fn list_versions(
    service: web::Data<CatalogueService>,
    id: Path<String>,
) -> Result<HttpResponse, ApiError> {
    let current = find(&service, &id)?;
    let records = service.versions(&current.procedure.id).await?;
    let versions: Vec<VersionDto> = records
        .into_iter()
        .map(|record| VersionDto {
            version: u32::try_from(record.version).unwrap_or_default(),
            current: record.content_hash == current.content_hash,
            content_hash: record.content_hash,
            loaded_at: record.loaded_at.rfc3339(),
        })
        .collect();
    ok(&versions)
}

/// Checks a candidate application payload against the procedure's form without storing anything. Every
/// violation is listed with its JSON Pointer into the payload and a message in the requested language.
#[utoipa::path(
    tag = "catalogue",
    params(("id" = String, Path, description = "Procedure id (slug)"), LangQuery),
    request_body(content = Object, description = "The application payload as the form's JSON Schema describes it"),
    responses(
        (status = 200, description = "The payload is valid", body = ValidationOk),
        (status = 400, description = "Not JSON", body = ProblemDoc, content_type = "application/problem+json"),
        (status = 404, description = "No such procedure", body = ProblemDoc, content_type = "application/problem+json"),
        (status = 413, description = "Body too large", body = ProblemDoc, content_type = "application/problem+json"),
        (status = 415, description = "Not application/json", body = ProblemDoc, content_type = "application/problem+json"),
        (status = 422, description = "Every violation of the form", body = ProblemDoc, content_type = "application/problem+json"),
    )
)]
#[post("/procedures/{id}/validate")]
async fn validate_payload(
    service: web::Data<CatalogueService>,
    id: Path<String>,
    payload: Json<Value>,
) -> Result<HttpResponse, ApiError> {
    let procedure = find(&service, &id)?;
    let violations = procedure.violations(&payload.0);
    if !violations.is_empty() {
        return Err(CatalogueError::Invalid(violations).into());
    }
    ok(&ValidationOk { valid: true })
}

/// The fee a candidate payload would cost: the total in cents and one line per applicable rule with its ePayBL
/// booking data. The payload must satisfy the form first.
#[utoipa::path(
    tag = "catalogue",
    params(("id" = String, Path, description = "Procedure id (slug)"), LangQuery),
    request_body(content = Object, description = "The application payload as the form's JSON Schema describes it"),
    responses(
        (status = 200, description = "The fee", body = FeeQuote),
        (status = 400, description = "Not JSON", body = ProblemDoc, content_type = "application/problem+json"),
        (status = 404, description = "No such procedure", body = ProblemDoc, content_type = "application/problem+json"),
        (status = 415, description = "Not application/json", body = ProblemDoc, content_type = "application/problem+json"),
        (status = 422, description = "The payload violates the form", body = ProblemDoc, content_type = "application/problem+json"),
    )
)]
#[post("/procedures/{id}/fee")]
async fn compute_fee(
    service: web::Data<CatalogueService>,
    id: Path<String>,
    payload: Json<Value>,
    lang: Lang,
) -> Result<HttpResponse, ApiError> {
    let procedure = find(&service, &id)?;
    let violations = procedure.violations(&payload.0);
    if !violations.is_empty() {
        return Err(CatalogueError::Invalid(violations).into());
    }
    let assessment = procedure.assess_fee(&payload.0).map_err(CatalogueError::from)?;
    let quote = FeeQuote {
        currency: "EUR",
        total_cents: assessment.total.get(),
        payment: procedure.procedure.payment,
        lines: assessment
            .lines
            .into_iter()
            .map(|line| FeeLineDto {
                description: line.description.get(lang).to_owned(),
                amount_cents: line.amount.get(),
                booking: line.booking,
            })
            .collect(),
    };
    ok(&quote)
}
