//! Logging in and re-authenticating within a session.
//!
//! A login checks the per-address rate, then the per-account soft lock, then the password (against a dummy hash
//! when there is no such account, so both take the same time), then the second factor. Every failure — wrong
//! e-mail, wrong password, wrong code, an attempt during a delay — counts against the lower-cased e-mail and gets
//! the same answer.

use amtsweg_audit::{Actor, Outcome};
use amtsweg_auth::Audience;
use amtsweg_kernel::TrustLevel;
use chrono::{DateTime, Duration, Utc};
use diesel::prelude::*;
use secrecy::SecretString;

use super::session::{NewSession, SessionTokens, access_token, new_refresh_token, open_session};
use super::{AccountService, Meta, actor_for, audit, trail};
use crate::domain::email::EmailAddress;
use crate::domain::secret::{hash_token, normalize_recovery_code, random_token};
use crate::domain::{throttle, totp};
use crate::error::AccountError;
use crate::store::schema::{accounts, login_throttle, recovery_codes, sessions};
use crate::store::{self, AccountRow, Conn, ts};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Realm {
    Citizen,
    Staff,
}

impl Realm {
    pub fn as_str(self) -> &'static str {
        match self {
            Realm::Citizen => "citizen",
            Realm::Staff => "staff",
        }
    }

    pub(super) fn audience(self) -> Audience {
        match self {
            Realm::Citizen => Audience::Citizen,
            Realm::Staff => Audience::Staff,
        }
    }

    pub(super) fn of(text: &str) -> Realm {
        if text == "staff" {
            Realm::Staff
        } else {
            Realm::Citizen
        }
    }
}

pub struct LoginRequest {
    pub email: String,
    pub password: SecretString,
    /// A TOTP code or a recovery code.
    pub second_factor: Option<String>,
}

enum Factor {
    Totp(i64),
    Recovery(String),
}

fn throttle_key(realm: Realm, email: &str) -> String {
    format!("{}:{}", realm.as_str(), email.trim().to_lowercase())
}

fn locked_until(conn: &mut Conn, key: &str) -> Result<Option<DateTime<Utc>>, AccountError> {
    let row: Option<chrono::NaiveDateTime> = login_throttle::table
        .find(key)
        .select(login_throttle::locked_until)
        .first(conn)
        .optional()?;
    Ok(row.map(|at| at.and_utc()))
}

fn record_failure(conn: &mut Conn, key: &str, now: DateTime<Utc>) -> Result<(), AccountError> {
    let today = throttle::day_of(now);
    let current: Option<(i32, String)> = login_throttle::table
        .find(key)
        .select((login_throttle::failures, login_throttle::day))
        .first(conn)
        .optional()?;
    let failures = match current {
        Some((count, day)) if day == today => count + 1,
        _ => 1,
    };
    let until = throttle::delay_after(failures, now);
    let updated = diesel::update(login_throttle::table.find(key))
        .set((
            login_throttle::failures.eq(failures),
            login_throttle::day.eq(&today),
            login_throttle::last_failure_at.eq(ts(now)),
            login_throttle::locked_until.eq(ts(until)),
        ))
        .execute(conn)?;
    if updated == 0 {
        diesel::insert_into(login_throttle::table)
            .values((
                login_throttle::login_key.eq(key),
                login_throttle::failures.eq(failures),
                login_throttle::day.eq(&today),
                login_throttle::last_failure_at.eq(ts(now)),
                login_throttle::locked_until.eq(ts(until)),
            ))
            .execute(conn)?;
    }
    Ok(())
}

fn clear_failures(conn: &mut Conn, key: &str) -> Result<(), AccountError> {
    diesel::delete(login_throttle::table.find(key)).execute(conn)?;
    Ok(())
}

/// Checks a second factor against the account; a recovery code is matched by hash.
fn check_second_factor(
    conn: &mut Conn,
    account: &AccountRow,
    code: &str,
    now: DateTime<Utc>,
) -> Result<Option<Factor>, AccountError> {
    let Some(secret) = &account.totp_secret else {
        return Ok(None);
    };
    let unix = u64::try_from(now.timestamp()).unwrap_or_default();
    if let Some(step) = totp::accept(secret, code, unix, account.totp_last_step) {
        return Ok(Some(Factor::Totp(step)));
    }
    let hash = hash_token(&normalize_recovery_code(code));
    let unused: Option<String> = recovery_codes::table
        .filter(recovery_codes::account_id.eq(&account.id))
        .filter(recovery_codes::code_hash.eq(&hash))
        .filter(recovery_codes::used_at.is_null())
        .select(recovery_codes::code_hash)
        .first(conn)
        .optional()?;
    Ok(unused.map(Factor::Recovery))
}

