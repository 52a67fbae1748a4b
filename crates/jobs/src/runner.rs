//! The runner: one per instance, claiming due jobs under a lease and running them with bounded concurrency.

use amtsweg_kernel::Timestamp;
use std::collections::HashMap;
use std::panic::AssertUnwindSafe;
use std::sync::{Arc, LazyLock, Mutex};
use std::time::Duration;

use amtsweg_db::{Database, DbError};
use amtsweg_kernel::SharedClock;
use futures_util::FutureExt;
use rand::Rng;
use tokio::sync::{Semaphore, watch};

use crate::handler::{Job, JobError, JobId, JobOutput};
use crate::registry::Registry;
use crate::{JobSpec, store};

/// Wake-ups for every runner of this process: a counter that moves whenever a job was queued and committed.
static WAKE: LazyLock<watch::Sender<u64>> = LazyLock::new(|| watch::Sender::new(0));

/// Wakes the runners of this process (called after a commit that queued a job; harmless at any other time).
pub fn wake() {
    WAKE.send_modify(|count| *count = count.wrapping_add(1));
}

#[derive(Debug, Clone)]
pub struct RunnerSettings {
    /// Jobs run at the same time by this instance.
    pub concurrency: usize,
    /// How often the runner looks for due jobs without being woken (jobs queued by other instances, retries
    /// coming due, schedules).
    pub poll_interval: Duration,
    /// How long a claim holds before another instance may take the job over; renewed while the job runs.
    pub lease: Duration,
}

impl Default for RunnerSettings {
    fn default() -> Self {
        Self {
            concurrency: 4,
            poll_interval: Duration::from_secs(1),
            lease: Duration::from_secs(300),
        }
    }
}

pub struct Runner {
    db: Database,
    clock: SharedClock,
    registry: Registry,
    settings: RunnerSettings,
    worker: String,
    slots: Arc<Semaphore>,
    /// The last period each schedule was queued for by this instance (saves a write per round).
    scheduled: Mutex<HashMap<&'static str, i64>>,
}

impl Runner {
    pub fn new(
        db: Database,
        clock: SharedClock,
        registry: Registry,
        settings: RunnerSettings,
    ) -> Arc<Runner> {
        Arc::new(Runner {
            slots: Arc::new(Semaphore::new(settings.concurrency.max(1))),
            worker: amtsweg_kernel::id::new_id(),
            db,
            clock,
            registry,
            settings,
            scheduled: Mutex::new(HashMap::new()),
        })
    }

    pub fn registry(&self) -> &Registry {
        &self.registry
    }

    /// Runs until the task is dropped: a round whenever a job is queued or finishes, and at least every poll
    /// interval. A round records the outcomes of finished jobs and claims new ones in one transaction, so a busy
    /// queue costs about one write per handful of jobs.
    pub async fn run(self: Arc<Self>) {
        let mut woken = WAKE.subscribe();
        let (done, mut finished) = tokio::sync::mpsc::unbounded_channel::<Outcome>();
        let mut outcomes: Vec<Outcome> = Vec::new();
        loop {
            woken.borrow_and_update();
            while let Ok(outcome) = finished.try_recv() {
                outcomes.push(outcome);
            }
            self.run_ticks().await;
            let claimed = match self.round(std::mem::take(&mut outcomes)).await {
                Ok(claimed) => claimed,
                Err((err, unrecorded)) => {
                    tracing::warn!(error = %err, "job runner: database unavailable");
                    outcomes = unrecorded;
                    Vec::new()
                }
            };
            let filled = !claimed.is_empty() && self.slots.available_permits() == claimed.len();
            for job in claimed {
                let Ok(permit) = self.slots.clone().acquire_owned().await else {
                    break;
                };
                let (runner, done) = (self.clone(), done.clone());
                tokio::spawn(async move {
                    let outcome = runner.execute(job).await;
                    drop(permit);
                    let _ = done.send(outcome);
                });
            }
            if filled && outcomes.is_empty() {
                tokio::task::yield_now().await;
            }
            tokio::select! {
                _ = woken.changed() => {}
                Some(outcome) = finished.recv() => outcomes.push(outcome),
                () = tokio::time::sleep(self.settings.poll_interval) => {}
            }
        }
    }

    /// Runs every due job to its end, one round after another, until none is left (command-line tools that
    /// should not leave work behind, tests). Answers how many jobs ran.
    pub async fn run_due(self: &Arc<Self>) -> Result<usize, DbError> {
        let mut ran = 0;
        let mut outcomes = Vec::new();
        loop {
            self.run_ticks().await;
            let claimed = self
                .round(std::mem::take(&mut outcomes))
                .await
                .map_err(|(err, _)| err)?;
            if claimed.is_empty() {
                return Ok(ran);
            }
            ran += claimed.len();
            for job in claimed {
                outcomes.push(self.execute(job).await);
            }
        }
    }

