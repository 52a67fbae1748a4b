//! Case search for staff: filters over the submitted cases of the caller's units, newest submission first, in
//! cursor pages. The applicant's name is searched by word prefix through `application_name_tokens` (the words of
//! the name recorded at submission, lower case, byte-ordered: a prefix is a range of its primary key on both
//! backends).

use amtsweg_db::{DbConnection, DbError};
use amtsweg_kernel::pagination::{Page, PageRequest};
use amtsweg_kernel::{FieldError, Text, Timestamp};
use chrono::{DateTime, NaiveDate, NaiveTime};
use diesel::dsl::exists;
use diesel::prelude::*;

use crate::error::ApplicationError;
use crate::schema::{application_name_tokens, application_timers, applications};
use crate::service::{ApplicationRow, ApplicationService};
use crate::staff::{CaseSummary, CaseWorker, summary};

/// The filters of a search; all optional, combined with "and".
#[derive(Debug, Clone, Default)]
pub struct CaseFilter {
    pub state: Option<String>,
    pub procedure_id: Option<String>,
    pub unit_id: Option<String>,
    /// A staff id, `me`, or `none` for unclaimed cases.
    pub assignee: Option<String>,
    /// Only cases whose processing deadline has passed (`true`) or has not (`false`).
    pub overdue: Option<bool>,
    /// First and last day of submission (Europe/Berlin), both included.
    pub submitted_from: Option<NaiveDate>,
    pub submitted_to: Option<NaiveDate>,
    /// The exact case number.
    pub case_number: Option<String>,
    /// Word prefixes of the applicant's name, e.g. `muster` or `erika must`.
    pub applicant: Option<String>,
}

/// The most words of a name search.
const MAX_WORDS: usize = 4;
/// Up to this many cases, a name prefix's cases are looked up by id.
const FEW: i64 = 2_000;

impl ApplicationService {
    pub async fn search_cases(
        &self,
        worker: CaseWorker,
        filter: CaseFilter,
        page: PageRequest,
    ) -> Result<Page<CaseSummary>, ApplicationError> {
        let after = page.after.as_deref().map(parse_cursor).transpose()?;
        let words = filter.applicant.as_deref().map(name_tokens).unwrap_or_default();
        if words.len() > MAX_WORDS {
            return Err(ApplicationError::Validation(vec![FieldError::at_parameter(
                "applicant",
                "too_many_words",
                Text::new(
                    format!("Bitte höchstens {MAX_WORDS} Wörter."),
                    format!("Please at most {MAX_WORDS} words."),
                ),
            )]));
        }
        let today = amtsweg_workflow::deadline::berlin_date(self.clock().now().utc().naive_utc()).to_string();
        // One query per unit, merged: a single unit per query keeps the index order (an `= ANY(…)` over several
        // would make PostgreSQL sort every match).
        let everywhere = worker.roles.iter().any(|role| role.unit == "*");
        let mut units: Vec<String> = worker
            .roles
            .iter()
            .map(|role| role.unit.clone())
            .filter(|unit| unit != "*")
            .collect();
        units.sort();
        units.dedup();
        let scopes: Vec<Option<String>> = match &filter.unit_id {
            Some(unit) if everywhere || units.contains(unit) => vec![Some(unit.clone())],
            Some(_) => Vec::new(),
            None if everywhere => vec![None],
            None => units.into_iter().map(Some).collect(),
        };
        let me = worker.id.clone();
        self.db()
            .read(move |conn| {
                let mut rows = Vec::new();
                for scope in &scopes {
                    let found = query(
                        conn,
                        &filter,
                        &words,
                        scope.as_deref(),
                        &me,
                        &today,
                        after.clone(),
                        page.limit,
                    )?;
                    rows.extend(found);
                }
                rows.sort_by(|a: &ApplicationRow, b: &ApplicationRow| {
                    (b.submitted_at, &b.id).cmp(&(a.submitted_at, &a.id))
                });
                rows.truncate(page.limit + 1);
                Ok(Page::from_overfetched(
                    rows.iter().map(summary).collect(),
                    page.limit,
                    |case: &CaseSummary| {
                        format!("{}:{}", case.submitted_at.utc().timestamp_micros(), case.id)
                    },
                ))
            })
            .await
    }
}

