//! The logged-in citizen's own account: profile, password, two-factor, consents, security events, export,
//! deletion. Every route acts on the caller's own data only.

use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse, delete, get, patch, post, put, web};
use amtsweg_auth::CitizenAuth;
use amtsweg_kernel::ApiError;
use amtsweg_kernel::http::{Json, Path, Query, json_response, ok};
use amtsweg_kernel::pagination::{Page, PageQuery};
use amtsweg_kernel::problem::ProblemDoc;
use chrono::Duration;
use secrecy::SecretString;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::meta;
use crate::service::{
    AccountService, ConsentView, DeletionReport, DeliveryConsent, NotificationView, ProfilePatch,
    ProfileView, Realm, SecurityEventView, TotpEnrollment,
};

pub fn configure(cfg: &mut utoipa_actix_web::service_config::ServiceConfig) {
    cfg.service(get_me)
        .service(patch_me)
        .service(delete_me)
        .service(change_password)
        .service(change_email)
        .service(confirm_email)
        .service(start_totp)
        .service(confirm_totp)
        .service(disable_totp)
        .service(list_consents)
        .service(grant_consent)
        .service(revoke_consent)
        .service(get_delivery_consent)
        .service(grant_delivery_consent)
        .service(revoke_delivery_consent)
        .service(export)
        .service(information_letter)
        .service(security_events)
        .service(notifications);
}

fn recent(service: &AccountService, auth: &CitizenAuth) -> Result<(), ApiError> {
    auth.require_recent_authentication(
        service.now(),
        Duration::minutes(service.settings().recent_auth_minutes),
    )
}

/// The caller's account and profile.
#[utoipa::path(
    tag = "me",
    security(("citizen" = [])),
    responses(
        (status = 200, description = "The account", body = ProfileView),
        (status = 401, description = "Not logged in", body = ProblemDoc, content_type = "application/problem+json"),
    )
)]
#[get("/me")]
async fn get_me(service: web::Data<AccountService>, auth: CitizenAuth) -> Result<HttpResponse, ApiError> {
    ok(&service.profile(&auth.account_id, auth.level).await?)
}

/// Changes name, language and profile data (JSON Merge Patch: `null` clears a field). Fields that came from the
/// eID cannot be changed by hand (`verified_field`).
#[utoipa::path(
    tag = "me",
    security(("citizen" = [])),
    request_body(content = ProfilePatch, content_type = "application/merge-patch+json"),
    responses(
        (status = 200, description = "The updated account", body = ProfileView),
        (status = 422, description = "Invalid or verified fields", body = ProblemDoc, content_type = "application/problem+json"),
    )
)]
#[patch("/me")]
async fn patch_me(
    service: web::Data<AccountService>,
    auth: CitizenAuth,
    body: Json<ProfilePatch>,
    req: HttpRequest,
) -> Result<HttpResponse, ApiError> {
    ok(&service
        .update_profile(&auth.account_id, body.into_inner(), auth.level, meta(&req))
        .await?)
}

