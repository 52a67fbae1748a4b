//! The fiction of approval (§ 42a VwVfG), only for procedures whose file says which statute orders it. The
//! period runs from the day the documents are complete: a submission carries every document the catalogue
//! requires, so it starts there; when the unit asks for documents the application was not complete, and the
//! period starts again from the answer (an incomplete application has not started it). The unit may extend it
//! once, with reasons, which the citizen is told. The unit is alerted before it ends; when it ends without a
//! decision, the approval is deemed granted and the case records it. A decision or the case's end stops it.
//!
//! A decision stops the period when it is made; once decisions are delivered (Virtuelle Poststelle), the
//! notification within the period is what counts (§ 42a (1) with § 41), and the stop moves there.

use amtsweg_audit::{Actor, Event, Outcome};
use amtsweg_db::{DbConnection, DbError};
use amtsweg_kernel::{Lang, Text, Timestamp};
use amtsweg_workflow::{Calendar, Period};
use chrono::NaiveDate;
use diesel::prelude::*;
use serde::Serialize;
use utoipa::ToSchema;

use crate::case::{self, Step, StepActor};
use crate::error::ApplicationError;
use crate::schema::approval_fictions;
use crate::service::EffectContext;

/// The step recorded when the fiction occurs, and when the period is extended.
pub const OCCURRED: &str = "genehmigungsfiktion";
pub const EXTENDED: &str = "fristverlaengerung";

#[derive(Debug, Clone, Queryable, Selectable)]
#[diesel(table_name = approval_fictions)]
struct FictionRow {
    statute: String,
    started_on: Option<String>,
    ends_on: Option<String>,
    alert_on: Option<String>,
    extended_at: Option<Timestamp>,
    extended_by: Option<String>,
    extension_reasons: Option<String>,
    occurred_at: Option<Timestamp>,
    stopped_at: Option<Timestamp>,
    stop_reason: Option<String>,
}

/// Where the fiction of a case stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum FictionStatus {
    /// The period runs.
    Running,
    /// Documents were asked for: the period starts when they arrive.
    AwaitingDocuments,
    /// The period ended without a decision: the approval is deemed granted.
    Occurred,
    /// A decision was made or the case ended.
    Stopped,
}

/// The fiction of approval of a case, for staff and the citizen.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct FictionView {
    pub status: FictionStatus,
    /// The statute that orders it.
    pub statute: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub started_on: Option<String>,
    /// The last day of the period (extension included).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ends_on: Option<String>,
    /// From this day the unit is alerted (staff only).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub alert_on: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub extended_at: Option<Timestamp>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub extension_reasons: Option<String>,
    /// Who extended it (staff only).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub extended_by: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub occurred_at: Option<Timestamp>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub stopped_at: Option<Timestamp>,
    /// Internal: `decided` or the state the case ended in (staff only).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub stop_reason: Option<String>,
}

fn today(now: Timestamp) -> NaiveDate {
    amtsweg_workflow::deadline::berlin_date(now.utc().naive_utc())
}

/// The last day of a period of `months` from the event on `from` (moved to a working day) and the alert day.
fn period(
    calendar: &Calendar,
    from: NaiveDate,
    months: u32,
    alert_days: u32,
) -> Result<(String, String), ApplicationError> {
    let ends = calendar
        .deadline(from, Period::Months(months), false)
        .ok_or_else(|| ApplicationError::Internal("deadline beyond the calendar".into()))?;
    let alert = Period::Days(alert_days).before(ends).unwrap_or(ends);
    Ok((ends.to_string(), alert.to_string()))
}

/// Starts the period of a newly submitted case whose procedure has a fiction of approval.
pub(crate) fn start(conn: &mut DbConnection, context: &EffectContext<'_>) -> Result<(), ApplicationError> {
    let Some(rule) = &context.procedure.procedure.approval_fiction else {
        return Ok(());
    };
    let day = today(context.now);
    let (ends, alert) = period(context.calendar, day, rule.months, rule.alert_days)?;
    diesel::insert_into(approval_fictions::table)
        .values((
            approval_fictions::application_id.eq(context.application_id),
            approval_fictions::statute.eq(&rule.statute),
            approval_fictions::started_on.eq(day.to_string()),
            approval_fictions::ends_on.eq(ends),
            approval_fictions::alert_on.eq(alert),
        ))
        .execute(conn)?;
    Ok(())
}

