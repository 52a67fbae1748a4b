//! What the modules contribute to the runner at composition: handlers per job kind, recurring schedules, and ticks
//! (short pieces of work the runner does on every round, such as sequencing the event outbox).

use amtsweg_kernel::Timestamp;
use std::collections::BTreeMap;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

use chrono::Duration;
use serde_json::Value;

use crate::handler::JobHandler;

/// How often a schedule runs. Periods are aligned to the Unix epoch, so `Every(1 day)` starts at midnight UTC.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Period {
    Every(Duration),
}

impl Period {
    pub fn daily() -> Period {
        Period::Every(Duration::days(1))
    }

    /// The number of the period `at` falls in, and when that period began.
    pub fn current(self, at: Timestamp) -> (i64, Timestamp) {
        let Period::Every(length) = self;
        let seconds = length.num_seconds().max(1);
        let index = at.unix_seconds().div_euclid(seconds);
        let start = Timestamp::from_unix_seconds(index * seconds).unwrap_or(at);
        (index, start)
    }
}

/// A job that runs once per period, whichever instance gets there first.
#[derive(Debug, Clone)]
pub struct Schedule {
    /// Stable name, used in the admin API (`/admin/schedules/{name}/run`) and in dedupe keys.
    pub name: &'static str,
    pub period: Period,
    /// The job kind it queues (a handler must be registered).
    pub kind: &'static str,
    pub payload: Value,
}

impl Schedule {
    /// The dedupe key of the job for the period with this number.
    pub fn key(&self, period: i64) -> String {
        format!("schedule:{}:{period}", self.name)
    }
}

/// Work the runner does on every round (after a wake-up or the poll interval), one at a time per instance.
pub trait Tick: Send + Sync + 'static {
    fn name(&self) -> &'static str;
    fn tick(&self) -> Pin<Box<dyn Future<Output = Result<(), String>> + Send>>;
}

/// Everything the runner runs.
#[derive(Clone, Default)]
pub struct Registry {
    handlers: BTreeMap<&'static str, Arc<dyn JobHandler>>,
    schedules: Vec<Schedule>,
    ticks: Vec<Arc<dyn Tick>>,
}

impl Registry {
    pub fn new() -> Registry {
        Registry::default()
    }

    /// Registers the handler of a job kind. A kind has one handler; a second registration is a wiring mistake.
    pub fn handler(mut self, handler: impl JobHandler) -> Registry {
        let kind = handler.kind();
        let previous = self.handlers.insert(kind, Arc::new(handler));
        debug_assert!(previous.is_none(), "job kind {kind} registered twice");
        self
    }

    pub fn schedule(mut self, schedule: Schedule) -> Registry {
        self.schedules.push(schedule);
        self
    }

    pub fn tick(mut self, tick: Arc<dyn Tick>) -> Registry {
        self.ticks.push(tick);
        self
    }

    /// Adds everything another registry holds (one per module, merged at composition).
    pub fn merge(mut self, other: Registry) -> Registry {
        self.handlers.extend(other.handlers);
        self.schedules.extend(other.schedules);
        self.ticks.extend(other.ticks);
        self
    }

    pub fn get(&self, kind: &str) -> Option<&Arc<dyn JobHandler>> {
        self.handlers.get(kind)
    }

    pub fn kinds(&self) -> Vec<&'static str> {
        self.handlers.keys().copied().collect()
    }

    pub fn schedules(&self) -> &[Schedule] {
        &self.schedules
    }

    pub fn schedule_named(&self, name: &str) -> Option<&Schedule> {
        self.schedules.iter().find(|s| s.name == name)
    }

    pub(crate) fn ticks(&self) -> &[Arc<dyn Tick>] {
        &self.ticks
    }
}

#[cfg(test)]
mod tests {
    use chrono::{TimeZone, Utc};

    use super::*;

    #[test]
    fn daily_periods_start_at_midnight_utc() {
        let at = Timestamp::from(Utc.with_ymd_and_hms(2026, 11, 30, 15, 44, 0).unwrap());
        let (index, start) = Period::daily().current(at);
        assert_eq!(
            start,
            Timestamp::from(Utc.with_ymd_and_hms(2026, 11, 30, 0, 0, 0).unwrap())
        );
        let (next, _) = Period::daily().current(at + Duration::hours(9));
        assert_eq!(next, index + 1);
    }
}
