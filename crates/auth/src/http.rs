//! The public keys that verify our tokens.

use actix_web::{HttpResponse, get, web};
use amtsweg_kernel::ApiError;
use amtsweg_kernel::http::ok;

use crate::Authenticator;

pub fn configure(cfg: &mut utoipa_actix_web::service_config::ServiceConfig) {
    cfg.service(jwks);
}

/// The JSON Web Key Set of the token signing keys (Ed25519), including retired keys whose tokens may still be
/// valid.
#[utoipa::path(
    tag = "auth",
    responses((status = 200, description = "JWK Set (RFC 7517)", body = Object))
)]
#[get("/.well-known/jwks.json")]
pub async fn jwks(auth: web::Data<Authenticator>) -> Result<HttpResponse, ApiError> {
    let mut response = ok(&auth.keys().jwks(auth.now()))?;
    response.headers_mut().insert(
        actix_web::http::header::CACHE_CONTROL,
        actix_web::http::header::HeaderValue::from_static("public, max-age=300"),
    );
    Ok(response)
}
