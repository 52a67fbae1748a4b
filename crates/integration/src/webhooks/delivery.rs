//! Delivering events to subscriptions.
//!
//! - The fan-out (a tick of the job runner) reads the event feed after its cursor, in order, and queues one
//!   delivery (a row and a job) per matching active subscription — in the transaction that moves the cursor, so an
//!   event is fanned out once even with several instances (the cursor row is locked on PostgreSQL; SQLite has one
//!   writer).
//! - A delivery job POSTs the signed CloudEvent. Only 2xx counts; redirects are failures; 410 Gone disables the
//!   subscription; 429/503 with `Retry-After` is retried no earlier than asked; anything else is retried on the
//!   schedule of Standard Webhooks (5 s, 5 min, 30 min, 2 h, 5 h, 10 h, 14 h, 20 h, 24 h — about three days),
//!   and after the last attempt the delivery is dead and listed. Deliveries carry no order: receivers order by
//!   the event's `sequence`.
//! - A replay queues the deliveries of a subscription again from a feed position.

use std::sync::Arc;
use std::time::Duration;

use amtsweg_db::{Database, DbConnection, DbError};
use amtsweg_events::{CloudEvent, Procedures};
use amtsweg_jobs::{Job, JobError, JobFuture, JobHandler, JobOutput, JobSpec};
use amtsweg_kernel::Timestamp;
use diesel::prelude::*;
use serde_json::json;

use super::SubscriptionRow;
use super::signature::{self, Scheme};
use crate::Integration;
use crate::schema::{
    integration_cursors as cursors, webhook_deliveries as deliveries, webhook_subscriptions as subscriptions,
};

pub const DELIVER: &str = "integration.webhook";
pub const REPLAY: &str = "integration.webhook_replay";
/// The fan-out's cursor.
const FANOUT: &str = "webhooks";
/// Events fanned out per transaction.
const BATCH: i64 = 500;

/// The waits after failed attempts 1, 2, …: Standard Webhooks' schedule, about three days in all.
pub const SCHEDULE: [u64; 9] = [5, 300, 1_800, 7_200, 18_000, 36_000, 50_400, 72_000, 86_400];

/// Reads a cursor, locking it on PostgreSQL until the transaction ends; creates it at the current end of the
/// feed when missing (a fresh service does not deliver history).
pub(crate) fn lock_cursor(conn: &mut DbConnection, name: &str, now: Timestamp) -> Result<i64, DbError> {
    let found: Option<i64> = match conn {
        DbConnection::Postgres(pg) => cursors::table
            .find(name)
            .select(cursors::position)
            .for_update()
            .first(pg)
            .optional()?,
        DbConnection::Sqlite(lite) => cursors::table
            .find(name)
            .select(cursors::position)
            .first(lite)
            .optional()?,
    };
    if let Some(position) = found {
        return Ok(position);
    }
    let start = amtsweg_events::last_position(conn)?;
    let insert = diesel::insert_into(cursors::table)
        .values((
            cursors::name.eq(name),
            cursors::position.eq(start),
            cursors::updated_at.eq(now),
        ))
        .on_conflict_do_nothing();
    match conn {
        DbConnection::Postgres(pg) => insert.execute(pg)?,
        DbConnection::Sqlite(lite) => insert.execute(lite)?,
    };
    lock_cursor_existing(conn, name)
}

fn lock_cursor_existing(conn: &mut DbConnection, name: &str) -> Result<i64, DbError> {
    Ok(match conn {
        DbConnection::Postgres(pg) => cursors::table
            .find(name)
            .select(cursors::position)
            .for_update()
            .first(pg)?,
        DbConnection::Sqlite(lite) => cursors::table.find(name).select(cursors::position).first(lite)?,
    })
}

pub(crate) fn move_cursor(
    conn: &mut DbConnection,
    name: &str,
    position: i64,
    now: Timestamp,
) -> Result<(), DbError> {
    diesel::update(cursors::table.find(name))
        .set((cursors::position.eq(position), cursors::updated_at.eq(now)))
        .execute(conn)?;
    Ok(())
}

/// The cursor's position without locking (0 when it does not exist yet).
pub(crate) fn cursor(conn: &mut DbConnection, name: &str) -> Result<Option<i64>, DbError> {
    Ok(cursors::table
        .find(name)
        .select(cursors::position)
        .first(conn)
        .optional()?)
}