/// Deletes the account (GDPR Art. 17): personal data that no retention duty covers is erased in every module, the
/// account is deactivated, and what must be kept is listed with its legal basis. Needs an authentication within
/// the last 10 minutes.
#[utoipa::path(
    tag = "me",
    security(("citizen" = [])),
    responses(
        (status = 200, description = "Deleted", body = DeletionReport),
        (status = 401, description = "`insufficient_user_authentication` (max_age): authenticate again", body = ProblemDoc, content_type = "application/problem+json"),
    )
)]
#[delete("/me")]
async fn delete_me(
    service: web::Data<AccountService>,
    auth: CitizenAuth,
    req: HttpRequest,
) -> Result<HttpResponse, ApiError> {
    recent(&service, &auth)?;
    ok(&service
        .delete_account(Realm::Citizen, &auth.account_id, meta(&req))
        .await?)
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PasswordChange {
    #[schema(format = Password)]
    current_password: String,
    #[schema(format = Password, min_length = 8, max_length = 128)]
    new_password: String,
}

/// Changes the password; other sessions end, and a notice goes to the account's address.
#[utoipa::path(
    tag = "me",
    security(("citizen" = [])),
    request_body = PasswordChange,
    responses(
        (status = 204, description = "Changed"),
        (status = 422, description = "Wrong current password or weak new one", body = ProblemDoc, content_type = "application/problem+json"),
    )
)]
#[post("/me/password")]
async fn change_password(
    service: web::Data<AccountService>,
    auth: CitizenAuth,
    body: Json<PasswordChange>,
    req: HttpRequest,
) -> Result<HttpResponse, ApiError> {
    let body = body.into_inner();
    service
        .change_password(
            Realm::Citizen,
            &auth.account_id,
            &auth.session_id,
            SecretString::from(body.current_password),
            SecretString::from(body.new_password),
            meta(&req),
        )
        .await?;
    Ok(HttpResponse::NoContent().finish())
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct EmailChange {
    /// The new login address; a confirmation code is sent there.
    email: String,
}

/// Asks to change the login address. Needs an authentication within the last 10 minutes; the new address must
/// be confirmed with the mailed code, and the old one is told.
#[utoipa::path(
    tag = "me",
    security(("citizen" = [])),
    request_body = EmailChange,
    responses(
        (status = 202, description = "Confirmation code sent to the new address"),
        (status = 401, description = "`insufficient_user_authentication` (max_age)", body = ProblemDoc, content_type = "application/problem+json"),
        (status = 422, description = "Invalid or unchanged address", body = ProblemDoc, content_type = "application/problem+json"),
    )
)]
#[post("/me/email")]
async fn change_email(
    service: web::Data<AccountService>,
    auth: CitizenAuth,
    body: Json<EmailChange>,
    req: HttpRequest,
) -> Result<HttpResponse, ApiError> {
    recent(&service, &auth)?;
    service
        .request_email_change(&auth.account_id, &body.0.email, meta(&req))
        .await?;
    Ok(HttpResponse::Accepted().finish())
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct EmailConfirm {
    token: String,
}

#[derive(Serialize, ToSchema)]
pub struct EmailChanged {
    email: String,
}

/// Confirms the new login address with the code sent to it.
#[utoipa::path(
    tag = "me",
    security(("citizen" = [])),
    request_body = EmailConfirm,
    responses(
        (status = 200, description = "The address is changed", body = EmailChanged),
        (status = 400, description = "Unknown, used or expired code", body = ProblemDoc, content_type = "application/problem+json"),
        (status = 409, description = "`email_taken`", body = ProblemDoc, content_type = "application/problem+json"),
    )
)]
#[post("/me/email/confirm")]
async fn confirm_email(
    service: web::Data<AccountService>,
    auth: CitizenAuth,
    body: Json<EmailConfirm>,
    req: HttpRequest,
) -> Result<HttpResponse, ApiError> {
    let email = service
        .confirm_email_change(&auth.account_id, &body.0.token, meta(&req))
        .await?;
    ok(&EmailChanged { email })
}

/// Starts setting up TOTP: the secret, its `otpauth://` URI and a QR code for an authenticator app. Confirm with a
/// first code within 30 minutes.
#[utoipa::path(
    tag = "me",
    security(("citizen" = [])),
    responses(
        (status = 200, description = "Scan the QR code, then confirm", body = TotpEnrollment),
        (status = 409, description = "`totp_already_enabled`", body = ProblemDoc, content_type = "application/problem+json"),
    )
)]
#[post("/me/totp")]
async fn start_totp(service: web::Data<AccountService>, auth: CitizenAuth) -> Result<HttpResponse, ApiError> {
    super::auth::no_store(ok(&service.start_totp(&auth.account_id).await?)?)
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CodeBody {
    /// Six digits from the authenticator app.
    code: String,
}

#[derive(Serialize, ToSchema)]
pub struct RecoveryCodes {
    /// Ten single-use codes for when the phone is lost. Shown only now.
    recovery_codes: Vec<String>,
}

/// Confirms TOTP with a first code. From now on, logins need a code and reach `substantial`.
#[utoipa::path(
    tag = "me",
    security(("citizen" = [])),
    request_body = CodeBody,
    responses(
        (status = 200, description = "Enabled; keep the recovery codes", body = RecoveryCodes),
        (status = 409, description = "Not started or already enabled", body = ProblemDoc, content_type = "application/problem+json"),
        (status = 422, description = "Wrong code", body = ProblemDoc, content_type = "application/problem+json"),
    )
)]
#[post("/me/totp/confirm")]
async fn confirm_totp(
    service: web::Data<AccountService>,
    auth: CitizenAuth,
    body: Json<CodeBody>,
    req: HttpRequest,
) -> Result<HttpResponse, ApiError> {
    let codes = service
        .confirm_totp(
            Realm::Citizen,
            &auth.account_id,
            &auth.session_id,
            &body.0.code,
            meta(&req),
        )
        .await?;
    super::auth::no_store(ok(&RecoveryCodes {
        recovery_codes: codes,
    })?)
}

/// Switches TOTP off. Needs an authentication within the last 10 minutes.
#[utoipa::path(
    tag = "me",
    security(("citizen" = [])),
    responses(
        (status = 204, description = "Disabled"),
        (status = 401, description = "`insufficient_user_authentication` (max_age)", body = ProblemDoc, content_type = "application/problem+json"),
        (status = 409, description = "`totp_not_enabled`", body = ProblemDoc, content_type = "application/problem+json"),
    )
)]
#[delete("/me/totp")]
async fn disable_totp(
    service: web::Data<AccountService>,
    auth: CitizenAuth,
    req: HttpRequest,
) -> Result<HttpResponse, ApiError> {
    recent(&service, &auth)?;
    service
        .disable_totp(Realm::Citizen, &auth.account_id, meta(&req))
        .await?;
    Ok(HttpResponse::NoContent().finish())
}

