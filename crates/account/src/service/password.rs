//! Changing a password (with the current one) and resetting a forgotten one by mail. Both end other sessions;
//! a reset ends all of them.

use amtsweg_audit::{Actor, ActorKind, Outcome};
use amtsweg_kernel::Text;
use chrono::Duration;
use diesel::prelude::*;
use secrecy::SecretString;

use super::guard::ThrottleKey;
use super::login::Realm;
use super::register::{parse_email, password_errors};
use super::{AccountService, Meta, actor_for, audit, notify_owner, send, trail};
use crate::domain::secret::random_token;
use crate::error::AccountError;
use crate::store;
use crate::store::schema::accounts;
use crate::templates;

impl AccountService {
    /// Changes the password after checking the current one — through the same throttle as a login. Other
    /// sessions end; the owner gets a notice.
    pub async fn change_password(
        &self,
        realm: Realm,
        account_id: &str,
        session_id: &str,
        current: SecretString,
        new: SecretString,
        meta: Meta,
    ) -> Result<(), AccountError> {
        self.check_rate(&meta)?;
        let account = self.account_row(account_id).await?;
        let context: Vec<&str> = account
            .display_name
            .split_whitespace()
            .chain(account.email.as_deref())
            .collect();
        let errors = password_errors("/new_password", &new, &context);
        if !errors.is_empty() {
            return Err(AccountError::Validation(errors));
        }
        let now = self.now();
        let attempt = self
            .admit(ThrottleKey::account(&account), Some(account.id.clone()), &meta)
            .await?
            .map_err(|delayed| delayed.into_error(now))?;
        if !attempt
            .verify_password(self, &current, account.password_hash.clone())
            .await?
        {
            attempt.failed(self, &meta).await?;
            return Err(AccountError::field(
                "/current_password",
                "incorrect",
                Text::fixed(
                    "Das aktuelle Passwort stimmt nicht.",
                    "The current password is not correct.",
                ),
            ));
        }
        let hash = self.hasher.hash(&new).await?;
        let session_id = session_id.to_owned();
        self.db
            .write(move |conn| {
                // The password alone is not every factor of an account with TOTP: the count stays.
                attempt.succeeded(conn, &account.id, None, !account.totp_enabled(), now)?;
                diesel::update(accounts::table.find(&account.id))
                    .set((accounts::password_hash.eq(&hash), accounts::updated_at.eq(now)))
                    .execute(conn)?;
                store::revoke_sessions(conn, &account.id, Some(&session_id), "password_changed", now)?;
                trail(
                    conn,
                    &actor_for(realm, &account.id, &meta),
                    &account.id,
                    "password_changed",
                    Outcome::Success,
                    &meta,
                    now,
                )?;
                notify_owner(
                    conn,
                    &account,
                    ("Ihr Passwort wurde geändert", "your password was changed"),
                    now,
                )?;
                Ok::<_, AccountError>(())
            })
            .await?;
        Ok(())
    }

    /// Sends a reset link if the address belongs to a citizen account; the answer is the same either way.
    pub async fn request_password_reset(&self, email: &str, meta: Meta) -> Result<(), AccountError> {
        self.check_rate(&meta)?;
        let email = parse_email(email)?;
        let now = self.now();
        let service = self.clone();
        self.db
            .write(move |conn| {
                let actor = Actor::anonymous(meta.address.clone());
                let Some(account) = store::account_by_email(conn, "citizen", email.key())? else {
                    audit(
                        conn,
                        &actor,
                        "auth.password_reset_requested",
                        None,
                        Outcome::Failure,
                        now,
                    )?;
                    return Ok(());
                };
                if account.status == "deactivated" {
                    return Ok(());
                }
                store::void_email_tokens(conn, &account.id, "password_reset", now)?;
                let token = random_token();
                let minutes = service.settings.reset_minutes.clamp(1, 30);
                store::insert_email_token(
                    conn,
                    &token,
                    &account.id,
                    "password_reset",
                    now,
                    now + Duration::minutes(minutes),
                )?;
                let mail = templates::password_reset(
                    account.lang(),
                    &service.link("/reset-password", &token),
                    &token,
                    minutes,
                );
                // To the stored address only: a variant as typed (case, KELVIN SIGN …) may be someone else's mailbox.
                let Some(stored) = account.email.as_deref() else {
                    return Ok(());
                };
                send(conn, stored, Some(&account.id), mail, now)?;
                trail(
                    conn,
                    &actor,
                    &account.id,
                    "password_reset_requested",
                    Outcome::Success,
                    &meta,
                    now,
                )?;
                Ok::<_, AccountError>(())
            })
            .await?;
        Ok(())
    }

    /// Sets a new password with a reset token. Proves control of the mailbox, so it also verifies the address;
    /// every session ends.
    pub async fn confirm_password_reset(
        &self,
        token: &str,
        new: SecretString,
        meta: Meta,
    ) -> Result<(), AccountError> {
        self.check_rate(&meta)?;
        let now = self.now();
        let probe = token.to_owned();
        let account = self
            .db
            .read(move |conn| {
                let id = store::peek_email_token(conn, &probe, "password_reset", now)?;
                Ok::<_, AccountError>(match id {
                    Some(id) => store::account(conn, &id)?,
                    None => None,
                })
            })
            .await?;
        let Some(account) = account else {
            return Err(AccountError::InvalidToken);
        };
        let context: Vec<&str> = account
            .display_name
            .split_whitespace()
            .chain(account.email.as_deref())
            .collect();
        let errors = password_errors("/new_password", &new, &context);
        if !errors.is_empty() {
            return Err(AccountError::Validation(errors));
        }
        let hash = self.hasher.hash(&new).await?;
        let token = token.to_owned();
        self.db
            .write(move |conn| {
                let consumed = store::consume_email_token(conn, &token, "password_reset", now)?;
                if consumed.map(|t| t.account_id).as_deref() != Some(account.id.as_str()) {
                    return Err(AccountError::InvalidToken);
                }
                let verified = account.email_verified_at.unwrap_or(now);
                diesel::update(accounts::table.find(&account.id))
                    .set((
                        accounts::password_hash.eq(&hash),
                        accounts::status.eq("active"),
                        accounts::email_verified_at.eq(verified),
                        accounts::updated_at.eq(now),
                    ))
                    .execute(conn)?;
                store::revoke_sessions(conn, &account.id, None, "password_reset", now)?;
                ThrottleKey::account(&account).clear(conn)?;
                if let Some(email) = &account.email {
                    send(
                        conn,
                        email,
                        Some(&account.id),
                        templates::security_notice(
                            account.lang(),
                            ("Ihr Passwort wurde zurückgesetzt", "your password was reset"),
                        ),
                        now,
                    )?;
                }
                let actor = Actor::new(ActorKind::Citizen, &account.id, meta.address.clone());
                trail(
                    conn,
                    &actor,
                    &account.id,
                    "password_reset",
                    Outcome::Success,
                    &meta,
                    now,
                )?;
                Ok(())
            })
            .await?;
        Ok(())
    }
}