/// Active subscriptions with the procedures their clients may read now (disabled clients have none).
fn active(conn: &mut DbConnection) -> Result<Vec<(SubscriptionRow, Procedures)>, DbError> {
    let rows: Vec<SubscriptionRow> = subscriptions::table
        .filter(subscriptions::status.eq("active"))
        .select(SubscriptionRow::as_select())
        .load(conn)?;
    let mut scopes: std::collections::HashMap<String, Procedures> = std::collections::HashMap::new();
    let mut out = Vec::with_capacity(rows.len());
    for row in rows {
        let readable = match scopes.get(&row.client_id) {
            Some(found) => found.clone(),
            None => {
                let granted =
                    amtsweg_account::directory::client_scopes(conn, &row.client_id)?.unwrap_or_default();
                let readable = crate::scopes::covered(&granted, crate::scopes::READ);
                scopes.insert(row.client_id.clone(), readable.clone());
                readable
            }
        };
        out.push((row, readable));
    }
    Ok(out)
}

/// Queues a delivery of `event` to `subscription` in the caller's transaction.
fn queue(
    conn: &mut DbConnection,
    subscription: &str,
    event: &CloudEvent,
    replay: bool,
    now: Timestamp,
) -> Result<(), DbError> {
    let id = amtsweg_kernel::id::new_id();
    diesel::insert_into(deliveries::table)
        .values((
            deliveries::id.eq(&id),
            deliveries::subscription_id.eq(subscription),
            deliveries::event_id.eq(&event.id),
            deliveries::position.eq(event.position()),
            deliveries::status.eq("pending"),
            deliveries::attempts.eq(0),
            deliveries::replay.eq(replay),
            deliveries::created_at.eq(now),
        ))
        .execute(conn)?;
    // The job carries what the delivery needs, so that it reads nothing but cached subscriptions.
    let payload = json!({"delivery_id": id, "subscription_id": subscription, "event": event});
    amtsweg_jobs::enqueue(conn, &JobSpec::new(DELIVER, payload), now)?;
    Ok(())
}

/// Fans out the events after the cursor, a batch per transaction; answers how many events were read.
pub async fn fan_out(db: &Database, now: Timestamp) -> Result<usize, DbError> {
    let behind = db
        .read(|conn| {
            let last = amtsweg_events::last_position(conn)?;
            Ok::<_, DbError>(cursor(conn, FANOUT)?.is_none_or(|at| at < last))
        })
        .await?;
    if !behind {
        return Ok(0);
    }
    db.write(move |conn| {
        let mut read = 0;
        loop {
            let after = lock_cursor(conn, FANOUT, now)?;
            // The end first: every event up to it committed before the events are read (positions are given in
            // commit order), so a short batch has seen all of them.
            let last = amtsweg_events::last_position(conn)?;
            let events = amtsweg_events::read_about(conn, &Procedures::All, after, BATCH, None)?;
            let targets = if events.is_empty() {
                Vec::new()
            } else {
                active(conn)?
            };
            for event in &events {
                let procedure = event.procedure.as_deref().unwrap_or_default();
                for (subscription, readable) in &targets {
                    if subscription.starts_after < event.position()
                        && subscription.wants(&event.event_type, procedure, readable)
                    {
                        queue(conn, &subscription.id, event, false, now)?;
                    }
                }
            }
            read += events.len();
            // Events without a procedure are not for clients; the cursor passes them too.
            let seen = events.last().map_or(after, CloudEvent::position);
            let reached = if events.len() < usize::try_from(BATCH).unwrap_or(usize::MAX) {
                seen.max(last)
            } else {
                seen
            };
            if reached != after {
                move_cursor(conn, FANOUT, reached, now)?;
            }
            if reached >= last {
                return Ok(read);
            }
        }
    })
    .await
}

/// The fan-out as a tick of the job runner.
pub struct FanOut {
    pub db: Database,
    pub clock: amtsweg_kernel::SharedClock,
}

impl amtsweg_jobs::Tick for FanOut {
    fn name(&self) -> &'static str {
        "integration.webhook_fanout"
    }

    fn tick(&self) -> std::pin::Pin<Box<dyn std::future::Future<Output = Result<(), String>> + Send>> {
        let (db, now) = (self.db.clone(), self.clock.now());
        Box::pin(async move { fan_out(&db, now).await.map(|_| ()).map_err(|err| err.to_string()) })
    }
}

/// What one attempt came to.
enum Attempt {
    Delivered(u16),
    Gone,
    Failed {
        status: Option<u16>,
        error: String,
        retry_after: Option<Duration>,
    },
}

/// The delivery job.
pub struct Deliver {
    pub integration: Integration,
}

