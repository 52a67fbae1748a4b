//! The Postfach: messages between a citizen's (or an organisation's) Postfach and a unit, in threads.
//!
//! A citizen sees the Postfach of their account and of every organisation they are a member of; staff see the
//! messages of the units where they are `case_worker` or `supervisor`. Anything else is "not found" — the same
//! answer as for an id that does not exist. Opening a message needs a session at its required trust level
//! (else the RFC 9470 step-up); listing shows subjects only and is not a retrieval.

use amtsweg_account::directory;
use amtsweg_auth::{CitizenAuth, StaffAuth, Units};
use amtsweg_db::{DbConnection, DbError};
use amtsweg_kernel::pagination::{Page, PageRequest};
use amtsweg_kernel::{FieldError, Lang, Text, Timestamp, TrustLevel};
use diesel::prelude::*;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::delivery::{DeliveryRow, day, load};
use crate::schema::{deliveries, mailbox_attachments, mailbox_messages};
use crate::{Mailroom, MailroomError};

/// The roles whose holders answer a unit's messages.
const UNIT_ROLES: [&str; 2] = ["case_worker", "supervisor"];

#[derive(Debug, Clone, Queryable, Selectable)]
#[diesel(table_name = mailbox_messages)]
pub(crate) struct MessageRow {
    pub id: String,
    pub mailbox: String,
    pub unit_id: String,
    pub direction: String,
    pub kind: String,
    pub thread_id: String,
    pub in_reply_to: Option<String>,
    pub subject: String,
    pub body: String,
    pub case_ref: Option<String>,
    pub case_number: Option<String>,
    pub required_level: String,
    pub author: Option<String>,
    pub created_at: Timestamp,
    pub read_at: Option<Timestamp>,
    pub archived_at: Option<Timestamp>,
}

#[derive(Debug, Clone, Queryable, Selectable)]
#[diesel(table_name = mailbox_attachments)]
pub(crate) struct AttachmentRow {
    pub id: String,
    pub file_id: String,
    pub holder: String,
    pub name: String,
    pub media_type: String,
    pub size: i64,
    pub sha256: String,
    pub seal: Option<String>,
}

/// A message in a list: no text, nothing opened.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct MessageSummary {
    pub id: String,
    /// `account:{id}` or `organisation:{id}`.
    pub mailbox: String,
    pub unit_id: String,
    /// `to_citizen` or `to_unit`.
    pub direction: String,
    /// `message` or `decision`.
    pub kind: String,
    pub thread_id: String,
    pub subject: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub application_id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub case_number: Option<String>,
    /// The trust level a session needs to open it.
    pub required_level: TrustLevel,
    pub created_at: Timestamp,
    /// Opened by its recipient side.
    pub read: bool,
    pub archived: bool,
}

/// An attachment of a message.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct AttachmentView {
    pub id: String,
    pub name: String,
    pub media_type: String,
    pub size: i64,
    /// Hex SHA-256 of the content.
    pub sha256: String,
    /// A seal is offered at `…/attachments/{id}/seal`.
    pub sealed: bool,
}

/// How the notification about a decision fared, in plain words for the citizen.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct NotificationStatus {
    pub status: amtsweg_mail::Status,
    pub explained: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sent_at: Option<Timestamp>,
}

/// Where a delivered decision stands, as the citizen sees it.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct DeliveryStatus {
    /// `provided`, `printing`, `posted` or `notified`.
    pub state: String,
    /// `postfach` or `paper`.
    pub channel: String,
    pub statute: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub provided_at: Option<Timestamp>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub notification: Option<NotificationStatus>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub first_retrieved_at: Option<Timestamp>,
    /// The day the decision counts as notified (bekannt gegeben), once it is known.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub deemed_notified_on: Option<String>,
    /// The last day it can be opened here before it goes out on paper, while that can still happen.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub retrievable_until: Option<String>,
    /// When the provision here ended (the decision then goes out on paper).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub provision_ended_at: Option<Timestamp>,
    pub explained: String,
}

/// A message, opened.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct MessageView {
    #[serde(flatten)]
    pub summary: MessageSummary,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub in_reply_to: Option<String>,
    pub body: String,
    pub attachments: Vec<AttachmentView>,
    /// For a decision: its delivery.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub delivery: Option<DeliveryStatus>,
}

