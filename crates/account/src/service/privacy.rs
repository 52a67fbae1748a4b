//! GDPR: the export of everything stored about an account (Art. 15) across every registered module, erasure of
//! what no retention duty covers (Art. 17(3)) with the rest flagged by its legal basis, and the flagging of
//! accounts unused for two years.

use amtsweg_audit::Outcome;
use amtsweg_db::personal_data::{PersonalData, Retained};
use amtsweg_db::{DbConnection, DbError};
use amtsweg_kernel::Timestamp;
use chrono::Duration;
use diesel::prelude::*;
use serde::Serialize;
use serde_json::{Value, json};
use utoipa::ToSchema;

use super::consents::ConsentRow;
use super::guard::ThrottleKey;
use super::login::Realm;
use super::{AccountService, Meta, actor_for, audit, send, trail};
use crate::error::AccountError;
use crate::events;
use crate::store;
use crate::store::schema::*;
use crate::templates;

// The rows of the export; their field names are the export's, so most serialise as they are read.

#[derive(Queryable, Selectable)]
#[diesel(table_name = sessions)]
struct SessionRow {
    id: String,
    acr: String,
    amr: String,
    created_at: Timestamp,
    last_seen_at: Timestamp,
    revoked_at: Option<Timestamp>,
    address: Option<String>,
    user_agent: Option<String>,
}

#[derive(Serialize)]
struct ExportedSession<'a> {
    id: String,
    acr: String,
    amr: Vec<&'a str>,
    created_at: Timestamp,
    last_seen_at: Timestamp,
    ended_at: Option<Timestamp>,
    address: Option<String>,
    user_agent: Option<String>,
}

#[derive(Queryable, Selectable, Serialize)]
#[diesel(table_name = security_events)]
struct ExportedEvent {
    at: Timestamp,
    kind: String,
    address: Option<String>,
    user_agent: Option<String>,
}

#[derive(Queryable, Selectable, Serialize)]
#[diesel(table_name = organisation_members)]
struct ExportedMembership {
    organisation_id: String,
    role: String,
    #[diesel(column_name = added_at)]
    since: Timestamp,
}

#[derive(Queryable, Selectable, Serialize)]
#[diesel(table_name = eid_links)]
struct ExportedEidLink {
    issuer: String,
    subject: String,
    linked_at: Timestamp,
}

#[derive(Queryable, Selectable, Serialize)]
#[diesel(table_name = organisation_invitations)]
struct ExportedInvitation {
    organisation_id: String,
    role: String,
    status: String,
    #[diesel(column_name = created_at)]
    invited_at: Timestamp,
    answered_at: Option<Timestamp>,
}

/// The account service's part of the export and erasure.
pub struct AccountPersonalData;