/// Documents were asked for: the application was not complete, the period has not started.
pub(crate) fn await_documents(conn: &mut DbConnection, id: &str) -> Result<(), DbError> {
    diesel::update(
        approval_fictions::table
            .filter(approval_fictions::application_id.eq(id))
            .filter(approval_fictions::occurred_at.is_null())
            .filter(approval_fictions::stopped_at.is_null()),
    )
    .set((
        approval_fictions::started_on.eq(None::<String>),
        approval_fictions::ends_on.eq(None::<String>),
        approval_fictions::alert_on.eq(None::<String>),
    ))
    .execute(conn)?;
    Ok(())
}

/// The documents asked for arrived: the period starts now (with the extension, if one was granted before).
pub(crate) fn documents_arrived(
    conn: &mut DbConnection,
    context: &EffectContext<'_>,
) -> Result<(), ApplicationError> {
    let Some(rule) = &context.procedure.procedure.approval_fiction else {
        return Ok(());
    };
    let waiting: Option<FictionRow> = approval_fictions::table
        .filter(approval_fictions::application_id.eq(context.application_id))
        .filter(approval_fictions::occurred_at.is_null())
        .filter(approval_fictions::stopped_at.is_null())
        .filter(approval_fictions::started_on.is_null())
        .select(FictionRow::as_select())
        .first(conn)
        .optional()?;
    let Some(waiting) = waiting else {
        return Ok(());
    };
    let day = today(context.now);
    let months = rule.months
        + if waiting.extended_at.is_some() {
            rule.max_extension_months
        } else {
            0
        };
    let (ends, alert) = period(context.calendar, day, months, rule.alert_days)?;
    diesel::update(approval_fictions::table.find(context.application_id))
        .set((
            approval_fictions::started_on.eq(day.to_string()),
            approval_fictions::ends_on.eq(ends),
            approval_fictions::alert_on.eq(alert),
        ))
        .execute(conn)?;
    Ok(())
}

/// A decision was made, or the case ended: the period stops.
pub(crate) fn stop(conn: &mut DbConnection, id: &str, reason: &str, now: Timestamp) -> Result<(), DbError> {
    diesel::update(
        approval_fictions::table
            .filter(approval_fictions::application_id.eq(id))
            .filter(approval_fictions::occurred_at.is_null())
            .filter(approval_fictions::stopped_at.is_null()),
    )
    .set((
        approval_fictions::stopped_at.eq(now),
        approval_fictions::stop_reason.eq(reason),
    ))
    .execute(conn)?;
    Ok(())
}