/// The caller's consents, newest first, including revoked ones.
#[utoipa::path(
    tag = "me",
    security(("citizen" = [])),
    params(PageQuery),
    responses((status = 200, description = "One page of consents", body = Page<ConsentView>))
)]
#[get("/me/consents")]
async fn list_consents(
    service: web::Data<AccountService>,
    auth: CitizenAuth,
    query: Query<PageQuery>,
) -> Result<HttpResponse, ApiError> {
    let page = query.0.parse()?;
    ok(&service.consents(&auth.account_id, page).await?)
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Recipient {
    /// `procedure` or `authority`.
    kind: String,
    /// Procedure id, or the authority's official municipality key (AGS).
    id: String,
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ConsentRequest {
    recipient: Recipient,
    /// Profile attributes: `given_name`, `family_name`, `date_of_birth`, `address`, `phone`, `email`.
    attributes: Vec<String>,
}

/// Grants a procedure or an authority the use of named profile attributes for pre-filling and passing on. A
/// consent to a procedure needs a session at the procedure's trust level, a consent to an authority the level of
/// its most demanding procedure (else 401 `insufficient_user_authentication` with `acr_values`: step up and retry).
#[utoipa::path(
    tag = "me",
    security(("citizen" = [])),
    request_body = ConsentRequest,
    responses(
        (status = 201, description = "Recorded", body = ConsentView),
        (status = 401, description = "`insufficient_user_authentication`: the procedure needs a higher trust level", body = ProblemDoc, content_type = "application/problem+json"),
        (status = 422, description = "Unknown recipient or attribute", body = ProblemDoc, content_type = "application/problem+json"),
    )
)]
#[post("/me/consents")]
async fn grant_consent(
    service: web::Data<AccountService>,
    auth: CitizenAuth,
    body: Json<ConsentRequest>,
    req: HttpRequest,
) -> Result<HttpResponse, ApiError> {
    let body = body.into_inner();
    // Passing data on needs at least the trust level the recipient requires (an authority: its most demanding
    // procedure).
    if let Some(level) = service.required_level(&body.recipient.kind, &body.recipient.id) {
        auth.require_level(level)?;
    }
    let consent = service
        .grant_consent(
            &auth.account_id,
            &body.recipient.kind,
            &body.recipient.id,
            body.attributes,
            meta(&req),
        )
        .await?;
    json_response(StatusCode::CREATED, &consent)
}

/// Revokes a consent; the record stays, with the time of revocation.
#[utoipa::path(
    tag = "me",
    security(("citizen" = [])),
    params(("id" = String, Path, description = "Consent id")),
    responses(
        (status = 200, description = "Revoked", body = ConsentView),
        (status = 404, description = "No consent of the caller with this id", body = ProblemDoc, content_type = "application/problem+json"),
    )
)]
#[delete("/me/consents/{id}")]
async fn revoke_consent(
    service: web::Data<AccountService>,
    auth: CitizenAuth,
    id: Path<String>,
    req: HttpRequest,
) -> Result<HttpResponse, ApiError> {
    ok(&service.revoke_consent(&auth.account_id, &id, meta(&req)).await?)
}

/// Whether the caller receives decisions (administrative acts) electronically in the Postfach, with every grant
/// and revocation.
#[utoipa::path(
    tag = "me",
    security(("citizen" = [])),
    responses((status = 200, description = "The consent and its history", body = DeliveryConsent))
)]
#[get("/me/electronic-delivery")]
async fn get_delivery_consent(
    service: web::Data<AccountService>,
    auth: CitizenAuth,
) -> Result<HttpResponse, ApiError> {
    ok(&service.delivery_consent(&auth.account_id).await?)
}

/// Consents to receive decisions electronically (§ 41 (2a) VwVfG): they are then provided in the Postfach and
/// count as notified on the day after the citizen opens them (or by the rule of the procedure's law); without
/// this consent they go out on paper. Recorded with the session and its trust level; revocable.
#[utoipa::path(
    tag = "me",
    security(("citizen" = [])),
    responses((status = 200, description = "Consented", body = DeliveryConsent))
)]
#[put("/me/electronic-delivery")]
async fn grant_delivery_consent(
    service: web::Data<AccountService>,
    auth: CitizenAuth,
    req: HttpRequest,
) -> Result<HttpResponse, ApiError> {
    let via = format!(
        "online (session {}, trust level {})",
        auth.session_id,
        auth.level.as_str()
    );
    ok(&service
        .grant_delivery_consent(&auth.account_id, via, meta(&req))
        .await?)
}

