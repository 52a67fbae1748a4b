//! What specialised procedures (Fachverfahren, API clients of the integration platform) may do with submitted
//! applications: read them with their attachments, take the workflow actions their workflow declares for clients
//! (`by: client`), and record the decisions they produce — which then go to the Postfach like any other. The
//! integration module reads the client's scopes; these functions see only applications of the procedures it
//! passes, and answer "not found" for any other.

use actix_web::web::Bytes;
use amtsweg_audit::{Actor, ActorKind, Event, Outcome};
use amtsweg_db::{DbConnection, DbError, InTransaction};
use amtsweg_events::Procedures;
use amtsweg_kernel::{FieldError, Text, Timestamp};
use amtsweg_workflow::{By, Caller, Facts, Label};
use diesel::prelude::*;
use serde::Serialize;
use serde_json::{Value, json};
use utoipa::ToSchema;

use crate::case::{self, StepActor};
use crate::decision::{DECISIONS, DecisionRecord};
use crate::error::ApplicationError;
use crate::schema::{application_attachments, applications};
use crate::service::{ApplicationRow, ApplicationService, AttachmentRow, EffectContext, payment_settled};
use crate::staff::{advance_version, documents_complete, expired_timers, load_row, refused};
use crate::view::AttachmentView;

/// A submitted application as a specialised procedure receives it.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct ClientApplicationView {
    pub id: String,
    /// The final case number (Aktenzeichen).
    pub case_number: String,
    pub procedure_id: String,
    pub procedure_version: u32,
    pub unit_id: String,
    /// The workflow state and its label.
    pub state: String,
    #[schema(value_type = Object)]
    pub state_label: Label,
    pub submitted_at: Timestamp,
    pub applicant: Applicant,
    /// The form's data.
    #[schema(value_type = Object)]
    pub data: Value,
    pub attachments: Vec<ClientAttachment>,
    /// The fee assessed, in euro cents.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub fee_cents: Option<i64>,
    pub payment: PaymentStatus,
    /// The actions this client may take now (`POST …/status`, decisions through `POST …/decision`).
    pub actions: Vec<ClientAction>,
    /// Raised with every change.
    pub version: i64,
}

/// An attachment with its hash and where to download it.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct ClientAttachment {
    #[serde(flatten)]
    pub file: AttachmentView,
    /// The download link.
    pub href: String,
}

#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct Applicant {
    /// The applicant's name as given in the account.
    pub name: String,
    /// The organisation applied for, if any.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub organisation_id: Option<String>,
    /// The postal address lines, where the account has one.
    pub postal_address: Vec<String>,
}

#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct PaymentStatus {
    /// The procedure's policy: `none`, `before_processing` or `after_decision`.
    pub policy: String,
    /// Whether what the policy requires before processing is paid (always true without that policy).
    pub settled: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub settled_at: Option<Timestamp>,
}

#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct ClientAction {
    pub action: String,
    #[schema(value_type = Object)]
    pub label: Label,
    pub to_state: String,
    pub comment_required: bool,
    /// For a decision action: `approved`, `rejected` or `partially_approved` (taken through `…/decision`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub decision: Option<&'static str>,
}

/// A decision document produced by a specialised procedure.
pub struct ClientDecision {
    pub result: String,
    pub reasons: String,
    /// The PDF.
    pub document: Bytes,
    pub name: String,
}

fn actor(client: &str) -> Actor {
    Actor::new(ActorKind::Client, client.to_owned(), None)
}

fn audit(
    conn: &mut DbConnection,
    client: &str,
    action: &str,
    id: &str,
    now: Timestamp,
) -> Result<(), DbError> {
    amtsweg_audit::append(
        conn,
        &Event {
            actor: &actor(client),
            action,
            object: Some(("application", id)),
            outcome: Outcome::Success,
            at: now,
        },
    )
}

