//! Periods and deadlines under § 31 VwVfG, which applies §§ 187–193 BGB:
//!
//! - the day of the triggering event is not counted (§ 187 (1));
//! - a period in days ends after that many days; in weeks on the weekday of the event, n weeks later; in months
//!   (or years) on the day of the last month with the event's number, or the month's last day when it has no such
//!   day (§ 188 (2), (3));
//! - when the last day is a Saturday, Sunday or public holiday at the authority's seat, the period ends on the next
//!   working day (§ 31 (3) VwVfG) — unless the authority communicated a fixed end date (§ 31 (3) sentence 2).
//!
//! Days are calendar days in Europe/Berlin. Public holidays follow the Land; Saxony by default, where Corpus
//! Christi is a holiday only in some municipalities (set `corpus_christi` for those).

use chrono::{Datelike, Days, Months, NaiveDate, NaiveDateTime, NaiveTime, Weekday};
use serde::{Deserialize, Serialize};

/// A period in one unit, written `{days: 14}`, `{weeks: 4}`, `{months: 3}` or `{years: 1}`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", deny_unknown_fields)]
pub enum Period {
    Days(u32),
    Weeks(u32),
    Months(u32),
    Years(u32),
}

impl Period {
    /// The last day of the period (§§ 187 (1), 188 BGB), before any move to a working day; `None` past the
    /// calendar's end.
    pub fn last_day(self, event: NaiveDate) -> Option<NaiveDate> {
        match self {
            Period::Days(n) => event.checked_add_days(Days::new(n.into())),
            Period::Weeks(n) => event.checked_add_days(Days::new(u64::from(n) * 7)),
            // chrono clamps to the month's last day, which is § 188 (3).
            Period::Months(n) => event.checked_add_months(Months::new(n)),
            Period::Years(n) => event.checked_add_months(Months::new(n.checked_mul(12)?)),
        }
    }

    /// The day the period started counting back from `last_day` — for warnings "n days before".
    pub fn before(self, day: NaiveDate) -> Option<NaiveDate> {
        match self {
            Period::Days(n) => day.checked_sub_days(Days::new(n.into())),
            Period::Weeks(n) => day.checked_sub_days(Days::new(u64::from(n) * 7)),
            Period::Months(n) => day.checked_sub_months(Months::new(n)),
            Period::Years(n) => day.checked_sub_months(Months::new(n.checked_mul(12)?)),
        }
    }
}

/// The sixteen Länder, by their ISO 3166-2 codes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub enum Land {
    #[serde(rename = "BW")]
    BadenWuerttemberg,
    #[serde(rename = "BY")]
    Bayern,
    #[serde(rename = "BE")]
    Berlin,
    #[serde(rename = "BB")]
    Brandenburg,
    #[serde(rename = "HB")]
    Bremen,
    #[serde(rename = "HH")]
    Hamburg,
    #[serde(rename = "HE")]
    Hessen,
    #[serde(rename = "MV")]
    MecklenburgVorpommern,
    #[serde(rename = "NI")]
    Niedersachsen,
    #[serde(rename = "NW")]
    NordrheinWestfalen,
    #[serde(rename = "RP")]
    RheinlandPfalz,
    #[serde(rename = "SL")]
    Saarland,
    #[default]
    #[serde(rename = "SN")]
    Sachsen,
    #[serde(rename = "ST")]
    SachsenAnhalt,
    #[serde(rename = "SH")]
    SchleswigHolstein,
    #[serde(rename = "TH")]
    Thueringen,
}

/// Working days at the authority's seat.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Calendar {
    #[serde(default)]
    pub land: Land,
    /// Corpus Christi is a holiday at the seat although not in the whole Land (parts of Saxony and Thuringia).
    #[serde(default)]
    pub corpus_christi: bool,
}

impl Calendar {
    pub fn saxony() -> Calendar {
        Calendar::default()
    }

    /// Whether `day` is a public holiday of the Land (at the seat).
    pub fn is_holiday(&self, day: NaiveDate) -> bool {
        use Land::*;
        let year = day.year();
        let (month, date) = (day.month(), day.day());
        let Some(easter) = easter_sunday(year) else {
            return false;
        };
        let offset = (day - easter).num_days();
        let land = self.land;
        let among = |lands: &[Land]| lands.contains(&land);
        match (month, date) {
            (1, 1) | (5, 1) | (10, 3) | (12, 25) | (12, 26) => return true,
            (1, 6) => return among(&[BadenWuerttemberg, Bayern, SachsenAnhalt]),
            (3, 8) => {
                return (land == Berlin && year >= 2019) || (land == MecklenburgVorpommern && year >= 2023);
            }
            (8, 15) => return land == Saarland,
            (9, 20) => return land == Thueringen && year >= 2019,
            (10, 31) => {
                return year == 2017
                    || among(&[
                        Brandenburg,
                        MecklenburgVorpommern,
                        Sachsen,
                        SachsenAnhalt,
                        Thueringen,
                    ])
                    || (year >= 2018 && among(&[Bremen, Hamburg, Niedersachsen, SchleswigHolstein]));
            }
            (11, 1) => {
                return among(&[
                    BadenWuerttemberg,
                    Bayern,
                    NordrheinWestfalen,
                    RheinlandPfalz,
                    Saarland,
                ]);
            }
            _ => {}
        }
        match offset {
            // Good Friday, Easter Monday, Ascension Day, Whit Monday.
            -2 | 1 | 39 | 50 => true,
            60 => {
                self.corpus_christi
                    || among(&[
                        BadenWuerttemberg,
                        Bayern,
                        Hessen,
                        NordrheinWestfalen,
                        RheinlandPfalz,
                        Saarland,
                    ])
            }
            // Buß- und Bettag: the Wednesday before 23 November.
            _ => land == Sachsen && month == 11 && (16..=22).contains(&date) && day.weekday() == Weekday::Wed,
        }
    }

