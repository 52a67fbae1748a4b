//! ePayment: citizens pay fees through Saxony's payment base component (BaK ZV, the product ePayBL).
//!
//! A payment knows its owner only as an opaque reference plus the unit it is for: the requesting module calls
//! [`PaymentService::request`] in its own transaction and subscribes to the payment [`events`]. The flow is always
//! the platform's: create the Kassenzeichen with its bookings, send the payer to the Paypage, and settle only on
//! the platform's answer to a status query — never because of a return redirect or a notification's content.
//! A recurring job asks about open payments (with backoff) and ends Paypage sessions that ran out.
//!
//! Modules: [`model`] (states and limits, pure), [`provider`] (the connector trait), [`epaybl`] (the REST
//! interface), [`sim`] (a simulator of it), [`service`] (the use cases), [`http`] (notifications and the return
//! page).

pub mod epaybl;
mod error;
pub mod events;
pub mod http;
pub mod model;
pub mod provider;
mod schema;
pub mod service;
pub mod settings;
pub mod sim;
pub mod staff;
pub mod xbezahldienste;

use std::sync::Arc;

use actix_web::web::{Data, ServiceConfig};
use amtsweg_db::Database;
use amtsweg_jobs::{JobError, Period, Registry, Schedule, handler_fn};
use amtsweg_kernel::SharedClock;
use serde_json::json;

pub use http::configure;
pub use model::{BookingLine, State};
pub use service::{ChangedBy, PaymentError, PaymentRequest, PaymentService, PaymentView, Started};
pub use settings::{PaymentSettings, ProviderChoice, SimulatorProtocol};

use crate::epaybl::{Epaybl, EpayblSettings};
use crate::provider::Provider;
use crate::service::Inner;
use crate::sim::{SimSettings, Simulator};
use crate::xbezahldienste::{Xbezahldienste, XbezahldiensteSettings};

pub const RECONCILE: &str = "payment.reconcile";

/// The staff role this module's routes check (besides a unit's `supervisor`).
pub fn access() -> amtsweg_auth::Access {
    amtsweg_auth::Access::new().role(amtsweg_auth::RoleDefinition {
        name: staff::CASH_OFFICE,
        reach: amtsweg_auth::RoleReach::Units,
        description: "The cash office: payments, offline receipts, reviews, refunds and the daily report",
    })
}

/// What the payment service is built from.
pub struct PaymentDeps {
    pub db: Database,
    pub clock: SharedClock,
    pub settings: PaymentSettings,
    /// Where the platform and the payer's browser reach this service.
    pub public_url: String,
}

impl PaymentService {
    pub fn new(deps: PaymentDeps) -> Result<PaymentService, String> {
        let problems = deps.settings.problems();
        if !problems.is_empty() {
            return Err(problems.join("\n"));
        }
        let (provider, simulator): (Arc<dyn Provider>, Option<Simulator>) = match deps.settings.provider {
            ProviderChoice::Simulator => {
                let secret = match &deps.settings.simulator_secret {
                    Some(secret) => secrecy::ExposeSecret::expose_secret(secret).to_owned(),
                    None => hex::encode(rand::random::<[u8; 32]>()),
                };
                let simulator = Simulator::new(
                    SimSettings {
                        mandant: "SIMULATOR".into(),
                        bewirtschafter: "00000000".into(),
                        secret: secret.clone(),
                        base_path: "/sim/epaybl".into(),
                        originator_id: "SIMULATOR".into(),
                        endpoint_id: "AMTSWEG".into(),
                    },
                    &deps.public_url,
                );
                let connector: Arc<dyn Provider> = match deps.settings.simulator_protocol {
                    SimulatorProtocol::Epaybl => Arc::new(Epaybl::new(EpayblSettings {
                        base_url: simulator.base_url(),
                        mandant: "SIMULATOR".into(),
                        bewirtschafter: "00000000".into(),
                        secret: secret.into(),
                        kennzeichen_mahnverfahren: "11000".into(),
                        zahlverfahrencodes: Vec::new(),
                        kassenzeichen_len: 12,
                        client_certificate: None,
                        client_key: None,
                        ca_certificate: None,
                    })?),
                    SimulatorProtocol::Xbezahldienste => {
                        Arc::new(Xbezahldienste::new(XbezahldiensteSettings {
                            base_url: simulator.base_url(),
                            originator_id: "SIMULATOR".into(),
                            endpoint_id: "AMTSWEG".into(),
                            kassenzeichen_len: 12,
                            client_certificate: None,
                            client_key: None,
                            ca_certificate: None,
                        })?)
                    }
                };
                tracing::warn!(
                    "payments go to the ePayBL SIMULATOR under /sim/epaybl — no real payment is taken; configure [payment] provider = \"epaybl\" for production"
                );
                (connector, Some(simulator))
            }
            ProviderChoice::Epaybl => {
                let settings = deps.settings.epaybl.clone().ok_or("payment.epaybl is missing")?;
                (Arc::new(Epaybl::new(settings)?), None)
            }
            ProviderChoice::Xbezahldienste => {
                let settings = deps
                    .settings
                    .xbezahldienste
                    .clone()
                    .ok_or("payment.xbezahldienste is missing")?;
                (Arc::new(Xbezahldienste::new(settings)?), None)
            }
        };
        Ok(PaymentService {
            inner: Arc::new(Inner {
                db: deps.db,
                clock: deps.clock,
                provider,
                settings: deps.settings,
                public_url: deps.public_url,
                simulator,
            }),
        })
    }

    /// The configured provider's name, as in its notification route.
    pub fn provider_name(&self) -> &'static str {
        self.inner.provider.name()
    }
}

impl amtsweg_module::Module for PaymentService {
    fn name(&self) -> &'static str {
        "payment"
    }

    fn app_data(&self, cfg: &mut ServiceConfig) {
        cfg.app_data(Data::new(self.clone()));
    }

    fn unlisted_routes(&self, cfg: &mut ServiceConfig) {
        if let Some(simulator) = &self.inner.simulator {
            simulator.configure(cfg);
        }
    }

    /// Reconciliation: every minute, the payments due for a status query.
    fn jobs(&self) -> Registry {
        let service = self.clone();
        Registry::new()
            .handler(handler_fn(RECONCILE, 5, move |_job| {
                let service = service.clone();
                async move {
                    match service.reconcile().await {
                        Ok(checked) => Ok(Some(json!({"checked": checked}))),
                        Err(err) => Err(JobError::Transient(err.to_string())),
                    }
                }
            }))
            .schedule(Schedule {
                name: "payment-reconciliation",
                period: Period::Every(chrono::Duration::minutes(1)),
                kind: RECONCILE,
                payload: json!({}),
            })
    }
}
