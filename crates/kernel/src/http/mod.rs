//! The HTTP conventions of the API, shared by every service.

mod admission;
mod body;
mod context;
mod json;
mod query;

pub use admission::{Admission, admission};
pub use body::{BodyIdleTimeout, body_idle_timeout, read_to_end};
pub use context::{RequestId, request_context};
pub(crate) use json::push_token;
pub use json::{DEFAULT_JSON_LIMIT, Json, JsonLimit, json_pointer};
pub use query::{Path, Query, path_error_handler};

use actix_web::HttpResponse;
use actix_web::http::StatusCode;
use actix_web::http::header::CONTENT_TYPE;
use serde::Serialize;

use crate::problem::ApiError;

pub const JSON_CONTENT_TYPE: &str = "application/json; charset=utf-8";

/// A JSON answer with the given status.
pub fn json_response<T: Serialize>(status: StatusCode, body: &T) -> Result<HttpResponse, ApiError> {
    let bytes = serde_json::to_vec(body).map_err(ApiError::internal)?;
    Ok(HttpResponse::build(status)
        .insert_header((CONTENT_TYPE, JSON_CONTENT_TYPE))
        .body(bytes))
}

/// 200 with a JSON body.
pub fn ok<T: Serialize>(body: &T) -> Result<HttpResponse, ApiError> {
    json_response(StatusCode::OK, body)
}
