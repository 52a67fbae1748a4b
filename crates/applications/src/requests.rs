//! Information requests: a case worker asks the applicant for more (a message, form fields to change, documents
//! to send, a reply window); the case waits for the citizen in the state the workflow's `information_request`
//! transition leads to; the citizen's answer (a data patch and/or attachments) takes the workflow's answering
//! transition and puts the case back into its queue. A window that runs out does the same through the timer job,
//! and the request is recorded as expired.

use amtsweg_audit::{Actor, ActorKind, Event, Outcome};
use amtsweg_catalogue::LoadedProcedure;
use amtsweg_db::{DbConnection, DbError};
use amtsweg_files::FileId;
use amtsweg_kernel::{FieldError, Lang, Text, Timestamp};
use amtsweg_workflow::{Caller, Definition, Facts, Period, TimerKind};
use diesel::prelude::*;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use utoipa::ToSchema;

use crate::ApplicationService;
use crate::case::{self, StepActor};
use crate::error::ApplicationError;
use crate::schema::{application_attachments, application_timers, applications, information_requests};
use crate::service::{
    AttachmentRow, EffectContext, OWNER_MODULE, check_document, insert_attachment, merge_patch,
    payment_settled, visible,
};
use crate::staff::{
    CaseWorker, StaffCaseView, case_of, documents_complete, expired_timers, load_row, refused,
};
use crate::view::AttachmentView;

/// The longest reply window a case worker may set, in days.
pub const MAX_REPLY_DAYS: u32 = 180;
/// The reply window when neither the request nor the workflow names one.
const DEFAULT_REPLY_DAYS: u32 = 14;

/// What a case worker asks for.
#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewInformationRequest {
    /// What the applicant is asked, 1–5,000 characters; the citizen's timeline shows it.
    pub message: String,
    /// Form fields (JSON Pointers, e.g. `/fahrzeug/kennzeichen`) the applicant may change in the answer.
    #[serde(default)]
    pub fields: Vec<String>,
    /// Document types of the procedure the answer must bring.
    #[serde(default)]
    pub documents: Vec<String>,
    /// Days to answer (1–180); by default the workflow's reply window. The last day is communicated as a fixed
    /// date, so it does not move off a weekend (§ 31 (3) sentence 2 VwVfG).
    #[serde(default)]
    pub reply_days: Option<u32>,
}

/// An attachment of an answer: an upload of the caller (`POST /api/v1/files`) as a document of the procedure.
#[derive(Debug, Clone, Deserialize, Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AnswerAttachment {
    pub document_type: String,
    pub file_id: String,
}

/// The applicant's answer.
#[derive(Debug, Clone, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Answer {
    /// A reply to the message, up to 5,000 characters.
    #[serde(default)]
    pub comment: Option<String>,
    /// A JSON merge patch (RFC 7396) over the form data, limited to the fields asked for.
    #[serde(default)]
    #[schema(value_type = Option<Object>)]
    pub data: Option<Value>,
    /// Documents sent with the answer; every document type asked for needs one.
    #[serde(default)]
    pub attachments: Vec<AnswerAttachment>,
}

/// A field asked for, with its label.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct RequestedField {
    pub pointer: String,
    pub label: String,
}

/// A document type asked for, with its name.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct RequestedDocument {
    pub document_type: String,
    pub name: String,
}

/// An information request as the citizen and staff see it (never the name of the staff member who asked).
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct InformationRequestView {
    pub id: String,
    pub message: String,
    pub fields: Vec<RequestedField>,
    pub documents: Vec<RequestedDocument>,
    /// The last day to answer (Europe/Berlin).
    pub due_on: String,
    /// `open`, `answered`, `expired` (the window ran out) or `closed` (the case moved on otherwise, e.g. withdrawn).
    pub status: String,
    pub created_at: Timestamp,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub answer: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub answered_at: Option<Timestamp>,
    /// The documents sent with the answer.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub attachments: Vec<AttachmentView>,
}