/// Extends the running period once by `months` (at most the procedure's maximum), with reasons the citizen sees
/// in the timeline and is told of by mail. Inside the caller's transaction.
pub(crate) fn extend(
    conn: &mut DbConnection,
    context: &EffectContext<'_>,
    state: &str,
    staff_id: &str,
    months: u32,
    reasons: &str,
) -> Result<(), ApplicationError> {
    let Some(rule) = &context.procedure.procedure.approval_fiction else {
        return Err(not_running());
    };
    if months == 0 || months > rule.max_extension_months {
        return Err(ApplicationError::field(
            "/months",
            "out_of_range",
            Text::new(
                format!(
                    "Die Frist kann um 1 bis {} Monate verlängert werden.",
                    rule.max_extension_months
                ),
                format!(
                    "The period can be extended by 1 to {} months.",
                    rule.max_extension_months
                ),
            ),
        ));
    }
    let current: Option<FictionRow> = approval_fictions::table
        .filter(approval_fictions::application_id.eq(context.application_id))
        .filter(approval_fictions::occurred_at.is_null())
        .filter(approval_fictions::stopped_at.is_null())
        .select(FictionRow::as_select())
        .first(conn)
        .optional()?;
    let Some(current) = current else {
        return Err(not_running());
    };
    if current.extended_at.is_some() {
        return Err(already_extended());
    }
    let day = today(context.now);
    // An extension must be communicated in time: within the running period.
    let ends = match current.ends_on.as_deref().map(str::parse::<NaiveDate>) {
        Some(Ok(ends)) if ends >= day => Some(ends),
        Some(_) => return Err(not_running()),
        None => None,
    };
    let (new_end, alert) = match ends {
        Some(ends) => {
            let extended = context
                .calendar
                .deadline(ends, Period::Months(months), false)
                .ok_or_else(|| ApplicationError::Internal("deadline beyond the calendar".into()))?;
            let alert = Period::Days(rule.alert_days).before(extended).unwrap_or(extended);
            (Some(extended.to_string()), Some(alert.to_string()))
        }
        // Awaiting documents: the extension is added when the period starts.
        None => (None, None),
    };
    // Once only, however many ask at the same time: the update takes the row only while it is not extended.
    let extended = diesel::update(
        approval_fictions::table
            .find(context.application_id)
            .filter(approval_fictions::extended_at.is_null()),
    )
    .set((
        approval_fictions::ends_on.eq(new_end),
        approval_fictions::alert_on.eq(alert),
        approval_fictions::extended_at.eq(context.now),
        approval_fictions::extended_by.eq(staff_id),
        approval_fictions::extension_reasons.eq(reasons),
    ))
    .execute(conn)?;
    if extended == 0 {
        return Err(already_extended());
    }
    case::record(
        conn,
        context.application_id,
        &Step {
            action: EXTENDED,
            from: Some(state),
            to: state,
            actor: StepActor::Staff(staff_id),
            comment: Some(reasons),
            public: true,
        },
        context.now,
    )?;
    crate::service::notify(conn, context, EXTENDED)?;
    crate::events::fiction(conn, &crate::events::FICTION_EXTENDED, context)?;
    Ok(())
}

fn already_extended() -> ApplicationError {
    ApplicationError::Conflict(
        "fiction_already_extended",
        Text::fixed(
            "Die Frist wurde bereits einmal verlängert; eine zweite Verlängerung ist nicht zulässig.",
            "The period has been extended once already; it cannot be extended again.",
        ),
    )
}

fn not_running() -> ApplicationError {
    ApplicationError::Conflict(
        "fiction_not_running",
        Text::fixed(
            "Für diesen Vorgang läuft keine Frist der Genehmigungsfiktion.",
            "No period of the fiction of approval runs for this case.",
        ),
    )
}

/// The cases whose period ended before today without a decision.
pub(crate) fn due(conn: &mut DbConnection, now: Timestamp) -> Result<Vec<String>, DbError> {
    Ok(approval_fictions::table
        .filter(approval_fictions::occurred_at.is_null())
        .filter(approval_fictions::stopped_at.is_null())
        .filter(approval_fictions::ends_on.lt(today(now).to_string()))
        .select(approval_fictions::application_id)
        .order(approval_fictions::ends_on)
        .load(conn)?)
}

/// The period of this case ended without a decision: the approval is deemed granted. Records it in the case
/// (a public step), tells the citizen, publishes the event. `false` when it was no longer due.
pub(crate) fn occur(
    conn: &mut DbConnection,
    context: &EffectContext<'_>,
    state: &str,
) -> Result<bool, ApplicationError> {
    let today = today(context.now).to_string();
    let occurred = diesel::update(
        approval_fictions::table
            .filter(approval_fictions::application_id.eq(context.application_id))
            .filter(approval_fictions::occurred_at.is_null())
            .filter(approval_fictions::stopped_at.is_null())
            .filter(approval_fictions::ends_on.lt(today)),
    )
    .set(approval_fictions::occurred_at.eq(context.now))
    .execute(conn)?;
    if occurred == 0 {
        return Ok(false);
    }
    let statute: String = approval_fictions::table
        .find(context.application_id)
        .select(approval_fictions::statute)
        .first(conn)?;
    let comment = format!(
        "Die Genehmigung gilt nach § 42a VwVfG in Verbindung mit {statute} als erteilt. / The approval is deemed granted (§ 42a VwVfG with {statute})."
    );
    case::record(
        conn,
        context.application_id,
        &Step {
            action: OCCURRED,
            from: Some(state),
            to: state,
            actor: StepActor::System,
            comment: Some(&comment),
            public: true,
        },
        context.now,
    )?;
    crate::service::notify(conn, context, OCCURRED)?;
    crate::events::fiction(conn, &crate::events::APPROVAL_DEEMED, context)?;
    amtsweg_audit::append(
        conn,
        &Event {
            actor: &Actor::system(),
            action: "case.approval_deemed",
            object: Some(("application", context.application_id)),
            outcome: Outcome::Success,
            at: context.now,
        },
    )?;
    Ok(true)
}

