//! Platform administration for system administrators: the background jobs of every module (list, inspect, retry
//! dead ones), the recurring schedules (list, run now) and the event feed. Every change is audited.

use std::time::Duration;

use actix_web::http::StatusCode;
use actix_web::{HttpResponse, get, post, web};
use amtsweg_audit::{Actor, ActorKind, Event, Outcome};
use amtsweg_auth::StaffAuth;
use amtsweg_db::{Database, DbError};
use amtsweg_jobs::{JobFilter, JobId, JobStatus, JobView, Registry};
use amtsweg_kernel::http::{Path, Query, json_response, ok};
use amtsweg_kernel::pagination::{Page, PageQuery, encode_cursor};
use amtsweg_kernel::problem::{ApiError, FieldError, ProblemDoc};
use amtsweg_kernel::{SharedClock, Text, Timestamp};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

/// How long `run` waits for a schedule's job to finish before answering 202.
const RUN_WAIT: Duration = Duration::from_secs(10);

pub fn configure(cfg: &mut utoipa_actix_web::service_config::ServiceConfig) {
    cfg.service(list_jobs)
        .service(get_job)
        .service(retry_job)
        .service(list_schedules)
        .service(run_schedule)
        .service(list_events);
}

fn admin(auth: &StaffAuth) -> Result<Actor, ApiError> {
    auth.require_system_admin()?;
    Ok(Actor::new(
        ActorKind::Staff,
        &auth.account_id,
        auth.address.clone(),
    ))
}

fn db_error(err: DbError) -> ApiError {
    match err {
        DbError::Unavailable(cause) => ApiError::unavailable(cause),
        other => ApiError::internal(other),
    }
}

fn job_not_found() -> ApiError {
    ApiError::new(
        StatusCode::NOT_FOUND,
        "job_not_found",
        Text::fixed("Diesen Job gibt es nicht.", "There is no such job."),
    )
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct JobQuery {
    /// Only jobs of this kind, e.g. `mail.send`.
    kind: Option<String>,
    /// `queued`, `running`, `succeeded` or `dead`.
    status: Option<String>,
    /// Items per page, 1–100 (default 20).
    #[param(minimum = 1, maximum = 100)]
    limit: Option<u32>,
    /// `next_cursor` of the previous page.
    cursor: Option<String>,
}

/// Background jobs of every module, newest first; filter by kind and status.
#[utoipa::path(
    tag = "admin",
    security(("staff" = [])),
    params(JobQuery),
    responses(
        (status = 200, description = "One page of jobs", body = Page<JobView>),
        (status = 403, description = "Not a system administrator", body = ProblemDoc, content_type = "application/problem+json"),
    )
)]
#[get("/admin/jobs")]
async fn list_jobs(
    db: web::Data<Database>,
    auth: StaffAuth,
    query: Query<JobQuery>,
) -> Result<HttpResponse, ApiError> {
    admin(&auth)?;
    let query = query.into_inner();
    let page = PageQuery {
        limit: query.limit,
        cursor: query.cursor,
    }
    .parse()?;
    let status = match query.status.as_deref() {
        None => None,
        Some(text) => Some(JobStatus::parse(text).ok_or_else(|| {
            ApiError::bad_request(
                "invalid_query",
                Text::fixed("Ungültige Abfrageparameter.", "Invalid query parameters."),
            )
            .with_errors(vec![FieldError::at_parameter(
                "status",
                "not_allowed",
                Text::fixed(
                    "Erlaubt sind queued, running, succeeded und dead.",
                    "Allowed are queued, running, succeeded and dead.",
                ),
            )])
        })?),
    };
    let filter = JobFilter {
        kind: query.kind,
        status,
        before: page.after,
        limit: i64::try_from(page.limit + 1).unwrap_or(101),
    };
    let mut jobs = db
        .read(move |conn| amtsweg_jobs::list(conn, &filter))
        .await
        .map_err(db_error)?;
    let next_cursor = if jobs.len() > page.limit {
        jobs.truncate(page.limit);
        jobs.last().map(|job| encode_cursor(job.id.as_str()))
    } else {
        None
    };
    ok(&Page {
        items: jobs,
        next_cursor,
    })
}

