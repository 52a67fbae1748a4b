//! Delivering a decision with evidence.
//!
//! [`Mailroom::provide`] runs in the deciding module's transaction: with the recipient's consent to electronic
//! delivery (and an address to notify) the decision is provided in the Postfach as a sealed document and the
//! notification is queued; otherwise a letter is queued for the print line. Each time of the evidence is written
//! once (`… IS NULL` guards every update) and audited: provided_at; notified_at, when the mail module reports the
//! notification handed to the relay; first_retrieved_at, at the first opening of the document after
//! authentication at the message's level; and the deemed notification day the procedure's rule derives. A
//! daily job ends provisions not retrieved in time (they go to paper) and records deemed notifications.

use amtsweg_account::directory;
use amtsweg_audit::{Actor, ActorKind};
use amtsweg_catalogue::domain::{DeliveryPreset, DeliveryRule, DeliveryStart, ResolvedRule};
use amtsweg_db::{DbConnection, DbError};
use amtsweg_kernel::{Lang, Text, Timestamp, TrustLevel};
use chrono::NaiveDate;
use diesel::prelude::*;
use serde::Serialize;
use serde_json::Value;

use crate::cases::CaseInfo;
use crate::rules::{berlin_day, deemed_on, provision_ended};
use crate::schema::{deliveries, delivery_documents, mailbox_attachments, mailbox_messages, print_letters};
use crate::{Mailroom, MailroomError, events};

/// The document to deliver, as stored by the deciding module.
#[derive(Debug, Clone)]
pub struct Document {
    pub file_id: String,
    /// The account the file is kept for (the files module's owner).
    pub holder: String,
    pub name: String,
    pub sha256: String,
    pub pages: Option<i32>,
}

/// A decision to deliver.
#[derive(Debug, Clone)]
pub struct Provision<'a> {
    /// What is delivered, unique: providing the same thing twice changes nothing (e.g. `decision:{id}`).
    pub owner_ref: &'a str,
    pub case: &'a CaseInfo,
    pub rule: DeliveryRule,
    /// The trust level a session needs to open the message.
    pub required_level: TrustLevel,
    /// The message's subject and text, in both languages; the recipient's is used.
    pub subject: Text,
    pub body: Text,
    pub document: Document,
}

/// What became of a provision.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Provided {
    /// In the Postfach, the notification queued.
    Postfach { delivery_id: String, message_id: String },
    /// No consent to electronic delivery (or nowhere to notify): queued for paper.
    Paper {
        delivery_id: String,
        reason: &'static str,
    },
    /// Provided before (the same `owner_ref`).
    Already { delivery_id: String },
}

#[derive(Debug, Clone, Queryable, Selectable)]
#[diesel(table_name = deliveries)]
pub(crate) struct DeliveryRow {
    pub id: String,
    pub case_ref: Option<String>,
    pub case_number: Option<String>,
    pub recipient: String,
    pub mailbox: String,
    pub unit_id: String,
    pub rule: String,
    pub starts: String,
    pub days: i32,
    pub expires_after_days: Option<i32>,
    pub channel: String,
    pub state: String,
    pub message_id: Option<String>,
    pub attachment_id: Option<String>,
    pub required_level: String,
    pub consent_id: Option<String>,
    pub provided_at: Option<Timestamp>,
    pub notification_mail_id: Option<String>,
    pub notification_address: Option<String>,
    pub notified_at: Option<Timestamp>,
    pub first_retrieved_at: Option<Timestamp>,
    pub deemed_notified_on: Option<String>,
    pub deemed_recorded_at: Option<Timestamp>,
    pub expired_at: Option<Timestamp>,
    pub fallback_reason: Option<String>,
    pub letter_id: Option<String>,
    pub posted_on: Option<String>,
    pub created_at: Timestamp,
    pub served_on: Option<String>,
}

