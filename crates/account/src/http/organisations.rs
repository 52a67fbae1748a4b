//! Organisations the caller acts for, and invitations into them: a representative invites an address, the
//! invited person accepts or declines in their own account. Only members see an organisation; only
//! representatives see and manage its invitations.

use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse, delete, get, post, web};
use amtsweg_auth::CitizenAuth;
use amtsweg_db::Database;
use amtsweg_idempotency::{self as idempotency, IdempotencyKey, Start};
use amtsweg_kernel::http::{Json, Path, Query, json_response, ok};
use amtsweg_kernel::pagination::{Page, PageQuery};
use amtsweg_kernel::problem::ProblemDoc;
use amtsweg_kernel::{ApiError, SharedClock};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::meta;
use crate::service::{AccountService, OrganisationView, ReceivedInvitation, SentInvitation};

pub fn configure(cfg: &mut utoipa_actix_web::service_config::ServiceConfig) {
    cfg.service(list_organisations)
        .service(create_organisation)
        .service(get_organisation)
        .service(invite)
        .service(list_sent)
        .service(withdraw)
        .service(list_received)
        .service(accept)
        .service(decline);
}

/// Organisations the caller acts for.
#[utoipa::path(
    tag = "organisations",
    security(("citizen" = [])),
    responses((status = 200, description = "Organisations", body = Vec<OrganisationView>))
)]
#[get("/organisations")]
async fn list_organisations(
    service: web::Data<AccountService>,
    auth: CitizenAuth,
) -> Result<HttpResponse, ApiError> {
    ok(&service.organisations_of(&auth.account_id).await?)
}

#[derive(Deserialize, Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewOrganisation {
    name: String,
    /// Commercial or association register number, e.g. `HRB 12345`.
    register_number: Option<String>,
}

/// Creates an organisation account (company, association); the caller becomes its representative.
#[utoipa::path(
    tag = "organisations",
    security(("citizen" = [])),
    params(
        ("Idempotency-Key" = Option<String>, Header, description = "Optional; a retry with the same key and body gets the first answer again (`Idempotent-Replayed: true`)"),
    ),
    request_body = NewOrganisation,
    responses(
        (status = 201, description = "Created", body = OrganisationView),
        (status = 409, description = "`idempotency_key_in_use`: the first request with this key still runs", body = ProblemDoc, content_type = "application/problem+json"),
        (status = 422, description = "Invalid name or register number", body = ProblemDoc, content_type = "application/problem+json"),
    )
)]
#[post("/organisations")]
async fn create_organisation(
    service: web::Data<AccountService>,
    db: web::Data<Database>,
    clock: web::Data<SharedClock>,
    auth: CitizenAuth,
    key: IdempotencyKey,
    body: Json<NewOrganisation>,
    req: HttpRequest,
) -> Result<HttpResponse, ApiError> {
    let body = body.into_inner();
    let caller = format!("citizen:{}", auth.account_id);
    let claim = match idempotency::start(
        &db,
        &clock,
        key,
        caller,
        "POST /api/v1/organisations".into(),
        &body,
    )
    .await?
    {
        Start::Replay(response) => return Ok(response),
        Start::Proceed(claim) => claim,
    };
    let created = service
        .create_organisation(
            &auth.account_id,
            &body.name,
            body.register_number,
            meta(&req),
            idempotency::recorder(claim.as_ref(), StatusCode::CREATED),
        )
        .await?;
    json_response(StatusCode::CREATED, &created)
}

/// One organisation with its members; only members see it.
#[utoipa::path(
    tag = "organisations",
    security(("citizen" = [])),
    params(("id" = String, Path, description = "Organisation id")),
    responses(
        (status = 200, description = "The organisation", body = OrganisationView),
        (status = 404, description = "Not found or not a member", body = ProblemDoc, content_type = "application/problem+json"),
    )
)]
#[get("/organisations/{id}")]
async fn get_organisation(
    service: web::Data<AccountService>,
    auth: CitizenAuth,
    id: Path<String>,
) -> Result<HttpResponse, ApiError> {
    ok(&service.organisation(&auth.account_id, &id).await?)
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewInvitation {
    /// The address of the person to invite.
    email: String,
    /// `member` (default) or `representative`.
    #[serde(default = "member")]
    role: String,
}

fn member() -> String {
    "member".into()
}

/// Invites a person by e-mail address. The answer is 202 whether or not an account has that address; an existing
/// account is notified (without any text of the inviter's) and sees the invitation under `/me/invitations`, an
/// unknown address gets nothing. Inviting the same address again renews the invitation. Rate-limited per client
/// address like registration; at most 100 invitations are open per organisation.
#[utoipa::path(
    tag = "organisations",
    security(("citizen" = [])),
    params(("id" = String, Path, description = "Organisation id")),
    request_body = NewInvitation,
    responses(
        (status = 202, description = "Invitation recorded"),
        (status = 403, description = "The caller is not a representative", body = ProblemDoc, content_type = "application/problem+json"),
        (status = 404, description = "Not found or not a member", body = ProblemDoc, content_type = "application/problem+json"),
        (status = 409, description = "`too_many_invitations`", body = ProblemDoc, content_type = "application/problem+json"),
        (status = 422, description = "Invalid address or role", body = ProblemDoc, content_type = "application/problem+json"),
        (status = 429, description = "Too many requests from this address", body = ProblemDoc, content_type = "application/problem+json"),
    )
)]
#[post("/organisations/{id}/invitations")]
async fn invite(
    service: web::Data<AccountService>,
    auth: CitizenAuth,
    id: Path<String>,
    body: Json<NewInvitation>,
    req: HttpRequest,
) -> Result<HttpResponse, ApiError> {
    let body = body.into_inner();
    service
        .invite(&auth.account_id, &id, &body.email, &body.role, meta(&req))
        .await?;
    Ok(HttpResponse::Accepted().finish())
}

