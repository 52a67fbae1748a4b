//! Registration, login and sessions of citizens (no token needed, except for logout and re-authentication).

use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse, post, web};
use amtsweg_auth::CitizenAuth;
use amtsweg_kernel::http::{Json, json_response, ok};
use amtsweg_kernel::problem::ProblemDoc;
use amtsweg_kernel::{ApiError, Checked, Lang};
use secrecy::SecretString;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::meta;
use crate::service::{AccountService, EidStart, LoginRequest, Realm, Registration, SessionTokens};

pub fn configure(cfg: &mut utoipa_actix_web::service_config::ServiceConfig) {
    cfg.service(register)
        .service(verify_email)
        .service(login)
        .service(refresh)
        .service(logout)
        .service(reauthenticate)
        .service(password_reset)
        .service(password_reset_confirm)
        .service(eid_start)
        .service(eid_callback);
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RegisterRequest {
    #[schema(min_length = 3, max_length = 254, example = "erika.mustermann@example.de")]
    email: String,
    /// 8–128 characters; refused when easy to guess.
    #[schema(format = Password, min_length = 8, max_length = 128)]
    password: String,
    /// How the person wants to be addressed.
    #[schema(min_length = 1, max_length = 200)]
    name: String,
    /// `de` (default) or `en`.
    #[serde(default)]
    #[schema(value_type = Lang)]
    preferred_language: Checked<Lang>,
}

#[derive(Serialize, ToSchema)]
pub struct Accepted {
    /// What happens next.
    status: &'static str,
}

/// Registers a citizen account. The answer is the same whether or not the address is already registered
/// (202, a verification mail is on its way — or, to an existing owner, a notice); the account can log in once the
/// address is verified.
#[utoipa::path(
    tag = "accounts",
    request_body = RegisterRequest,
    responses(
        (status = 202, description = "Verification mail queued", body = Accepted),
        (status = 422, description = "Invalid e-mail, name, language or a weak password", body = ProblemDoc, content_type = "application/problem+json"),
        (status = 429, description = "Too many requests from this address", body = ProblemDoc, content_type = "application/problem+json"),
    )
)]
#[post("/accounts")]
async fn register(
    service: web::Data<AccountService>,
    body: Json<RegisterRequest>,
    req: HttpRequest,
) -> Result<HttpResponse, ApiError> {
    let body = body.into_inner();
    service
        .register(
            Registration {
                email: body.email,
                password: SecretString::from(body.password),
                name: body.name,
                preferred_language: body.preferred_language,
            },
            meta(&req),
        )
        .await?;
    json_response(
        StatusCode::ACCEPTED,
        &Accepted {
            status: "verification_sent",
        },
    )
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct TokenRequest {
    /// The code from the mail (also the `token` parameter of its link).
    token: String,
}

#[derive(Serialize, ToSchema)]
pub struct Done {
    status: &'static str,
}

/// Confirms the e-mail address with the single-use code from the verification mail (valid 24 hours).
#[utoipa::path(
    tag = "accounts",
    request_body = TokenRequest,
    responses(
        (status = 200, description = "Verified; the account can log in", body = Done),
        (status = 400, description = "Unknown, used or expired code", body = ProblemDoc, content_type = "application/problem+json"),
    )
)]
#[post("/accounts/verify-email")]
async fn verify_email(
    service: web::Data<AccountService>,
    body: Json<TokenRequest>,
    req: HttpRequest,
) -> Result<HttpResponse, ApiError> {
    service.verify_email(&body.0.token, meta(&req)).await?;
    ok(&Done { status: "verified" })
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct LoginBody {
    email: String,
    #[schema(format = Password)]
    password: String,
    /// The current code of the authenticator app, or a recovery code; required once TOTP is set up.
    totp_code: Option<String>,
}

/// Logs a citizen in. Password alone reaches trust level `basic`, with a TOTP code `substantial` (configurable).
/// Repeated failures delay further attempts progressively (never a permanent lock-out); during a delay even the
/// right password gets the same generic error.
#[utoipa::path(
    tag = "accounts",
    request_body = LoginBody,
    responses(
        (status = 200, description = "Logged in", body = SessionTokens),
        (status = 401, description = "`login_failed`, `totp_required` or `totp_invalid`", body = ProblemDoc, content_type = "application/problem+json"),
        (status = 403, description = "`email_not_verified`", body = ProblemDoc, content_type = "application/problem+json"),
        (status = 429, description = "Too many requests from this address", body = ProblemDoc, content_type = "application/problem+json"),
        (status = 503, description = "`overloaded`: try again in a moment", body = ProblemDoc, content_type = "application/problem+json"),
    )
)]
#[post("/auth/login")]
async fn login(
    service: web::Data<AccountService>,
    body: Json<LoginBody>,
    req: HttpRequest,
) -> Result<HttpResponse, ApiError> {
    let body = body.into_inner();
    let tokens = service
        .login(
            Realm::Citizen,
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

pub(super) fn no_store(mut response: HttpResponse) -> Result<HttpResponse, ApiError> {
    response.headers_mut().insert(
        actix_web::http::header::CACHE_CONTROL,
        actix_web::http::header::HeaderValue::from_static("no-store"),
    );
    Ok(response)
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RefreshBody {
    refresh_token: String,
}

/// Exchanges a refresh token for new tokens. Each refresh token works once; presenting a used one again ends the
/// whole session (it was stolen).
#[utoipa::path(
    tag = "accounts",
    request_body = RefreshBody,
    responses(
        (status = 200, description = "New tokens", body = SessionTokens),
        (status = 401, description = "`invalid_grant`: unknown, used, expired or revoked", body = ProblemDoc, content_type = "application/problem+json"),
    )
)]
#[post("/auth/refresh")]
async fn refresh(
    service: web::Data<AccountService>,
    body: Json<RefreshBody>,
    req: HttpRequest,
) -> Result<HttpResponse, ApiError> {
    no_store(ok(&service
        .refresh(Realm::Citizen, &body.0.refresh_token, meta(&req))
        .await?)?)
}

/// Ends the current session: its access and refresh tokens stop working at once.
#[utoipa::path(
    tag = "accounts",
    security(("citizen" = [])),
    responses(
        (status = 204, description = "Logged out"),
        (status = 401, description = "Not logged in", body = ProblemDoc, content_type = "application/problem+json"),
    )
)]
#[post("/auth/logout")]
async fn logout(
    service: web::Data<AccountService>,
    auth: CitizenAuth,
    req: HttpRequest,
) -> Result<HttpResponse, ApiError> {
    service
        .logout(Realm::Citizen, &auth.account_id, &auth.session_id, meta(&req))
        .await?;
    Ok(HttpResponse::NoContent().finish())
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ReauthenticateBody {
    password: Option<String>,
    totp_code: Option<String>,
}

/// Proves the person again within the session — the step-up after an `insufficient_user_authentication` answer.
/// A TOTP code raises the session to `substantial`; any proof renews the authentication time that sensitive actions
/// (export, delete, disabling 2FA) require to be under 10 minutes old.
#[utoipa::path(
    tag = "accounts",
    security(("citizen" = [])),
    request_body = ReauthenticateBody,
    responses(
        (status = 200, description = "New tokens for the stepped-up session", body = SessionTokens),
        (status = 401, description = "`login_failed` or `totp_invalid`", body = ProblemDoc, content_type = "application/problem+json"),
        (status = 422, description = "Neither password nor code given", body = ProblemDoc, content_type = "application/problem+json"),
    )
)]
#[post("/auth/reauthenticate")]
async fn reauthenticate(
    service: web::Data<AccountService>,
    auth: CitizenAuth,
    body: Json<ReauthenticateBody>,
    req: HttpRequest,
) -> Result<HttpResponse, ApiError> {
    let body = body.into_inner();
    let tokens = service
        .reauthenticate(
            Realm::Citizen,
            &auth.account_id,
            &auth.session_id,
            body.password.map(SecretString::from),
            body.totp_code,
            meta(&req),
        )
        .await?;
    no_store(ok(&tokens)?)
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ResetRequest {
    #[schema(min_length = 3, max_length = 254)]
    email: String,
}

/// Sends a password reset link (valid 30 minutes) if the address has an account. The answer never says whether
/// it has.
#[utoipa::path(
    tag = "accounts",
    request_body = ResetRequest,
    responses(
        (status = 202, description = "If the address has an account, a link is on its way", body = Accepted),
        (status = 422, description = "Not an e-mail address", body = ProblemDoc, content_type = "application/problem+json"),
    )
)]
#[post("/auth/password-reset")]
async fn password_reset(
    service: web::Data<AccountService>,
    body: Json<ResetRequest>,
    req: HttpRequest,
) -> Result<HttpResponse, ApiError> {
    service.request_password_reset(&body.0.email, meta(&req)).await?;
    json_response(
        StatusCode::ACCEPTED,
        &Accepted {
            status: "reset_link_sent_if_registered",
        },
    )
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ResetConfirm {
    token: String,
    #[schema(format = Password, min_length = 8, max_length = 128)]
    new_password: String,
}

/// Sets a new password with the code from the reset mail. All sessions end.
#[utoipa::path(
    tag = "accounts",
    request_body = ResetConfirm,
    responses(
        (status = 200, description = "Password set; log in again", body = Done),
        (status = 400, description = "Unknown, used or expired code", body = ProblemDoc, content_type = "application/problem+json"),
        (status = 422, description = "Weak password", body = ProblemDoc, content_type = "application/problem+json"),
    )
)]
#[post("/auth/password-reset/confirm")]
async fn password_reset_confirm(
    service: web::Data<AccountService>,
    body: Json<ResetConfirm>,
    req: HttpRequest,
) -> Result<HttpResponse, ApiError> {
    let body = body.into_inner();
    service
        .confirm_password_reset(&body.token, SecretString::from(body.new_password), meta(&req))
        .await?;
    ok(&Done {
        status: "password_set",
    })
}

