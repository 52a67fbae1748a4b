//! Two-factor authentication with TOTP: enrolment returns the secret, its `otpauth://` URI and a QR code; a first
//! valid code confirms it and yields ten single-use recovery codes (stored only as hashes). Disabling needs a
//! recent authentication.

use amtsweg_audit::Outcome;
use amtsweg_kernel::Text;
use chrono::Duration;
use diesel::prelude::*;
use serde::Serialize;
use utoipa::ToSchema;

use super::login::Realm;
use super::{AccountService, Meta, actor_for, notify_owner, trail};
use crate::domain::secret::{hash_token, normalize_recovery_code, recovery_code};
use crate::domain::totp;
use crate::error::AccountError;
use crate::store::schema::{accounts, pending_totp, recovery_codes};
use crate::store::{self, AccountRow, Conn, ts};

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
    now: chrono::DateTime<chrono::Utc>,
) -> Result<TotpEnrollment, AccountError> {
    if account.totp_enabled() {
        return Err(already_enabled());
    }
    let secret = totp::new_secret();
    let label = account.email.clone().unwrap_or_else(|| account.id.clone());
    let uri =
        totp::otpauth_uri(&secret, &label).ok_or_else(|| AccountError::Internal("otpauth URI".into()))?;
    let svg = totp::qr_svg(&uri).ok_or_else(|| AccountError::Internal("QR code".into()))?;
    diesel::delete(pending_totp::table.find(&account.id)).execute(conn)?;
    diesel::insert_into(pending_totp::table)
        .values((
            pending_totp::account_id.eq(&account.id),
            pending_totp::secret.eq(&secret),
            pending_totp::created_at.eq(ts(now)),
        ))
        .execute(conn)?;
    Ok(TotpEnrollment {
        secret,
        otpauth_uri: uri,
        qr_code: totp::svg_data_url(&svg),
    })
}

fn confirm(
    conn: &mut Conn,
    account: &AccountRow,
    code: &str,
    now: chrono::DateTime<chrono::Utc>,
) -> Result<Vec<String>, AccountError> {
    if account.totp_enabled() {
        return Err(already_enabled());
    }
    let pending: Option<(String, chrono::NaiveDateTime)> = pending_totp::table
        .find(&account.id)
        .select((pending_totp::secret, pending_totp::created_at))
        .first(conn)
        .optional()?;
    let Some((secret, _)) = pending.filter(|(_, created)| created.and_utc() + Duration::minutes(30) > now)
    else {
        return Err(AccountError::Conflict(
            "totp_not_enrolled",
            Text::fixed(
                "Bitte starten Sie die Einrichtung erneut.",
                "Please start the setup again.",
            ),
        ));
    };
    let unix = u64::try_from(now.timestamp()).unwrap_or_default();
    let Some(step) = totp::accept(&secret, code, unix, None) else {
        return Err(AccountError::field(
            "/code",
            "invalid_code",
            Text::fixed("Der Code stimmt nicht.", "The code is not correct."),
        ));
    };
    diesel::update(accounts::table.find(&account.id))
        .set((
            accounts::totp_secret.eq(&secret),
            accounts::totp_enabled_at.eq(ts(now)),
            accounts::totp_last_step.eq(step),
            accounts::updated_at.eq(ts(now)),
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
                recovery_codes::created_at.eq(ts(now)),
            ))
            .execute(conn)?;
    }
    Ok(codes)
}

impl AccountService {
    async fn account_row(&self, account_id: &str) -> Result<AccountRow, AccountError> {
        let id = account_id.to_owned();
        self.db
            .read(move |conn| Ok::<_, AccountError>(store::account(conn, &id)?))
            .await?
            .ok_or(AccountError::LoginFailed)
    }

    pub async fn start_totp(&self, account_id: &str) -> Result<TotpEnrollment, AccountError> {
        let account = self.account_row(account_id).await?;
        let now = self.now();
        self.db.write(move |conn| enroll(conn, &account, now)).await
    }

    pub async fn confirm_totp(
        &self,
        realm: Realm,
        account_id: &str,
        code: &str,
        meta: Meta,
    ) -> Result<Vec<String>, AccountError> {
        let account = self.account_row(account_id).await?;
        let now = self.now();
        let code = code.to_owned();
        let codes = self
            .db
            .write(move |conn| {
                let codes = confirm(conn, &account, &code, now)?;
                trail(
                    conn,
                    &actor_for(realm, &account.id, &meta),
                    &account.id,
                    "totp_enabled",
                    Outcome::Success,
                    &meta,
                    now,
                )?;
                notify_owner(
                    conn,
                    &account,
                    (
                        "Zwei-Faktor-Anmeldung eingerichtet",
                        "two-factor login was set up",
                    ),
                    now,
                )?;
                Ok::<_, AccountError>(codes)
            })
            .await?;
        self.mail.wake();
        Ok(codes)
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
                        accounts::totp_enabled_at.eq(None::<chrono::NaiveDateTime>),
                        accounts::updated_at.eq(ts(now)),
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
        self.mail.wake();
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
        let (token, code) = (enrollment_token.to_owned(), code.to_owned());
        self.db
            .write(move |conn| {
                let Some(id) = store::peek_email_token(conn, &token, "totp_enrollment", now)? else {
                    return Err(AccountError::InvalidToken);
                };
                let account = store::account(conn, &id)?.ok_or(AccountError::InvalidToken)?;
                let codes = confirm(conn, &account, &code, now)?;
                store::consume_email_token(conn, &token, "totp_enrollment", now)?;
                trail(
                    conn,
                    &actor_for(Realm::Staff, &account.id, &meta),
                    &account.id,
                    "totp_enabled",
                    Outcome::Success,
                    &meta,
                    now,
                )?;
                Ok(codes)
            })
            .await
    }
}
