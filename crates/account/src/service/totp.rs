//! Two-factor authentication with TOTP: enrolment returns the secret, its `otpauth://` URI and a QR code; a first
//! valid code confirms it and yields ten single-use recovery codes (stored only as hashes). Disabling needs a
//! recent authentication.

use amtsweg_audit::Outcome;
use amtsweg_kernel::Text;
use chrono::Duration;
use diesel::prelude::*;
use serde::Serialize;
use utoipa::ToSchema;

use super::guard::{Admitted, ThrottleKey};
use super::login::Realm;
use super::{AccountService, Meta, actor_for, notify_owner, trail};
use crate::domain::secret::{hash_token, normalize_recovery_code, recovery_code};
use crate::domain::totp;
use crate::error::AccountError;
use crate::store::schema::{accounts, pending_totp, recovery_codes};
use crate::store::{self, AccountRow, Conn};

#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct TotpEnrollment {
    /// Base32 secret, for typing into an app by hand.
    pub secret: String,
    pub otpauth_uri: String,
    /// The URI as QR code, an SVG `data:` URL.
    pub qr_code: String,
}

fn already_enabled() -> AccountError {
    AccountError::Conflict(
        "totp_already_enabled",
        Text::fixed(
            "Die Zwei-Faktor-Anmeldung ist bereits eingerichtet.",
            "Two-factor login is already set up.",
        ),
    )
}

fn enroll(
    conn: &mut Conn,
    account: &AccountRow,
    now: amtsweg_kernel::Timestamp,
) -> Result<TotpEnrollment, AccountError> {
    if account.totp_enabled() {
        return Err(already_enabled());
    }
    let secret = totp::new_secret();
    let label = account.email.clone().unwrap_or_else(|| account.id.clone());
    let uri =
        totp::otpauth_uri(&secret, &label).ok_or_else(|| AccountError::Internal("otpauth URI".into()))?;
    let svg = totp::qr_svg(&uri).ok_or_else(|| AccountError::Internal("QR code".into()))?;
    // A new start replaces an unfinished one; two starts at once both succeed, the later secret counts.
    let upsert = diesel::insert_into(pending_totp::table)
        .values((
            pending_totp::account_id.eq(&account.id),
            pending_totp::secret.eq(&secret),
            pending_totp::created_at.eq(now),
        ))
        .on_conflict(pending_totp::account_id)
        .do_update()
        .set((pending_totp::secret.eq(&secret), pending_totp::created_at.eq(now)));
    match conn {
        Conn::Postgres(pg) => upsert.execute(pg)?,
        Conn::Sqlite(lite) => upsert.execute(lite)?,
    };
    Ok(TotpEnrollment {
        secret,
        otpauth_uri: uri,
        qr_code: totp::svg_data_url(&svg),
    })
}

/// What checking the first code of a new secret found.
enum Confirmation {
    Enabled(Vec<String>),
    WrongCode,
}

fn confirm(
    conn: &mut Conn,
    admitted: Admitted,
    account: &AccountRow,
    code: &str,
    now: amtsweg_kernel::Timestamp,
) -> Result<Confirmation, AccountError> {
    if account.totp_enabled() {
        return Err(already_enabled());
    }
    let pending: Option<(String, amtsweg_kernel::Timestamp)> = pending_totp::table
        .find(&account.id)
        .select((pending_totp::secret, pending_totp::created_at))
        .first(conn)
        .optional()?;
    let Some((secret, _)) = pending.filter(|(_, created)| *created + Duration::minutes(30) > now) else {
        return Err(AccountError::Conflict(
            "totp_not_enrolled",
            Text::fixed(
                "Bitte starten Sie die Einrichtung erneut.",
                "Please start the setup again.",
            ),
        ));
    };
    let Some(step) = admitted.setup_code(&secret, code, now) else {
        return Ok(Confirmation::WrongCode);
    };
    diesel::update(accounts::table.find(&account.id))
        .set((
            accounts::totp_secret.eq(&secret),
            accounts::totp_enabled_at.eq(now),
            accounts::totp_last_step.eq(step),
            accounts::updated_at.eq(now),
        ))
        .execute(conn)?;
    diesel::delete(pending_totp::table.find(&account.id)).execute(conn)?;
    diesel::delete(recovery_codes::table.filter(recovery_codes::account_id.eq(&account.id))).execute(conn)?;
    let codes: Vec<String> = (0..10).map(|_| recovery_code()).collect();
    for code in &codes {
        diesel::insert_into(recovery_codes::table)
            .values((
                recovery_codes::account_id.eq(&account.id),
                recovery_codes::code_hash.eq(hash_token(&normalize_recovery_code(code))),
                recovery_codes::created_at.eq(now),
            ))
            .execute(conn)?;
    }
    Ok(Confirmation::Enabled(codes))
}

fn wrong_code() -> AccountError {
    AccountError::field(
        "/code",
        "invalid_code",
        Text::fixed("Der Code stimmt nicht.", "The code is not correct."),
    )
}

impl AccountService {
    pub async fn start_totp(&self, account_id: &str) -> Result<TotpEnrollment, AccountError> {
        let account = self.account_row(account_id).await?;
        let now = self.now();
        self.db.write(move |conn| enroll(conn, &account, now)).await
    }