    /// One round in one transaction: record what finished, queue due schedules, claim as many jobs as there are
    /// free slots. On failure the outcomes come back to be recorded next time.
    async fn round(&self, outcomes: Vec<Outcome>) -> Result<Vec<Job>, (DbError, Vec<Outcome>)> {
        let schedules = self.due_schedules();
        let kinds = self.registry.kinds();
        let free = i64::try_from(self.slots.available_permits()).unwrap_or(0);
        if outcomes.is_empty() && schedules.is_empty() && (free == 0 || kinds.is_empty()) {
            return Ok(Vec::new());
        }
        let now = self.clock.now();
        let worker = self.worker.clone();
        let lease = self.lease();
        let recorded = outcomes.clone();
        let queued = schedules.clone();
        let claimed = self
            .db
            .write(move |conn| {
                for outcome in &recorded {
                    outcome.record(conn, &worker, now)?;
                }
                for (schedule, period, start) in &queued {
                    let spec = JobSpec::new(schedule.kind, schedule.payload.clone())
                        .dedupe(schedule.key(*period))
                        .run_at(*start);
                    store::enqueue(conn, &spec, now)?;
                }
                if free == 0 || kinds.is_empty() {
                    return Ok(Vec::new());
                }
                store::claim(conn, &kinds, &worker, free, lease, now)
            })
            .await
            .map_err(|err| (err, outcomes))?;
        let mut done = self.scheduled.lock().unwrap_or_else(|p| p.into_inner());
        for (schedule, period, _) in schedules {
            done.insert(schedule.name, period);
        }
        Ok(claimed)
    }

    async fn run_ticks(&self) {
        for tick in self.registry.ticks() {
            if let Err(err) = tick.tick().await {
                tracing::warn!(tick = tick.name(), error = %err, "job runner: tick failed");
            }
        }
    }

    /// The schedules whose current period this instance has not queued yet (the dedupe key makes sure only one
    /// instance's job exists per period).
    fn due_schedules(&self) -> Vec<(crate::Schedule, i64, Timestamp)> {
        let now = self.clock.now();
        let done = self.scheduled.lock().unwrap_or_else(|p| p.into_inner());
        self.registry
            .schedules()
            .iter()
            .filter_map(|schedule| {
                let (period, start) = schedule.period.current(now);
                (done.get(schedule.name) != Some(&period)).then(|| (schedule.clone(), period, start))
            })
            .collect()
    }

    fn lease(&self) -> chrono::Duration {
        chrono::Duration::from_std(self.settings.lease).unwrap_or(chrono::Duration::minutes(5))
    }

    /// Runs one claimed job, renewing its lease meanwhile. A panicking handler counts as a transient failure.
    async fn execute(self: &Arc<Self>, job: Job) -> Outcome {
        let Some(handler) = self.registry.get(&job.kind).cloned() else {
            return Outcome {
                id: job.id,
                result: Err("no handler for this kind".into()),
                retry_at: None,
            };
        };
        let heartbeat = {
            let runner = self.clone();
            let id = job.id.clone().into_string();
            tokio::spawn(async move {
                let every = runner.settings.lease / 3;
                loop {
                    tokio::time::sleep(every).await;
                    let until = runner.clock.now() + runner.lease();
                    let (id, worker) = (id.clone(), runner.worker.clone());
                    match runner
                        .db
                        .write(move |conn| store::extend(conn, &id, &worker, until))
                        .await
                    {
                        Ok(true) => {}
                        Ok(false) => return,
                        Err(err) => tracing::warn!(error = %err, "job runner: lease not renewed"),
                    }
                }
            })
        };
        let outcome: Result<JobOutput, JobError> = AssertUnwindSafe(handler.run(job.clone()))
            .catch_unwind()
            .await
            .unwrap_or_else(|_| Err(JobError::Transient("the handler panicked".into())));
        heartbeat.abort();
        let retry_at = match &outcome {
            Err(JobError::Transient(_)) if job.attempt < handler.max_attempts() => {
                Some(self.clock.now() + jittered(handler.backoff(job.attempt)))
            }
            Err(JobError::RetryAfter { wait, .. }) if job.attempt < handler.max_attempts() => {
                let wait = (*wait).clamp(Duration::from_secs(1), Duration::from_secs(86_400));
                Some(self.clock.now() + chrono::Duration::from_std(wait).unwrap_or(chrono::Duration::days(1)))
            }
            _ => None,
        };
        if let Err(err) = &outcome {
            tracing::info!(job = %job.id, kind = %job.kind, attempt = job.attempt, retry_at = ?retry_at, error = %err, "job failed");
        }
        Outcome {
            id: job.id,
            result: outcome.map_err(|err| err.to_string()),
            retry_at,
        }
    }
}

/// How a run ended, waiting to be recorded.
#[derive(Debug, Clone)]
struct Outcome {
    id: JobId,
    result: Result<JobOutput, String>,
    /// For a failure: when to try again (`None`: the job is dead).
    retry_at: Option<Timestamp>,
}

impl Outcome {
    fn record(
        &self,
        conn: &mut amtsweg_db::DbConnection,
        worker: &str,
        now: Timestamp,
    ) -> Result<(), DbError> {
        let held = match &self.result {
            Ok(output) => store::succeed(conn, self.id.as_str(), worker, output.as_ref(), now)?,
            Err(error) => store::fail(conn, self.id.as_str(), worker, error, self.retry_at, now)?,
        };
        if !held {
            tracing::warn!(job = %self.id, "job finished after its lease was lost; another runner has it");
        }
        Ok(())
    }
}

/// Up to a tenth less than `wait`, at random: retries of jobs that failed together spread out, and never wait
/// longer than the handler said.
fn jittered(wait: Duration) -> chrono::Duration {
    let millis = i64::try_from(wait.as_millis()).unwrap_or(i64::MAX);
    let spread = millis / 10;
    let off = if spread > 0 {
        rand::thread_rng().gen_range(0..=spread)
    } else {
        0
    };
    chrono::Duration::milliseconds(millis - off)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn jitter_only_shortens_by_at_most_a_tenth() {
        for _ in 0..100 {
            let wait = jittered(Duration::from_secs(30)).num_milliseconds();
            assert!((27_000..=30_000).contains(&wait), "{wait}");
        }
    }
}
