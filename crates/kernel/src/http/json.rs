//! A JSON body extractor whose every failure is a precise problem: wrong content type (415), too large (413),
//! not JSON (400, with line and column), or JSON of the wrong shape (422, with a pointer to the offending member).

use std::future::Future;
use std::pin::Pin;

use actix_web::http::StatusCode;
use actix_web::http::header::{CONTENT_LENGTH, CONTENT_TYPE};
use actix_web::{FromRequest, HttpRequest, dev::Payload};
use serde::de::DeserializeOwned;

use crate::i18n::Text;
use crate::problem::{ApiError, FieldError};

pub const DEFAULT_JSON_LIMIT: usize = 256 * 1024;

/// The largest JSON body the service accepts, as app data.
#[derive(Debug, Clone, Copy)]
pub struct JsonLimit(pub usize);

#[derive(Debug)]
pub struct Json<T>(pub T);

impl<T> Json<T> {
    pub fn into_inner(self) -> T {
        self.0
    }
}

impl<T: DeserializeOwned + 'static> FromRequest for Json<T> {
    type Error = ApiError;
    type Future = Pin<Box<dyn Future<Output = Result<Self, ApiError>>>>;

    fn from_request(req: &HttpRequest, payload: &mut Payload) -> Self::Future {
        let limit = req
            .app_data::<JsonLimit>()
            .map_or(DEFAULT_JSON_LIMIT, |limit| limit.0);
        let checked = check_headers(req, limit);
        let payload = payload.take();
        Box::pin(async move {
            checked?;
            let body = super::body::read_to_end(payload, limit).await?;
            parse(&body).map(Json)
        })
    }
}

fn check_headers(req: &HttpRequest, limit: usize) -> Result<(), ApiError> {
    let content_type = req
        .headers()
        .get(CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    let essence = content_type
        .split(';')
        .next()
        .unwrap_or("")
        .trim()
        .to_ascii_lowercase();
    let is_json =
        essence == "application/json" || (essence.starts_with("application/") && essence.ends_with("+json"));
    if !is_json {
        return Err(
            ApiError::from_status(StatusCode::UNSUPPORTED_MEDIA_TYPE).with_detail(Text::fixed(
                "Der Inhalt muss als application/json gesendet werden.",
                "The body must be sent as application/json.",
            )),
        );
    }
    let declared = req
        .headers()
        .get(CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<usize>().ok());
    if declared.is_some_and(|len| len > limit) {
        return Err(super::body::too_large(limit));
    }
    Ok(())
}

/// Parses a JSON body into `T`, reporting syntax errors with their position and shape errors with a pointer.
pub fn parse<T: DeserializeOwned>(body: &[u8]) -> Result<T, ApiError> {
    if body.iter().all(u8::is_ascii_whitespace) {
        return Err(ApiError::bad_request(
            "malformed_json",
            Text::fixed(
                "Der Inhalt ist kein gültiges JSON.",
                "The body is not valid JSON.",
            ),
        )
        .with_detail(Text::fixed("Der Inhalt ist leer.", "The body is empty.")));
    }
    let value: serde_json::Value = serde_json::from_slice(body).map_err(|err| {
        ApiError::bad_request(
            "malformed_json",
            Text::fixed(
                "Der Inhalt ist kein gültiges JSON.",
                "The body is not valid JSON.",
            ),
        )
        .with_detail(Text::new(
            format!("Syntaxfehler in Zeile {}, Spalte {}.", err.line(), err.column()),
            format!("Syntax error at line {}, column {}.", err.line(), err.column()),
        ))
    })?;
    if let Some(pointer) = crate::text::first_unstorable(&value) {
        return Err(ApiError::validation(vec![crate::text::at_pointer(pointer)]));
    }
    serde_path_to_error::deserialize(value).map_err(|err| {
        let mut pointer = json_pointer(err.path());
        let message = err.inner().to_string();
        let (code, text) = classify(&message, &mut pointer);
        ApiError::validation(vec![FieldError::at_pointer(pointer, code, text)])
    })
}

/// The RFC 6901 pointer of a serde path.
pub fn json_pointer(path: &serde_path_to_error::Path) -> String {
    use serde_path_to_error::Segment;
    let mut pointer = String::new();
    for segment in path.iter() {
        match segment {
            Segment::Seq { index } => push_token(&mut pointer, &index.to_string()),
            Segment::Map { key } => push_token(&mut pointer, key),
            Segment::Enum { variant } => push_token(&mut pointer, variant),
            Segment::Unknown => {}
        }
    }
    pointer
}

pub(crate) fn push_token(pointer: &mut String, token: &str) {
    pointer.push('/');
    pointer.push_str(&token.replace('~', "~0").replace('/', "~1"));
}

/// serde reports a missing field at its parent; point at the field itself.
fn classify(message: &str, pointer: &mut String) -> (&'static str, Text) {
    let quoted = |prefix: &str| {
        message
            .strip_prefix(prefix)
            .and_then(|rest| rest.split('`').nth(1))
            .map(str::to_owned)
    };
    if let Some(field) = quoted("missing field") {
        push_token(pointer, &field);
        return (
            "required",
            Text::fixed("Dieses Feld ist erforderlich.", "This field is required."),
        );
    }
    if message.starts_with("unknown field") {
        // serde_path_to_error already ends the path with the unknown key.
        return (
            "unknown_field",
            Text::fixed("Dieses Feld ist nicht vorgesehen.", "This field is not expected."),
        );
    }
    (
        "invalid_value",
        Text::new(
            format!("Der Wert ist ungültig ({message})."),
            format!("The value is invalid ({message})."),
        ),
    )
}

#[cfg(test)]
mod tests {
    use serde::Deserialize;

    #[derive(Debug, Deserialize)]
    #[serde(deny_unknown_fields)]
    #[allow(dead_code)]
    struct Body {
        name: String,
        items: Vec<Item>,
    }

    #[derive(Debug, Deserialize)]
    #[serde(deny_unknown_fields)]
    #[allow(dead_code)]
    struct Item {
        count: u32,
    }

    fn pointer_of(body: &str) -> (String, String) {
        let err = super::parse::<Body>(body.as_bytes()).unwrap_err();
        let field = &err.errors()[0];
        (field.pointer.clone().unwrap(), field.code.to_string())
    }

    #[test]
    fn shape_errors_point_at_the_member() {
        assert_eq!(
            pointer_of(r#"{"items": []}"#),
            ("/name".into(), "required".into())
        );
        assert_eq!(
            pointer_of(r#"{"name": "a", "items": [{"count": 1}, {"count": "x"}]}"#),
            ("/items/1/count".into(), "invalid_value".into())
        );
        assert_eq!(
            pointer_of(r#"{"name": "a", "items": [], "a/b": 1}"#),
            ("/a~1b".into(), "unknown_field".into())
        );
    }

    #[test]
    fn text_the_database_cannot_store_is_refused_with_its_pointer() {
        let err = super::parse::<Body>(br#"{"name": "a\u0000b", "items": []}"#).unwrap_err();
        assert_eq!(err.status(), actix_web::http::StatusCode::UNPROCESSABLE_ENTITY);
        assert_eq!(err.errors()[0].pointer.as_deref(), Some("/name"));
        assert_eq!(err.errors()[0].code, "invalid_character");
    }

    #[test]
    fn syntax_errors_are_bad_requests() {
        let err = super::parse::<Body>(b"{\"name\": ").unwrap_err();
        assert_eq!(err.code(), "malformed_json");
        let err = super::parse::<Body>(b"  ").unwrap_err();
        assert_eq!(err.code(), "malformed_json");
    }
}
