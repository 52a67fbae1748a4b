//! The delivery rules as pure date arithmetic: when a decision counts as notified, and when its provision ends.
//! Days are calendar days in Europe/Berlin.

use amtsweg_catalogue::domain::ResolvedRule;
use amtsweg_kernel::Timestamp;
use chrono::{Days, NaiveDate};

/// § 41 (2) VwVfG (as amended in 2025): a letter counts as notified on the fourth day after it was posted.
pub const POSTAL_DAYS: u64 = 4;

/// The calendar day in Europe/Berlin of an instant.
pub fn berlin_day(at: Timestamp) -> NaiveDate {
    amtsweg_workflow::deadline::berlin_date(at.utc().naive_utc())
}

/// The day a decision counts as notified when the rule's period starts on `start`.
pub fn deemed_on(rule: &ResolvedRule, start: NaiveDate) -> NaiveDate {
    start + Days::new(u64::from(rule.days))
}

/// Whether a provision not retrieved ends on `today`, its notification having been sent on `notified`: it ends
/// once the rule's days after the notification have passed.
pub fn provision_ended(rule: &ResolvedRule, notified: NaiveDate, today: NaiveDate) -> bool {
    rule.expires_after_days
        .is_some_and(|days| today > notified + Days::new(u64::from(days)))
}

/// The day a posted letter counts as notified.
pub fn posted_deemed_on(posted: NaiveDate) -> NaiveDate {
    posted + Days::new(POSTAL_DAYS)
}

#[cfg(test)]
mod tests {
    use amtsweg_catalogue::domain::{DeliveryPreset, DeliveryRule};
    use chrono::NaiveDate;

    use super::*;

    fn day(text: &str) -> NaiveDate {
        text.parse().unwrap_or_default()
    }

    fn rule(preset: DeliveryPreset) -> ResolvedRule {
        DeliveryRule {
            rule: preset,
            days: None,
        }
        .resolved()
    }

    #[test]
    fn vwvfg_counts_from_retrieval_and_ends_after_ten_days() {
        let rule = rule(DeliveryPreset::Vwvfg41);
        // Retrieved on the 3rd: notified on the 4th.
        assert_eq!(deemed_on(&rule, day("2026-12-03")), day("2026-12-04"));
        // Notification sent on the 1st: the provision stands through the 11th and ends on the 12th.
        assert!(!provision_ended(&rule, day("2026-12-01"), day("2026-12-11")));
        assert!(provision_ended(&rule, day("2026-12-01"), day("2026-12-12")));
    }

    #[test]
    fn ao_and_ozg_count_four_days_and_never_end() {
        let ao = rule(DeliveryPreset::Ao122a);
        assert_eq!(deemed_on(&ao, day("2026-12-30")), day("2027-01-03"));
        assert!(!provision_ended(&ao, day("2026-01-01"), day("2026-12-31")));
        let ozg = rule(DeliveryPreset::Ozg9);
        assert_eq!(deemed_on(&ozg, day("2026-12-01")), day("2026-12-05"));
        assert_eq!(ozg.expires_after_days, None);
    }

    #[test]
    fn days_are_counted_in_berlin() {
        // 23:30 UTC on 31 December is already New Year's Day in Berlin.
        let at = Timestamp::parse_rfc3339("2026-12-31T23:30:00Z").unwrap_or(Timestamp::UNIX_EPOCH);
        assert_eq!(berlin_day(at), day("2027-01-01"));
    }

    #[test]
    fn letters_count_from_the_fourth_day_after_posting() {
        assert_eq!(posted_deemed_on(day("2026-12-01")), day("2026-12-05"));
    }
}
