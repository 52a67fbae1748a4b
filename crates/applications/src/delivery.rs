//! Decisions go out through the Virtuelle Poststelle: the `deliver_decision` effect hands the decision document to
//! [`amtsweg_mailroom::Mailroom::provide`] in the case's transaction, and the mailroom's delivery events come
//! back as steps of the case's timeline; the decision's notification (bekannt gegeben) closes the case through
//! the system transition that leaves the state waiting for delivery.
//!
//! The mailroom knows cases only through [`ApplicationCases`], this module's [`CaseDirectory`].

use amtsweg_db::{DbConnection, DbError};
use amtsweg_jobs::{JobError, Registry, handler_fn};
use amtsweg_kernel::{Lang, Text, Timestamp};
use amtsweg_mailroom::{CaseDirectory, CaseInfo, Document, Provision};
use amtsweg_workflow::{By, Waits};
use diesel::prelude::*;
use serde_json::{Value, json};

use crate::case::{self, StepActor};
use crate::error::ApplicationError;
use crate::schema::{application_decisions, applications};
use crate::service::{ApplicationRow, ApplicationService, EffectContext};
use crate::staff::load_row;

/// The job kind that turns the mailroom's delivery events into case steps.
pub const DELIVERY_STEP: &str = "applications.delivery_step";

fn info(row: &ApplicationRow) -> CaseInfo {
    CaseInfo {
        case_ref: row.id.clone(),
        case_number: row.case_number.clone(),
        procedure_id: row.procedure_id.clone(),
        unit_id: row.unit_id.clone(),
        applicant: row.account_id.clone(),
        organisation: row.on_behalf_of.clone(),
    }
}

/// The `deliver_decision` effect: the case's latest decision goes to the mailroom.
pub(crate) fn provide(conn: &mut DbConnection, context: &EffectContext<'_>) -> Result<(), ApplicationError> {
    let row = load_row(conn, context.application_id)?;
    let decision: Option<(String, String, String, Option<i32>)> = application_decisions::table
        .filter(application_decisions::application_id.eq(&row.id))
        .order(application_decisions::created_at.desc())
        .select((
            application_decisions::id,
            application_decisions::file_id,
            application_decisions::pdf_sha256,
            application_decisions::pages,
        ))
        .first(conn)
        .optional()?;
    let Some((decision_id, file_id, sha256, pages)) = decision else {
        return Err(ApplicationError::Internal(
            "the workflow delivers a decision, but the case has none".into(),
        ));
    };
    let p = &context.procedure.procedure;
    let number = context.case_number;
    let case = info(&row);
    context.mailroom.provide(
        conn,
        &Provision {
            owner_ref: &format!("decision:{decision_id}"),
            case: &case,
            rule: p.delivery,
            required_level: p.trust_level,
            subject: Text::new(
                format!("Bescheid zu Ihrem Antrag {number}"),
                format!("Decision on your application {number}"),
            ),
            body: Text::new(
                format!(
                    "Guten Tag,\n\nanbei erhalten Sie den Bescheid zu Ihrem Antrag „{}“ ({number}). Bitte öffnen und \
                     speichern Sie das Dokument.\n\n{}",
                    p.title.get(Lang::De),
                    p.unit.name.get(Lang::De)
                ),
                format!(
                    "Hello,\n\nplease find the decision on your application “{}” ({number}) attached. Please open and \
                     store the document.\n\n{}",
                    p.title.get(Lang::En),
                    p.unit.name.get(Lang::En)
                ),
            ),
            document: Document {
                file_id,
                holder: row.account_id.clone(),
                name: format!("Bescheid-{number}.pdf"),
                sha256,
                pages,
            },
        },
        context.now,
    )?;
    Ok(())
}

/// The mailroom asks about cases here.
pub struct ApplicationCases;

fn submitted(conn: &mut DbConnection, id: &str) -> Result<Option<ApplicationRow>, DbError> {
    Ok(applications::table
        .find(id)
        .filter(applications::status.ne("draft"))
        .select(ApplicationRow::as_select())
        .first(conn)
        .optional()?)
}

impl CaseDirectory for ApplicationCases {
    fn case_for_citizen(
        &self,
        conn: &mut DbConnection,
        case_ref: &str,
        person: &str,
    ) -> Result<Option<CaseInfo>, DbError> {
        let Some(row) = submitted(conn, case_ref)? else {
            return Ok(None);
        };
        let allowed = row.account_id == person
            || match &row.on_behalf_of {
                Some(organisation) => amtsweg_account::directory::is_member(conn, organisation, person)?,
                None => false,
            };
        Ok(allowed.then(|| info(&row)))
    }

    fn case(&self, conn: &mut DbConnection, case_ref: &str) -> Result<Option<CaseInfo>, DbError> {
        Ok(submitted(conn, case_ref)?.as_ref().map(info))
    }

    fn case_by_number(
        &self,
        conn: &mut DbConnection,
        case_number: &str,
    ) -> Result<Option<CaseInfo>, DbError> {
        let row: Option<ApplicationRow> = applications::table
            .filter(applications::case_number.eq(case_number))
            .select(ApplicationRow::as_select())
            .first(conn)
            .optional()?;
        Ok(row.as_ref().map(info))
    }
}

