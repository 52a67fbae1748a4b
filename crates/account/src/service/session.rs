//! Sessions: opening one with its first tokens, refreshing (single-use refresh tokens; reuse ends the whole
//! session), logging out, and the check behind every token that the session is still open.

use amtsweg_audit::Outcome;
use amtsweg_auth::TokenSpec;
use amtsweg_kernel::Timestamp;
use amtsweg_kernel::TrustLevel;
use chrono::Duration;
use diesel::prelude::*;
use serde::Serialize;
use utoipa::ToSchema;

use super::login::Realm;
use super::{AccountService, Meta, actor_for, audit, trail};
use crate::domain::secret::{hash_token, random_token};
use crate::error::AccountError;
use crate::store::schema::{accounts, api_clients, refresh_tokens, sessions};
use crate::store::{self, AccountRow, Conn};

/// What a successful login or refresh hands out.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct SessionTokens {
    pub access_token: String,
    pub token_type: &'static str,
    /// Seconds until the access token expires.
    pub expires_in: i64,
    /// Opaque, single-use; exchange it at the refresh endpoint for new tokens.
    pub refresh_token: String,
    /// The trust level reached: `basic`, `substantial` or `high`.
    pub acr: TrustLevel,
    pub amr: Vec<String>,
    /// The session the tokens belong to (not part of the answer).
    #[serde(skip)]
    pub(crate) session_id: String,
}

pub(crate) struct NewSession<'a> {
    pub account: &'a AccountRow,
    pub acr: TrustLevel,
    pub amr: Vec<String>,
    pub meta: &'a Meta,
}

/// Opens a session and hands out its first tokens (inside the caller's transaction).
pub(crate) fn open_session(
    service: &AccountService,
    conn: &mut Conn,
    new: NewSession<'_>,
    now: Timestamp,
) -> Result<SessionTokens, AccountError> {
    let session_id = amtsweg_kernel::id::new_id();
    diesel::insert_into(sessions::table)
        .values((
            sessions::id.eq(&session_id),
            sessions::account_id.eq(&new.account.id),
            sessions::acr.eq(new.acr.as_str()),
            sessions::amr.eq(new.amr.join(" ")),
            sessions::auth_time.eq(now),
            sessions::created_at.eq(now),
            sessions::last_seen_at.eq(now),
            sessions::user_agent.eq(new.meta.user_agent.as_deref()),
            sessions::address.eq(new.meta.address.as_deref()),
        ))
        .execute(conn)?;
    diesel::update(accounts::table.find(&new.account.id))
        .set((
            accounts::last_login_at.eq(now),
            accounts::deletion_flagged_at.eq(None::<amtsweg_kernel::Timestamp>),
        ))
        .execute(conn)?;
    let realm = Realm::of(&new.account.realm);
    let refresh = new_refresh_token(service, conn, &session_id, now)?;
    let access = access_token(
        service,
        conn,
        realm,
        &new.account.id,
        &session_id,
        new.acr,
        &new.amr,
        now,
    )?;
    Ok(SessionTokens {
        access_token: access.0,
        token_type: "Bearer",
        expires_in: access.1,
        refresh_token: refresh,
        acr: new.acr,
        amr: new.amr,
        session_id,
    })
}

pub(super) fn new_refresh_token(
    service: &AccountService,
    conn: &mut Conn,
    session_id: &str,
    now: Timestamp,
) -> Result<String, AccountError> {
    let token = random_token();
    diesel::insert_into(refresh_tokens::table)
        .values((
            refresh_tokens::token_hash.eq(hash_token(&token)),
            refresh_tokens::session_id.eq(session_id),
            refresh_tokens::created_at.eq(now),
            refresh_tokens::expires_at.eq(now + Duration::days(service.settings.refresh_token_days)),
        ))
        .execute(conn)?;
    Ok(token)
}