impl JobHandler for Deliver {
    fn kind(&self) -> &'static str {
        DELIVER
    }

    fn max_attempts(&self) -> u32 {
        u32::try_from(SCHEDULE.len()).unwrap_or(9) + 1
    }

    fn backoff(&self, attempt: u32) -> Duration {
        let index = usize::try_from(attempt.saturating_sub(1))
            .unwrap_or(0)
            .min(SCHEDULE.len() - 1);
        Duration::from_secs(SCHEDULE[index])
    }

    fn run(&self, job: Job) -> JobFuture {
        let integration = self.integration.clone();
        let last = job.attempt >= self.max_attempts();
        Box::pin(async move { deliver(&integration, job, last).await })
    }
}

async fn deliver(integration: &Integration, job: Job, last: bool) -> Result<JobOutput, JobError> {
    let Some(id) = job.payload["delivery_id"].as_str().map(str::to_owned) else {
        return Err(JobError::Permanent("no delivery_id".into()));
    };
    let transient = |err: DbError| JobError::Transient(err.to_string());
    let db = integration.db();
    let carried = (
        job.payload["subscription_id"].as_str(),
        CloudEvent::from_json(&job.payload["event"]),
    );
    let (subscription, event, readable) = match carried {
        (Some(subscription), Some(event)) => {
            let (row, readable) = integration.subscription(subscription).await.map_err(transient)?;
            (row, event, readable)
        }
        // Queued before jobs carried their event: read it all.
        _ => {
            let found = load(db, &id).await.map_err(transient)?;
            let Some((status, subscription, event, readable)) = found else {
                return Err(JobError::Permanent(format!("no delivery {id}")));
            };
            if status != "pending" {
                return Ok(Some(json!({"status": status})));
            }
            let Some(event) = event else {
                return Err(JobError::Permanent("the event is gone".into()));
            };
            (subscription, event, readable)
        }
    };
    let Some(subscription) = subscription else {
        return Err(JobError::Permanent("the subscription is gone".into()));
    };
    let now = integration.clock().now();
    let procedure = event.procedure.clone().unwrap_or_default();
    let permitted = readable.is_some_and(|readable| crate::scopes::includes(&readable, &procedure));
    if subscription.status != "active" || !permitted {
        let id = id.clone();
        let reason = if permitted {
            "the subscription ended"
        } else {
            "the client no longer holds a read scope for this procedure"
        };
        db.write(move |conn| {
            diesel::update(
                deliveries::table
                    .find(&id)
                    .filter(deliveries::status.eq("pending")),
            )
            .set((
                deliveries::status.eq("cancelled"),
                deliveries::last_error.eq(reason),
            ))
            .execute(conn)?;
            Ok::<_, DbError>(())
        })
        .await
        .map_err(transient)?;
        return Ok(Some(json!({"status": "cancelled"})));
    }
    let attempt = attempt(integration, &subscription, event, now).await?;
    record(integration, &id, &subscription, &attempt, last, now).await?;
    match attempt {
        Attempt::Delivered(code) => Ok(Some(json!({"status": "succeeded", "http_status": code}))),
        Attempt::Gone => Ok(Some(json!({"status": "dead", "http_status": 410}))),
        Attempt::Failed { error, .. } if last => Err(JobError::Permanent(error)),
        Attempt::Failed {
            error,
            retry_after: Some(wait),
            ..
        } => Err(JobError::RetryAfter { reason: error, wait }),
        Attempt::Failed { error, .. } => Err(JobError::Transient(error)),
    }
}

/// The delivery, its subscription, its event and the procedures the client may read now.
#[allow(clippy::type_complexity, reason = "one read's parts")]
async fn load(
    db: &Database,
    id: &str,
) -> Result<
    Option<(
        String,
        Option<SubscriptionRow>,
        Option<CloudEvent>,
        Option<Procedures>,
    )>,
    DbError,
> {
    let id = id.to_owned();
    db.read(move |conn| {
        let delivery: Option<(String, String, String)> = deliveries::table
            .find(&id)
            .select((
                deliveries::status,
                deliveries::subscription_id,
                deliveries::event_id,
            ))
            .first(conn)
            .optional()?;
        let Some((status, subscription, event)) = delivery else {
            return Ok(None);
        };
        let (row, readable) = subscription_of(conn, &subscription)?;
        let event = amtsweg_events::find(conn, &event)?;
        Ok(Some((status, row, event, readable)))
    })
    .await
}

