//! The tamper-evident audit log every module writes to.
//!
//! Rows are appended in the same transaction as the change they record. Each row carries the SHA-256 of the
//! previous row's hash and its own canonical content, and sequence numbers have no gaps, so editing, deleting or
//! inserting a row breaks the chain; `audit_head` remembers the last link so that cutting off the tail is noticed
//! too. Rows hold identifiers only — no secrets, no personal payloads.

use amtsweg_db::{DbConnection, DbError};
use amtsweg_kernel::Timestamp;
use diesel::prelude::*;
use serde::Serialize;
use sha2::{Digest, Sha256};

diesel::table! {
    audit_log (seq) {
        seq -> BigInt,
        id -> Text,
        at -> Timestamp,
        actor_kind -> Text,
        actor_id -> Nullable<Text>,
        client_id -> Nullable<Text>,
        address -> Nullable<Text>,
        action -> Text,
        object_kind -> Nullable<Text>,
        object_id -> Nullable<Text>,
        outcome -> Text,
        prev_hash -> Text,
        hash -> Text,
    }
}

diesel::table! {
    audit_head (id) {
        id -> Integer,
        seq -> BigInt,
        hash -> Text,
    }
}

const GENESIS: &str = "0000000000000000000000000000000000000000000000000000000000000000";

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ActorKind {
    Anonymous,
    Citizen,
    Staff,
    Client,
    System,
}

impl ActorKind {
    pub fn as_str(self) -> &'static str {
        match self {
            ActorKind::Anonymous => "anonymous",
            ActorKind::Citizen => "citizen",
            ActorKind::Staff => "staff",
            ActorKind::Client => "client",
            ActorKind::System => "system",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Outcome {
    Success,
    Failure,
    Denied,
}

impl Outcome {
    pub fn as_str(self) -> &'static str {
        match self {
            Outcome::Success => "success",
            Outcome::Failure => "failure",
            Outcome::Denied => "denied",
        }
    }
}

/// Who did something: kind and id of the principal, the API client it came through, its network address.
#[derive(Debug, Clone, Default)]
pub struct Actor {
    pub kind: Option<ActorKind>,
    pub id: Option<String>,
    pub client_id: Option<String>,
    pub address: Option<String>,
}

impl Actor {
    pub fn anonymous(address: Option<String>) -> Actor {
        Actor {
            kind: Some(ActorKind::Anonymous),
            id: None,
            client_id: None,
            address,
        }
    }

    pub fn system() -> Actor {
        Actor {
            kind: Some(ActorKind::System),
            ..Actor::default()
        }
    }

    pub fn new(kind: ActorKind, id: impl Into<String>, address: Option<String>) -> Actor {
        Actor {
            kind: Some(kind),
            id: Some(id.into()),
            client_id: None,
            address,
        }
    }

    pub fn client(client_id: impl Into<String>, address: Option<String>) -> Actor {
        let client_id = client_id.into();
        Actor {
            kind: Some(ActorKind::Client),
            id: Some(client_id.clone()),
            client_id: Some(client_id),
            address,
        }
    }
}

/// One audited event: `action` is a stable dotted name such as `account.login`.
#[derive(Debug, Clone)]
pub struct Event<'a> {
    pub actor: &'a Actor,
    pub action: &'a str,
    pub object: Option<(&'a str, &'a str)>,
    pub outcome: Outcome,
    pub at: Timestamp,
}

#[derive(Debug, Clone, Queryable, Selectable)]
#[diesel(table_name = audit_log)]
struct Row {
    seq: i64,
    id: String,
    at: Timestamp,
    actor_kind: String,
    actor_id: Option<String>,
    client_id: Option<String>,
    address: Option<String>,
    action: String,
    object_kind: Option<String>,
    object_id: Option<String>,
    outcome: String,
    prev_hash: String,
    hash: String,
}

impl Row {
    fn digest(&self) -> String {
        let fields = [
            self.seq.to_string(),
            self.id.clone(),
            self.at.rfc3339_micros(),
            self.actor_kind.clone(),
            self.actor_id.clone().unwrap_or_default(),
            self.client_id.clone().unwrap_or_default(),
            self.address.clone().unwrap_or_default(),
            self.action.clone(),
            self.object_kind.clone().unwrap_or_default(),
            self.object_id.clone().unwrap_or_default(),
            self.outcome.clone(),
        ];
        let mut hasher = Sha256::new();
        hasher.update(self.prev_hash.as_bytes());
        for field in fields {
            hasher.update([0x1f]);
            hasher.update(field.as_bytes());
        }
        hex::encode(hasher.finalize())
    }
}

/// The last link, locked for the rest of the transaction so that appends form one chain. The head row exists from
/// the migration on (sequence 0, the genesis hash). SQLite writers are serialised already.
fn locked_head(conn: &mut DbConnection) -> Result<(i64, String), DbError> {
    let query = audit_head::table
        .select((audit_head::seq, audit_head::hash))
        .find(1);
    let found: Option<(i64, String)> = match conn {
        DbConnection::Postgres(pg) => query.for_update().first(pg).optional()?,
        DbConnection::Sqlite(lite) => query.first(lite).optional()?,
    };
    Ok(found.unwrap_or((0, GENESIS.to_owned())))
}