impl DeliveryRow {
    pub(crate) fn rule(&self) -> ResolvedRule {
        let starts = match self.starts.as_str() {
            "notification" => DeliveryStart::Notification,
            "provision" => DeliveryStart::Provision,
            _ => DeliveryStart::Retrieval,
        };
        ResolvedRule {
            preset: DeliveryPreset::parse(&self.rule).unwrap_or_default(),
            starts,
            days: u32::try_from(self.days).unwrap_or(1),
            expires_after_days: self.expires_after_days.and_then(|d| u32::try_from(d).ok()),
        }
    }
}

/// The document of a delivery.
#[derive(Debug, Clone, Queryable, Selectable)]
#[diesel(table_name = delivery_documents)]
pub(crate) struct DocumentRow {
    pub name: String,
    pub sha256: String,
    pub pages: Option<i32>,
}

pub(crate) fn document_of(conn: &mut DbConnection, delivery_id: &str) -> Result<DocumentRow, DbError> {
    Ok(delivery_documents::table
        .find(delivery_id)
        .select(DocumentRow::as_select())
        .first(conn)?)
}

/// The stages of a delivery.
pub(crate) mod state {
    /// In the Postfach, not yet notified (bekannt gegeben).
    pub const PROVIDED: &str = "provided";
    /// Waiting for the print line.
    pub const PRINTING: &str = "printing";
    /// Handed to the post.
    pub const POSTED: &str = "posted";
    /// Counts as notified.
    pub const NOTIFIED: &str = "notified";
}

fn starts_str(starts: DeliveryStart) -> &'static str {
    match starts {
        DeliveryStart::Retrieval => "retrieval",
        DeliveryStart::Notification => "notification",
        DeliveryStart::Provision => "provision",
    }
}

pub(crate) fn audit(
    conn: &mut DbConnection,
    actor: &Actor,
    action: &str,
    delivery_id: &str,
    now: Timestamp,
) -> Result<(), DbError> {
    crate::audit(conn, actor, action, ("delivery", delivery_id), now)
}

/// A delivery read to be changed: locked for the rest of the transaction on PostgreSQL (SQLite writers are
/// serialised already), so that a retrieval and a mail outcome arriving together never overwrite each other's
/// evidence.
fn locked(conn: &mut DbConnection, id: &str) -> Result<Option<DeliveryRow>, DbError> {
    Ok(match conn {
        DbConnection::Postgres(pg) => deliveries::table
            .find(id)
            .select(DeliveryRow::as_select())
            .for_update()
            .first(pg)
            .optional()?,
        DbConnection::Sqlite(sqlite) => deliveries::table
            .find(id)
            .select(DeliveryRow::as_select())
            .first(sqlite)
            .optional()?,
    })
}

pub(crate) fn load(conn: &mut DbConnection, id: &str) -> Result<Option<DeliveryRow>, DbError> {
    Ok(deliveries::table
        .find(id)
        .select(DeliveryRow::as_select())
        .first(conn)
        .optional()?)
}

fn seal_error(err: amtsweg_seal::SealError) -> DbError {
    DbError::Task(format!("the document cannot be sealed: {err}"))
}

/// Queues a letter for the print line and ends the electronic provision, if there was one.
pub(crate) fn to_paper(
    conn: &mut DbConnection,
    row: &DeliveryRow,
    reason: &'static str,
    now: Timestamp,
) -> Result<bool, DbError> {
    let letter_id = amtsweg_kernel::id::new_id();
    let changed = diesel::update(
        deliveries::table
            .find(&row.id)
            .filter(deliveries::state.eq(state::PROVIDED))
            .filter(deliveries::expired_at.is_null())
            // A retrieval that committed meanwhile keeps the provision.
            .filter(deliveries::first_retrieved_at.is_null()),
    )
    .set((
        deliveries::state.eq(state::PRINTING),
        deliveries::expired_at.eq(now),
        deliveries::fallback_reason.eq(reason),
        deliveries::letter_id.eq(&letter_id),
        deliveries::deemed_notified_on.eq(None::<String>),
    ))
    .execute(conn)?;
    if changed == 0 {
        return Ok(false);
    }
    insert_letter(conn, &letter_id, &row.id, &row.unit_id, reason, now)?;
    audit(conn, &Actor::system(), "delivery.fallback_to_paper", &row.id, now)?;
    events::delivery(
        conn,
        &events::FALLBACK,
        &row.id,
        row.case_ref.as_deref(),
        "paper",
        None,
        now,
    )?;
    Ok(true)
}

