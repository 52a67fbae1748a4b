//! The public side of seals: the key set and a check anyone may run.

use std::sync::Arc;

use actix_web::http::header::{CACHE_CONTROL, CONTENT_TYPE, HeaderValue};
use actix_web::{HttpRequest, HttpResponse, get, post, web};
use amtsweg_kernel::http::ok;
use amtsweg_kernel::problem::ProblemDoc;
use amtsweg_kernel::{ApiError, Text};
use futures_util::StreamExt;
use sha2::Digest;

use crate::{Sealer, Verification};

/// What the seal routes extract: the sealer and the largest document a check reads.
#[derive(Clone)]
pub struct Seals {
    pub sealer: Arc<dyn Sealer>,
    pub max_document_bytes: u64,
}

impl amtsweg_module::Module for Seals {
    fn name(&self) -> &'static str {
        "seals"
    }

    fn app_data(&self, cfg: &mut actix_web::web::ServiceConfig) {
        cfg.app_data(web::Data::new(self.clone()));
    }
}

pub fn configure(cfg: &mut utoipa_actix_web::service_config::ServiceConfig) {
    cfg.service(verify).service(rotate);
}

pub fn configure_root(cfg: &mut utoipa_actix_web::service_config::ServiceConfig) {
    cfg.service(seal_keys);
}

/// The JWK Set of the document seal keys (Ed25519) — every key ever used, retired ones included, so that a seal
/// can be checked for as long as the document matters.
#[utoipa::path(
    tag = "seals",
    responses((status = 200, description = "JWK Set (RFC 7517); each key with `created_at` and `retired_at`", body = Object))
)]
#[get("/.well-known/seal-keys.json")]
async fn seal_keys(seals: web::Data<Seals>) -> Result<HttpResponse, ApiError> {
    let mut response = ok(&seals.sealer.published())?;
    response
        .headers_mut()
        .insert(CACHE_CONTROL, HeaderValue::from_static("public, max-age=300"));
    Ok(response)
}

fn malformed(detail: &str) -> ApiError {
    ApiError::bad_request(
        "invalid_body",
        Text::fixed("Die Anfrage ist fehlerhaft.", "The request is malformed."),
    )
    .with_detail(Text::new(detail.to_owned(), detail.to_owned()))
}

/// Checks a seal: `multipart/form-data` with the field `seal` (the seal as text) and the field `document` (the
/// document). Answers whether the seal is ours, unchanged and names exactly this document, with the signer and
/// the time of sealing. No login needed: anyone holding a document may check it.
#[utoipa::path(
    tag = "seals",
    request_body(content = String, content_type = "multipart/form-data", description = "`seal` (text), then `document` (the file)"),
    responses(
        (status = 200, description = "The result; `valid: false` with a `reason` when it does not hold", body = Verification),
        (status = 400, description = "`invalid_body`: no seal or no document", body = ProblemDoc, content_type = "application/problem+json"),
        (status = 413, description = "`document_too_large`", body = ProblemDoc, content_type = "application/problem+json"),
    )
)]
#[post("/seals/verify")]
async fn verify(
    seals: web::Data<Seals>,
    req: HttpRequest,
    payload: web::Payload,
) -> Result<HttpResponse, ApiError> {
    let is_multipart = req
        .headers()
        .get(CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.to_ascii_lowercase().starts_with("multipart/form-data"));
    if !is_multipart {
        return Err(malformed("The body must be multipart/form-data."));
    }
    let mut multipart = actix_multipart::Multipart::new(req.headers(), payload.into_inner());
    let (mut seal, mut digest) = (None::<String>, None::<String>);
    while let Some(field) = multipart.next().await {
        let mut field = field.map_err(|err| malformed(&err.to_string()))?;
        let name = field.name().unwrap_or_default().to_owned();
        let mut hasher = sha2::Sha256::new();
        let mut text = Vec::new();
        let mut size: u64 = 0;
        while let Some(chunk) = field.next().await {
            let chunk = chunk.map_err(|err| malformed(&err.to_string()))?;
            size += chunk.len() as u64;
            match name.as_str() {
                "document" if size > seals.max_document_bytes => {
                    return Err(ApiError::new(
                        actix_web::http::StatusCode::PAYLOAD_TOO_LARGE,
                        "document_too_large",
                        Text::fixed("Das Dokument ist zu groß.", "The document is too large."),
                    ));
                }
                "document" => hasher.update(&chunk),
                "seal" if size > 16 * 1024 => return Err(malformed("The seal is too long.")),
                "seal" => text.extend_from_slice(&chunk),
                _ => {}
            }
        }
        match name.as_str() {
            "document" => digest = Some(hex::encode(hasher.finalize())),
            "seal" => {
                seal = Some(String::from_utf8(text).map_err(|_| malformed("The seal is not text."))?);
            }
            _ => {}
        }
    }
    let (Some(seal), Some(digest)) = (seal, digest) else {
        return Err(malformed("Send the fields `seal` and `document`."));
    };
    let mut verification = seals.sealer.verify(&digest, &seal);
    if verification.reason == Some("unknown_key") {
        // Sealed with a key another instance created since this one loaded the set.
        if let Err(err) = seals.sealer.reload().await {
            tracing::warn!(error = %err, "reloading the seal keys failed");
        }
        verification = seals.sealer.verify(&digest, &seal);
    }
    ok(&verification)
}

#[derive(serde::Serialize, utoipa::ToSchema)]
pub struct SealKeyRotated {
    /// Key id of the new seal key.
    kid: String,
}

/// Starts sealing with a new key (system administrators). The old key stays published at
/// `/.well-known/seal-keys.json` with its `retired_at`, and seals made with it keep verifying.
#[utoipa::path(
    tag = "seals",
    security(("staff" = [])),
    responses(
        (status = 200, description = "Rotated", body = SealKeyRotated),
        (status = 403, description = "Not a system administrator", body = ProblemDoc, content_type = "application/problem+json"),
        (status = 409, description = "`seal_keys_managed_elsewhere`: a qualified seal provider manages its keys", body = ProblemDoc, content_type = "application/problem+json"),
    )
)]
#[post("/admin/seal-keys/rotate")]
async fn rotate(seals: web::Data<Seals>, auth: amtsweg_auth::StaffAuth) -> Result<HttpResponse, ApiError> {
    auth.require_system_admin()?;
    match seals.sealer.rotate(&auth.account_id).await {
        Ok(kid) => ok(&SealKeyRotated { kid }),
        Err(crate::SealError::Unsupported) => Err(ApiError::conflict(
            "seal_keys_managed_elsewhere",
            Text::fixed(
                "Die Siegelschlüssel verwaltet der Siegeldienst.",
                "The seal keys are managed by the seal provider.",
            ),
        )),
        Err(err) => Err(ApiError::internal(err)),
    }
}