#[derive(Debug, Clone, Queryable, Selectable)]
#[diesel(table_name = information_requests)]
struct RequestRow {
    id: String,
    message: String,
    fields: String,
    documents: String,
    due_on: String,
    status: String,
    created_at: Timestamp,
    answer: Option<String>,
    answered_at: Option<Timestamp>,
}

impl ApplicationService {
    /// Opens an information request on a case of the caller's unit: the workflow's `information_request`
    /// transition from the current state, taken with the message as its (public) comment. `version` is the case
    /// version the caller saw.
    pub async fn request_information(
        &self,
        worker: CaseWorker,
        id: &str,
        version: i64,
        request: NewInformationRequest,
        lang: Lang,
    ) -> Result<StaffCaseView, ApplicationError> {
        let message = request.message.trim().to_owned();
        if message.is_empty() || message.chars().count() > 5_000 {
            return Err(ApplicationError::field(
                "/message",
                "invalid_length",
                Text::fixed("Bitte 1 bis 5.000 Zeichen.", "Please 1 to 5,000 characters."),
            ));
        }
        if request
            .reply_days
            .is_some_and(|days| days == 0 || days > MAX_REPLY_DAYS)
        {
            return Err(ApplicationError::field(
                "/reply_days",
                "out_of_range",
                Text::new(
                    format!("Bitte 1 bis {MAX_REPLY_DAYS} Tage."),
                    format!("Please 1 to {MAX_REPLY_DAYS} days."),
                ),
            ));
        }
        let id = id.to_owned();
        let now = self.clock().now();
        let service = self.clone();
        self.db()
            .write(move |conn| {
                let row = case_of(conn, &id, &worker)?;
                if row.version != version {
                    return Err(ApplicationError::StaleVersion { current: row.version });
                }
                let (workflow, procedure) = service.case_parts(conn, &row)?;
                check_asked(&procedure, &request)?;
                let state = row.state.clone().unwrap_or_default();
                let action = workflow
                    .information_request(&state)
                    .map(|t| t.action.clone())
                    .ok_or_else(|| {
                        ApplicationError::Conflict(
                            "information_request_not_possible",
                            Text::fixed(
                                "In diesem Stand des Vorgangs kann keine Nachfrage gestellt werden.",
                                "No information can be requested at this stage of the case.",
                            ),
                        )
                    })?;
                let roles = worker.roles_in(&row.unit_id);
                let expired = expired_timers(conn, &id, now)?;
                let facts = Facts {
                    by: Caller::Staff(&roles),
                    documents_complete: documents_complete(conn, &id, &procedure)?,
                    payment_settled: payment_settled(&procedure, &row),
                    expired_timers: &expired,
                    ..Facts::default()
                };
                let step = workflow
                    .fire(&state, &action, &facts, Some(&message))
                    .map_err(|refusal| refused(refusal, &action))?;
                crate::staff::advance_version(conn, &id, version, now)?;
                let waiting_state = step.to.id.clone();
                let context = EffectContext::of(&row, &procedure, &service, now);
                let actor = StepActor::Staff(&worker.id);
                case::advance(
                    conn,
                    &context,
                    &workflow,
                    &state,
                    step,
                    (actor, Some(&message)),
                    &facts,
                )?;
                let due_on = reply_window(conn, &context, &workflow, &waiting_state, request.reply_days)?;
                if !request.documents.is_empty() {
                    // Documents were missing: the period of a fiction of approval has not started.
                    crate::fiction::await_documents(conn, &id)?;
                }
                diesel::insert_into(information_requests::table)
                    .values((
                        information_requests::id.eq(amtsweg_kernel::id::new_id()),
                        information_requests::application_id.eq(&id),
                        information_requests::requested_by.eq(&worker.id),
                        information_requests::message.eq(&message),
                        information_requests::fields.eq(json!(request.fields).to_string()),
                        information_requests::documents.eq(json!(request.documents).to_string()),
                        information_requests::due_on.eq(&due_on),
                        information_requests::status.eq("open"),
                        information_requests::created_at.eq(now),
                    ))
                    .execute(conn)?;
                let row = load_row(conn, &id)?;
                let view = service.staff_view(conn, &row, &worker, lang, now)?;
                crate::staff::audit(conn, &worker, "case.information_requested", &id, now)?;
                Ok(view)
            })
            .await
    }

