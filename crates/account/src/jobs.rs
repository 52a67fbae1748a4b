//! The account service as a module of the composition root: its handlers' state and its background work
//! (flagging unused accounts once a day).

use std::sync::Arc;

use actix_web::web::{Data, ServiceConfig};
use amtsweg_auth::SessionGuard;
use amtsweg_jobs::{JobError, Period, Registry, Schedule, handler_fn};
use amtsweg_module::Module;
use serde_json::json;

use crate::{AccountService, Sessions};

pub const FLAG_INACTIVE: &str = "account.flag_inactive";

impl Module for AccountService {
    fn name(&self) -> &'static str {
        "account"
    }

    /// The service, and the session check every authenticating extractor asks.
    fn app_data(&self, cfg: &mut ServiceConfig) {
        let guard: Arc<dyn SessionGuard> = Arc::new(Sessions(self.clone()));
        cfg.app_data(Data::new(self.clone()))
            .app_data(Data::<dyn SessionGuard>::from(guard));
    }

    fn jobs(&self) -> Registry {
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
