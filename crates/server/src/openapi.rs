//! The OpenAPI 3.1 document, generated from the handlers that are registered (so documentation and routing cannot
//! drift), plus the general information about the API.

use utoipa::OpenApi;
use utoipa_actix_web::AppExt;

#[derive(OpenApi)]
#[openapi(
    info(
        title = "Amtsweg API",
        description = "Online applications, processing and payment for a German city administration.\n\n\
            Conventions: base path `/api/v1`; JSON in UTF-8; timestamps in RFC 3339 UTC; opaque string ids. \
            Errors are RFC 9457 `application/problem+json` with a stable `code` and, for validation failures, an \
            `errors` list of `{pointer, code, message}`. Lists use cursor pagination (`limit`, `cursor`, \
            `next_cursor`). Texts come in German (default) or English, chosen by `Accept-Language` or `?lang=`. \
            Every answer carries `X-Request-Id` (taken from the request when given).",
        license(name = "EUPL-1.2", identifier = "EUPL-1.2"),
    ),
    tags(
        (name = "catalogue", description = "The public catalogue of procedures (Leistungskatalog)"),
        (name = "operations", description = "Health and metrics for operators"),
    )
)]
struct ApiInfo;

/// The document as served at `/openapi.json` and committed in `openapi/openapi.json`.
pub fn document() -> utoipa::openapi::OpenApi {
    let (_, mut api) = actix_web::App::new()
        .into_utoipa_app()
        .openapi(ApiInfo::openapi())
        .configure(crate::app::routes)
        .split_for_parts();
    api.info.version = env!("CARGO_PKG_VERSION").to_owned();
    api
}

/// The document as pretty JSON with a final newline, the form that is committed.
pub fn document_json() -> Result<String, serde_json::Error> {
    let mut json = serde_json::to_string_pretty(&document())?;
    json.push('\n');
    Ok(json)
}
