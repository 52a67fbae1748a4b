use actix_web::http::StatusCode;
use actix_web::http::header::{HeaderValue, RETRY_AFTER, WWW_AUTHENTICATE};
use amtsweg_db::DbError;
use amtsweg_kernel::{ApiError, FieldError, Text};
use serde_json::json;

use crate::hasher::HashError;

#[derive(Debug, thiserror::Error)]
pub enum AccountError {
    #[error("invalid input")]
    Validation(Vec<FieldError>),
    /// Wrong e-mail, wrong password, unknown account, throttled — deliberately indistinguishable.
    #[error("login failed")]
    LoginFailed,
    #[error("the e-mail address is not verified yet")]
    EmailNotVerified,
    #[error("a TOTP code is required")]
    TotpRequired,
    #[error("the TOTP code is wrong or used")]
    TotpInvalid,
    #[error("staff must enrol TOTP first")]
    TotpEnrollmentRequired { enrollment_token: String },
    #[error("{0}")]
    Conflict(&'static str, Text),
    #[error("the link or code is invalid or expired")]
    InvalidToken,
    #[error("invalid grant")]
    InvalidGrant,
    #[error("not found")]
    NotFound(&'static str, Text),
    #[error("forbidden")]
    Forbidden(Text),
    #[error("too many requests")]
    RateLimited { retry_after_secs: u64 },
    /// Too many wrong secrets for this account lately; told only to a caller who is already known (a session).
    #[error("too many failed attempts")]
    TooManyAttempts { retry_after_secs: u64 },
    #[error("overloaded")]
    Overloaded,
    #[error("OAuth error {error}")]
    OAuth {
        status: StatusCode,
        error: &'static str,
        description: &'static str,
    },
    /// A concurrent request changed what this one relied on; the use case runs again (it never reaches a client
    /// unless it keeps happening).
    #[error("a concurrent request won the race")]
    Raced,
    #[error("eID provider: {0}")]
    Eid(String),
    #[error(transparent)]
    Db(#[from] DbError),
    #[error("{0}")]
    Internal(String),
}

impl From<diesel::result::Error> for AccountError {
    fn from(err: diesel::result::Error) -> Self {
        AccountError::Db(DbError::from(err))
    }
}

impl From<HashError> for AccountError {
    fn from(err: HashError) -> Self {
        match err {
            HashError::Overloaded => AccountError::Overloaded,
            HashError::Failed(reason) => AccountError::Internal(reason),
        }
    }
}

impl From<amtsweg_auth::TokenError> for AccountError {
    fn from(err: amtsweg_auth::TokenError) -> Self {
        AccountError::Internal(err.to_string())
    }
}

impl AccountError {
    pub fn field(pointer: &str, code: &'static str, message: Text) -> AccountError {
        AccountError::Validation(vec![FieldError::at_pointer(pointer, code, message)])
    }
}

fn unauthorized(code: &'static str, de: &'static str, en: &'static str) -> ApiError {
    ApiError::new(StatusCode::UNAUTHORIZED, code, Text::fixed(de, en))
}

impl From<AccountError> for ApiError {
    fn from(err: AccountError) -> ApiError {
        match err {
            AccountError::Validation(errors) => ApiError::validation(errors),
            AccountError::LoginFailed => unauthorized(
                "login_failed",
                "Anmeldung fehlgeschlagen. Bitte prüfen Sie E-Mail-Adresse und Passwort oder versuchen Sie es in einigen Sekunden erneut.",
                "Login failed. Check e-mail address and password, or try again in a few seconds.",
            ),
            AccountError::EmailNotVerified => ApiError::new(
                StatusCode::FORBIDDEN,
                "email_not_verified",
                Text::fixed(
                    "Bitte bestätigen Sie zuerst Ihre E-Mail-Adresse über den Link in unserer Nachricht.",
                    "Please confirm your e-mail address first, using the link in our message.",
                ),
            ),
            AccountError::TotpRequired => unauthorized(
                "totp_required",
                "Bitte geben Sie zusätzlich den Code aus Ihrer Authenticator-App ein.",
                "Please also enter the code from your authenticator app.",
            ),
            AccountError::TotpInvalid => unauthorized(
                "totp_invalid",
                "Der Code ist falsch oder wurde schon verwendet.",
                "The code is wrong or has been used already.",
            ),
            AccountError::TotpEnrollmentRequired { enrollment_token } => unauthorized(
                "totp_enrollment_required",
                "Für Mitarbeitende ist die Zwei-Faktor-Anmeldung Pflicht. Bitte richten Sie sie jetzt ein.",
                "Two-factor login is mandatory for staff. Please set it up now.",
            )
            .with_extension("enrollment_token", json!(enrollment_token)),
            AccountError::Conflict(code, text) => ApiError::new(StatusCode::CONFLICT, code, text),
            AccountError::InvalidToken => ApiError::bad_request(
                "invalid_or_expired_token",
                Text::fixed(
                    "Der Link oder Code ist ungültig oder abgelaufen.",
                    "The link or code is invalid or has expired.",
                ),
            ),
            AccountError::InvalidGrant => ApiError::new(
                StatusCode::UNAUTHORIZED,
                "invalid_grant",
                Text::fixed(
                    "Die Sitzung ist abgelaufen; bitte melden Sie sich erneut an.",
                    "The session has expired; please log in again.",
                ),
            )
            .with_extension("error", json!("invalid_grant")),
            AccountError::NotFound(code, text) => ApiError::new(StatusCode::NOT_FOUND, code, text),
            AccountError::Forbidden(detail) => ApiError::new(
                StatusCode::FORBIDDEN,
                "forbidden",
                Text::fixed("Zugriff verweigert.", "Access is denied."),
            )
            .with_detail(detail),
            AccountError::RateLimited { retry_after_secs } => {
                ApiError::from_status(StatusCode::TOO_MANY_REQUESTS)
                    .with_detail(Text::fixed(
                        "Zu viele Anmeldeversuche von dieser Adresse. Bitte warten Sie einen Moment.",
                        "Too many authentication requests from this address. Please wait a moment.",
                    ))
                    .with_header(RETRY_AFTER, HeaderValue::from(retry_after_secs))
            }
            AccountError::TooManyAttempts { retry_after_secs } => ApiError::new(
                StatusCode::TOO_MANY_REQUESTS,
                "too_many_attempts",
                Text::fixed(
                    "Zu viele Fehlversuche. Bitte warten Sie, bevor Sie es erneut versuchen.",
                    "Too many failed attempts. Please wait before you try again.",
                ),
            )
            .with_header(RETRY_AFTER, HeaderValue::from(retry_after_secs)),
            AccountError::Overloaded => ApiError::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "overloaded",
                Text::fixed(
                    "Gerade melden sich sehr viele Menschen an. Bitte versuchen Sie es gleich noch einmal.",
                    "Very many people are logging in right now. Please try again in a moment.",
                ),
            )
            .with_header(RETRY_AFTER, HeaderValue::from_static("1")),
            AccountError::OAuth {
                status,
                error,
                description,
            } => {
                let mut problem = ApiError::new(status, error, Text::new(description, description))
                    .with_extension("error", json!(error))
                    .with_extension("error_description", json!(description));
                if status == StatusCode::UNAUTHORIZED {
                    problem = problem.with_header(
                        WWW_AUTHENTICATE,
                        HeaderValue::from_static("Basic realm=\"amtsweg\""),
                    );
                }
                problem
            }
            AccountError::Eid(reason) => {
                tracing::warn!(%reason, "eID login failed");
                ApiError::new(
                    StatusCode::BAD_GATEWAY,
                    "eid_failed",
                    Text::fixed(
                        "Die Anmeldung mit dem Online-Ausweis ist fehlgeschlagen.",
                        "The eID login failed.",
                    ),
                )
            }
            AccountError::Raced => ApiError::new(
                StatusCode::CONFLICT,
                "concurrent_change",
                Text::fixed(
                    "Eine gleichzeitige Anfrage hat dieselben Daten geändert. Bitte versuchen Sie es erneut.",
                    "A concurrent request changed the same data. Please try again.",
                ),
            ),
            AccountError::Db(DbError::Unavailable(cause)) => ApiError::unavailable(cause),
            AccountError::Db(other) => ApiError::internal(other),
            AccountError::Internal(reason) => ApiError::internal(reason),
        }
    }
}
