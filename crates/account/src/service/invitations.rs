//! Invitations into an organisation. A representative invites an e-mail address; the answer is the same whether
//! or not an account has that address, so the route cannot be used to find out who has one. An existing account
//! gets a security event and a mail with fixed text only (the organisation's name is text the inviter chose);
//! an unknown address gets nothing. Whoever holds a verified account with the address sees the invitation and
//! accepts or declines it — nobody becomes a member without saying so.

use amtsweg_audit::Outcome;
use amtsweg_kernel::Text;
use amtsweg_kernel::Timestamp;
use amtsweg_kernel::pagination::{Page, PageRequest};
use chrono::Duration;
use diesel::prelude::*;
use serde::Serialize;
use utoipa::ToSchema;

use super::login::Realm;
use super::organisations::{OrganisationView, not_found, view};
use super::register::parse_email;
use super::{AccountService, Meta, actor_for, send, trail};
use crate::domain::email::EmailAddress;
use crate::error::AccountError;
use crate::store::schema::{accounts, organisation_invitations as invitations, organisation_members};
use crate::store::{self, Conn};
use crate::templates;

/// How long an invitation can be answered.
const VALID_DAYS: i64 = 14;
/// Open invitations one organisation may have at a time.
const OPEN_LIMIT: i64 = 100;

/// An invitation as the organisation's representatives see it.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct SentInvitation {
    pub id: String,
    /// The address as the representative typed it.
    pub email: String,
    /// `representative` or `member`.
    pub role: String,
    pub invited_at: String,
    pub expires_at: String,
}

/// An invitation as the invited person sees it.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct ReceivedInvitation {
    pub id: String,
    pub organisation_id: String,
    pub organisation_name: String,
    /// `representative` or `member`.
    pub role: String,
    pub invited_at: String,
    pub expires_at: String,
}

#[derive(Queryable, Selectable)]
#[diesel(table_name = invitations)]
struct InvitationRow {
    id: String,
    organisation_id: String,
    email: String,
    role: String,
    created_at: Timestamp,
    expires_at: Timestamp,
}

fn no_such_invitation() -> AccountError {
    AccountError::NotFound(
        "invitation_not_found",
        Text::fixed(
            "Einladung nicht gefunden oder nicht mehr offen.",
            "Invitation not found or no longer open.",
        ),
    )
}

/// The caller must be a representative of the organisation; a non-member is told it does not exist.
fn require_representative(conn: &mut Conn, organisation_id: &str, person: &str) -> Result<(), AccountError> {
    let role: Option<String> = organisation_members::table
        .find((organisation_id, person))
        .select(organisation_members::role)
        .first(conn)
        .optional()?;
    match role.as_deref() {
        None => Err(not_found()),
        Some("representative") => Ok(()),
        Some(_) => Err(AccountError::Forbidden(Text::fixed(
            "Nur Vertretungsberechtigte können einladen.",
            "Only representatives can invite.",
        ))),
    }
}

fn check_role(role: &str) -> Result<(), AccountError> {
    if role == "member" || role == "representative" {
        return Ok(());
    }
    Err(AccountError::field(
        "/role",
        "not_allowed",
        Text::fixed(
            "Erlaubt sind „member“ und „representative“.",
            "Allowed are “member” and “representative”.",
        ),
    ))
}

/// The caller's login address key, if the account may answer invitations (an active person with a verified one).
fn invitee_key(conn: &mut Conn, person: &str) -> Result<Option<String>, AccountError> {
    Ok(store::account(conn, person)?
        .filter(|a| a.status == "active" && a.kind == "person" && a.email_verified_at.is_some())
        .and_then(|a| a.email_key))
}

impl AccountService {
    /// Invites an address into the organisation (again, if it was invited before: the invitation is renewed).
    pub async fn invite(
        &self,
        person: &str,
        organisation_id: &str,
        email: &str,
        role: &str,
        meta: Meta,
    ) -> Result<(), AccountError> {
        self.check_rate(&meta)?;
        check_role(role)?;
        let email = parse_email(email)?;
        let now = self.now();
        let service = self.clone();
        let (person, organisation, role) = (person.to_owned(), organisation_id.to_owned(), role.to_owned());
        self.db
            .write(move |conn| {
                require_representative(conn, &organisation, &person)?;
                let open: i64 = invitations::table
                    .filter(invitations::organisation_id.eq(&organisation))
                    .filter(invitations::status.eq("pending"))
                    .filter(invitations::expires_at.gt(now))
                    .count()
                    .get_result(conn)?;
                if open >= OPEN_LIMIT {
                    return Err(AccountError::Conflict(
                        "too_many_invitations",
                        Text::fixed(
                            "Es sind bereits zu viele Einladungen offen. Bitte ziehen Sie zuerst welche zurück.",
                            "Too many invitations are open. Please withdraw some first.",
                        ),
                    ));
                }
                upsert(conn, &organisation, &email, &role, &person, now)?;
                let actor = actor_for(Realm::Citizen, &person, &meta);
                super::audit(
                    conn,
                    &actor,
                    "organisation.invitation_sent",
                    Some(("account", &organisation)),
                    Outcome::Success,
                    now,
                )?;
                let invitee = store::account_by_email(conn, "citizen", email.key())?
                    .filter(|a| a.status == "active" && a.kind == "person");
                if let Some(invitee) = invitee
                    && let Some(stored) = invitee.email.as_deref()
                {
                    store::record_security_event(
                        conn,
                        &invitee.id,
                        "invitation_received",
                        None,
                        None,
                        now,
                    )?;
                    let mail = templates::invitation_received(invitee.lang(), &service.link_plain("/login"));
                    send(conn, stored, Some(&invitee.id), mail, now)?;
                }
                Ok::<_, AccountError>(())
            })
            .await?;
        Ok(())
    }