/// A new message from a citizen.
#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewMessage {
    pub subject: String,
    pub body: String,
    /// The application the message is about: it goes to the unit handling it.
    #[serde(default)]
    pub application_id: Option<String>,
    /// Or a unit of the catalogue (without an application).
    #[serde(default)]
    pub unit_id: Option<String>,
    /// Write for an organisation the caller is a member of (without an application).
    #[serde(default)]
    pub on_behalf_of: Option<String>,
    /// Files uploaded before through `POST /api/v1/files`.
    #[serde(default)]
    pub attachments: Vec<String>,
}

/// A reply in a thread.
#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Reply {
    pub body: String,
    #[serde(default)]
    pub attachments: Vec<String>,
}

/// A new message from staff to the applicant of a case.
#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct StaffMessage {
    pub application_id: String,
    pub subject: String,
    pub body: String,
    /// The trust level needed to open it; default `basic`.
    #[serde(default)]
    pub required_level: Option<TrustLevel>,
    /// Files the caller uploaded before through `POST /api/v1/staff/files`.
    #[serde(default)]
    pub attachments: Vec<String>,
}

/// Filters of a message list.
#[derive(Debug, Clone, Default)]
pub struct MessageFilter {
    pub unread: bool,
    pub application_id: Option<String>,
    pub archived: bool,
    pub unit_id: Option<String>,
}

fn not_found() -> MailroomError {
    MailroomError::NotFound(
        "message_not_found",
        Text::fixed("Nachricht nicht gefunden.", "Message not found."),
    )
}

fn attachment_not_found() -> MailroomError {
    MailroomError::NotFound(
        "attachment_not_found",
        Text::fixed("Anlage nicht gefunden.", "Attachment not found."),
    )
}

fn level_of(text: &str) -> TrustLevel {
    TrustLevel::from_acr(text)
}

impl MessageRow {
    fn summary(&self) -> MessageSummary {
        let read_side = self.read_at.is_some();
        MessageSummary {
            id: self.id.clone(),
            mailbox: self.mailbox.clone(),
            unit_id: self.unit_id.clone(),
            direction: self.direction.clone(),
            kind: self.kind.clone(),
            thread_id: self.thread_id.clone(),
            subject: self.subject.clone(),
            application_id: self.case_ref.clone(),
            case_number: self.case_number.clone(),
            required_level: level_of(&self.required_level),
            created_at: self.created_at,
            read: read_side,
            archived: self.archived_at.is_some(),
        }
    }
}

/// The Postfächer a person sees: their own and their organisations'.
fn mailboxes_of(conn: &mut DbConnection, person: &str) -> Result<Vec<String>, DbError> {
    let mut boxes = vec![format!("account:{person}")];
    boxes.extend(
        directory::organisations_of(conn, person)?
            .into_iter()
            .map(|org| format!("organisation:{org}")),
    );
    Ok(boxes)
}

/// The units whose messages a member of staff handles.
pub(crate) fn staff_units(auth: &StaffAuth) -> Units {
    let mut all = Vec::new();
    for role in UNIT_ROLES {
        match auth.units_for(role) {
            Units::All => return Units::All,
            Units::Some(units) => all.extend(units),
            Units::None => {}
        }
    }
    if all.is_empty() {
        Units::None
    } else {
        Units::Some(all)
    }
}

fn load_message(conn: &mut DbConnection, id: &str) -> Result<MessageRow, MailroomError> {
    mailbox_messages::table
        .find(id)
        .select(MessageRow::as_select())
        .first(conn)
        .optional()?
        .ok_or_else(not_found)
}

/// A message the citizen may see.
fn citizen_message(conn: &mut DbConnection, id: &str, person: &str) -> Result<MessageRow, MailroomError> {
    let row = load_message(conn, id)?;
    if mailboxes_of(conn, person)?.contains(&row.mailbox) {
        Ok(row)
    } else {
        Err(not_found())
    }
}

/// A message of one of the staff member's units.
fn staff_message(conn: &mut DbConnection, id: &str, units: &Units) -> Result<MessageRow, MailroomError> {
    let row = load_message(conn, id)?;
    if units.contains(&row.unit_id) {
        Ok(row)
    } else {
        Err(not_found())
    }
}

fn attachments_of(conn: &mut DbConnection, message_id: &str) -> Result<Vec<AttachmentRow>, DbError> {
    Ok(mailbox_attachments::table
        .filter(mailbox_attachments::message_id.eq(message_id))
        .order(mailbox_attachments::id)
        .select(AttachmentRow::as_select())
        .load(conn)?)
}

