//! Per-request context: a request id that follows the request through every log line and back to the client, and
//! the final say over error bodies so that every error leaves as problem+json in the caller's language.

use std::time::Instant;

use actix_web::body::{BoxBody, MessageBody};
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::http::header::{CONTENT_LANGUAGE, CONTENT_LENGTH, CONTENT_TYPE, HeaderName, HeaderValue};
use actix_web::middleware::Next;
use actix_web::{Error, HttpMessage, HttpRequest, HttpResponse};
use tracing::Instrument;

use crate::i18n::Lang;
use crate::problem::ApiError;

pub static X_REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");

/// The id of the current request, as echoed in `X-Request-Id`.
#[derive(Debug, Clone)]
pub struct RequestId(pub String);

impl RequestId {
    pub fn of(req: &HttpRequest) -> Option<String> {
        req.extensions().get::<RequestId>().map(|id| id.0.clone())
    }
}

/// Only ids a log line and a header can carry safely are taken over from the client.
fn acceptable(id: &str) -> bool {
    (1..=128).contains(&id.len())
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b':'))
}

pub async fn request_context(
    req: ServiceRequest,
    next: Next<impl MessageBody + 'static>,
) -> Result<ServiceResponse<BoxBody>, Error> {
    let request_id = req
        .headers()
        .get(&X_REQUEST_ID)
        .and_then(|value| value.to_str().ok())
        .filter(|id| acceptable(id))
        .map(str::to_owned)
        .unwrap_or_else(crate::id::new_id);
    req.extensions_mut().insert(RequestId(request_id.clone()));

    let span = tracing::info_span!(
        "request",
        request_id = %request_id,
        method = %req.method(),
        path = %req.path(),
    );
    let lang = Lang::of_request(req.request());
    let started = Instant::now();
    // Errors that escape as `Err` come only from middleware; actix renders them with `error_response`, which for
    // an `ApiError` is problem+json as well. Handler errors arrive here as responses and are rendered below.
    let mut res = next
        .call(req)
        .instrument(span.clone())
        .await?
        .map_into_boxed_body();

    // Pages (the portal) answer their errors as pages; everything else as problem+json.
    let is_page = res
        .headers()
        .get(CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("text/html"));
    if (res.status().is_client_error() || res.status().is_server_error()) && !is_page {
        res = as_problem(res, &request_id);
    } else {
        add_charset(&mut res);
    }
    if let Ok(value) = HeaderValue::from_str(&request_id) {
        res.headers_mut().insert(X_REQUEST_ID.clone(), value);
    }
    if !res.headers().contains_key(CONTENT_LANGUAGE) {
        res.headers_mut()
            .insert(CONTENT_LANGUAGE, HeaderValue::from_static(lang.code()));
    }
    span.in_scope(|| {
        tracing::info!(
            status = res.status().as_u16(),
            route = res.request().match_pattern().unwrap_or_default(),
            elapsed_ms = started.elapsed().as_secs_f64() * 1000.0,
            "request finished"
        );
    });
    Ok(res)
}

/// Re-renders an error response as problem+json. Headers the error set (Allow, Retry-After, WWW-Authenticate …)
/// are kept; the body is replaced.
fn as_problem(res: ServiceResponse<BoxBody>, request_id: &str) -> ServiceResponse<BoxBody> {
    let (req, response) = res.into_parts();
    let lang = Lang::of_request(&req);
    let rendered = match response.error().and_then(|err| err.as_error::<ApiError>()) {
        Some(api_error) => api_error.render(lang, Some(request_id)),
        None => ApiError::from_status(response.status()).render(lang, Some(request_id)),
    };
    let mut merged = HttpResponse::build(response.status());
    for (name, value) in response.headers() {
        if name != CONTENT_TYPE && name != CONTENT_LENGTH {
            merged.append_header((name.clone(), value.clone()));
        }
    }
    for (name, value) in rendered.headers() {
        merged.insert_header((name.clone(), value.clone()));
    }
    let body = rendered.into_body();
    ServiceResponse::new(req, merged.body(body))
}

/// JSON answers always say that they are UTF-8.
fn add_charset(res: &mut ServiceResponse<BoxBody>) {
    let headers = res.headers_mut();
    let is_bare_json = headers
        .get(CONTENT_TYPE)
        .and_then(|value| value.to_str().ok())
        .is_some_and(|value| value.eq_ignore_ascii_case("application/json"));
    if is_bare_json {
        headers.insert(CONTENT_TYPE, HeaderValue::from_static(super::JSON_CONTENT_TYPE));
    }
}