    /// The organisation's open invitations, for its representatives.
    pub async fn sent_invitations(
        &self,
        person: &str,
        organisation_id: &str,
        page: PageRequest,
    ) -> Result<Page<SentInvitation>, AccountError> {
        let now = self.now();
        let (person, organisation) = (person.to_owned(), organisation_id.to_owned());
        self.db
            .read(move |conn| {
                require_representative(conn, &organisation, &person)?;
                let mut query = invitations::table
                    .filter(invitations::organisation_id.eq(&organisation))
                    .filter(invitations::status.eq("pending"))
                    .filter(invitations::expires_at.gt(now))
                    .into_boxed();
                if let Some(after) = &page.after {
                    query = query.filter(invitations::id.gt(after.clone()));
                }
                let rows: Vec<InvitationRow> = query
                    .order(invitations::id.asc())
                    .limit(i64::try_from(page.limit + 1).unwrap_or(101))
                    .select(InvitationRow::as_select())
                    .load(conn)?;
                let items = rows
                    .into_iter()
                    .map(|row| SentInvitation {
                        id: row.id,
                        email: row.email,
                        role: row.role,
                        invited_at: row.created_at.rfc3339(),
                        expires_at: row.expires_at.rfc3339(),
                    })
                    .collect();
                Ok(Page::from_overfetched(items, page.limit, |i: &SentInvitation| {
                    i.id.clone()
                }))
            })
            .await
    }

    /// Withdraws an open invitation of the organisation.
    pub async fn withdraw_invitation(
        &self,
        person: &str,
        organisation_id: &str,
        invitation_id: &str,
        meta: Meta,
    ) -> Result<(), AccountError> {
        let now = self.now();
        let (person, organisation, id) = (
            person.to_owned(),
            organisation_id.to_owned(),
            invitation_id.to_owned(),
        );
        self.db
            .write(move |conn| {
                require_representative(conn, &organisation, &person)?;
                let withdrawn = diesel::update(
                    invitations::table
                        .find(&id)
                        .filter(invitations::organisation_id.eq(&organisation))
                        .filter(invitations::status.eq("pending")),
                )
                .set((
                    invitations::status.eq("withdrawn"),
                    invitations::answered_at.eq(now),
                    invitations::answered_by.eq(&person),
                ))
                .execute(conn)?;
                if withdrawn == 0 {
                    return Err(no_such_invitation());
                }
                super::audit(
                    conn,
                    &actor_for(Realm::Citizen, &person, &meta),
                    "organisation.invitation_withdrawn",
                    Some(("account", &organisation)),
                    Outcome::Success,
                    now,
                )
                .map_err(AccountError::from)
            })
            .await
    }

    /// Open invitations to the caller's verified login address.
    pub async fn received_invitations(
        &self,
        person: &str,
        page: PageRequest,
    ) -> Result<Page<ReceivedInvitation>, AccountError> {
        let now = self.now();
        let person = person.to_owned();
        self.db
            .read(move |conn| {
                let Some(key) = invitee_key(conn, &person)? else {
                    return Ok(Page {
                        items: Vec::new(),
                        next_cursor: None,
                    });
                };
                let mut query = invitations::table
                    .inner_join(accounts::table.on(accounts::id.eq(invitations::organisation_id)))
                    .filter(invitations::email_key.eq(&key))
                    .filter(invitations::status.eq("pending"))
                    .filter(invitations::expires_at.gt(now))
                    .into_boxed();
                if let Some(after) = &page.after {
                    query = query.filter(invitations::id.gt(after.clone()));
                }
                let rows: Vec<(InvitationRow, String)> = query
                    .order(invitations::id.asc())
                    .limit(i64::try_from(page.limit + 1).unwrap_or(101))
                    .select((InvitationRow::as_select(), accounts::display_name))
                    .load(conn)?;
                let items = rows
                    .into_iter()
                    .map(|(row, organisation_name)| ReceivedInvitation {
                        id: row.id,
                        organisation_id: row.organisation_id,
                        organisation_name,
                        role: row.role,
                        invited_at: row.created_at.rfc3339(),
                        expires_at: row.expires_at.rfc3339(),
                    })
                    .collect();
                Ok(Page::from_overfetched(
                    items,
                    page.limit,
                    |i: &ReceivedInvitation| i.id.clone(),
                ))
            })
            .await
    }

