//! The account service's background work: flagging unused accounts once a day.

use amtsweg_jobs::{JobError, Period, Registry, Schedule, handler_fn};
use serde_json::json;

use crate::AccountService;

pub const FLAG_INACTIVE: &str = "account.flag_inactive";

impl AccountService {
    /// The job handlers and schedules of the account service.
    pub fn jobs(&self) -> Registry {
        let service = self.clone();
        Registry::new()
            .handler(handler_fn(FLAG_INACTIVE, 5, move |_job| {
                let service = service.clone();
                async move {
                    match service.flag_inactive_accounts().await {
                        Ok(flagged) => Ok(Some(json!({"flagged": flagged}))),
                        Err(err) => Err(JobError::Transient(err.to_string())),
                    }
                }
            }))
            .schedule(Schedule {
                name: "flag-inactive-accounts",
                period: Period::daily(),
                kind: FLAG_INACTIVE,
                payload: json!({}),
            })
    }
}
