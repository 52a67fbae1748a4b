//! RFC 9457 problem details: the one shape every error of the API takes.
//!
//! Services return [`ApiError`]; the request-context middleware renders it in the caller's language and stamps the
//! request id into `instance`. Anything that is not an `ApiError` (an unknown route, a framework error) is rendered
//! from its status code alone, so no error ever leaves the service in another form.

use std::borrow::Cow;
use std::fmt;

use actix_web::http::StatusCode;
use actix_web::http::header::{CONTENT_TYPE, HeaderName, HeaderValue};
use actix_web::{HttpResponse, ResponseError};
use serde::Serialize;
use serde_json::{Map, Value};
use utoipa::ToSchema;

use crate::i18n::{Lang, Text};

pub const PROBLEM_CONTENT_TYPE: &str = "application/problem+json; charset=utf-8";

/// One violation inside a request: where (`pointer` into the JSON body, or the name of a query or path
/// `parameter`), a stable `code`, and a message for people.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FieldError {
    pub pointer: Option<String>,
    pub parameter: Option<String>,
    pub code: Cow<'static, str>,
    pub message: Text,
}

impl FieldError {
    pub fn at_pointer(pointer: impl Into<String>, code: impl Into<Cow<'static, str>>, message: Text) -> Self {
        Self {
            pointer: Some(pointer.into()),
            parameter: None,
            code: code.into(),
            message,
        }
    }

    pub fn at_parameter(name: impl Into<String>, code: impl Into<Cow<'static, str>>, message: Text) -> Self {
        Self {
            pointer: None,
            parameter: Some(name.into()),
            code: code.into(),
            message,
        }
    }

    fn render(&self, lang: Lang) -> Value {
        let mut map = Map::new();
        if let Some(pointer) = &self.pointer {
            map.insert("pointer".into(), Value::String(pointer.clone()));
        }
        if let Some(parameter) = &self.parameter {
            map.insert("parameter".into(), Value::String(parameter.clone()));
        }
        map.insert("code".into(), Value::String(self.code.to_string()));
        map.insert("message".into(), Value::String(self.message.get(lang).to_owned()));
        Value::Object(map)
    }
}

/// An error answer of the API.
pub struct ApiError(Box<Inner>);

struct Inner {
    status: StatusCode,
    code: Cow<'static, str>,
    title: Text,
    detail: Option<Text>,
    errors: Vec<FieldError>,
    headers: Vec<(HeaderName, HeaderValue)>,
    extensions: Map<String, Value>,
}

impl ApiError {
    pub fn new(status: StatusCode, code: impl Into<Cow<'static, str>>, title: Text) -> Self {
        Self(Box::new(Inner {
            status,
            code: code.into(),
            title,
            detail: None,
            errors: Vec::new(),
            headers: Vec::new(),
            extensions: Map::new(),
        }))
    }

    pub fn with_detail(mut self, detail: Text) -> Self {
        self.0.detail = Some(detail);
        self
    }

    pub fn with_errors(mut self, errors: Vec<FieldError>) -> Self {
        self.0.errors = errors;
        self
    }

    pub fn with_header(mut self, name: HeaderName, value: HeaderValue) -> Self {
        self.0.headers.push((name, value));
        self
    }

    /// Adds a member beside the standard ones (RFC 9457 §3.2), for example the trust level a step-up needs.
    pub fn with_extension(mut self, key: &str, value: Value) -> Self {
        self.0.extensions.insert(key.to_owned(), value);
        self
    }

    pub fn status(&self) -> StatusCode {
        self.0.status
    }

    pub fn code(&self) -> &str {
        &self.0.code
    }

    pub fn errors(&self) -> &[FieldError] {
        &self.0.errors
    }

    /// 422 with every violation listed.
    pub fn validation(errors: Vec<FieldError>) -> Self {
        Self::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "validation_failed",
            Text::fixed(
                "Die Angaben sind nicht gültig.",
                "The submitted data is not valid.",
            ),
        )
        .with_errors(errors)
    }

    pub fn not_found(code: &'static str, title: Text) -> Self {
        Self::new(StatusCode::NOT_FOUND, code, title)
    }

    pub fn bad_request(code: &'static str, title: Text) -> Self {
        Self::new(StatusCode::BAD_REQUEST, code, title)
    }

    pub fn conflict(code: &'static str, title: Text) -> Self {
        Self::new(StatusCode::CONFLICT, code, title)
    }

    /// An unexpected failure: the cause goes to the log (with the request id of the current span), the client only
    /// learns that something went wrong.
    pub fn internal(cause: impl fmt::Display) -> Self {
        tracing::error!(error = %cause, "unexpected error");
        Self::from_status(StatusCode::INTERNAL_SERVER_ERROR)
    }

    pub fn unavailable(cause: impl fmt::Display) -> Self {
        tracing::warn!(error = %cause, "service unavailable");
        Self::from_status(StatusCode::SERVICE_UNAVAILABLE).with_header(
            actix_web::http::header::RETRY_AFTER,
            actix_web::http::header::HeaderValue::from_static("5"),
        )
    }

    /// The generic problem for a status that carries no more specific error (unknown route, framework errors).
    pub fn from_status(status: StatusCode) -> Self {
        let (code, title) = generic(status);
        Self::new(status, code, title)
    }

    /// The problem document in the given language; `instance` names the request.
    pub fn body(&self, lang: Lang, request_id: Option<&str>) -> Value {
        let mut map = Map::new();
        map.insert(
            "type".into(),
            Value::String(format!("urn:amtsweg:problem:{}", self.0.code)),
        );
        map.insert("title".into(), Value::String(self.0.title.get(lang).to_owned()));
        map.insert("status".into(), Value::from(self.0.status.as_u16()));
        let detail = self.0.detail.as_ref().unwrap_or(&self.0.title);
        map.insert("detail".into(), Value::String(detail.get(lang).to_owned()));
        if let Some(id) = request_id {
            map.insert(
                "instance".into(),
                Value::String(format!("urn:amtsweg:request:{id}")),
            );
        }
        map.insert("code".into(), Value::String(self.0.code.to_string()));
        if !self.0.errors.is_empty() {
            let errors = self.0.errors.iter().map(|e| e.render(lang)).collect();
            map.insert("errors".into(), Value::Array(errors));
        }
        for (key, value) in &self.0.extensions {
            map.entry(key.clone()).or_insert_with(|| value.clone());
        }
        Value::Object(map)
    }

    /// The complete response; used by the middleware, which knows language and request id.
    pub fn render(&self, lang: Lang, request_id: Option<&str>) -> HttpResponse {
        let mut builder = HttpResponse::build(self.0.status);
        for (name, value) in &self.0.headers {
            builder.insert_header((name.clone(), value.clone()));
        }
        builder.insert_header((CONTENT_TYPE, PROBLEM_CONTENT_TYPE));
        builder.body(self.body(lang, request_id).to_string())
    }
}

