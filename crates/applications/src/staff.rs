//! Case work: queues per unit and procedure, claims that hand each case to exactly one case worker, the case as
//! staff see it, and transitions with optimistic concurrency. Staff see only cases of the units where they hold a
//! case-work role; every read path checks it, and every read of a case is recorded.

use std::collections::BTreeMap;

use amtsweg_audit::{Actor, ActorKind, Event, Outcome};
use amtsweg_auth::Role;
use amtsweg_db::{DbConnection, DbError};
use amtsweg_kernel::{Lang, Text, Timestamp};
use amtsweg_workflow::{By, Caller, Facts, Refusal};
use diesel::prelude::*;
use serde::Serialize;
use serde_json::{Value, json};
use utoipa::ToSchema;

use crate::case::{self, StepActor};
use crate::error::ApplicationError;
use crate::requests::InformationRequestView;
use crate::schema::{
    application_attachments, application_notes, application_steps, application_timers, applications,
    approval_fictions,
};
use crate::service::AttachmentRow;
use crate::service::{ApplicationRow, ApplicationService, EffectContext, payment_settled, pick};
use crate::view::AttachmentView;

/// The roles that work on cases.
pub const CASE_ROLES: [&str; 2] = ["case_worker", "supervisor"];

/// A staff member as case work sees them: their id and the case-work roles they hold, per unit (`*` for all).
#[derive(Debug, Clone)]
pub struct CaseWorker {
    pub id: String,
    pub roles: Vec<Role>,
}

impl CaseWorker {
    pub fn new(id: &str, roles: &[Role]) -> CaseWorker {
        CaseWorker {
            id: id.to_owned(),
            roles: roles
                .iter()
                .filter(|role| CASE_ROLES.contains(&role.name.as_str()))
                .cloned()
                .collect(),
        }
    }

    /// The case-work roles held in `unit`.
    pub fn roles_in(&self, unit: &str) -> Vec<String> {
        self.roles
            .iter()
            .filter(|role| role.unit == unit || role.unit == "*")
            .map(|role| role.name.clone())
            .collect()
    }

    fn works_in(&self, unit: &str) -> bool {
        !self.roles_in(unit).is_empty()
    }

    fn actor(&self) -> Actor {
        Actor::new(ActorKind::Staff, self.id.clone(), None)
    }
}

/// One queue: the cases of a procedure in a unit that wait for a case worker.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct QueueView {
    /// `{unit}.{procedure}`.
    pub queue_id: String,
    pub unit_id: String,
    pub procedure_id: String,
    /// Cases waiting and not claimed.
    pub count: i64,
    /// Cases waiting and claimed by someone.
    pub claimed: i64,
    /// Since when the longest-waiting unclaimed case waits.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub oldest_since: Option<Timestamp>,
    /// Its age in seconds.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub oldest_age_seconds: Option<i64>,
    /// Waiting cases whose processing deadline has passed.
    pub overdue: i64,
    /// Cases (waiting or claimed) whose fiction of approval (§ 42a VwVfG) ends soon: the alert day has come and
    /// no decision has been made.
    pub approval_fiction_alerts: i64,
}

/// A case in lists and claims.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct CaseSummary {
    pub id: String,
    pub case_number: String,
    pub procedure_id: String,
    pub unit_id: String,
    pub state: String,
    pub applicant_name: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub assignee: Option<String>,
    pub submitted_at: Timestamp,
    /// The last day of the service norm (moved back while the case waited for the citizen).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub service_norm_due: Option<String>,
    /// For `If-Match` on transitions.
    pub version: i64,
}

/// A form field with its label.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct LabelledField {
    pub pointer: String,
    pub label: String,
    #[schema(value_type = Object)]
    pub value: Value,
}

