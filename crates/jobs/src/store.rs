//! The queries of the job table. Every function takes the connection of the caller's transaction.

use amtsweg_db::{DbConnection, DbError};
use amtsweg_kernel::Timestamp;
use chrono::Duration;
use diesel::prelude::*;
use serde::Serialize;
use serde_json::Value;

use crate::JobSpec;
use crate::handler::{Job, JobId};
use crate::registry::Schedule;
use crate::schema::jobs;

/// Where a job is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum JobStatus {
    Queued,
    Running,
    Succeeded,
    Dead,
}

impl JobStatus {
    pub const ALL: [JobStatus; 4] = [
        JobStatus::Queued,
        JobStatus::Running,
        JobStatus::Succeeded,
        JobStatus::Dead,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            JobStatus::Queued => "queued",
            JobStatus::Running => "running",
            JobStatus::Succeeded => "succeeded",
            JobStatus::Dead => "dead",
        }
    }

    pub fn parse(text: &str) -> Option<JobStatus> {
        JobStatus::ALL.into_iter().find(|s| s.as_str() == text)
    }
}

/// Queues a job inside the caller's transaction; the runners of this process are woken once it commits. Answers
/// the new job's id, or `None` when the dedupe key was taken.
pub fn enqueue(conn: &mut DbConnection, spec: &JobSpec, now: Timestamp) -> Result<Option<JobId>, DbError> {
    let id = JobId::new();
    let insert = diesel::insert_into(jobs::table)
        .values((
            jobs::id.eq(&id),
            jobs::kind.eq(&spec.kind),
            jobs::payload.eq(spec.payload.to_string()),
            jobs::dedupe_key.eq(&spec.dedupe_key),
            jobs::status.eq(JobStatus::Queued.as_str()),
            jobs::attempts.eq(0),
            jobs::run_at.eq(spec.run_at.unwrap_or(now)),
            jobs::created_at.eq(now),
        ))
        .on_conflict_do_nothing();
    let inserted = match conn {
        DbConnection::Postgres(pg) => insert.execute(pg)?,
        DbConnection::Sqlite(lite) => insert.execute(lite)?,
    };
    if inserted == 0 {
        return Ok(None);
    }
    amtsweg_db::after_commit(crate::runner::wake);
    Ok(Some(id))
}

/// Claims up to `limit` due jobs of the given kinds for `worker` until `now + lease`: queued jobs whose time has
/// come, and running jobs whose lease ran out (their runner died). Each claim counts as an attempt.
pub(crate) fn claim(
    conn: &mut DbConnection,
    kinds: &[&str],
    worker: &str,
    limit: i64,
    lease: Duration,
    now: Timestamp,
) -> Result<Vec<Job>, DbError> {
    let due = jobs::kind.eq_any(kinds).and(
        jobs::status
            .eq(JobStatus::Queued.as_str())
            .and(jobs::run_at.le(now))
            .or(jobs::status
                .eq(JobStatus::Running.as_str())
                .and(jobs::locked_until.le(now))),
    );
    let ids: Vec<String> = match conn {
        DbConnection::Postgres(pg) => jobs::table
            .filter(due)
            .order(jobs::run_at.asc())
            .limit(limit)
            .select(jobs::id)
            .for_update()
            .skip_locked()
            .load(pg)?,
        // SQLite: the write transaction holds the database's write lock, so no one else claims meanwhile.
        DbConnection::Sqlite(lite) => jobs::table
            .filter(due)
            .order(jobs::run_at.asc())
            .limit(limit)
            .select(jobs::id)
            .load(lite)?,
    };
    if ids.is_empty() {
        return Ok(Vec::new());
    }
    diesel::update(jobs::table.filter(jobs::id.eq_any(&ids)))
        .set((
            jobs::status.eq(JobStatus::Running.as_str()),
            jobs::attempts.eq(jobs::attempts + 1),
            jobs::locked_until.eq(now + lease),
            jobs::worker.eq(worker),
            jobs::started_at.eq(now),
        ))
        .execute(conn)?;
    let rows: Vec<(JobId, String, String, i32)> = jobs::table
        .filter(jobs::id.eq_any(&ids))
        .order(jobs::run_at.asc())
        .select((jobs::id, jobs::kind, jobs::payload, jobs::attempts))
        .load(conn)?;
    Ok(rows
        .into_iter()
        .map(|(id, kind, payload, attempts)| Job {
            id,
            kind,
            payload: serde_json::from_str(&payload).unwrap_or(Value::Null),
            attempt: u32::try_from(attempts).unwrap_or(1),
        })
        .collect())
}