impl fmt::Debug for ApiError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ApiError")
            .field("status", &self.0.status.as_u16())
            .field("code", &self.0.code)
            .field("errors", &self.0.errors.len())
            .finish()
    }
}

impl fmt::Display for ApiError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} ({}): {}",
            self.0.code,
            self.0.status.as_u16(),
            self.0.title.en
        )
    }
}

impl ResponseError for ApiError {
    fn status_code(&self) -> StatusCode {
        self.0.status
    }

    fn error_response(&self) -> HttpResponse {
        self.render(Lang::default(), None)
    }
}

fn generic(status: StatusCode) -> (Cow<'static, str>, Text) {
    let (code, de, en) = match status.as_u16() {
        400 => (
            "bad_request",
            "Die Anfrage ist fehlerhaft.",
            "The request is malformed.",
        ),
        401 => (
            "unauthorized",
            "Anmeldung erforderlich.",
            "Authentication is required.",
        ),
        403 => ("forbidden", "Zugriff verweigert.", "Access is denied."),
        404 => ("not_found", "Nicht gefunden.", "Not found."),
        405 => (
            "method_not_allowed",
            "Methode nicht erlaubt.",
            "Method not allowed.",
        ),
        406 => (
            "not_acceptable",
            "Format nicht lieferbar.",
            "The requested format is not available.",
        ),
        408 => (
            "request_timeout",
            "Zeitüberschreitung der Anfrage.",
            "The request timed out.",
        ),
        409 => (
            "conflict",
            "Konflikt mit dem aktuellen Zustand.",
            "Conflict with the current state.",
        ),
        411 => (
            "length_required",
            "Längenangabe fehlt.",
            "Content length is required.",
        ),
        413 => (
            "payload_too_large",
            "Die Anfrage ist zu groß.",
            "The request body is too large.",
        ),
        414 => (
            "uri_too_long",
            "Die Adresse ist zu lang.",
            "The request URI is too long.",
        ),
        415 => (
            "unsupported_media_type",
            "Der Inhaltstyp wird nicht unterstützt.",
            "The content type is not supported.",
        ),
        422 => (
            "validation_failed",
            "Die Angaben sind nicht gültig.",
            "The submitted data is not valid.",
        ),
        429 => ("too_many_requests", "Zu viele Anfragen.", "Too many requests."),
        431 => (
            "headers_too_large",
            "Die Kopfzeilen sind zu groß.",
            "The request headers are too large.",
        ),
        500 => (
            "internal_error",
            "Ein unerwarteter Fehler ist aufgetreten.",
            "An unexpected error occurred.",
        ),
        503 => (
            "service_unavailable",
            "Der Dienst ist vorübergehend nicht verfügbar.",
            "The service is temporarily unavailable.",
        ),
        _ => {
            return (
                Cow::Owned(format!("http_{}", status.as_u16())),
                Text::new(
                    status.canonical_reason().unwrap_or("Fehler"),
                    status.canonical_reason().unwrap_or("Error"),
                ),
            );
        }
    };
    (Cow::Borrowed(code), Text::fixed(de, en))
}

/// The problem document as the OpenAPI spec describes it.
#[derive(Debug, Serialize, ToSchema)]
#[schema(as = Problem)]
pub struct ProblemDoc {
    /// URI naming the kind of problem, `urn:amtsweg:problem:{code}`.
    #[serde(rename = "type")]
    pub kind: String,
    pub title: String,
    pub status: u16,
    pub detail: String,
    /// `urn:amtsweg:request:{X-Request-Id}`: quote it when you report a problem.
    pub instance: String,
    /// Stable machine-readable code; clients translate and branch on it.
    pub code: String,
    /// Every violation, for validation failures.
    #[schema(nullable = false)]
    pub errors: Option<Vec<FieldErrorDoc>>,
}

#[derive(Debug, Serialize, ToSchema)]
#[schema(as = FieldError)]
pub struct FieldErrorDoc {
    /// JSON Pointer (RFC 6901) into the request body.
    #[schema(nullable = false)]
    pub pointer: Option<String>,
    /// Name of the query or path parameter, when the violation is not in the body.
    #[schema(nullable = false)]
    pub parameter: Option<String>,
    pub code: String,
    pub message: String,
}
