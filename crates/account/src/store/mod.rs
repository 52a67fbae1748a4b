//! Queries of the account service. Every function takes the connection of the caller's transaction.

pub mod schema;

use amtsweg_db::{DbConnection, DbError};
use amtsweg_kernel::Timestamp;
use diesel::prelude::*;

use schema::*;

pub type Conn = DbConnection;

#[derive(Debug, Clone, Queryable, Selectable)]
#[diesel(table_name = accounts)]
pub struct AccountRow {
    pub id: String,
    pub realm: String,
    pub kind: String,
    pub email: Option<String>,
    pub email_key: Option<String>,
    pub display_name: String,
    pub password_hash: Option<String>,
    pub preferred_language: amtsweg_kernel::Lang,
    pub status: String,
    pub email_verified_at: Option<Timestamp>,
    pub totp_secret: Option<String>,
    pub totp_enabled_at: Option<Timestamp>,
    pub totp_last_step: Option<i64>,
    pub register_number: Option<String>,
    pub created_at: Timestamp,
    pub updated_at: Timestamp,
    pub last_login_at: Option<Timestamp>,
    pub deletion_flagged_at: Option<Timestamp>,
    pub deactivated_at: Option<Timestamp>,
}

impl AccountRow {
    pub fn lang(&self) -> amtsweg_kernel::Lang {
        self.preferred_language
    }

    pub fn totp_enabled(&self) -> bool {
        self.totp_enabled_at.is_some() && self.totp_secret.is_some()
    }
}

pub fn account_by_email(
    conn: &mut Conn,
    realm: &str,
    email_key: &str,
) -> Result<Option<AccountRow>, DbError> {
    Ok(accounts::table
        .filter(accounts::realm.eq(realm))
        .filter(accounts::email_key.eq(email_key))
        .select(AccountRow::as_select())
        .first(conn)
        .optional()?)
}

pub fn account(conn: &mut Conn, id: &str) -> Result<Option<AccountRow>, DbError> {
    Ok(accounts::table
        .find(id)
        .select(AccountRow::as_select())
        .first(conn)
        .optional()?)
}

pub struct NewAccount<'a> {
    pub id: &'a str,
    pub realm: &'a str,
    pub kind: &'a str,
    pub email: Option<&'a str>,
    pub email_key: Option<&'a str>,
    pub display_name: &'a str,
    pub password_hash: Option<&'a str>,
    pub preferred_language: amtsweg_kernel::Lang,
    pub status: &'a str,
    pub register_number: Option<&'a str>,
}

/// Inserts an account unless its address is taken; `false` when it is. Taken by a concurrent transaction counts
/// too: on PostgreSQL the insert waits for that one to commit instead of failing on the unique key, so the loser
/// of a race gets the answer it would have got without the race.
pub fn insert_account(conn: &mut Conn, new: &NewAccount<'_>, now: Timestamp) -> Result<bool, DbError> {
    let insert = diesel::insert_into(accounts::table)
        .values((
            accounts::id.eq(new.id),
            accounts::realm.eq(new.realm),
            accounts::kind.eq(new.kind),
            accounts::email.eq(new.email),
            accounts::email_key.eq(new.email_key),
            accounts::display_name.eq(new.display_name),
            accounts::password_hash.eq(new.password_hash),
            accounts::preferred_language.eq(new.preferred_language),
            accounts::status.eq(new.status),
            accounts::register_number.eq(new.register_number),
            accounts::created_at.eq(now),
            accounts::updated_at.eq(now),
        ))
        .on_conflict_do_nothing();
    let inserted = match conn {
        Conn::Postgres(pg) => insert.execute(pg)?,
        Conn::Sqlite(lite) => insert.execute(lite)?,
    };
    if inserted == 0 {
        return Ok(false);
    }
    if new.kind == "person" {
        diesel::insert_into(profiles::table)
            .values((
                profiles::account_id.eq(new.id),
                profiles::verified_fields.eq(""),
                profiles::updated_at.eq(now),
            ))
            .execute(conn)?;
    }
    Ok(true)
}

pub fn record_security_event(
    conn: &mut Conn,
    account_id: &str,
    kind: &str,
    address: Option<&str>,
    user_agent: Option<&str>,
    now: Timestamp,
) -> Result<(), DbError> {
    diesel::insert_into(security_events::table)
        .values((
            security_events::id.eq(amtsweg_kernel::id::new_id()),
            security_events::account_id.eq(account_id),
            security_events::at.eq(now),
            security_events::kind.eq(kind),
            security_events::address.eq(address),
            security_events::user_agent.eq(user_agent),
        ))
        .execute(conn)?;
    Ok(())
}

