//! Request bodies: a body that stops arriving ends in 408 instead of holding its connection open, and one place
//! reads a body to its end with the size limit enforced while it streams.
//!
//! The timeout is per gap between chunks, not for the whole body, so a large upload on a slow line still works
//! as long as bytes keep coming.

use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use actix_web::body::MessageBody;
use actix_web::dev::{Payload, ServiceRequest, ServiceResponse};
use actix_web::error::PayloadError;
use actix_web::http::StatusCode;
use actix_web::http::header::CONNECTION;
use actix_web::middleware::Next;
use actix_web::web::{Bytes, BytesMut};
use actix_web::{Error, HttpMessage};
use futures_util::{Stream, StreamExt};
use tokio::time::{Instant, Sleep};

use crate::i18n::Text;
use crate::problem::ApiError;

/// How long a request body may pause before the request is answered 408 (app data).
#[derive(Debug, Clone, Copy)]
pub struct BodyIdleTimeout(pub Duration);

/// Middleware: wraps every request body in the idle timeout, and closes the connection after a 408 (whatever is
/// left of that body is not worth reading).
pub async fn body_idle_timeout(
    mut req: ServiceRequest,
    next: Next<impl MessageBody + 'static>,
) -> Result<ServiceResponse<impl MessageBody>, Error> {
    if let Some(timeout) = req.app_data::<BodyIdleTimeout>().copied() {
        let inner = req.take_payload();
        let guarded = IdleGuarded {
            inner,
            idle: timeout.0,
            deadline: Box::pin(tokio::time::sleep(timeout.0)),
            done: false,
        };
        req.set_payload(Payload::Stream {
            payload: Box::pin(guarded),
        });
    }
    let mut res = next.call(req).await?;
    if res.status() == StatusCode::REQUEST_TIMEOUT {
        res.response_mut()
            .head_mut()
            .set_connection_type(actix_web::http::ConnectionType::Close);
        res.headers_mut().insert(
            CONNECTION,
            actix_web::http::header::HeaderValue::from_static("close"),
        );
    }
    Ok(res)
}

struct IdleGuarded {
    inner: Payload,
    idle: Duration,
    deadline: Pin<Box<Sleep>>,
    done: bool,
}

fn timed_out() -> PayloadError {
    PayloadError::Io(std::io::Error::new(
        std::io::ErrorKind::TimedOut,
        "the request body stopped arriving",
    ))
}

impl Stream for IdleGuarded {
    type Item = Result<Bytes, PayloadError>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        if self.done {
            return Poll::Ready(None);
        }
        match self.inner.poll_next_unpin(cx) {
            Poll::Ready(Some(chunk)) => {
                let next = Instant::now() + self.idle;
                self.deadline.as_mut().reset(next);
                Poll::Ready(Some(chunk))
            }
            Poll::Ready(None) => {
                self.done = true;
                Poll::Ready(None)
            }
            Poll::Pending => match self.deadline.as_mut().poll(cx) {
                Poll::Ready(()) => {
                    self.done = true;
                    Poll::Ready(Some(Err(timed_out())))
                }
                Poll::Pending => Poll::Pending,
            },
        }
    }
}

/// The problem for a body that could not be read: 408 when it stopped arriving, else 400.
pub fn payload_problem(err: &PayloadError) -> ApiError {
    match err {
        PayloadError::Io(io) if io.kind() == std::io::ErrorKind::TimedOut => {
            ApiError::from_status(StatusCode::REQUEST_TIMEOUT).with_detail(Text::fixed(
                "Der Inhalt der Anfrage kam nicht rechtzeitig an.",
                "The request body stopped arriving.",
            ))
        }
        _ => ApiError::from_status(StatusCode::BAD_REQUEST),
    }
}

/// Reads a body to its end, refusing it with 413 as soon as it grows past `limit`.
pub async fn read_to_end(
    mut payload: impl Stream<Item = Result<Bytes, PayloadError>> + Unpin,
    limit: usize,
) -> Result<BytesMut, ApiError> {
    let mut body = BytesMut::new();
    while let Some(chunk) = payload.next().await {
        let chunk = chunk.map_err(|err| payload_problem(&err))?;
        if body.len() + chunk.len() > limit {
            return Err(too_large(limit));
        }
        body.extend_from_slice(&chunk);
    }
    Ok(body)
}

pub(crate) fn too_large(limit: usize) -> ApiError {
    ApiError::from_status(StatusCode::PAYLOAD_TOO_LARGE).with_detail(Text::new(
        format!("Der Inhalt darf höchstens {limit} Bytes groß sein."),
        format!("The body may be at most {limit} bytes."),
    ))
}
