//! Login with the eID card through an external OpenID Connect provider (BundID or a Land's eID service). The
//! protocol lives in `client`; here: the single-use state of a login, the provider's `acr` mapped to our trust
//! level, the account found or created and linked by the provider's stable subject, and the data from the eID
//! stored as verified.

mod client;

use std::sync::Arc;

use amtsweg_audit::{Actor, ActorKind, Outcome};
use amtsweg_kernel::TrustLevel;
use chrono::Duration;
use diesel::prelude::*;
use serde::Serialize;
use utoipa::ToSchema;

pub use client::EidClient;
use client::{IdClaims, provider};

use super::profile::PROFILE_FIELDS;
use super::session::{NewSession, SessionTokens, open_session};
use super::{AccountService, Meta, audit, trail};
use crate::domain::email::EmailAddress;
use crate::domain::secret::random_token;
use crate::error::AccountError;
use crate::events;
use crate::store::schema::{eid_assertions, eid_links, oidc_states, profiles};
use crate::store::{self, NewAccount};

#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct EidStart {
    /// Send the browser here; the provider returns it to the configured redirect URI with `code` and `state`.
    pub authorization_url: String,
    pub state: String,
}

impl AccountService {
    fn eid(&self) -> Result<Arc<EidClient>, AccountError> {
        self.eid.clone().ok_or_else(|| {
            AccountError::NotFound(
                "eid_not_configured",
                amtsweg_kernel::Text::fixed(
                    "Die Anmeldung mit dem Online-Ausweis ist nicht eingerichtet.",
                    "eID login is not configured.",
                ),
            )
        })
    }

    /// Begins an eID login. With `link_to`, the eID is linked to that (logged-in) account instead.
    pub async fn eid_start(&self, link_to: Option<String>, meta: Meta) -> Result<EidStart, AccountError> {
        self.check_rate(&meta)?;
        let eid = self.eid()?;
        let discovery = eid.discovery().await?;
        let (state, nonce, verifier) = (random_token(), random_token(), random_token());
        let now = self.now();
        let redirect = eid.settings.redirect_uri.clone();
        {
            let (state, nonce, verifier, redirect) =
                (state.clone(), nonce.clone(), verifier.clone(), redirect.clone());
            self.db
                .write(move |conn| {
                    diesel::delete(oidc_states::table.filter(oidc_states::expires_at.lt(now)))
                        .execute(conn)?;
                    diesel::insert_into(oidc_states::table)
                        .values((
                            oidc_states::state.eq(&state),
                            oidc_states::code_verifier.eq(&verifier),
                            oidc_states::nonce.eq(&nonce),
                            oidc_states::redirect_uri.eq(&redirect),
                            oidc_states::account_id.eq(link_to.as_deref()),
                            oidc_states::created_at.eq(now),
                            oidc_states::expires_at.eq(now + Duration::minutes(10)),
                        ))
                        .execute(conn)?;
                    Ok::<_, AccountError>(())
                })
                .await?;
        }
        let url = eid
            .authorization_url(&discovery, &state, &nonce, &verifier)
            .map_err(provider)?;
        Ok(EidStart {
            authorization_url: url,
            state,
        })
    }

    /// Completes an eID login with the `code` and `state` the provider returned.
    pub async fn eid_callback(
        &self,
        code: &str,
        state: &str,
        meta: Meta,
    ) -> Result<SessionTokens, AccountError> {
        self.check_rate(&meta)?;
        let eid = self.eid()?;
        let now = self.now();
        let state = state.to_owned();
        let stored: Option<(String, String, String, Option<String>)> = self
            .db
            .write(move |conn| {
                // Used up with one conditional update: of two callbacks with one state, one wins.
                let taken = diesel::update(
                    oidc_states::table
                        .find(&state)
                        .filter(oidc_states::used_at.is_null())
                        .filter(oidc_states::expires_at.gt(now)),
                )
                .set(oidc_states::used_at.eq(now))
                .execute(conn)?;
                if taken == 0 {
                    return Ok(None);
                }
                let row: Option<(String, String, String, Option<String>)> = oidc_states::table
                    .find(&state)
                    .select((
                        oidc_states::code_verifier,
                        oidc_states::nonce,
                        oidc_states::redirect_uri,
                        oidc_states::account_id,
                    ))
                    .first(conn)
                    .optional()?;
                Ok::<_, AccountError>(row)
            })
            .await?;
        let Some((verifier, nonce, redirect, link_to)) = stored else {
            return Err(AccountError::InvalidToken);
        };

        let claims = eid.verified_claims(code, &redirect, &verifier, &nonce).await?;
        let level = claims
            .acr
            .as_deref()
            .and_then(|acr| eid.settings.acr_values.get(acr).copied())
            .unwrap_or(TrustLevel::Basic)
            .min(self.settings.acr.eid);
        let issuer = eid.discovery().await?.issuer;
        // Two first logins with one eID at once: the second finds the link taken and runs again, now as a login
        // to the account the first one created.
        let mut round = 0;
        loop {
            round += 1;
            let outcome = self
                .finish_eid_login(
                    issuer.clone(),
                    claims.clone(),
                    link_to.clone(),
                    level,
                    meta.clone(),
                    now,
                )
                .await;
            match outcome {
                Err(AccountError::Raced) if round < 3 => continue,
                other => return other,
            }
        }
    }

