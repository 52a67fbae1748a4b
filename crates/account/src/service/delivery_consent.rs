//! Consent to receive administrative acts electronically (§ 41 (2a) VwVfG): without it a decision goes out on
//! paper. Each grant is a record — when, through which session at which level — and a revocation ends it
//! without erasing it, so that the authority can show which consent a delivery relied on.

use amtsweg_audit::Outcome;
use amtsweg_kernel::Timestamp;
use diesel::prelude::*;
use serde::Serialize;
use utoipa::ToSchema;

use super::login::Realm;
use super::{AccountService, Meta, actor_for, trail};
use crate::error::AccountError;
use crate::store::schema::delivery_consents;

/// One grant of the consent.
#[derive(Debug, Clone, Serialize, ToSchema, Queryable, Selectable)]
#[diesel(table_name = delivery_consents)]
pub struct DeliveryConsentRecord {
    pub id: String,
    pub granted_at: Timestamp,
    /// How it was given, e.g. `online (session …, trust level substantial)`.
    pub granted_via: String,
    pub revoked_at: Option<Timestamp>,
}

/// The consent as it stands, with every grant and revocation.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct DeliveryConsent {
    /// Decisions are provided in the Postfach (else they go out on paper).
    pub consented: bool,
    /// Newest first.
    pub history: Vec<DeliveryConsentRecord>,
}

/// The grant in force for `account_id`, if any.
pub(crate) fn current(
    conn: &mut amtsweg_db::DbConnection,
    account_id: &str,
) -> Result<Option<DeliveryConsentRecord>, amtsweg_db::DbError> {
    Ok(delivery_consents::table
        .filter(delivery_consents::account_id.eq(account_id))
        .filter(delivery_consents::revoked_at.is_null())
        .order(delivery_consents::granted_at.desc())
        .select(DeliveryConsentRecord::as_select())
        .first(conn)
        .optional()?)
}

pub(crate) fn history(
    conn: &mut amtsweg_db::DbConnection,
    account_id: &str,
) -> Result<Vec<DeliveryConsentRecord>, amtsweg_db::DbError> {
    Ok(delivery_consents::table
        .filter(delivery_consents::account_id.eq(account_id))
        .order((delivery_consents::granted_at.desc(), delivery_consents::id.desc()))
        .select(DeliveryConsentRecord::as_select())
        .load(conn)?)
}

fn state(conn: &mut amtsweg_db::DbConnection, account_id: &str) -> Result<DeliveryConsent, AccountError> {
    let history = history(conn, account_id)?;
    Ok(DeliveryConsent {
        consented: history.iter().any(|r| r.revoked_at.is_none()),
        history,
    })
}

impl AccountService {
    pub async fn delivery_consent(&self, account_id: &str) -> Result<DeliveryConsent, AccountError> {
        let id = account_id.to_owned();
        self.db.read(move |conn| state(conn, &id)).await
    }

    /// Grants the consent (again granting one in force changes nothing).
    pub async fn grant_delivery_consent(
        &self,
        account_id: &str,
        via: String,
        meta: Meta,
    ) -> Result<DeliveryConsent, AccountError> {
        let (id, now) = (account_id.to_owned(), self.now());
        self.db
            .write(move |conn| {
                // The unique index on the grant in force makes a simultaneous second grant a no-op.
                let insert = diesel::insert_into(delivery_consents::table)
                    .values((
                        delivery_consents::id.eq(amtsweg_kernel::id::new_id()),
                        delivery_consents::account_id.eq(&id),
                        delivery_consents::granted_at.eq(now),
                        delivery_consents::granted_via.eq(&via),
                    ))
                    .on_conflict_do_nothing();
                let inserted = match conn {
                    amtsweg_db::DbConnection::Postgres(pg) => insert.execute(pg)?,
                    amtsweg_db::DbConnection::Sqlite(lite) => insert.execute(lite)?,
                };
                if inserted == 1 {
                    let actor = actor_for(Realm::Citizen, &id, &meta);
                    trail(
                        conn,
                        &actor,
                        &id,
                        "delivery_consent_granted",
                        Outcome::Success,
                        &meta,
                        now,
                    )?;
                }
                state(conn, &id)
            })
            .await
    }

    /// Revokes the consent: later decisions go out on paper; those already provided keep their course.
    pub async fn revoke_delivery_consent(
        &self,
        account_id: &str,
        meta: Meta,
    ) -> Result<DeliveryConsent, AccountError> {
        let (id, now) = (account_id.to_owned(), self.now());
        self.db
            .write(move |conn| {
                let revoked = diesel::update(
                    delivery_consents::table
                        .filter(delivery_consents::account_id.eq(&id))
                        .filter(delivery_consents::revoked_at.is_null()),
                )
                .set(delivery_consents::revoked_at.eq(now))
                .execute(conn)?;
                if revoked > 0 {
                    let actor = actor_for(Realm::Citizen, &id, &meta);
                    trail(
                        conn,
                        &actor,
                        &id,
                        "delivery_consent_revoked",
                        Outcome::Success,
                        &meta,
                        now,
                    )?;
                }
                state(conn, &id)
            })
            .await
    }
}
