//! Administration for system administrators: staff, API clients, signing keys.

use actix_web::http::StatusCode;
use actix_web::{HttpResponse, delete, get, post, web};
use amtsweg_audit::{Actor, ActorKind};
use amtsweg_auth::StaffAuth;
use amtsweg_db::Database;
use amtsweg_idempotency::{self as idempotency, IdempotencyKey, Start};
use amtsweg_kernel::http::{Json, Path, Query, json_response, ok};
use amtsweg_kernel::pagination::{Page, PageQuery};
use amtsweg_kernel::problem::ProblemDoc;
use amtsweg_kernel::{ApiError, Checked, Lang, SharedClock};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::service::{
    AccountService, ClientCreated, ClientSummary, NewStaffMember, StaffCreated, StaffRole, StaffSummary,
};

pub fn configure(cfg: &mut utoipa_actix_web::service_config::ServiceConfig) {
    cfg.service(create_staff)
        .service(list_staff)
        .service(create_client)
        .service(list_clients)
        .service(rotate_secret)
        .service(disable_client)
        .service(rotate_keys);
}

fn admin(auth: &StaffAuth) -> Result<Actor, ApiError> {
    auth.require_system_admin()?;
    Ok(Actor::new(
        ActorKind::Staff,
        &auth.account_id,
        auth.address.clone(),
    ))
}

#[derive(Deserialize, Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewStaff {
    email: String,
    name: String,
    #[serde(default)]
    #[schema(value_type = Lang)]
    preferred_language: Checked<Lang>,
    roles: Vec<StaffRole>,
}

/// Creates a staff account with roles scoped to organisational units. The initial password is shown once: a
/// replay of the same `Idempotency-Key` answers without it (`secret_already_shown`).
#[utoipa::path(
    tag = "admin",
    security(("staff" = [])),
    params(
        ("Idempotency-Key" = Option<String>, Header, description = "Optional; a retry with the same key and body gets the first answer again (`Idempotent-Replayed: true`)"),
    ),
    request_body = NewStaff,
    responses(
        (status = 201, description = "Created", body = StaffCreated),
        (status = 409, description = "`idempotency_key_in_use`: the first request with this key still runs", body = ProblemDoc, content_type = "application/problem+json"),
        (status = 403, description = "Not a system administrator", body = ProblemDoc, content_type = "application/problem+json"),
        (status = 409, description = "`staff_exists`", body = ProblemDoc, content_type = "application/problem+json"),
        (status = 422, description = "Invalid e-mail, role or unit", body = ProblemDoc, content_type = "application/problem+json"),
    )
)]
#[post("/admin/staff")]
async fn create_staff(
    service: web::Data<AccountService>,
    db: web::Data<Database>,
    clock: web::Data<SharedClock>,
    auth: StaffAuth,
    key: IdempotencyKey,
    body: Json<NewStaff>,
) -> Result<HttpResponse, ApiError> {
    let actor = admin(&auth)?;
    let body = body.into_inner();
    let caller = format!("staff:{}", auth.account_id);
    let claim =
        match idempotency::start(&db, &clock, key, caller, "POST /api/v1/admin/staff".into(), &body).await? {
            Start::Replay(response) => return Ok(response),
            Start::Proceed(claim) => claim,
        };
    let created = service
        .create_staff(
            actor,
            NewStaffMember {
                email: body.email,
                name: body.name,
                language: body.preferred_language,
                roles: body.roles,
                password: None,
            },
            idempotency::recorder_without_secret(claim.as_ref(), StatusCode::CREATED, "initial_password"),
        )
        .await?;
    json_response(StatusCode::CREATED, &created)
}

/// Staff accounts with their roles, by address.
#[utoipa::path(
    tag = "admin",
    security(("staff" = [])),
    params(PageQuery),
    responses((status = 200, description = "One page of staff", body = Page<StaffSummary>))
)]
#[get("/admin/staff")]
async fn list_staff(
    service: web::Data<AccountService>,
    auth: StaffAuth,
    query: Query<PageQuery>,
) -> Result<HttpResponse, ApiError> {
    admin(&auth)?;
    let page = query.0.parse()?;
    ok(&service.list_staff(page).await?)
}

#[derive(Deserialize, Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewClient {
    /// Name of the specialised procedure, e.g. `OK.VERKEHR Bewohnerparken`.
    name: String,
    /// `procedures:read`, `applications:read:{procedure}`, `applications:write:{procedure}`.
    scopes: Vec<String>,
}

