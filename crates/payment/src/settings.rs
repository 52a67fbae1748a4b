//! Which platform takes payments and how long an online attempt lasts.

use secrecy::SecretString;
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
    /// With the simulator: the secret it signs notifications with (random at every start when unset). Set it to
    /// send notifications by hand during development, or from a benchmark.
    pub simulator_secret: Option<SecretString>,
    /// Where the platform and the payer's browser reach this service (notifications, the return page). Unset:
    /// `http://{server.host}:{server.port}`.
    pub public_url: Option<String>,
    /// Kassenzeichen assigned by the cash office's own format instead of the platform (ePayBL takes them as
    /// `kassenzeichennummer`): `{year}` and `{seq}` / `{seq:0N}`, letters and digits only, e.g. `LE{year}{seq:08}`.
    pub kassenzeichen_format: Option<String>,
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
            simulator_secret: None,
            kassenzeichen_format: None,
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
        if let Some(format) = &self.kassenzeichen_format {
            let longest = longest_kassenzeichen(format);
            if !amtsweg_kernel::numbering::valid_format(format)
                || !crate::model::valid_kassenzeichen(&longest)
            {
                problems.push(format!(
                    "payment.kassenzeichen_format = {format:?} must contain {{seq}} or {{seq:0N}} and give 2 to 30 letters and digits (e.g. {longest:?})"
                ));
            }
            if self.provider == ProviderChoice::Xbezahldienste {
                problems
                    .push("payment.kassenzeichen_format: XBezahldienste assigns its own references".into());
            }
        }
        if self.paypage_minutes == 0 {
            problems.push("payment.paypage_minutes must be at least 1".into());
        }
        problems
    }
}

/// The longest Kassenzeichen a format gives: the year 9999 and a sequence number of its padded width (or twelve
/// digits).
pub fn longest_kassenzeichen(format: &str) -> String {
    let width = format
        .split("{seq:0")
        .nth(1)
        .and_then(|rest| rest.split('}').next())
        .and_then(|digits| digits.parse::<u32>().ok())
        .unwrap_or(12)
        .clamp(1, 18);
    amtsweg_kernel::numbering::render(format, "", 9999, 10i64.pow(width) - 1)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_local_format_must_give_a_kassenzeichen_the_platform_takes() {
        assert_eq!(longest_kassenzeichen("LE{year}{seq:08}"), "LE999999999999");
        let mut settings = PaymentSettings {
            kassenzeichen_format: Some("LE{year}{seq:08}".into()),
            ..PaymentSettings::default()
        };
        assert!(settings.problems().is_empty());
        for bad in ["LE-{year}-{seq:08}", "LE{year}", "LE {seq}"] {
            settings.kassenzeichen_format = Some(bad.into());
            assert_eq!(settings.problems().len(), 1, "{bad}");
        }
    }
}