/// A submitted application of one of `procedures`; anything else is not found.
fn case_for(
    conn: &mut DbConnection,
    id: &str,
    procedures: &Procedures,
) -> Result<ApplicationRow, ApplicationError> {
    let row = applications::table
        .find(id)
        .filter(applications::status.eq("submitted"))
        .select(ApplicationRow::as_select())
        .first(conn)
        .optional()?
        .ok_or(ApplicationError::NotFound)?;
    let visible = match procedures {
        Procedures::All => true,
        Procedures::Some(ids) => ids.contains(&row.procedure_id),
    };
    if visible {
        Ok(row)
    } else {
        Err(ApplicationError::NotFound)
    }
}

fn decision_name(decision: amtsweg_workflow::Decision) -> &'static str {
    match decision {
        amtsweg_workflow::Decision::Approved => "approved",
        amtsweg_workflow::Decision::Rejected => "rejected",
        amtsweg_workflow::Decision::PartiallyApproved => "partially_approved",
    }
}

impl ApplicationService {
    /// The application for a specialised procedure; the read is recorded.
    pub async fn client_application(
        &self,
        client: &str,
        procedures: &Procedures,
        id: &str,
    ) -> Result<ClientApplicationView, ApplicationError> {
        let (client, procedures, id) = (client.to_owned(), procedures.clone(), id.to_owned());
        let now = self.clock().now();
        let service = self.clone();
        self.db()
            .write(move |conn| {
                let row = case_for(conn, &id, &procedures)?;
                audit(conn, &client, "integration.application_read", &id, now)?;
                service.client_view(conn, &row, now)
            })
            .await
    }

    /// An attachment of an application for a specialised procedure: (file, holder) for the download; recorded.
    pub async fn client_attachment(
        &self,
        client: &str,
        procedures: &Procedures,
        id: &str,
        attachment_id: &str,
    ) -> Result<(amtsweg_files::FileId, String), ApplicationError> {
        let (client, procedures) = (client.to_owned(), procedures.clone());
        let (id, attachment_id) = (id.to_owned(), attachment_id.to_owned());
        let now = self.clock().now();
        self.db()
            .write(move |conn| {
                case_for(conn, &id, &procedures)?;
                let found = crate::staff::attachment_file(conn, &id, &attachment_id)?;
                audit(conn, &client, "integration.attachment_read", &id, now)?;
                Ok(found)
            })
            .await
    }

    /// Takes a workflow action declared for clients (`by: client`); the citizen sees it in the timeline.
    pub async fn client_transition(
        &self,
        client: &str,
        procedures: &Procedures,
        id: &str,
        action: &str,
        comment: Option<String>,
        also: InTransaction<ClientApplicationView>,
    ) -> Result<ClientApplicationView, ApplicationError> {
        let (client, procedures) = (client.to_owned(), procedures.clone());
        let (id, action) = (id.to_owned(), action.to_owned());
        let now = self.clock().now();
        let service = self.clone();
        self.db()
            .write(move |conn| {
                let row = case_for(conn, &id, &procedures)?;
                let (workflow, procedure) = service.case_parts(conn, &row)?;
                let state = row.state.clone().unwrap_or_default();
                let expired = expired_timers(conn, &id, now)?;
                let facts = Facts {
                    by: Caller::Client,
                    documents_complete: documents_complete(conn, &id, &procedure)?,
                    payment_settled: payment_settled(&procedure, &row),
                    expired_timers: &expired,
                    ..Facts::default()
                };
                let comment = comment.filter(|c| !c.trim().is_empty());
                let step = workflow
                    .fire(&state, &action, &facts, comment.as_deref())
                    .map_err(|refusal| refused(refusal, &action))?;
                if step.transition.decision.is_some() {
                    return Err(ApplicationError::field(
                        "/action",
                        "decision_action",
                        Text::fixed(
                            "Entscheidungen werden mit ihrem Bescheid über …/decision gemeldet.",
                            "Decisions are reported with their document through …/decision.",
                        ),
                    ));
                }
                advance_version(conn, &id, row.version, now)?;
                let context = EffectContext::of(&row, &procedure, &service, now);
                let actor = (StepActor::Client(&client), comment.as_deref());
                case::advance(conn, &context, &workflow, &state, step, actor, &facts)?;
                audit(conn, &client, "integration.status_reported", &id, now)?;
                let row = load_row(conn, &id)?;
                let view = service.client_view(conn, &row, now)?;
                also(conn, &view)?;
                Ok(view)
            })
            .await
    }

