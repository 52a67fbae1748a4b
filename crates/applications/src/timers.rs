//! Running timers: a recurring job looks for timers whose last day has passed (in Europe/Berlin) and takes the
//! system transition their workflow names — a reply window that ran out brings the case back to the queue, an
//! unpaid fee discontinues it. Timers that only alert stay visible as overdue in the queues.

use amtsweg_db::DbError;
use amtsweg_jobs::{JobError, Period, Registry, Schedule, handler_fn};
use amtsweg_workflow::Expiry;
use diesel::prelude::*;
use serde_json::json;

use crate::error::ApplicationError;
use crate::schema::{application_timers, applications};
use crate::service::{ApplicationRow, ApplicationService, EffectContext};

pub const FIRE_TIMERS: &str = "applications.fire_timers";

/// The applicant is reminded this many days before a reply window (an answer, a payment) ends.
const REMIND_DAYS: u64 = 3;

impl ApplicationService {
    /// The job handler and its hourly schedule.
    pub(crate) fn timer_jobs(&self) -> Registry {
        let service = self.clone();
        Registry::new()
            .handler(handler_fn(FIRE_TIMERS, 5, move |_job| {
                let service = service.clone();
                async move {
                    match service.fire_due_timers().await {
                        Ok(fired) => Ok(Some(json!({"fired": fired}))),
                        Err(err) => Err(JobError::Transient(err.to_string())),
                    }
                }
            }))
            .schedule(Schedule {
                name: "application-timers",
                period: Period::Every(chrono::Duration::hours(1)),
                kind: FIRE_TIMERS,
                payload: json!({}),
            })
    }

    /// Takes the expiry transition of every timer whose last day has passed; answers how many fired. Each timer
    /// fires in its own transaction, so one broken case does not hold up the others, and a timer fires once: its
    /// row goes in the same transaction.
    pub async fn fire_due_timers(&self) -> Result<usize, ApplicationError> {
        let now = self.clock().now();
        let today = amtsweg_workflow::deadline::berlin_date(now.utc().naive_utc()).to_string();
        let due: Vec<(String, String)> = self
            .db()
            .read(move |conn| {
                application_timers::table
                    .filter(application_timers::due_on.lt(today))
                    .select((application_timers::application_id, application_timers::timer_id))
                    .order(application_timers::due_on)
                    .load(conn)
                    .map_err(DbError::from)
            })
            .await?;
        let mut fired = 0;
        for (id, timer_id) in due {
            let service = self.clone();
            let took = self
                .db()
                .write(move |conn| {
                    let row: Option<ApplicationRow> = applications::table
                        .find(&id)
                        .select(ApplicationRow::as_select())
                        .first(conn)
                        .optional()?;
                    let Some(row) = row else { return Ok(false) };
                    let (workflow, _) = service.case_parts(conn, &row)?;
                    let Some(Expiry::Action(action)) = workflow.timer(&timer_id).map(|t| t.on_expiry.clone())
                    else {
                        // Alerts stay until their timer is stopped; the queues count them as overdue.
                        return Ok(false);
                    };
                    let timer = application_timers::table
                        .filter(application_timers::application_id.eq(&id))
                        .filter(application_timers::timer_id.eq(&timer_id));
                    let removed = diesel::delete(timer).execute(conn)?;
                    if removed == 0 {
                        return Ok(false);
                    }
                    // A timer whose transition no longer leaves the current state has nothing left to do.
                    let expired = vec![timer_id.clone()];
                    service.take_system_step(conn, &row, &action, &expired, "case.timer_expired", now)
                })
                .await?;
            fired += usize::from(took);
        }
        fired += self.fire_due_fictions().await?;
        self.remind_reply_windows().await?;
        Ok(fired)
    }

    /// Records the fiction of approval of every case whose period ended before today without a decision, each in
    /// its own transaction; answers how many occurred.
    async fn fire_due_fictions(&self) -> Result<usize, ApplicationError> {
        let now = self.clock().now();
        let due = self.db().read(move |conn| crate::fiction::due(conn, now)).await?;
        let mut occurred = 0;
        for id in due {
            let service = self.clone();
            let took = self
                .db()
                .write(move |conn| {
                    let row: ApplicationRow = crate::staff::load_row(conn, &id)?;
                    let procedure = service.procedure_of(&row)?;
                    let context = EffectContext::of(&row, &procedure, &service, now);
                    let state = row.state.clone().unwrap_or_default();
                    let took = crate::fiction::occur(conn, &context, &state)?;
                    if took {
                        diesel::update(applications::table.find(&id))
                            .set(applications::version.eq(row.version + 1))
                            .execute(conn)?;
                    }
                    Ok::<_, ApplicationError>(took)
                })
                .await?;
            occurred += usize::from(took);
        }
        Ok(occurred)
    }
}

impl ApplicationService {
    /// Reminds applicants, once per window, that a reply window (an answer asked for, a fee to pay) ends within
    /// the next days. Answers how many were reminded.
    pub(crate) async fn remind_reply_windows(&self) -> Result<usize, ApplicationError> {
        let now = self.clock().now();
        let today = amtsweg_workflow::deadline::berlin_date(now.utc().naive_utc());
        let soon = (today + chrono::Days::new(REMIND_DAYS)).to_string();
        let today = today.to_string();
        let due: Vec<(String, String)> = self
            .db()
            .read(move |conn| {
                application_timers::table
                    .filter(application_timers::kind.eq("reply_window"))
                    .filter(application_timers::reminded_at.is_null())
                    .filter(application_timers::due_on.ge(today))
                    .filter(application_timers::due_on.le(soon))
                    .select((application_timers::application_id, application_timers::timer_id))
                    .load(conn)
                    .map_err(DbError::from)
            })
            .await?;
        let mut reminded = 0;
        for (id, timer_id) in due {
            let service = self.clone();
            let sent = self
                .db()
                .write(move |conn| {
                    let marked = diesel::update(
                        application_timers::table
                            .filter(application_timers::application_id.eq(&id))
                            .filter(application_timers::timer_id.eq(&timer_id))
                            .filter(application_timers::reminded_at.is_null()),
                    )
                    .set(application_timers::reminded_at.eq(now))
                    .execute(conn)?;
                    if marked == 0 {
                        return Ok::<_, ApplicationError>(false);
                    }
                    let row: ApplicationRow = crate::staff::load_row(conn, &id)?;
                    let (_, procedure) = service.case_parts(conn, &row)?;
                    let context = EffectContext::of(&row, &procedure, &service, now);
                    crate::service::notify(conn, &context, "erinnerung")?;
                    Ok(true)
                })
                .await?;
            reminded += usize::from(sent);
        }
        Ok(reminded)
    }
}