/// One job with its attempts, last error and result.
#[utoipa::path(
    tag = "admin",
    security(("staff" = [])),
    params(("id" = String, Path, description = "Job id")),
    responses(
        (status = 200, description = "The job", body = JobView),
        (status = 404, description = "No such job", body = ProblemDoc, content_type = "application/problem+json"),
    )
)]
#[get("/admin/jobs/{id}")]
async fn get_job(
    db: web::Data<Database>,
    auth: StaffAuth,
    id: Path<String>,
) -> Result<HttpResponse, ApiError> {
    admin(&auth)?;
    let id = JobId::from_string(id.into_inner());
    let job = db
        .read(move |conn| amtsweg_jobs::job(conn, &id))
        .await
        .map_err(db_error)?;
    ok(&job.ok_or_else(job_not_found)?)
}

/// Queues a dead job again, from its first attempt.
#[utoipa::path(
    tag = "admin",
    security(("staff" = [])),
    params(("id" = String, Path, description = "Job id")),
    responses(
        (status = 200, description = "Queued again", body = JobView),
        (status = 404, description = "No dead job with this id", body = ProblemDoc, content_type = "application/problem+json"),
    )
)]
#[post("/admin/jobs/{id}/retry")]
async fn retry_job(
    db: web::Data<Database>,
    clock: web::Data<SharedClock>,
    auth: StaffAuth,
    id: Path<String>,
) -> Result<HttpResponse, ApiError> {
    let actor = admin(&auth)?;
    let (id, now) = (JobId::from_string(id.into_inner()), clock.now());
    let job = db
        .write(move |conn| {
            let job = amtsweg_jobs::retry(conn, &id, now)?;
            if job.is_some() {
                audit(conn, &actor, "jobs.retried", id.as_str(), now)?;
            }
            Ok::<_, DbError>(job)
        })
        .await
        .map_err(db_error)?;
    ok(&job.ok_or_else(|| {
        ApiError::new(
            StatusCode::NOT_FOUND,
            "job_not_found",
            Text::fixed(
                "Es gibt keinen toten Job mit dieser Kennung.",
                "There is no dead job with this id.",
            ),
        )
    })?)
}

#[derive(Debug, Serialize, ToSchema)]
pub struct ScheduleView {
    pub name: String,
    /// The job kind it runs.
    pub kind: String,
    /// The length of its period.
    pub every_seconds: i64,
    /// When the next period starts.
    pub next_run_at: String,
}

/// The recurring schedules the modules declared; each runs once per period across all instances.
#[utoipa::path(
    tag = "admin",
    security(("staff" = [])),
    responses((status = 200, description = "The schedules", body = Vec<ScheduleView>))
)]
#[get("/admin/schedules")]
async fn list_schedules(
    registry: web::Data<Registry>,
    clock: web::Data<SharedClock>,
    auth: StaffAuth,
) -> Result<HttpResponse, ApiError> {
    admin(&auth)?;
    let now = clock.now();
    let schedules: Vec<ScheduleView> = registry
        .schedules()
        .iter()
        .map(|schedule| {
            let amtsweg_jobs::Period::Every(length) = schedule.period;
            let (_, start) = schedule.period.current(now);
            ScheduleView {
                name: schedule.name.to_owned(),
                kind: schedule.kind.to_owned(),
                every_seconds: length.num_seconds(),
                next_run_at: (start + length).rfc3339(),
            }
        })
        .collect();
    ok(&schedules)
}