impl PersonalData for AccountPersonalData {
    fn section(&self) -> &'static str {
        "account"
    }

    fn tables(&self) -> &'static [&'static str] {
        &[
            "accounts",
            "profiles",
            "organisation_members",
            "email_tokens",
            "sessions",
            "refresh_tokens",
            "recovery_codes",
            "pending_totp",
            "organisation_invitations",
            "consents",
            "delivery_consents",
            "security_events",
            "staff_roles",
            "eid_links",
            "eid_assertions",
            "oidc_states",
        ]
    }

    fn export(&self, conn: &mut DbConnection, account_id: &str) -> Result<Value, DbError> {
        let Some(account) = store::account(conn, account_id)? else {
            return Ok(Value::Null);
        };
        let profile = super::profile::load_profile(conn, account_id).map_err(|err| match err {
            AccountError::Db(db) => db,
            other => DbError::Task(other.to_string()),
        })?;
        let consents: Vec<ConsentRow> = consents::table
            .filter(consents::account_id.eq(account_id))
            .order(consents::granted_at.asc())
            .select(ConsentRow::as_select())
            .load(conn)?;
        let sessions: Vec<SessionRow> = sessions::table
            .filter(sessions::account_id.eq(account_id))
            .order(sessions::created_at.asc())
            .select(SessionRow::as_select())
            .load(conn)?;
        let events: Vec<ExportedEvent> = security_events::table
            .filter(security_events::account_id.eq(account_id))
            .order(security_events::id.asc())
            .select(ExportedEvent::as_select())
            .load(conn)?;
        let memberships: Vec<ExportedMembership> = organisation_members::table
            .filter(organisation_members::account_id.eq(account_id))
            .select(ExportedMembership::as_select())
            .load(conn)?;
        let links: Vec<ExportedEidLink> = eid_links::table
            .filter(eid_links::account_id.eq(account_id))
            .select(ExportedEidLink::as_select())
            .load(conn)?;
        let roles = store::staff_roles_of(conn, account_id)?;
        let invitations: Vec<ExportedInvitation> = organisation_invitations::table
            .filter(
                organisation_invitations::email_key
                    .nullable()
                    .eq(account.email_key.as_deref())
                    .or(organisation_invitations::answered_by.eq(account_id)),
            )
            .select(ExportedInvitation::as_select())
            .load(conn)?;
        let assertions: Vec<(String, String, Option<String>, Timestamp)> = eid_assertions::table
            .filter(eid_assertions::account_id.eq(account_id))
            .order(eid_assertions::authenticated_at.asc())
            .select((
                eid_assertions::session_id,
                eid_assertions::issuer,
                eid_assertions::acr,
                eid_assertions::authenticated_at,
            ))
            .load(conn)?;
        let pending_links: Vec<Timestamp> = oidc_states::table
            .filter(oidc_states::account_id.eq(account_id))
            .select(oidc_states::created_at)
            .load(conn)?;
        Ok(json!({
            "account": {
                "id": account.id,
                "realm": account.realm,
                "kind": account.kind,
                "email": account.email,
                "name": account.display_name,
                "preferred_language": account.preferred_language,
                "status": account.status,
                "email_verified_at": account.email_verified_at.map(Timestamp::rfc3339),
                "totp_enabled": account.totp_enabled_at.is_some(),
                "register_number": account.register_number,
                "created_at": account.created_at.rfc3339(),
                "updated_at": account.updated_at.rfc3339(),
                "last_login_at": account.last_login_at.map(Timestamp::rfc3339),
                "deletion_flagged_at": account.deletion_flagged_at.map(Timestamp::rfc3339),
                "deactivated_at": account.deactivated_at.map(Timestamp::rfc3339),
            },
            "profile": profile.map(|p| json!({
                "given_name": p.given_name, "family_name": p.family_name, "date_of_birth": p.date_of_birth,
                "address": {"street": p.street, "house_number": p.house_number, "postal_code": p.postal_code, "city": p.city, "country": p.country},
                "phone": p.phone,
                "verified_fields": p.verified_fields.split(',').filter(|f| !f.is_empty()).collect::<Vec<_>>(),
            })),
            "consents": consents.into_iter().map(ConsentRow::view).collect::<Vec<_>>(),
            "electronic_delivery": super::delivery_consent::history(conn, account_id)?,
            "sessions": sessions.iter().map(|s| ExportedSession {
                id: s.id.clone(),
                acr: s.acr.clone(),
                amr: s.amr.split_whitespace().collect(),
                created_at: s.created_at,
                last_seen_at: s.last_seen_at,
                ended_at: s.revoked_at,
                address: s.address.clone(),
                user_agent: s.user_agent.clone(),
            }).collect::<Vec<_>>(),
            "security_events": events,
            "organisations": memberships,
            "eid_links": links,
            "eid_logins": assertions.into_iter().map(|(session, issuer, acr, at)| json!({
                "session_id": session, "issuer": issuer, "acr": acr, "authenticated_at": at.rfc3339(),
            })).collect::<Vec<_>>(),
            "pending_eid_links": pending_links.into_iter().map(|at| json!({"started_at": at.rfc3339()})).collect::<Vec<_>>(),
            "invitations": invitations,
            "staff_roles": roles.into_iter().map(|(role, unit)| json!({"role": role, "unit": unit})).collect::<Vec<_>>(),
        }))
    }

    fn erase(
        &self,
        conn: &mut DbConnection,
        account_id: &str,
        now: Timestamp,
    ) -> Result<Vec<Retained>, DbError> {
        let session_ids = sessions::table
            .filter(sessions::account_id.eq(account_id))
            .select(sessions::id);
        diesel::delete(refresh_tokens::table.filter(refresh_tokens::session_id.eq_any(session_ids)))
            .execute(conn)?;
        diesel::update(sessions::table.filter(sessions::account_id.eq(account_id)))
            .set((
                sessions::revoked_at.eq(now),
                sessions::revoke_reason.eq("account_deleted"),
                sessions::address.eq(None::<String>),
                sessions::user_agent.eq(None::<String>),
            ))
            .execute(conn)?;
        diesel::delete(email_tokens::table.filter(email_tokens::account_id.eq(account_id))).execute(conn)?;
        diesel::delete(recovery_codes::table.filter(recovery_codes::account_id.eq(account_id)))
            .execute(conn)?;
        diesel::delete(pending_totp::table.filter(pending_totp::account_id.eq(account_id))).execute(conn)?;
        diesel::delete(eid_links::table.filter(eid_links::account_id.eq(account_id))).execute(conn)?;
        diesel::delete(eid_assertions::table.filter(eid_assertions::account_id.eq(account_id)))
            .execute(conn)?;
        diesel::delete(oidc_states::table.filter(oidc_states::account_id.eq(account_id))).execute(conn)?;
        diesel::delete(organisation_members::table.filter(organisation_members::account_id.eq(account_id)))
            .execute(conn)?;
        diesel::delete(security_events::table.filter(security_events::account_id.eq(account_id)))
            .execute(conn)?;
        diesel::delete(staff_roles::table.filter(staff_roles::account_id.eq(account_id))).execute(conn)?;
        diesel::delete(profiles::table.find(account_id)).execute(conn)?;
        if let Some(account) = store::account(conn, account_id)? {
            ThrottleKey::account(&account).clear(conn)?;
            if let Some(key) = &account.email_key {
                diesel::delete(
                    organisation_invitations::table.filter(organisation_invitations::email_key.eq(key)),
                )
                .execute(conn)?;
            }
        }
        diesel::update(accounts::table.find(account_id))
            .set((
                accounts::email.eq(None::<String>),
                accounts::email_key.eq(None::<String>),
                accounts::display_name.eq(""),
                accounts::password_hash.eq(None::<String>),
                accounts::totp_secret.eq(None::<String>),
                accounts::totp_enabled_at.eq(None::<Timestamp>),
                accounts::register_number.eq(None::<String>),
                accounts::status.eq("deactivated"),
                accounts::deactivated_at.eq(now),
                accounts::updated_at.eq(now),
            ))
            .execute(conn)?;
        Ok(vec![
            Retained {
                section: "account",
                category: "consents",
                legal_basis: "Art. 7(1) DSGVO: Nachweis erteilter und widerrufener Einwilligungen / proof of consents given and withdrawn",
            },
            Retained {
                section: "account",
                category: "delivery_consents",
                legal_basis: "Art. 17(3)(b) DSGVO, § 41 (2a) VwVfG: Nachweis der Einwilligung in die elektronische Bekanntgabe / proof of the consent to electronic notification",
            },
            Retained {
                section: "account",
                category: "account_id",
                legal_basis: "Art. 17(3)(b), 5(2) DSGVO: pseudonyme Kennung für Akten und Protokolle mit Aufbewahrungspflicht / pseudonymous identifier for files and logs under retention duty",
            },
            Retained {
                section: "audit",
                category: "audit_log",
                legal_basis: "Art. 17(3)(b), 32 DSGVO: manipulationssicheres Protokoll (nur Kennungen) / tamper-evident log (identifiers only)",
            },
        ])
    }
}