fn use_factor(
    conn: &mut Conn,
    account_id: &str,
    factor: &Factor,
    now: DateTime<Utc>,
) -> Result<(), AccountError> {
    match factor {
        Factor::Totp(step) => {
            // Conditional on the last step, so two concurrent logins cannot both use one code.
            let updated = diesel::update(
                accounts::table.find(account_id).filter(
                    accounts::totp_last_step
                        .is_null()
                        .or(accounts::totp_last_step.lt(*step)),
                ),
            )
            .set(accounts::totp_last_step.eq(*step))
            .execute(conn)?;
            if updated == 0 {
                return Err(AccountError::TotpInvalid);
            }
        }
        Factor::Recovery(hash) => {
            let updated = diesel::update(
                recovery_codes::table
                    .filter(recovery_codes::account_id.eq(account_id))
                    .filter(recovery_codes::code_hash.eq(hash))
                    .filter(recovery_codes::used_at.is_null()),
            )
            .set(recovery_codes::used_at.eq(ts(now)))
            .execute(conn)?;
            if updated == 0 {
                return Err(AccountError::TotpInvalid);
            }
        }
    }
    Ok(())
}

impl AccountService {
    pub(crate) fn level_for(&self, amr: &[String]) -> TrustLevel {
        let acr = &self.settings.acr;
        if amr.iter().any(|m| m == "eid") {
            acr.eid
        } else if amr.iter().any(|m| m == "otp") {
            acr.password_totp
        } else {
            acr.password
        }
    }

    pub async fn login(
        &self,
        realm: Realm,
        request: LoginRequest,
        meta: Meta,
    ) -> Result<SessionTokens, AccountError> {
        self.check_rate(&meta)?;
        let now = self.now();
        let key = throttle_key(realm, &request.email);
        let email_key = EmailAddress::parse(&request.email).map(|e| e.key().to_owned());

        let (lock, account) = {
            let key = key.clone();
            let realm = realm.as_str();
            self.db
                .read(move |conn| {
                    let lock = locked_until(conn, &key)?;
                    let account = match email_key {
                        Some(email_key) => store::account_by_email(conn, realm, &email_key)?,
                        None => None,
                    };
                    Ok::<_, AccountError>((lock, account))
                })
                .await?
        };
        if lock.is_some_and(|until| until > now) {
            let actor = Actor::anonymous(meta.address.clone());
            let object = account.as_ref().map(|a| a.id.clone());
            self.db
                .write(move |conn| {
                    audit(
                        conn,
                        &actor,
                        "auth.login_throttled",
                        object.as_deref().map(|id| ("account", id)),
                        Outcome::Denied,
                        now,
                    )
                })
                .await?;
            return Err(AccountError::LoginFailed);
        }

        let hash = account
            .as_ref()
            .filter(|a| a.status != "deactivated")
            .and_then(|a| a.password_hash.clone());
        let password_ok = self.hasher.verify(&request.password, hash).await?;
        let known = account_id_of(&account);
        let Some(account) = account.filter(|_| password_ok) else {
            self.fail(key, known, &meta, now).await?;
            return Err(AccountError::LoginFailed);
        };
        if account.status == "pending" {
            return Err(AccountError::EmailNotVerified);
        }

        let mut amr = vec!["pwd".to_owned()];
        let factor = if account.totp_enabled() {
            let Some(code) = request.second_factor.as_deref() else {
                return Err(AccountError::TotpRequired);
            };
            let checked = {
                let account = account.clone();
                let code = code.to_owned();
                self.db
                    .read(move |conn| check_second_factor(conn, &account, &code, now))
                    .await?
            };
            match checked {
                Some(factor) => {
                    amr.push("otp".to_owned());
                    Some(factor)
                }
                None => {
                    self.fail(key, Some(account.id.clone()), &meta, now).await?;
                    return Err(AccountError::TotpInvalid);
                }
            }
        } else if realm == Realm::Staff && self.settings.staff_require_totp {
            let token = random_token();
            let (account_id, enrolment) = (account.id.clone(), token.clone());
            self.db
                .write(move |conn| {
                    store::insert_email_token(
                        conn,
                        &enrolment,
                        &account_id,
                        "totp_enrollment",
                        now,
                        now + Duration::minutes(15),
                    )?;
                    Ok::<_, AccountError>(())
                })
                .await?;
            return Err(AccountError::TotpEnrollmentRequired {
                enrollment_token: token,
            });
        } else {
            None
        };

        let acr = self.level_for(&amr);
        let had_failures = lock.is_some();
        let service = self.clone();
        self.db
            .write(move |conn| {
                if let Some(factor) = &factor {
                    use_factor(conn, &account.id, factor, now)?;
                }
                if had_failures {
                    clear_failures(conn, &key)?;
                }
                let tokens = open_session(
                    &service,
                    conn,
                    NewSession {
                        account: &account,
                        acr,
                        amr,
                        meta: &meta,
                    },
                    now,
                )?;
                trail(
                    conn,
                    &actor_for(realm, &account.id, &meta),
                    &account.id,
                    "login_succeeded",
                    Outcome::Success,
                    &meta,
                    now,
                )?;
                Ok(tokens)
            })
            .await
    }