    /// Records the decision a specialised procedure made, with its document (a PDF): the workflow's client
    /// decision action for `result` from the current state; the document then goes to the Postfach like a
    /// decision made in Amtsweg.
    pub async fn client_decision(
        &self,
        client: &str,
        procedures: &Procedures,
        id: &str,
        input: ClientDecision,
        also: InTransaction<ClientApplicationView>,
    ) -> Result<ClientApplicationView, ApplicationError> {
        let Some(decision) = crate::decision::parse_result(&input.result) else {
            return Err(ApplicationError::Validation(vec![FieldError::at_pointer(
                "/result",
                "not_allowed",
                Text::fixed(
                    "Erlaubt sind „approved“, „rejected“ und „partially_approved“.",
                    "Allowed are “approved”, “rejected” and “partially_approved”.",
                ),
            )]));
        };
        let reasons = input.reasons.trim().to_owned();
        if reasons.chars().count() > 20_000 {
            return Err(ApplicationError::field(
                "/reasons",
                "too_long",
                Text::fixed("Höchstens 20.000 Zeichen.", "At most 20,000 characters."),
            ));
        }
        // Check before storing the document.
        let (client, procedures, id) = (client.to_owned(), procedures.clone(), id.to_owned());
        let row = {
            let (id, procedures) = (id.clone(), procedures.clone());
            self.db()
                .read(move |conn| case_for(conn, &id, &procedures))
                .await?
        };
        let holder = row.account_id.clone();
        let name = if input.name.trim().is_empty() {
            format!("Bescheid-{}.pdf", row.case_number.clone().unwrap_or_default())
        } else {
            input.name.clone()
        };
        let file = self
            .files()
            .store_bytes(input.document, &name, &holder, DECISIONS)
            .await?;
        let now = self.clock().now();
        let service = self.clone();
        self.db()
            .write(move |conn| {
                let row = case_for(conn, &id, &procedures)?;
                let (workflow, procedure) = service.case_parts(conn, &row)?;
                let state = row.state.clone().unwrap_or_default();
                let action = workflow
                    .leaving(&state)
                    .find(|t| t.by == By::Client && t.decision == Some(decision))
                    .map(|t| t.action.clone())
                    .ok_or_else(|| {
                        ApplicationError::field(
                            "/result",
                            "decision_not_available",
                            Text::fixed(
                                "Diese Entscheidung ist im jetzigen Stand des Vorgangs nicht möglich.",
                                "This decision is not possible at the case's current stage.",
                            ),
                        )
                    })?;
                let expired = expired_timers(conn, &id, now)?;
                let facts = Facts {
                    by: Caller::Client,
                    documents_complete: documents_complete(conn, &id, &procedure)?,
                    payment_settled: payment_settled(&procedure, &row),
                    expired_timers: &expired,
                    ..Facts::default()
                };
                let comment = (!reasons.is_empty()).then_some(reasons.as_str());
                let step = workflow
                    .fire(&state, &action, &facts, comment)
                    .map_err(|refusal| refused(refusal, &action))?;
                let document_id = amtsweg_kernel::id::new_id();
                let metadata = json!({
                    "case_number": row.case_number,
                    "procedure_id": row.procedure_id,
                    "result": input.result,
                    "reasons": reasons,
                    "decided_at": now,
                    "decided_by": format!("client:{client}"),
                });
                let data_sha256 =
                    amtsweg_documents::sha256_hex(amtsweg_documents::canonical_json(&metadata).as_bytes());
                let author = format!("client:{client}");
                let record = DecisionRecord {
                    document_id: &document_id,
                    result: &input.result,
                    reasons: &reasons,
                    fee: None,
                    author: &author,
                    file: &file,
                    pdf_sha256: &file.sha256,
                    data_sha256: &data_sha256,
                    pages: None,
                };
                crate::decision::store(conn, &row, &procedure, row.version, &record, now)?;
                let context = EffectContext::of(&row, &procedure, &service, now);
                case::advance(
                    conn,
                    &context,
                    &workflow,
                    &state,
                    step,
                    (StepActor::Client(&client), None),
                    &facts,
                )?;
                crate::fiction::stop(conn, &id, "decided", now)?;
                audit(conn, &client, "integration.decision_reported", &id, now)?;
                let row = load_row(conn, &id)?;
                let view = service.client_view(conn, &row, now)?;
                also(conn, &view)?;
                Ok(view)
            })
            .await
    }