fn attachment_of(
    conn: &mut DbConnection,
    message_id: &str,
    attachment_id: &str,
) -> Result<AttachmentRow, MailroomError> {
    mailbox_attachments::table
        .find(attachment_id)
        .filter(mailbox_attachments::message_id.eq(message_id))
        .select(AttachmentRow::as_select())
        .first(conn)
        .optional()?
        .ok_or_else(attachment_not_found)
}

fn delivery_status(
    conn: &mut DbConnection,
    row: &DeliveryRow,
    lang: Lang,
) -> Result<DeliveryStatus, DbError> {
    let notification = match &row.notification_mail_id {
        Some(_) => amtsweg_mail::notifications(conn, &format!("delivery:{}", row.id))?
            .into_iter()
            .last()
            .map(|n| NotificationStatus {
                status: n.status,
                explained: n.status.explained().get(lang).to_owned(),
                sent_at: n.sent_at,
            }),
        None => None,
    };
    let rule = row.rule();
    let retrievable_until = match (
        row.notified_at,
        rule.expires_after_days,
        row.first_retrieved_at,
        row.expired_at,
    ) {
        (Some(notified), Some(days), None, None) => {
            Some((crate::rules::berlin_day(notified) + chrono::Days::new(u64::from(days))).to_string())
        }
        _ => None,
    };
    let explained = match (row.state.as_str(), lang) {
        ("provided", Lang::De) => "Der Bescheid liegt in Ihrem Postfach zum Abruf bereit.",
        ("provided", Lang::En) => "The decision is ready in your mailbox.",
        ("printing" | "posted", Lang::De) => "Der Bescheid wird Ihnen per Post zugestellt.",
        ("printing" | "posted", Lang::En) => "The decision is being sent to you by post.",
        (_, Lang::De) => "Der Bescheid ist bekannt gegeben.",
        (_, Lang::En) => "The decision has been notified.",
    };
    Ok(DeliveryStatus {
        state: row.state.clone(),
        channel: row.channel.clone(),
        statute: if row.posted_on.is_some() {
            "§ 41 Abs. 2 VwVfG".to_owned()
        } else {
            rule.preset.statute().to_owned()
        },
        provided_at: row.provided_at,
        notification,
        first_retrieved_at: row.first_retrieved_at,
        deemed_notified_on: row.deemed_notified_on.clone().filter(|d| day(d).is_some()),
        retrievable_until,
        provision_ended_at: row.expired_at,
        explained: explained.to_owned(),
    })
}

fn view_of(conn: &mut DbConnection, row: &MessageRow, lang: Lang) -> Result<MessageView, DbError> {
    let attachments = attachments_of(conn, &row.id)?;
    let delivery: Option<DeliveryRow> = if row.kind == "decision" {
        let id: Option<String> = deliveries::table
            .filter(deliveries::message_id.eq(&row.id))
            .select(deliveries::id)
            .first(conn)
            .optional()?;
        match id {
            Some(id) => load(conn, &id)?,
            None => None,
        }
    } else {
        None
    };
    Ok(MessageView {
        summary: row.summary(),
        in_reply_to: row.in_reply_to.clone(),
        body: row.body.clone(),
        attachments: attachments
            .iter()
            .map(|a| AttachmentView {
                id: a.id.clone(),
                name: a.name.clone(),
                media_type: a.media_type.clone(),
                size: a.size,
                sha256: a.sha256.clone(),
                sealed: a.seal.is_some(),
            })
            .collect(),
        delivery: delivery.map(|d| delivery_status(conn, &d, lang)).transpose()?,
    })
}

fn check_text(errors: &mut Vec<FieldError>, pointer: &str, text: &str, max: usize) {
    let length = text.trim().chars().count();
    if length == 0 || length > max || !amtsweg_kernel::text::storable(text) {
        errors.push(FieldError::at_pointer(
            pointer,
            "invalid_length",
            Text::new(
                format!("Bitte 1 bis {max} Zeichen."),
                format!("Please give 1 to {max} characters."),
            ),
        ));
    }
}

const MAX_ATTACHMENTS: usize = 10;

/// The problems of a message text and its attachment list (subject only where there is one).
fn check_message(subject: Option<&str>, body: &str, attachments: &[String]) -> Result<(), MailroomError> {
    let mut errors = Vec::new();
    if let Some(subject) = subject {
        check_text(&mut errors, "/subject", subject, 200);
    }
    check_text(&mut errors, "/body", body, 20_000);
    if attachments.len() > MAX_ATTACHMENTS {
        errors.push(FieldError::at_pointer(
            "/attachments",
            "too_many_items",
            Text::fixed("Höchstens 10 Anlagen.", "At most 10 attachments."),
        ));
    }
    if errors.is_empty() {
        Ok(())
    } else {
        Err(MailroomError::Validation(errors))
    }
}

