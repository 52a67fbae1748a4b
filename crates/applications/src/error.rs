use actix_web::http::StatusCode;
use amtsweg_db::DbError;
use amtsweg_kernel::{ApiError, FieldError, Text};

#[derive(Debug, thiserror::Error)]
pub enum ApplicationError {
    #[error("invalid input")]
    Validation(Vec<FieldError>),
    /// No such application, or not one the caller may see: the same answer for both.
    #[error("not found")]
    NotFound,
    /// Not found, with its own code (`case_not_found`, `queue_not_found`).
    #[error("not found")]
    NotFoundAs(&'static str, Text),
    /// The caller's `If-Match` names an older version.
    #[error("stale version")]
    StaleVersion { current: i64 },
    #[error("no such procedure")]
    UnknownProcedure,
    #[error("{0}")]
    Conflict(&'static str, Text),
    #[error("forbidden")]
    Forbidden(Text),
    /// The procedure needs the written form and the session has no eID assertion.
    #[error("eID login required")]
    EidRequired,
    #[error(transparent)]
    File(#[from] amtsweg_files::FileError),
    #[error(transparent)]
    Payment(#[from] amtsweg_payment::PaymentError),
    #[error(transparent)]
    Db(#[from] DbError),
    #[error("{0}")]
    Internal(String),
}

impl From<diesel::result::Error> for ApplicationError {
    fn from(err: diesel::result::Error) -> Self {
        ApplicationError::Db(DbError::from(err))
    }
}

impl ApplicationError {
    pub fn field(pointer: &str, code: &'static str, message: Text) -> ApplicationError {
        ApplicationError::Validation(vec![FieldError::at_pointer(pointer, code, message)])
    }

    pub(crate) fn not_draft() -> ApplicationError {
        ApplicationError::Conflict(
            "application_not_draft",
            Text::fixed(
                "Der Antrag ist bereits eingereicht und kann nicht mehr geändert werden.",
                "The application has been submitted and can no longer be changed.",
            ),
        )
    }
}

impl From<ApplicationError> for ApiError {
    fn from(err: ApplicationError) -> ApiError {
        match err {
            ApplicationError::Validation(errors) => ApiError::validation(errors),
            ApplicationError::NotFound => ApiError::not_found(
                "application_not_found",
                Text::fixed("Antrag nicht gefunden.", "Application not found."),
            ),
            ApplicationError::NotFoundAs(code, text) => ApiError::not_found(code, text),
            ApplicationError::StaleVersion { current } => ApiError::new(
                StatusCode::PRECONDITION_FAILED,
                "version_mismatch",
                Text::fixed(
                    "Der Vorgang wurde inzwischen geändert. Bitte laden Sie ihn neu.",
                    "The case has changed in the meantime. Please reload it.",
                ),
            )
            .with_extension("current_version", serde_json::json!(current)),
            ApplicationError::UnknownProcedure => ApiError::validation(vec![FieldError::at_pointer(
                "/procedure_id",
                "unknown_procedure",
                Text::fixed("Diese Leistung gibt es nicht.", "There is no such procedure."),
            )]),
            ApplicationError::Conflict(code, text) => ApiError::new(StatusCode::CONFLICT, code, text),
            ApplicationError::Forbidden(text) => ApiError::new(
                StatusCode::FORBIDDEN,
                "forbidden",
                Text::fixed("Zugriff verweigert.", "Access is denied."),
            )
            .with_detail(text),
            ApplicationError::EidRequired => amtsweg_auth::eid_required(),
            ApplicationError::File(err) => err.into(),
            ApplicationError::Payment(err) => err.into(),
            ApplicationError::Db(DbError::Unavailable(cause)) => ApiError::unavailable(cause),
            ApplicationError::Db(other) => ApiError::internal(other),
            ApplicationError::Internal(reason) => ApiError::internal(reason),
        }
    }
}
