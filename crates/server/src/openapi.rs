//! The OpenAPI 3.1 document, generated from the handlers that are registered (so documentation and routing cannot
//! drift), plus the general information about the API.

use utoipa::openapi::security::{
    ClientCredentials, Flow, HttpAuthScheme, HttpBuilder, OAuth2, Scopes, SecurityScheme,
};
use utoipa::{Modify, OpenApi};
use utoipa_actix_web::AppExt;

/// How callers authenticate: citizens and staff with bearer tokens of their own audience, specialised
/// procedures with the client credentials grant.
struct SecuritySchemes;

impl Modify for SecuritySchemes {
    fn modify(&self, api: &mut utoipa::openapi::OpenApi) {
        let components = api.components.get_or_insert_with(Default::default);
        let bearer = |description: &str| {
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Bearer)
                    .bearer_format("JWT")
                    .description(Some(description))
                    .build(),
            )
        };
        components.add_security_scheme(
            "citizen",
            bearer(
                "Access token of a citizen session (POST /api/v1/auth/login), audience `amtsweg:citizen`.",
            ),
        );
        components.add_security_scheme(
            "staff",
            bearer(
                "Access token of a staff session (POST /api/v1/staff/auth/login), audience `amtsweg:staff`.",
            ),
        );
        components.add_security_scheme(
            "client",
            SecurityScheme::OAuth2(OAuth2::with_description(
                [Flow::ClientCredentials(ClientCredentials::new(
                    "/oauth/token",
                    Scopes::from_iter(crate::access::access().scopes().iter().map(|scope| {
                        let name = if scope.per_procedure {
                            format!("{}:{{procedure}}", scope.name)
                        } else {
                            scope.name.to_owned()
                        };
                        (name, scope.description.to_owned())
                    })),
                ))],
                "Specialised procedures (Fachverfahren), audience `amtsweg:client`.",
            )),
        );
        components.add_security_scheme(
            "metrics",
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Bearer)
                    .description(Some("`metrics.token` from the configuration, when one is set"))
                    .build(),
            ),
        );
        components.add_security_scheme(
            "client_basic",
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Basic)
                    .description(Some(
                        "client_id and client_secret of an API client (client_secret_basic)",
                    ))
                    .build(),
            ),
        );
    }
}

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
    modifiers(&SecuritySchemes),
    tags(
        (name = "catalogue", description = "The public catalogue of procedures (Leistungskatalog)"),
        (name = "accounts", description = "Bürgerkonto: registration, login, sessions, eID"),
        (name = "me", description = "The logged-in citizen's own account, profile, consents and data"),
        (name = "organisations", description = "Organisation accounts acting through their member persons"),
        (name = "applications", description = "Antragsmanagement: the citizen's applications from draft to submission, attachments, business status"),
        (name = "casework", description = "Antragsmanagement for staff: queues, claims, cases and workflow actions"),
        (name = "payments", description = "ePayment: paying fees through the payment platform (ePayBL), its notifications and the payer's return page"),
        (name = "staff", description = "Login for staff"),
        (name = "admin", description = "Administration: staff, API clients, keys, jobs"),
        (name = "auth", description = "Tokens for specialised procedures and the public keys that verify tokens"),
        (name = "integration", description = "Integrationsplattform: the pull API, signed event feed and webhooks for specialised procedures (Fachverfahren)"),
        (name = "statistics", description = "Open data: applications per procedure and month, without personal data"),
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
    document_other_errors(&mut api);
    api
}

/// Every operation can also answer with errors it does not list one by one (a malformed body, an expired token, an
/// overloaded service): all of them are problem+json, documented once as the `default` response.
fn document_other_errors(api: &mut utoipa::openapi::OpenApi) {
    use utoipa::openapi::{ContentBuilder, Ref, ResponseBuilder};
    let other = ResponseBuilder::new()
        .description(
            "Any other error, as RFC 9457 problem+json with a stable `code`: e.g. 400 malformed JSON, 401 missing or \
             invalid token, 405 wrong method, 413 body too large, 415 wrong content type, 429 too many requests, \
             500 unexpected error, 503 unavailable.",
        )
        .content("application/problem+json", ContentBuilder::new().schema(Some(Ref::from_schema_name("Problem"))).build())
        .build();
    for item in api.paths.paths.values_mut() {
        for operation in [
            &mut item.get,
            &mut item.post,
            &mut item.put,
            &mut item.patch,
            &mut item.delete,
        ]
        .into_iter()
        .flatten()
        {
            operation
                .responses
                .responses
                .entry("default".to_owned())
                .or_insert_with(|| other.clone().into());
        }
    }
}

/// The document as pretty JSON with a final newline, the form that is committed.
pub fn document_json() -> Result<String, serde_json::Error> {
    let mut json = serde_json::to_string_pretty(&document())?;
    json.push('\n');
    Ok(json)
}
