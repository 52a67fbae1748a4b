//! Registration and e-mail verification.
//!
//! Registration never reveals whether an address is already registered: the answer is the same, the password is
//! hashed either way, and the existing owner is told by mail instead.

use amtsweg_audit::{Actor, ActorKind, Outcome};
use amtsweg_kernel::{Checked, FieldError, Lang, Text};
use chrono::Duration;
use diesel::prelude::*;
use secrecy::{ExposeSecret, SecretString};

use super::{AccountService, Meta, audit, send, trail};
use crate::domain::email::EmailAddress;
use crate::domain::password::{self, PasswordProblem};
use crate::domain::secret::random_token;
use crate::error::AccountError;
use crate::events;
use crate::store::schema::accounts;
use crate::store::{self, NewAccount};
use crate::templates;

pub struct Registration {
    pub email: String,
    pub password: SecretString,
    pub name: String,
    pub preferred_language: Checked<Lang>,
}

pub(crate) fn password_errors(pointer: &str, password: &SecretString, context: &[&str]) -> Vec<FieldError> {
    let problem = match password::check(password.expose_secret(), context) {
        Ok(()) => return Vec::new(),
        Err(problem) => problem,
    };
    let code = problem.code();
    let message = match problem {
        PasswordProblem::TooShort => Text::fixed("Mindestens 8 Zeichen.", "At least 8 characters."),
        PasswordProblem::TooLong => Text::fixed("Höchstens 128 Zeichen.", "At most 128 characters."),
        PasswordProblem::TooWeak { suggestion } => Text::new(
            "Dieses Passwort ist zu leicht zu erraten. Tipp: mehrere zufällige Wörter.",
            match suggestion {
                Some(hint) => {
                    format!("This password is too easy to guess ({hint}). Tip: several random words.")
                }
                None => "This password is too easy to guess. Tip: several random words.".to_owned(),
            },
        ),
    };
    vec![FieldError::at_pointer(pointer, code, message)]
}

/// Parses an e-mail address, recording a field error at `pointer` when it is not one.
pub(crate) fn check_email(errors: &mut Vec<FieldError>, pointer: &str, email: &str) -> Option<EmailAddress> {
    let parsed = EmailAddress::parse(email);
    if parsed.is_none() {
        errors.push(FieldError::at_pointer(
            pointer,
            "invalid_format",
            Text::fixed(
                "Bitte eine gültige E-Mail-Adresse angeben.",
                "Please give a valid e-mail address.",
            ),
        ));
    }
    parsed
}

/// The address at `/email`, or the validation error for it.
pub(crate) fn parse_email(email: &str) -> Result<EmailAddress, AccountError> {
    let mut errors = Vec::new();
    check_email(&mut errors, "/email", email).ok_or(AccountError::Validation(errors))
}

pub(crate) fn check_name(errors: &mut Vec<FieldError>, pointer: &str, name: &str) {
    let length = name.trim().chars().count();
    if length == 0 || length > 200 || name.chars().any(char::is_control) {
        errors.push(FieldError::at_pointer(
            pointer,
            "invalid_value",
            Text::fixed("Bitte 1 bis 200 Zeichen.", "Please 1 to 200 characters."),
        ));
    }
}

