//! Query strings and path segments with the same precise errors as bodies: the offending parameter is named.

use std::future::{Ready, ready};

use actix_web::{FromRequest, HttpRequest, dev::Payload, error::PathError};
use serde::de::DeserializeOwned;

use crate::i18n::Text;
use crate::problem::{ApiError, FieldError};

#[derive(Debug)]
pub struct Query<T>(pub T);

impl<T> Query<T> {
    pub fn into_inner(self) -> T {
        self.0
    }
}

impl<T: DeserializeOwned> FromRequest for Query<T> {
    type Error = ApiError;
    type Future = Ready<Result<Self, ApiError>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        ready(parse(req.query_string()).map(Query))
    }
}

fn parse<T: DeserializeOwned>(query: &str) -> Result<T, ApiError> {
    let pairs = form_urlencoded_pairs(query);
    let deserializer = serde_urlencoded::Deserializer::new(pairs);
    serde_path_to_error::deserialize(deserializer).map_err(|err| {
        let message = err.inner().to_string();
        let parameter = err
            .path()
            .iter()
            .next_back()
            .map(|segment| segment.to_string())
            .filter(|name| !name.is_empty() && name != "?")
            .or_else(|| message.split('`').nth(1).map(str::to_owned))
            .unwrap_or_default();
        ApiError::bad_request(
            "invalid_query",
            Text::fixed("Ungültige Abfrageparameter.", "Invalid query parameters."),
        )
        .with_errors(vec![FieldError::at_parameter(
            parameter,
            "invalid_value",
            Text::new(
                format!("Ungültiger Wert ({message})."),
                format!("Invalid value ({message})."),
            ),
        )])
    })
}

fn form_urlencoded_pairs(query: &str) -> form_urlencoded::Parse<'_> {
    form_urlencoded::parse(query.as_bytes())
}

/// Error handler for actix path extractors: a segment that does not parse is a 404, not a 400 — the resource with
/// that name does not exist.
pub fn path_error_handler(err: PathError, _: &HttpRequest) -> actix_web::Error {
    tracing::debug!(error = %err, "path did not parse");
    ApiError::from_status(actix_web::http::StatusCode::NOT_FOUND).into()
}
