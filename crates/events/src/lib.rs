//! Events: a transactional outbox of CloudEvents 1.0.
//!
//! A module calls [`publish`] in the transaction of the change the event describes: the event exists if and only
//! if the change committed. Readers (the admin feed today; the pull API, webhooks and the mailroom later) page
//! through events by `position`. Positions are assigned after commit by one [`Sequencer`] at a time (a row lock
//! serialises instances), so a transaction that commits late gets a later position instead of one a reader has
//! already passed: no reader ever skips an event.
//!
//! In-process subscribers are job handlers: when the sequencer numbers an event it queues one job per subscribed
//! kind, deduplicated by event id, so each subscriber sees each event at least once.
//!
//! Events carry ids and states, not personal data.

mod schema;
mod sequencer;

use amtsweg_db::{DbConnection, DbError};
use amtsweg_kernel::Timestamp;
use diesel::prelude::*;
use serde::Serialize;
use serde_json::Value;
use utoipa::ToSchema;

pub use sequencer::{Sequencer, Subscriptions};

use schema::events;

/// A versioned event type and the source that publishes it, declared as a constant in the publishing crate.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EventType {
    /// A URI reference naming the publishing module, e.g. `urn:amtsweg:account`.
    pub source: &'static str,
    /// Reverse-DNS and versioned, e.g. `de.amtsweg.account.created.v1`.
    pub name: &'static str,
}

/// Records an event inside the caller's transaction. Answers its id.
pub fn publish(
    conn: &mut DbConnection,
    event_type: &EventType,
    subject: Option<&str>,
    data: &impl Serialize,
    now: Timestamp,
) -> Result<String, DbError> {
    insert(conn, event_type, subject, None, data, now)
}

/// Records an event about an application of `procedure_id`: API clients with a scope for that procedure see it in
/// their feed and webhooks (events without a procedure are never shown to clients).
pub fn publish_about(
    conn: &mut DbConnection,
    event_type: &EventType,
    subject: &str,
    procedure_id: &str,
    data: &impl Serialize,
    now: Timestamp,
) -> Result<String, DbError> {
    insert(conn, event_type, Some(subject), Some(procedure_id), data, now)
}

fn insert(
    conn: &mut DbConnection,
    event_type: &EventType,
    subject: Option<&str>,
    procedure_id: Option<&str>,
    data: &impl Serialize,
    now: Timestamp,
) -> Result<String, DbError> {
    let id = amtsweg_kernel::id::new_id();
    let data = serde_json::to_string(data).map_err(|err| DbError::Task(err.to_string()))?;
    diesel::insert_into(events::table)
        .values((
            events::id.eq(&id),
            events::source.eq(event_type.source),
            events::event_type.eq(event_type.name),
            events::subject.eq(subject),
            events::time.eq(now),
            events::data.eq(&data),
            events::procedure_id.eq(procedure_id),
        ))
        .execute(conn)?;
    amtsweg_db::after_commit(|| {
        sequencer::published();
        amtsweg_jobs::wake();
    });
    Ok(id)
}

/// An event as readers get it: a CloudEvents 1.0 JSON envelope plus its `sequence` (the position, for cursors).
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct CloudEvent {
    pub specversion: &'static str,
    pub id: String,
    pub source: String,
    #[serde(rename = "type")]
    pub event_type: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub subject: Option<String>,
    pub time: String,
    pub datacontenttype: &'static str,
    #[schema(value_type = Object)]
    pub data: Value,
    /// Position in the feed (CloudEvents sequence extension), as a decimal string.
    pub sequence: String,
    /// The procedure whose application the event is about (extension attribute), if any.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub procedure: Option<String>,
}

impl CloudEvent {
    /// Reads an event back from its JSON (e.g. from a job's payload).
    pub fn from_json(value: &Value) -> Option<CloudEvent> {
        let text = |name: &str| value[name].as_str().map(str::to_owned);
        Some(CloudEvent {
            specversion: "1.0",
            id: text("id")?,
            source: text("source")?,
            event_type: text("type")?,
            subject: text("subject"),
            time: text("time")?,
            datacontenttype: "application/json",
            data: value.get("data").cloned().unwrap_or(Value::Null),
            sequence: text("sequence")?,
            procedure: text("procedure"),
        })
    }

    /// The feed position as a number.
    pub fn position(&self) -> i64 {
        self.sequence.parse().unwrap_or_default()
    }
}

#[derive(Queryable, Selectable)]
#[diesel(table_name = events)]
struct EventRow {
    id: String,
    position: Option<i64>,
    source: String,
    event_type: String,
    subject: Option<String>,
    time: Timestamp,
    data: String,
    procedure_id: Option<String>,
}

