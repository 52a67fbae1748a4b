//! What a module implements to run jobs of one kind.

use std::future::Future;
use std::pin::Pin;
use std::time::Duration;

use serde_json::Value;

/// The id of a job.
pub type JobId = amtsweg_kernel::id::Id<Job>;

/// A claimed job as its handler sees it.
#[derive(Debug, Clone)]
pub struct Job {
    pub id: JobId,
    pub kind: String,
    pub payload: Value,
    /// 1 for the first run, 2 for the first retry, …
    pub attempt: u32,
}

/// Why a job failed, and so whether it is worth trying again.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum JobError {
    /// Worth another try later (a peer is down, the database is busy …).
    #[error("{0}")]
    Transient(String),
    /// Trying again cannot help (the input is invalid, the peer refused for good).
    #[error("{0}")]
    Permanent(String),
    /// Worth another try, not before `wait` (the peer said so, e.g. with `Retry-After`); counts as an attempt.
    #[error("{reason}")]
    RetryAfter { reason: String, wait: Duration },
}

/// What a successful job leaves behind for an administrator to read (e.g. how many accounts were flagged).
pub type JobOutput = Option<Value>;

pub type JobFuture = Pin<Box<dyn Future<Output = Result<JobOutput, JobError>> + Send>>;

/// The work behind one job kind. Handlers must be idempotent: a job whose runner died mid-way runs again.
pub trait JobHandler: Send + Sync + 'static {
    /// The kind this handler runs, e.g. `mail.send`.
    fn kind(&self) -> &'static str;

    /// Runs after which a transiently failing job is given up (marked dead).
    fn max_attempts(&self) -> u32 {
        10
    }

    /// The wait before retry `attempt + 1` after the `attempt`-th run failed: 5 s doubling up to an hour. The runner
    /// takes up to a tenth off at random, so that jobs failed together do not retry together.
    fn backoff(&self, attempt: u32) -> Duration {
        let exponent = attempt.saturating_sub(1).min(10);
        Duration::from_secs((5u64 << exponent).min(3_600))
    }

    fn run(&self, job: Job) -> JobFuture;
}

struct FnHandler<F> {
    kind: &'static str,
    max_attempts: u32,
    run: F,
}

impl<F, Fut> JobHandler for FnHandler<F>
where
    F: Fn(Job) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = Result<JobOutput, JobError>> + Send + 'static,
{
    fn kind(&self) -> &'static str {
        self.kind
    }

    fn max_attempts(&self) -> u32 {
        self.max_attempts
    }

    fn run(&self, job: Job) -> JobFuture {
        Box::pin((self.run)(job))
    }
}

/// A handler from a closure, with the default backoff.
pub fn handler_fn<F, Fut>(kind: &'static str, max_attempts: u32, run: F) -> impl JobHandler
where
    F: Fn(Job) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = Result<JobOutput, JobError>> + Send + 'static,
{
    FnHandler {
        kind,
        max_attempts,
        run,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_up_to_an_hour() {
        let handler = handler_fn("t", 3, |_| async { Ok(None) });
        let waits: Vec<u64> = (1..=12).map(|a| handler.backoff(a).as_secs()).collect();
        assert_eq!(waits[..5], [5, 10, 20, 40, 80]);
        assert_eq!(waits[11], 3_600);
    }
}