/// A step of the case as staff see it (with who took it).
#[derive(Debug, Clone, Serialize, ToSchema, Queryable, Selectable)]
#[diesel(table_name = application_steps)]
pub struct CaseStep {
    pub at: Timestamp,
    pub action: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub from_state: Option<String>,
    pub to_state: String,
    /// `citizen`, `staff` or `system`.
    pub actor_kind: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub actor_id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub comment: Option<String>,
    /// Whether the citizen sees the comment.
    pub public: bool,
}

/// An action the caller may take now.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct ActionView {
    pub action: String,
    pub label: String,
    pub to_state: String,
    pub comment_required: bool,
    /// Decisions are taken through the decision route, which renders the decision document.
    /// `approved`, `rejected` or `partially_approved`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub decision: Option<&'static str>,
    /// Taken by opening an information request (`…/information-requests`).
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub information_request: bool,
}

#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct StaffCaseView {
    #[serde(flatten)]
    pub summary: CaseSummary,
    /// The state's label in the request's language.
    pub state_label: String,
    #[schema(value_type = Object)]
    pub data: Value,
    /// The form's fields in the order and with the labels of the form.
    pub fields: Vec<LabelledField>,
    pub attachments: Vec<AttachmentView>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub fee_cents: Option<i64>,
    /// The fee line by line with its booking data: as assessed, or as set with the decision.
    pub fee_lines: Vec<crate::fees::FeeLineView>,
    pub documents_complete: bool,
    pub payment_settled: bool,
    pub steps: Vec<CaseStep>,
    /// Internal notes, oldest first; never shown to the citizen.
    pub notes: Vec<NoteView>,
    /// Information requests to the applicant, newest first.
    pub information_requests: Vec<InformationRequestView>,
    /// For an application in written form: the eID assertion it was submitted under (§ 3a (2) VwVfG).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub written_form: Option<crate::written_form::WrittenFormView>,
    /// Where a statute orders a fiction of approval (§ 42a VwVfG): its period, extension and outcome.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub approval_fiction: Option<crate::fiction::FictionView>,
    pub actions: Vec<ActionView>,
}

#[derive(Debug, Clone, Serialize, ToSchema, Queryable, Selectable)]
#[diesel(table_name = application_notes)]
pub struct NoteView {
    pub id: String,
    pub author: String,
    pub text: String,
    pub created_at: Timestamp,
}

struct QueueRow {
    unit_id: String,
    procedure_id: String,
    unclaimed: bool,
    count: i64,
    oldest: Option<Timestamp>,
}

