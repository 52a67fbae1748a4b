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
    if let Some((name, _)) = form_urlencoded_pairs(query)
        .find(|(name, value)| !crate::text::storable(name) || !crate::text::storable(value))
    {
        return Err(invalid_query(vec![crate::text::at_parameter(
            name.replace('\0', "\\0"),
        )]));
    }
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
        invalid_query(vec![FieldError::at_parameter(
            parameter,
            "invalid_value",
            Text::new(
                format!("Ungültiger Wert ({message})."),
                format!("Invalid value ({message})."),
            ),
        )])
    })
}

fn invalid_query(errors: Vec<FieldError>) -> ApiError {
    ApiError::bad_request(
        "invalid_query",
        Text::fixed("Ungültige Abfrageparameter.", "Invalid query parameters."),
    )
    .with_errors(errors)
}

/// Path segments (`/organisations/{id}`) with the same conventions: a segment that does not parse is a 404 — the
/// resource with that name does not exist — and one with text the database cannot store is a 400 naming it.
#[derive(Debug)]
pub struct Path<T>(pub T);

impl<T> Path<T> {
    pub fn into_inner(self) -> T {
        self.0
    }
}

impl<T> std::ops::Deref for Path<T> {
    type Target = T;

    fn deref(&self) -> &T {
        &self.0
    }
}

impl<T: DeserializeOwned> FromRequest for Path<T> {
    type Error = ApiError;
    type Future = Ready<Result<Self, ApiError>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        if let Some((name, _)) = req
            .match_info()
            .iter()
            .find(|(_, value)| !crate::text::storable(value))
        {
            return ready(Err(ApiError::bad_request(
                "invalid_path",
                Text::fixed("Ungültiger Pfad.", "Invalid path."),
            )
            .with_errors(vec![crate::text::at_parameter(name)])));
        }
        #[expect(
            clippy::disallowed_types,
            reason = "the one place that wraps actix' path extractor with these conventions"
        )]
        let parsed = actix_web::web::Path::<T>::from_request(req, &mut Payload::None).into_inner();
        ready(parsed.map(|path| Path(path.into_inner())).map_err(|err| {
            tracing::debug!(error = %err, "path did not parse");
            ApiError::from_status(actix_web::http::StatusCode::NOT_FOUND)
        }))
    }
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
