//! The receipt of a submission (Eingangsbestätigung): a snapshot of what was submitted is taken in the submit
//! transaction; a job renders it into an accessible PDF (documents crate) in the applicant's language — every
//! field with the form's label in the form's order, the attachments' names and SHA-256, the case number and the
//! submission time — keeps it in the case file and sends a notice that it is there (no form content in the mail).
//! Asked for before the job ran, the receipt is rendered on the spot; whoever records it first wins.

use amtsweg_account::directory;
use amtsweg_audit::{Actor, Event, Outcome};
use amtsweg_db::{DbConnection, DbError};
use amtsweg_documents::{Block, DocumentSpec};
use amtsweg_files::{FileId, UploadPolicy};
use amtsweg_jobs::{JobError, JobSpec, Registry, handler_fn};
use amtsweg_kernel::{Cents, Lang, Text, Timestamp};
use diesel::prelude::*;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use crate::error::ApplicationError;
use crate::schema::application_receipts;
use crate::service::{ApplicationRow, ApplicationService, visible};
use crate::view::AttachmentView;

pub const RENDER_RECEIPT: &str = "applications.render_receipt";

/// Receipts: kept by the applications module from the moment one is recorded.
const RECEIPTS: UploadPolicy = UploadPolicy {
    allowed: &["application/pdf"],
    owner_module: "applications",
    expires: true,
};

/// What was submitted, as the receipt shows it.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct Snapshot {
    pub case_number: String,
    pub procedure_id: String,
    pub procedure_version: i32,
    pub submitted_at: Timestamp,
    pub applicant: String,
    pub lang: Lang,
    pub data: Value,
    pub attachments: Vec<SubmittedAttachment>,
    pub fee_cents: Option<i64>,
    /// Written form (§ 3a (2) VwVfG): when the applicant logged in with the eID card the submission was made with.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub eid_login_at: Option<Timestamp>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct SubmittedAttachment {
    pub document_type: String,
    pub name: String,
    pub size: i64,
    pub sha256: String,
}

/// Takes the snapshot of a submission and asks for its receipt, in the submit transaction.
pub(crate) fn take_snapshot(
    conn: &mut DbConnection,
    row: &ApplicationRow,
    attachments: &[AttachmentView],
    eid_login_at: Option<Timestamp>,
    lang: Lang,
    now: Timestamp,
) -> Result<(), DbError> {
    let snapshot = Snapshot {
        case_number: row.case_number.clone().unwrap_or_default(),
        procedure_id: row.procedure_id.clone(),
        procedure_version: row.procedure_version,
        submitted_at: row.submitted_at.unwrap_or(now),
        applicant: row.applicant_name.clone().unwrap_or_default(),
        lang,
        data: serde_json::from_str(&row.data).unwrap_or_else(|_| json!({})),
        attachments: attachments
            .iter()
            .map(|a| SubmittedAttachment {
                document_type: a.document_type.clone(),
                name: a.name.clone(),
                size: a.size,
                sha256: a.sha256.clone(),
            })
            .collect(),
        fee_cents: row.fee_cents,
        eid_login_at,
    };
    diesel::insert_into(application_receipts::table)
        .values((
            application_receipts::application_id.eq(&row.id),
            application_receipts::snapshot.eq(json!(snapshot).to_string()),
        ))
        .execute(conn)?;
    amtsweg_jobs::enqueue(
        conn,
        &JobSpec::new(RENDER_RECEIPT, json!({"application_id": row.id}))
            .dedupe(format!("receipt:{}", row.id)),
        now,
    )?;
    Ok(())
}

impl ApplicationService {
    pub(crate) fn receipt_jobs(&self) -> Registry {
        let service = self.clone();
        Registry::new().handler(handler_fn(RENDER_RECEIPT, 8, move |job| {
            let service = service.clone();
            async move {
                let id = job.payload["application_id"]
                    .as_str()
                    .ok_or_else(|| JobError::Permanent("no application_id".into()))?
                    .to_owned();
                match service.issue_receipt(&id).await {
                    Ok(_) => Ok(Some(json!({"application_id": id}))),
                    Err(ApplicationError::NotFound) => {
                        Err(JobError::Permanent(format!("no receipt for {id}")))
                    }
                    Err(err) => Err(JobError::Transient(err.to_string())),
                }
            }
        }))
    }