fn insert_letter(
    conn: &mut DbConnection,
    letter_id: &str,
    delivery_id: &str,
    unit_id: &str,
    reason: &str,
    now: Timestamp,
) -> Result<(), DbError> {
    diesel::insert_into(print_letters::table)
        .values((
            print_letters::id.eq(letter_id),
            print_letters::delivery_id.eq(delivery_id),
            print_letters::unit_id.eq(unit_id),
            print_letters::reason.eq(reason),
            print_letters::created_at.eq(now),
        ))
        .execute(conn)?;
    Ok(())
}

/// What the daily job did.
#[derive(Debug, Clone, Default, Serialize)]
pub struct RulesApplied {
    /// Provisions that ended unretrieved and went to paper.
    pub ended: usize,
    /// Decisions recorded as notified.
    pub notified: usize,
}

/// Rows handled per transaction by the daily job.
const BATCH: i64 = 200;

impl Mailroom {
    /// Provides a decision, in the caller's transaction. See the module documentation.
    pub fn provide(
        &self,
        conn: &mut DbConnection,
        provision: &Provision<'_>,
        now: Timestamp,
    ) -> Result<Provided, DbError> {
        let existing: Option<String> = deliveries::table
            .filter(deliveries::owner_ref.eq(provision.owner_ref))
            .select(deliveries::id)
            .first(conn)
            .optional()?;
        if let Some(delivery_id) = existing {
            return Ok(Provided::Already { delivery_id });
        }
        let case = provision.case;
        let rule = provision.rule.resolved();
        let consent = directory::electronic_delivery(conn, &case.applicant)?;
        let contact = directory::contact(conn, &case.applicant)?;
        let lang = contact.as_ref().map_or(Lang::De, |c| c.lang);
        let email = contact.and_then(|c| c.email);
        let delivery_id = amtsweg_kernel::id::new_id();
        let paper_reason = match (&consent, &email) {
            (None, _) => Some("no_consent"),
            (Some(_), None) => Some("no_notification_address"),
            _ => None,
        };
        let document = &provision.document;
        diesel::insert_into(deliveries::table)
            .values((
                deliveries::id.eq(&delivery_id),
                deliveries::owner_ref.eq(provision.owner_ref),
                deliveries::case_ref.eq(&case.case_ref),
                deliveries::case_number.eq(&case.case_number),
                deliveries::recipient.eq(&case.applicant),
                deliveries::mailbox.eq(case.mailbox()),
                deliveries::unit_id.eq(&case.unit_id),
                deliveries::rule.eq(rule.preset.as_str()),
                deliveries::starts.eq(starts_str(rule.starts)),
                deliveries::days.eq(i32::try_from(rule.days).unwrap_or(1)),
                deliveries::expires_after_days
                    .eq(rule.expires_after_days.and_then(|d| i32::try_from(d).ok())),
                deliveries::channel.eq(if paper_reason.is_some() {
                    "paper"
                } else {
                    "postfach"
                }),
                deliveries::state.eq(if paper_reason.is_some() {
                    state::PRINTING
                } else {
                    state::PROVIDED
                }),
                deliveries::required_level.eq(provision.required_level.as_str()),
                deliveries::created_at.eq(now),
            ))
            .execute(conn)?;
        diesel::insert_into(delivery_documents::table)
            .values((
                delivery_documents::delivery_id.eq(&delivery_id),
                delivery_documents::file_id.eq(&document.file_id),
                delivery_documents::holder.eq(&document.holder),
                delivery_documents::name.eq(&document.name),
                delivery_documents::sha256.eq(&document.sha256),
                delivery_documents::pages.eq(document.pages),
            ))
            .execute(conn)?;
        if let Some(reason) = paper_reason {
            let letter_id = amtsweg_kernel::id::new_id();
            insert_letter(conn, &letter_id, &delivery_id, &case.unit_id, reason, now)?;
            diesel::update(deliveries::table.find(&delivery_id))
                .set((
                    deliveries::letter_id.eq(&letter_id),
                    deliveries::fallback_reason.eq(reason),
                ))
                .execute(conn)?;
            audit(conn, &Actor::system(), "delivery.paper_queued", &delivery_id, now)?;
            events::delivery(
                conn,
                &events::PROVIDED,
                &delivery_id,
                Some(&case.case_ref),
                "paper",
                None,
                now,
            )?;
            return Ok(Provided::Paper { delivery_id, reason });
        }

        let message_id = amtsweg_kernel::id::new_id();
        diesel::insert_into(mailbox_messages::table)
            .values((
                mailbox_messages::id.eq(&message_id),
                mailbox_messages::mailbox.eq(case.mailbox()),
                mailbox_messages::unit_id.eq(&case.unit_id),
                mailbox_messages::direction.eq("to_citizen"),
                mailbox_messages::kind.eq("decision"),
                mailbox_messages::thread_id.eq(&message_id),
                mailbox_messages::subject.eq(provision.subject.get(lang)),
                mailbox_messages::body.eq(provision.body.get(lang)),
                mailbox_messages::case_ref.eq(&case.case_ref),
                mailbox_messages::case_number.eq(&case.case_number),
                mailbox_messages::required_level.eq(provision.required_level.as_str()),
                mailbox_messages::created_at.eq(now),
            ))
            .execute(conn)?;
        let attachment_id = amtsweg_kernel::id::new_id();
        let seal = self
            .sealer()
            .seal(&attachment_id, &document.sha256, now)
            .map_err(seal_error)?;
        let file = amtsweg_files::view_in(
            conn,
            &amtsweg_files::FileId::from_string(document.file_id.clone()),
        )?
        .ok_or_else(|| DbError::Task("the decision document does not exist".into()))?;
        diesel::insert_into(mailbox_attachments::table)
            .values((
                mailbox_attachments::id.eq(&attachment_id),
                mailbox_attachments::message_id.eq(&message_id),
                mailbox_attachments::file_id.eq(&document.file_id),
                mailbox_attachments::holder.eq(&document.holder),
                mailbox_attachments::name.eq(&document.name),
                mailbox_attachments::media_type.eq(&file.media_type),
                mailbox_attachments::size.eq(file.size),
                mailbox_attachments::sha256.eq(&document.sha256),
                mailbox_attachments::seal.eq(&seal),
                mailbox_attachments::created_at.eq(now),
            ))
            .execute(conn)?;
        let case_number = case.case_number.clone().unwrap_or_default();
        let (subject, body) = crate::templates::decision_provided(
            lang,
            &case_number,
            self.portal_url(),
            rule.expires_after_days,
        );
        let address = email.unwrap_or_default();
        let mail_id = amtsweg_mail::enqueue(
            conn,
            &amtsweg_mail::Message {
                to: address.clone(),
                subject,
                body,
                kind: "mailroom.decision_provided",
                account_id: Some(case.applicant.clone()),
                reference: Some(format!("delivery:{delivery_id}")),
                publish_outcome: true,
            },
            now,
        )?;
        let deemed =
            (rule.starts == DeliveryStart::Provision).then(|| deemed_on(&rule, berlin_day(now)).to_string());
        diesel::update(deliveries::table.find(&delivery_id))
            .set((
                deliveries::message_id.eq(&message_id),
                deliveries::attachment_id.eq(&attachment_id),
                deliveries::consent_id.eq(consent.map(|(id, _)| id)),
                deliveries::provided_at.eq(now),
                deliveries::notification_mail_id.eq(&mail_id),
                deliveries::notification_address.eq(&address),
                deliveries::deemed_notified_on.eq(&deemed),
            ))
            .execute(conn)?;
        audit(conn, &Actor::system(), "delivery.provided", &delivery_id, now)?;
        events::delivery(
            conn,
            &events::PROVIDED,
            &delivery_id,
            Some(&case.case_ref),
            "postfach",
            deemed.as_deref(),
            now,
        )?;
        Ok(Provided::Postfach {
            delivery_id,
            message_id,
        })
    }

