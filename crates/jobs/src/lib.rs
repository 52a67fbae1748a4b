//! Background jobs for every module, in one durable table with one runner.
//!
//! - [`enqueue`] runs inside the caller's transaction: the job exists if and only if the write that caused it
//!   committed, and the runners of this process are woken after the commit.
//! - A [`JobHandler`] per kind does the work and says whether a failure is [`JobError::Transient`] (retried with
//!   exponential backoff and jitter up to the kind's limit, then dead) or [`JobError::Permanent`] (dead at once).
//!   Dead jobs are kept and can be retried by an administrator.
//! - A runner claims due jobs under a lease (`FOR UPDATE SKIP LOCKED` on PostgreSQL, the write lock on SQLite),
//!   renews the lease while a job runs, and a job whose runner died is claimed again when its lease ends — so
//!   handlers must be idempotent, and several instances can share one database.
//! - [`Schedule`]s declared by the modules run once per period across all instances: each period's job has a
//!   dedupe key that only one instance can insert.
//!
//! Depends on nothing but `kernel` and `db`; the admin routes live above it.

mod handler;
mod registry;
mod runner;
mod schema;
mod store;

pub use handler::{Job, JobError, JobFuture, JobHandler, JobId, JobOutput, handler_fn};
pub use registry::{Period, Registry, Schedule, Tick};
pub use runner::{Runner, RunnerSettings, wake};
pub use store::{
    JobFilter, JobStats, JobStatus, JobView, KindStats, enqueue, job, list, retry, run_schedule_now, stats,
};

use amtsweg_kernel::Timestamp;
use serde_json::Value;

/// A job to queue: its kind, payload, and optionally a dedupe key (a second job with the same key is not queued)
/// and a time before which it must not run.
#[derive(Debug, Clone)]
pub struct JobSpec {
    pub kind: String,
    pub payload: Value,
    pub dedupe_key: Option<String>,
    pub run_at: Option<Timestamp>,
}

impl JobSpec {
    pub fn new(kind: impl Into<String>, payload: Value) -> JobSpec {
        JobSpec {
            kind: kind.into(),
            payload,
            dedupe_key: None,
            run_at: None,
        }
    }

    /// Queue nothing if a job with this key exists (queued, running or finished).
    pub fn dedupe(mut self, key: impl Into<String>) -> JobSpec {
        self.dedupe_key = Some(key.into());
        self
    }

    pub fn run_at(mut self, at: Timestamp) -> JobSpec {
        self.run_at = Some(at);
        self
    }
}
