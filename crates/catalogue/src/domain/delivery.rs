//! How a decision provided in the Postfach counts as notified (bekannt gegeben): the procedure's delivery rule.
//!
//! Presets follow the statutes; verify them against the law texts in force when adopting them:
//! - `vwvfg_41_2a` (§ 41 (2a) VwVfG, the default): notified on the day after retrieval; not retrieved within 10
//!   days after the notification was sent, the provision ends and the decision must go out another way.
//! - `sgbx_37_2a` (§ 37 (2a) SGB X, social benefits): the same rule for social administration.
//! - `ao_122a` (§ 122a (4) AO, taxes): notified on the 4th day after the notification was sent (the 3rd before the
//!   2025 reform); no expiry.
//! - `ozg_9` (§ 9 (1) OZG, the account Postfach): notified on the 4th day after the provision (the 3rd in the 2020
//!   text); no expiry.

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize, ToSchema)]
pub enum DeliveryPreset {
    #[default]
    #[serde(rename = "vwvfg_41_2a")]
    Vwvfg41,
    #[serde(rename = "sgbx_37_2a")]
    Sgbx37,
    #[serde(rename = "ao_122a")]
    Ao122a,
    #[serde(rename = "ozg_9")]
    Ozg9,
}

/// The event from which the days of a rule count.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum DeliveryStart {
    /// The first retrieval of the document by the recipient.
    Retrieval,
    /// The notification about the provision, when it was handed to the mail relay.
    Notification,
    /// The provision in the Postfach.
    Provision,
}

/// A procedure's rule as written in its file: a preset, optionally with other days.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DeliveryRule {
    #[serde(default)]
    pub rule: DeliveryPreset,
    /// Days from the start to the deemed notification, where a statute changed them.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub days: Option<u32>,
}

/// A rule with every part spelled out.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, ToSchema)]
pub struct ResolvedRule {
    pub preset: DeliveryPreset,
    pub starts: DeliveryStart,
    /// The decision counts as notified this many days after the start (Europe/Berlin calendar days).
    pub days: u32,
    /// Not retrieved within this many days after the notification was sent, the provision ends.
    pub expires_after_days: Option<u32>,
}

impl DeliveryPreset {
    pub fn as_str(self) -> &'static str {
        match self {
            DeliveryPreset::Vwvfg41 => "vwvfg_41_2a",
            DeliveryPreset::Sgbx37 => "sgbx_37_2a",
            DeliveryPreset::Ao122a => "ao_122a",
            DeliveryPreset::Ozg9 => "ozg_9",
        }
    }

    pub fn parse(text: &str) -> Option<DeliveryPreset> {
        [Self::Vwvfg41, Self::Sgbx37, Self::Ao122a, Self::Ozg9]
            .into_iter()
            .find(|p| p.as_str() == text)
    }

    /// The statute, for documents and the evidence.
    pub fn statute(self) -> &'static str {
        match self {
            DeliveryPreset::Vwvfg41 => "§ 41 Abs. 2a VwVfG",
            DeliveryPreset::Sgbx37 => "§ 37 Abs. 2a SGB X",
            DeliveryPreset::Ao122a => "§ 122a Abs. 4 AO",
            DeliveryPreset::Ozg9 => "§ 9 Abs. 1 OZG",
        }
    }
}

impl DeliveryRule {
    pub fn resolved(&self) -> ResolvedRule {
        let (starts, days, expires_after_days) = match self.rule {
            DeliveryPreset::Vwvfg41 | DeliveryPreset::Sgbx37 => (DeliveryStart::Retrieval, 1, Some(10)),
            DeliveryPreset::Ao122a => (DeliveryStart::Notification, 4, None),
            DeliveryPreset::Ozg9 => (DeliveryStart::Provision, 4, None),
        };
        ResolvedRule {
            preset: self.rule,
            starts,
            days: self.days.unwrap_or(days),
            expires_after_days,
        }
    }
}