impl ApplicationService {
    /// The queues of the units where the caller works: one per unit and procedure of the catalogue.
    pub async fn queues(&self, worker: CaseWorker) -> Result<Vec<QueueView>, ApplicationError> {
        let now = self.clock().now();
        let today = amtsweg_workflow::deadline::berlin_date(now.utc().naive_utc()).to_string();
        let mut queues: BTreeMap<(String, String), QueueView> = BTreeMap::new();
        for procedure in self.catalogue().iter() {
            let p = &procedure.procedure;
            // Procedures processed by a specialised procedure alone (`processing.by: client`) have no staff queue.
            if worker.works_in(&p.unit.id) && p.processing.by.staff() {
                queues.insert(
                    (p.unit.id.clone(), p.id.clone()),
                    QueueView {
                        queue_id: format!("{}.{}", p.unit.id, p.id),
                        unit_id: p.unit.id.clone(),
                        procedure_id: p.id.clone(),
                        count: 0,
                        claimed: 0,
                        oldest_since: None,
                        oldest_age_seconds: None,
                        overdue: 0,
                        approval_fiction_alerts: 0,
                    },
                );
            }
        }
        let units: Vec<String> = queues.keys().map(|(unit, _)| unit.clone()).collect();
        let (rows, overdue, alerts) = self
            .db()
            .read(move |conn| {
                let base = applications::table
                    .filter(applications::queued.eq(true))
                    .filter(applications::unit_id.eq_any(&units))
                    .group_by((applications::unit_id, applications::procedure_id));
                let counts = (
                    applications::unit_id,
                    applications::procedure_id,
                    diesel::dsl::count_star(),
                    diesel::dsl::min(applications::queued_since),
                );
                let unclaimed: Vec<(String, String, i64, Option<Timestamp>)> = base
                    .clone()
                    .filter(applications::assignee.is_null())
                    .select(counts)
                    .load(conn)?;
                let claimed: Vec<(String, String, i64, Option<Timestamp>)> = base
                    .filter(applications::assignee.is_not_null())
                    .select(counts)
                    .load(conn)?;
                let rows: Vec<QueueRow> = unclaimed
                    .into_iter()
                    .map(|row| (true, row))
                    .chain(claimed.into_iter().map(|row| (false, row)))
                    .map(|(unclaimed, (unit_id, procedure_id, count, oldest))| QueueRow {
                        unit_id,
                        procedure_id,
                        unclaimed,
                        count,
                        oldest,
                    })
                    .collect();
                let overdue: Vec<(String, String)> = applications::table
                    .inner_join(application_timers::table)
                    .filter(applications::queued.eq(true))
                    .filter(applications::unit_id.eq_any(&units))
                    .filter(application_timers::kind.eq("deadline"))
                    .filter(application_timers::due_on.lt(&today))
                    .select((applications::unit_id, applications::procedure_id))
                    .distinct()
                    .load(conn)?;
                let alerts: Vec<(String, String)> = applications::table
                    .inner_join(approval_fictions::table)
                    .filter(applications::unit_id.eq_any(&units))
                    .filter(approval_fictions::occurred_at.is_null())
                    .filter(approval_fictions::stopped_at.is_null())
                    .filter(approval_fictions::alert_on.le(&today))
                    .select((applications::unit_id, applications::procedure_id))
                    .load(conn)?;
                Ok::<_, DbError>((rows, overdue, alerts))
            })
            .await?;
        for key in alerts {
            if let Some(queue) = queues.get_mut(&key) {
                queue.approval_fiction_alerts += 1;
            }
        }
        for row in rows {
            if let Some(queue) = queues.get_mut(&(row.unit_id, row.procedure_id)) {
                if row.unclaimed {
                    queue.count = row.count;
                    queue.oldest_since = row.oldest;
                    queue.oldest_age_seconds = row.oldest.map(|since| (now - since).num_seconds());
                } else {
                    queue.claimed = row.count;
                }
            }
        }
        for key in overdue {
            if let Some(queue) = queues.get_mut(&key) {
                queue.overdue += 1;
            }
        }
        Ok(queues.into_values().collect())
    }

    /// Hands the longest-waiting unclaimed case of the queue to the caller — exactly one caller per case, however
    /// many claim at once. `None` when the queue is empty.
    pub async fn claim_next(
        &self,
        worker: CaseWorker,
        queue_id: &str,
    ) -> Result<Option<CaseSummary>, ApplicationError> {
        let Some((unit, procedure)) = queue_id.split_once('.') else {
            return Err(queue_not_found());
        };
        if !worker.works_in(unit)
            || self
                .catalogue()
                .get(procedure)
                .is_none_or(|p| p.procedure.unit.id != unit || !p.procedure.processing.by.staff())
        {
            return Err(queue_not_found());
        }
        let (unit, procedure) = (unit.to_owned(), procedure.to_owned());
        let now = self.clock().now();
        self.db()
            .write(move |conn| {
                let waiting = applications::table
                    .filter(applications::unit_id.eq(&unit))
                    .filter(applications::procedure_id.eq(&procedure))
                    .filter(applications::queued.eq(true))
                    .filter(applications::assignee.is_null())
                    .order((applications::queued_since.asc(), applications::id.asc()))
                    .select(applications::id)
                    .limit(1);
                let found: Option<String> = match conn {
                    DbConnection::Postgres(pg) => waiting.for_update().skip_locked().first(pg).optional()?,
                    // SQLite: the write transaction holds the database's write lock, so no one else claims meanwhile.
                    DbConnection::Sqlite(lite) => waiting.first(lite).optional()?,
                };
                let Some(id) = found else {
                    return Ok(None);
                };
                take(conn, &id, &worker, now)?;
                let claimed = summary(&load_row(conn, &id)?);
                audit(conn, &worker, "case.claimed", &id, now)?;
                Ok(Some(claimed))
            })
            .await
    }

