//! Fee assessment: the fee schedule of a procedure applied to an application payload.
//!
//! Amounts are integer cents throughout; percentages are computed exactly in decimal and rounded once, at the end
//! of each line, with the rule's rounding mode. A line that comes to nothing is left out.

use amtsweg_kernel::Text;
use rust_decimal::{Decimal, RoundingStrategy};
use serde_json::Value;

use amtsweg_kernel::Cents;

use super::booking::Booking;
use super::procedure::{FeeRule, Rounding};

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FeeLine {
    pub description: Text,
    pub amount: Cents,
    pub booking: Booking,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FeeAssessment {
    pub total: Cents,
    pub lines: Vec<FeeLine>,
}

/// Why a fee could not be computed for a payload that passed the form.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FeeError {
    #[error("field {field} does not hold a usable value")]
    UnusableValue { field: String },
    #[error("field {field} has the value {value}, for which the fee schedule names no amount")]
    NoAmountFor { field: String, value: String },
    #[error("the fee exceeds the largest amount ePayBL accepts")]
    TooLarge,
}

impl FeeError {
    pub fn text(&self) -> Text {
        match self {
            FeeError::UnusableValue { field } => Text::new(
                format!("Das Feld {field} enthält keinen verwendbaren Wert."),
                format!("The field {field} does not hold a usable value."),
            ),
            FeeError::NoAmountFor { field, value } => Text::new(
                format!("Für den Wert „{value}“ im Feld {field} ist keine Gebühr festgelegt."),
                format!("The fee schedule names no amount for the value “{value}” of the field {field}."),
            ),
            FeeError::TooLarge => Text::fixed(
                "Die Gebühr übersteigt den größten zahlbaren Betrag.",
                "The fee exceeds the largest amount that can be paid.",
            ),
        }
    }
}

pub fn assess(rules: &[FeeRule], payload: &Value) -> Result<FeeAssessment, FeeError> {
    let mut lines = Vec::new();
    for rule in rules {
        let amount = match rule {
            FeeRule::Fixed { amount_cents, .. } => Some(*amount_cents),
            FeeRule::PerItem {
                field,
                amount_cents,
                free_items,
                ..
            } => match payload.pointer(field) {
                None | Some(Value::Null) => None,
                Some(value) => {
                    let count = value.as_u64().ok_or_else(|| unusable(field))?;
                    let chargeable = count.saturating_sub(u64::from(*free_items));
                    let amount = i64::try_from(chargeable)
                        .ok()
                        .and_then(|n| n.checked_mul(*amount_cents))
                        .ok_or(FeeError::TooLarge)?;
                    Some(amount)
                }
            },
            FeeRule::Percentage {
                field,
                percent,
                minimum_cents,
                maximum_cents,
                rounding,
                ..
            } => match payload.pointer(field) {
                None | Some(Value::Null) => None,
                Some(value) => {
                    let declared = decimal_of(value).ok_or_else(|| unusable(field))?;
                    let cents = percentage_cents(declared, *percent, *rounding).ok_or(FeeError::TooLarge)?;
                    let cents = minimum_cents.map_or(cents, |min| cents.max(min));
                    Some(maximum_cents.map_or(cents, |max| cents.min(max)))
                }
            },
            FeeRule::ByValue {
                field, amounts_cents, ..
            } => match payload.pointer(field) {
                None | Some(Value::Null) => None,
                Some(value) => {
                    let key = value.as_str().ok_or_else(|| unusable(field))?;
                    let amount = amounts_cents.get(key).ok_or_else(|| FeeError::NoAmountFor {
                        field: field.clone(),
                        value: key.to_owned(),
                    })?;
                    Some(*amount)
                }
            },
        };
        let amount = match amount {
            Some(cents) => Some(Cents::new(cents.max(0)).ok_or(FeeError::TooLarge)?),
            None => None,
        };
        if let Some(amount) = amount.filter(|amount| !amount.is_zero()) {
            lines.push(FeeLine {
                description: rule.description().clone(),
                amount,
                booking: rule.booking().clone(),
            });
        }
    }
    let total = Cents::sum(lines.iter().map(|line| line.amount)).ok_or(FeeError::TooLarge)?;
    Ok(FeeAssessment { total, lines })
}

fn unusable(field: &str) -> FeeError {
    FeeError::UnusableValue {
        field: field.to_owned(),
    }
}

/// A JSON number as an exact decimal (`0.1` stays 0.1, not 0.1000000000000000055…).
fn decimal_of(value: &Value) -> Option<Decimal> {
    let Value::Number(number) = value else { return None };
    let text = number.to_string();
    text.parse::<Decimal>()
        .ok()
        .or_else(|| Decimal::from_scientific(&text).ok())
}