/// Revokes the consent: later decisions go out on paper. Decisions already provided keep their course.
#[utoipa::path(
    tag = "me",
    security(("citizen" = [])),
    responses((status = 200, description = "Revoked", body = DeliveryConsent))
)]
#[delete("/me/electronic-delivery")]
async fn revoke_delivery_consent(
    service: web::Data<AccountService>,
    auth: CitizenAuth,
    req: HttpRequest,
) -> Result<HttpResponse, ApiError> {
    ok(&service
        .revoke_delivery_consent(&auth.account_id, meta(&req))
        .await?)
}

/// Everything stored about the account, from every module (GDPR Art. 15), as JSON. Needs an authentication
/// within the last 10 minutes.
#[utoipa::path(
    tag = "me",
    security(("citizen" = [])),
    responses(
        (status = 200, description = "The export", body = Object),
        (status = 401, description = "`insufficient_user_authentication` (max_age)", body = ProblemDoc, content_type = "application/problem+json"),
    )
)]
#[get("/me/export")]
async fn export(
    service: web::Data<AccountService>,
    auth: CitizenAuth,
    req: HttpRequest,
) -> Result<HttpResponse, ApiError> {
    recent(&service, &auth)?;
    let data = service
        .export(Realm::Citizen, &auth.account_id, meta(&req))
        .await?;
    let mut response = ok(&data)?;
    response.headers_mut().insert(
        actix_web::http::header::CONTENT_DISPOSITION,
        actix_web::http::header::HeaderValue::from_static("attachment; filename=\"amtsweg-export.json\""),
    );
    super::auth::no_store(response)
}

/// A file's content (for the OpenAPI document).
#[derive(ToSchema)]
#[schema(value_type = String, format = Binary)]
pub struct PdfDocument(#[allow(dead_code, reason = "describes the body for the OpenAPI document")] Vec<u8>);

/// The information letter (Art. 15 GDPR) as an accessible PDF in the account's language: what is stored, by
/// area, with the SHA-256 of the full export it summarises in every footer. A copy is kept among the caller's
/// files (`Location`); `X-Data-Sha256` repeats the footer's checksum. Needs an authentication within the last 10
/// minutes.
#[utoipa::path(
    tag = "me",
    security(("citizen" = [])),
    responses(
        (status = 200, description = "The letter", body = PdfDocument, content_type = "application/pdf"),
        (status = 401, description = "`insufficient_user_authentication` (max_age)", body = ProblemDoc, content_type = "application/problem+json"),
    )
)]
#[get("/me/export/letter")]
async fn information_letter(
    service: web::Data<AccountService>,
    auth: CitizenAuth,
    req: HttpRequest,
) -> Result<HttpResponse, ApiError> {
    recent(&service, &auth)?;
    let letter = service.information_letter(&auth.account_id, meta(&req)).await?;
    Ok(HttpResponse::Ok()
        .insert_header((actix_web::http::header::CONTENT_TYPE, "application/pdf"))
        .insert_header((
            actix_web::http::header::CONTENT_DISPOSITION,
            format!("attachment; filename=\"{}\"", letter.file.name),
        ))
        .insert_header((
            actix_web::http::header::LOCATION,
            format!("/api/v1/files/{}", letter.file.id),
        ))
        .insert_header(("X-Data-Sha256", letter.data_sha256))
        .insert_header((actix_web::http::header::CACHE_CONTROL, "no-store"))
        .body(letter.pdf))
}

/// The caller's own log of logins, failures, two-factor and password changes, exports — newest first.
#[utoipa::path(
    tag = "me",
    security(("citizen" = [])),
    params(PageQuery),
    responses((status = 200, description = "One page of events", body = Page<SecurityEventView>))
)]
#[get("/me/security-events")]
async fn security_events(
    service: web::Data<AccountService>,
    auth: CitizenAuth,
    query: Query<PageQuery>,
) -> Result<HttpResponse, ApiError> {
    let page = query.0.parse()?;
    ok(&service.security_events(&auth.account_id, page).await?)
}

/// The mails sent to the caller, newest first, each with its delivery status (`created`, `delivered`,
/// `temporary-failure`, `permanent-failure`, `technical-failure`) and what it means in plain words.
#[utoipa::path(
    tag = "me",
    security(("citizen" = [])),
    params(PageQuery),
    responses((status = 200, description = "One page of mails", body = Page<NotificationView>))
)]
#[get("/me/notifications")]
async fn notifications(
    service: web::Data<AccountService>,
    auth: CitizenAuth,
    query: Query<PageQuery>,
    lang: amtsweg_kernel::Lang,
) -> Result<HttpResponse, ApiError> {
    let page = query.0.parse()?;
    ok(&service.notifications(&auth.account_id, page, lang).await?)
}