    /// The receipt of a submitted application the caller may see, as (file, holder) for the download.
    pub async fn receipt(&self, person: &str, id: &str) -> Result<(FileId, String), ApplicationError> {
        let (person, owned) = (person.to_owned(), id.to_owned());
        let row = self.db().read(move |conn| visible(conn, &owned, &person)).await?;
        if row.status != "submitted" {
            return Err(ApplicationError::NotFoundAs(
                "receipt_not_found",
                Text::fixed(
                    "Eine Eingangsbestätigung gibt es erst nach dem Einreichen.",
                    "There is a receipt once the application has been submitted.",
                ),
            ));
        }
        let file = self.issue_receipt(id).await?;
        Ok((file, row.account_id))
    }

    /// The recorded receipt of `id`, rendered and recorded first where it is not yet.
    async fn issue_receipt(&self, id: &str) -> Result<FileId, ApplicationError> {
        let owned = id.to_owned();
        let recorded: Option<(String, Option<String>, String)> = self
            .db()
            .read(move |conn| {
                application_receipts::table
                    .inner_join(crate::schema::applications::table)
                    .filter(application_receipts::application_id.eq(&owned))
                    .select((
                        application_receipts::snapshot,
                        application_receipts::file_id,
                        crate::schema::applications::account_id,
                    ))
                    .first(conn)
                    .optional()
                    .map_err(DbError::from)
            })
            .await?;
        let Some((snapshot, file, account)) = recorded else {
            return Err(ApplicationError::NotFound);
        };
        if let Some(file) = file {
            return Ok(FileId::from_string(file));
        }
        let snapshot: Snapshot =
            serde_json::from_str(&snapshot).map_err(|err| ApplicationError::Internal(err.to_string()))?;
        let spec = self.receipt_spec(&snapshot)?;
        let rendered = tokio::task::spawn_blocking(move || amtsweg_documents::render(&spec))
            .await
            .map_err(|err| ApplicationError::Internal(err.to_string()))?
            .map_err(|err| ApplicationError::Internal(err.to_string()))?;
        let stored = self
            .files()
            .store_bytes(
                rendered.pdf.into(),
                &format!("Eingangsbestaetigung-{}.pdf", snapshot.case_number),
                &account,
                RECEIPTS,
            )
            .await?;
        let now = self.clock().now();
        let account_of_file = account.clone();
        let (owned, file_id) = (id.to_owned(), stored.id.clone());
        let service = self.clone();
        let winner = self
            .db()
            .write(move |conn| {
                let recorded = diesel::update(
                    application_receipts::table
                        .find(&owned)
                        .filter(application_receipts::file_id.is_null()),
                )
                .set((
                    application_receipts::file_id.eq(file_id.as_str()),
                    application_receipts::pdf_sha256.eq(&rendered.pdf_sha256),
                    application_receipts::rendered_at.eq(now),
                ))
                .execute(conn)?;
                if recorded == 0 {
                    // Someone else recorded it meanwhile: theirs is the receipt.
                    let theirs: Option<String> = application_receipts::table
                        .find(&owned)
                        .select(application_receipts::file_id)
                        .first(conn)?;
                    return Ok::<_, ApplicationError>((theirs.map(FileId::from_string), false));
                }
                amtsweg_files::take_up(conn, &file_id, &account, crate::service::OWNER_MODULE)?;
                service.notify_receipt(conn, &owned, &snapshot, now)?;
                amtsweg_audit::append(
                    conn,
                    &Event {
                        actor: &Actor::system(),
                        action: "application.receipt_issued",
                        object: Some(("application", &owned)),
                        outcome: Outcome::Success,
                        at: now,
                    },
                )?;
                Ok((Some(file_id), true))
            })
            .await?;
        match winner {
            (Some(file), true) => Ok(file),
            (Some(file), false) => {
                // Ours was never taken up; it expires like any upload, or goes now.
                let _ = self.files().delete_of(&account_of_file, &stored.id).await;
                Ok(file)
            }
            (None, _) => Err(ApplicationError::NotFound),
        }
    }

    fn notify_receipt(
        &self,
        conn: &mut DbConnection,
        id: &str,
        snapshot: &Snapshot,
        now: Timestamp,
    ) -> Result<(), ApplicationError> {
        let row: ApplicationRow = crate::staff::load_row(conn, id)?;
        let Some(contact) = directory::contact(conn, &row.account_id)? else {
            return Ok(());
        };
        let Some(email) = contact.email else {
            return Ok(());
        };
        let title = self
            .catalogue()
            .get(&snapshot.procedure_id)
            .map(|p| p.procedure.title.clone())
            .unwrap_or_else(|| Text::new(snapshot.procedure_id.clone(), snapshot.procedure_id.clone()));
        let (subject, body) =
            crate::templates::notice("quittung", contact.lang, &snapshot.case_number, &title);
        amtsweg_mail::enqueue(
            conn,
            &amtsweg_mail::Message {
                to: email,
                subject,
                body,
                kind: "applications.receipt",
                account_id: Some(row.account_id.clone()),
                reference: Some(format!("application:{}", row.id)),
                publish_outcome: false,
            },
            now,
        )?;
        Ok(())
    }

