//! Login for staff: like citizens, but with their own token audience, and TOTP is mandatory by default — a first
//! password login answers `totp_enrollment_required` with a short-lived token for setting it up.

use actix_web::{HttpRequest, HttpResponse, get, post, web};
use amtsweg_auth::StaffAuth;
use amtsweg_kernel::ApiError;
use amtsweg_kernel::http::{Json, ok};
use amtsweg_kernel::problem::ProblemDoc;
use secrecy::SecretString;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::auth::no_store;
use super::meta;
use crate::service::{AccountService, LoginRequest, Realm, SessionTokens, StaffRole, TotpEnrollment};

pub fn configure(cfg: &mut utoipa_actix_web::service_config::ServiceConfig) {
    cfg.service(staff_login)
        .service(staff_refresh)
        .service(staff_logout)
        .service(staff_totp)
        .service(staff_totp_confirm)
        .service(staff_me);
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct StaffLogin {
    email: String,
    password: String,
    totp_code: Option<String>,
}

/// Logs a member of staff in (password and TOTP code).
#[utoipa::path(
    tag = "staff",
    request_body = StaffLogin,
    responses(
        (status = 200, description = "Logged in; the token carries the staff roles", body = SessionTokens),
        (status = 401, description = "`login_failed`, `totp_required`, `totp_invalid`, or `totp_enrollment_required` with an `enrollment_token`", body = ProblemDoc, content_type = "application/problem+json"),
    )
)]
#[post("/staff/auth/login")]
async fn staff_login(
    service: web::Data<AccountService>,
    body: Json<StaffLogin>,
    req: HttpRequest,
) -> Result<HttpResponse, ApiError> {
    let body = body.into_inner();
    let tokens = service
        .login(
            Realm::Staff,
            LoginRequest {
                email: body.email,
                password: SecretString::from(body.password),
                second_factor: body.totp_code,
            },
            meta(&req),
        )
        .await?;
    no_store(ok(&tokens)?)
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct StaffRefresh {
    refresh_token: String,
}

/// Exchanges a staff refresh token (single use, reuse ends the session).
#[utoipa::path(
    tag = "staff",
    request_body = StaffRefresh,
    responses(
        (status = 200, description = "New tokens", body = SessionTokens),
        (status = 401, description = "`invalid_grant`", body = ProblemDoc, content_type = "application/problem+json"),
    )
)]
#[post("/staff/auth/refresh")]
async fn staff_refresh(
    service: web::Data<AccountService>,
    body: Json<StaffRefresh>,
    req: HttpRequest,
) -> Result<HttpResponse, ApiError> {
    no_store(ok(&service
        .refresh(Realm::Staff, &body.0.refresh_token, meta(&req))
        .await?)?)
}

/// Ends the staff session.
#[utoipa::path(tag = "staff", security(("staff" = [])), responses((status = 204, description = "Logged out")))]
#[post("/staff/auth/logout")]
async fn staff_logout(
    service: web::Data<AccountService>,
    auth: StaffAuth,
    req: HttpRequest,
) -> Result<HttpResponse, ApiError> {
    service
        .logout(Realm::Staff, &auth.account_id, &auth.session_id, meta(&req))
        .await?;
    Ok(HttpResponse::NoContent().finish())
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Enrollment {
    /// From the `totp_enrollment_required` answer of the login (valid 15 minutes).
    enrollment_token: String,
}

/// Starts TOTP set-up for staff with the enrolment token.
#[utoipa::path(
    tag = "staff",
    request_body = Enrollment,
    responses(
        (status = 200, description = "Scan the QR code, then confirm", body = TotpEnrollment),
        (status = 400, description = "Unknown or expired enrolment token", body = ProblemDoc, content_type = "application/problem+json"),
    )
)]
#[post("/staff/auth/totp")]
async fn staff_totp(
    service: web::Data<AccountService>,
    body: Json<Enrollment>,
) -> Result<HttpResponse, ApiError> {
    no_store(ok(&service.start_staff_totp(&body.0.enrollment_token).await?)?)
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct EnrollmentConfirm {
    enrollment_token: String,
    code: String,
}

#[derive(Serialize, ToSchema)]
pub struct StaffRecoveryCodes {
    recovery_codes: Vec<String>,
}

/// Confirms staff TOTP with a first code; then log in with password and code.
#[utoipa::path(
    tag = "staff",
    request_body = EnrollmentConfirm,
    responses(
        (status = 200, description = "Enabled", body = StaffRecoveryCodes),
        (status = 422, description = "Wrong code", body = ProblemDoc, content_type = "application/problem+json"),
    )
)]
#[post("/staff/auth/totp/confirm")]
async fn staff_totp_confirm(
    service: web::Data<AccountService>,
    body: Json<EnrollmentConfirm>,
    req: HttpRequest,
) -> Result<HttpResponse, ApiError> {
    let body = body.into_inner();
    let codes = service
        .confirm_staff_totp(&body.enrollment_token, &body.code, meta(&req))
        .await?;
    no_store(ok(&StaffRecoveryCodes {
        recovery_codes: codes,
    })?)
}

#[derive(Serialize, ToSchema)]
pub struct StaffMe {
    id: String,
    roles: Vec<StaffRole>,
}

/// The logged-in member of staff and their roles.
#[utoipa::path(
    tag = "staff",
    security(("staff" = [])),
    responses(
        (status = 200, description = "Who is logged in", body = StaffMe),
        (status = 401, description = "Not a staff token", body = ProblemDoc, content_type = "application/problem+json"),
    )
)]
#[get("/staff/me")]
async fn staff_me(auth: StaffAuth) -> Result<HttpResponse, ApiError> {
    ok(&StaffMe {
        id: auth.account_id,
        roles: auth
            .roles
            .into_iter()
            .map(|r| StaffRole {
                role: r.name,
                unit: r.unit,
            })
            .collect(),
    })
}