    /// Records the first retrieval of a delivered document (in the caller's transaction). A document whose
    /// provision ended no longer counts as retrievable: 410 `provision_ended`.
    pub(crate) fn retrieved(
        conn: &mut DbConnection,
        attachment_id: &str,
        person: &str,
        address: Option<String>,
        now: Timestamp,
    ) -> Result<(), MailroomError> {
        let id: Option<String> = deliveries::table
            .filter(deliveries::attachment_id.eq(attachment_id))
            .select(deliveries::id)
            .first(conn)
            .optional()?;
        let Some(row) = (match id {
            Some(id) => locked(conn, &id)?,
            None => None,
        }) else {
            return Ok(());
        };
        if row.expired_at.is_some() {
            return Err(MailroomError::Gone(
                "provision_ended",
                Text::fixed(
                    "Die Bereitstellung dieses Bescheids ist beendet; er wird Ihnen per Post zugestellt.",
                    "This decision is no longer provided here; it is sent to you by post.",
                ),
            ));
        }
        if row.first_retrieved_at.is_some() {
            return Ok(());
        }
        let rule = row.rule();
        let today = berlin_day(now);
        // § 122a (4) sentence 3 AO: without a notification shown to have been sent, retrieval is the day.
        let deemed = match (rule.starts, &row.deemed_notified_on) {
            (DeliveryStart::Retrieval, _) => Some(deemed_on(&rule, today).to_string()),
            (DeliveryStart::Notification, None) => Some(today.to_string()),
            (_, existing) => existing.clone(),
        };
        let changed = diesel::update(
            deliveries::table
                .find(&row.id)
                .filter(deliveries::first_retrieved_at.is_null()),
        )
        .set((
            deliveries::first_retrieved_at.eq(now),
            deliveries::deemed_notified_on.eq(&deemed),
        ))
        .execute(conn)?;
        if changed == 1 {
            let actor = Actor::new(ActorKind::Citizen, person, address);
            audit(conn, &actor, "delivery.retrieved", &row.id, now)?;
            events::delivery(
                conn,
                &events::RETRIEVED,
                &row.id,
                row.case_ref.as_deref(),
                "postfach",
                deemed.as_deref(),
                now,
            )?;
        }
        Ok(())
    }

