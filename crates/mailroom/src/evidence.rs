//! The evidence of a delivery, as staff see and print it: every recorded time, the rule and its statute, the
//! consent relied on, the notification and its fate, the document's hash and seal.

use amtsweg_auth::{StaffAuth, Units};
use amtsweg_catalogue::domain::ResolvedRule;
use amtsweg_db::DbConnection;
use amtsweg_documents::{Block, DocumentSpec};
use amtsweg_kernel::{Lang, Text, Timestamp};
use diesel::prelude::*;
use serde::Serialize;
use utoipa::ToSchema;

use crate::delivery::{DeliveryRow, load, of_case};
use crate::postfach::staff_units;
use crate::schema::mailbox_attachments;
use crate::{Mailroom, MailroomError};

/// The evidence of one delivery.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct Evidence {
    pub id: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub application_id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub case_number: Option<String>,
    pub unit_id: String,
    /// The account the decision is addressed to, and the Postfach it was provided in.
    pub recipient: String,
    pub mailbox: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub message_id: Option<String>,
    /// `postfach` or `paper`.
    pub channel: String,
    /// `provided`, `printing`, `posted` or `notified`.
    pub state: String,
    pub rule: ResolvedRule,
    pub statute: String,
    /// The consent to electronic delivery relied on.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub consent_id: Option<String>,
    pub document_name: String,
    pub document_sha256: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub document_pages: Option<i32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub document_seal: Option<String>,
    pub required_level: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub provided_at: Option<Timestamp>,
    /// The notification: channel `email`, the address it went to, each try's status.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub notification_address: Option<String>,
    pub notifications: Vec<amtsweg_mail::Notification>,
    /// When the notification was handed to the mail relay.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub notified_at: Option<Timestamp>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub first_retrieved_at: Option<Timestamp>,
    /// The day the decision counts as notified.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub deemed_notified_on: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub deemed_recorded_at: Option<Timestamp>,
    /// When the electronic provision ended (the decision then went to paper), and why.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub provision_ended_at: Option<Timestamp>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub fallback_reason: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub letter_id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub posted_on: Option<String>,
    /// Formal service: the day on the returned delivery certificate.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub served_on: Option<String>,
    pub created_at: Timestamp,
}

fn evidence_of(conn: &mut DbConnection, row: DeliveryRow) -> Result<Evidence, MailroomError> {
    let seal: Option<String> = match &row.attachment_id {
        Some(id) => mailbox_attachments::table
            .find(id)
            .select(mailbox_attachments::seal)
            .first::<Option<String>>(conn)
            .optional()?
            .flatten(),
        None => None,
    };
    let notifications = amtsweg_mail::notifications(conn, &format!("delivery:{}", row.id))?;
    let document = crate::delivery::document_of(conn, &row.id)?;
    let rule = row.rule();
    Ok(Evidence {
        statute: if row.served_on.is_some() {
            "Postzustellungsurkunde (§ 3 VwZG)".to_owned()
        } else if row.posted_on.is_some() {
            format!("{} / § 41 Abs. 2 VwVfG (Post)", rule.preset.statute())
        } else {
            rule.preset.statute().to_owned()
        },
        rule,
        id: row.id,
        application_id: row.case_ref,
        case_number: row.case_number,
        unit_id: row.unit_id,
        recipient: row.recipient,
        mailbox: row.mailbox,
        message_id: row.message_id,
        channel: row.channel,
        state: row.state,
        consent_id: row.consent_id,
        document_name: document.name,
        document_sha256: document.sha256,
        document_pages: document.pages,
        document_seal: seal,
        required_level: row.required_level,
        provided_at: row.provided_at,
        notification_address: row.notification_address,
        notifications,
        notified_at: row.notified_at,
        first_retrieved_at: row.first_retrieved_at,
        deemed_notified_on: row.deemed_notified_on,
        deemed_recorded_at: row.deemed_recorded_at,
        provision_ended_at: row.expired_at,
        fallback_reason: row.fallback_reason,
        letter_id: row.letter_id,
        posted_on: row.posted_on,
        served_on: row.served_on,
        created_at: row.created_at,
    })
}

fn not_found() -> MailroomError {
    MailroomError::NotFound(
        "delivery_not_found",
        Text::fixed("Zustellung nicht gefunden.", "Delivery not found."),
    )
}

fn require_units(auth: &StaffAuth) -> Result<Units, MailroomError> {
    let units = staff_units(auth);
    if matches!(units, Units::None) {
        return Err(MailroomError::Forbidden(Text::fixed(
            "Zustellungen sehen Sachbearbeitung und Leitung einer Stelle.",
            "Deliveries are for a unit's case workers and supervisors.",
        )));
    }
    Ok(units)
}

impl Mailroom {
    /// One delivery's evidence, in the caller's transaction.
    pub(crate) fn evidence_in(&self, conn: &mut DbConnection, id: &str) -> Result<Evidence, MailroomError> {
        let row = load(conn, id)?.ok_or_else(not_found)?;
        evidence_of(conn, row)
    }

