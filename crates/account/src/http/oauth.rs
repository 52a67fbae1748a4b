//! The OAuth 2.0 token endpoint for specialised procedures (client credentials grant, RFC 6749 §4.4).

use actix_web::http::StatusCode;
use actix_web::http::header::AUTHORIZATION;
use actix_web::{HttpRequest, HttpResponse, get, post, web};
use amtsweg_kernel::ApiError;
use amtsweg_kernel::http::ok;
use amtsweg_kernel::problem::ProblemDoc;
use base64::Engine;
use serde::Deserialize;
use utoipa::ToSchema;

use super::auth::no_store;
use super::meta;
use crate::error::AccountError;
use crate::service::{AccountService, TokenGrant};

pub fn configure(cfg: &mut utoipa_actix_web::service_config::ServiceConfig) {
    cfg.service(token);
}

/// Routes for API clients under `/api/v1`.
pub fn configure_client(cfg: &mut utoipa_actix_web::service_config::ServiceConfig) {
    cfg.service(client_me);
}

#[derive(serde::Serialize, ToSchema)]
pub struct ClientMe {
    client_id: String,
    scopes: Vec<String>,
}

/// Who the calling client is and which scopes its token carries — for a specialised procedure to check its
/// credentials.
#[utoipa::path(
    tag = "auth",
    security(("client" = [])),
    responses(
        (status = 200, description = "The calling client", body = ClientMe),
        (status = 401, description = "Not a client token, or the client is disabled", body = ProblemDoc, content_type = "application/problem+json"),
    )
)]
#[get("/client/me")]
async fn client_me(auth: amtsweg_auth::ClientAuth) -> Result<HttpResponse, ApiError> {
    ok(&ClientMe {
        client_id: auth.client_id,
        scopes: auth.scopes,
    })
}

#[derive(Deserialize, ToSchema)]
pub struct TokenForm {
    /// `client_credentials`.
    grant_type: Option<String>,
    /// Space-separated subset of the client's scopes; all of them when absent.
    scope: Option<String>,
}

/// A token request is a few short fields.
const FORM_LIMIT: usize = 4096;

fn invalid_request(description: &'static str) -> AccountError {
    AccountError::OAuth {
        status: StatusCode::BAD_REQUEST,
        error: "invalid_request",
        description,
    }
}

/// `client_secret_basic`: `Basic base64(urlencode(client_id):urlencode(secret))`.
fn credentials(req: &HttpRequest) -> Result<(String, String), AccountError> {
    let invalid = || AccountError::OAuth {
        status: StatusCode::UNAUTHORIZED,
        error: "invalid_client",
        description: "Client authentication failed.",
    };
    let header = req
        .headers()
        .get(AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .ok_or_else(invalid)?;
    let (scheme, encoded) = header.split_once(' ').ok_or_else(invalid)?;
    if !scheme.eq_ignore_ascii_case("basic") {
        return Err(invalid());
    }
    let decoded = base64::engine::general_purpose::STANDARD
        .decode(encoded.trim())
        .map_err(|_| invalid())?;
    let decoded = String::from_utf8(decoded).map_err(|_| invalid())?;
    let (id, secret) = decoded.split_once(':').ok_or_else(invalid)?;
    let unescape = |s: &str| {
        form_urlencoded::parse(format!("x={s}").as_bytes())
            .next()
            .map(|(_, v)| v.into_owned())
            .unwrap_or_default()
    };
    let (id, secret) = (unescape(id), unescape(secret));
    if !amtsweg_kernel::text::storable(&id) || !amtsweg_kernel::text::storable(&secret) {
        return Err(invalid_request("The client credentials contain a NUL character."));
    }
    Ok((id, secret))
}

/// Issues an access token to a specialised procedure that authenticates with its client id and secret (HTTP
/// Basic). The token carries the granted scopes and lives at most 15 minutes. Errors carry the RFC 6749 `error`
/// member beside the problem fields.
#[utoipa::path(
    tag = "auth",
    security(("client_basic" = [])),
    request_body(content = TokenForm, content_type = "application/x-www-form-urlencoded"),
    responses(
        (status = 200, description = "Token issued", body = TokenGrant),
        (status = 400, description = "`invalid_request`, `unsupported_grant_type` or `invalid_scope`", body = ProblemDoc, content_type = "application/problem+json"),
        (status = 401, description = "`invalid_client`", body = ProblemDoc, content_type = "application/problem+json"),
    )
)]
#[post("/oauth/token")]
async fn token(
    service: web::Data<AccountService>,
    req: HttpRequest,
    body: web::Payload,
) -> Result<HttpResponse, ApiError> {
    let is_form = req
        .headers()
        .get(actix_web::http::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| {
            v.split(';')
                .next()
                .unwrap_or("")
                .trim()
                .eq_ignore_ascii_case("application/x-www-form-urlencoded")
        });
    if !is_form {
        return Err(invalid_request("The body must be application/x-www-form-urlencoded.").into());
    }
    let body = amtsweg_kernel::http::read_to_end(body, FORM_LIMIT).await?;
    let form: TokenForm =
        serde_urlencoded::from_bytes(&body).map_err(|_| invalid_request("The form cannot be read."))?;
    let texts = [form.grant_type.as_deref(), form.scope.as_deref()];
    if texts
        .into_iter()
        .flatten()
        .any(|text| !amtsweg_kernel::text::storable(text))
    {
        return Err(invalid_request("The form contains a NUL character.").into());
    }
    let (client_id, secret) = credentials(&req)?;
    let grant_type = form
        .grant_type
        .ok_or_else(|| invalid_request("grant_type is missing."))?;
    let grant = service
        .client_token(
            &client_id,
            &secret,
            &grant_type,
            form.scope.as_deref(),
            meta(&req),
        )
        .await?;
    let mut response = no_store(ok(&grant)?)?;
    response.headers_mut().insert(
        actix_web::http::header::PRAGMA,
        actix_web::http::header::HeaderValue::from_static("no-cache"),
    );
    Ok(response)
}