    /// What became of a notification mail (the mail module's event): sent starts the period of a rule that counts
    /// from the notification; a permanent failure sends the decision to paper.
    pub async fn mail_outcome(&self, event: &Value) -> Result<bool, DbError> {
        let data = &event["data"];
        let Some(delivery_id) = data["reference"]
            .as_str()
            .and_then(|r| r.strip_prefix("delivery:"))
            .map(str::to_owned)
        else {
            return Ok(false);
        };
        let delivered = data["status"] == "delivered";
        let sent_at = data["sent_at"]
            .as_str()
            .and_then(Timestamp::parse_rfc3339)
            .unwrap_or_else(|| self.now());
        let now = self.now();
        self.db()
            .write(move |conn| {
                let Some(row) = locked(conn, &delivery_id)? else {
                    return Ok(false);
                };
                if !delivered {
                    let counts = row.rule().starts != DeliveryStart::Provision;
                    if counts && row.first_retrieved_at.is_none() {
                        return to_paper(conn, &row, "notification_failed", now);
                    }
                    return Ok(false);
                }
                let rule = row.rule();
                let deemed = match (rule.starts, &row.deemed_notified_on) {
                    (DeliveryStart::Notification, None) => {
                        Some(deemed_on(&rule, berlin_day(sent_at)).to_string())
                    }
                    (_, existing) => existing.clone(),
                };
                let changed = diesel::update(
                    deliveries::table
                        .find(&row.id)
                        .filter(deliveries::notified_at.is_null()),
                )
                .set((
                    deliveries::notified_at.eq(sent_at),
                    deliveries::deemed_notified_on.eq(&deemed),
                ))
                .execute(conn)?;
                if changed == 1 {
                    audit(conn, &Actor::system(), "delivery.notification_sent", &row.id, now)?;
                    events::delivery(
                        conn,
                        &events::NOTIFICATION_SENT,
                        &row.id,
                        row.case_ref.as_deref(),
                        "email",
                        deemed.as_deref(),
                        now,
                    )?;
                }
                Ok(changed == 1)
            })
            .await
    }