    /// The information requests of an application the caller may see, newest first.
    pub async fn information_requests(
        &self,
        person: &str,
        id: &str,
        lang: Lang,
    ) -> Result<Vec<InformationRequestView>, ApplicationError> {
        let (person, id) = (person.to_owned(), id.to_owned());
        let service = self.clone();
        self.db()
            .read(move |conn| {
                let row = visible(conn, &id, &person)?;
                let procedure = service.case_parts(conn, &row).map(|(_, p)| p).ok();
                Ok::<_, ApplicationError>(requests_of(conn, &id, procedure.as_deref(), lang)?)
            })
            .await
    }

    /// The applicant answers an open request: the data patch (only the fields asked for) and the documents are
    /// taken into the application, the answer is recorded, and the workflow's answering transition brings the
    /// case back into its queue — all in one transaction.
    pub async fn answer_request(
        &self,
        person: &str,
        id: &str,
        request_id: &str,
        answer: Answer,
        lang: Lang,
    ) -> Result<InformationRequestView, ApplicationError> {
        let comment = answer
            .comment
            .as_deref()
            .map(str::trim)
            .filter(|c| !c.is_empty())
            .map(str::to_owned);
        if comment.as_ref().is_some_and(|c| c.chars().count() > 5_000) {
            return Err(ApplicationError::field(
                "/comment",
                "invalid_length",
                Text::fixed("Höchstens 5.000 Zeichen.", "At most 5,000 characters."),
            ));
        }
        if comment.is_none() && answer.data.is_none() && answer.attachments.is_empty() {
            return Err(ApplicationError::field(
                "",
                "empty_answer",
                Text::fixed(
                    "Bitte antworten Sie mit einer Nachricht, geänderten Angaben oder Unterlagen.",
                    "Please answer with a message, changed details or documents.",
                ),
            ));
        }
        let (person, id, request_id) = (person.to_owned(), id.to_owned(), request_id.to_owned());
        let now = self.clock().now();
        let service = self.clone();
        let files = self.files().clone();
        let attachments = answer.attachments.clone();
        // The uploads named must be the caller's and fit the procedure; their details come from the files module.
        let mut uploads = Vec::with_capacity(attachments.len());
        for (i, attachment) in attachments.iter().enumerate() {
            let file = files
                .file_of(&person, &FileId::from_string(attachment.file_id.clone()))
                .await
                .map_err(|_| {
                    ApplicationError::field(
                        &format!("/attachments/{i}/file_id"),
                        "unknown_file",
                        Text::fixed("Diese Datei gibt es nicht.", "There is no such file."),
                    )
                })?;
            uploads.push((attachment.document_type.clone(), file));
        }
        self.db()
            .write(move |conn| {
                let row = visible(conn, &id, &person)?;
                let request: RequestRow = information_requests::table
                    .find(&request_id)
                    .filter(information_requests::application_id.eq(&id))
                    .select(RequestRow::as_select())
                    .first(conn)
                    .optional()?
                    .ok_or_else(request_not_found)?;
                if request.status != "open" {
                    return Err(not_open());
                }
                let (workflow, procedure) = service.case_parts(conn, &row)?;
                let state = row.state.clone().unwrap_or_default();
                let answering = workflow.answer(&state).map(|t| t.action.clone()).ok_or_else(|| {
                    ApplicationError::Conflict(
                        "request_not_open",
                        Text::fixed(
                            "Der Vorgang wartet nicht mehr auf Ihre Antwort.",
                            "The case no longer waits for your answer.",
                        ),
                    )
                })?;
                let fields: Vec<String> = serde_json::from_str(&request.fields).unwrap_or_default();
                let documents: Vec<String> = serde_json::from_str(&request.documents).unwrap_or_default();

                let mut errors = Vec::new();
                let mut data: Value = serde_json::from_str(&row.data).unwrap_or_else(|_| json!({}));
                if let Some(patch) = &answer.data {
                    if !patch.is_object() {
                        return Err(ApplicationError::field(
                            "/data",
                            "invalid_type",
                            Text::fixed("„data“ ist ein JSON-Objekt.", "“data” is a JSON object."),
                        ));
                    }
                    let mut changed = Vec::new();
                    crate::form::leaves(patch, String::new(), &mut changed);
                    for pointer in changed.iter().filter(|p| !asked_for(p, &fields)) {
                        errors.push(FieldError::at_pointer(
                            format!("/data{pointer}"),
                            "field_not_requested",
                            Text::fixed(
                                "Nach dieser Angabe wurde nicht gefragt.",
                                "This detail was not asked for.",
                            ),
                        ));
                    }
                    merge_patch(&mut data, patch);
                    errors.extend(procedure.violations(&data).into_iter().map(|mut error| {
                        error.pointer = error.pointer.map(|p| format!("/data{p}"));
                        error
                    }));
                }
                for (i, (document_type, file)) in uploads.iter().enumerate() {
                    if let Err(ApplicationError::Validation(found)) =
                        check_document(&procedure, document_type, file)
                    {
                        errors.extend(found.into_iter().map(|mut error| {
                            let member = error
                                .pointer
                                .as_deref()
                                .unwrap_or_default()
                                .trim_start_matches('/')
                                .to_owned();
                            let member = if member == "file" {
                                "file_id".to_owned()
                            } else {
                                member
                            };
                            error.pointer = Some(format!("/attachments/{i}/{member}"));
                            error
                        }));
                    }
                }
                for document in &documents {
                    if !uploads.iter().any(|(kind, _)| kind == document) {
                        let name = procedure
                            .procedure
                            .documents
                            .iter()
                            .find(|d| &d.kind == document)
                            .map(|d| d.name.clone())
                            .unwrap_or_else(|| Text::new(document.clone(), document.clone()));
                        errors.push(FieldError::at_pointer(
                            "/attachments",
                            "document_missing",
                            Text::new(
                                format!("Bitte fügen Sie „{}“ bei.", name.de),
                                format!("Please attach “{}”.", name.en),
                            ),
                        ));
                    }
                }
                if !errors.is_empty() {
                    return Err(ApplicationError::Validation(errors));
                }

                // The request first: its row lock makes a second answer sent at the same time wait, then find it
                // answered (409) rather than trip over the files the first one took.
                let answered = diesel::update(
                    information_requests::table
                        .find(&request_id)
                        .filter(information_requests::status.eq("open")),
                )
                .set((
                    information_requests::status.eq("answered"),
                    information_requests::answer.eq(&comment),
                    information_requests::answered_at.eq(now),
                    information_requests::answered_by.eq(&person),
                ))
                .execute(conn)?;
                if answered == 0 {
                    return Err(not_open());
                }
                for (i, (document_type, file)) in uploads.into_iter().enumerate() {
                    let taken =
                        amtsweg_files::take_up(conn, &file.id, &person, OWNER_MODULE)?.ok_or_else(|| {
                            ApplicationError::field(
                                &format!("/attachments/{i}/file_id"),
                                "file_not_available",
                                Text::fixed(
                                    "Diese Datei ist schon einer anderen Unterlage zugeordnet.",
                                    "This file belongs to another document already.",
                                ),
                            )
                        })?;
                    insert_attachment(conn, &id, &document_type, taken, &person, Some(&request_id), now)?;
                }
                let moved = diesel::update(
                    applications::table
                        .find(&id)
                        .filter(applications::version.eq(row.version)),
                )
                .set((
                    applications::data.eq(data.to_string()),
                    applications::version.eq(row.version + 1),
                    applications::updated_at.eq(now),
                ))
                .execute(conn)?;
                if moved == 0 {
                    return Err(ApplicationError::Conflict(
                        "application_changed",
                        Text::fixed(
                            "Der Antrag wurde gerade geändert. Bitte laden Sie ihn neu.",
                            "The application was changed just now. Please reload it.",
                        ),
                    ));
                }
                let facts = Facts {
                    by: Caller::Citizen,
                    documents_complete: documents_complete(conn, &id, &procedure)?,
                    payment_settled: payment_settled(&procedure, &row),
                    ..Facts::default()
                };
                let step = workflow
                    .fire(&state, &answering, &facts, None)
                    .map_err(|refusal| refused(refusal, &answering))?;
                let context = EffectContext::of(&row, &procedure, &service, now);
                case::advance(
                    conn,
                    &context,
                    &workflow,
                    &state,
                    step,
                    (StepActor::Citizen(&person), None),
                    &facts,
                )?;
                if !documents.is_empty() {
                    // The documents asked for are here: the period of a fiction of approval starts now.
                    crate::fiction::documents_arrived(conn, &context)?;
                }
                amtsweg_audit::append(
                    conn,
                    &Event {
                        actor: &Actor::new(ActorKind::Citizen, person.clone(), None),
                        action: "application.information_provided",
                        object: Some(("application", &id)),
                        outcome: Outcome::Success,
                        at: now,
                    },
                )?;
                let mut views = requests_of(conn, &id, Some(&procedure), lang)?;
                let position = views
                    .iter()
                    .position(|r| r.id == request_id)
                    .ok_or_else(request_not_found)?;
                Ok(views.swap_remove(position))
            })
            .await
    }
}