fn head(conn: &mut DbConnection) -> Result<(i64, String), DbError> {
    let found: Option<(i64, String)> = audit_head::table
        .select((audit_head::seq, audit_head::hash))
        .find(1)
        .first(conn)
        .optional()?;
    Ok(found.unwrap_or((0, GENESIS.to_owned())))
}

/// Appends `event` inside the caller's transaction.
pub fn append(conn: &mut DbConnection, event: &Event<'_>) -> Result<(), DbError> {
    let (last_seq, last_hash) = locked_head(conn)?;
    let (object_kind, object_id) = match event.object {
        Some((kind, id)) => (Some(kind.to_owned()), Some(id.to_owned())),
        None => (None, None),
    };
    let mut row = Row {
        seq: last_seq + 1,
        id: amtsweg_kernel::id::new_id(),
        at: event.at,
        actor_kind: event
            .actor
            .kind
            .unwrap_or(ActorKind::Anonymous)
            .as_str()
            .to_owned(),
        actor_id: event.actor.id.clone(),
        client_id: event.actor.client_id.clone(),
        address: event.actor.address.clone(),
        action: event.action.to_owned(),
        object_kind,
        object_id,
        outcome: event.outcome.as_str().to_owned(),
        prev_hash: last_hash,
        hash: String::new(),
    };
    row.hash = row.digest();
    diesel::insert_into(audit_log::table)
        .values((
            audit_log::seq.eq(row.seq),
            audit_log::id.eq(&row.id),
            audit_log::at.eq(row.at),
            audit_log::actor_kind.eq(&row.actor_kind),
            audit_log::actor_id.eq(&row.actor_id),
            audit_log::client_id.eq(&row.client_id),
            audit_log::address.eq(&row.address),
            audit_log::action.eq(&row.action),
            audit_log::object_kind.eq(&row.object_kind),
            audit_log::object_id.eq(&row.object_id),
            audit_log::outcome.eq(&row.outcome),
            audit_log::prev_hash.eq(&row.prev_hash),
            audit_log::hash.eq(&row.hash),
        ))
        .execute(conn)?;
    let updated = diesel::update(audit_head::table.find(1))
        .set((audit_head::seq.eq(row.seq), audit_head::hash.eq(&row.hash)))
        .execute(conn)?;
    if updated == 0 {
        diesel::insert_into(audit_head::table)
            .values((
                audit_head::id.eq(1),
                audit_head::seq.eq(row.seq),
                audit_head::hash.eq(&row.hash),
            ))
            .execute(conn)?;
    }
    Ok(())
}

/// The result of walking the chain.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Verification {
    pub rows: u64,
    /// The first broken link: sequence number and what is wrong there.
    pub broken: Option<(i64, String)>,
}

/// Walks the whole chain in order and reports the first broken link.
pub fn verify(conn: &mut DbConnection) -> Result<Verification, DbError> {
    const BATCH: i64 = 1_000;
    let mut expected_seq = 1i64;
    let mut prev_hash = GENESIS.to_owned();
    let mut rows = 0u64;
    loop {
        let batch: Vec<Row> = audit_log::table
            .filter(audit_log::seq.ge(expected_seq))
            .order(audit_log::seq.asc())
            .limit(BATCH)
            .select(Row::as_select())
            .load(conn)?;
        let done = batch.len() < BATCH as usize;
        for row in batch {
            if row.seq != expected_seq {
                return Ok(broken(
                    rows,
                    expected_seq,
                    format!("row {expected_seq} is missing"),
                ));
            }
            if row.prev_hash != prev_hash {
                return Ok(broken(rows, row.seq, "does not link to the row before it".into()));
            }
            if row.digest() != row.hash {
                return Ok(broken(
                    rows,
                    row.seq,
                    "its content does not match its hash (edited)".into(),
                ));
            }
            prev_hash = row.hash;
            expected_seq += 1;
            rows += 1;
        }
        if done {
            break;
        }
    }
    let (head_seq, head_hash) = head(conn)?;
    if head_seq != expected_seq - 1 || head_hash != prev_hash {
        return Ok(broken(
            rows,
            expected_seq,
            format!(
                "the log ends at row {} but row {head_seq} was written last",
                expected_seq - 1
            ),
        ));
    }
    Ok(Verification { rows, broken: None })
}

fn broken(rows: u64, seq: i64, why: String) -> Verification {
    Verification {
        rows,
        broken: Some((seq, why)),
    }
}

/// An audit entry as administrators read it.
#[derive(Debug, Clone, Serialize)]
pub struct Entry {
    pub seq: i64,
    pub at: Timestamp,
    pub actor_kind: String,
    pub actor_id: Option<String>,
    pub action: String,
    pub object_kind: Option<String>,
    pub object_id: Option<String>,
    pub outcome: String,
}

/// Entries about one object or by one actor, newest first.
pub fn entries_for(conn: &mut DbConnection, id: &str, limit: i64) -> Result<Vec<Entry>, DbError> {
    let rows: Vec<Row> = audit_log::table
        .filter(audit_log::object_id.eq(id).or(audit_log::actor_id.eq(id)))
        .order(audit_log::seq.desc())
        .limit(limit)
        .select(Row::as_select())
        .load(conn)?;
    Ok(rows
        .into_iter()
        .map(|row| Entry {
            seq: row.seq,
            at: row.at,
            actor_kind: row.actor_kind,
            actor_id: row.actor_id,
            action: row.action,
            object_kind: row.object_kind,
            object_id: row.object_id,
            outcome: row.outcome,
        })
        .collect())
}