/// Takes up a citizen's uploads as attachments of a message.
fn attach(
    conn: &mut DbConnection,
    message_id: &str,
    files: &[String],
    person: &str,
    now: Timestamp,
) -> Result<(), MailroomError> {
    for (i, file_id) in files.iter().enumerate() {
        let id = amtsweg_files::FileId::from_string(file_id.clone());
        let Some(file) = amtsweg_files::take_up(conn, &id, person, "mailroom")? else {
            return Err(MailroomError::Validation(vec![FieldError::at_pointer(
                format!("/attachments/{i}"),
                "file_not_found",
                Text::fixed(
                    "Keine eigene, noch nicht verwendete Datei mit dieser Kennung.",
                    "No unused upload of yours with this id.",
                ),
            )]));
        };
        diesel::insert_into(mailbox_attachments::table)
            .values((
                mailbox_attachments::id.eq(amtsweg_kernel::id::new_id()),
                mailbox_attachments::message_id.eq(message_id),
                mailbox_attachments::file_id.eq(file_id),
                mailbox_attachments::holder.eq(person),
                mailbox_attachments::name.eq(&file.name),
                mailbox_attachments::media_type.eq(&file.media_type),
                mailbox_attachments::size.eq(file.size),
                mailbox_attachments::sha256.eq(&file.sha256),
                mailbox_attachments::created_at.eq(now),
            ))
            .execute(conn)?;
    }
    Ok(())
}

/// One message to write.
struct Outgoing<'a> {
    mailbox: &'a str,
    unit_id: &'a str,
    direction: &'a str,
    thread_id: Option<&'a str>,
    in_reply_to: Option<&'a str>,
    subject: &'a str,
    body: &'a str,
    case_ref: Option<&'a str>,
    case_number: Option<&'a str>,
    required_level: TrustLevel,
    author: &'a str,
}

fn insert(conn: &mut DbConnection, message: &Outgoing<'_>, now: Timestamp) -> Result<String, DbError> {
    let id = amtsweg_kernel::id::new_id();
    diesel::insert_into(mailbox_messages::table)
        .values((
            mailbox_messages::id.eq(&id),
            mailbox_messages::mailbox.eq(message.mailbox),
            mailbox_messages::unit_id.eq(message.unit_id),
            mailbox_messages::direction.eq(message.direction),
            mailbox_messages::kind.eq("message"),
            mailbox_messages::thread_id.eq(message.thread_id.unwrap_or(&id)),
            mailbox_messages::in_reply_to.eq(message.in_reply_to),
            mailbox_messages::subject.eq(message.subject.trim()),
            mailbox_messages::body.eq(message.body.trim()),
            mailbox_messages::case_ref.eq(message.case_ref),
            mailbox_messages::case_number.eq(message.case_number),
            mailbox_messages::required_level.eq(message.required_level.as_str()),
            mailbox_messages::author.eq(message.author),
            mailbox_messages::created_at.eq(now),
        ))
        .execute(conn)?;
    Ok(id)
}

fn citizen_actor(auth: &CitizenAuth) -> amtsweg_audit::Actor {
    amtsweg_audit::Actor::new(
        amtsweg_audit::ActorKind::Citizen,
        &auth.account_id,
        auth.address.clone(),
    )
}

fn staff_actor(auth: &StaffAuth) -> amtsweg_audit::Actor {
    amtsweg_audit::Actor::new(
        amtsweg_audit::ActorKind::Staff,
        &auth.account_id,
        auth.address.clone(),
    )
}

/// Whose messages a list shows.
enum Scope {
    /// A citizen's: these Postfächer.
    Mailboxes(Vec<String>),
    /// Staff's: these units'.
    Units(Units),
}