    fn receipt_spec(&self, snapshot: &Snapshot) -> Result<DocumentSpec, ApplicationError> {
        let lang = snapshot.lang;
        let procedure = self
            .catalogue()
            .get(&snapshot.procedure_id)
            .ok_or(ApplicationError::UnknownProcedure)?;
        let p = &procedure.procedure;
        let text = |de: &str, en: &str| match lang {
            Lang::De => de.to_owned(),
            Lang::En => en.to_owned(),
        };
        let berlin_time = |at: Timestamp| {
            let berlin = amtsweg_workflow::deadline::berlin_time(at.utc().naive_utc());
            match lang {
                Lang::De => berlin.format("%d.%m.%Y, %H:%M Uhr").to_string(),
                Lang::En => berlin.format("%-d %B %Y, %H:%M").to_string(),
            }
        };
        let submitted = berlin_time(snapshot.submitted_at);
        let berlin = amtsweg_workflow::deadline::berlin_time(snapshot.submitted_at.utc().naive_utc());
        let mut facts = vec![
            (text("Aktenzeichen", "Case number"), snapshot.case_number.clone()),
            (text("Leistung", "Service"), p.title.get(lang).to_owned()),
            (text("Eingegangen am", "Received on"), submitted),
            (text("Antragsteller/in", "Applicant"), snapshot.applicant.clone()),
        ];
        if let Some(at) = snapshot.eid_login_at {
            facts.push((
                text(
                    "Schriftformersatz (§ 3a Abs. 2 VwVfG)",
                    "Written form replaced (§ 3a (2) VwVfG)",
                ),
                match lang {
                    Lang::De => format!("Identitätsnachweis mit dem Online-Ausweis am {}", berlin_time(at)),
                    Lang::En => format!("Identity proven with the eID card on {}", berlin_time(at)),
                },
            ));
        }
        if let Some(fee) = snapshot.fee_cents.and_then(Cents::new) {
            facts.push((text("Festgesetzte Gebühr", "Fee assessed"), fee.display(lang)));
        }
        let fields: Vec<(String, String)> = crate::form::fields(&procedure, &snapshot.data, lang)
            .into_iter()
            .map(|field| (field.label, crate::form::display(&field.value, lang)))
            .collect();
        let attachments: Vec<String> = snapshot
            .attachments
            .iter()
            .map(|a| {
                let kind = p
                    .documents
                    .iter()
                    .find(|d| d.kind == a.document_type)
                    .map_or_else(|| a.document_type.clone(), |d| d.name.get(lang).to_owned());
                format!("{kind}: {} ({} Bytes), SHA-256 {}", a.name, a.size, a.sha256)
            })
            .collect();
        let mut blocks = vec![
            Block::Paragraph(match lang {
                Lang::De => format!(
                    "Ihr Antrag ist am {} bei {} eingegangen. Bitte geben Sie bei Rückfragen das Aktenzeichen an.",
                    facts[2].1,
                    p.unit.name.get(lang)
                ),
                Lang::En => format!(
                    "Your application was received by {} on {}. Please quote the case number in any enquiry.",
                    p.unit.name.get(lang),
                    facts[2].1
                ),
            }),
            Block::Facts(facts),
            Block::Heading(text("Ihre Angaben", "Your details")),
            Block::Facts(fields),
            Block::Heading(text("Beigefügte Unterlagen", "Documents attached")),
        ];
        blocks.push(if attachments.is_empty() {
            Block::Paragraph(text("Keine.", "None."))
        } else {
            Block::List(attachments)
        });
        Ok(DocumentSpec {
            lang,
            title: text("Eingangsbestätigung", "Receipt"),
            sender: vec![
                p.authority.name.get(lang).to_owned(),
                p.unit.name.get(lang).to_owned(),
            ],
            recipient: vec![snapshot.applicant.clone()],
            dated: match lang {
                Lang::De => berlin.format("%d.%m.%Y").to_string(),
                Lang::En => berlin.format("%-d %B %Y").to_string(),
            },
            blocks,
            document_id: format!("receipt-{}", snapshot.case_number),
            data: json!(snapshot),
            created: snapshot.submitted_at,
        })
    }
}
