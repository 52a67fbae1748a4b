//! The pull API's own records: the inbox of submitted applications handed to specialised procedures (filled from
//! the applications module's `submitted` events, in feed order) and each client's technical receipt (FIT-Connect
//! accept/reject).

use amtsweg_audit::{Actor, ActorKind, Event, Outcome};
use amtsweg_catalogue::CatalogueService;
use amtsweg_db::{DbConnection, DbError};
use amtsweg_events::Procedures;
use amtsweg_jobs::JobError;
use amtsweg_kernel::{ApiError, FieldError, Text, Timestamp};
use diesel::prelude::*;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use utoipa::ToSchema;

use crate::events;
use crate::schema::{integration_acknowledgements as acks, integration_inbox as inbox};

/// The job that files a submitted application in the inbox.
pub const INBOX: &str = "integration.inbox";

/// A submitted application waiting for the client's acknowledgement.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct PendingApplication {
    pub id: String,
    pub case_number: String,
    pub procedure_id: String,
    pub submitted_at: Timestamp,
    /// Where the full application is.
    pub href: String,
    /// Position of the submission in the event feed (pages are in this order).
    #[serde(skip)]
    pub position: i64,
}

/// Files the application of a `submitted` event when its procedure is processed by a specialised procedure
/// (`processing.by: client` or `both`); idempotent.
pub fn file_submission(
    conn: &mut DbConnection,
    catalogue: &CatalogueService,
    event: &Value,
) -> Result<(), JobError> {
    let data = &event["data"];
    let text = |name: &str| data[name].as_str().map(str::to_owned);
    let (Some(application), Some(procedure), Some(case_number)) =
        (text("application_id"), text("procedure_id"), text("case_number"))
    else {
        return Err(JobError::Permanent("a submitted event without its ids".into()));
    };
    let handed_over = catalogue.catalogue().get(&procedure).is_some_and(|p| {
        p.procedure.processing.by != amtsweg_catalogue::domain::procedure::ProcessedBy::Staff
    });
    if !handed_over {
        return Ok(());
    }
    let position: i64 = event["sequence"]
        .as_str()
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| JobError::Permanent("a submitted event without its position".into()))?;
    let submitted_at = chrono::DateTime::parse_from_rfc3339(event["time"].as_str().unwrap_or_default())
        .map(|t| Timestamp::from(t.with_timezone(&chrono::Utc)))
        .map_err(|err| JobError::Permanent(err.to_string()))?;
    let insert = diesel::insert_into(inbox::table)
        .values((
            inbox::application_id.eq(&application),
            inbox::procedure_id.eq(&procedure),
            inbox::case_number.eq(&case_number),
            inbox::submitted_at.eq(submitted_at),
            inbox::position.eq(position),
        ))
        .on_conflict_do_nothing();
    match conn {
        DbConnection::Postgres(pg) => insert.execute(pg),
        DbConnection::Sqlite(lite) => insert.execute(lite),
    }
    .map_err(|err| JobError::Transient(err.to_string()))?;
    Ok(())
}

/// The client's pending applications after feed position `after`: in its procedures, not yet acknowledged by it.
pub fn pending(
    conn: &mut DbConnection,
    client: &str,
    procedures: &Procedures,
    after: i64,
    limit: i64,
) -> Result<Vec<PendingApplication>, DbError> {
    let acknowledged = acks::table
        .filter(acks::client_id.eq(client.to_owned()))
        .filter(acks::application_id.eq(inbox::application_id));
    let mut query = inbox::table
        .filter(inbox::position.gt(after))
        .filter(diesel::dsl::not(diesel::dsl::exists(acknowledged)))
        .into_boxed();
    if let Procedures::Some(ids) = procedures {
        query = query.filter(inbox::procedure_id.eq_any(ids.clone()));
    }
    let rows: Vec<(String, String, String, Timestamp, i64)> = query
        .order(inbox::position.asc())
        .limit(limit)
        .select((
            inbox::application_id,
            inbox::case_number,
            inbox::procedure_id,
            inbox::submitted_at,
            inbox::position,
        ))
        .load(conn)?;
    Ok(rows
        .into_iter()
        .map(
            |(id, case_number, procedure_id, submitted_at, position)| PendingApplication {
                href: format!("/api/v1/integration/applications/{id}"),
                id,
                case_number,
                procedure_id,
                submitted_at,
                position,
            },
        )
        .collect())
}

/// A problem a client found with a submission (RFC 9457 members).
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct SubmissionProblem {
    /// A URI naming the kind of problem.
    #[serde(rename = "type")]
    pub problem_type: String,
    pub title: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub detail: Option<String>,
    /// A JSON Pointer into the application's data, or an attachment id.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub instance: Option<String>,
}

/// The technical receipt: `accepted`, or `rejected` with at least one problem.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Acknowledgement {
    /// `accepted` or `rejected`.
    pub outcome: String,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub problems: Vec<SubmissionProblem>,
}

/// A recorded acknowledgement.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct AcknowledgementView {
    pub application_id: String,
    pub case_number: String,
    pub outcome: String,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub problems: Vec<SubmissionProblem>,
    pub acknowledged_at: Timestamp,
}