impl AccountService {
    pub async fn register(&self, registration: Registration, meta: Meta) -> Result<(), AccountError> {
        let mut errors = Vec::new();
        let email = check_email(&mut errors, "/email", &registration.email);
        check_name(&mut errors, "/name", &registration.name);
        let language = registration
            .preferred_language
            .clone()
            .check(&mut errors, "/preferred_language");
        let local = registration
            .email
            .split('@')
            .next()
            .unwrap_or_default()
            .to_owned();
        let mut context: Vec<&str> = registration.name.split_whitespace().collect();
        context.push(&local);
        errors.extend(password_errors("/password", &registration.password, &context));
        let (Some(email), Some(language)) = (email.filter(|_| errors.is_empty()), language) else {
            return Err(AccountError::Validation(errors));
        };
        self.check_rate(&meta)?;

        let hash = self.hasher.hash(&registration.password).await?;
        let now = self.now();
        let settings = self.settings.clone();
        let service = self.clone();
        self.db
            .write(move |conn| {
                let actor = Actor::anonymous(meta.address.clone());
                let id = amtsweg_kernel::id::new_id();
                let inserted = store::insert_account(
                    conn,
                    &NewAccount {
                        id: &id,
                        realm: "citizen",
                        kind: "person",
                        email: Some(email.as_str()),
                        email_key: Some(email.key()),
                        display_name: registration.name.trim(),
                        password_hash: Some(&hash),
                        preferred_language: language,
                        status: "pending",
                        register_number: None,
                    },
                    now,
                )?;
                if !inserted {
                    let existing = store::account_by_email(conn, "citizen", email.key())?
                        .ok_or_else(|| AccountError::Internal("the address is taken by no account".into()))?;
                    return tell_existing_owner(conn, &service, &existing, &actor, now);
                }
                let token = random_token();
                store::insert_email_token(
                    conn,
                    &token,
                    &id,
                    "verify_email",
                    now,
                    now + Duration::hours(settings.verification_hours),
                )?;
                // The address is not verified yet: the mail carries no text the registering person chose.
                let mail = templates::verify_email(
                    language,
                    &service.link("/verify-email", &token),
                    &token,
                    settings.verification_hours,
                );
                send(conn, email.as_str(), Some(&id), mail, now)?;
                trail(conn, &actor, &id, "registered", Outcome::Success, &meta, now)?;
                events::account(
                    conn,
                    &events::ACCOUNT_CREATED,
                    &events::AccountState {
                        account_id: &id,
                        realm: "citizen",
                        kind: "person",
                        status: "pending",
                        via: Some("registration"),
                    },
                    now,
                )?;
                Ok::<_, AccountError>(())
            })
            .await?;
        Ok(())
    }

    /// Confirms an address with the single-use token from the verification mail; the account becomes usable.
    pub async fn verify_email(&self, token: &str, meta: Meta) -> Result<(), AccountError> {
        self.check_rate(&meta)?;
        let now = self.now();
        let token = token.to_owned();
        self.db
            .write(move |conn| {
                let Some(consumed) = store::consume_email_token(conn, &token, "verify_email", now)? else {
                    return Err(AccountError::InvalidToken);
                };
                let account_id = consumed.account_id;
                let activated = diesel::update(
                    accounts::table
                        .find(&account_id)
                        .filter(accounts::status.eq("pending")),
                )
                .set((
                    accounts::status.eq("active"),
                    accounts::email_verified_at.eq(now),
                    accounts::updated_at.eq(now),
                ))
                .execute(conn)?;
                let actor = Actor::new(ActorKind::Citizen, &account_id, meta.address.clone());
                trail(
                    conn,
                    &actor,
                    &account_id,
                    "email_verified",
                    Outcome::Success,
                    &meta,
                    now,
                )?;
                if activated == 1 {
                    events::account(
                        conn,
                        &events::ACCOUNT_VERIFIED,
                        &events::AccountState {
                            account_id: &account_id,
                            realm: "citizen",
                            kind: "person",
                            status: "active",
                            via: Some("email"),
                        },
                        now,
                    )?;
                }
                Ok(())
            })
            .await
    }
}

/// A registration for an address that has an account: the answer stays the same, and the owner — at the address
/// stored on the account, never the variant typed — gets a mail with a reset link.
fn tell_existing_owner(
    conn: &mut store::Conn,
    service: &AccountService,
    existing: &store::AccountRow,
    actor: &Actor,
    now: amtsweg_kernel::Timestamp,
) -> Result<(), AccountError> {
    audit(
        conn,
        actor,
        "account.register_duplicate",
        Some(("account", &existing.id)),
        Outcome::Denied,
        now,
    )?;
    let Some(stored) = existing.email.as_deref() else {
        return Ok(());
    };
    let token = random_token();
    store::insert_email_token(
        conn,
        &token,
        &existing.id,
        "password_reset",
        now,
        now + Duration::minutes(service.settings.reset_minutes),
    )?;
    let mail = templates::already_registered(existing.lang(), &service.link("/reset-password", &token));
    send(conn, stored, Some(&existing.id), mail, now).map_err(AccountError::from)
}
