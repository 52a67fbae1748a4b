//! Booking data (Kontierung) as ePayBL accepts it; checked when the catalogue loads so that no payment can fail
//! later on a booking text the cash system refuses.

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Booking {
    /// Budget position, at most 10 characters.
    pub haushaltsstelle: String,
    /// Cost object, at most 10 characters.
    pub objektnummer: String,
    /// Booking text, at most 120 characters of `A–Z 0–9 , . : / + & - * $ % Ä Ö Ü ß` and space.
    pub buchungstext: String,
}

pub const MAX_HAUSHALTSSTELLE: usize = 10;
pub const MAX_OBJEKTNUMMER: usize = 10;
pub const MAX_BUCHUNGSTEXT: usize = 120;

/// ePayBL amounts are decimal(15,2): at most 13 digits before the decimal point (the money type's limit).
pub const MAX_AMOUNT_CENTS: i64 = amtsweg_kernel::Cents::MAX.get();

fn buchungstext_char(c: char) -> bool {
    c.is_ascii_uppercase()
        || c.is_ascii_digit()
        || matches!(
            c,
            ' ' | ',' | '.' | ':' | '/' | '+' | '&' | '-' | '*' | '$' | '%' | 'Ä' | 'Ö' | 'Ü' | 'ß'
        )
}

fn account_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '/')
}

impl Booking {
    /// Every violation as (field, reason).
    pub fn violations(&self) -> Vec<(&'static str, String)> {
        let mut found = Vec::new();
        for (field, value, max) in [
            ("haushaltsstelle", &self.haushaltsstelle, MAX_HAUSHALTSSTELLE),
            ("objektnummer", &self.objektnummer, MAX_OBJEKTNUMMER),
        ] {
            let len = value.chars().count();
            if len == 0 || len > max {
                found.push((
                    field,
                    format!("must be 1 to {max} characters long for ePayBL, is {len}"),
                ));
            }
            if let Some(bad) = value.chars().find(|c| !account_char(*c)) {
                found.push((
                    field,
                    format!("contains `{bad}`; allowed are letters, digits, `.`, `-` and `/`"),
                ));
            }
        }
        let len = self.buchungstext.chars().count();
        if len == 0 || len > MAX_BUCHUNGSTEXT {
            found.push((
                "buchungstext",
                format!("must be 1 to {MAX_BUCHUNGSTEXT} characters long for ePayBL, is {len}"),
            ));
        }
        if let Some(bad) = self.buchungstext.chars().find(|c| !buchungstext_char(*c)) {
            found.push((
                "buchungstext",
                format!("contains `{bad}`; ePayBL allows only A-Z 0-9 , . : / + & - * $ % Ä Ö Ü ß and space"),
            ));
        }
        found
    }
}

#[cfg(test)]
mod tests {
    use super::Booking;

    fn booking(haushaltsstelle: &str, objektnummer: &str, buchungstext: &str) -> Booking {
        Booking {
            haushaltsstelle: haushaltsstelle.into(),
            objektnummer: objektnummer.into(),
            buchungstext: buchungstext.into(),
        }
    }

    #[test]
    fn valid_booking_data_passes() {
        assert!(
            booking("1.1.2.2.01", "43110000", "BEWOHNERPARKAUSWEIS ZONE Ä/12")
                .violations()
                .is_empty()
        );
    }

    #[test]
    fn limits_and_charset_are_enforced() {
        let found = booking("12345678901", "", "Kleinbuchstaben").violations();
        let fields: Vec<_> = found.iter().map(|(field, _)| *field).collect();
        assert_eq!(fields, ["haushaltsstelle", "objektnummer", "buchungstext"]);
        assert!(found[2].1.contains("`l`"));
        assert_eq!(booking("1", "2", &"A".repeat(121)).violations().len(), 1);
    }
}
