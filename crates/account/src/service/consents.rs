//! Consents — a citizen grants a named procedure or authority the use of named profile attributes, and can revoke
//! it; the record stays — and the citizen's own log of security events.

use std::collections::BTreeSet;

use amtsweg_audit::Outcome;

use amtsweg_kernel::pagination::{Page, PageRequest};
use amtsweg_kernel::{FieldError, Text, Timestamp, TrustLevel};
use diesel::prelude::*;
use serde::Serialize;
use utoipa::ToSchema;

use super::login::Realm;
use super::{AccountService, Meta, actor_for, trail};
use crate::error::AccountError;
use crate::events;
use crate::store::schema::{consents, security_events};

/// Attributes of the profile that can be shared with consent.
pub const SHAREABLE: [&str; 6] = [
    "given_name",
    "family_name",
    "date_of_birth",
    "address",
    "phone",
    "email",
];

#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct ConsentView {
    pub id: String,
    /// `procedure` or `authority`.
    pub recipient_kind: String,
    /// Procedure id or official municipality key (AGS) of the authority.
    pub recipient_id: String,
    pub attributes: Vec<String>,
    pub granted_at: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub revoked_at: Option<String>,
}

#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct SecurityEventView {
    pub id: String,
    pub at: String,
    /// e.g. `login_succeeded`, `login_failed`, `password_changed`, `totp_enabled`, `exported`.
    pub kind: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub address: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub user_agent: Option<String>,
}

#[derive(Queryable)]
struct EventRow {
    id: String,
    at: Timestamp,
    kind: String,
    address: Option<String>,
    user_agent: Option<String>,
}

#[derive(Queryable, Selectable)]
#[diesel(table_name = consents)]
pub(crate) struct ConsentRow {
    id: String,
    recipient_kind: String,
    recipient_id: String,
    attributes: String,
    granted_at: Timestamp,
    revoked_at: Option<Timestamp>,
}

impl ConsentRow {
    pub(crate) fn view(self) -> ConsentView {
        ConsentView {
            attributes: self.attribute_list().map(str::to_owned).collect(),
            id: self.id,
            recipient_kind: self.recipient_kind,
            recipient_id: self.recipient_id,
            granted_at: self.granted_at.rfc3339(),
            revoked_at: self.revoked_at.map(Timestamp::rfc3339),
        }
    }

    fn attribute_list(&self) -> impl Iterator<Item = &str> {
        self.attributes.split(',').filter(|a| !a.is_empty())
    }

    /// The `data` of its life-cycle events.
    fn state<'a>(&'a self, account_id: &'a str) -> events::ConsentState<'a> {
        events::ConsentState {
            account_id,
            consent_id: &self.id,
            recipient_kind: &self.recipient_kind,
            recipient_id: &self.recipient_id,
            attributes: self.attribute_list().collect(),
        }
    }
}

fn not_found_consent() -> AccountError {
    AccountError::NotFound(
        "consent_not_found",
        Text::fixed("Einwilligung nicht gefunden.", "Consent not found."),
    )
}

impl AccountService {
    /// The trust level a session needs to consent to passing data to a recipient: a procedure's own level; for an
    /// authority (by AGS), the level of its most demanding procedure — it may use the data for any of them.
    /// `None` for an unknown recipient (the consent is refused as such).
    pub fn required_level(&self, recipient_kind: &str, recipient_id: &str) -> Option<TrustLevel> {
        let catalogue = self.catalogue.catalogue();
        match recipient_kind {
            "procedure" => catalogue.get(recipient_id).map(|p| p.procedure.trust_level),
            "authority" => catalogue
                .iter()
                .filter(|p| p.procedure.authority.ags == recipient_id)
                .map(|p| p.procedure.trust_level)
                .max(),
            _ => None,
        }
    }