    async fn finish_eid_login(
        &self,
        issuer: String,
        claims: IdClaims,
        link_to: Option<String>,
        level: TrustLevel,
        meta: Meta,
        now: amtsweg_kernel::Timestamp,
    ) -> Result<SessionTokens, AccountError> {
        let service = self.clone();
        self.db
            .write(move |conn| {
                let linked: Option<String> = eid_links::table
                    .find((&issuer, &claims.sub))
                    .select(eid_links::account_id)
                    .first(conn)
                    .optional()?;
                let account_id = match (linked, link_to) {
                    (Some(existing), Some(wanted)) if existing != wanted => {
                        return Err(AccountError::Conflict(
                            "eid_linked_elsewhere",
                            amtsweg_kernel::Text::fixed(
                                "Dieser Ausweis ist bereits mit einem anderen Konto verbunden.",
                                "This eID is already linked to another account.",
                            ),
                        ));
                    }
                    (Some(existing), _) => existing,
                    (None, Some(wanted)) => link(conn, &issuer, &claims.sub, &wanted, now)?,
                    (None, None) => {
                        let id = create_from_eid(conn, &claims, now)?;
                        events::account(
                            conn,
                            &events::ACCOUNT_CREATED,
                            &events::AccountState {
                                account_id: &id,
                                realm: "citizen",
                                kind: "person",
                                status: "active",
                                via: Some("eid"),
                            },
                            now,
                        )?;
                        link(conn, &issuer, &claims.sub, &id, now)?
                    }
                };
                apply_verified_profile(conn, &account_id, &claims, now)?;
                let account = store::account(conn, &account_id)?.ok_or(AccountError::LoginFailed)?;
                if account.status != "active" {
                    return Err(AccountError::LoginFailed);
                }
                let actor = Actor::new(ActorKind::Citizen, &account_id, meta.address.clone());
                let tokens = open_session(
                    &service,
                    conn,
                    NewSession {
                        account: &account,
                        acr: level,
                        amr: vec!["eid".into()],
                        meta: &meta,
                    },
                    now,
                )?;
                diesel::insert_into(eid_assertions::table)
                    .values((
                        eid_assertions::session_id.eq(&tokens.session_id),
                        eid_assertions::account_id.eq(&account_id),
                        eid_assertions::issuer.eq(&issuer),
                        eid_assertions::subject.eq(&claims.sub),
                        eid_assertions::acr.eq(claims.acr.as_deref()),
                        eid_assertions::id_token.eq(&claims.id_token),
                        eid_assertions::authenticated_at.eq(now),
                    ))
                    .execute(conn)?;
                trail(
                    conn,
                    &actor,
                    &account_id,
                    "login_succeeded",
                    Outcome::Success,
                    &meta,
                    now,
                )?;
                audit(
                    conn,
                    &actor,
                    "auth.eid_login",
                    Some(("account", &account_id)),
                    Outcome::Success,
                    now,
                )?;
                Ok(tokens)
            })
            .await
    }
}

