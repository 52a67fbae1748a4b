//! Logging in and re-authenticating within a session.
//!
//! A login checks the per-address rate, then the per-account soft lock, then the password (against a dummy hash
//! when there is no such account, so both take the same time), then the second factor. Every failure — wrong
//! e-mail, wrong password, wrong code, an attempt during a delay — counts against the lower-cased e-mail and gets
//! the same answer.

use amtsweg_audit::Outcome;
use amtsweg_auth::Audience;
use amtsweg_kernel::TrustLevel;
use chrono::Duration;
use diesel::prelude::*;
use secrecy::SecretString;

use super::guard::ThrottleKey;
use super::session::{NewSession, SessionTokens, access_token, new_refresh_token, open_session};
use super::{AccountService, Meta, actor_for, trail};
use crate::domain::email::EmailAddress;
use crate::domain::secret::random_token;
use crate::error::AccountError;
use crate::store;
use crate::store::schema::sessions;

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
        let email_key = EmailAddress::parse(&request.email).map(|e| e.key().to_owned());
        let account = {
            let realm = realm.as_str();
            self.db
                .read(move |conn| match email_key {
                    Some(email_key) => {
                        Ok::<_, AccountError>(store::account_by_email(conn, realm, &email_key)?)
                    }
                    None => Ok(None),
                })
                .await?
        };
        let known = account.as_ref().map(|a| a.id.clone());
        // During a delay the answer is the same as for a wrong password: the throttle reveals nothing.
        let Ok(attempt) = self
            .admit(ThrottleKey::typed(realm, &request.email), known, &meta)
            .await?
        else {
            return Err(AccountError::LoginFailed);
        };

        let hash = account
            .as_ref()
            .filter(|a| a.status != "deactivated")
            .and_then(|a| a.password_hash.clone());
        let password_ok = attempt.verify_password(self, &request.password, hash).await?;
        let Some(account) = account.filter(|_| password_ok) else {
            attempt.failed(self, &meta).await?;
            return Err(AccountError::LoginFailed);
        };
        if account.status == "pending" {
            return Err(AccountError::EmailNotVerified);
        }

        let mut amr = vec!["pwd".to_owned()];
        let factor = if account.totp_enabled() {
            let Some(code) = request.second_factor else {
                return Err(AccountError::TotpRequired);
            };
            let checked = {
                let account = account.clone();
                let admitted = attempt.admitted();
                self.db
                    .read(move |conn| admitted.second_factor(conn, &account, &code, now))
                    .await?
            };
            match checked {
                Some(factor) => {
                    amr.push("otp".to_owned());
                    Some(factor)
                }
                None => {
                    attempt.failed(self, &meta).await?;
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
        let service = self.clone();
        self.db
            .write(move |conn| {
                attempt.succeeded(conn, &account.id, factor.as_ref(), true, now)?;
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

    /// Proves the person again within a running session: a password, a TOTP code, or both. The session's level
    /// rises to what the proven factors reach (a step-up) and its authentication time becomes now, which sensitive
    /// actions require. Every check passes the same throttle as a login; a wrong secret here slows down logins
    /// too, and only proving every factor of the account clears the count.
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
        if password.is_none() && code.is_none() {
            return Err(AccountError::field(
                "",
                "required",
                amtsweg_kernel::Text::fixed("Passwort oder Code angeben.", "Give a password or a code."),
            ));
        }
        let now = self.now();
        let account = self.account_row(account_id).await?;
        let attempt = self
            .admit(ThrottleKey::account(&account), Some(account.id.clone()), &meta)
            .await?
            .map_err(|delayed| delayed.into_error(now))?;
        let mut proven = Vec::new();
        if let Some(password) = password {
            if !attempt
                .verify_password(self, &password, account.password_hash.clone())
                .await?
            {
                attempt.failed(self, &meta).await?;
                return Err(AccountError::LoginFailed);
            }
            proven.push("pwd".to_owned());
        }
        let mut factor = None;
        if let Some(code) = code {
            let checked = {
                let account = account.clone();
                let admitted = attempt.admitted();
                self.db
                    .read(move |conn| admitted.second_factor(conn, &account, &code, now))
                    .await?
            };
            match checked {
                Some(found) => {
                    factor = Some(found);
                    proven.push("otp".to_owned());
                }
                None => {
                    attempt.failed(self, &meta).await?;
                    return Err(AccountError::TotpInvalid);
                }
            }
        }
        let complete = proven.iter().any(|m| m == "pwd") && (factor.is_some() || !account.totp_enabled());
        let service = self.clone();
        let session_id = session_id.to_owned();
        self.db
            .write(move |conn| {
                attempt.succeeded(conn, &account.id, factor.as_ref(), complete, now)?;
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
                        sessions::auth_time.eq(now),
                        sessions::last_seen_at.eq(now),
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
                    session_id,
                })
            })
            .await
    }
}
