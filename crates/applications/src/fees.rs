//! The fee of a case line by line, with the booking data the payment needs: assessed from the catalogue's fee
//! rules at submission; where the unit sets the fee with its decision, one line of the procedure's `decision_fee`
//! rule takes the assessment's place.

use amtsweg_catalogue::domain::procedure::DecisionFee;
use amtsweg_catalogue::domain::{Booking, FeeLine};
use amtsweg_kernel::{Cents, Lang, Text};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

/// A fee line as recorded with the case.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct Recorded {
    description: Text,
    amount_cents: i64,
    booking: Booking,
}

/// A fee line as staff see it.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct FeeLineView {
    pub description: String,
    pub amount_cents: i64,
    pub booking: Booking,
}

fn json(lines: &[Recorded]) -> String {
    serde_json::to_string(lines).unwrap_or_else(|_| "[]".into())
}

/// The assessed lines, for the case.
pub(crate) fn lines_json(lines: &[FeeLine]) -> String {
    json(
        &lines
            .iter()
            .map(|line| Recorded {
                description: line.description.clone(),
                amount_cents: line.amount.get(),
                booking: line.booking.clone(),
            })
            .collect::<Vec<_>>(),
    )
}

/// The one line of a fee set with the decision.
pub(crate) fn decided_json(rule: &DecisionFee, fee: Cents) -> String {
    json(&[Recorded {
        description: rule.description.clone(),
        amount_cents: fee.get(),
        booking: rule.booking.clone(),
    }])
}

/// The recorded lines with an amount, as booking lines of a payment.
pub(crate) fn booking_lines(recorded: Option<&str>) -> Vec<amtsweg_payment::BookingLine> {
    recorded_lines(recorded)
        .into_iter()
        .filter(|line| line.amount_cents > 0)
        .map(|line| amtsweg_payment::BookingLine {
            amount_cents: line.amount_cents,
            booking: line.booking,
        })
        .collect()
}

fn recorded_lines(recorded: Option<&str>) -> Vec<Recorded> {
    recorded
        .and_then(|text| serde_json::from_str(text).ok())
        .unwrap_or_default()
}

/// The recorded lines in the reader's language.
pub(crate) fn view(recorded: Option<&str>, lang: Lang) -> Vec<FeeLineView> {
    recorded_lines(recorded)
        .into_iter()
        .map(|line| FeeLineView {
            description: line.description.get(lang).to_owned(),
            amount_cents: line.amount_cents,
            booking: line.booking,
        })
        .collect()
}