/// One page of messages, newest first. "Unread" means not yet opened by the receiving side of the scope.
fn list(
    conn: &mut DbConnection,
    scope: Scope,
    filter: &MessageFilter,
    page: &PageRequest,
) -> Result<Page<MessageSummary>, DbError> {
    let mut query = mailbox_messages::table.into_boxed();
    let incoming = match scope {
        Scope::Mailboxes(boxes) => {
            query = query.filter(mailbox_messages::mailbox.eq_any(boxes));
            if !filter.archived {
                query = query.filter(mailbox_messages::archived_at.is_null());
            }
            "to_citizen"
        }
        Scope::Units(units) => {
            if let Units::Some(units) = units {
                query = query.filter(mailbox_messages::unit_id.eq_any(units));
            }
            if let Some(unit) = &filter.unit_id {
                query = query.filter(mailbox_messages::unit_id.eq(unit.clone()));
            }
            "to_unit"
        }
    };
    if filter.unread {
        query = query
            .filter(mailbox_messages::direction.eq(incoming))
            .filter(mailbox_messages::read_at.is_null());
    }
    if let Some(application) = &filter.application_id {
        query = query.filter(mailbox_messages::case_ref.eq(application.clone()));
    }
    if let Some(after) = &page.after {
        query = query.filter(mailbox_messages::id.lt(after.clone()));
    }
    let rows: Vec<MessageRow> = query
        .order(mailbox_messages::id.desc())
        .limit(i64::try_from(page.limit + 1).unwrap_or(101))
        .select(MessageRow::as_select())
        .load(conn)?;
    let items = rows.iter().map(MessageRow::summary).collect();
    Ok(Page::from_overfetched(items, page.limit, |m: &MessageSummary| {
        m.id.clone()
    }))
}

fn reply_subject(subject: &str) -> String {
    if subject.starts_with("Re: ") {
        subject.to_owned()
    } else {
        format!("Re: {subject}")
    }
}

impl Mailroom {
    /// Tells the holder of a Postfach that a message arrived (no content in the mail).
    fn notify_new_message(
        &self,
        conn: &mut DbConnection,
        person: &str,
        now: Timestamp,
    ) -> Result<(), DbError> {
        if let Some(contact) = directory::contact(conn, person)?
            && let Some(email) = contact.email
        {
            let (subject, body) = crate::templates::new_message(contact.lang, self.portal_url());
            amtsweg_mail::enqueue(
                conn,
                &amtsweg_mail::Message {
                    to: email,
                    subject,
                    body,
                    kind: "mailroom.new_message",
                    account_id: Some(person.to_owned()),
                    reference: None,
                    publish_outcome: false,
                },
                now,
            )?;
        }
        Ok(())
    }

    /// The citizen's messages (own and organisations' Postfächer), newest first.
    pub async fn citizen_messages(
        &self,
        person: &str,
        filter: MessageFilter,
        page: PageRequest,
    ) -> Result<Page<MessageSummary>, MailroomError> {
        let person = person.to_owned();
        self.db()
            .read(move |conn| {
                let boxes = mailboxes_of(conn, &person)?;
                Ok(list(conn, Scope::Mailboxes(boxes), &filter, &page)?)
            })
            .await
    }

    /// Opens a message: at the message's trust level; marks a message to the citizen read.
    pub async fn citizen_message(
        &self,
        auth: &CitizenAuth,
        id: &str,
        lang: Lang,
    ) -> Result<MessageView, MailroomError> {
        let (id, auth, now) = (id.to_owned(), auth.clone(), self.now());
        self.db()
            .write(move |conn| {
                let mut row = citizen_message(conn, &id, &auth.account_id)?;
                auth.require_level(level_of(&row.required_level))?;
                if row.direction == "to_citizen" && row.read_at.is_none() {
                    diesel::update(mailbox_messages::table.find(&id))
                        .set(mailbox_messages::read_at.eq(now))
                        .execute(conn)?;
                    row.read_at = Some(now);
                }
                Ok(view_of(conn, &row, lang)?)
            })
            .await
    }

    /// An attachment the citizen opens or downloads: at the message's trust level. For a delivered decision this
    /// is the retrieval the law counts (recorded once, before the content goes out).
    pub async fn citizen_attachment(
        &self,
        auth: &CitizenAuth,
        message_id: &str,
        attachment_id: &str,
    ) -> Result<amtsweg_files::FileView, MailroomError> {
        let (message_id, attachment_id, auth, now) = (
            message_id.to_owned(),
            attachment_id.to_owned(),
            auth.clone(),
            self.now(),
        );
        let attachment = self
            .db()
            .write(move |conn| {
                let row = citizen_message(conn, &message_id, &auth.account_id)?;
                auth.require_level(level_of(&row.required_level))?;
                let attachment = attachment_of(conn, &message_id, &attachment_id)?;
                Mailroom::retrieved(conn, &attachment.id, &auth.account_id, auth.address.clone(), now)?;
                Ok::<_, MailroomError>(attachment)
            })
            .await?;
        self.file_of(&attachment).await
    }