/// Runs a schedule's job now, outside its period. Answers 200 with the finished job when it is done within 10 s,
/// else 202 with the job as it stands (follow it at `/admin/jobs/{id}`).
#[utoipa::path(
    tag = "admin",
    security(("staff" = [])),
    params(("name" = String, Path, description = "Schedule name, e.g. `flag-inactive-accounts`")),
    responses(
        (status = 200, description = "Done", body = JobView),
        (status = 202, description = "Queued or still running", body = JobView),
        (status = 404, description = "No such schedule", body = ProblemDoc, content_type = "application/problem+json"),
    )
)]
#[post("/admin/schedules/{name}/run")]
async fn run_schedule(
    db: web::Data<Database>,
    registry: web::Data<Registry>,
    clock: web::Data<SharedClock>,
    auth: StaffAuth,
    name: Path<String>,
) -> Result<HttpResponse, ApiError> {
    let actor = admin(&auth)?;
    let Some(schedule) = registry.schedule_named(&name).cloned() else {
        return Err(ApiError::new(
            StatusCode::NOT_FOUND,
            "schedule_not_found",
            Text::fixed("Diesen Zeitplan gibt es nicht.", "There is no such schedule."),
        ));
    };
    let now = clock.now();
    let id = db
        .write(move |conn| {
            let id = amtsweg_jobs::run_schedule_now(conn, &schedule, now)?;
            audit(conn, &actor, "jobs.schedule_run", schedule.name, now)?;
            Ok::<_, DbError>(id)
        })
        .await
        .map_err(db_error)?;
    let started = tokio::time::Instant::now();
    loop {
        let lookup = id.clone();
        let job = db
            .read(move |conn| amtsweg_jobs::job(conn, &lookup))
            .await
            .map_err(db_error)?
            .ok_or_else(job_not_found)?;
        let finished = matches!(job.status, JobStatus::Succeeded | JobStatus::Dead);
        if finished || started.elapsed() >= RUN_WAIT {
            let status = if finished {
                StatusCode::OK
            } else {
                StatusCode::ACCEPTED
            };
            return json_response(status, &job);
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

fn audit(
    conn: &mut amtsweg_db::DbConnection,
    actor: &Actor,
    action: &str,
    object: &str,
    at: Timestamp,
) -> Result<(), DbError> {
    amtsweg_audit::append(
        conn,
        &Event {
            actor,
            action,
            object: Some(("job", object)),
            outcome: Outcome::Success,
            at,
        },
    )
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct EventQuery {
    /// Only events of this type, e.g. `de.amtsweg.account.created.v1`.
    #[serde(rename = "type")]
    #[param(rename = "type")]
    event_type: Option<String>,
    /// Items per page, 1–100 (default 20).
    #[param(minimum = 1, maximum = 100)]
    limit: Option<u32>,
    /// `next_cursor` of the previous page; without it the feed starts at the beginning.
    cursor: Option<String>,
}

/// The event feed in the order of its positions: a reader that follows `next_cursor` sees every event exactly
/// once, also those whose transaction committed late. The last page carries a `next_cursor` as well, to poll
/// from.
#[utoipa::path(
    tag = "admin",
    security(("staff" = [])),
    params(EventQuery),
    responses(
        (status = 200, description = "One page of events (CloudEvents 1.0)", body = Page<amtsweg_events::CloudEvent>),
        (status = 403, description = "Not a system administrator", body = ProblemDoc, content_type = "application/problem+json"),
    )
)]
#[get("/admin/events")]
async fn list_events(
    db: web::Data<Database>,
    auth: StaffAuth,
    query: Query<EventQuery>,
) -> Result<HttpResponse, ApiError> {
    admin(&auth)?;
    let query = query.into_inner();
    let page = PageQuery {
        limit: query.limit,
        cursor: query.cursor,
    }
    .parse()?;
    let after = match page.after.as_deref() {
        None => 0,
        Some(position) => position.parse::<i64>().map_err(|_| {
            ApiError::bad_request(
                "invalid_query",
                Text::fixed("Ungültige Abfrageparameter.", "Invalid query parameters."),
            )
            .with_errors(vec![FieldError::at_parameter(
                "cursor",
                "invalid_cursor",
                Text::fixed(
                    "Der Cursor ist ungültig; verwenden Sie next_cursor der vorigen Seite.",
                    "The cursor is invalid; use next_cursor of the previous page.",
                ),
            )])
        })?,
    };
    let limit = i64::try_from(page.limit).unwrap_or(20);
    let types = query.event_type.map(|t| vec![t]);
    let events = db
        .read(move |conn| amtsweg_events::read(conn, after, limit, types.as_deref()))
        .await
        .map_err(db_error)?;
    let last = events
        .last()
        .map_or(after.to_string(), |event| event.sequence.clone());
    ok(&Page {
        items: events,
        next_cursor: Some(encode_cursor(&last)),
    })
}