/// `declared` euros × `percent` %, in cents, rounded once.
fn percentage_cents(declared: Decimal, percent: Decimal, rounding: Rounding) -> Option<i64> {
    let cents = declared.checked_mul(percent)?; // euros × percent = cents (× 100 / 100)
    let strategy = match rounding {
        Rounding::HalfUp => RoundingStrategy::MidpointAwayFromZero,
        Rounding::HalfEven => RoundingStrategy::MidpointNearestEven,
        Rounding::Up => RoundingStrategy::AwayFromZero,
        Rounding::Down => RoundingStrategy::ToZero,
    };
    i64::try_from(cents.round_dp_with_strategy(0, strategy)).ok()
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use serde_json::json;

    use super::*;

    fn booking() -> Booking {
        Booking {
            haushaltsstelle: "1".into(),
            objektnummer: "2".into(),
            buchungstext: "GEBUEHR".into(),
        }
    }

    fn text() -> Text {
        Text::fixed("Gebühr", "Fee")
    }

    fn percentage(percent: &str, min: Option<i64>, max: Option<i64>, rounding: Rounding) -> FeeRule {
        FeeRule::Percentage {
            description: text(),
            field: "/kosten".into(),
            percent: percent.parse().unwrap(),
            minimum_cents: min,
            maximum_cents: max,
            rounding,
            booking: booking(),
        }
    }

    fn total(rules: &[FeeRule], payload: Value) -> i64 {
        assess(rules, &payload).unwrap().total.get()
    }

    #[test]
    fn fixed_and_per_item_add_up() {
        let rules = [
            FeeRule::Fixed {
                description: text(),
                amount_cents: 1000,
                booking: booking(),
            },
            FeeRule::PerItem {
                description: text(),
                field: "/anzahl".into(),
                amount_cents: 250,
                free_items: 1,
                booking: booking(),
            },
        ];
        assert_eq!(total(&rules, json!({"anzahl": 3})), 1500);
        let only_free = assess(&rules, &json!({"anzahl": 1})).unwrap();
        assert_eq!(only_free.lines.len(), 1, "a line of zero is left out");
    }

    #[test]
    fn percentages_round_half_up_by_default() {
        // 1234.50 € × 0.5 % = 6.1725 € → 617.25 ct → 617 ct
        assert_eq!(
            total(
                &[percentage("0.5", None, None, Rounding::HalfUp)],
                json!({"kosten": 1234.5})
            ),
            617
        );
        // 1000.10 € × 0.25 % = 250.025 ct → 250 (half up would only move .5)
        assert_eq!(
            total(
                &[percentage("0.25", None, None, Rounding::HalfUp)],
                json!({"kosten": 1000.1})
            ),
            250
        );
        // 0.1 € × 5 % = 0.5 ct: half up → 1, half even → 0, down → 0, up → 1
        for (rounding, expected) in [
            (Rounding::HalfUp, 1),
            (Rounding::HalfEven, 0),
            (Rounding::Down, 0),
            (Rounding::Up, 1),
        ] {
            assert_eq!(
                total(&[percentage("5", None, None, rounding)], json!({"kosten": 0.1})),
                expected,
                "{rounding:?}"
            );
        }
    }

    #[test]
    fn percentages_stay_within_minimum_and_maximum() {
        let rule = [percentage("0.5", Some(5_000), Some(2_500_000), Rounding::HalfUp)];
        assert_eq!(total(&rule, json!({"kosten": 100})), 5_000, "minimum applies");
        assert_eq!(
            total(&rule, json!({"kosten": 0})),
            5_000,
            "a declared zero still costs the minimum"
        );
        assert_eq!(total(&rule, json!({"kosten": 200_000})), 100_000);
        assert_eq!(
            total(&rule, json!({"kosten": 900_000_000})),
            2_500_000,
            "maximum applies"
        );
        assert_eq!(
            assess(&rule, &json!({})).unwrap().lines.len(),
            0,
            "no declared value, no line"
        );
    }

    #[test]
    fn by_value_picks_the_amount_of_the_chosen_option() {
        let rule = [FeeRule::ByValue {
            description: text(),
            field: "/art".into(),
            amounts_cents: BTreeMap::from([("einfach".into(), 500), ("erweitert".into(), 1000)]),
            booking: booking(),
        }];
        assert_eq!(total(&rule, json!({"art": "erweitert"})), 1000);
        assert!(matches!(
            assess(&rule, &json!({"art": "gold"})),
            Err(FeeError::NoAmountFor { .. })
        ));
    }

    #[test]
    fn absurd_amounts_are_refused() {
        let rule = [FeeRule::PerItem {
            description: text(),
            field: "/n".into(),
            amount_cents: Cents::MAX.get(),
            free_items: 0,
            booking: booking(),
        }];
        assert_eq!(assess(&rule, &json!({"n": 2})), Err(FeeError::TooLarge));
    }
}