#[expect(
    clippy::too_many_arguments,
    reason = "every part of the token is named at the call site"
)]
pub(super) fn access_token(
    service: &AccountService,
    conn: &mut Conn,
    realm: Realm,
    account_id: &str,
    session_id: &str,
    acr: TrustLevel,
    amr: &[String],
    auth_time: Timestamp,
) -> Result<(String, i64), AccountError> {
    let roles = match realm {
        Realm::Staff => store::staff_roles_of(conn, account_id)?
            .into_iter()
            .map(|(role, unit)| format!("{role}:{unit}"))
            .collect(),
        Realm::Citizen => Vec::new(),
    };
    let minutes = service.settings.access_token_minutes.clamp(1, 15);
    let (token, _) = service.auth.issue(&TokenSpec {
        audience: realm.audience(),
        subject: account_id.to_owned(),
        session_id: Some(session_id.to_owned()),
        acr: Some(acr.as_str().to_owned()),
        amr: amr.to_vec(),
        auth_time: Some(auth_time),
        scope: None,
        roles,
        lifetime: Duration::minutes(minutes),
    })?;
    Ok((token, minutes * 60))
}

/// An API client acts while it exists and is not disabled.
pub(crate) fn client_active(conn: &mut Conn, client_id: &str) -> Result<bool, AccountError> {
    let disabled: Option<Option<amtsweg_kernel::Timestamp>> = api_clients::table
        .find(client_id)
        .select(api_clients::disabled_at)
        .first(conn)
        .optional()?;
    Ok(matches!(disabled, Some(None)))
}

pub(crate) fn session_active(conn: &mut Conn, session_id: &str) -> Result<bool, AccountError> {
    let found: Option<(Option<amtsweg_kernel::Timestamp>, String)> = sessions::table
        .inner_join(accounts::table)
        .filter(sessions::id.eq(session_id))
        .select((sessions::revoked_at, accounts::status))
        .first(conn)
        .optional()?;
    Ok(matches!(found, Some((None, status)) if status == "active"))
}

#[derive(Queryable, Selectable)]
#[diesel(table_name = refresh_tokens)]
struct RefreshRow {
    session_id: String,
    expires_at: Timestamp,
    used_at: Option<Timestamp>,
}

/// What a refresh carries over from the session it continues.
#[derive(Queryable, Selectable)]
#[diesel(table_name = sessions)]
struct GrantedSession {
    account_id: String,
    acr: String,
    amr: String,
    auth_time: Timestamp,
    revoked_at: Option<Timestamp>,
}