/// Starts a login with the eID card at the configured OpenID Connect provider (authorisation code flow with
/// PKCE). With a citizen token, the eID is linked to that account instead.
#[utoipa::path(
    tag = "accounts",
    responses(
        (status = 200, description = "Send the browser to `authorization_url`", body = EidStart),
        (status = 404, description = "`eid_not_configured`", body = ProblemDoc, content_type = "application/problem+json"),
        (status = 502, description = "The provider is unreachable", body = ProblemDoc, content_type = "application/problem+json"),
    )
)]
#[post("/auth/eid/start")]
async fn eid_start(service: web::Data<AccountService>, req: HttpRequest) -> Result<HttpResponse, ApiError> {
    let link_to = if req.headers().contains_key(actix_web::http::header::AUTHORIZATION) {
        let auth = <CitizenAuth as actix_web::FromRequest>::extract(&req).await?;
        Some(auth.account_id)
    } else {
        None
    };
    no_store(ok(&service.eid_start(link_to, meta(&req)).await?)?)
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct EidCallback {
    code: String,
    state: String,
}

/// Completes an eID login with the `code` and `state` the provider sent back. Logs in (or creates) the account
/// linked to the eID's subject at the provider's level (usually `high`); names, birth date and address from the
/// eID are stored as verified.
#[utoipa::path(
    tag = "accounts",
    request_body = EidCallback,
    responses(
        (status = 200, description = "Logged in", body = SessionTokens),
        (status = 400, description = "Unknown, used or expired state", body = ProblemDoc, content_type = "application/problem+json"),
        (status = 409, description = "This eID is linked to another account", body = ProblemDoc, content_type = "application/problem+json"),
        (status = 502, description = "The provider refused or sent an invalid ID token", body = ProblemDoc, content_type = "application/problem+json"),
    )
)]
#[post("/auth/eid/callback")]
async fn eid_callback(
    service: web::Data<AccountService>,
    body: Json<EidCallback>,
    req: HttpRequest,
) -> Result<HttpResponse, ApiError> {
    let body = body.into_inner();
    no_store(ok(&service
        .eid_callback(&body.code, &body.state, meta(&req))
        .await?)?)
}