    async fn file_of(&self, attachment: &AttachmentRow) -> Result<amtsweg_files::FileView, MailroomError> {
        let id = amtsweg_files::FileId::from_string(attachment.file_id.clone());
        Ok(self.files().file_of(&attachment.holder, &id).await?)
    }

    /// The seal of an attachment (a JWS), for a message the citizen may see.
    pub async fn citizen_seal(
        &self,
        person: &str,
        message_id: &str,
        attachment_id: &str,
    ) -> Result<String, MailroomError> {
        let (person, message_id, attachment_id) =
            (person.to_owned(), message_id.to_owned(), attachment_id.to_owned());
        self.db()
            .read(move |conn| {
                citizen_message(conn, &message_id, &person)?;
                attachment_of(conn, &message_id, &attachment_id)?
                    .seal
                    .ok_or_else(|| {
                        MailroomError::NotFound(
                            "seal_not_found",
                            Text::fixed(
                                "Diese Anlage ist nicht gesiegelt.",
                                "This attachment is not sealed.",
                            ),
                        )
                    })
            })
            .await
    }

    /// A citizen writes to the unit handling one of their applications, or to a unit of the catalogue.
    pub async fn citizen_send(
        &self,
        auth: &CitizenAuth,
        message: NewMessage,
        lang: Lang,
    ) -> Result<MessageView, MailroomError> {
        let mut errors = Vec::new();
        check_text(&mut errors, "/subject", &message.subject, 200);
        check_text(&mut errors, "/body", &message.body, 20_000);
        if message.attachments.len() > MAX_ATTACHMENTS {
            errors.push(FieldError::at_pointer(
                "/attachments",
                "too_many_items",
                Text::fixed("Höchstens 10 Anlagen.", "At most 10 attachments."),
            ));
        }
        if message.application_id.is_some() == message.unit_id.is_some() {
            errors.push(FieldError::at_pointer(
                "/application_id",
                "one_of_required",
                Text::fixed(
                    "Bitte entweder einen Antrag (application_id) oder eine Stelle (unit_id) angeben.",
                    "Please give either an application (application_id) or a unit (unit_id).",
                ),
            ));
        }
        if message.application_id.is_some() && message.on_behalf_of.is_some() {
            errors.push(FieldError::at_pointer(
                "/on_behalf_of",
                "not_allowed",
                Text::fixed(
                    "Eine Nachricht zu einem Antrag geht in dessen Postfach.",
                    "A message about an application goes to that application's mailbox.",
                ),
            ));
        }
        if let Some(unit) = &message.unit_id
            && !self
                .catalogue()
                .catalogue()
                .iter()
                .any(|p| &p.procedure.unit.id == unit)
        {
            errors.push(FieldError::at_pointer(
                "/unit_id",
                "unknown_unit",
                Text::fixed("Keine Stelle mit dieser Kennung.", "No unit with this id."),
            ));
        }
        if !errors.is_empty() {
            return Err(MailroomError::Validation(errors));
        }
        let (auth, now, service) = (auth.clone(), self.now(), self.clone());
        self.db()
            .write(move |conn| {
                let person = auth.account_id.clone();
                let (mailbox, unit, case_ref, case_number) = match (&message.application_id, &message.unit_id)
                {
                    (Some(application), _) => {
                        let case = service
                            .cases()
                            .case_for_citizen(conn, application, &person)?
                            .ok_or_else(|| {
                                MailroomError::Validation(vec![FieldError::at_pointer(
                                    "/application_id",
                                    "application_not_found",
                                    Text::fixed(
                                        "Kein eingereichter Antrag von Ihnen mit dieser Kennung.",
                                        "No submitted application of yours with this id.",
                                    ),
                                )])
                            })?;
                        (
                            case.mailbox(),
                            case.unit_id,
                            Some(case.case_ref),
                            case.case_number,
                        )
                    }
                    (None, Some(unit)) => {
                        let mailbox = match &message.on_behalf_of {
                            Some(org) if directory::is_member(conn, org, &person)? => {
                                format!("organisation:{org}")
                            }
                            Some(_) => {
                                return Err(MailroomError::Validation(vec![FieldError::at_pointer(
                                    "/on_behalf_of",
                                    "not_a_member",
                                    Text::fixed(
                                        "Sie sind kein Mitglied dieser Organisation.",
                                        "You are not a member of this organisation.",
                                    ),
                                )]));
                            }
                            None => format!("account:{person}"),
                        };
                        (mailbox, unit.clone(), None, None)
                    }
                    (None, None) => return Err(MailroomError::Internal("checked above".into())),
                };
                let id = insert(
                    conn,
                    &Outgoing {
                        mailbox: &mailbox,
                        unit_id: &unit,
                        direction: "to_unit",
                        thread_id: None,
                        in_reply_to: None,
                        subject: &message.subject,
                        body: &message.body,
                        case_ref: case_ref.as_deref(),
                        case_number: case_number.as_deref(),
                        required_level: auth.level,
                        author: &person,
                    },
                    now,
                )?;
                attach(conn, &id, &message.attachments, &person, now)?;
                crate::audit(conn, &citizen_actor(&auth), "message.sent", ("message", &id), now)?;
                let row = load_message(conn, &id)?;
                Ok(view_of(conn, &row, lang)?)
            })
            .await
    }