/// The job `id` while `worker` holds it.
type HeldBy<'a> = diesel::dsl::Filter<
    diesel::dsl::Filter<diesel::dsl::Find<jobs::table, &'a str>, diesel::dsl::Eq<jobs::worker, &'a str>>,
    diesel::dsl::Eq<jobs::status, &'static str>,
>;

fn held_by<'a>(id: &'a str, worker: &'a str) -> HeldBy<'a> {
    jobs::table
        .find(id)
        .filter(jobs::worker.eq(worker))
        .filter(jobs::status.eq(JobStatus::Running.as_str()))
}

/// Extends the lease of a running job; `false` when the job is no longer this worker's.
pub(crate) fn extend(
    conn: &mut DbConnection,
    id: &str,
    worker: &str,
    until: Timestamp,
) -> Result<bool, DbError> {
    Ok(diesel::update(held_by(id, worker))
        .set(jobs::locked_until.eq(until))
        .execute(conn)?
        == 1)
}

/// Records success; `false` when the lease was lost meanwhile (another runner has the job now).
pub(crate) fn succeed(
    conn: &mut DbConnection,
    id: &str,
    worker: &str,
    output: Option<&Value>,
    now: Timestamp,
) -> Result<bool, DbError> {
    Ok(diesel::update(held_by(id, worker))
        .set((
            jobs::status.eq(JobStatus::Succeeded.as_str()),
            jobs::locked_until.eq(None::<Timestamp>),
            jobs::result.eq(output.map(Value::to_string)),
            jobs::last_error.eq(None::<String>),
            jobs::finished_at.eq(now),
        ))
        .execute(conn)?
        == 1)
}

/// Records a failure: queued again for `retry_at`, or dead without one.
pub(crate) fn fail(
    conn: &mut DbConnection,
    id: &str,
    worker: &str,
    error: &str,
    retry_at: Option<Timestamp>,
    now: Timestamp,
) -> Result<bool, DbError> {
    let error: String = error.chars().take(2_000).collect();
    let updated = match retry_at {
        Some(at) => diesel::update(held_by(id, worker))
            .set((
                jobs::status.eq(JobStatus::Queued.as_str()),
                jobs::run_at.eq(at),
                jobs::locked_until.eq(None::<Timestamp>),
                jobs::last_error.eq(&error),
            ))
            .execute(conn)?,
        None => diesel::update(held_by(id, worker))
            .set((
                jobs::status.eq(JobStatus::Dead.as_str()),
                jobs::locked_until.eq(None::<Timestamp>),
                jobs::last_error.eq(&error),
                jobs::finished_at.eq(now),
            ))
            .execute(conn)?,
    };
    Ok(updated == 1)
}

/// A job as the admin API shows it.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct JobView {
    pub id: JobId,
    pub kind: String,
    pub status: JobStatus,
    pub attempts: i32,
    pub run_at: String,
    pub created_at: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub started_at: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub finished_at: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub dedupe_key: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub last_error: Option<String>,
    /// What the job reported when it succeeded.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<Object>)]
    pub result: Option<Value>,
    #[schema(value_type = Object)]
    pub payload: Value,
}

#[derive(Queryable, Selectable)]
#[diesel(table_name = jobs)]
struct JobRow {
    id: JobId,
    kind: String,
    payload: String,
    dedupe_key: Option<String>,
    status: String,
    attempts: i32,
    run_at: Timestamp,
    last_error: Option<String>,
    result: Option<String>,
    created_at: Timestamp,
    started_at: Option<Timestamp>,
    finished_at: Option<Timestamp>,
}

impl From<JobRow> for JobView {
    fn from(row: JobRow) -> JobView {
        JobView {
            id: row.id,
            kind: row.kind,
            status: JobStatus::parse(&row.status).unwrap_or(JobStatus::Dead),
            attempts: row.attempts,
            run_at: row.run_at.rfc3339(),
            created_at: row.created_at.rfc3339(),
            started_at: row.started_at.map(Timestamp::rfc3339),
            finished_at: row.finished_at.map(Timestamp::rfc3339),
            dedupe_key: row.dedupe_key,
            last_error: row.last_error,
            result: row.result.and_then(|r| serde_json::from_str(&r).ok()),
            payload: serde_json::from_str(&row.payload).unwrap_or(Value::Null),
        }
    }
}