#[allow(clippy::too_many_arguments, reason = "one query with its parts")]
fn query(
    conn: &mut DbConnection,
    filter: &CaseFilter,
    words: &[String],
    unit: Option<&str>,
    me: &str,
    today: &str,
    after: Option<(Timestamp, String)>,
    limit: usize,
) -> Result<Vec<ApplicationRow>, DbError> {
    let mut query = applications::table
        .filter(applications::status.eq("submitted"))
        .select(ApplicationRow::as_select())
        .order((applications::submitted_at.desc(), applications::id.desc()))
        .limit(i64::try_from(limit + 1).unwrap_or(101))
        .into_boxed();
    if let Some(unit) = unit {
        query = query.filter(applications::unit_id.eq(unit.to_owned()));
    }
    if let Some(procedure) = &filter.procedure_id {
        query = query.filter(applications::procedure_id.eq(procedure.clone()));
    }
    if let Some(state) = &filter.state {
        query = query.filter(applications::state.eq(state.clone()));
    }
    match filter.assignee.as_deref() {
        None => {}
        Some("none") => query = query.filter(applications::assignee.is_null()),
        Some("me") => query = query.filter(applications::assignee.eq(me.to_owned())),
        Some(staff) => query = query.filter(applications::assignee.eq(staff.to_owned())),
    }
    if let Some(number) = &filter.case_number {
        query = query.filter(applications::case_number.eq(number.clone()));
    }
    if let Some(from) = filter.submitted_from {
        query = query.filter(applications::submitted_at.ge(berlin_midnight(from)));
    }
    if let Some(to) = filter.submitted_to.and_then(|to| to.succ_opt()) {
        query = query.filter(applications::submitted_at.lt(berlin_midnight(to)));
    }
    if let Some(overdue) = filter.overdue {
        let late = exists(
            application_timers::table
                .filter(application_timers::application_id.eq(applications::id))
                .filter(application_timers::kind.eq("deadline"))
                .filter(application_timers::due_on.lt(today.to_owned())),
        );
        query = if overdue {
            query.filter(late)
        } else {
            query.filter(diesel::dsl::not(late))
        };
    }
    // A rare prefix drives the query: its few cases are looked up by id. A common one is checked per case along
    // the ordered scan (through the tokens' index by application), which finds a page after a few rows.
    let mut words: Vec<&String> = words.iter().collect();
    words.sort_by_key(|word| std::cmp::Reverse(word.chars().count()));
    if let Some(driver) = words.first() {
        let few: Vec<String> = application_name_tokens::table
            .filter(application_name_tokens::token.ge((*driver).clone()))
            .filter(application_name_tokens::token.lt(format!("{driver}\u{10FFFF}")))
            .select(application_name_tokens::application_id)
            .limit(FEW + 1)
            .load(conn)?;
        if few.len() as i64 <= FEW {
            query = query.filter(applications::id.eq_any(few));
            words.remove(0);
        }
    }
    for word in words {
        // LIKE rather than a range here: with a bound range SQLite's planner drove the query from the tokens (every
        // case with the prefix, then a sort — 0.8 s at a million cases); a LIKE it cannot plan as a range, so it
        // checks the two or three words of each case along the ordered scan.
        let pattern = format!(
            "{}%",
            word.replace('\\', "\\\\").replace('%', "\\%").replace('_', "\\_")
        );
        query = query.filter(exists(
            application_name_tokens::table
                .filter(application_name_tokens::application_id.eq(applications::id))
                .filter(application_name_tokens::token.like(pattern).escape('\\')),
        ));
    }
    if let Some((at, id)) = after {
        query = query.filter(
            applications::submitted_at
                .lt(at)
                .or(applications::submitted_at.eq(at).and(applications::id.lt(id))),
        );
    }
    query.load(conn).map_err(DbError::from)
}

/// Records the words of the applicant's name for the search, in the submit transaction.
pub(crate) fn index_name(conn: &mut DbConnection, id: &str, name: &str) -> Result<(), DbError> {
    // One row per word (a name has few); batch inserts do not span both backends.
    for token in name_tokens(name) {
        diesel::insert_into(application_name_tokens::table)
            .values((
                application_name_tokens::token.eq(token),
                application_name_tokens::application_id.eq(id),
            ))
            .execute(conn)?;
    }
    Ok(())
}

/// The distinct words of a name, lower case, at most 100 characters each.
pub(crate) fn name_tokens(name: &str) -> Vec<String> {
    let mut tokens: Vec<String> = name
        .split(|c: char| c.is_whitespace() || c == ',' || c == ';')
        .map(|word| {
            word.trim_matches(|c: char| c == '.' || c == '(' || c == ')')
                .to_lowercase()
        })
        .filter(|word| !word.is_empty())
        .map(|word| word.chars().take(100).collect())
        .collect();
    tokens.sort();
    tokens.dedup();
    tokens
}

/// The UTC instant at which `day` begins in Europe/Berlin.
fn berlin_midnight(day: NaiveDate) -> Timestamp {
    let midnight = day.and_time(NaiveTime::MIN);
    // The offset of that day (clocks change at 01:00 UTC, never around midnight).
    let noon = day.and_time(NaiveTime::from_hms_opt(12, 0, 0).unwrap_or(NaiveTime::MIN));
    let offset = amtsweg_workflow::deadline::berlin_time(noon) - noon;
    Timestamp::from((midnight - offset).and_utc())
}

fn parse_cursor(key: &str) -> Result<(Timestamp, String), ApplicationError> {
    key.split_once(':')
        .and_then(|(micros, id)| {
            let at = DateTime::from_timestamp_micros(micros.parse().ok()?)?;
            Some((Timestamp::from(at), id.to_owned()))
        })
        .ok_or_else(|| {
            ApplicationError::Validation(vec![FieldError::at_parameter(
                "cursor",
                "invalid_cursor",
                Text::fixed(
                    "Der Cursor ist ungültig; verwenden Sie next_cursor der vorigen Seite.",
                    "The cursor is invalid; use next_cursor of the previous page.",
                ),
            )])
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_split_into_lower_case_words() {
        assert_eq!(
            name_tokens("Erika  MÜLLER-Lüdenscheidt, Dr."),
            ["dr", "erika", "müller-lüdenscheidt"]
        );
        assert!(name_tokens("  ").is_empty());
    }

    #[test]
    fn berlin_days_begin_an_hour_or_two_before_utc() {
        let winter = berlin_midnight(NaiveDate::from_ymd_opt(2026, 12, 1).unwrap());
        assert_eq!(winter.utc().to_rfc3339(), "2026-11-30T23:00:00+00:00");
        let summer = berlin_midnight(NaiveDate::from_ymd_opt(2026, 7, 1).unwrap());
        assert_eq!(summer.utc().to_rfc3339(), "2026-06-30T22:00:00+00:00");
    }
}