    /// A citizen answers in a thread they can see: the reply goes to the thread's unit.
    pub async fn citizen_reply(
        &self,
        auth: &CitizenAuth,
        id: &str,
        reply: Reply,
        lang: Lang,
    ) -> Result<MessageView, MailroomError> {
        check_message(None, &reply.body, &reply.attachments)?;
        let (id, auth, now) = (id.to_owned(), auth.clone(), self.now());
        self.db()
            .write(move |conn| {
                let original = citizen_message(conn, &id, &auth.account_id)?;
                auth.require_level(level_of(&original.required_level))?;
                let new_id = insert(
                    conn,
                    &Outgoing {
                        mailbox: &original.mailbox,
                        unit_id: &original.unit_id,
                        direction: "to_unit",
                        thread_id: Some(&original.thread_id),
                        in_reply_to: Some(&original.id),
                        subject: &reply_subject(&original.subject),
                        body: &reply.body,
                        case_ref: original.case_ref.as_deref(),
                        case_number: original.case_number.as_deref(),
                        required_level: auth.level.max(level_of(&original.required_level)),
                        author: &auth.account_id,
                    },
                    now,
                )?;
                attach(conn, &new_id, &reply.attachments, &auth.account_id, now)?;
                crate::audit(
                    conn,
                    &citizen_actor(&auth),
                    "message.sent",
                    ("message", &new_id),
                    now,
                )?;
                let row = load_message(conn, &new_id)?;
                Ok(view_of(conn, &row, lang)?)
            })
            .await
    }

    /// Archives a message in the citizen's view (it stays, filtered out of the default list).
    pub async fn citizen_archive(&self, person: &str, id: &str) -> Result<MessageSummary, MailroomError> {
        let (person, id, now) = (person.to_owned(), id.to_owned(), self.now());
        self.db()
            .write(move |conn| {
                let mut row = citizen_message(conn, &id, &person)?;
                if row.archived_at.is_none() {
                    diesel::update(mailbox_messages::table.find(&id))
                        .set(mailbox_messages::archived_at.eq(now))
                        .execute(conn)?;
                    row.archived_at = Some(now);
                }
                Ok(row.summary())
            })
            .await
    }

    /// The messages of the staff member's units, newest first.
    pub async fn staff_messages(
        &self,
        auth: &StaffAuth,
        filter: MessageFilter,
        page: PageRequest,
    ) -> Result<Page<MessageSummary>, MailroomError> {
        let units = staff_units(auth);
        if matches!(units, Units::None) {
            return Err(MailroomError::Forbidden(Text::fixed(
                "Nachrichten sehen Sachbearbeitung und Leitung einer Stelle.",
                "Messages are for a unit's case workers and supervisors.",
            )));
        }
        self.db()
            .read(move |conn| Ok(list(conn, Scope::Units(units), &filter, &page)?))
            .await
    }

    /// A message of the staff member's units; a message to the unit is marked read.
    pub async fn staff_message(
        &self,
        auth: &StaffAuth,
        id: &str,
        lang: Lang,
    ) -> Result<MessageView, MailroomError> {
        let (units, id, now) = (staff_units(auth), id.to_owned(), self.now());
        self.db()
            .write(move |conn| {
                let mut row = staff_message(conn, &id, &units)?;
                if row.direction == "to_unit" && row.read_at.is_none() {
                    diesel::update(mailbox_messages::table.find(&id))
                        .set(mailbox_messages::read_at.eq(now))
                        .execute(conn)?;
                    row.read_at = Some(now);
                }
                Ok(view_of(conn, &row, lang)?)
            })
            .await
    }