pub fn job(conn: &mut DbConnection, id: &JobId) -> Result<Option<JobView>, DbError> {
    Ok(jobs::table
        .find(id)
        .select(JobRow::as_select())
        .first(conn)
        .optional()?
        .map(JobView::from))
}

/// Which jobs to list, newest first.
#[derive(Debug, Clone, Default)]
pub struct JobFilter {
    pub kind: Option<String>,
    pub status: Option<JobStatus>,
    /// The id of the last job of the previous page.
    pub before: Option<String>,
    pub limit: i64,
}

pub fn list(conn: &mut DbConnection, filter: &JobFilter) -> Result<Vec<JobView>, DbError> {
    let mut query = jobs::table.into_boxed();
    if let Some(kind) = &filter.kind {
        query = query.filter(jobs::kind.eq(kind.clone()));
    }
    if let Some(status) = filter.status {
        query = query.filter(jobs::status.eq(status.as_str()));
    }
    if let Some(before) = &filter.before {
        query = query.filter(jobs::id.lt(before.clone()));
    }
    let rows: Vec<JobRow> = query
        .order(jobs::id.desc())
        .limit(filter.limit)
        .select(JobRow::as_select())
        .load(conn)?;
    Ok(rows.into_iter().map(JobView::from).collect())
}

/// Queues a dead job again, from its first attempt. `None` when there is no dead job with this id.
pub fn retry(conn: &mut DbConnection, id: &JobId, now: Timestamp) -> Result<Option<JobView>, DbError> {
    let updated = diesel::update(
        jobs::table
            .find(id)
            .filter(jobs::status.eq(JobStatus::Dead.as_str())),
    )
    .set((
        jobs::status.eq(JobStatus::Queued.as_str()),
        jobs::attempts.eq(0),
        jobs::run_at.eq(now),
        jobs::finished_at.eq(None::<Timestamp>),
        jobs::worker.eq(None::<String>),
    ))
    .execute(conn)?;
    if updated == 0 {
        return Ok(None);
    }
    amtsweg_db::after_commit(crate::runner::wake);
    job(conn, id)
}

/// Queues a run of a schedule outside its period (an administrator asked for it); answers the job's id.
pub fn run_schedule_now(
    conn: &mut DbConnection,
    schedule: &Schedule,
    now: Timestamp,
) -> Result<JobId, DbError> {
    let spec = JobSpec::new(schedule.kind, schedule.payload.clone()).dedupe(format!(
        "schedule:{}:manual:{}",
        schedule.name,
        amtsweg_kernel::id::new_id()
    ));
    enqueue(conn, &spec, now)?.ok_or_else(|| DbError::Task("a fresh dedupe key was taken".into()))
}

/// Jobs per kind and status.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KindStats {
    pub kind: String,
    pub status: String,
    pub count: i64,
}

/// What the metrics show of the queue.
#[derive(Debug, Clone, Default)]
pub struct JobStats {
    pub counts: Vec<KindStats>,
    /// How long the oldest due job has waited, in seconds (0 when none is due).
    pub oldest_due_seconds: i64,
}

pub fn stats(conn: &mut DbConnection, now: Timestamp) -> Result<JobStats, DbError> {
    let counts: Vec<(String, String, i64)> = jobs::table
        .group_by((jobs::kind, jobs::status))
        .select((jobs::kind, jobs::status, diesel::dsl::count_star()))
        .load(conn)?;
    let oldest: Option<Timestamp> = jobs::table
        .filter(jobs::status.eq(JobStatus::Queued.as_str()))
        .filter(jobs::run_at.le(now))
        .select(diesel::dsl::min(jobs::run_at))
        .first(conn)?;
    Ok(JobStats {
        counts: counts
            .into_iter()
            .map(|(kind, status, count)| KindStats { kind, status, count })
            .collect(),
        oldest_due_seconds: oldest.map_or(0, |at| (now - at).num_seconds().max(0)),
    })
}