/// The organisation's open invitations, oldest first; for representatives.
#[utoipa::path(
    tag = "organisations",
    security(("citizen" = [])),
    params(("id" = String, Path, description = "Organisation id"), PageQuery),
    responses(
        (status = 200, description = "One page of open invitations", body = Page<SentInvitation>),
        (status = 403, description = "The caller is not a representative", body = ProblemDoc, content_type = "application/problem+json"),
        (status = 404, description = "Not found or not a member", body = ProblemDoc, content_type = "application/problem+json"),
    )
)]
#[get("/organisations/{id}/invitations")]
async fn list_sent(
    service: web::Data<AccountService>,
    auth: CitizenAuth,
    id: Path<String>,
    query: Query<PageQuery>,
) -> Result<HttpResponse, ApiError> {
    let page = query.0.parse()?;
    ok(&service.sent_invitations(&auth.account_id, &id, page).await?)
}

/// Withdraws an open invitation.
#[utoipa::path(
    tag = "organisations",
    security(("citizen" = [])),
    params(
        ("id" = String, Path, description = "Organisation id"),
        ("invitation_id" = String, Path, description = "Invitation id"),
    ),
    responses(
        (status = 204, description = "Withdrawn"),
        (status = 403, description = "The caller is not a representative", body = ProblemDoc, content_type = "application/problem+json"),
        (status = 404, description = "No open invitation of this organisation with this id", body = ProblemDoc, content_type = "application/problem+json"),
    )
)]
#[delete("/organisations/{id}/invitations/{invitation_id}")]
async fn withdraw(
    service: web::Data<AccountService>,
    auth: CitizenAuth,
    path: Path<(String, String)>,
    req: HttpRequest,
) -> Result<HttpResponse, ApiError> {
    let (organisation, invitation) = path.into_inner();
    service
        .withdraw_invitation(&auth.account_id, &organisation, &invitation, meta(&req))
        .await?;
    Ok(HttpResponse::NoContent().finish())
}

/// Open invitations to the caller's verified login address, oldest first.
#[utoipa::path(
    tag = "organisations",
    security(("citizen" = [])),
    params(PageQuery),
    responses((status = 200, description = "One page of open invitations", body = Page<ReceivedInvitation>))
)]
#[get("/me/invitations")]
async fn list_received(
    service: web::Data<AccountService>,
    auth: CitizenAuth,
    query: Query<PageQuery>,
) -> Result<HttpResponse, ApiError> {
    let page = query.0.parse()?;
    ok(&service.received_invitations(&auth.account_id, page).await?)
}

/// Accepts an invitation: the caller becomes a member of the organisation in the invited role.
#[utoipa::path(
    tag = "organisations",
    security(("citizen" = [])),
    params(("id" = String, Path, description = "Invitation id")),
    responses(
        (status = 200, description = "The organisation joined", body = OrganisationView),
        (status = 404, description = "No open invitation to the caller with this id", body = ProblemDoc, content_type = "application/problem+json"),
    )
)]
#[post("/me/invitations/{id}/accept")]
async fn accept(
    service: web::Data<AccountService>,
    auth: CitizenAuth,
    id: Path<String>,
    req: HttpRequest,
) -> Result<HttpResponse, ApiError> {
    ok(&service
        .accept_invitation(&auth.account_id, &id, meta(&req))
        .await?)
}

/// Declines an invitation.
#[utoipa::path(
    tag = "organisations",
    security(("citizen" = [])),
    params(("id" = String, Path, description = "Invitation id")),
    responses(
        (status = 204, description = "Declined"),
        (status = 404, description = "No open invitation to the caller with this id", body = ProblemDoc, content_type = "application/problem+json"),
    )
)]
#[post("/me/invitations/{id}/decline")]
async fn decline(
    service: web::Data<AccountService>,
    auth: CitizenAuth,
    id: Path<String>,
    req: HttpRequest,
) -> Result<HttpResponse, ApiError> {
    service
        .decline_invitation(&auth.account_id, &id, meta(&req))
        .await?;
    Ok(HttpResponse::NoContent().finish())
}