    /// The daily job: provisions not retrieved in time end and go to paper; decisions whose deemed notification
    /// day has come are recorded as notified.
    pub async fn apply_rules(&self) -> Result<RulesApplied, DbError> {
        let now = self.now();
        let today = berlin_day(now);
        let mut done = RulesApplied::default();
        loop {
            let batch = self
                .db()
                .write(move |conn| {
                    let open: Vec<DeliveryRow> = deliveries::table
                        .filter(deliveries::state.eq(state::PROVIDED))
                        .filter(deliveries::expires_after_days.is_not_null())
                        .filter(deliveries::notified_at.is_not_null())
                        .filter(deliveries::first_retrieved_at.is_null())
                        .order(deliveries::notified_at.asc())
                        .limit(BATCH)
                        .select(DeliveryRow::as_select())
                        .load(conn)?;
                    let mut ended = 0;
                    let mut looked = 0;
                    for row in open {
                        looked += 1;
                        let notified = row.notified_at.map(berlin_day).unwrap_or(today);
                        if !provision_ended(&row.rule(), notified, today) {
                            // Ordered by notification: the rest are younger.
                            break;
                        }
                        if to_paper(conn, &row, "not_retrieved", now)? {
                            ended += 1;
                        }
                    }
                    Ok::<_, DbError>((ended, looked))
                })
                .await?;
            done.ended += batch.0;
            if batch.0 == 0 || batch.1 < usize::try_from(BATCH).unwrap_or(0) {
                break;
            }
        }
        loop {
            let notified = self
                .db()
                .write(move |conn| {
                    let due: Vec<DeliveryRow> = deliveries::table
                        .filter(deliveries::state.eq_any([state::PROVIDED, state::POSTED]))
                        .filter(deliveries::deemed_notified_on.le(today.to_string()))
                        .filter(deliveries::deemed_recorded_at.is_null())
                        .limit(BATCH)
                        .select(DeliveryRow::as_select())
                        .load(conn)?;
                    let mut count = 0;
                    for row in due {
                        count += record_notified(conn, &row, now)?;
                    }
                    Ok::<_, DbError>(count)
                })
                .await?;
            done.notified += notified;
            if notified < usize::try_from(BATCH).unwrap_or(0) {
                break;
            }
        }
        Ok(done)
    }
}

/// Records that a delivery counts as notified from its deemed day (once).
fn record_notified(conn: &mut DbConnection, row: &DeliveryRow, now: Timestamp) -> Result<usize, DbError> {
    let changed = diesel::update(
        deliveries::table
            .find(&row.id)
            .filter(deliveries::deemed_recorded_at.is_null())
            .filter(deliveries::state.eq(&row.state)),
    )
    .set((
        deliveries::state.eq(state::NOTIFIED),
        deliveries::deemed_recorded_at.eq(now),
    ))
    .execute(conn)?;
    if changed == 1 {
        audit(conn, &Actor::system(), "delivery.notified", &row.id, now)?;
        let channel = if row.posted_on.is_some() {
            "paper"
        } else {
            "postfach"
        };
        events::delivery(
            conn,
            &events::NOTIFIED,
            &row.id,
            row.case_ref.as_deref(),
            channel,
            row.deemed_notified_on.as_deref(),
            now,
        )?;
    }
    Ok(changed)
}

/// Parses a stored day.
pub(crate) fn day(text: &str) -> Option<NaiveDate> {
    text.parse().ok()
}

/// The deliveries of a case, newest first (for staff and the evidence).
pub(crate) fn of_case(conn: &mut DbConnection, case_ref: &str) -> Result<Vec<DeliveryRow>, DbError> {
    Ok(deliveries::table
        .filter(deliveries::case_ref.eq(case_ref))
        .order(deliveries::created_at.desc())
        .select(DeliveryRow::as_select())
        .load(conn)?)
}

pub(crate) fn json_of(value: &impl Serialize) -> Value {
    serde_json::to_value(value).unwrap_or(Value::Null)
}