/// A subscription with the procedures its client may read now (`None` when the client is gone or disabled).
pub(crate) fn subscription_of(
    conn: &mut DbConnection,
    id: &str,
) -> Result<(Option<SubscriptionRow>, Option<Procedures>), DbError> {
    let row: Option<SubscriptionRow> = subscriptions::table
        .find(id)
        .select(SubscriptionRow::as_select())
        .first(conn)
        .optional()?;
    let readable = match &row {
        Some(row) => amtsweg_account::directory::client_scopes(conn, &row.client_id)?
            .map(|granted| crate::scopes::covered(&granted, crate::scopes::READ)),
        None => None,
    };
    Ok((row, readable))
}

/// Signs and sends one attempt.
async fn attempt(
    integration: &Integration,
    subscription: &SubscriptionRow,
    event: CloudEvent,
    now: Timestamp,
) -> Result<Attempt, JobError> {
    let failed = |error: String| Attempt::Failed {
        status: None,
        error,
        retry_after: None,
    };
    let url = match url::Url::parse(&subscription.url) {
        Ok(url) => url,
        Err(err) => return Ok(failed(format!("invalid target: {err}"))),
    };
    if let Err(refused) = integration.targets().check_url(&url) {
        return Ok(failed(format!("target refused: {refused}")));
    }
    let event_id = event.id.clone();
    let signed = crate::feed::sign(integration.sealer().as_ref(), event)
        .map_err(|err| JobError::Transient(err.to_string()))?;
    let body = serde_json::to_vec(&signed).map_err(|err| JobError::Permanent(err.to_string()))?;
    let secret = integration
        .kek()
        .unwrap(&subscription.id, &subscription.secret)
        .map_err(|err| JobError::Permanent(err.to_string()))?;
    let scheme = Scheme::parse(&subscription.scheme).unwrap_or(Scheme::StandardWebhooks);
    let headers = signature::headers(scheme, &secret, &event_id, now.unix_seconds(), &body)
        .map_err(|err| JobError::Permanent(err.to_string()))?;
    let mut request = integration.http().post(url).header(
        reqwest::header::CONTENT_TYPE,
        "application/cloudevents+json; charset=utf-8",
    );
    for (name, value) in headers {
        request = request.header(name, value);
    }
    let response = match request.body(body).send().await {
        Ok(response) => response,
        Err(err) => {
            let mut error = err.to_string();
            let mut source = std::error::Error::source(&err);
            while let Some(cause) = source {
                error = format!("{error}: {cause}");
                source = cause.source();
            }
            return Ok(failed(error));
        }
    };
    let status = response.status();
    let retry_after = response
        .headers()
        .get(reqwest::header::RETRY_AFTER)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| retry_after_of(v, now));
    Ok(if status.is_success() {
        Attempt::Delivered(status.as_u16())
    } else if status == reqwest::StatusCode::GONE {
        Attempt::Gone
    } else {
        Attempt::Failed {
            status: Some(status.as_u16()),
            error: if status.is_redirection() {
                format!("HTTP {status}: redirects are not followed")
            } else {
                format!("HTTP {status}")
            },
            retry_after: retry_after.filter(|_| {
                status == reqwest::StatusCode::TOO_MANY_REQUESTS
                    || status == reqwest::StatusCode::SERVICE_UNAVAILABLE
            }),
        }
    })
}

/// `Retry-After` as seconds or an HTTP date.
fn retry_after_of(value: &str, now: Timestamp) -> Option<Duration> {
    if let Ok(seconds) = value.trim().parse::<u64>() {
        return Some(Duration::from_secs(seconds));
    }
    let at = chrono::DateTime::parse_from_rfc2822(value.trim()).ok()?;
    let wait = at.timestamp() - now.unix_seconds();
    Some(Duration::from_secs(u64::try_from(wait).unwrap_or(0)))
}

