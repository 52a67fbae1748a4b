use actix_web::http::StatusCode;
use amtsweg_db::DbError;
use amtsweg_kernel::{ApiError, FieldError, Text};

use crate::domain::fee::FeeError;

#[derive(Debug, thiserror::Error)]
pub enum CatalogueError {
    #[error("procedure {0} not found")]
    NotFound(String),
    #[error("the payload violates the form")]
    Invalid(Vec<FieldError>),
    #[error(transparent)]
    Fee(#[from] FeeError),
    #[error(transparent)]
    Db(#[from] DbError),
}

impl From<CatalogueError> for ApiError {
    fn from(err: CatalogueError) -> ApiError {
        match err {
            CatalogueError::NotFound(id) => ApiError::not_found(
                "procedure_not_found",
                Text::fixed("Verfahren nicht gefunden.", "Procedure not found."),
            )
            .with_detail(Text::new(
                format!("Es gibt kein Verfahren mit der Kennung „{id}“."),
                format!("There is no procedure with the id “{id}”."),
            )),
            CatalogueError::Invalid(errors) => ApiError::validation(errors),
            CatalogueError::Fee(fee) => ApiError::new(
                StatusCode::UNPROCESSABLE_ENTITY,
                "fee_not_computable",
                Text::fixed(
                    "Die Gebühr kann nicht berechnet werden.",
                    "The fee cannot be computed.",
                ),
            )
            .with_detail(fee.text()),
            CatalogueError::Db(DbError::Unavailable(cause)) => ApiError::unavailable(cause),
            CatalogueError::Db(other) => ApiError::internal(other),
        }
    }
}
