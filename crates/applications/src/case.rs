//! The steps of a case, shared by every use case that moves one: record the step, enter the new state (queue
//! membership and claim follow the state), run the effects, then any automatic steps whose guards now hold.

use amtsweg_db::{DbConnection, DbError};
use amtsweg_kernel::Timestamp;
use amtsweg_workflow::{Definition, Effect, Facts};
use diesel::prelude::*;

use crate::error::ApplicationError;
use crate::schema::{application_steps, applications};
use crate::service::{EffectContext, run_effects};

/// Who took a step.
#[derive(Debug, Clone, Copy)]
pub(crate) enum StepActor<'a> {
    Citizen(&'a str),
    Staff(&'a str),
    /// A specialised procedure through the integration API.
    Client(&'a str),
    System,
}

impl StepActor<'_> {
    fn parts(&self) -> (&'static str, Option<&str>) {
        match self {
            StepActor::Citizen(id) => ("citizen", Some(id)),
            StepActor::Staff(id) => ("staff", Some(id)),
            StepActor::Client(id) => ("client", Some(id)),
            StepActor::System => ("system", None),
        }
    }
}

/// One step to record.
pub(crate) struct Step<'a> {
    pub action: &'a str,
    pub from: Option<&'a str>,
    pub to: &'a str,
    pub actor: StepActor<'a>,
    pub comment: Option<&'a str>,
    pub public: bool,
}

pub(crate) fn record(
    conn: &mut DbConnection,
    id: &str,
    step: &Step<'_>,
    now: Timestamp,
) -> Result<(), DbError> {
    insert_step(conn, id, step, None, now)
}

/// Records a step taken because of another module's event, once per event: answers whether it was new.
pub(crate) fn record_for_event(
    conn: &mut DbConnection,
    id: &str,
    step: &Step<'_>,
    event_id: &str,
    now: Timestamp,
) -> Result<bool, DbError> {
    let seen: i64 = application_steps::table
        .filter(application_steps::event_id.eq(event_id))
        .count()
        .get_result(conn)?;
    if seen > 0 {
        return Ok(false);
    }
    insert_step(conn, id, step, Some(event_id), now)?;
    Ok(true)
}

fn insert_step(
    conn: &mut DbConnection,
    id: &str,
    step: &Step<'_>,
    event_id: Option<&str>,
    now: Timestamp,
) -> Result<(), DbError> {
    // Steps are numbered per case. Two writers recording steps of one case at once (e.g. the delivery events of one
    // decision, handled by concurrent jobs) take turns on the case's row, so each sees the other's number.
    if let DbConnection::Postgres(pg) = conn {
        applications::table
            .find(id)
            .select(applications::id)
            .for_update()
            .first::<String>(pg)
            .optional()?;
    }
    let last: Option<i32> = application_steps::table
        .filter(application_steps::application_id.eq(id))
        .select(diesel::dsl::max(application_steps::seq))
        .first(conn)?;
    let (actor_kind, actor_id) = step.actor.parts();
    diesel::insert_into(application_steps::table)
        .values((
            application_steps::application_id.eq(id),
            application_steps::seq.eq(last.unwrap_or(0) + 1),
            application_steps::at.eq(now),
            application_steps::action.eq(step.action),
            application_steps::from_state.eq(step.from),
            application_steps::to_state.eq(step.to),
            application_steps::actor_kind.eq(actor_kind),
            application_steps::actor_id.eq(actor_id),
            application_steps::comment.eq(step.comment),
            application_steps::public.eq(step.public),
            application_steps::event_id.eq(event_id),
        ))
        .execute(conn)?;
    Ok(())
}

/// Puts the case into `to`: a queued state keeps the case's holder when it comes from another queued state and
/// puts it back into the queue (unclaimed, queued from now) when it comes from elsewhere; any other state releases it.
pub(crate) fn enter(
    conn: &mut DbConnection,
    id: &str,
    workflow: &Definition,
    from: Option<&str>,
    to: &str,
    now: Timestamp,
) -> Result<(), DbError> {
    let queued = workflow.state(to).is_some_and(|s| s.queued);
    let was_queued = from.and_then(|f| workflow.state(f)).is_some_and(|s| s.queued);
    if workflow.state(to).is_some_and(|s| s.terminal) {
        crate::fiction::stop(conn, id, to, now)?;
    }
    pause_service_norm(conn, id, workflow, from, to, now)?;
    let target = applications::table.find(id);
    match (queued, was_queued) {
        (true, true) => diesel::update(target)
            .set(applications::state.eq(to))
            .execute(conn)?,
        (true, false) => diesel::update(target)
            .set((
                applications::state.eq(to),
                applications::queued.eq(true),
                applications::queued_since.eq(now),
                applications::assignee.eq(None::<String>),
                applications::claimed_at.eq(None::<Timestamp>),
            ))
            .execute(conn)?,
        (false, _) => diesel::update(target)
            .set((
                applications::state.eq(to),
                applications::queued.eq(false),
                applications::queued_since.eq(None::<Timestamp>),
                applications::assignee.eq(None::<String>),
                applications::claimed_at.eq(None::<Timestamp>),
            ))
            .execute(conn)?,
    };
    Ok(())
}