/// The step a delivery event adds to the timeline.
fn step_action(event_type: &str, channel: &str) -> Option<&'static str> {
    use amtsweg_mailroom::events as e;
    Some(match event_type {
        t if t == e::PROVIDED.name && channel == "paper" => "delivery.paper_queued",
        t if t == e::PROVIDED.name => "delivery.provided",
        t if t == e::NOTIFICATION_SENT.name => "delivery.notification_sent",
        t if t == e::RETRIEVED.name => "delivery.retrieved",
        t if t == e::FALLBACK.name => "delivery.fallback_to_paper",
        t if t == e::POSTED.name => "delivery.posted",
        t if t == e::NOTIFIED.name => "delivery.notified",
        t if t == e::INBOUND_ROUTED.name => "inbound.received",
        _ => return None,
    })
}

/// The timeline's label of a delivery step.
pub(crate) fn step_label(action: &str, lang: Lang) -> Option<String> {
    let text = match action {
        "delivery.provided" => Text::fixed(
            "Bescheid im Postfach bereitgestellt",
            "Decision provided in your mailbox",
        ),
        "delivery.paper_queued" => Text::fixed("Bescheid wird per Post versandt", "Decision is sent by post"),
        "delivery.notification_sent" => Text::fixed(
            "Benachrichtigung per E-Mail versandt",
            "Notification sent by e-mail",
        ),
        "delivery.retrieved" => Text::fixed("Bescheid abgerufen", "Decision opened"),
        "delivery.fallback_to_paper" => Text::fixed(
            "Nicht abgerufen: Bescheid wird per Post versandt",
            "Not opened: the decision is sent by post",
        ),
        "delivery.posted" => Text::fixed("Bescheid zur Post gegeben", "Decision posted"),
        "delivery.notified" => Text::fixed("Bescheid bekannt gegeben", "Decision notified"),
        "inbound.received" => Text::fixed("Schreiben eingegangen", "Letter received"),
        _ => return None,
    };
    Some(text.get(lang).to_owned())
}

impl ApplicationService {
    /// Follows the mailroom's delivery events.
    pub(crate) fn delivery_jobs(&self) -> Registry {
        let service = self.clone();
        Registry::new().handler(handler_fn(DELIVERY_STEP, 8, move |job| {
            let service = service.clone();
            async move {
                match service.delivery_step(&job.payload).await {
                    Ok(recorded) => Ok(Some(json!({"recorded": recorded}))),
                    Err(ApplicationError::NotFound) => Ok(None),
                    Err(err) => Err(JobError::Transient(err.to_string())),
                }
            }
        }))
    }

    /// Records a mailroom event as a public step of its case (once per event), and closes the case when the
    /// decision counts as notified.
    pub async fn delivery_step(&self, event: &Value) -> Result<bool, ApplicationError> {
        let data = &event["data"];
        let (Some(id), Some(action)) = (
            data["case_ref"].as_str().map(str::to_owned),
            event["type"]
                .as_str()
                .and_then(|t| step_action(t, data["channel"].as_str().unwrap_or_default())),
        ) else {
            return Ok(false);
        };
        let at = event["time"]
            .as_str()
            .and_then(Timestamp::parse_rfc3339)
            .unwrap_or_else(|| self.clock().now());
        let Some(event_id) = event["id"].as_str().map(str::to_owned) else {
            return Ok(false);
        };
        let comment = data["deemed_notified_on"]
            .as_str()
            .filter(|_| action == "delivery.notified")
            .map(str::to_owned);
        let (service, now) = (self.clone(), self.clock().now());
        self.db()
            .write(move |conn| {
                let row = load_row(conn, &id)?;
                let state = row.state.clone().unwrap_or_default();
                let step = case::Step {
                    action,
                    from: Some(&state),
                    to: &state,
                    actor: StepActor::System,
                    comment: comment.as_deref(),
                    public: true,
                };
                if !case::record_for_event(conn, &id, &step, &event_id, at)? {
                    return Ok(false);
                }
                if action == "delivery.notified" {
                    service.close_delivered(conn, &row, now)?;
                }
                Ok(true)
            })
            .await
    }

    /// Takes the system step out of the state that waits for delivery, if the case is there.
    fn close_delivered(
        &self,
        conn: &mut DbConnection,
        row: &ApplicationRow,
        now: Timestamp,
    ) -> Result<(), ApplicationError> {
        let (workflow, _) = self.case_parts(conn, row)?;
        let state = row.state.clone().unwrap_or_default();
        if workflow.state(&state).and_then(|s| s.waits_for) != Some(Waits::Delivery) {
            return Ok(());
        }
        if let Some(action) = workflow
            .leaving(&state)
            .find(|t| t.by == By::System)
            .map(|t| t.action.clone())
        {
            self.take_system_step(conn, row, &action, &[], "case.decision_notified", now)?;
        }
        Ok(())
    }
}
