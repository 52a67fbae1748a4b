//! Money: amounts in euro cents, never negative, at most what ePayBL takes (decimal(15,2): 13 digits before the
//! decimal point), with arithmetic that says when it would leave that range instead of wrapping or saturating.

use std::fmt;

use serde::{Deserialize, Serialize};

use crate::i18n::Lang;

/// An amount of money in euro cents.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default, Serialize, Deserialize)]
#[serde(try_from = "i64", into = "i64")]
pub struct Cents(i64);

/// An amount outside 0 ..= [`Cents::MAX`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("{0} cents is not an amount that can be paid (0 to {max})", max = Cents::MAX.0)]
pub struct OutOfRange(pub i64);

impl Cents {
    pub const ZERO: Cents = Cents(0);
    /// The largest amount ePayBL accepts: 9,999,999,999,999.99 €.
    pub const MAX: Cents = Cents(999_999_999_999_999);

    pub const fn new(cents: i64) -> Option<Cents> {
        if cents >= 0 && cents <= Cents::MAX.0 {
            Some(Cents(cents))
        } else {
            None
        }
    }

    pub const fn get(self) -> i64 {
        self.0
    }

    pub fn is_zero(self) -> bool {
        self.0 == 0
    }

    pub fn checked_add(self, other: Cents) -> Option<Cents> {
        self.0.checked_add(other.0).and_then(Cents::new)
    }

    pub fn checked_mul(self, factor: u64) -> Option<Cents> {
        i64::try_from(factor)
            .ok()
            .and_then(|factor| self.0.checked_mul(factor))
            .and_then(Cents::new)
    }

    /// The sum of amounts, if it stays payable.
    pub fn sum(amounts: impl IntoIterator<Item = Cents>) -> Option<Cents> {
        amounts
            .into_iter()
            .try_fold(Cents::ZERO, |sum, amount| sum.checked_add(amount))
    }

    /// As people read it: `1.234,50 €` in German, `€1,234.50` in English.
    pub fn display(self, lang: Lang) -> String {
        let euros = self.0 / 100;
        let cents = self.0 % 100;
        let digits = euros.to_string();
        let separator = match lang {
            Lang::De => '.',
            Lang::En => ',',
        };
        let mut grouped = String::new();
        for (i, digit) in digits.chars().enumerate() {
            if i > 0 && (digits.len() - i).is_multiple_of(3) {
                grouped.push(separator);
            }
            grouped.push(digit);
        }
        match lang {
            Lang::De => format!("{grouped},{cents:02} €"),
            Lang::En => format!("€{grouped}.{cents:02}"),
        }
    }
}

impl TryFrom<i64> for Cents {
    type Error = OutOfRange;

    fn try_from(cents: i64) -> Result<Cents, OutOfRange> {
        Cents::new(cents).ok_or(OutOfRange(cents))
    }
}

impl From<Cents> for i64 {
    fn from(cents: Cents) -> i64 {
        cents.0
    }
}

impl fmt::Display for Cents {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} ct", self.0)
    }
}

impl utoipa::PartialSchema for Cents {
    fn schema() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
        utoipa::openapi::ObjectBuilder::new()
            .schema_type(utoipa::openapi::schema::Type::Integer)
            .format(Some(utoipa::openapi::SchemaFormat::KnownFormat(
                utoipa::openapi::KnownFormat::Int64,
            )))
            .minimum(Some(0))
            .maximum(Some(Cents::MAX.0))
            .description(Some("Euro cents"))
            .into()
    }
}

impl utoipa::ToSchema for Cents {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn amounts_stay_within_what_can_be_paid() {
        assert_eq!(Cents::new(-1), None);
        assert_eq!(Cents::new(Cents::MAX.get() + 1), None);
        let fee = Cents::new(3_050).unwrap();
        assert_eq!(fee.checked_add(fee), Cents::new(6_100));
        assert_eq!(fee.checked_mul(3), Cents::new(9_150));
        assert_eq!(Cents::MAX.checked_add(Cents::new(1).unwrap()), None);
        assert_eq!(Cents::MAX.checked_mul(2), None);
        assert_eq!(Cents::sum([fee, fee, Cents::ZERO]), Cents::new(6_100));
    }

    #[test]
    fn amounts_read_as_people_write_them() {
        let amount = Cents::new(123_450).unwrap();
        assert_eq!(amount.display(Lang::De), "1.234,50 €");
        assert_eq!(amount.display(Lang::En), "€1,234.50");
        assert_eq!(Cents::new(5).unwrap().display(Lang::De), "0,05 €");
        assert_eq!(Cents::MAX.display(Lang::De), "9.999.999.999.999,99 €");
    }

    #[test]
    fn json_carries_plain_integers_and_refuses_the_impossible() {
        assert_eq!(serde_json::to_string(&Cents::new(250).unwrap()).unwrap(), "250");
        assert_eq!(
            serde_json::from_str::<Cents>("250").unwrap(),
            Cents::new(250).unwrap()
        );
        assert!(serde_json::from_str::<Cents>("-1").is_err());
    }
}
