use amtsweg_db::personal_data::{PersonalData, Retained};
use amtsweg_db::{DbConnection, DbError};
use amtsweg_kernel::Timestamp;
use diesel::prelude::*;
use serde_json::json;

use crate::Status;

diesel::table! {
    mail_outbox (id) {
        id -> Text,
        account_id -> Nullable<Text>,
        to_address -> Text,
        subject -> Text,
        body_text -> Text,
        kind -> Text,
        status -> Text,
        last_error -> Nullable<Text>,
        created_at -> Timestamp,
        sent_at -> Nullable<Timestamp>,
        reference -> Nullable<Text>,
        publish_outcome -> Bool,
    }
}

/// A rendered message, ready for the queue.
#[derive(Debug, Clone)]
pub struct Message {
    pub to: String,
    pub subject: String,
    pub body: String,
    /// Stable name of the template, e.g. `account.verify_email`.
    pub kind: &'static str,
    /// The account the message is about, for the GDPR export; `None` for messages that must outlive it.
    pub account_id: Option<String>,
    /// What the message is about, e.g. `application:{id}` or `delivery:{id}`: its status can be looked up by it
    /// ([`notifications`]).
    pub reference: Option<String>,
    /// Publish its fate (delivered, failed for good) as an event ([`crate::events`]) that the announcing module
    /// subscribes to — for a notification that starts a legal period.
    pub publish_outcome: bool,
}

/// Queues `message` inside the caller's transaction, with the job that sends it after the commit.
pub fn enqueue(conn: &mut DbConnection, message: &Message, now: Timestamp) -> Result<String, DbError> {
    let id = amtsweg_kernel::id::new_id();
    diesel::insert_into(mail_outbox::table)
        .values((
            mail_outbox::id.eq(&id),
            mail_outbox::account_id.eq(&message.account_id),
            mail_outbox::to_address.eq(&message.to),
            mail_outbox::subject.eq(&message.subject),
            mail_outbox::body_text.eq(&message.body),
            mail_outbox::kind.eq(message.kind),
            mail_outbox::status.eq(Status::Created.as_str()),
            mail_outbox::reference.eq(&message.reference),
            mail_outbox::publish_outcome.eq(message.publish_outcome && message.reference.is_some()),
            mail_outbox::created_at.eq(now),
        ))
        .execute(conn)?;
    let job = amtsweg_jobs::JobSpec::new(crate::sender::KIND, json!({"id": id})).dedupe(format!("mail:{id}"));
    amtsweg_jobs::enqueue(conn, &job, now)?;
    Ok(id)
}

/// The delivery status of a queued message, as staff and (in plain words) the citizen see it.
#[derive(Debug, Clone, serde::Serialize, utoipa::ToSchema)]
pub struct Notification {
    pub id: String,
    pub kind: String,
    pub subject: String,
    pub status: Status,
    pub queued_at: Timestamp,
    /// When the relay accepted it.
    pub sent_at: Option<Timestamp>,
    /// Why the last try failed, for staff.
    pub last_error: Option<String>,
}

type NotificationRow = (
    String,
    String,
    String,
    String,
    Timestamp,
    Option<Timestamp>,
    Option<String>,
);

const NOTIFICATION_COLUMNS: (
    mail_outbox::id,
    mail_outbox::kind,
    mail_outbox::subject,
    mail_outbox::status,
    mail_outbox::created_at,
    mail_outbox::sent_at,
    mail_outbox::last_error,
) = (
    mail_outbox::id,
    mail_outbox::kind,
    mail_outbox::subject,
    mail_outbox::status,
    mail_outbox::created_at,
    mail_outbox::sent_at,
    mail_outbox::last_error,
);

fn notification(
    (id, kind, subject, status, queued_at, sent_at, last_error): NotificationRow,
) -> Notification {
    Notification {
        id,
        kind,
        subject,
        status: Status::parse(&status),
        queued_at,
        sent_at,
        last_error,
    }
}

/// The messages queued with `reference`, oldest first.
pub fn notifications(conn: &mut DbConnection, reference: &str) -> Result<Vec<Notification>, DbError> {
    let rows: Vec<NotificationRow> = mail_outbox::table
        .filter(mail_outbox::reference.eq(reference))
        .order(mail_outbox::created_at.asc())
        .select(NOTIFICATION_COLUMNS)
        .load(conn)?;
    Ok(rows.into_iter().map(notification).collect())
}

/// The messages sent to an account, newest first (ids are time-ordered), one page before the id `after`.
pub fn notifications_of(
    conn: &mut DbConnection,
    account_id: &str,
    after: Option<&str>,
    limit: usize,
) -> Result<Vec<Notification>, DbError> {
    let mut query = mail_outbox::table
        .filter(mail_outbox::account_id.eq(account_id))
        .into_boxed();
    if let Some(after) = after {
        query = query.filter(mail_outbox::id.lt(after.to_owned()));
    }
    let rows: Vec<NotificationRow> = query
        .order(mail_outbox::id.desc())
        .limit(i64::try_from(limit).unwrap_or(100))
        .select(NOTIFICATION_COLUMNS)
        .load(conn)?;
    Ok(rows.into_iter().map(notification).collect())
}

/// The mails sent to an account belong to its GDPR export; they are erased with it (no retention duty).
pub struct MailPersonalData;

#[derive(Queryable)]
struct Sent {
    kind: String,
    to_address: String,
    subject: String,
    status: String,
    created_at: Timestamp,
    sent_at: Option<Timestamp>,
}

impl PersonalData for MailPersonalData {
    fn section(&self) -> &'static str {
        "mail"
    }

    fn tables(&self) -> &'static [&'static str] {
        &["mail_outbox"]
    }

    fn export(&self, conn: &mut DbConnection, account_id: &str) -> Result<serde_json::Value, DbError> {
        let rows: Vec<Sent> = mail_outbox::table
            .filter(mail_outbox::account_id.eq(account_id))
            .order(mail_outbox::created_at.asc())
            .select((
                mail_outbox::kind,
                mail_outbox::to_address,
                mail_outbox::subject,
                mail_outbox::status,
                mail_outbox::created_at,
                mail_outbox::sent_at,
            ))
            .load(conn)?;
        let stamp = |t: Timestamp| t.rfc3339();
        Ok(json!({
            "messages": rows.into_iter().map(|m| json!({
                "kind": m.kind,
                "to": m.to_address,
                "subject": m.subject,
                "status": m.status,
                "queued_at": stamp(m.created_at),
                "sent_at": m.sent_at.map(stamp),
            })).collect::<Vec<_>>()
        }))
    }

    fn erase(
        &self,
        conn: &mut DbConnection,
        account_id: &str,
        _now: Timestamp,
    ) -> Result<Vec<Retained>, DbError> {
        diesel::delete(mail_outbox::table.filter(mail_outbox::account_id.eq(account_id))).execute(conn)?;
        Ok(Vec::new())
    }
}