/// Records the attempt on the delivery (and a 410 on the subscription).
async fn record(
    integration: &Integration,
    id: &str,
    subscription: &SubscriptionRow,
    attempt: &Attempt,
    last: bool,
    now: Timestamp,
) -> Result<(), JobError> {
    let (id, subscription_id, client) = (
        id.to_owned(),
        subscription.id.clone(),
        subscription.client_id.clone(),
    );
    let (status, code, error): (&str, Option<i32>, Option<String>) = match attempt {
        Attempt::Delivered(code) => ("succeeded", Some(i32::from(*code)), None),
        Attempt::Gone => (
            "dead",
            Some(410),
            Some("410 Gone: the subscription was disabled".into()),
        ),
        Attempt::Failed { status, error, .. } => (
            if last { "dead" } else { "pending" },
            status.map(i32::from),
            Some(error.chars().take(1_000).collect()),
        ),
    };
    let gone = matches!(attempt, Attempt::Gone);
    let write: super::group::Write = Arc::new(move |conn| {
        diesel::update(
            deliveries::table
                .find(&id)
                .filter(deliveries::status.eq("pending")),
        )
        .set((
            deliveries::status.eq(status),
            deliveries::attempts.eq(deliveries::attempts + 1),
            deliveries::last_status.eq(code),
            deliveries::last_error.eq(&error),
            deliveries::last_attempt_at.eq(now),
            deliveries::delivered_at.eq((status == "succeeded").then_some(now)),
        ))
        .execute(conn)?;
        if gone {
            let disabled = diesel::update(
                subscriptions::table
                    .find(&subscription_id)
                    .filter(subscriptions::status.eq("active")),
            )
            .set((
                subscriptions::status.eq("disabled"),
                subscriptions::disabled_reason.eq("the receiver answered 410 Gone"),
                subscriptions::updated_at.eq(now),
            ))
            .execute(conn)?;
            if disabled == 1 {
                crate::audit(
                    conn,
                    &client,
                    "integration.subscription_disabled",
                    ("webhook_subscription", &subscription_id),
                    now,
                )?;
            }
        }
        Ok::<_, DbError>(())
    });
    integration
        .outcomes()
        .write(write)
        .await
        .map_err(JobError::Transient)
}

/// Queues the deliveries of a subscription again for the events after `after` up to `until`, a page per
/// transaction. Re-running it (its runner died) may queue some twice: receivers dedupe by event id.
pub struct Replay {
    pub db: Database,
    pub clock: amtsweg_kernel::SharedClock,
}

impl JobHandler for Replay {
    fn kind(&self) -> &'static str {
        REPLAY
    }

    fn max_attempts(&self) -> u32 {
        5
    }

    fn run(&self, job: Job) -> JobFuture {
        let (db, clock) = (self.db.clone(), self.clock.clone());
        Box::pin(async move {
            let subscription = job.payload["subscription_id"]
                .as_str()
                .unwrap_or_default()
                .to_owned();
            let mut after = job.payload["after"].as_i64().unwrap_or(0);
            let until = job.payload["until"].as_i64().unwrap_or(0);
            let mut queued = 0usize;
            loop {
                let (subscription, now) = (subscription.clone(), clock.now());
                let page = db
                    .write(move |conn| {
                        let Some((row, readable)) =
                            active(conn)?.into_iter().find(|(row, _)| row.id == subscription)
                        else {
                            return Ok::<_, DbError>(None);
                        };
                        let events = amtsweg_events::read_about(conn, &Procedures::All, after, BATCH, None)?;
                        let mut count = 0;
                        let mut reached = after;
                        for event in events.iter().filter(|e| e.position() <= until) {
                            reached = event.position();
                            let procedure = event.procedure.as_deref().unwrap_or_default();
                            if row.wants(&event.event_type, procedure, &readable) {
                                queue(conn, &row.id, event, true, now)?;
                                count += 1;
                            }
                        }
                        let done = events.len() < usize::try_from(BATCH).unwrap_or(usize::MAX)
                            || events.last().is_none_or(|e| e.position() >= until);
                        Ok(Some((count, reached, done)))
                    })
                    .await
                    .map_err(|err| JobError::Transient(err.to_string()))?;
                let Some((count, reached, done)) = page else {
                    return Ok(Some(
                        json!({"queued": queued, "stopped": "the subscription is not active"}),
                    ));
                };
                queued += count;
                after = reached;
                if done {
                    return Ok(Some(json!({"queued": queued})));
                }
            }
        })
    }
}

/// Queues a replay of `subscription` from feed position `after` to the current end of the feed; answers the
/// job id and the end.
pub(crate) fn start_replay(
    conn: &mut DbConnection,
    subscription: &str,
    after: i64,
    now: Timestamp,
) -> Result<(String, i64), DbError> {
    let until = amtsweg_events::last_position(conn)?;
    let spec = JobSpec::new(
        REPLAY,
        json!({"subscription_id": subscription, "after": after, "until": until}),
    );
    let job = amtsweg_jobs::enqueue(conn, &spec, now)?
        .ok_or_else(|| DbError::Task("a replay without dedupe key was not queued".into()))?;
    Ok((job.into_string(), until))
}

/// Used by the benchmark and tests: the deliveries waiting or failed, per status.
pub fn counts(conn: &mut DbConnection) -> Result<Vec<(String, i64)>, DbError> {
    Ok(deliveries::table
        .group_by(deliveries::status)
        .select((deliveries::status, diesel::dsl::count_star()))
        .load(conn)?)
}