    fn client_view(
        &self,
        conn: &mut DbConnection,
        row: &ApplicationRow,
        now: Timestamp,
    ) -> Result<ClientApplicationView, ApplicationError> {
        let (workflow, procedure) = self.case_parts(conn, row)?;
        let state = row.state.clone().unwrap_or_default();
        let attachments: Vec<AttachmentRow> = application_attachments::table
            .filter(application_attachments::application_id.eq(&row.id))
            .select(AttachmentRow::as_select())
            .order(application_attachments::id)
            .load(conn)?;
        let expired = expired_timers(conn, &row.id, now)?;
        let settled = payment_settled(&procedure, row);
        let facts = Facts {
            by: Caller::Client,
            documents_complete: documents_complete(conn, &row.id, &procedure)?,
            payment_settled: settled,
            expired_timers: &expired,
            ..Facts::default()
        };
        let actions = workflow
            .available(&state, &facts)
            .filter(|t| t.by == By::Client)
            .map(|t| ClientAction {
                action: t.action.clone(),
                label: t.label.clone(),
                to_state: t.to.clone(),
                comment_required: t.comment_required,
                decision: t.decision.map(decision_name),
            })
            .collect();
        let policy = serde_json::to_value(procedure.procedure.payment)
            .ok()
            .and_then(|v| v.as_str().map(str::to_owned))
            .unwrap_or_default();
        Ok(ClientApplicationView {
            id: row.id.clone(),
            case_number: row.case_number.clone().unwrap_or_default(),
            procedure_id: row.procedure_id.clone(),
            procedure_version: u32::try_from(row.procedure_version).unwrap_or_default(),
            unit_id: row.unit_id.clone(),
            state_label: workflow.state(&state).map_or_else(
                || Label {
                    de: state.clone(),
                    en: state.clone(),
                },
                |s| s.label.clone(),
            ),
            state,
            submitted_at: row.submitted_at.unwrap_or(row.created_at),
            applicant: Applicant {
                name: row.applicant_name.clone().unwrap_or_default(),
                organisation_id: row.on_behalf_of.clone(),
                postal_address: amtsweg_account::directory::postal_address(conn, &row.account_id)?,
            },
            data: serde_json::from_str(&row.data).unwrap_or_else(|_| json!({})),
            attachments: attachments
                .iter()
                .map(|a| ClientAttachment {
                    href: format!("/api/v1/integration/applications/{}/attachments/{}", row.id, a.id),
                    file: AttachmentView::of(a),
                })
                .collect(),
            fee_cents: row.fee_cents,
            payment: PaymentStatus {
                policy,
                settled,
                settled_at: row.payment_settled_at,
            },
            actions,
            version: row.version,
        })
    }
}
