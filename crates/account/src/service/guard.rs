//! The one gate in front of every check of a secret a person knows or holds — a password, a TOTP code, a recovery
//! code — wherever it is checked: login, step-up, password change, TOTP set-up.
//!
//! A check needs an [`Attempt`], and the only way to get one is [`AccountService::admit`], which refuses while the
//! account (or the typed address) is in a delay. The hasher's `verify` and the code checks take the attempt as
//! proof, so a new route cannot check a secret without passing the throttle. A failure must be reported with
//! [`Attempt::failed`]; it counts against the same key as a failed login, so failures anywhere slow down
//! attempts everywhere. Only a complete proof (every factor the account has) clears the count.

use amtsweg_audit::{Actor, Outcome};
use amtsweg_kernel::Timestamp;
use diesel::prelude::*;
use secrecy::SecretString;

use super::login::Realm;
use super::{AccountService, Meta, audit, trail};
use crate::domain::secret::{hash_token, normalize_recovery_code};
use crate::domain::{throttle, totp};
use crate::error::AccountError;
use crate::hasher::HashError;
use crate::store::schema::{accounts, login_throttle, recovery_codes};
use crate::store::{AccountRow, Conn};

/// Whose failures count together: the realm and the lower-cased login address — also for an address without an
/// account, so that the throttle reveals nothing. Built here only, so that every path counts against one key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct ThrottleKey(String);

impl ThrottleKey {
    /// The key of a login with the address as typed.
    pub(crate) fn typed(realm: Realm, email: &str) -> ThrottleKey {
        ThrottleKey(format!("{}:{}", realm.as_str(), email.trim().to_lowercase()))
    }

    /// The key of an account: its login address, or its id when it has none (eID-only accounts).
    pub(crate) fn account(account: &AccountRow) -> ThrottleKey {
        match &account.email_key {
            Some(key) => ThrottleKey(format!("{}:{key}", account.realm)),
            None => ThrottleKey(format!("{}:id:{}", account.realm, account.id)),
        }
    }

    pub(crate) fn as_str(&self) -> &str {
        &self.0
    }

    /// Forgets the failures (a reset proved control of the mailbox; an address left the account).
    pub(crate) fn clear(&self, conn: &mut Conn) -> Result<(), amtsweg_db::DbError> {
        diesel::delete(login_throttle::table.find(self.as_str())).execute(conn)?;
        Ok(())
    }
}

/// Permission to check secrets once, given outside a delay. Report a failure with [`Attempt::failed`].
#[must_use = "a failed check must be reported with Attempt::failed"]
pub(crate) struct Attempt {
    key: ThrottleKey,
    account_id: Option<String>,
    had_failures: bool,
}

/// Proof of an admitted attempt, for checks that run on a database thread. Only [`Attempt::admitted`] makes one.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Admitted(());

/// A second factor that matched and still has to be used up in the write that completes the attempt.
pub(crate) enum Factor {
    Totp(i64),
    Recovery(String),
}

/// Why an attempt was not admitted: the key is in a delay until then.
pub(crate) struct Delayed {
    pub until: Timestamp,
}

impl Delayed {
    /// For a caller who is already known (a session): say so, with the time to wait.
    pub(crate) fn into_error(self, now: Timestamp) -> AccountError {
        let seconds = (self.until - now).num_seconds().max(1);
        AccountError::TooManyAttempts {
            retry_after_secs: u64::try_from(seconds).unwrap_or(1),
        }
    }
}

impl AccountService {
    /// Admits a check of a secret unless `key` is in a delay; a refused attempt is audited and not counted.
    pub(crate) async fn admit(
        &self,
        key: ThrottleKey,
        account_id: Option<String>,
        meta: &Meta,
    ) -> Result<Result<Attempt, Delayed>, AccountError> {
        let now = self.now();
        let probe = key.clone();
        let lock: Option<amtsweg_kernel::Timestamp> = self
            .db
            .read(move |conn| {
                Ok::<_, AccountError>(
                    login_throttle::table
                        .find(probe.as_str())
                        .select(login_throttle::locked_until)
                        .first(conn)
                        .optional()?,
                )
            })
            .await?;
        if let Some(until) = lock.filter(|until| *until > now) {
            let actor = Actor::anonymous(meta.address.clone());
            let object = account_id.clone();
            self.db
                .write(move |conn| {
                    audit(
                        conn,
                        &actor,
                        "auth.throttled",
                        object.as_deref().map(|id| ("account", id)),
                        Outcome::Denied,
                        now,
                    )
                })
                .await?;
            return Ok(Err(Delayed { until }));
        }
        Ok(Ok(Attempt {
            key,
            account_id,
            had_failures: lock.is_some(),
        }))
    }
}