/// Takes the automatic system steps whose guards hold, from `state` on; answers the state reached.
pub(crate) fn run_automatic(
    conn: &mut DbConnection,
    context: &EffectContext<'_>,
    workflow: &Definition,
    facts: &Facts<'_>,
    state: &str,
) -> Result<String, ApplicationError> {
    /// The most automatic steps in a row (a definition that loops is stopped there).
    const LIMIT: usize = 16;
    let mut state = state.to_owned();
    for _ in 0..LIMIT {
        let Some(transition) = workflow.automatic(&state, facts) else {
            break;
        };
        let taken = workflow
            .fire(&state, &transition.action, facts, None)
            .map_err(|refusal| ApplicationError::Internal(format!("automatic step refused: {refusal:?}")))?;
        let step = Step {
            action: &transition.action,
            from: Some(&state),
            to: &taken.to.id,
            actor: StepActor::System,
            comment: None,
            public: false,
        };
        record(conn, context.application_id, &step, context.now)?;
        enter(
            conn,
            context.application_id,
            workflow,
            Some(&state),
            &taken.to.id,
            context.now,
        )?;
        let effects: Vec<Effect> = taken.effects.into_iter().cloned().collect();
        state = taken.to.id.clone();
        run_effects(conn, context, workflow, &effects)?;
    }
    Ok(state)
}

/// Takes a step the engine allowed: records it, enters the new state, runs its effects and any automatic steps
/// after it, and publishes the transition. Answers the state reached.
pub(crate) fn advance(
    conn: &mut DbConnection,
    context: &EffectContext<'_>,
    workflow: &Definition,
    from: &str,
    step: amtsweg_workflow::Step<'_>,
    (actor, comment): (StepActor<'_>, Option<&str>),
    facts: &Facts<'_>,
) -> Result<String, ApplicationError> {
    let to = step.to.id.clone();
    let action = step.transition.action.clone();
    if workflow
        .state(from)
        .is_some_and(|s| s.waits_for == Some(amtsweg_workflow::Waits::Citizen))
    {
        // An answered request is closed by its answer before this step; one left open ends here.
        let expired = matches!(actor, StepActor::System);
        crate::requests::close_open(conn, context.application_id, expired, context.now)?;
    }
    if workflow
        .state(from)
        .is_some_and(|s| s.waits_for == Some(amtsweg_workflow::Waits::Payment))
        && workflow.state(&to).is_some_and(|s| s.terminal)
    {
        // Withdrawn or discontinued before paying: the fee is no longer asked for.
        crate::payments::close_open(conn, context, &action)?;
    }
    record(
        conn,
        context.application_id,
        &Step {
            action: &action,
            from: Some(from),
            to: &to,
            actor,
            comment,
            public: step.transition.public,
        },
        context.now,
    )?;
    enter(
        conn,
        context.application_id,
        workflow,
        Some(from),
        &to,
        context.now,
    )?;
    let effects: Vec<Effect> = step.effects.into_iter().cloned().collect();
    run_effects(conn, context, workflow, &effects)?;
    let system = Facts {
        by: amtsweg_workflow::Caller::System,
        ..facts.clone()
    };
    let reached = run_automatic(conn, context, workflow, &system, &to)?;
    crate::events::transitioned(conn, context, from, &reached, &action)?;
    Ok(reached)
}

/// The service-norm clock stops while the case waits for the citizen: entering such a state records since when,
/// leaving it moves the norm's last day back by the calendar days (Europe/Berlin) it waited.
fn pause_service_norm(
    conn: &mut DbConnection,
    id: &str,
    workflow: &Definition,
    from: Option<&str>,
    to: &str,
    now: Timestamp,
) -> Result<(), DbError> {
    let waits = |state: Option<&str>| {
        state
            .and_then(|s| workflow.state(s))
            .is_some_and(|s| s.waits_for == Some(amtsweg_workflow::Waits::Citizen))
    };
    match (waits(from), waits(Some(to))) {
        (false, true) => {
            diesel::update(applications::table.find(id))
                .set(applications::waiting_since.eq(now))
                .execute(conn)?;
        }
        (true, false) => {
            let (since, due): (Option<Timestamp>, Option<String>) = applications::table
                .find(id)
                .select((applications::waiting_since, applications::service_norm_due))
                .first(conn)?;
            let berlin = |at: Timestamp| amtsweg_workflow::deadline::berlin_date(at.utc().naive_utc());
            let moved = match (since, due.and_then(|d| d.parse::<chrono::NaiveDate>().ok())) {
                (Some(since), Some(due)) => {
                    let waited = (berlin(now) - berlin(since)).num_days().max(0);
                    due.checked_add_signed(chrono::Duration::days(waited))
                        .map(|d| d.to_string())
                }
                (_, due) => due.map(|d| d.to_string()),
            };
            diesel::update(applications::table.find(id))
                .set((
                    applications::waiting_since.eq(None::<Timestamp>),
                    applications::service_norm_due.eq(moved),
                ))
                .execute(conn)?;
        }
        _ => {}
    }
    Ok(())
}