/// Ends every open session of an account (all of them, or all but `keep`).
pub fn revoke_sessions(
    conn: &mut Conn,
    account_id: &str,
    keep: Option<&str>,
    reason: &str,
    now: Timestamp,
) -> Result<usize, DbError> {
    let open = sessions::table
        .filter(sessions::account_id.eq(account_id))
        .filter(sessions::revoked_at.is_null())
        .filter(sessions::id.ne(keep.unwrap_or("")));
    Ok(diesel::update(open)
        .set((sessions::revoked_at.eq(now), sessions::revoke_reason.eq(reason)))
        .execute(conn)?)
}

pub fn revoke_session(
    conn: &mut Conn,
    session_id: &str,
    reason: &str,
    now: Timestamp,
) -> Result<usize, DbError> {
    Ok(diesel::update(
        sessions::table
            .find(session_id)
            .filter(sessions::revoked_at.is_null()),
    )
    .set((sessions::revoked_at.eq(now), sessions::revoke_reason.eq(reason)))
    .execute(conn)?)
}

pub fn staff_roles_of(conn: &mut Conn, account_id: &str) -> Result<Vec<(String, String)>, DbError> {
    Ok(staff_roles::table
        .filter(staff_roles::account_id.eq(account_id))
        .order((staff_roles::role.asc(), staff_roles::unit.asc()))
        .select((staff_roles::role, staff_roles::unit))
        .load(conn)?)
}

/// Creates a single-use e-mail token (verification, reset, TOTP enrolment) and returns the hash stored.
pub fn insert_email_token(
    conn: &mut Conn,
    token: &str,
    account_id: &str,
    purpose: &str,
    now: Timestamp,
    expires: Timestamp,
) -> Result<(), DbError> {
    diesel::insert_into(email_tokens::table)
        .values((
            email_tokens::token_hash.eq(crate::domain::secret::hash_token(token)),
            email_tokens::account_id.eq(account_id),
            email_tokens::purpose.eq(purpose),
            email_tokens::created_at.eq(now),
            email_tokens::expires_at.eq(expires),
        ))
        .execute(conn)?;
    Ok(())
}

/// A single-use token that was just used up.
pub struct ConsumedToken {
    pub account_id: String,
    /// The address an `email_change` token confirms.
    pub new_email: Option<String>,
}

/// Uses up a valid token of `purpose` with one conditional update, so that of several concurrent requests with
/// the same token exactly one gets it. Expired, used or unknown tokens give `None`.
pub fn consume_email_token(
    conn: &mut Conn,
    token: &str,
    purpose: &str,
    now: Timestamp,
) -> Result<Option<ConsumedToken>, DbError> {
    let hash = crate::domain::secret::hash_token(token);
    let taken = diesel::update(
        email_tokens::table
            .find(&hash)
            .filter(email_tokens::purpose.eq(purpose))
            .filter(email_tokens::used_at.is_null())
            .filter(email_tokens::expires_at.gt(now)),
    )
    .set(email_tokens::used_at.eq(now))
    .execute(conn)?;
    if taken == 0 {
        return Ok(None);
    }
    let (account_id, new_email) = email_tokens::table
        .find(&hash)
        .select((email_tokens::account_id, email_tokens::new_email))
        .first(conn)?;
    Ok(Some(ConsumedToken {
        account_id,
        new_email,
    }))
}

/// Checks a token without using it up.
pub fn peek_email_token(
    conn: &mut Conn,
    token: &str,
    purpose: &str,
    now: Timestamp,
) -> Result<Option<String>, DbError> {
    let hash = crate::domain::secret::hash_token(token);
    Ok(email_tokens::table
        .find(&hash)
        .filter(email_tokens::purpose.eq(purpose))
        .filter(email_tokens::used_at.is_null())
        .filter(email_tokens::expires_at.gt(now))
        .select(email_tokens::account_id)
        .first(conn)
        .optional()?)
}

/// Invalidates all open tokens of a purpose for an account (a new reset link replaces old ones).
pub fn void_email_tokens(
    conn: &mut Conn,
    account_id: &str,
    purpose: &str,
    now: Timestamp,
) -> Result<(), DbError> {
    diesel::update(
        email_tokens::table
            .filter(email_tokens::account_id.eq(account_id))
            .filter(email_tokens::purpose.eq(purpose))
            .filter(email_tokens::used_at.is_null()),
    )
    .set(email_tokens::used_at.eq(now))
    .execute(conn)?;
    Ok(())
}