impl Attempt {
    /// Whether `password` matches `hash` (`None`: no account — a dummy is checked in the same time).
    pub(crate) async fn verify_password(
        &self,
        service: &AccountService,
        password: &SecretString,
        hash: Option<String>,
    ) -> Result<bool, HashError> {
        service.hasher.verify(self.admitted(), password, hash).await
    }

    pub(crate) fn admitted(&self) -> Admitted {
        Admitted(())
    }

    /// Counts the failure against the key (and records it for the account, if there is one).
    pub(crate) async fn failed(self, service: &AccountService, meta: &Meta) -> Result<(), AccountError> {
        let now = service.now();
        let meta = meta.clone();
        service
            .db
            .write(move |conn| {
                record_failure(conn, &self.key, now)?;
                let actor = Actor::anonymous(meta.address.clone());
                match &self.account_id {
                    Some(id) => trail(conn, &actor, id, "login_failed", Outcome::Failure, &meta, now)?,
                    None => audit(conn, &actor, "login_failed", None, Outcome::Failure, now)?,
                }
                Ok::<_, AccountError>(())
            })
            .await
    }

    /// Completes a successful attempt in the caller's transaction: the factor is used up (once — two concurrent
    /// requests cannot both use one code), and a complete proof clears the failure count.
    pub(crate) fn succeeded(
        self,
        conn: &mut Conn,
        account_id: &str,
        factor: Option<&Factor>,
        complete: bool,
        now: Timestamp,
    ) -> Result<(), AccountError> {
        if let Some(factor) = factor {
            use_factor(conn, account_id, factor, now)?;
        }
        if complete && self.had_failures {
            self.key.clear(conn)?;
        }
        Ok(())
    }
}

impl Admitted {
    /// Checks a TOTP code or a recovery code against the account's second factor.
    pub(crate) fn second_factor(
        self,
        conn: &mut Conn,
        account: &AccountRow,
        code: &str,
        now: Timestamp,
    ) -> Result<Option<Factor>, AccountError> {
        let Some(secret) = &account.totp_secret else {
            return Ok(None);
        };
        if let Some(step) = totp::accept(secret, code, unix(now), account.totp_last_step) {
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

    /// Checks the first code of a TOTP secret being set up; answers its time step.
    pub(crate) fn setup_code(self, secret: &str, code: &str, now: Timestamp) -> Option<i64> {
        totp::accept(secret, code, unix(now), None)
    }
}

fn unix(now: Timestamp) -> u64 {
    u64::try_from(now.unix_seconds()).unwrap_or_default()
}

/// Counts one failure. The row is created if missing and then incremented under its row lock, so parallel
/// failures for one key neither collide on the key nor lose a count.
fn record_failure(conn: &mut Conn, key: &ThrottleKey, now: Timestamp) -> Result<(), AccountError> {
    let today = throttle::day_of(now);
    let fresh = (
        login_throttle::login_key.eq(key.as_str()),
        login_throttle::failures.eq(0),
        login_throttle::day.eq(&today),
        login_throttle::last_failure_at.eq(now),
        login_throttle::locked_until.eq(now),
    );
    let insert = diesel::insert_into(login_throttle::table)
        .values(fresh)
        .on_conflict_do_nothing();
    match conn {
        Conn::Postgres(pg) => insert.execute(pg)?,
        Conn::Sqlite(lite) => insert.execute(lite)?,
    };
    let row = login_throttle::table.find(key.as_str());
    diesel::update(row.filter(login_throttle::day.ne(&today)))
        .set((login_throttle::failures.eq(0), login_throttle::day.eq(&today)))
        .execute(conn)?;
    diesel::update(row)
        .set((
            login_throttle::failures.eq(login_throttle::failures + 1),
            login_throttle::last_failure_at.eq(now),
        ))
        .execute(conn)?;
    let failures: i32 = row.select(login_throttle::failures).first(conn)?;
    diesel::update(row)
        .set(login_throttle::locked_until.eq(throttle::delay_after(failures, now)))
        .execute(conn)?;
    Ok(())
}

fn use_factor(
    conn: &mut Conn,
    account_id: &str,
    factor: &Factor,
    now: Timestamp,
) -> Result<(), AccountError> {
    let updated = match factor {
        // Conditional on the last step, so two concurrent requests cannot both use one code.
        Factor::Totp(step) => diesel::update(
            accounts::table.find(account_id).filter(
                accounts::totp_last_step
                    .is_null()
                    .or(accounts::totp_last_step.lt(*step)),
            ),
        )
        .set(accounts::totp_last_step.eq(*step))
        .execute(conn)?,
        Factor::Recovery(hash) => diesel::update(
            recovery_codes::table
                .filter(recovery_codes::account_id.eq(account_id))
                .filter(recovery_codes::code_hash.eq(hash))
                .filter(recovery_codes::used_at.is_null()),
        )
        .set(recovery_codes::used_at.eq(now))
        .execute(conn)?,
    };
    if updated == 0 {
        return Err(AccountError::TotpInvalid);
    }
    Ok(())
}
