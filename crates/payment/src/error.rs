//! How payment errors reach API clients.

use actix_web::http::StatusCode;
use actix_web::http::header::{HeaderValue, RETRY_AFTER};
use amtsweg_db::DbError;
use amtsweg_kernel::{ApiError, FieldError, Text};

use crate::provider::ProviderError;
use crate::service::PaymentError;

impl From<PaymentError> for ApiError {
    fn from(err: PaymentError) -> ApiError {
        match err {
            PaymentError::NotFound => ApiError::not_found(
                "payment_not_found",
                Text::fixed("Zahlung nicht gefunden.", "Payment not found."),
            ),
            PaymentError::Invalid(problems) => ApiError::new(
                StatusCode::UNPROCESSABLE_ENTITY,
                "payment_invalid",
                Text::fixed(
                    "Die Zahlung verletzt die Grenzen der Zahlungsplattform.",
                    "The payment breaks the payment platform's limits.",
                ),
            )
            .with_errors(
                problems
                    .into_iter()
                    .map(|(pointer, code, reason)| {
                        FieldError::at_pointer(pointer, code, Text::new(reason.clone(), reason))
                    })
                    .collect(),
            ),
            PaymentError::NotPayable(state) => ApiError::conflict(
                "payment_not_payable",
                Text::fixed(
                    "Diese Zahlung kann nicht (mehr) online bezahlt werden.",
                    "This payment cannot be paid online (any more).",
                ),
            )
            .with_extension("state", serde_json::json!(state)),
            PaymentError::WrongState(state) => ApiError::conflict(
                "payment_state",
                Text::fixed(
                    "In diesem Stand ist das bei der Zahlung nicht möglich.",
                    "This is not possible for the payment in its current state.",
                ),
            )
            .with_extension("state", serde_json::json!(state)),
            PaymentError::RefundConflict(available) => ApiError::new(
                StatusCode::PRECONDITION_FAILED,
                "refund_amount_available_mismatch",
                Text::fixed(
                    "Der noch erstattbare Betrag ist ein anderer; bitte laden Sie die Zahlung neu.",
                    "The amount still refundable differs; please reload the payment.",
                ),
            )
            .with_extension("available_cents", serde_json::json!(available)),
            PaymentError::Provider(ProviderError::Unavailable(cause)) => {
                tracing::warn!(%cause, "payment provider unavailable");
                ApiError::new(
                    StatusCode::SERVICE_UNAVAILABLE,
                    "payment_provider_unavailable",
                    Text::fixed(
                        "Die Zahlungsplattform ist gerade nicht erreichbar. Bitte versuchen Sie es in einigen Minuten erneut.",
                        "The payment platform cannot be reached right now. Please try again in a few minutes.",
                    ),
                )
                .with_header(RETRY_AFTER, HeaderValue::from_static("60"))
            }
            PaymentError::Provider(err) => {
                tracing::error!(error = %err, "payment provider refused");
                ApiError::new(
                    StatusCode::BAD_GATEWAY,
                    "payment_provider_error",
                    Text::fixed(
                        "Die Zahlungsplattform hat die Zahlung abgelehnt.",
                        "The payment platform refused the payment.",
                    ),
                )
            }
            PaymentError::Notice(err) => ApiError::bad_request(
                "notification_rejected",
                Text::fixed("Benachrichtigung abgelehnt.", "Notification rejected."),
            )
            .with_detail(Text::new(err.to_string(), err.to_string())),
            PaymentError::Db(DbError::Unavailable(cause)) => ApiError::unavailable(cause),
            PaymentError::Db(other) => ApiError::internal(other),
        }
    }
}