/// The requests of a case, newest first, with the labels of the procedure in `lang`.
pub(crate) fn requests_of(
    conn: &mut DbConnection,
    id: &str,
    procedure: Option<&LoadedProcedure>,
    lang: Lang,
) -> Result<Vec<InformationRequestView>, DbError> {
    let rows: Vec<RequestRow> = information_requests::table
        .filter(information_requests::application_id.eq(id))
        .order((
            information_requests::created_at.desc(),
            information_requests::id.desc(),
        ))
        .select(RequestRow::as_select())
        .load(conn)?;
    let answered: Vec<(Option<String>, AttachmentRow)> = application_attachments::table
        .filter(application_attachments::application_id.eq(id))
        .filter(application_attachments::request_id.is_not_null())
        .select((application_attachments::request_id, AttachmentRow::as_select()))
        .order(application_attachments::id)
        .load(conn)?;
    let label = |pointer: &str| {
        procedure
            .and_then(|p| p.procedure.form.ui.iter().find(|hint| hint.field == pointer))
            .map_or_else(|| pointer.to_owned(), |hint| hint.label.get(lang).to_owned())
    };
    let name = |kind: &str| {
        procedure
            .and_then(|p| p.procedure.documents.iter().find(|d| d.kind == kind))
            .map_or_else(|| kind.to_owned(), |d| d.name.get(lang).to_owned())
    };
    Ok(rows
        .into_iter()
        .map(|row| {
            let fields: Vec<String> = serde_json::from_str(&row.fields).unwrap_or_default();
            let documents: Vec<String> = serde_json::from_str(&row.documents).unwrap_or_default();
            InformationRequestView {
                fields: fields
                    .iter()
                    .map(|pointer| RequestedField {
                        pointer: pointer.clone(),
                        label: label(pointer),
                    })
                    .collect(),
                documents: documents
                    .iter()
                    .map(|kind| RequestedDocument {
                        document_type: kind.clone(),
                        name: name(kind),
                    })
                    .collect(),
                attachments: answered
                    .iter()
                    .filter(|(request, _)| request.as_deref() == Some(row.id.as_str()))
                    .map(|(_, attachment)| AttachmentView::of(attachment))
                    .collect(),
                id: row.id,
                message: row.message,
                due_on: row.due_on,
                status: row.status,
                created_at: row.created_at,
                answer: row.answer,
                answered_at: row.answered_at,
            }
        })
        .collect())
}

