//! Antragsmanagement, the citizen's side: a citizen (or an organisation through its members) fills in an
//! application for a catalogue procedure, attaches documents, submits it once and gets the final case number at
//! once; the business status and its timeline follow the workflow the procedure names.

mod case;
mod case_number;
pub mod clients;
pub mod decision;
pub mod delivery;
mod error;
pub mod events;
pub mod fees;
pub mod fiction;
mod form;
pub mod http;
pub mod payments;
mod privacy;
pub mod receipt;
pub mod requests;
mod schema;
pub mod search;
pub mod service;
pub mod staff;
mod staff_http;
pub mod statistics;
mod templates;
mod timers;
pub mod versions;
pub mod view;
pub mod written_form;

use actix_web::web::{Data, ServiceConfig};
use amtsweg_workflow::{Effect, Workflows};

pub use error::ApplicationError;
pub use http::configure;
pub use privacy::ApplicationsPersonalData;
pub use service::{ApplicationDeps, ApplicationService, ApplicationSettings};

/// What the applications module needs of the workflows beyond the general check: every `notify:` names one of its
/// mail templates and every `publish:` one of its event types. One line per problem.
pub fn check_workflows(workflows: &Workflows) -> Vec<String> {
    let mut problems = Vec::new();
    for workflow in workflows.iter() {
        let definition = &workflow.definition;
        let effects = definition
            .states
            .iter()
            .flat_map(|s| s.on_enter.iter())
            .chain(definition.transitions.iter().flat_map(|t| t.effects.iter()));
        for effect in effects {
            match effect {
                Effect::Notify(name) if !templates::NOTICES.contains(&name.as_str()) => {
                    problems.push(format!(
                        "workflow {:?}: notify: {name:?} is no mail template ({})",
                        definition.id,
                        templates::NOTICES.join(", ")
                    ))
                }
                Effect::Publish(name) if events::milestone_type(name).is_none() => problems.push(format!(
                    "workflow {:?}: publish: {name:?} is no event of the applications module",
                    definition.id
                )),
                _ => {}
            }
        }
    }
    problems
}

/// Every procedure's `prefill:` maps a field of its form to a profile attribute that can be shared. One line per
/// problem.
pub fn check_prefill(catalogue: &amtsweg_catalogue::Catalogue) -> Vec<String> {
    let mut problems = Vec::new();
    for procedure in catalogue.iter() {
        let p = &procedure.procedure;
        for (pointer, attribute) in &p.prefill {
            if !amtsweg_account::directory::PREFILL_ATTRIBUTES.contains(&attribute.as_str()) {
                problems.push(format!(
                    "procedure {:?}: prefill: {pointer}: {attribute:?} is no profile attribute ({})",
                    p.id,
                    amtsweg_account::directory::PREFILL_ATTRIBUTES.join(", ")
                ));
            }
            if !p.form.ui.iter().any(|hint| &hint.field == pointer) {
                problems.push(format!(
                    "procedure {:?}: prefill: {pointer:?} is no field of the form",
                    p.id
                ));
            }
        }
    }
    problems
}

impl amtsweg_module::Module for ApplicationService {
    fn name(&self) -> &'static str {
        "applications"
    }

    fn app_data(&self, cfg: &mut ServiceConfig) {
        cfg.app_data(Data::new(self.clone()));
    }

    /// Timers (the expiry transitions of reply windows and payment periods), receipts and settled payments.
    fn jobs(&self) -> amtsweg_jobs::Registry {
        self.timer_jobs()
            .merge(self.receipt_jobs())
            .merge(self.payment_jobs())
            .merge(self.delivery_jobs())
    }

    /// A settled payment lets a case paid before processing go on; the delivery of its decision shows in the
    /// timeline and closes it.
    fn subscriptions(&self) -> amtsweg_events::Subscriptions {
        amtsweg_mailroom::events::ALL.iter().fold(
            amtsweg_events::Subscriptions::new().on(&amtsweg_payment::events::PAID, payments::SETTLED),
            |all, event| all.on(event, delivery::DELIVERY_STEP),
        )
    }
}