    /// Grants a procedure (by id) or an authority (by AGS) the use of named profile attributes.
    pub async fn grant_consent(
        &self,
        account_id: &str,
        recipient_kind: &str,
        recipient_id: &str,
        attributes: Vec<String>,
        meta: Meta,
    ) -> Result<ConsentView, AccountError> {
        let mut errors = Vec::new();
        let known = match recipient_kind {
            "procedure" => self.catalogue.catalogue().get(recipient_id).is_some(),
            "authority" => self
                .catalogue
                .catalogue()
                .iter()
                .any(|p| p.procedure.authority.ags == recipient_id),
            _ => {
                errors.push(FieldError::at_pointer(
                    "/recipient/kind",
                    "not_allowed",
                    Text::fixed(
                        "Erlaubt sind „procedure“ und „authority“.",
                        "Allowed are “procedure” and “authority”.",
                    ),
                ));
                true
            }
        };
        if !known {
            errors.push(FieldError::at_pointer(
                "/recipient/id",
                "unknown_recipient",
                Text::fixed(
                    "Kein Verfahren oder keine Behörde mit dieser Kennung.",
                    "No procedure or authority with this id.",
                ),
            ));
        }
        let mut unique = BTreeSet::new();
        for (i, attribute) in attributes.iter().enumerate() {
            if !SHAREABLE.contains(&attribute.as_str()) {
                errors.push(FieldError::at_pointer(
                    format!("/attributes/{i}"),
                    "not_allowed",
                    Text::new(
                        format!("Erlaubt sind: {}.", SHAREABLE.join(", ")),
                        format!("Allowed are: {}.", SHAREABLE.join(", ")),
                    ),
                ));
            }
            unique.insert(attribute.clone());
        }
        if attributes.is_empty() {
            errors.push(FieldError::at_pointer(
                "/attributes",
                "too_few_items",
                Text::fixed("Mindestens ein Merkmal.", "At least one attribute."),
            ));
        }
        if !errors.is_empty() {
            return Err(AccountError::Validation(errors));
        }
        let now = self.now();
        let (account_id, kind, recipient) = (
            account_id.to_owned(),
            recipient_kind.to_owned(),
            recipient_id.to_owned(),
        );
        self.db
            .write(move |conn| {
                let consent = ConsentRow {
                    id: amtsweg_kernel::id::new_id(),
                    recipient_kind: kind,
                    recipient_id: recipient,
                    attributes: unique.into_iter().collect::<Vec<_>>().join(","),
                    granted_at: now,
                    revoked_at: None,
                };
                diesel::insert_into(consents::table)
                    .values((
                        consents::id.eq(&consent.id),
                        consents::account_id.eq(&account_id),
                        consents::recipient_kind.eq(&consent.recipient_kind),
                        consents::recipient_id.eq(&consent.recipient_id),
                        consents::attributes.eq(&consent.attributes),
                        consents::granted_at.eq(now),
                    ))
                    .execute(conn)?;
                trail(
                    conn,
                    &actor_for(Realm::Citizen, &account_id, &meta),
                    &account_id,
                    "consent_granted",
                    Outcome::Success,
                    &meta,
                    now,
                )?;
                events::consent(conn, &events::CONSENT_GRANTED, &consent.state(&account_id), now)?;
                Ok(consent.view())
            })
            .await
    }

    /// The account's consents, newest first (ids are time-ordered), one page before the id `page.after`.
    pub async fn consents(
        &self,
        account_id: &str,
        page: PageRequest,
    ) -> Result<Page<ConsentView>, AccountError> {
        let id = account_id.to_owned();
        self.db
            .read(move |conn| {
                let mut query = consents::table.filter(consents::account_id.eq(&id)).into_boxed();
                if let Some(before) = &page.after {
                    query = query.filter(consents::id.lt(before.clone()));
                }
                let rows: Vec<ConsentRow> = query
                    .order(consents::id.desc())
                    .limit(i64::try_from(page.limit + 1).unwrap_or(101))
                    .select(ConsentRow::as_select())
                    .load(conn)?;
                let items = rows.into_iter().map(ConsentRow::view).collect();
                Ok(Page::from_overfetched(items, page.limit, |c: &ConsentView| {
                    c.id.clone()
                }))
            })
            .await
    }

    /// Revokes one of the caller's consents; someone else's consent is "not found".
    pub async fn revoke_consent(
        &self,
        account_id: &str,
        consent_id: &str,
        meta: Meta,
    ) -> Result<ConsentView, AccountError> {
        let now = self.now();
        let (account_id, consent_id) = (account_id.to_owned(), consent_id.to_owned());
        self.db
            .write(move |conn| {
                let own = consents::table
                    .find(&consent_id)
                    .filter(consents::account_id.eq(&account_id));
                let Some(mut consent) = own.select(ConsentRow::as_select()).first(conn).optional()? else {
                    return Err(not_found_consent());
                };
                if consent.revoked_at.is_none() {
                    diesel::update(own)
                        .set(consents::revoked_at.eq(now))
                        .execute(conn)?;
                    consent.revoked_at = Some(now);
                    trail(
                        conn,
                        &actor_for(Realm::Citizen, &account_id, &meta),
                        &account_id,
                        "consent_revoked",
                        Outcome::Success,
                        &meta,
                        now,
                    )?;
                    events::consent(conn, &events::CONSENT_REVOKED, &consent.state(&account_id), now)?;
                }
                Ok(consent.view())
            })
            .await
    }

    /// The account's security events, newest first.
    pub async fn security_events(
        &self,
        account_id: &str,
        page: PageRequest,
    ) -> Result<Page<SecurityEventView>, AccountError> {
        let id = account_id.to_owned();
        self.db
            .read(move |conn| {
                let mut query = security_events::table
                    .filter(security_events::account_id.eq(&id))
                    .into_boxed();
                if let Some(before) = &page.after {
                    query = query.filter(security_events::id.lt(before.clone()));
                }
                let limit = i64::try_from(page.limit + 1).unwrap_or(101);
                let rows: Vec<EventRow> = query
                    .order(security_events::id.desc())
                    .limit(limit)
                    .select((
                        security_events::id,
                        security_events::at,
                        security_events::kind,
                        security_events::address,
                        security_events::user_agent,
                    ))
                    .load(conn)?;
                let items = rows
                    .into_iter()
                    .map(|e| SecurityEventView {
                        id: e.id,
                        at: e.at.rfc3339(),
                        kind: e.kind,
                        address: e.address,
                        user_agent: e.user_agent,
                    })
                    .collect();
                Ok(Page::from_overfetched(
                    items,
                    page.limit,
                    |e: &SecurityEventView| e.id.clone(),
                ))
            })
            .await
    }
}