/// What an erasure did.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct DeletionReport {
    pub deleted: bool,
    /// Data kept, with the legal basis that requires keeping it.
    #[schema(value_type = Vec<Object>)]
    pub retained: Vec<Retained>,
}

impl AccountService {
    /// Everything stored about the account, from every module that registered a section.
    pub async fn export(&self, realm: Realm, account_id: &str, meta: Meta) -> Result<Value, AccountError> {
        let now = self.now();
        let id = account_id.to_owned();
        let registry = self.privacy.clone();
        self.db
            .write(move |conn| {
                trail(
                    conn,
                    &actor_for(realm, &id, &meta),
                    &id,
                    "exported",
                    Outcome::Success,
                    &meta,
                    now,
                )?;
                let sections = registry.export(conn, &id)?;
                Ok(json!({
                    "exported_at": now.rfc3339(),
                    "account_id": id,
                    "sections": sections,
                }))
            })
            .await
    }

    /// Erases the account's personal data in every module and deactivates it, in one transaction.
    pub async fn delete_account(
        &self,
        realm: Realm,
        account_id: &str,
        meta: Meta,
    ) -> Result<DeletionReport, AccountError> {
        let now = self.now();
        let id = account_id.to_owned();
        let registry = self.privacy.clone();
        let report = self
            .db
            .write(move |conn| {
                let account = store::account(conn, &id)?.ok_or(AccountError::LoginFailed)?;
                let retained = registry.erase(conn, &id, now)?;
                if let Some(email) = &account.email {
                    send(conn, email, None, templates::account_deleted(account.lang()), now)?;
                }
                audit(
                    conn,
                    &actor_for(realm, &id, &meta),
                    "account.deleted",
                    Some(("account", &id)),
                    Outcome::Success,
                    now,
                )?;
                events::account(
                    conn,
                    &events::ACCOUNT_DELETED,
                    &events::AccountState {
                        account_id: &id,
                        realm: &account.realm,
                        kind: &account.kind,
                        status: "deactivated",
                        via: None,
                    },
                    now,
                )?;
                Ok::<_, AccountError>(DeletionReport {
                    deleted: true,
                    retained,
                })
            })
            .await?;
        Ok(report)
    }