impl Acknowledgement {
    /// Every problem of the request, with its pointer.
    pub fn check(&self) -> Result<(), ApiError> {
        let mut errors = Vec::new();
        match self.outcome.as_str() {
            "accepted" if !self.problems.is_empty() => errors.push(FieldError::at_pointer(
                "/problems",
                "not_allowed",
                Text::fixed(
                    "Eine Annahme führt keine Probleme auf.",
                    "An acceptance lists no problems.",
                ),
            )),
            "accepted" => {}
            "rejected" if self.problems.is_empty() || self.problems.len() > 100 => {
                errors.push(FieldError::at_pointer(
                    "/problems",
                    "invalid_length",
                    Text::fixed(
                        "Eine Zurückweisung nennt 1 bis 100 Probleme.",
                        "A rejection names 1 to 100 problems.",
                    ),
                ))
            }
            "rejected" => {}
            _ => errors.push(FieldError::at_pointer(
                "/outcome",
                "not_allowed",
                Text::fixed(
                    "Erlaubt sind „accepted“ und „rejected“.",
                    "Allowed are “accepted” and “rejected”.",
                ),
            )),
        }
        for (i, problem) in self.problems.iter().enumerate() {
            let fields = [
                ("type", Some(&problem.problem_type), 1_000),
                ("title", Some(&problem.title), 500),
                ("detail", problem.detail.as_ref(), 5_000),
                ("instance", problem.instance.as_ref(), 1_000),
            ];
            for (name, value, max) in fields {
                let Some(value) = value else { continue };
                let length = value.chars().count();
                if (name == "type" || name == "title") && value.trim().is_empty() || length > max {
                    errors.push(FieldError::at_pointer(
                        format!("/problems/{i}/{name}"),
                        "invalid_length",
                        Text::new(format!("1 bis {max} Zeichen."), format!("1 to {max} characters.")),
                    ));
                }
            }
        }
        if errors.is_empty() {
            Ok(())
        } else {
            Err(ApiError::validation(errors))
        }
    }
}

fn already(outcome: &str) -> ApiError {
    ApiError::new(
        actix_web::http::StatusCode::CONFLICT,
        "already_acknowledged",
        Text::fixed(
            "Dieser Antrag wurde von diesem Client schon anders quittiert.",
            "This client has already acknowledged this application differently.",
        ),
    )
    .with_extension("outcome", json!(outcome))
}

/// Records the client's acknowledgement of an application in its inbox (and its procedures); the same
/// acknowledgement again answers the recorded one, a different one 409.
pub(crate) fn acknowledge(
    conn: &mut DbConnection,
    client: &str,
    procedures: &Procedures,
    application_id: &str,
    ack: &Acknowledgement,
    now: Timestamp,
) -> Result<AcknowledgementView, crate::Failure> {
    let filed: Option<(String, String)> = inbox::table
        .find(application_id)
        .select((inbox::procedure_id, inbox::case_number))
        .first(conn)
        .optional()?;
    let Some((procedure, case_number)) =
        filed.filter(|(procedure, _)| crate::scopes::includes(procedures, procedure))
    else {
        return Err(crate::Failure(ApiError::not_found(
            "application_not_found",
            Text::fixed(
                "Kein Antrag mit dieser Kennung für diesen Client.",
                "No application with this id for this client.",
            ),
        )));
    };
    let problems =
        (!ack.problems.is_empty()).then(|| serde_json::to_string(&ack.problems).unwrap_or_default());
    let insert = diesel::insert_into(acks::table)
        .values((
            acks::application_id.eq(application_id),
            acks::client_id.eq(client),
            acks::outcome.eq(&ack.outcome),
            acks::problems.eq(&problems),
            acks::acknowledged_at.eq(now),
        ))
        .on_conflict_do_nothing();
    let inserted = match conn {
        DbConnection::Postgres(pg) => insert.execute(pg),
        DbConnection::Sqlite(lite) => insert.execute(lite),
    }?;
    let (outcome, stored_problems, at): (String, Option<String>, Timestamp) = acks::table
        .find((client, application_id))
        .select((acks::outcome, acks::problems, acks::acknowledged_at))
        .first(conn)?;
    if inserted == 0 && (outcome != ack.outcome || stored_problems != problems) {
        return Err(crate::Failure(already(&outcome)));
    }
    if inserted == 1 {
        let event = if outcome == "accepted" {
            &events::ACCEPTED
        } else {
            &events::REJECTED
        };
        let data = json!({
            "application_id": application_id,
            "case_number": case_number,
            "client_id": client,
            "problems": ack.problems,
        });
        amtsweg_events::publish_about(conn, event, application_id, &procedure, &data, now)?;
        amtsweg_audit::append(
            conn,
            &Event {
                actor: &Actor::new(ActorKind::Client, client.to_owned(), None),
                action: if outcome == "accepted" {
                    "integration.application_accepted"
                } else {
                    "integration.application_rejected"
                },
                object: Some(("application", application_id)),
                outcome: Outcome::Success,
                at: now,
            },
        )?;
    }
    Ok(AcknowledgementView {
        application_id: application_id.to_owned(),
        case_number,
        outcome,
        problems: stored_problems
            .and_then(|p| serde_json::from_str(&p).ok())
            .unwrap_or_default(),
        acknowledged_at: at,
    })
}

pub(crate) fn db(err: DbError) -> ApiError {
    match err {
        DbError::Unavailable(cause) => ApiError::unavailable(cause),
        other => ApiError::internal(other),
    }
}