    /// Claims one case; 409 when someone else holds it or it does not wait in a queue.
    pub async fn claim(&self, worker: CaseWorker, id: &str) -> Result<CaseSummary, ApplicationError> {
        let id = id.to_owned();
        let now = self.clock().now();
        self.db()
            .write(move |conn| {
                let row = case_of(conn, &id, &worker)?;
                if row.assignee.as_deref() == Some(worker.id.as_str()) {
                    return Ok(summary(&row));
                }
                let claimed = diesel::update(
                    applications::table
                        .find(&id)
                        .filter(applications::queued.eq(true))
                        .filter(applications::assignee.is_null()),
                )
                .set((
                    applications::assignee.eq(&worker.id),
                    applications::claimed_at.eq(now),
                    applications::version.eq(applications::version + 1),
                ))
                .execute(conn)?;
                if claimed == 0 {
                    return Err(ApplicationError::Conflict(
                        "case_not_claimable",
                        Text::fixed(
                            "Der Vorgang wird schon bearbeitet oder wartet nicht in einer Warteschlange.",
                            "The case is being worked on already or does not wait in a queue.",
                        ),
                    ));
                }
                audit(conn, &worker, "case.claimed", &id, now)?;
                Ok(summary(&load_row(conn, &id)?))
            })
            .await
    }

    /// Gives a claimed case back to its queue; only its holder (or a supervisor of the unit) may.
    pub async fn release(&self, worker: CaseWorker, id: &str) -> Result<CaseSummary, ApplicationError> {
        let id = id.to_owned();
        let now = self.clock().now();
        self.db()
            .write(move |conn| {
                let row = case_of(conn, &id, &worker)?;
                let supervisor = worker.roles_in(&row.unit_id).iter().any(|r| r == "supervisor");
                match row.assignee.as_deref() {
                    None => return Ok(summary(&row)),
                    Some(holder) if holder == worker.id || supervisor => {}
                    Some(_) => {
                        return Err(ApplicationError::Forbidden(Text::fixed(
                            "Nur wer den Vorgang hält oder die Leitung kann ihn zurückgeben.",
                            "Only the holder of the case or a supervisor can release it.",
                        )));
                    }
                }
                diesel::update(applications::table.find(&id))
                    .set((
                        applications::assignee.eq(None::<String>),
                        applications::claimed_at.eq(None::<Timestamp>),
                        applications::version.eq(applications::version + 1),
                    ))
                    .execute(conn)?;
                audit(conn, &worker, "case.released", &id, now)?;
                Ok(summary(&load_row(conn, &id)?))
            })
            .await
    }

    /// An attachment of a case the caller works on, (file, holder) for the download; the read is recorded.
    pub async fn staff_attachment(
        &self,
        worker: CaseWorker,
        id: &str,
        attachment_id: &str,
    ) -> Result<(amtsweg_files::FileId, String), ApplicationError> {
        let (id, attachment_id) = (id.to_owned(), attachment_id.to_owned());
        let now = self.clock().now();
        self.db()
            .write(move |conn| {
                case_of(conn, &id, &worker)?;
                let found = attachment_file(conn, &id, &attachment_id)?;
                audit(conn, &worker, "case.attachment_viewed", &id, now)?;
                Ok(found)
            })
            .await
    }

