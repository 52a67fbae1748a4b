//! What a running module hands to the composition root.
//!
//! The root builds each module once (one line each, with the platform pieces it needs) and then asks every module
//! the same questions: which state do your handlers extract, which jobs do you run, which events do you listen to.
//! A new module is wired by adding it to that list — no extra `app_data` call, no extra registry merge.
//!
//! Routes and personal-data sections are not here: the OpenAPI document and the personal-data registry exist
//! without running services (`amtsweg openapi`, the schema tests), so they stay static functions of each crate,
//! listed once in the root.

use actix_web::web::ServiceConfig;
use amtsweg_events::Subscriptions;
use amtsweg_jobs::Registry;

pub trait Module: Send + Sync {
    /// For logs and start-up messages.
    fn name(&self) -> &'static str;

    /// Adds the state the module's handlers extract (`web::Data<…>`) to each HTTP worker's app.
    fn app_data(&self, _cfg: &mut ServiceConfig) {}

    /// Routes outside the API document (development tools such as the payment simulator), mounted beside the
    /// documented ones.
    fn unlisted_routes(&self, _cfg: &mut ServiceConfig) {}

    /// Job handlers, recurring schedules and ticks.
    fn jobs(&self) -> Registry {
        Registry::new()
    }

    /// Event types whose events run one of this module's job kinds.
    fn subscriptions(&self) -> Subscriptions {
        Subscriptions::new()
    }
}