    pub fn is_working_day(&self, day: NaiveDate) -> bool {
        !matches!(day.weekday(), Weekday::Sat | Weekday::Sun) && !self.is_holiday(day)
    }

    /// `day` itself when it is a working day, else the next one.
    pub fn working_day_from(&self, day: NaiveDate) -> NaiveDate {
        let mut day = day;
        while !self.is_working_day(day) {
            match day.succ_opt() {
                Some(next) => day = next,
                None => break,
            }
        }
        day
    }

    /// The last day of a period that starts with an event on `event`: § 188 BGB, then moved to the next working
    /// day (§ 31 (3) VwVfG) unless a fixed end date was communicated.
    pub fn deadline(&self, event: NaiveDate, period: Period, fixed_end: bool) -> Option<NaiveDate> {
        let last = period.last_day(event)?;
        Some(if fixed_end {
            last
        } else {
            self.working_day_from(last)
        })
    }
}

/// Easter Sunday of the Gregorian calendar (the anonymous algorithm of Meeus, Jones and Butcher).
pub fn easter_sunday(year: i32) -> Option<NaiveDate> {
    let a = year.rem_euclid(19);
    let b = year.div_euclid(100);
    let c = year.rem_euclid(100);
    let d = b / 4;
    let e = b % 4;
    let f = (b + 8) / 25;
    let g = (b - f + 1) / 3;
    let h = (19 * a + b - d - g + 15).rem_euclid(30);
    let i = c / 4;
    let k = c % 4;
    let l = (32 + 2 * e + 2 * i - h - k).rem_euclid(7);
    let m = (a + 11 * h + 22 * l) / 451;
    let month = (h + l - 7 * m + 114) / 31;
    let day = (h + l - 7 * m + 114) % 31 + 1;
    NaiveDate::from_ymd_opt(year, u32::try_from(month).ok()?, u32::try_from(day).ok()?)
}

/// The calendar day in Europe/Berlin of a UTC instant.
pub fn berlin_date(utc: NaiveDateTime) -> NaiveDate {
    berlin_time(utc).date()
}

/// The wall-clock time in Europe/Berlin of a UTC instant: CET (UTC+1), and CEST (UTC+2) from 01:00 UTC on the
/// last Sunday of March to 01:00 UTC on the last Sunday of October (the EU rule in force since 1996).
pub fn berlin_time(utc: NaiveDateTime) -> NaiveDateTime {
    let year = utc.year();
    let switch = |month: u32| {
        last_sunday(year, month)
            .map(|day| day.and_time(NaiveTime::from_hms_opt(1, 0, 0).unwrap_or(NaiveTime::MIN)))
    };
    let summer = match (switch(3), switch(10)) {
        (Some(start), Some(end)) => utc >= start && utc < end,
        _ => false,
    };
    let offset = chrono::Duration::hours(if summer { 2 } else { 1 });
    utc.checked_add_signed(offset).unwrap_or(utc)
}

fn last_sunday(year: i32, month: u32) -> Option<NaiveDate> {
    let last = NaiveDate::from_ymd_opt(year, month + 1, 1)?.pred_opt()?;
    let back = last.weekday().num_days_from_sunday();
    last.checked_sub_days(Days::new(back.into()))
}

#[cfg(test)]
mod tests {
    use chrono::NaiveDate;

    use super::{Calendar, Land, Period, berlin_date, easter_sunday};

    fn d(text: &str) -> NaiveDate {
        NaiveDate::parse_from_str(text, "%Y-%m-%d").unwrap()
    }

    #[test]
    fn easter_sundays() {
        for (year, day) in [
            (2000, "2000-04-23"),
            (2019, "2019-04-21"),
            (2024, "2024-03-31"),
            (2025, "2025-04-20"),
            (2026, "2026-04-05"),
            (2027, "2027-03-28"),
            (2038, "2038-04-25"),
        ] {
            assert_eq!(easter_sunday(year), Some(d(day)), "{year}");
        }
    }