    /// Adds an internal note to a case.
    pub async fn add_note(
        &self,
        worker: CaseWorker,
        id: &str,
        text: &str,
    ) -> Result<NoteView, ApplicationError> {
        let text = text.trim().to_owned();
        if text.is_empty() || text.chars().count() > 10_000 {
            return Err(ApplicationError::field(
                "/text",
                "invalid_length",
                Text::fixed("Bitte 1 bis 10.000 Zeichen.", "Please 1 to 10,000 characters."),
            ));
        }
        let id = id.to_owned();
        let now = self.clock().now();
        self.db()
            .write(move |conn| {
                case_of(conn, &id, &worker)?;
                let note = NoteView {
                    id: amtsweg_kernel::id::new_id(),
                    author: worker.id.clone(),
                    text,
                    created_at: now,
                };
                diesel::insert_into(application_notes::table)
                    .values((
                        application_notes::id.eq(&note.id),
                        application_notes::application_id.eq(&id),
                        application_notes::author.eq(&note.author),
                        application_notes::text.eq(&note.text),
                        application_notes::created_at.eq(now),
                    ))
                    .execute(conn)?;
                audit(conn, &worker, "case.note_added", &id, now)?;
                Ok(note)
            })
            .await
    }

    /// A supervisor of the unit hands a waiting case to a member of staff with a case-work role in that unit.
    pub async fn assign(
        &self,
        worker: CaseWorker,
        id: &str,
        staff_id: &str,
    ) -> Result<CaseSummary, ApplicationError> {
        let (id, staff_id) = (id.to_owned(), staff_id.to_owned());
        let now = self.clock().now();
        self.db()
            .write(move |conn| {
                let row = case_of(conn, &id, &worker)?;
                if !worker.roles_in(&row.unit_id).iter().any(|r| r == "supervisor") {
                    return Err(ApplicationError::Forbidden(Text::fixed(
                        "Vorgänge zuweisen kann die Leitung der Einheit.",
                        "Cases are assigned by a supervisor of the unit.",
                    )));
                }
                let roles = amtsweg_account::directory::staff_roles_in(conn, &staff_id, &row.unit_id)?;
                if !roles.iter().any(|role| CASE_ROLES.contains(&role.as_str())) {
                    return Err(ApplicationError::field(
                        "/staff_id",
                        "not_a_case_worker_here",
                        Text::fixed(
                            "Diese Person bearbeitet keine Vorgänge dieser Einheit.",
                            "This person does not work on cases of this unit.",
                        ),
                    ));
                }
                let assigned = diesel::update(
                    applications::table
                        .find(&id)
                        .filter(applications::queued.eq(true)),
                )
                .set((
                    applications::assignee.eq(&staff_id),
                    applications::claimed_at.eq(now),
                    applications::version.eq(applications::version + 1),
                ))
                .execute(conn)?;
                if assigned == 0 {
                    return Err(ApplicationError::Conflict(
                        "case_not_claimable",
                        Text::fixed(
                            "Der Vorgang wartet nicht in einer Warteschlange.",
                            "The case does not wait in a queue.",
                        ),
                    ));
                }
                audit(conn, &worker, "case.assigned", &id, now)?;
                Ok(summary(&load_row(conn, &id)?))
            })
            .await
    }

    /// The case as staff see it, with the actions the caller may take now. The read is recorded.
    pub async fn staff_case(
        &self,
        worker: CaseWorker,
        id: &str,
        lang: Lang,
    ) -> Result<StaffCaseView, ApplicationError> {
        let id = id.to_owned();
        let now = self.clock().now();
        let service = self.clone();
        self.db()
            .write(move |conn| {
                let row = case_of(conn, &id, &worker)?;
                audit(conn, &worker, "case.viewed", &id, now)?;
                service.staff_view(conn, &row, &worker, lang, now)
            })
            .await
    }

