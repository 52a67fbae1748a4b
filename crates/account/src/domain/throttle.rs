//! Brute-force protection by progressive delays that end (after kanidm's soft lock): 1 s after fewer than 3
//! failures, 3 s below 9, 5 s below 25, 10 s below 100, then locked until the next UTC day. Nobody can lock a
//! citizen out for long, and at most 100 failures per account and day are possible (OWASP ASVS 2.2.1 asks for at
//! most 100 an hour). A successful login resets the count.

use amtsweg_kernel::Timestamp;
use chrono::Duration;

pub const LOCK_AFTER: i32 = 100;

/// How long after the `failures`-th failure the next attempt is refused.
pub fn delay_after(failures: i32, now: Timestamp) -> Timestamp {
    let seconds = match failures {
        i32::MIN..=2 => 1,
        3..=8 => 3,
        9..=24 => 5,
        25..=99 => 10,
        _ => return next_utc_day(now),
    };
    now + Duration::seconds(seconds)
}

pub fn next_utc_day(now: Timestamp) -> Timestamp {
    now.start_of_day() + Duration::days(1)
}

/// The UTC day a count of failures belongs to.
pub fn day_of(now: Timestamp) -> String {
    now.format("%Y-%m-%d").to_string()
}

#[cfg(test)]
mod tests {

    use super::*;
    use chrono::{TimeZone, Utc};

    #[test]
    fn delays_grow_and_end_in_a_lock_until_tomorrow() {
        let now = Timestamp::from(Utc.with_ymd_and_hms(2026, 11, 29, 10, 0, 0).unwrap());
        assert_eq!(delay_after(1, now), now + Duration::seconds(1));
        assert_eq!(delay_after(3, now), now + Duration::seconds(3));
        assert_eq!(delay_after(9, now), now + Duration::seconds(5));
        assert_eq!(delay_after(25, now), now + Duration::seconds(10));
        assert_eq!(
            delay_after(100, now),
            Timestamp::from(Utc.with_ymd_and_hms(2026, 11, 30, 0, 0, 0).unwrap())
        );
    }

    #[test]
    fn at_most_100_failures_fit_in_an_hour() {
        let start = Timestamp::from(Utc.with_ymd_and_hms(2026, 11, 29, 10, 0, 0).unwrap());
        let mut now = start;
        let mut failures = 0;
        while now < start + Duration::hours(1) && failures < 1000 {
            failures += 1;
            now = delay_after(failures, now);
        }
        assert!(failures <= 100, "{failures} failures in an hour");
    }
}
