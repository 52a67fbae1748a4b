//! The payment's rules as pure code: its states, what an observation of the provider does to a state, and the
//! limits ePayBL sets on what we send (checked before any call).

use amtsweg_catalogue::domain::Booking;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

/// ePayBL's `transaktionsnummer` / `EShopTransaktionsNr` take 30 characters (XBezahldienste' `requestId` 36).
pub const MAX_TRANSACTION_NUMBER: usize = 30;
/// The SEPA remittance line `Kassenzeichen + " " + purpose` takes 27 characters.
pub const MAX_REMITTANCE: usize = 27;
/// ePayBL's `beschreibung` (XBezahldienste' `description` takes 250).
pub const MAX_DESCRIPTION: usize = 250;
/// Kassenzeichen are 2 to 30 letters and digits.
pub const MAX_KASSENZEICHEN: usize = 30;

/// Where a payment stands. The history of a payment is never rewritten: each change adds a step.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum State {
    /// Recorded; not yet at the provider.
    Initial,
    /// At the provider: the Paypage is open, or the Kassenzeichen awaits a bank transfer.
    Pending,
    /// Settled: the provider (or the cash office, for a bank transfer) confirmed the full amount.
    Paid,
    /// The citizen aborted on the Paypage.
    Cancelled,
    /// The provider could not take the payment.
    Failed,
    /// The online attempt ended unpaid (the Paypage session ran out). The debt stays: the Kassenzeichen is still
    /// payable by bank transfer and an offline receipt settles it.
    Expired,
    /// Something does not add up (amount mismatch, unknown Kassenzeichen, paid after the attempt ended); the cash
    /// office decides.
    Review,
}

impl State {
    pub fn as_str(self) -> &'static str {
        match self {
            State::Initial => "initial",
            State::Pending => "pending",
            State::Paid => "paid",
            State::Cancelled => "cancelled",
            State::Failed => "failed",
            State::Expired => "expired",
            State::Review => "review",
        }
    }

    pub fn parse(text: &str) -> Option<State> {
        Some(match text {
            "initial" => State::Initial,
            "pending" => State::Pending,
            "paid" => State::Paid,
            "cancelled" => State::Cancelled,
            "failed" => State::Failed,
            "expired" => State::Expired,
            "review" => State::Review,
            _ => return None,
        })
    }

    /// Whether an online attempt may (still) be started or resumed.
    pub fn payable_online(self) -> bool {
        matches!(
            self,
            State::Initial | State::Pending | State::Cancelled | State::Failed | State::Expired
        )
    }
}

/// What the provider says about a payment when asked.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Observed {
    /// Open: the Paypage is active, nothing paid yet.
    Open,
    /// Paid with this amount.
    Paid {
        amount_cents: i64,
    },
    Cancelled,
    Failed,
    /// The provider does not know the Kassenzeichen.
    Unknown,
}

/// Why a payment changed state, as recorded in its history.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reason {
    Requested,
    AtProvider,
    Confirmed,
    Aborted,
    ProviderFailed,
    AmountMismatch,
    UnknownKassenzeichen,
    PaidAfterEnd,
    SessionEnded,
    OfflineReceipt,
    Resolved,
    /// The owner no longer asks for it (the application was withdrawn or discontinued unpaid).
    OwnerClosed,
}

impl Reason {
    pub fn as_str(self) -> &'static str {
        match self {
            Reason::Requested => "requested",
            Reason::AtProvider => "at_provider",
            Reason::Confirmed => "confirmed_by_provider",
            Reason::Aborted => "aborted_by_payer",
            Reason::ProviderFailed => "failed_at_provider",
            Reason::AmountMismatch => "amount_mismatch",
            Reason::UnknownKassenzeichen => "unknown_kassenzeichen",
            Reason::PaidAfterEnd => "paid_after_attempt_ended",
            Reason::SessionEnded => "paypage_session_ended",
            Reason::OfflineReceipt => "offline_receipt",
            Reason::Resolved => "resolved_by_cash_office",
            Reason::OwnerClosed => "closed_by_owner",
        }
    }
}