    /// An attachment of a message of the staff member's units (not a retrieval by the recipient).
    pub async fn staff_attachment(
        &self,
        auth: &StaffAuth,
        message_id: &str,
        attachment_id: &str,
    ) -> Result<amtsweg_files::FileView, MailroomError> {
        let (units, message_id, attachment_id) =
            (staff_units(auth), message_id.to_owned(), attachment_id.to_owned());
        let attachment = self
            .db()
            .read(move |conn| {
                staff_message(conn, &message_id, &units)?;
                attachment_of(conn, &message_id, &attachment_id)
            })
            .await?;
        self.file_of(&attachment).await
    }

    /// Staff write to the applicant of a case of their unit; the applicant is told by mail.
    pub async fn staff_send(
        &self,
        auth: &StaffAuth,
        message: StaffMessage,
        lang: Lang,
    ) -> Result<MessageView, MailroomError> {
        check_message(Some(&message.subject), &message.body, &message.attachments)?;
        let (units, auth, now, service) = (staff_units(auth), auth.clone(), self.now(), self.clone());
        self.db()
            .write(move |conn| {
                let case = service
                    .cases()
                    .case(conn, &message.application_id)?
                    .filter(|case| units.contains(&case.unit_id))
                    .ok_or_else(|| {
                        MailroomError::Validation(vec![FieldError::at_pointer(
                            "/application_id",
                            "application_not_found",
                            Text::fixed(
                                "Kein eingereichter Antrag Ihrer Stelle mit dieser Kennung.",
                                "No submitted application of your unit with this id.",
                            ),
                        )])
                    })?;
                let id = insert(
                    conn,
                    &Outgoing {
                        mailbox: &case.mailbox(),
                        unit_id: &case.unit_id,
                        direction: "to_citizen",
                        thread_id: None,
                        in_reply_to: None,
                        subject: &message.subject,
                        body: &message.body,
                        case_ref: Some(&case.case_ref),
                        case_number: case.case_number.as_deref(),
                        required_level: message.required_level.unwrap_or(TrustLevel::Basic),
                        author: &auth.account_id,
                    },
                    now,
                )?;
                attach(conn, &id, &message.attachments, &auth.account_id, now)?;
                service.notify_new_message(conn, &case.applicant, now)?;
                crate::audit(conn, &staff_actor(&auth), "message.sent", ("message", &id), now)?;
                let row = load_message(conn, &id)?;
                Ok(view_of(conn, &row, lang)?)
            })
            .await
    }

    /// Staff answer a message of their unit in its thread; the citizen is told by mail.
    pub async fn staff_reply(
        &self,
        auth: &StaffAuth,
        id: &str,
        reply: Reply,
        lang: Lang,
    ) -> Result<MessageView, MailroomError> {
        check_message(None, &reply.body, &reply.attachments)?;
        let (units, id, auth, now, service) = (
            staff_units(auth),
            id.to_owned(),
            auth.clone(),
            self.now(),
            self.clone(),
        );
        self.db()
            .write(move |conn| {
                let original = staff_message(conn, &id, &units)?;
                let new_id = insert(
                    conn,
                    &Outgoing {
                        mailbox: &original.mailbox,
                        unit_id: &original.unit_id,
                        direction: "to_citizen",
                        thread_id: Some(&original.thread_id),
                        in_reply_to: Some(&original.id),
                        subject: &reply_subject(&original.subject),
                        body: &reply.body,
                        case_ref: original.case_ref.as_deref(),
                        case_number: original.case_number.as_deref(),
                        required_level: level_of(&original.required_level),
                        author: &auth.account_id,
                    },
                    now,
                )?;
                attach(conn, &new_id, &reply.attachments, &auth.account_id, now)?;
                let to = match (&original.author, original.mailbox.strip_prefix("account:")) {
                    (_, Some(account)) => Some(account.to_owned()),
                    (Some(author), None) => Some(author.clone()),
                    (None, None) => None,
                };
                if let Some(person) = to {
                    service.notify_new_message(conn, &person, now)?;
                }
                crate::audit(
                    conn,
                    &staff_actor(&auth),
                    "message.sent",
                    ("message", &new_id),
                    now,
                )?;
                let row = load_message(conn, &new_id)?;
                Ok(view_of(conn, &row, lang)?)
            })
            .await
    }
}