/// Closes the open request of a case that leaves the state waiting for the answer without one: `expired` when
/// the reply window ran out (a system step), `closed` otherwise (e.g. withdrawn).
pub(crate) fn close_open(
    conn: &mut DbConnection,
    id: &str,
    expired: bool,
    now: Timestamp,
) -> Result<(), DbError> {
    diesel::update(
        information_requests::table
            .filter(information_requests::application_id.eq(id))
            .filter(information_requests::status.eq("open")),
    )
    .set((
        information_requests::status.eq(if expired { "expired" } else { "closed" }),
        information_requests::closed_at.eq(now),
    ))
    .execute(conn)?;
    Ok(())
}

/// The fields and documents asked for must be the procedure's.
fn check_asked(procedure: &LoadedProcedure, request: &NewInformationRequest) -> Result<(), ApplicationError> {
    let p = &procedure.procedure;
    let mut errors = Vec::new();
    for (i, pointer) in request.fields.iter().enumerate() {
        if !p.form.ui.iter().any(|hint| &hint.field == pointer) {
            errors.push(FieldError::at_pointer(
                format!("/fields/{i}"),
                "unknown_field",
                Text::new(
                    format!("Das Formular hat kein Feld „{pointer}“."),
                    format!("The form has no field “{pointer}”."),
                ),
            ));
        }
    }
    for (i, kind) in request.documents.iter().enumerate() {
        if !p.documents.iter().any(|d| &d.kind == kind) {
            errors.push(FieldError::at_pointer(
                format!("/documents/{i}"),
                "unknown_document_type",
                Text::new(
                    format!("Für diese Leistung gibt es keine Unterlage „{kind}“."),
                    format!("This procedure has no document type “{kind}”."),
                ),
            ));
        }
    }
    if errors.is_empty() {
        Ok(())
    } else {
        Err(ApplicationError::Validation(errors))
    }
}