/// The fiction of a case, if its procedure has one; `staff` shows the internal parts.
pub(crate) fn of(conn: &mut DbConnection, id: &str, staff: bool) -> Result<Option<FictionView>, DbError> {
    let row: Option<FictionRow> = approval_fictions::table
        .find(id)
        .select(FictionRow::as_select())
        .first(conn)
        .optional()?;
    Ok(row.map(|row| {
        let status = match (&row.occurred_at, &row.stopped_at, &row.started_on) {
            (Some(_), _, _) => FictionStatus::Occurred,
            (None, Some(_), _) => FictionStatus::Stopped,
            (None, None, None) => FictionStatus::AwaitingDocuments,
            (None, None, Some(_)) => FictionStatus::Running,
        };
        FictionView {
            status,
            statute: row.statute,
            started_on: row.started_on,
            ends_on: row.ends_on,
            alert_on: row.alert_on.filter(|_| staff),
            extended_at: row.extended_at,
            extension_reasons: row.extension_reasons,
            extended_by: row.extended_by.filter(|_| staff),
            occurred_at: row.occurred_at,
            stopped_at: row.stopped_at,
            stop_reason: row.stop_reason.filter(|_| staff),
        }
    }))
}

/// The label of the fiction's steps in the timeline.
pub(crate) fn step_label(action: &str, lang: Lang) -> Option<String> {
    let text = match action {
        OCCURRED => Text::fixed("Genehmigung gilt als erteilt", "Approval deemed granted"),
        EXTENDED => Text::fixed("Entscheidungsfrist verlängert", "Decision period extended"),
        _ => return None,
    };
    Some(text.get(lang).to_owned())
}

impl crate::service::ApplicationService {
    /// The unit extends the period of a case's fiction of approval once, with reasons (§ 42a (2) sentence 3–4).
    pub async fn extend_fiction(
        &self,
        worker: crate::staff::CaseWorker,
        id: &str,
        version: i64,
        months: u32,
        reasons: &str,
        lang: Lang,
    ) -> Result<crate::staff::StaffCaseView, ApplicationError> {
        let reasons = reasons.trim().to_owned();
        if reasons.is_empty() || reasons.chars().count() > 5_000 {
            return Err(ApplicationError::field(
                "/reasons",
                "invalid_length",
                Text::fixed(
                    "Bitte begründen Sie die Verlängerung (1 bis 5.000 Zeichen).",
                    "Please give reasons for the extension (1 to 5,000 characters).",
                ),
            ));
        }
        let (id, service) = (id.to_owned(), self.clone());
        let now = self.clock().now();
        self.db()
            .write(move |conn| {
                let row = crate::staff::case_of(conn, &id, &worker)?;
                if row.version != version {
                    return Err(ApplicationError::StaleVersion { current: row.version });
                }
                let procedure = service.procedure_of(&row)?;
                let context = EffectContext::of(&row, &procedure, &service, now);
                let state = row.state.clone().unwrap_or_default();
                extend(conn, &context, &state, &worker.id, months, &reasons)?;
                crate::staff::advance_version(conn, &id, version, now)?;
                let row = crate::staff::load_row(conn, &id)?;
                let view = service.staff_view(conn, &row, &worker, lang, now)?;
                crate::staff::audit(conn, &worker, "case.fiction_extended", &id, now)?;
                Ok(view)
            })
            .await
    }
}