    async fn fail(
        &self,
        key: String,
        account_id: Option<String>,
        meta: &Meta,
        now: DateTime<Utc>,
    ) -> Result<(), AccountError> {
        let meta = meta.clone();
        self.db
            .write(move |conn| {
                record_failure(conn, &key, now)?;
                let actor = Actor::anonymous(meta.address.clone());
                match &account_id {
                    Some(id) => trail(conn, &actor, id, "login_failed", Outcome::Failure, &meta, now)?,
                    None => audit(conn, &actor, "login_failed", None, Outcome::Failure, now)?,
                }
                Ok::<_, AccountError>(())
            })
            .await
    }

    /// Proves the person again within a running session: a password, a TOTP code, or both. The session's level
    /// rises to what the proven factors reach (a step-up) and its authentication time becomes now, which sensitive
    /// actions require.
    pub async fn reauthenticate(
        &self,
        realm: Realm,
        account_id: &str,
        session_id: &str,
        password: Option<SecretString>,
        code: Option<String>,
        meta: Meta,
    ) -> Result<SessionTokens, AccountError> {
        self.check_rate(&meta)?;
        let now = self.now();
        let account = {
            let id = account_id.to_owned();
            self.db
                .read(move |conn| Ok::<_, AccountError>(store::account(conn, &id)?))
                .await?
        };
        let Some(account) = account else {
            return Err(AccountError::LoginFailed);
        };
        let key = throttle_key(realm, account.email.as_deref().unwrap_or(&account.id));
        if password.is_none() && code.is_none() {
            return Err(AccountError::field(
                "",
                "required",
                amtsweg_kernel::Text::fixed("Passwort oder Code angeben.", "Give a password or a code."),
            ));
        }
        let mut proven = Vec::new();
        if let Some(password) = password {
            if !self
                .hasher
                .verify(&password, account.password_hash.clone())
                .await?
            {
                self.fail(key, Some(account.id.clone()), &meta, now).await?;
                return Err(AccountError::LoginFailed);
            }
            proven.push("pwd".to_owned());
        }
        let mut factor = None;
        if let Some(code) = code {
            let checked = {
                let account = account.clone();
                self.db
                    .read(move |conn| check_second_factor(conn, &account, &code, now))
                    .await?
            };
            match checked {
                Some(found) => {
                    factor = Some(found);
                    proven.push("otp".to_owned());
                }
                None => {
                    self.fail(key, Some(account.id.clone()), &meta, now).await?;
                    return Err(AccountError::TotpInvalid);
                }
            }
        }
        let service = self.clone();
        let session_id = session_id.to_owned();
        self.db
            .write(move |conn| {
                if let Some(factor) = &factor {
                    use_factor(conn, &account.id, factor, now)?;
                }
                let current: (String, String) = sessions::table
                    .find(&session_id)
                    .select((sessions::acr, sessions::amr))
                    .first(conn)?;
                let mut amr: Vec<String> = current.1.split_whitespace().map(str::to_owned).collect();
                for method in proven {
                    if !amr.contains(&method) {
                        amr.push(method);
                    }
                }
                let acr = service.level_for(&amr).max(TrustLevel::from_acr(&current.0));
                diesel::update(sessions::table.find(&session_id))
                    .set((
                        sessions::acr.eq(acr.as_str()),
                        sessions::amr.eq(amr.join(" ")),
                        sessions::auth_time.eq(ts(now)),
                        sessions::last_seen_at.eq(ts(now)),
                    ))
                    .execute(conn)?;
                let refresh = new_refresh_token(&service, conn, &session_id, now)?;
                let access = access_token(&service, conn, realm, &account.id, &session_id, acr, &amr, now)?;
                trail(
                    conn,
                    &actor_for(realm, &account.id, &meta),
                    &account.id,
                    "reauthenticated",
                    Outcome::Success,
                    &meta,
                    now,
                )?;
                Ok(SessionTokens {
                    access_token: access.0,
                    token_type: "Bearer",
                    expires_in: access.1,
                    refresh_token: refresh,
                    acr,
                    amr,
                })
            })
            .await
    }
}

fn account_id_of(account: &Option<AccountRow>) -> Option<String> {
    account.as_ref().map(|a| a.id.clone())
}