    /// Flags citizen accounts without a login for `inactivity_days` and tells their owners; returns how many.
    pub async fn flag_inactive_accounts(&self) -> Result<usize, AccountError> {
        let now = self.now();
        let cutoff = now - Duration::days(self.settings.inactivity_days);
        let service = self.clone();
        let flagged = self
            .db
            .write(move |conn| {
                let due: Vec<store::AccountRow> = accounts::table
                    .filter(accounts::realm.eq("citizen"))
                    .filter(accounts::kind.eq("person"))
                    .filter(accounts::status.ne("deactivated"))
                    .filter(accounts::deletion_flagged_at.is_null())
                    .filter(
                        accounts::last_login_at.lt(cutoff).or(accounts::last_login_at
                            .is_null()
                            .and(accounts::created_at.lt(cutoff))),
                    )
                    .select(store::AccountRow::as_select())
                    .load(conn)?;
                for account in &due {
                    diesel::update(accounts::table.find(&account.id))
                        .set(accounts::deletion_flagged_at.eq(now))
                        .execute(conn)?;
                    if let Some(email) = &account.email {
                        let login = format!("{}/login", service.settings.portal_url.trim_end_matches('/'));
                        send(
                            conn,
                            email,
                            Some(&account.id),
                            templates::inactive(account.lang(), &login),
                            now,
                        )?;
                    }
                    audit(
                        conn,
                        &amtsweg_audit::Actor::system(),
                        "account.flagged_inactive",
                        Some(("account", &account.id)),
                        Outcome::Success,
                        now,
                    )?;
                }
                Ok::<_, AccountError>(due.len())
            })
            .await?;
        Ok(flagged)
    }
}