/// Sets the reply window of the state entered: the request's days where given (a fixed last day), else the
/// workflow's reply-window timer as started on entering the state. Answers the last day.
fn reply_window(
    conn: &mut DbConnection,
    context: &EffectContext<'_>,
    workflow: &Definition,
    state: &str,
    reply_days: Option<u32>,
) -> Result<String, ApplicationError> {
    let timer = workflow.state(state).and_then(|s| {
        s.on_enter.iter().find_map(|effect| match effect {
            amtsweg_workflow::Effect::StartTimer(id) => workflow
                .timer(id)
                .filter(|t| t.kind == TimerKind::ReplyWindow)
                .map(|t| t.id.clone()),
            _ => None,
        })
    });
    let started: Option<String> = match &timer {
        Some(timer) => application_timers::table
            .filter(application_timers::application_id.eq(context.application_id))
            .filter(application_timers::timer_id.eq(timer))
            .select(application_timers::due_on)
            .first(conn)
            .optional()?,
        None => None,
    };
    if let (Some(due), None) = (&started, reply_days) {
        return Ok(due.clone());
    }
    let today = amtsweg_workflow::deadline::berlin_date(context.now.utc().naive_utc());
    let days = reply_days.unwrap_or(DEFAULT_REPLY_DAYS);
    let due = context
        .calendar
        .deadline(today, Period::Days(days), true)
        .ok_or_else(|| ApplicationError::Internal("deadline beyond the calendar".into()))?
        .to_string();
    if let Some(timer) = &timer {
        diesel::update(
            application_timers::table
                .filter(application_timers::application_id.eq(context.application_id))
                .filter(application_timers::timer_id.eq(timer)),
        )
        .set(application_timers::due_on.eq(&due))
        .execute(conn)?;
    }
    Ok(due)
}

/// Whether `pointer` is one of the fields asked for or lies inside one.
fn asked_for(pointer: &str, fields: &[String]) -> bool {
    fields
        .iter()
        .any(|field| pointer == field || pointer.starts_with(&format!("{field}/")))
}

fn not_open() -> ApplicationError {
    ApplicationError::Conflict(
        "request_not_open",
        Text::fixed(
            "Diese Nachfrage ist nicht mehr offen.",
            "This request is no longer open.",
        ),
    )
}

fn request_not_found() -> ApplicationError {
    ApplicationError::NotFoundAs(
        "request_not_found",
        Text::fixed("Nachfrage nicht gefunden.", "Request not found."),
    )
}