    /// Takes a workflow action. `version` is the case version the caller saw (`If-Match`): a stale one answers
    /// 412 and changes nothing. Decisions go through the decision route.
    pub async fn transition(
        &self,
        worker: CaseWorker,
        id: &str,
        version: i64,
        action: &str,
        comment: Option<String>,
        lang: Lang,
    ) -> Result<StaffCaseView, ApplicationError> {
        let (id, action) = (id.to_owned(), action.to_owned());
        let now = self.clock().now();
        let service = self.clone();
        self.db()
            .write(move |conn| {
                let row = case_of(conn, &id, &worker)?;
                if row.version != version {
                    return Err(ApplicationError::StaleVersion { current: row.version });
                }
                let (workflow, procedure) = service.case_parts(conn, &row)?;
                let state = row.state.clone().unwrap_or_default();
                let roles = worker.roles_in(&row.unit_id);
                let expired = expired_timers(conn, &id, now)?;
                let author = crate::decision::pending(conn, &id)?.map(|(_, author)| author);
                let facts = Facts {
                    by: Caller::Staff(&roles),
                    documents_complete: documents_complete(conn, &id, &procedure)?,
                    payment_settled: payment_settled(&procedure, &row),
                    expired_timers: &expired,
                    caller_is_author: author.as_deref() == Some(worker.id.as_str()),
                    ..Facts::default()
                };
                let comment = comment.filter(|c| !c.trim().is_empty());
                let step = workflow
                    .fire(&state, &action, &facts, comment.as_deref())
                    .map_err(|refusal| refused(refusal, &action))?;
                if step.transition.information_request {
                    return Err(ApplicationError::field(
                        "/action",
                        "information_request_action",
                        Text::fixed(
                            "Nachfragen werden über …/information-requests gestellt (Nachricht, Felder, Unterlagen, Frist).",
                            "Information is requested through …/information-requests (message, fields, documents, reply window).",
                        ),
                    ));
                }
                if step.transition.decision.is_some() {
                    return Err(ApplicationError::field(
                        "/action",
                        "decision_action",
                        Text::fixed(
                            "Entscheidungen werden über die Entscheidungsfunktion getroffen, die den Bescheid erstellt.",
                            "Decisions are taken through the decision route, which renders the decision document.",
                        ),
                    ));
                }
                advance_version(conn, &id, version, now)?;
                let context = EffectContext::of(&row, &procedure, &service, now);
                let actor = StepActor::Staff(&worker.id);
                case::advance(conn, &context, &workflow, &state, step, (actor, comment.as_deref()), &facts)?;
                let row = load_row(conn, &id)?;
                let view = service.staff_view(conn, &row, &worker, lang, now)?;
                // Last: the audit append locks the log's head row until the commit.
                audit(conn, &worker, "case.transition", &id, now)?;
                Ok(view)
            })
            .await
    }