/// The state an observation leads to from `current`, or `None` when nothing changes. Final states stay; an
/// observation that contradicts one goes to review instead of rewriting it. Because every notification only
/// triggers a status query, any order of notifications ends in the state the provider reports last.
pub fn observe(current: State, expected_cents: i64, observed: Observed) -> Option<(State, Reason)> {
    use State::*;
    let change = match (current, observed) {
        (Paid | Review, _) => None,
        (_, Observed::Unknown) => Some((Review, Reason::UnknownKassenzeichen)),
        (Initial, Observed::Open) => Some((Pending, Reason::AtProvider)),
        (Pending, Observed::Open) => None,
        (Cancelled | Failed | Expired, Observed::Open) => None,
        (Initial | Pending, Observed::Paid { amount_cents }) if amount_cents == expected_cents => {
            Some((Paid, Reason::Confirmed))
        }
        (Initial | Pending, Observed::Paid { .. }) => Some((Review, Reason::AmountMismatch)),
        (Cancelled | Failed | Expired, Observed::Paid { .. }) => Some((Review, Reason::PaidAfterEnd)),
        (Initial | Pending, Observed::Cancelled) => Some((Cancelled, Reason::Aborted)),
        (Initial | Pending, Observed::Failed) => Some((Failed, Reason::ProviderFailed)),
        (Cancelled | Failed | Expired, Observed::Cancelled | Observed::Failed) => None,
    };
    change.filter(|(to, _)| *to != current)
}

/// A booking line of a payment: the amount and where the cash system books it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct BookingLine {
    pub amount_cents: i64,
    #[serde(flatten)]
    pub booking: Booking,
}

