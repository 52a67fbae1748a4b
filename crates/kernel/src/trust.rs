//! Trust levels (Vertrauensniveaus) after BSI TR-03107-1 / eIDAS, ordered from weakest to strongest.

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::i18n::Text;

/// `basic`: user name and password; `substantial`: a second factor or a certificate; `high`: an eID card.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum TrustLevel {
    Basic,
    Substantial,
    High,
}

impl TrustLevel {
    pub fn as_str(self) -> &'static str {
        match self {
            TrustLevel::Basic => "basic",
            TrustLevel::Substantial => "substantial",
            TrustLevel::High => "high",
        }
    }

    /// The level an `acr` value names; anything unknown counts as the weakest.
    pub fn from_acr(acr: &str) -> TrustLevel {
        match acr {
            "high" => TrustLevel::High,
            "substantial" => TrustLevel::Substantial,
            _ => TrustLevel::Basic,
        }
    }

    pub fn label(self) -> Text {
        match self {
            TrustLevel::Basic => Text::fixed(
                "niedrig (Benutzername und Passwort)",
                "basic (user name and password)",
            ),
            TrustLevel::Substantial => {
                Text::fixed("substanziell (zweiter Faktor)", "substantial (second factor)")
            }
            TrustLevel::High => Text::fixed("hoch (Online-Ausweis)", "high (eID card)"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::TrustLevel;

    #[test]
    fn levels_are_ordered() {
        assert!(TrustLevel::Basic < TrustLevel::Substantial);
        assert!(TrustLevel::Substantial < TrustLevel::High);
    }
}