    pub(crate) fn staff_view(
        &self,
        conn: &mut DbConnection,
        row: &ApplicationRow,
        worker: &CaseWorker,
        lang: Lang,
        now: Timestamp,
    ) -> Result<StaffCaseView, ApplicationError> {
        let (workflow, procedure) = self.case_parts(conn, row)?;
        let state = row.state.clone().unwrap_or_default();
        let data: Value = serde_json::from_str(&row.data).unwrap_or_else(|_| json!({}));
        let fields = crate::form::fields(&procedure, &data, lang)
            .into_iter()
            .map(|field| LabelledField {
                pointer: field.pointer,
                label: field.label,
                value: field.value,
            })
            .collect();
        let attachments: Vec<AttachmentRow> = application_attachments::table
            .filter(application_attachments::application_id.eq(&row.id))
            .select(AttachmentRow::as_select())
            .order(application_attachments::id)
            .load(conn)?;
        let steps: Vec<CaseStep> = application_steps::table
            .filter(application_steps::application_id.eq(&row.id))
            .order(application_steps::seq)
            .select(CaseStep::as_select())
            .load(conn)?;
        let roles = worker.roles_in(&row.unit_id);
        let expired = expired_timers(conn, &row.id, now)?;
        let documents_complete = documents_complete(conn, &row.id, &procedure)?;
        let payment_settled = payment_settled(&procedure, row);
        let facts = Facts {
            by: Caller::Staff(&roles),
            documents_complete,
            payment_settled,
            expired_timers: &expired,
            ..Facts::default()
        };
        let actions = workflow
            .available(&state, &facts)
            .filter(|t| t.by == By::Staff)
            .map(|t| ActionView {
                action: t.action.clone(),
                label: pick(&t.label, lang),
                to_state: t.to.clone(),
                comment_required: t.comment_required,
                information_request: t.information_request,
                decision: t.decision.map(|d| match d {
                    amtsweg_workflow::Decision::Approved => "approved",
                    amtsweg_workflow::Decision::Rejected => "rejected",
                    amtsweg_workflow::Decision::PartiallyApproved => "partially_approved",
                }),
            })
            .collect();
        Ok(StaffCaseView {
            summary: summary(row),
            state_label: workflow
                .state(&state)
                .map_or_else(|| state.clone(), |s| pick(&s.label, lang)),
            data,
            fields,
            attachments: attachments.iter().map(AttachmentView::of).collect(),
            fee_cents: row.fee_cents,
            fee_lines: crate::fees::view(row.fee_lines.as_deref(), lang),
            documents_complete,
            payment_settled,
            notes: application_notes::table
                .filter(application_notes::application_id.eq(&row.id))
                .order(application_notes::created_at)
                .select(NoteView::as_select())
                .load(conn)?,
            information_requests: crate::requests::requests_of(conn, &row.id, Some(&procedure), lang)?,
            written_form: if procedure.procedure.written_form {
                crate::written_form::of(conn, &row.id)?
            } else {
                None
            },
            approval_fiction: if procedure.procedure.approval_fiction.is_some() {
                crate::fiction::of(conn, &row.id, true)?
            } else {
                None
            },
            steps,
            actions,
        })
    }
}

fn queue_not_found() -> ApplicationError {
    ApplicationError::NotFoundAs(
        "queue_not_found",
        Text::fixed("Warteschlange nicht gefunden.", "Queue not found."),
    )
}

pub(crate) fn refused(refusal: Refusal, action: &str) -> ApplicationError {
    let code = refusal.code();
    let text = match refusal {
        Refusal::UnknownAction => Text::new(
            format!("Die Aktion „{action}“ gibt es in diesem Verfahren nicht."),
            format!("There is no action “{action}” in this workflow."),
        ),
        Refusal::NotFromHere { state } => Text::new(
            format!("Die Aktion „{action}“ ist im Zustand „{state}“ nicht möglich."),
            format!("The action “{action}” is not possible in the state “{state}”."),
        ),
        Refusal::NotAllowed => Text::new(
            format!("Sie dürfen die Aktion „{action}“ nicht ausführen."),
            format!("You may not take the action “{action}”."),
        ),
        Refusal::Guard(guard) => Text::new(
            format!("Die Voraussetzung „{guard}“ ist nicht erfüllt."),
            format!("The condition “{guard}” is not met."),
        ),
        Refusal::CommentRequired => {
            Text::fixed("Bitte geben Sie eine Begründung an.", "Please give a reason.")
        }
    };
    let pointer = if code == "comment_required" {
        "/comment"
    } else {
        "/action"
    };
    ApplicationError::field(pointer, code, text)
}

/// The stored file of an attachment of application `id`: (file, holder) for the download.
pub(crate) fn attachment_file(
    conn: &mut DbConnection,
    id: &str,
    attachment_id: &str,
) -> Result<(amtsweg_files::FileId, String), ApplicationError> {
    let (file, holder): (String, String) = application_attachments::table
        .find(attachment_id)
        .filter(application_attachments::application_id.eq(id))
        .select((
            application_attachments::file_id,
            application_attachments::uploaded_by,
        ))
        .first(conn)
        .optional()?
        .ok_or(ApplicationError::NotFound)?;
    Ok((amtsweg_files::FileId::from_string(file), holder))
}