/// A limit the provider would refuse, found before any call: (field, code, reason).
pub type Violation = (String, &'static str, String);

/// Every limit `amount`, `purpose`, `description` and `bookings` break, with the Kassenzeichen's longest form
/// (`kassenzeichen_len`) reserved in the remittance line.
pub fn violations(
    amount_cents: i64,
    purpose: &str,
    description: &str,
    bookings: &[BookingLine],
    kassenzeichen_len: usize,
) -> Vec<Violation> {
    let mut found = Vec::new();
    if amount_cents <= 0 || amount_cents > amtsweg_catalogue::domain::booking::MAX_AMOUNT_CENTS {
        found.push((
            "/amount_cents".into(),
            "amount_out_of_range",
            format!("{amount_cents} is not an amount ePayBL takes (1 cent to decimal(15,2))"),
        ));
    }
    let room = MAX_REMITTANCE.saturating_sub(kassenzeichen_len + 1);
    let len = purpose.chars().count();
    if len == 0 || len > room {
        found.push((
            "/purpose".into(),
            "purpose_too_long",
            format!(
                "the purpose must be 1 to {room} characters so that Kassenzeichen ({kassenzeichen_len}) and purpose fit the {MAX_REMITTANCE} of a transfer, is {len}"
            ),
        ));
    }
    if let Some(bad) = purpose.chars().find(|c| !remittance_char(*c)) {
        found.push((
            "/purpose".into(),
            "purpose_charset",
            format!(
                "contains `{bad}`; a SEPA transfer carries letters, digits and / - ? : ( ) . , ' + space"
            ),
        ));
    }
    let len = description.chars().count();
    if len == 0 || len > MAX_DESCRIPTION {
        found.push((
            "/description".into(),
            "description_too_long",
            format!("must be 1 to {MAX_DESCRIPTION} characters, is {len}"),
        ));
    }
    if bookings.is_empty() || bookings.len() > 99 {
        found.push((
            "/bookings".into(),
            "bookings_count",
            format!("1 to 99 booking lines are needed, are {}", bookings.len()),
        ));
    }
    for (i, line) in bookings.iter().enumerate() {
        for (field, reason) in line.booking.violations() {
            found.push((format!("/bookings/{i}/{field}"), "booking_invalid", reason));
        }
        if line.amount_cents <= 0 {
            found.push((
                format!("/bookings/{i}/amount_cents"),
                "amount_out_of_range",
                "a booking line needs a positive amount".into(),
            ));
        }
    }
    let sum = bookings
        .iter()
        .try_fold(0i64, |sum, line| sum.checked_add(line.amount_cents));
    if sum != Some(amount_cents) {
        found.push((
            "/bookings".into(),
            "bookings_sum",
            format!("the booking lines add up to {sum:?} cents, the payment is {amount_cents}"),
        ));
    }
    found
}

/// The characters of the SEPA remittance set (without letters outside A–Z).
fn remittance_char(c: char) -> bool {
    c.is_ascii_alphanumeric()
        || matches!(
            c,
            '/' | '-' | '?' | ':' | '(' | ')' | '.' | ',' | '\'' | '+' | ' '
        )
}

/// A Kassenzeichen as ePayBL takes it: 2 to 30 letters and digits.
pub fn valid_kassenzeichen(text: &str) -> bool {
    (2..=MAX_KASSENZEICHEN).contains(&text.len()) && text.bytes().all(|b| b.is_ascii_alphanumeric())
}

/// A new transaction number: `AW` and 26 characters of Crockford base32 over a UUIDv7 (unique, time-ordered,
/// 28 characters — within ePayBL's 30).
pub fn transaction_number() -> String {
    const ALPHABET: &[u8; 32] = b"0123456789ABCDEFGHJKMNPQRSTVWXYZ";
    let mut value = uuid_bits();
    let mut out = [b'0'; 26];
    for slot in out.iter_mut().rev() {
        *slot = ALPHABET[(value & 31) as usize];
        value >>= 5;
    }
    format!("AW{}", String::from_utf8_lossy(&out))
}

fn uuid_bits() -> u128 {
    let id = amtsweg_kernel::id::new_id();
    u128::from_str_radix(&id.replace('-', ""), 16).unwrap_or_else(|_| rand::random())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn line(amount_cents: i64, text: &str) -> BookingLine {
        BookingLine {
            amount_cents,
            booking: Booking {
                haushaltsstelle: "1.2.2.1.01".into(),
                objektnummer: "12210000".into(),
                buchungstext: text.into(),
            },
        }
    }

    #[test]
    fn a_confirmed_full_amount_settles_and_stays_settled() {
        let paid = Observed::Paid { amount_cents: 3070 };
        assert_eq!(
            observe(State::Pending, 3070, paid),
            Some((State::Paid, Reason::Confirmed))
        );
        assert_eq!(observe(State::Paid, 3070, Observed::Cancelled), None);
        assert_eq!(observe(State::Paid, 3070, Observed::Unknown), None);
    }

    #[test]
    fn what_does_not_add_up_goes_to_review() {
        let short = Observed::Paid { amount_cents: 3069 };
        assert_eq!(
            observe(State::Pending, 3070, short),
            Some((State::Review, Reason::AmountMismatch))
        );
        let paid = Observed::Paid { amount_cents: 3070 };
        assert_eq!(
            observe(State::Expired, 3070, paid),
            Some((State::Review, Reason::PaidAfterEnd))
        );
        assert_eq!(
            observe(State::Pending, 3070, Observed::Unknown),
            Some((State::Review, Reason::UnknownKassenzeichen))
        );
        assert_eq!(observe(State::Review, 3070, paid), None);
    }

    #[test]
    fn every_order_of_observations_ends_in_the_last_final_word() {
        let paid = Observed::Paid { amount_cents: 100 };
        let orders = [
            vec![Observed::Open, paid, Observed::Open],
            vec![paid, Observed::Open, paid],
            vec![Observed::Open, Observed::Open, paid, paid],
        ];
        for order in orders {
            let mut state = State::Initial;
            for seen in order {
                if let Some((to, _)) = observe(state, 100, seen) {
                    state = to;
                }
            }
            assert_eq!(state, State::Paid);
        }
    }

    #[test]
    fn limits_are_checked_before_any_call() {
        assert!(
            violations(
                3070,
                "2026-000001",
                "Bewohnerparkausweis",
                &[line(3070, "PARKEN")],
                12
            )
            .is_empty()
        );
        let found = violations(3070, "ordnungsamt-2026-000001", "x", &[line(3000, "parken")], 12);
        let codes: Vec<&str> = found.iter().map(|(_, code, _)| *code).collect();
        assert_eq!(codes, ["purpose_too_long", "booking_invalid", "bookings_sum"]);
    }

    #[test]
    fn transaction_numbers_fit_and_differ() {
        let (a, b) = (transaction_number(), transaction_number());
        assert_eq!(a.len(), 28);
        assert!(a.len() <= MAX_TRANSACTION_NUMBER);
        assert_ne!(a, b);
        assert!(valid_kassenzeichen(&a));
    }
}
