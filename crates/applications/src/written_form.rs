//! The electronic substitute of the written form (§ 3a (2) sentence 4 no. 1, sentence 5 VwVfG): an application a
//! statute wants in writing may be made in the authority's online form when the applicant proves their identity
//! with the eID card. The proof is the eID provider's signed assertion of the login the submission was made in;
//! it goes into the case file in the submit transaction and stays there with the case.

use amtsweg_account::directory::EidAssertion;
use amtsweg_db::{DbConnection, DbError};
use amtsweg_kernel::Timestamp;
use diesel::prelude::*;
use serde::Serialize;
use utoipa::ToSchema;

use crate::schema::application_written_form;

/// The eID assertion a written-form application was submitted under.
#[derive(Debug, Clone, Serialize, ToSchema, Queryable, Selectable)]
#[diesel(table_name = application_written_form)]
pub struct WrittenFormView {
    /// The eID provider.
    pub issuer: String,
    /// The provider's stable subject of the card holder.
    pub subject: String,
    /// The level the provider asserted, as it named it.
    pub acr: Option<String>,
    /// Our trust level of the session (`high`).
    pub level: String,
    /// When the applicant logged in with the eID card.
    pub authenticated_at: Timestamp,
    /// The provider's signed ID token (a JWS), verifiable against its published keys.
    pub id_token: String,
}

/// Keeps the assertion of the submitting session in the case file.
pub(crate) fn record(
    conn: &mut DbConnection,
    application_id: &str,
    assertion: &EidAssertion,
    now: Timestamp,
) -> Result<(), DbError> {
    diesel::insert_into(application_written_form::table)
        .values((
            application_written_form::application_id.eq(application_id),
            application_written_form::issuer.eq(&assertion.issuer),
            application_written_form::subject.eq(&assertion.subject),
            application_written_form::acr.eq(assertion.acr.as_deref()),
            application_written_form::level.eq(amtsweg_kernel::TrustLevel::High.as_str()),
            application_written_form::id_token.eq(&assertion.id_token),
            application_written_form::authenticated_at.eq(assertion.authenticated_at),
            application_written_form::recorded_at.eq(now),
        ))
        .execute(conn)?;
    Ok(())
}

/// The assertion of a written-form application; `None` for every other application.
pub(crate) fn of(conn: &mut DbConnection, application_id: &str) -> Result<Option<WrittenFormView>, DbError> {
    Ok(application_written_form::table
        .find(application_id)
        .select(WrittenFormView::as_select())
        .first(conn)
        .optional()?)
}