impl EventRow {
    fn into_cloud_event(self) -> CloudEvent {
        CloudEvent {
            specversion: "1.0",
            id: self.id,
            source: self.source,
            event_type: self.event_type,
            subject: self.subject,
            time: self.time.rfc3339(),
            datacontenttype: "application/json",
            data: serde_json::from_str(&self.data).unwrap_or(Value::Null),
            sequence: self.position.unwrap_or_default().to_string(),
            procedure: self.procedure_id,
        }
    }
}

/// Events after `position` in feed order, at most `limit`, optionally only of the given types.
pub fn read(
    conn: &mut DbConnection,
    after: i64,
    limit: i64,
    types: Option<&[String]>,
) -> Result<Vec<CloudEvent>, DbError> {
    let mut query = events::table.filter(events::position.gt(after)).into_boxed();
    if let Some(types) = types {
        query = query.filter(events::event_type.eq_any(types.to_vec()));
    }
    let rows: Vec<EventRow> = query
        .order(events::position.asc())
        .limit(limit)
        .select(EventRow::as_select())
        .load(conn)?;
    Ok(rows.into_iter().map(EventRow::into_cloud_event).collect())
}

/// Which procedures' events a reader may see.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Procedures {
    /// Every event about any procedure (`*`).
    All,
    /// Events about these procedures.
    Some(Vec<String>),
}

/// Events about applications of `procedures` after `position` in feed order, at most `limit`, optionally only of
/// the given types — what an API client may see.
pub fn read_about(
    conn: &mut DbConnection,
    procedures: &Procedures,
    after: i64,
    limit: i64,
    types: Option<&[String]>,
) -> Result<Vec<CloudEvent>, DbError> {
    let mut query = events::table.filter(events::position.gt(after)).into_boxed();
    query = match procedures {
        Procedures::All => query.filter(events::procedure_id.is_not_null()),
        Procedures::Some(ids) => query.filter(events::procedure_id.eq_any(ids.clone())),
    };
    if let Some(types) = types {
        query = query.filter(events::event_type.eq_any(types.to_vec()));
    }
    let rows: Vec<EventRow> = query
        .order(events::position.asc())
        .limit(limit)
        .select(EventRow::as_select())
        .load(conn)?;
    Ok(rows.into_iter().map(EventRow::into_cloud_event).collect())
}

/// The position of the last numbered event (0 before the first).
pub fn last_position(conn: &mut DbConnection) -> Result<i64, DbError> {
    Ok(schema::event_sequence::table
        .find(1)
        .select(schema::event_sequence::last_position)
        .first(conn)?)
}

/// One event by id, once it has its position.
pub fn find(conn: &mut DbConnection, id: &str) -> Result<Option<CloudEvent>, DbError> {
    Ok(events::table
        .find(id)
        .filter(events::position.is_not_null())
        .select(EventRow::as_select())
        .first(conn)
        .optional()?
        .map(EventRow::into_cloud_event))
}

/// The events about one subject (an account, say), oldest first — for the GDPR export.
pub fn about(conn: &mut DbConnection, subject: &str) -> Result<Vec<CloudEvent>, DbError> {
    let rows: Vec<EventRow> = events::table
        .filter(events::subject.eq(subject))
        .order(events::time.asc())
        .select(EventRow::as_select())
        .load(conn)?;
    Ok(rows.into_iter().map(EventRow::into_cloud_event).collect())
}

/// The events about an account belong to its export. They hold ids and states only, so an erasure keeps them:
/// they are the pseudonymous record other modules and specialised procedures have already read.
pub struct EventsPersonalData;

impl amtsweg_db::personal_data::PersonalData for EventsPersonalData {
    fn section(&self) -> &'static str {
        "events"
    }

    fn tables(&self) -> &'static [&'static str] {
        &["events"]
    }

    fn export(&self, conn: &mut DbConnection, account_id: &str) -> Result<Value, DbError> {
        Ok(serde_json::json!({ "events": about(conn, account_id)? }))
    }

    fn erase(
        &self,
        _conn: &mut DbConnection,
        _account_id: &str,
        _now: Timestamp,
    ) -> Result<Vec<amtsweg_db::personal_data::Retained>, DbError> {
        Ok(vec![amtsweg_db::personal_data::Retained {
            section: "events",
            category: "event_log",
            legal_basis: "Art. 17(3)(b), 5(2) DSGVO: Ereignisprotokoll mit pseudonymen Kennungen und Zuständen, ohne weitere personenbezogene Daten / event log of pseudonymous identifiers and states, without further personal data",
        }])
    }
}