impl AccountService {
    /// Exchanges a refresh token for new tokens. Each refresh token works once; presenting a used one again means
    /// it was stolen, and the whole session is ended.
    pub async fn refresh(
        &self,
        realm: Realm,
        refresh_token: &str,
        meta: Meta,
    ) -> Result<SessionTokens, AccountError> {
        self.check_rate(&meta)?;
        let now = self.now();
        let hash = hash_token(refresh_token);
        let service = self.clone();
        let outcome = self
            .db
            .write(move |conn| {
                let found: Option<RefreshRow> = refresh_tokens::table
                    .find(&hash)
                    .select(RefreshRow::as_select())
                    .first(conn)
                    .optional()?;
                let Some(RefreshRow {
                    session_id,
                    expires_at,
                    used_at,
                }) = found
                else {
                    return Ok(Err(AccountError::InvalidGrant));
                };
                let GrantedSession {
                    account_id,
                    acr,
                    amr,
                    auth_time,
                    revoked_at,
                } = sessions::table
                    .find(&session_id)
                    .select(GrantedSession::as_select())
                    .first(conn)?;
                let Some(account) = store::account(conn, &account_id)? else {
                    return Ok(Err(AccountError::InvalidGrant));
                };
                if Realm::of(&account.realm) != realm {
                    return Ok(Err(AccountError::InvalidGrant));
                }
                let actor = actor_for(realm, &account_id, &meta);
                let claimed = used_at.is_none()
                    && diesel::update(
                        refresh_tokens::table
                            .find(&hash)
                            .filter(refresh_tokens::used_at.is_null()),
                    )
                    .set(refresh_tokens::used_at.eq(now))
                    .execute(conn)?
                        == 1;
                if !claimed {
                    if revoked_at.is_none() {
                        store::revoke_session(conn, &session_id, "refresh_token_reused", now)?;
                        trail(
                            conn,
                            &actor,
                            &account_id,
                            "refresh_token_reused",
                            Outcome::Denied,
                            &meta,
                            now,
                        )?;
                    }
                    return Ok(Err(AccountError::InvalidGrant));
                }
                if revoked_at.is_some() || expires_at <= now || account.status != "active" {
                    return Ok(Err(AccountError::InvalidGrant));
                }
                diesel::update(sessions::table.find(&session_id))
                    .set(sessions::last_seen_at.eq(now))
                    .execute(conn)?;
                let amr: Vec<String> = amr.split_whitespace().map(str::to_owned).collect();
                let level = TrustLevel::from_acr(&acr);
                let refresh = new_refresh_token(&service, conn, &session_id, now)?;
                let access = access_token(
                    &service,
                    conn,
                    realm,
                    &account_id,
                    &session_id,
                    level,
                    &amr,
                    auth_time,
                )?;
                audit(
                    conn,
                    &actor,
                    "auth.refresh",
                    Some(("session", &session_id)),
                    Outcome::Success,
                    now,
                )?;
                Ok(Ok(SessionTokens {
                    access_token: access.0,
                    token_type: "Bearer",
                    expires_in: access.1,
                    refresh_token: refresh,
                    acr: level,
                    amr,
                    session_id,
                }))
            })
            .await;
        // The reuse response must commit (the session is revoked) even though the caller gets an error.
        outcome.and_then(|inner: Result<SessionTokens, AccountError>| inner)
    }

    /// A fresh access token for an open citizen session, for a front end that keeps the session itself (the
    /// portal's cookie session): the session's current level, methods and authentication time, nothing more.
    /// `None` once the session has ended or its account is no longer active.
    pub async fn session_access_token(&self, session_id: &str) -> Result<Option<String>, AccountError> {
        let service = self.clone();
        let session_id = session_id.to_owned();
        self.db
            .read(move |conn| {
                let found: Option<(GrantedSession, String, String)> = sessions::table
                    .inner_join(accounts::table)
                    .filter(sessions::id.eq(&session_id))
                    .select((GrantedSession::as_select(), accounts::status, accounts::realm))
                    .first(conn)
                    .optional()?;
                let Some((session, status, realm)) = found else {
                    return Ok(None);
                };
                if session.revoked_at.is_some() || status != "active" || realm != Realm::Citizen.as_str() {
                    return Ok(None);
                }
                let amr: Vec<String> = session.amr.split_whitespace().map(str::to_owned).collect();
                let (token, _) = access_token(
                    &service,
                    conn,
                    Realm::Citizen,
                    &session.account_id,
                    &session_id,
                    TrustLevel::from_acr(&session.acr),
                    &amr,
                    session.auth_time,
                )?;
                Ok(Some(token))
            })
            .await
    }

    pub async fn logout(
        &self,
        realm: Realm,
        account_id: &str,
        session_id: &str,
        meta: Meta,
    ) -> Result<(), AccountError> {
        let now = self.now();
        let (account_id, session_id) = (account_id.to_owned(), session_id.to_owned());
        self.db
            .write(move |conn| {
                store::revoke_session(conn, &session_id, "logout", now)?;
                trail(
                    conn,
                    &actor_for(realm, &account_id, &meta),
                    &account_id,
                    "logout",
                    Outcome::Success,
                    &meta,
                    now,
                )?;
                Ok(())
            })
            .await
    }
}