fn link(
    conn: &mut store::Conn,
    issuer: &str,
    subject: &str,
    account_id: &str,
    now: amtsweg_kernel::Timestamp,
) -> Result<String, AccountError> {
    let insert = diesel::insert_into(eid_links::table)
        .values((
            eid_links::issuer.eq(issuer),
            eid_links::subject.eq(subject),
            eid_links::account_id.eq(account_id),
            eid_links::linked_at.eq(now),
        ))
        .on_conflict_do_nothing();
    let inserted = match conn {
        store::Conn::Postgres(pg) => insert.execute(pg)?,
        store::Conn::Sqlite(lite) => insert.execute(lite)?,
    };
    if inserted == 0 {
        // A concurrent login linked this eID first; this transaction rolls back and the login runs again.
        return Err(AccountError::Raced);
    }
    Ok(account_id.to_owned())
}

/// A first eID login creates an account. The provider's e-mail is taken only when it says it verified it and no
/// other account uses it.
fn create_from_eid(
    conn: &mut store::Conn,
    claims: &IdClaims,
    now: amtsweg_kernel::Timestamp,
) -> Result<String, AccountError> {
    let email = claims
        .email
        .as_deref()
        .filter(|_| claims.email_verified == Some(true))
        .and_then(EmailAddress::parse);
    let name = [claims.given_name.as_deref(), claims.family_name.as_deref()]
        .into_iter()
        .flatten()
        .collect::<Vec<_>>()
        .join(" ");
    let id = amtsweg_kernel::id::new_id();
    fn new<'a>(id: &'a str, name: &'a str, email: Option<&'a EmailAddress>) -> NewAccount<'a> {
        NewAccount {
            id,
            realm: "citizen",
            kind: "person",
            email: email.map(EmailAddress::as_str),
            email_key: email.map(EmailAddress::key),
            display_name: if name.is_empty() { "eID" } else { name },
            password_hash: None,
            preferred_language: amtsweg_kernel::Lang::De,
            status: "active",
            register_number: None,
        }
    }
    // An address another account already uses stays with that account; this one starts without.
    let with_email = match &email {
        Some(email) => store::insert_account(conn, &new(&id, &name, Some(email)), now)?,
        None => false,
    };
    if with_email {
        diesel::update(crate::store::schema::accounts::table.find(&id))
            .set(crate::store::schema::accounts::email_verified_at.eq(now))
            .execute(conn)?;
    } else if !store::insert_account(conn, &new(&id, &name, None), now)? {
        return Err(AccountError::Internal("account id collision".into()));
    }
    Ok(id)
}

/// Writes what the eID asserted into the profile and marks those fields verified (not editable by hand).
fn apply_verified_profile(
    conn: &mut store::Conn,
    account_id: &str,
    claims: &IdClaims,
    now: amtsweg_kernel::Timestamp,
) -> Result<(), AccountError> {
    let address = claims.address.as_ref();
    let values: [(&str, Option<String>); 7] = [
        ("given_name", claims.given_name.clone()),
        ("family_name", claims.family_name.clone()),
        ("date_of_birth", claims.birthdate.clone()),
        ("street", address.and_then(|a| a.street_address.clone())),
        ("postal_code", address.and_then(|a| a.postal_code.clone())),
        ("city", address.and_then(|a| a.locality.clone())),
        ("country", address.and_then(|a| a.country.clone())),
    ];
    let verified: Vec<&str> = values
        .iter()
        .filter(|(_, v)| v.is_some())
        .map(|(f, _)| *f)
        .filter(|f| PROFILE_FIELDS.contains(f))
        .collect();
    let target = || profiles::table.find(account_id);
    for (field, value) in &values {
        let Some(value) = value else { continue };
        match *field {
            "given_name" => diesel::update(target())
                .set(profiles::given_name.eq(value))
                .execute(conn)?,
            "family_name" => diesel::update(target())
                .set(profiles::family_name.eq(value))
                .execute(conn)?,
            "date_of_birth" => diesel::update(target())
                .set(profiles::date_of_birth.eq(value))
                .execute(conn)?,
            "street" => diesel::update(target())
                .set(profiles::street.eq(value))
                .execute(conn)?,
            "postal_code" => diesel::update(target())
                .set(profiles::postal_code.eq(value))
                .execute(conn)?,
            "city" => diesel::update(target())
                .set(profiles::city.eq(value))
                .execute(conn)?,
            _ => diesel::update(target())
                .set(profiles::country.eq(value))
                .execute(conn)?,
        };
    }
    diesel::update(target())
        .set((
            profiles::verified_fields.eq(verified.join(",")),
            profiles::updated_at.eq(now),
        ))
        .execute(conn)?;
    Ok(())
}
