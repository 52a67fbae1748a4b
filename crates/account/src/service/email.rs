//! Changing the login address: a sensitive action (recent authentication), confirmed from the new mailbox, with a
//! notice to the old one.

use amtsweg_audit::Outcome;
use amtsweg_kernel::Text;
use chrono::Duration;
use diesel::prelude::*;

use super::guard::ThrottleKey;
use super::login::Realm;
use super::register::parse_email;
use super::{AccountService, Meta, actor_for, notify_owner, send, trail};
use crate::domain::email::EmailAddress;
use crate::domain::secret::{hash_token, random_token};
use crate::error::AccountError;
use amtsweg_db::DbError;

use crate::store;
use crate::store::schema::{accounts, email_tokens};
use crate::templates;

impl AccountService {
    /// Sends a confirmation link to the new address. Nothing changes until it is confirmed.
    pub async fn request_email_change(
        &self,
        account_id: &str,
        new_email: &str,
        meta: Meta,
    ) -> Result<(), AccountError> {
        let email = parse_email(new_email)?;
        let now = self.now();
        let id = account_id.to_owned();
        let service = self.clone();
        self.db
            .write(move |conn| {
                let account = store::account(conn, &id)?.ok_or(AccountError::LoginFailed)?;
                if account.email_key.as_deref() == Some(email.key()) {
                    return Err(AccountError::field(
                        "/email",
                        "unchanged",
                        Text::fixed("Das ist bereits Ihre Adresse.", "This is already your address."),
                    ));
                }
                store::void_email_tokens(conn, &id, "email_change", now)?;
                let token = random_token();
                diesel::insert_into(email_tokens::table)
                    .values((
                        email_tokens::token_hash.eq(hash_token(&token)),
                        email_tokens::account_id.eq(&id),
                        email_tokens::purpose.eq("email_change"),
                        email_tokens::new_email.eq(email.as_str()),
                        email_tokens::created_at.eq(now),
                        email_tokens::expires_at
                            .eq(now + Duration::hours(service.settings.verification_hours)),
                    ))
                    .execute(conn)?;
                let link = service.link("/confirm-email", &token);
                let mail = templates::verify_email(
                    account.lang(),
                    &link,
                    &token,
                    service.settings.verification_hours,
                );
                send(conn, email.as_str(), Some(&id), mail, now)?;
                notify_owner(
                    conn,
                    &account,
                    (
                        "eine neue E-Mail-Adresse wurde angefordert",
                        "a new e-mail address was requested",
                    ),
                    now,
                )?;
                trail(
                    conn,
                    &actor_for(Realm::Citizen, &id, &meta),
                    &id,
                    "email_change_requested",
                    Outcome::Success,
                    &meta,
                    now,
                )?;
                Ok(())
            })
            .await?;
        Ok(())
    }

    /// Confirms the new address with the code sent to it. Another account may have taken it meanwhile.
    pub async fn confirm_email_change(
        &self,
        account_id: &str,
        token: &str,
        meta: Meta,
    ) -> Result<String, AccountError> {
        let now = self.now();
        let (id, token) = (account_id.to_owned(), token.to_owned());
        self.db
            .write(move |conn| {
                let consumed = store::consume_email_token(conn, &token, "email_change", now)?;
                let Some(store::ConsumedToken {
                    account_id: owner,
                    new_email: Some(new_email),
                }) = consumed.filter(|t| t.account_id == id)
                else {
                    return Err(AccountError::InvalidToken);
                };
                let email = EmailAddress::parse(&new_email).ok_or(AccountError::InvalidToken)?;
                let account = store::account(conn, &owner)?.ok_or(AccountError::LoginFailed)?;
                let taken = || {
                    AccountError::Conflict(
                        "email_taken",
                        Text::fixed(
                            "Diese Adresse gehört inzwischen zu einem anderen Konto.",
                            "This address now belongs to another account.",
                        ),
                    )
                };
                if store::account_by_email(conn, &account.realm, email.key())?.is_some() {
                    return Err(taken());
                }
                ThrottleKey::account(&account).clear(conn)?;
                // Two accounts confirming one address at once: the unique key decides, the loser hears "taken".
                diesel::update(accounts::table.find(&owner))
                    .set((
                        accounts::email.eq(email.as_str()),
                        accounts::email_key.eq(email.key()),
                        accounts::email_verified_at.eq(now),
                        accounts::updated_at.eq(now),
                    ))
                    .execute(conn)
                    .map_err(|err| match DbError::from(err) {
                        err if err.is_unique_violation() => taken(),
                        err => AccountError::Db(err),
                    })?;
                trail(
                    conn,
                    &actor_for(Realm::Citizen, &owner, &meta),
                    &owner,
                    "email_changed",
                    Outcome::Success,
                    &meta,
                    now,
                )?;
                Ok(email.as_str().to_owned())
            })
            .await
    }
}