    /// Switches two-factor login on with the first code of the new secret. Every other session of the account ends
    /// (ASVS 7.4.3: a session opened before the second factor existed must not outlive it); the current one keeps
    /// its level until it steps up.
    pub async fn confirm_totp(
        &self,
        realm: Realm,
        account_id: &str,
        session_id: &str,
        code: &str,
        meta: Meta,
    ) -> Result<Vec<String>, AccountError> {
        let account = self.account_row(account_id).await?;
        let now = self.now();
        let attempt = self
            .admit(ThrottleKey::account(&account), Some(account.id.clone()), &meta)
            .await?
            .map_err(|delayed| delayed.into_error(now))?;
        let admitted = attempt.admitted();
        let (code, session_id, trail_meta) = (code.to_owned(), session_id.to_owned(), meta.clone());
        let confirmed = self
            .db
            .write(move |conn| {
                let Confirmation::Enabled(codes) = confirm(conn, admitted, &account, &code, now)? else {
                    return Ok(Confirmation::WrongCode);
                };
                store::revoke_sessions(conn, &account.id, Some(&session_id), "totp_enabled", now)?;
                enabled(conn, realm, &account, &trail_meta, now)?;
                Ok::<_, AccountError>(Confirmation::Enabled(codes))
            })
            .await?;
        match confirmed {
            Confirmation::Enabled(codes) => Ok(codes),
            Confirmation::WrongCode => {
                attempt.failed(self, &meta).await?;
                Err(wrong_code())
            }
        }
    }

    pub async fn disable_totp(&self, realm: Realm, account_id: &str, meta: Meta) -> Result<(), AccountError> {
        let account = self.account_row(account_id).await?;
        if !account.totp_enabled() {
            return Err(AccountError::Conflict(
                "totp_not_enabled",
                Text::fixed(
                    "Die Zwei-Faktor-Anmeldung ist nicht eingerichtet.",
                    "Two-factor login is not set up.",
                ),
            ));
        }
        if realm == Realm::Staff && self.settings.staff_require_totp {
            return Err(AccountError::Forbidden(Text::fixed(
                "Mitarbeitende müssen die Zwei-Faktor-Anmeldung nutzen.",
                "Staff must use two-factor login.",
            )));
        }
        let now = self.now();
        self.db
            .write(move |conn| {
                diesel::update(accounts::table.find(&account.id))
                    .set((
                        accounts::totp_secret.eq(None::<String>),
                        accounts::totp_enabled_at.eq(None::<amtsweg_kernel::Timestamp>),
                        accounts::updated_at.eq(now),
                    ))
                    .execute(conn)?;
                diesel::delete(recovery_codes::table.filter(recovery_codes::account_id.eq(&account.id)))
                    .execute(conn)?;
                trail(
                    conn,
                    &actor_for(realm, &account.id, &meta),
                    &account.id,
                    "totp_disabled",
                    Outcome::Success,
                    &meta,
                    now,
                )?;
                notify_owner(
                    conn,
                    &account,
                    (
                        "Zwei-Faktor-Anmeldung abgeschaltet",
                        "two-factor login was switched off",
                    ),
                    now,
                )?;
                Ok::<_, AccountError>(())
            })
            .await?;
        Ok(())
    }

    /// Staff without TOTP enrol with the short-lived token their first password login returned.
    pub async fn start_staff_totp(&self, enrollment_token: &str) -> Result<TotpEnrollment, AccountError> {
        let now = self.now();
        let token = enrollment_token.to_owned();
        self.db
            .write(move |conn| {
                let Some(id) = store::peek_email_token(conn, &token, "totp_enrollment", now)? else {
                    return Err(AccountError::InvalidToken);
                };
                let account = store::account(conn, &id)?.ok_or(AccountError::InvalidToken)?;
                enroll(conn, &account, now)
            })
            .await
    }

    pub async fn confirm_staff_totp(
        &self,
        enrollment_token: &str,
        code: &str,
        meta: Meta,
    ) -> Result<Vec<String>, AccountError> {
        let now = self.now();
        let probe = enrollment_token.to_owned();
        let account = self
            .db
            .read(move |conn| {
                let Some(id) = store::peek_email_token(conn, &probe, "totp_enrollment", now)? else {
                    return Err(AccountError::InvalidToken);
                };
                store::account(conn, &id)?.ok_or(AccountError::InvalidToken)
            })
            .await?;
        let attempt = self
            .admit(ThrottleKey::account(&account), Some(account.id.clone()), &meta)
            .await?
            .map_err(|delayed| delayed.into_error(now))?;
        let admitted = attempt.admitted();
        let (token, code, trail_meta) = (enrollment_token.to_owned(), code.to_owned(), meta.clone());
        let confirmed = self
            .db
            .write(move |conn| {
                let Confirmation::Enabled(codes) = confirm(conn, admitted, &account, &code, now)? else {
                    return Ok(Confirmation::WrongCode);
                };
                if store::consume_email_token(conn, &token, "totp_enrollment", now)?.is_none() {
                    return Err(AccountError::InvalidToken);
                }
                store::revoke_sessions(conn, &account.id, None, "totp_enabled", now)?;
                enabled(conn, Realm::Staff, &account, &trail_meta, now)?;
                Ok::<_, AccountError>(Confirmation::Enabled(codes))
            })
            .await?;
        match confirmed {
            Confirmation::Enabled(codes) => Ok(codes),
            Confirmation::WrongCode => {
                attempt.failed(self, &meta).await?;
                Err(wrong_code())
            }
        }
    }
}

/// Records that two-factor login is on and tells the owner.
fn enabled(
    conn: &mut Conn,
    realm: Realm,
    account: &AccountRow,
    meta: &Meta,
    now: amtsweg_kernel::Timestamp,
) -> Result<(), AccountError> {
    trail(
        conn,
        &actor_for(realm, &account.id, meta),
        &account.id,
        "totp_enabled",
        Outcome::Success,
        meta,
        now,
    )?;
    notify_owner(
        conn,
        account,
        (
            "Zwei-Faktor-Anmeldung eingerichtet",
            "two-factor login was set up",
        ),
        now,
    )?;
    Ok(())
}
