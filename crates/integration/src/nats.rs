//! The event stream for scale-out: the same signed CloudEvents the feed and webhooks carry, published to NATS
//! JetStream (optional, `integration.nats.url`). Subjects are `{prefix}.{event type}.{procedure}`; the message id
//! (`Nats-Msg-Id`) is the event id, so JetStream drops a second copy within its duplicate window.
//!
//! At least once: the publisher (a tick of the job runner) reads the feed after its cursor, publishes a batch,
//! waits for JetStream's acknowledgements and only then moves the cursor — to the last event acknowledged without a
//! gap. After a crash or restart it resumes from there; what it published but had not recorded yet comes again and
//! is dropped as a duplicate (the restart stays well inside the two-minute window). Several instances may publish
//! the same events meanwhile; the cursor only moves forward and JetStream keeps one copy.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use amtsweg_db::{Database, DbError};
use amtsweg_events::{CloudEvent, Procedures};
use amtsweg_kernel::SharedClock;
use amtsweg_seal::Sealer;
use async_nats::jetstream::{self, message::PublishMessage};
use diesel::prelude::*;
use serde::Deserialize;

use crate::schema::integration_cursors as cursors;

/// `integration.nats.*`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct NatsSettings {
    /// The server, e.g. `nats://127.0.0.1:4222`. Unset: no publishing.
    pub url: Option<String>,
    /// The JetStream stream (created when missing, capturing `{subject_prefix}.>`).
    pub stream: String,
    /// The first subject token.
    pub subject_prefix: String,
}

impl Default for NatsSettings {
    fn default() -> Self {
        Self {
            url: None,
            stream: "AMTSWEG_EVENTS".into(),
            subject_prefix: "amtsweg".into(),
        }
    }
}

/// The publisher's cursor in `integration_cursors`.
pub const CURSOR: &str = "nats";
/// Events per batch.
const BATCH: i64 = 500;
/// How long JetStream keeps message ids to drop duplicates.
const DUPLICATE_WINDOW: Duration = Duration::from_secs(120);

/// Publishes the feed to JetStream.
pub struct Publisher {
    db: Database,
    clock: SharedClock,
    sealer: Arc<dyn Sealer>,
    settings: NatsSettings,
    url: String,
    context: tokio::sync::Mutex<Option<jetstream::Context>>,
}

impl Publisher {
    /// A publisher when `integration.nats.url` is set.
    pub fn new(
        db: Database,
        clock: SharedClock,
        sealer: Arc<dyn Sealer>,
        settings: NatsSettings,
    ) -> Option<Publisher> {
        let url = settings.url.clone()?;
        Some(Publisher {
            db,
            clock,
            sealer,
            settings,
            url,
            context: tokio::sync::Mutex::new(None),
        })
    }

    /// The JetStream context, connecting and creating the stream when needed.
    async fn context(&self) -> Result<jetstream::Context, String> {
        let mut held = self.context.lock().await;
        if let Some(context) = held.as_ref() {
            return Ok(context.clone());
        }
        let client = async_nats::ConnectOptions::new()
            .connection_timeout(Duration::from_secs(5))
            .connect(self.url.as_str())
            .await
            .map_err(|err| format!("cannot connect to NATS at {}: {err}", self.url))?;
        let context = jetstream::new(client);
        context
            .get_or_create_stream(jetstream::stream::Config {
                name: self.settings.stream.clone(),
                subjects: vec![format!("{}.>", self.settings.subject_prefix)],
                duplicate_window: DUPLICATE_WINDOW,
                ..Default::default()
            })
            .await
            .map_err(|err| format!("cannot use the stream {}: {err}", self.settings.stream))?;
        *held = Some(context.clone());
        Ok(context)
    }

    fn subject(&self, event: &CloudEvent) -> String {
        let procedure = event.procedure.as_deref().unwrap_or("none");
        format!(
            "{}.{}.{procedure}",
            self.settings.subject_prefix, event.event_type
        )
    }

    /// Publishes the next batch; answers how many events JetStream acknowledged.
    pub async fn publish_next(&self) -> Result<usize, String> {
        let now = self.clock.now();
        let behind = self
            .db
            .read(|conn| {
                let last = amtsweg_events::last_position(conn)?;
                let at = crate::webhooks::delivery::cursor(conn, CURSOR)?;
                Ok::<_, DbError>(at.is_none_or(|at| at < last))
            })
            .await
            .map_err(|err| err.to_string())?;
        if !behind {
            return Ok(0);
        }
        let (after, events) = self
            .db
            .write(move |conn| {
                let after = crate::webhooks::delivery::lock_cursor(conn, CURSOR, now)?;
                let events = amtsweg_events::read_about(conn, &Procedures::All, after, BATCH, None)?;
                Ok::<_, DbError>((after, events))
            })
            .await
            .map_err(|err| err.to_string())?;
        if events.is_empty() {
            return Ok(0);
        }
        let context = self.context().await?;
        let mut acks = Vec::with_capacity(events.len());
        for event in events {
            let (id, position, subject) = (event.id.clone(), event.position(), self.subject(&event));
            let signed = crate::feed::sign(self.sealer.as_ref(), event).map_err(|err| err.to_string())?;
            let body = serde_json::to_vec(&signed).map_err(|err| err.to_string())?;
            match context
                .send_publish(
                    subject,
                    PublishMessage::build().payload(body.into()).message_id(&id),
                )
                .await
            {
                Ok(ack) => acks.push((position, ack)),
                Err(err) => {
                    self.forget().await;
                    tracing::warn!(error = %err, "NATS: publishing failed");
                    break;
                }
            }
        }
        let mut reached = after;
        let mut acknowledged = 0;
        for (position, ack) in acks {
            match ack.await {
                Ok(_) => {
                    reached = position;
                    acknowledged += 1;
                }
                Err(err) => {
                    self.forget().await;
                    tracing::warn!(error = %err, "NATS: no acknowledgement");
                    break;
                }
            }
        }
        if reached > after {
            self.db
                .write(move |conn| {
                    diesel::update(cursors::table.find(CURSOR).filter(cursors::position.lt(reached)))
                        .set((cursors::position.eq(reached), cursors::updated_at.eq(now)))
                        .execute(conn)?;
                    Ok::<_, DbError>(())
                })
                .await
                .map_err(|err| err.to_string())?;
        }
        Ok(acknowledged)
    }

    /// Drops the connection after a failure; the next round connects again.
    async fn forget(&self) {
        *self.context.lock().await = None;
    }
}

/// The publisher as a tick of the job runner.
pub struct PublishTick(pub Arc<Publisher>);

impl amtsweg_jobs::Tick for PublishTick {
    fn name(&self) -> &'static str {
        "integration.nats_publisher"
    }

    fn tick(&self) -> Pin<Box<dyn Future<Output = Result<(), String>> + Send>> {
        let publisher = self.0.clone();
        Box::pin(async move {
            loop {
                let published = publisher.publish_next().await?;
                if published < usize::try_from(BATCH).unwrap_or(usize::MAX) {
                    return Ok(());
                }
            }
        })
    }
}
