//! Which platform takes payments and how long an online attempt lasts.

use serde::Deserialize;

use crate::epaybl::EpayblSettings;
use crate::xbezahldienste::XbezahldiensteSettings;

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ProviderChoice {
    /// The ePayBL simulator in this process, under `/sim/epaybl` — for development only.
    #[default]
    Simulator,
    /// A real ePayBL installation (`[payment.epaybl]`).
    Epaybl,
    /// A payment service speaking XBezahldienste (`[payment.xbezahldienste]`).
    Xbezahldienste,
}

/// Which interface the in-process simulator is spoken to with.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SimulatorProtocol {
    #[default]
    Epaybl,
    Xbezahldienste,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct PaymentSettings {
    pub provider: ProviderChoice,
    pub epaybl: Option<EpayblSettings>,
    pub xbezahldienste: Option<XbezahldiensteSettings>,
    /// With the simulator: which of its interfaces the service uses.
    pub simulator_protocol: SimulatorProtocol,
    /// Where the platform and the payer's browser reach this service (notifications, the return page). Unset:
    /// `http://{server.host}:{server.port}`.
    pub public_url: Option<String>,
    /// How long a Paypage session lasts before the online attempt ends unpaid (GOV.UK Pay: 90 minutes).
    pub paypage_minutes: u32,
    /// Days from the request until a Kassenzeichen falls due.
    pub due_days: u32,
}

impl Default for PaymentSettings {
    fn default() -> Self {
        Self {
            provider: ProviderChoice::Simulator,
            epaybl: None,
            xbezahldienste: None,
            simulator_protocol: SimulatorProtocol::Epaybl,
            public_url: None,
            paypage_minutes: 90,
            due_days: 14,
        }
    }
}

impl PaymentSettings {
    /// What keeps the settings from being used, one line each.
    pub fn problems(&self) -> Vec<String> {
        let mut problems = Vec::new();
        if self.provider == ProviderChoice::Epaybl && self.epaybl.is_none() {
            problems.push("payment.provider = \"epaybl\" needs [payment.epaybl]".into());
        }
        if self.provider == ProviderChoice::Xbezahldienste && self.xbezahldienste.is_none() {
            problems.push("payment.provider = \"xbezahldienste\" needs [payment.xbezahldienste]".into());
        }
        if self.paypage_minutes == 0 {
            problems.push("payment.paypage_minutes must be at least 1".into());
        }
        problems
    }
}