/// A submitted case of a unit where the caller works; anything else is not found.
pub(crate) fn case_of(
    conn: &mut DbConnection,
    id: &str,
    worker: &CaseWorker,
) -> Result<ApplicationRow, ApplicationError> {
    let row = applications::table
        .find(id)
        .filter(applications::status.eq("submitted"))
        .select(ApplicationRow::as_select())
        .first(conn)
        .optional()?
        .ok_or_else(case_not_found)?;
    if worker.works_in(&row.unit_id) {
        Ok(row)
    } else {
        Err(case_not_found())
    }
}

fn case_not_found() -> ApplicationError {
    ApplicationError::NotFoundAs(
        "case_not_found",
        Text::fixed("Vorgang nicht gefunden.", "Case not found."),
    )
}

pub(crate) fn load_row(conn: &mut DbConnection, id: &str) -> Result<ApplicationRow, DbError> {
    Ok(applications::table
        .find(id)
        .select(ApplicationRow::as_select())
        .first(conn)?)
}

/// Moves the case from `version` to the next; 412 when someone else moved it first (the version seen is stale).
pub(crate) fn advance_version(
    conn: &mut DbConnection,
    id: &str,
    version: i64,
    now: Timestamp,
) -> Result<(), ApplicationError> {
    let updated = diesel::update(
        applications::table
            .find(id)
            .filter(applications::version.eq(version)),
    )
    .set((
        applications::version.eq(version + 1),
        applications::updated_at.eq(now),
    ))
    .execute(conn)?;
    if updated == 0 {
        return Err(ApplicationError::StaleVersion { current: version + 1 });
    }
    Ok(())
}

fn take(conn: &mut DbConnection, id: &str, worker: &CaseWorker, now: Timestamp) -> Result<(), DbError> {
    diesel::update(applications::table.find(id))
        .set((
            applications::assignee.eq(&worker.id),
            applications::claimed_at.eq(now),
            applications::version.eq(applications::version + 1),
        ))
        .execute(conn)?;
    Ok(())
}

pub(crate) fn summary(row: &ApplicationRow) -> CaseSummary {
    CaseSummary {
        id: row.id.clone(),
        case_number: row.case_number.clone().unwrap_or_default(),
        procedure_id: row.procedure_id.clone(),
        unit_id: row.unit_id.clone(),
        state: row.state.clone().unwrap_or_default(),
        applicant_name: row.applicant_name.clone().unwrap_or_default(),
        assignee: row.assignee.clone(),
        submitted_at: row.submitted_at.unwrap_or(row.created_at),
        service_norm_due: row.service_norm_due.clone(),
        version: row.version,
    }
}

pub(crate) fn expired_timers(
    conn: &mut DbConnection,
    id: &str,
    now: Timestamp,
) -> Result<Vec<String>, DbError> {
    let today = amtsweg_workflow::deadline::berlin_date(now.utc().naive_utc()).to_string();
    Ok(application_timers::table
        .filter(application_timers::application_id.eq(id))
        .filter(application_timers::due_on.lt(today))
        .select(application_timers::timer_id)
        .load(conn)?)
}

pub(crate) fn documents_complete(
    conn: &mut DbConnection,
    id: &str,
    procedure: &amtsweg_catalogue::LoadedProcedure,
) -> Result<bool, DbError> {
    let attached: Vec<String> = application_attachments::table
        .filter(application_attachments::application_id.eq(id))
        .select(application_attachments::document_type)
        .load(conn)?;
    Ok(procedure
        .procedure
        .documents
        .iter()
        .filter(|d| d.required)
        .all(|d| attached.contains(&d.kind)))
}

pub(crate) fn audit(
    conn: &mut DbConnection,
    worker: &CaseWorker,
    action: &str,
    id: &str,
    now: Timestamp,
) -> Result<(), DbError> {
    amtsweg_audit::append(
        conn,
        &Event {
            actor: &worker.actor(),
            action,
            object: Some(("application", id)),
            outcome: Outcome::Success,
            at: now,
        },
    )
}