    /// The deliveries of a case of the staff member's units, newest first.
    pub async fn case_deliveries(
        &self,
        auth: &StaffAuth,
        application_id: &str,
    ) -> Result<Vec<Evidence>, MailroomError> {
        let (units, id) = (require_units(auth)?, application_id.to_owned());
        self.db()
            .read(move |conn| {
                let rows = of_case(conn, &id)?;
                rows.into_iter()
                    .filter(|row| units.contains(&row.unit_id))
                    .map(|row| evidence_of(conn, row))
                    .collect()
            })
            .await
    }

    /// One delivery's evidence, for staff of its unit.
    pub async fn evidence(&self, auth: &StaffAuth, id: &str) -> Result<Evidence, MailroomError> {
        let (units, id) = (require_units(auth)?, id.to_owned());
        self.db()
            .read(move |conn| {
                let row = load(conn, &id)?
                    .filter(|row| units.contains(&row.unit_id))
                    .ok_or_else(not_found)?;
                evidence_of(conn, row)
            })
            .await
    }

    /// The evidence as a PDF (tagged, PDF/A), to print for a file or a court.
    pub async fn evidence_pdf(
        &self,
        auth: &StaffAuth,
        id: &str,
        lang: Lang,
    ) -> Result<Vec<u8>, MailroomError> {
        let evidence = self.evidence(auth, id).await?;
        let now = self.now();
        let text = |de: &str, en: &str| match lang {
            Lang::De => de.to_owned(),
            Lang::En => en.to_owned(),
        };
        let stamp = |t: Option<Timestamp>| t.map_or_else(|| "—".to_owned(), |t| t.rfc3339());
        let mut facts = vec![
            (text("Zustellung", "Delivery"), evidence.id.clone()),
            (
                text("Aktenzeichen", "Case number"),
                evidence.case_number.clone().unwrap_or_default(),
            ),
            (text("Weg", "Channel"), evidence.channel.clone()),
            (text("Stand", "State"), evidence.state.clone()),
            (text("Regel", "Rule"), evidence.statute.clone()),
            (text("Dokument", "Document"), evidence.document_name.clone()),
            (
                text("SHA-256 des Dokuments", "Document SHA-256"),
                evidence.document_sha256.clone(),
            ),
            (
                text("Vertrauensniveau zum Öffnen", "Trust level to open"),
                evidence.required_level.clone(),
            ),
            (
                text("Einwilligung", "Consent"),
                evidence.consent_id.clone().unwrap_or_else(|| "—".into()),
            ),
            (text("Bereitgestellt", "Provided"), stamp(evidence.provided_at)),
            (
                text("Benachrichtigung an", "Notification to"),
                evidence
                    .notification_address
                    .clone()
                    .map_or_else(|| "—".into(), |a| format!("E-Mail {a}")),
            ),
            (
                text("Benachrichtigung versandt", "Notification sent"),
                stamp(evidence.notified_at),
            ),
            (
                text("Erstmals abgerufen", "First retrieved"),
                stamp(evidence.first_retrieved_at),
            ),
            (
                text("Gilt als bekannt gegeben am", "Deemed notified on"),
                evidence.deemed_notified_on.clone().unwrap_or_else(|| "—".into()),
            ),
            (
                text("Bereitstellung beendet", "Provision ended"),
                stamp(evidence.provision_ended_at),
            ),
        ];
        if let Some(reason) = &evidence.fallback_reason {
            facts.push((text("Grund für Papier", "Reason for paper"), reason.clone()));
        }
        if let Some(posted) = &evidence.posted_on {
            facts.push((text("Zur Post gegeben", "Posted"), posted.clone()));
        }
        let mut blocks = vec![Block::Facts(facts)];
        if !evidence.notifications.is_empty() {
            blocks.push(Block::Heading(text("Benachrichtigungen", "Notifications")));
            blocks.push(Block::List(
                evidence
                    .notifications
                    .iter()
                    .map(|n| {
                        format!(
                            "{} · {} · {}",
                            n.queued_at.rfc3339(),
                            n.status.as_str(),
                            n.sent_at.map(Timestamp::rfc3339).unwrap_or_default()
                        )
                    })
                    .collect(),
            ));
        }
        if let Some(seal) = &evidence.document_seal {
            blocks.push(Block::Heading(text("Siegel", "Seal")));
            blocks.push(Block::Paragraph(seal.clone()));
        }
        let spec = DocumentSpec {
            lang,
            title: text("Zustellnachweis", "Evidence of delivery"),
            sender: vec![evidence.unit_id.clone()],
            recipient: Vec::new(),
            dated: now.format("%Y-%m-%d").to_string(),
            blocks,
            document_id: evidence.id.clone(),
            data: crate::delivery::json_of(&evidence),
            created: now,
        };
        let rendered = tokio::task::spawn_blocking(move || amtsweg_documents::render(&spec))
            .await
            .map_err(|err| MailroomError::Internal(err.to_string()))?
            .map_err(|err| MailroomError::Internal(err.to_string()))?;
        Ok(rendered.pdf)
    }
}
