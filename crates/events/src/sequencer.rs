//! Numbering committed events, one sequencer at a time.

use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use amtsweg_db::{Database, DbConnection, DbError};
use amtsweg_jobs::{JobSpec, Tick};
use amtsweg_kernel::SharedClock;
use diesel::prelude::*;

use crate::schema::{event_sequence, events};
use crate::{EventRow, EventType};

/// Which job kinds hear which event types.
#[derive(Debug, Clone, Default)]
pub struct Subscriptions {
    pairs: Vec<(&'static str, &'static str)>,
}

impl Subscriptions {
    pub fn new() -> Subscriptions {
        Subscriptions::default()
    }

    /// Jobs of `kind` (a handler registered with the job runner) run once for every event of `event_type`.
    pub fn on(mut self, event_type: &EventType, kind: &'static str) -> Subscriptions {
        self.pairs.push((event_type.name, kind));
        self
    }

    pub fn merge(mut self, other: Subscriptions) -> Subscriptions {
        self.pairs.extend(other.pairs);
        self
    }

    fn kinds_for<'a>(&'a self, event_type: &'a str) -> impl Iterator<Item = &'static str> + 'a {
        self.pairs
            .iter()
            .filter(move |(name, _)| *name == event_type)
            .map(|(_, kind)| *kind)
    }
}

/// Gives committed events their feed positions and queues their subscribers' jobs; runs as a tick of the job
/// runner, so after every commit that published an event.
pub struct Sequencer {
    db: Database,
    clock: SharedClock,
    subscriptions: Subscriptions,
    last_look: Arc<Mutex<Option<Instant>>>,
}

/// Events numbered per transaction, at most.
const BATCH: i64 = 1_000;

/// Set when this process committed an event; the sequencer then looks at once, otherwise once a second (for
/// events other instances published).
static PUBLISHED: AtomicBool = AtomicBool::new(true);
const LOOK_EVERY: Duration = Duration::from_secs(1);

pub(crate) fn published() {
    PUBLISHED.store(true, Ordering::SeqCst);
}

impl Sequencer {
    pub fn new(db: Database, clock: SharedClock, subscriptions: Subscriptions) -> Sequencer {
        Sequencer {
            db,
            clock,
            subscriptions,
            last_look: Arc::new(Mutex::new(None)),
        }
    }

    /// Numbers every committed event that has no position yet; answers how many.
    pub async fn sequence(&self) -> Result<usize, DbError> {
        let waiting = self
            .db
            .read(|conn| {
                let any: Option<String> = events::table
                    .filter(events::position.is_null())
                    .select(events::id)
                    .first(conn)
                    .optional()?;
                Ok::<_, DbError>(any.is_some())
            })
            .await?;
        if !waiting {
            return Ok(0);
        }
        let subscriptions = self.subscriptions.clone();
        let now = self.clock.now();
        self.db
            .write(move |conn| {
                let mut numbered = 0;
                loop {
                    let batch = number_batch(conn, &subscriptions, now)?;
                    numbered += batch;
                    if batch < usize::try_from(BATCH).unwrap_or(usize::MAX) {
                        return Ok(numbered);
                    }
                }
            })
            .await
    }
}

/// Locks the sequence (so one sequencer at a time), then numbers up to one batch of the events that committed
/// without a position — reading them only after taking the lock, so a concurrent sequencer's numbering is seen.
fn number_batch(
    conn: &mut DbConnection,
    subscriptions: &Subscriptions,
    now: amtsweg_kernel::Timestamp,
) -> Result<usize, DbError> {
    let sequence = event_sequence::table.find(1);
    let last: i64 = match conn {
        DbConnection::Postgres(pg) => sequence
            .select(event_sequence::last_position)
            .for_update()
            .first(pg)?,
        DbConnection::Sqlite(lite) => sequence.select(event_sequence::last_position).first(lite)?,
    };
    let waiting: Vec<EventRow> = events::table
        .filter(events::position.is_null())
        .order((events::time.asc(), events::id.asc()))
        .limit(BATCH)
        .select(EventRow::as_select())
        .load(conn)?;
    let mut position = last;
    for row in waiting.iter() {
        position += 1;
        diesel::update(events::table.find(&row.id))
            .set(events::position.eq(position))
            .execute(conn)?;
        let kinds: Vec<&'static str> = subscriptions.kinds_for(&row.event_type).collect();
        if kinds.is_empty() {
            continue;
        }
        let event = serde_json::to_value(
            EventRow {
                id: row.id.clone(),
                position: Some(position),
                source: row.source.clone(),
                event_type: row.event_type.clone(),
                subject: row.subject.clone(),
                time: row.time,
                data: row.data.clone(),
                procedure_id: row.procedure_id.clone(),
            }
            .into_cloud_event(),
        )
        .map_err(|err| DbError::Task(err.to_string()))?;
        for kind in kinds {
            let job = JobSpec::new(kind, event.clone()).dedupe(format!("event:{}:{kind}", row.id));
            amtsweg_jobs::enqueue(conn, &job, now)?;
        }
    }
    if position != last {
        diesel::update(sequence)
            .set(event_sequence::last_position.eq(position))
            .execute(conn)?;
    }
    Ok(waiting.len())
}

impl Tick for Sequencer {
    fn name(&self) -> &'static str {
        "events.sequencer"
    }

    fn tick(&self) -> Pin<Box<dyn Future<Output = Result<(), String>> + Send>> {
        {
            let mut last = self.last_look.lock().unwrap_or_else(|p| p.into_inner());
            let due = last.is_none_or(|at| at.elapsed() >= LOOK_EVERY);
            if !PUBLISHED.swap(false, Ordering::SeqCst) && !due {
                return Box::pin(async { Ok(()) });
            }
            *last = Some(Instant::now());
        }
        let sequencer = Sequencer {
            db: self.db.clone(),
            clock: self.clock.clone(),
            subscriptions: self.subscriptions.clone(),
            last_look: self.last_look.clone(),
        };
        Box::pin(async move {
            sequencer
                .sequence()
                .await
                .map(|_| ())
                .map_err(|err| err.to_string())
        })
    }
}