/// Registers an API client of a specialised procedure. The secret is shown once: a replay of the same
/// `Idempotency-Key` answers without it (`secret_already_shown`).
#[utoipa::path(
    tag = "admin",
    security(("staff" = [])),
    params(
        ("Idempotency-Key" = Option<String>, Header, description = "Optional; a retry with the same key and body gets the first answer again (`Idempotent-Replayed: true`)"),
    ),
    request_body = NewClient,
    responses(
        (status = 201, description = "Created", body = ClientCreated),
        (status = 409, description = "`idempotency_key_in_use`: the first request with this key still runs", body = ProblemDoc, content_type = "application/problem+json"),
        (status = 422, description = "Invalid scope", body = ProblemDoc, content_type = "application/problem+json"),
    )
)]
#[post("/admin/clients")]
async fn create_client(
    service: web::Data<AccountService>,
    db: web::Data<Database>,
    clock: web::Data<SharedClock>,
    auth: StaffAuth,
    key: IdempotencyKey,
    body: Json<NewClient>,
) -> Result<HttpResponse, ApiError> {
    let actor = admin(&auth)?;
    let body = body.into_inner();
    let caller = format!("staff:{}", auth.account_id);
    let claim = match idempotency::start(
        &db,
        &clock,
        key,
        caller,
        "POST /api/v1/admin/clients".into(),
        &body,
    )
    .await?
    {
        Start::Replay(response) => return Ok(response),
        Start::Proceed(claim) => claim,
    };
    let record = idempotency::recorder_without_secret(claim.as_ref(), StatusCode::CREATED, "client_secret");
    let created = service
        .create_client(actor, &body.name, body.scopes, record)
        .await?;
    json_response(StatusCode::CREATED, &created)
}

/// API clients of specialised procedures.
#[utoipa::path(
    tag = "admin",
    security(("staff" = [])),
    params(PageQuery),
    responses((status = 200, description = "One page of clients", body = Page<ClientSummary>))
)]
#[get("/admin/clients")]
async fn list_clients(
    service: web::Data<AccountService>,
    auth: StaffAuth,
    query: Query<PageQuery>,
) -> Result<HttpResponse, ApiError> {
    admin(&auth)?;
    let page = query.0.parse()?;
    ok(&service.list_clients(page).await?)
}

/// Issues a new secret; the previous one stays valid for the configured overlap (default 24 hours).
#[utoipa::path(
    tag = "admin",
    security(("staff" = [])),
    params(("id" = String, Path, description = "client_id")),
    responses(
        (status = 200, description = "The new secret", body = ClientCreated),
        (status = 404, description = "No such (enabled) client", body = ProblemDoc, content_type = "application/problem+json"),
    )
)]
#[post("/admin/clients/{id}/secret")]
async fn rotate_secret(
    service: web::Data<AccountService>,
    auth: StaffAuth,
    id: Path<String>,
) -> Result<HttpResponse, ApiError> {
    let actor = admin(&auth)?;
    ok(&service.rotate_client_secret(actor, &id).await?)
}

/// Disables a client; its tokens stop working at once.
#[utoipa::path(
    tag = "admin",
    security(("staff" = [])),
    params(("id" = String, Path, description = "client_id")),
    responses((status = 204, description = "Disabled"), (status = 404, description = "No such client", body = ProblemDoc, content_type = "application/problem+json"))
)]
#[delete("/admin/clients/{id}")]
async fn disable_client(
    service: web::Data<AccountService>,
    auth: StaffAuth,
    id: Path<String>,
) -> Result<HttpResponse, ApiError> {
    let actor = admin(&auth)?;
    service.disable_client(actor, &id).await?;
    Ok(HttpResponse::NoContent().finish())
}

#[derive(Serialize, ToSchema)]
pub struct Rotated {
    /// Key id of the new signing key.
    kid: String,
}

/// Starts signing tokens with a new key. The old key stays published until every token it signed has expired.
#[utoipa::path(tag = "admin", security(("staff" = [])), responses((status = 200, description = "Rotated", body = Rotated)))]
#[post("/admin/keys/rotate")]
async fn rotate_keys(service: web::Data<AccountService>, auth: StaffAuth) -> Result<HttpResponse, ApiError> {
    let actor = admin(&auth)?;
    let kid = service.rotate_signing_key(actor).await?;
    ok(&Rotated { kid })
}