    #[test]
    fn saxon_public_holidays() {
        let saxony = Calendar::saxony();
        for day in [
            "2026-01-01",
            "2026-04-03", // Karfreitag
            "2026-04-06", // Ostermontag
            "2026-05-01",
            "2026-05-14", // Christi Himmelfahrt
            "2026-05-25", // Pfingstmontag
            "2026-10-03",
            "2026-10-31", // Reformationstag
            "2026-11-18", // Buß- und Bettag
            "2025-11-19", // Buß- und Bettag
            "2024-11-20", // Buß- und Bettag
            "2026-12-25",
            "2026-12-26",
        ] {
            assert!(saxony.is_holiday(d(day)), "{day} is a holiday in Saxony");
        }
        for day in [
            "2026-06-04",
            "2026-01-06",
            "2026-11-01",
            "2026-11-11",
            "2026-12-24",
            "2026-12-31",
        ] {
            assert!(!saxony.is_holiday(d(day)), "{day} is no holiday in Saxony");
        }
        let sorbian = Calendar {
            corpus_christi: true,
            ..Calendar::saxony()
        };
        assert!(
            sorbian.is_holiday(d("2026-06-04")),
            "Fronleichnam where it is one"
        );
    }

    #[test]
    fn other_laender() {
        let bavaria = Calendar {
            land: Land::Bayern,
            corpus_christi: false,
        };
        assert!(bavaria.is_holiday(d("2026-01-06")));
        assert!(bavaria.is_holiday(d("2026-06-04")));
        assert!(bavaria.is_holiday(d("2026-11-01")));
        assert!(!bavaria.is_holiday(d("2026-10-31")));
        assert!(!bavaria.is_holiday(d("2026-11-18")));
        let berlin = Calendar {
            land: Land::Berlin,
            corpus_christi: false,
        };
        assert!(berlin.is_holiday(d("2026-03-08")));
        assert!(!berlin.is_holiday(d("2018-03-08")));
        let hamburg = Calendar {
            land: Land::Hamburg,
            corpus_christi: false,
        };
        assert!(hamburg.is_holiday(d("2026-10-31")));
        assert!(!hamburg.is_holiday(d("2016-10-31")));
        assert!(hamburg.is_holiday(d("2017-10-31")), "nationwide in 2017");
    }

    /// Real periods, computed by hand from the statute and a 2025/2026 calendar.
    #[test]
    fn deadlines_against_real_dates() {
        let saxony = Calendar::saxony();
        let cases = [
            // event, period, fixed end, last day
            ("2026-11-30", Period::Days(10), false, "2026-12-10"), // Thursday
            ("2026-03-31", Period::Months(1), false, "2026-04-30"), // no 31 April: the month's last day (§ 188 (3))
            ("2026-01-30", Period::Months(1), false, "2026-03-02"), // 28 Feb is a Saturday → Monday
            ("2026-01-30", Period::Months(1), true, "2026-02-28"),  // a communicated end date stays
            ("2025-10-01", Period::Months(1), false, "2025-11-03"), // 1 Nov 2025 is a Saturday
            ("2025-08-31", Period::Months(2), false, "2025-11-03"), // 31 Oct 2025 (Fri) is Reformationstag
            ("2026-11-04", Period::Weeks(2), false, "2026-11-19"),  // Buß- und Bettag 18 Nov 2026
            ("2026-12-11", Period::Weeks(2), false, "2026-12-28"),  // Christmas and a weekend
            ("2026-03-06", Period::Weeks(4), false, "2026-04-07"),  // Good Friday to Easter Monday
            ("2026-05-21", Period::Weeks(2), false, "2026-06-04"),  // Corpus Christi is a working day here
            ("2024-02-29", Period::Years(1), false, "2025-02-28"),  // a Friday
            ("2026-09-14", Period::Months(3), false, "2026-12-14"), // a Monday
        ];
        for (event, period, fixed, expected) in cases {
            assert_eq!(
                saxony.deadline(d(event), period, fixed),
                Some(d(expected)),
                "{period:?} from {event} (fixed end: {fixed})"
            );
        }
        let sorbian = Calendar {
            corpus_christi: true,
            ..Calendar::saxony()
        };
        assert_eq!(
            sorbian.deadline(d("2026-05-21"), Period::Weeks(2), false),
            Some(d("2026-06-05"))
        );
    }

    #[test]
    fn days_are_counted_in_berlin() {
        let utc = |text: &str| chrono::NaiveDateTime::parse_from_str(text, "%Y-%m-%d %H:%M").unwrap();
        assert_eq!(berlin_date(utc("2026-12-31 22:59")), d("2026-12-31"));
        assert_eq!(
            berlin_date(utc("2026-12-31 23:00")),
            d("2027-01-01"),
            "CET is UTC+1"
        );
        assert_eq!(berlin_date(utc("2026-06-30 21:59")), d("2026-06-30"));
        assert_eq!(
            berlin_date(utc("2026-06-30 22:00")),
            d("2026-07-01"),
            "CEST is UTC+2"
        );
        // Summer time 2026: 29 March 01:00 UTC to 25 October 01:00 UTC.
        assert_eq!(berlin_date(utc("2026-03-29 00:59")), d("2026-03-29"));
        assert_eq!(
            berlin_date(utc("2026-10-24 22:30")),
            d("2026-10-25"),
            "still summer time"
        );
        assert_eq!(
            berlin_date(utc("2026-10-25 22:30")),
            d("2026-10-25"),
            "winter time again"
        );
    }
}
