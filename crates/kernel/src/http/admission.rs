//! Admission control: a bounded number of requests is handled at once; the rest are turned away at the door with
//! 503 and `Retry-After` instead of queueing without bound (and answering everyone late).

use std::sync::Arc;
use std::time::Duration;

use actix_web::body::{EitherBody, MessageBody};
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::http::StatusCode;
use actix_web::http::header::{HeaderValue, RETRY_AFTER};
use actix_web::middleware::Next;
use actix_web::{Error, HttpResponse, web};
use tokio::sync::Semaphore;

use crate::i18n::Text;
use crate::problem::ApiError;

/// The shared admission state of one instance (all workers). Put it into the app as `web::Data<Admission>`.
pub struct Admission {
    slots: Arc<Semaphore>,
    limit: usize,
    wait: Duration,
}

impl Admission {
    /// At most `limit` requests at once; one more waits up to `wait` for a slot before it is refused.
    pub fn new(limit: usize, wait: Duration) -> Admission {
        let limit = limit.max(1);
        Admission {
            slots: Arc::new(Semaphore::new(limit)),
            limit,
            wait,
        }
    }

    /// Requests being handled right now.
    pub fn in_flight(&self) -> usize {
        self.limit - self.slots.available_permits()
    }

    pub fn limit(&self) -> usize {
        self.limit
    }
}

/// Only the API is counted. Health and metrics stay reachable when the service is full (they are how operators see
/// that it is); portal pages and the API documentation do their work through API calls, which are counted.
fn exempt(path: &str) -> bool {
    !path.starts_with("/api/")
}

/// The middleware. Without `web::Data<Admission>` in the app every request is admitted.
pub async fn admission(
    req: ServiceRequest,
    next: Next<impl MessageBody + 'static>,
) -> Result<ServiceResponse<EitherBody<impl MessageBody>>, Error> {
    let Some(admission) = req.app_data::<web::Data<Admission>>().cloned() else {
        return Ok(next.call(req).await?.map_into_left_body());
    };
    if exempt(req.path()) {
        return Ok(next.call(req).await?.map_into_left_body());
    }
    let permit = match admission.slots.clone().try_acquire_owned() {
        Ok(permit) => Some(permit),
        Err(_) => tokio::time::timeout(admission.wait, admission.slots.clone().acquire_owned())
            .await
            .ok()
            .and_then(Result::ok),
    };
    let Some(_permit) = permit else {
        tracing::warn!(
            limit = admission.limit,
            path = req.path(),
            "overloaded: request turned away"
        );
        let (req, _) = req.into_parts();
        return Ok(ServiceResponse::new(req, HttpResponse::from_error(overloaded())).map_into_right_body());
    };
    Ok(next.call(req).await?.map_into_left_body())
}

fn overloaded() -> ApiError {
    ApiError::new(
        StatusCode::SERVICE_UNAVAILABLE,
        "overloaded",
        Text::fixed(
            "Der Dienst ist gerade voll ausgelastet. Bitte versuchen Sie es in einem Moment noch einmal.",
            "The service is fully loaded right now. Please try again in a moment.",
        ),
    )
    .with_header(RETRY_AFTER, HeaderValue::from_static("1"))
}