    /// Accepts an invitation to the caller's address: the caller becomes a member in the invited role.
    pub async fn accept_invitation(
        &self,
        person: &str,
        invitation_id: &str,
        meta: Meta,
    ) -> Result<OrganisationView, AccountError> {
        let now = self.now();
        let (person, id) = (person.to_owned(), invitation_id.to_owned());
        self.db
            .write(move |conn| {
                let (organisation, role) = answer(conn, &person, &id, "accepted", now)?;
                let insert = diesel::insert_into(organisation_members::table)
                    .values((
                        organisation_members::organisation_id.eq(&organisation),
                        organisation_members::account_id.eq(&person),
                        organisation_members::role.eq(&role),
                        organisation_members::added_at.eq(now),
                    ))
                    .on_conflict_do_nothing();
                match conn {
                    Conn::Postgres(pg) => insert.execute(pg)?,
                    Conn::Sqlite(lite) => insert.execute(lite)?,
                };
                let actor = actor_for(Realm::Citizen, &person, &meta);
                trail(
                    conn,
                    &actor,
                    &person,
                    "invitation_accepted",
                    Outcome::Success,
                    &meta,
                    now,
                )?;
                super::audit(
                    conn,
                    &actor,
                    "organisation.member_added",
                    Some(("account", &organisation)),
                    Outcome::Success,
                    now,
                )?;
                view(conn, &organisation, &person)
            })
            .await
    }

    /// Declines an invitation to the caller's address.
    pub async fn decline_invitation(
        &self,
        person: &str,
        invitation_id: &str,
        meta: Meta,
    ) -> Result<(), AccountError> {
        let now = self.now();
        let (person, id) = (person.to_owned(), invitation_id.to_owned());
        self.db
            .write(move |conn| {
                answer(conn, &person, &id, "declined", now)?;
                trail(
                    conn,
                    &actor_for(Realm::Citizen, &person, &meta),
                    &person,
                    "invitation_declined",
                    Outcome::Success,
                    &meta,
                    now,
                )
                .map_err(AccountError::from)
            })
            .await
    }
}

/// Creates the invitation, or renews the one the organisation already has for this address: one row per
/// organisation and address, so two invitations at once cannot collide on the key.
fn upsert(
    conn: &mut Conn,
    organisation: &str,
    email: &EmailAddress,
    role: &str,
    person: &str,
    now: Timestamp,
) -> Result<(), AccountError> {
    let id = amtsweg_kernel::id::new_id();
    let expires = now + Duration::days(VALID_DAYS);
    let upsert = diesel::insert_into(invitations::table)
        .values((
            invitations::id.eq(&id),
            invitations::organisation_id.eq(organisation),
            invitations::email.eq(email.as_str()),
            invitations::email_key.eq(email.key()),
            invitations::role.eq(role),
            invitations::invited_by.eq(person),
            invitations::status.eq("pending"),
            invitations::created_at.eq(now),
            invitations::expires_at.eq(expires),
        ))
        .on_conflict((invitations::organisation_id, invitations::email_key))
        .do_update()
        .set((
            invitations::id.eq(&id),
            invitations::email.eq(email.as_str()),
            invitations::role.eq(role),
            invitations::invited_by.eq(person),
            invitations::status.eq("pending"),
            invitations::created_at.eq(now),
            invitations::expires_at.eq(expires),
            invitations::answered_at.eq(None::<Timestamp>),
            invitations::answered_by.eq(None::<String>),
        ));
    match conn {
        Conn::Postgres(pg) => upsert.execute(pg)?,
        Conn::Sqlite(lite) => upsert.execute(lite)?,
    };
    Ok(())
}

/// Answers an open invitation to the caller's address with one conditional update — of two answers at once,
/// one counts. Returns the organisation and the role.
fn answer(
    conn: &mut Conn,
    person: &str,
    id: &str,
    status: &str,
    now: Timestamp,
) -> Result<(String, String), AccountError> {
    let key = invitee_key(conn, person)?.ok_or_else(no_such_invitation)?;
    let answered = diesel::update(
        invitations::table
            .find(id)
            .filter(invitations::email_key.eq(&key))
            .filter(invitations::status.eq("pending"))
            .filter(invitations::expires_at.gt(now)),
    )
    .set((
        invitations::status.eq(status),
        invitations::answered_at.eq(now),
        invitations::answered_by.eq(person),
    ))
    .execute(conn)?;
    if answered == 0 {
        return Err(no_such_invitation());
    }
    Ok(invitations::table
        .find(id)
        .select((invitations::organisation_id, invitations::role))
        .first(conn)?)
}
