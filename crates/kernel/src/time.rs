//! The one time type of Amtsweg: an instant in UTC with microsecond precision. The clock answers it, both databases
//! store it (a `TIMESTAMP` column that always holds UTC: PostgreSQL's `timestamp`, SQLite's text), and the API writes
//! it as RFC 3339 with a `Z`. No other conversion between zoned and naive times is needed anywhere.

use std::fmt;
use std::ops::{Add, AddAssign, Sub, SubAssign};

use chrono::{DateTime, Duration, NaiveDateTime, SecondsFormat, SubsecRound, Utc};
use diesel::backend::Backend;
use diesel::deserialize::{self, FromSql};
use diesel::serialize::{self, Output, ToSql};
use diesel::sql_types;
use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// An instant in UTC, kept to the microsecond (what PostgreSQL keeps).
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, diesel::AsExpression, diesel::FromSqlRow)]
#[diesel(sql_type = sql_types::Timestamp)]
pub struct Timestamp(NaiveDateTime);

impl Timestamp {
    /// 1970-01-01T00:00:00Z.
    pub const UNIX_EPOCH: Timestamp = Timestamp(DateTime::<Utc>::UNIX_EPOCH.naive_utc());

    /// The system time now, to the microsecond. Services ask their clock instead.
    pub fn now() -> Timestamp {
        Timestamp::from(Utc::now())
    }

    /// The instant as a chrono UTC time, for arithmetic on calendar fields or foreign APIs.
    pub fn utc(self) -> DateTime<Utc> {
        self.0.and_utc()
    }

    /// RFC 3339 in UTC with a `Z`, to the second: the timestamp format of the API.
    pub fn rfc3339(self) -> String {
        self.utc().to_rfc3339_opts(SecondsFormat::Secs, true)
    }

    /// RFC 3339 in UTC with a `Z`, always with six fractional digits (for hashes over a canonical form).
    pub fn rfc3339_micros(self) -> String {
        self.utc().to_rfc3339_opts(SecondsFormat::Micros, true)
    }

    /// Reads RFC 3339 with any offset.
    pub fn parse_rfc3339(text: &str) -> Option<Timestamp> {
        DateTime::parse_from_rfc3339(text)
            .ok()
            .map(|at| Timestamp::from(at.with_timezone(&Utc)))
    }

    /// Seconds since the Unix epoch (as JWT and TOTP count).
    pub fn unix_seconds(self) -> i64 {
        self.0.and_utc().timestamp()
    }

    /// The instant `seconds` after the Unix epoch, if it is representable.
    pub fn from_unix_seconds(seconds: i64) -> Option<Timestamp> {
        DateTime::from_timestamp(seconds, 0).map(Timestamp::from)
    }

    /// Formats the UTC instant with a chrono format string (for names and logs, never for the API).
    pub fn format<'a>(&self, format: &'a str) -> impl fmt::Display + 'a {
        self.utc().format(format)
    }

    /// Midnight (UTC) of the day the instant falls on.
    pub fn start_of_day(self) -> Timestamp {
        Timestamp(self.0.date().and_time(chrono::NaiveTime::MIN))
    }

    /// `self + by`, or `None` past the representable range.
    pub fn checked_add(self, by: Duration) -> Option<Timestamp> {
        self.0.checked_add_signed(by).map(Timestamp)
    }
}

impl From<DateTime<Utc>> for Timestamp {
    fn from(at: DateTime<Utc>) -> Timestamp {
        Timestamp(at.naive_utc().trunc_subsecs(6))
    }
}

impl From<Timestamp> for DateTime<Utc> {
    fn from(at: Timestamp) -> DateTime<Utc> {
        at.utc()
    }
}

impl Add<Duration> for Timestamp {
    type Output = Timestamp;

    fn add(self, by: Duration) -> Timestamp {
        Timestamp((self.0 + by).trunc_subsecs(6))
    }
}

impl AddAssign<Duration> for Timestamp {
    fn add_assign(&mut self, by: Duration) {
        *self = *self + by;
    }
}

impl Sub<Duration> for Timestamp {
    type Output = Timestamp;

    fn sub(self, by: Duration) -> Timestamp {
        Timestamp((self.0 - by).trunc_subsecs(6))
    }
}

impl SubAssign<Duration> for Timestamp {
    fn sub_assign(&mut self, by: Duration) {
        *self = *self - by;
    }
}

impl Sub for Timestamp {
    type Output = Duration;

    fn sub(self, earlier: Timestamp) -> Duration {
        self.0 - earlier.0
    }
}

impl fmt::Display for Timestamp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.utc().to_rfc3339_opts(SecondsFormat::AutoSi, true))
    }
}

impl fmt::Debug for Timestamp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

impl Serialize for Timestamp {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&self.rfc3339())
    }
}

impl<'de> Deserialize<'de> for Timestamp {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = <std::borrow::Cow<'de, str>>::deserialize(deserializer)?;
        Timestamp::parse_rfc3339(&text)
            .ok_or_else(|| serde::de::Error::custom("expected an RFC 3339 date-time"))
    }
}

impl<DB> ToSql<sql_types::Timestamp, DB> for Timestamp
where
    DB: Backend,
    NaiveDateTime: ToSql<sql_types::Timestamp, DB>,
{
    fn to_sql<'b>(&'b self, out: &mut Output<'b, '_, DB>) -> serialize::Result {
        self.0.to_sql(out)
    }
}

impl<DB> FromSql<sql_types::Timestamp, DB> for Timestamp
where
    DB: Backend,
    NaiveDateTime: FromSql<sql_types::Timestamp, DB>,
{
    fn from_sql(bytes: DB::RawValue<'_>) -> deserialize::Result<Self> {
        NaiveDateTime::from_sql(bytes).map(Timestamp)
    }
}

impl utoipa::PartialSchema for Timestamp {
    fn schema() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
        utoipa::openapi::ObjectBuilder::new()
            .schema_type(utoipa::openapi::schema::Type::String)
            .format(Some(utoipa::openapi::SchemaFormat::KnownFormat(
                utoipa::openapi::KnownFormat::DateTime,
            )))
            .into()
    }
}

impl utoipa::ToSchema for Timestamp {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keeps_microseconds_and_writes_seconds() {
        let at = Timestamp::parse_rfc3339("2026-11-30T18:00:00.123456789+01:00").unwrap();
        assert_eq!(at.rfc3339(), "2026-11-30T17:00:00Z");
        assert_eq!(at.to_string(), "2026-11-30T17:00:00.123456Z");
        assert_eq!((at + Duration::nanoseconds(400)).to_string(), at.to_string());
        assert_eq!((at + Duration::hours(1)) - at, Duration::hours(1));
    }

    #[test]
    fn round_trips_through_json_and_unix_seconds() {
        let at = Timestamp::from_unix_seconds(1_800_000_000).unwrap();
        let json = serde_json::to_string(&at).unwrap();
        assert_eq!(json, "\"2027-01-15T08:00:00Z\"");
        assert_eq!(serde_json::from_str::<Timestamp>(&json).unwrap(), at);
        assert_eq!(at.unix_seconds(), 1_800_000_000);
        assert!(serde_json::from_str::<Timestamp>("\"yesterday\"").is_err());
    }
}
