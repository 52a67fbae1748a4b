//! Decisions (Bescheide): a case worker decides, the decision document is rendered (PDF/A, tagged, in the
//! applicant's language, with the notice of legal remedies) into the case file, and where the workflow needs four
//! eyes it takes effect only after a second staff member of the unit — never its author — has co-signed it.

use amtsweg_account::directory;
use amtsweg_db::DbConnection;
use amtsweg_documents::{Block, DocumentSpec};
use amtsweg_files::{FileId, UploadPolicy};
use amtsweg_kernel::{Cents, FieldError, Lang, Text};
use amtsweg_workflow::{By, Caller, Decision, Facts};
use diesel::prelude::*;
use serde_json::json;

use crate::case::{self, StepActor};
use crate::error::ApplicationError;
use crate::schema::{application_decisions, applications};
use crate::service::{ApplicationService, EffectContext, payment_settled};
use crate::staff::{CaseWorker, StaffCaseView, case_of, documents_complete, expired_timers, refused};

/// Decision documents: kept by the applications module, from the moment the decision commits.
pub(crate) const DECISIONS: UploadPolicy = UploadPolicy {
    allowed: &["application/pdf"],
    owner_module: "applications",
    expires: true,
};

/// What a case worker decides.
pub struct DecisionInput {
    pub result: String,
    pub reasons: String,
    /// Overrides the assessed fee, for procedures invoiced with the decision.
    pub fee_cents: Option<i64>,
}

pub(crate) fn parse_result(result: &str) -> Option<Decision> {
    match result {
        "approved" => Some(Decision::Approved),
        "rejected" => Some(Decision::Rejected),
        "partially_approved" => Some(Decision::PartiallyApproved),
        _ => None,
    }
}

fn result_label(decision: Decision, lang: Lang) -> &'static str {
    match (decision, lang) {
        (Decision::Approved, Lang::De) => "Genehmigt",
        (Decision::Approved, Lang::En) => "Approved",
        (Decision::Rejected, Lang::De) => "Abgelehnt",
        (Decision::Rejected, Lang::En) => "Rejected",
        (Decision::PartiallyApproved, Lang::De) => "Teilweise genehmigt",
        (Decision::PartiallyApproved, Lang::En) => "Partially approved",
    }
}

/// The latest decision of a case still waiting for its second signature: (id, author).
pub(crate) fn pending(
    conn: &mut DbConnection,
    id: &str,
) -> Result<Option<(String, String)>, ApplicationError> {
    Ok(application_decisions::table
        .filter(application_decisions::application_id.eq(id))
        .filter(application_decisions::cosigned_by.is_null())
        .order(application_decisions::created_at.desc())
        .select((application_decisions::id, application_decisions::author))
        .first(conn)
        .optional()?)
}

/// A decision document in the case file, ready to be recorded.
pub(crate) struct DecisionRecord<'a> {
    pub document_id: &'a str,
    pub result: &'a str,
    pub reasons: &'a str,
    /// A fee set with the decision (else the assessed fee stays).
    pub fee: Option<Cents>,
    /// A staff id, or `client:{id}` for a decision of a specialised procedure.
    pub author: &'a str,
    pub file: &'a amtsweg_files::FileView,
    pub pdf_sha256: &'a str,
    pub data_sha256: &'a str,
    pub pages: Option<i32>,
}

/// Records a decision of the case `row` (seen at `version`): the document taken up into the case file, the
/// decision row, and the case's next version with the fee the decision sets.
pub(crate) fn store(
    conn: &mut DbConnection,
    row: &crate::service::ApplicationRow,
    procedure: &amtsweg_catalogue::LoadedProcedure,
    version: i64,
    record: &DecisionRecord<'_>,
    now: amtsweg_kernel::Timestamp,
) -> Result<(), ApplicationError> {
    amtsweg_files::take_up(conn, &record.file.id, &row.account_id, "applications")?
        .ok_or_else(|| ApplicationError::Internal("the decision document vanished".into()))?;
    let fee_cents = record.fee.map(Cents::get).or(row.fee_cents);
    diesel::insert_into(application_decisions::table)
        .values((
            application_decisions::id.eq(record.document_id),
            application_decisions::application_id.eq(&row.id),
            application_decisions::result.eq(record.result),
            application_decisions::reasons.eq(record.reasons),
            application_decisions::fee_cents.eq(fee_cents),
            application_decisions::author.eq(record.author),
            application_decisions::created_at.eq(now),
            application_decisions::file_id.eq(record.file.id.as_str()),
            application_decisions::pdf_sha256.eq(record.pdf_sha256),
            application_decisions::data_sha256.eq(record.data_sha256),
            application_decisions::pages.eq(record.pages),
        ))
        .execute(conn)?;
    // A fee set with the decision replaces the assessment by the procedure's decision_fee line.
    let fee_lines = match (record.fee, &procedure.procedure.decision_fee) {
        (Some(fee), Some(rule)) => Some(crate::fees::decided_json(rule, fee)),
        _ => row.fee_lines.clone(),
    };
    let updated = diesel::update(
        applications::table
            .find(&row.id)
            .filter(applications::version.eq(version)),
    )
    .set((
        applications::version.eq(version + 1),
        applications::updated_at.eq(now),
        applications::fee_cents.eq(fee_cents),
        applications::fee_lines.eq(fee_lines),
    ))
    .execute(conn)?;
    if updated == 0 {
        return Err(ApplicationError::StaleVersion { current: version + 1 });
    }
    Ok(())
}

impl ApplicationService {
    /// Decides a case: the workflow's decision action for `result` from the current state, the decision document
    /// into the case file, and — where four eyes apply — the case waits for the co-signature.
    pub async fn decide(
        &self,
        worker: CaseWorker,
        id: &str,
        version: i64,
        input: DecisionInput,
        lang: Lang,
    ) -> Result<StaffCaseView, ApplicationError> {
        let mut errors = Vec::new();
        let decision = parse_result(&input.result);
        if decision.is_none() {
            errors.push(FieldError::at_pointer(
                "/result",
                "not_allowed",
                Text::fixed(
                    "Erlaubt sind „approved“, „rejected“ und „partially_approved“.",
                    "Allowed are “approved”, “rejected” and “partially_approved”.",
                ),
            ));
        }
        let reasons = input.reasons.trim().to_owned();
        if reasons.is_empty() || reasons.chars().count() > 20_000 {
            errors.push(FieldError::at_pointer(
                "/reasons",
                "invalid_length",
                Text::fixed(
                    "Bitte 1 bis 20.000 Zeichen Begründung.",
                    "Please give 1 to 20,000 characters of reasons.",
                ),
            ));
        }
        let fee = match input.fee_cents.map(Cents::new) {
            None => None,
            Some(Some(fee)) => Some(fee),
            Some(None) => {
                errors.push(FieldError::at_pointer(
                    "/fee_cents",
                    "out_of_range",
                    Text::fixed(
                        "Die Gebühr liegt außerhalb des zulässigen Bereichs.",
                        "The fee is out of range.",
                    ),
                ));
                None
            }
        };
        let Some(decision) = decision.filter(|_| errors.is_empty()) else {
            return Err(ApplicationError::Validation(errors));
        };

        // Read and check first; render outside the transaction.
        let (row, action, (applicant, address)) = {
            let (id, worker) = (id.to_owned(), worker.clone());
            let service = self.clone();
            self.db()
                .read(move |conn| {
                    let row = case_of(conn, &id, &worker)?;
                    if row.version != version {
                        return Err(ApplicationError::StaleVersion { current: row.version });
                    }
                    let (workflow, procedure) = service.case_parts(conn, &row)?;
                    let state = row.state.clone().unwrap_or_default();
                    let action = workflow
                        .leaving(&state)
                        .find(|t| t.by == By::Staff && t.decision == Some(decision))
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
                    if fee.is_some()
                        && (procedure.procedure.payment
                            != amtsweg_catalogue::domain::procedure::PaymentPolicy::AfterDecision
                            || procedure.procedure.decision_fee.is_none())
                    {
                        return Err(ApplicationError::field(
                            "/fee_cents",
                            "fee_not_adjustable",
                            Text::fixed(
                                "Die Gebühr dieser Leistung wird nicht mit der Entscheidung festgesetzt.",
                                "This procedure's fee is not set with the decision.",
                            ),
                        ));
                    }
                    let applicant = directory::contact(conn, &row.account_id)?;
                    let address = directory::postal_address(conn, &row.account_id)?;
                    Ok((row, action, (applicant, address)))
                })
                .await?
        };
        let procedure = self.procedure_of(&row)?;
        let doc_lang = applicant.as_ref().map_or(Lang::De, |c| c.lang);
        let now = self.clock().now();
        let document_id = amtsweg_kernel::id::new_id();
        let case_number = row.case_number.clone().unwrap_or_default();
        let fee_cents = fee.map(Cents::get).or(row.fee_cents);
        let p = &procedure.procedure;
        let data = json!({
            "case_number": case_number,
            "procedure_id": p.id,
            "procedure_version": p.version,
            "result": input.result,
            "reasons": reasons,
            "fee_cents": fee_cents,
            "decided_at": now,
        });
        let date = match doc_lang {
            Lang::De => now.format("%d.%m.%Y").to_string(),
            Lang::En => now.format("%-d %B %Y").to_string(),
        };
        let text = |de: &str, en: &str| match doc_lang {
            Lang::De => de.to_owned(),
            Lang::En => en.to_owned(),
        };
        let mut facts = vec![
            (text("Aktenzeichen", "Case number"), case_number.clone()),
            (text("Leistung", "Service"), p.title.get(doc_lang).to_owned()),
            (
                text("Entscheidung", "Decision"),
                result_label(decision, doc_lang).to_owned(),
            ),
        ];
        if let Some(fee) = fee_cents.and_then(Cents::new) {
            facts.push((text("Gebühr", "Fee"), fee.display(doc_lang)));
        }
        let authority = p.authority.name.get(doc_lang).to_owned();
        let spec = DocumentSpec {
            lang: doc_lang,
            title: text("Bescheid", "Decision"),
            sender: vec![authority.clone(), p.unit.name.get(doc_lang).to_owned()],
            // Addressed for a DIN 5008 window envelope, so that the same document can go out on paper.
            recipient: if address.is_empty() {
                vec![applicant.as_ref().map(|c| c.name.clone()).unwrap_or_default()]
            } else {
                address
            },
            dated: date,
            blocks: vec![
                Block::Facts(facts),
                Block::Heading(text("Begründung", "Reasons")),
                Block::Paragraph(reasons.clone()),
                Block::Heading(text("Rechtsbehelfsbelehrung", "Notice of legal remedies")),
                Block::Paragraph(match (&p.remedies, doc_lang) {
                    (Some(remedies), lang) => remedies.get(lang).to_owned(),
                    (None, Lang::De) => format!(
                        "Gegen diesen Bescheid kann innerhalb eines Monats nach Bekanntgabe Widerspruch erhoben werden. \
                         Der Widerspruch ist schriftlich, in elektronischer Form nach § 3a Abs. 2 VwVfG oder zur \
                         Niederschrift bei {authority} einzulegen."
                    ),
                    (None, Lang::En) => format!(
                        "An objection to this decision may be lodged within one month of its notification. It must be \
                         lodged with {authority} in writing, in electronic form under § 3a (2) VwVfG, or for the record."
                    ),
                }),
            ],
            document_id: document_id.clone(),
            data,
            created: now,
        };
        let rendered = tokio::task::spawn_blocking(move || amtsweg_documents::render(&spec))
            .await
            .map_err(|err| ApplicationError::Internal(err.to_string()))?
            .map_err(|err| ApplicationError::Internal(err.to_string()))?;
        let file = self
            .files()
            .store_bytes(
                rendered.pdf.into(),
                &format!("Bescheid-{case_number}.pdf"),
                &row.account_id,
                DECISIONS,
            )
            .await?;

        let (id, service) = (id.to_owned(), self.clone());
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
                let facts = Facts {
                    by: Caller::Staff(&roles),
                    documents_complete: documents_complete(conn, &id, &procedure)?,
                    payment_settled: payment_settled(&procedure, &row),
                    expired_timers: &expired,
                    ..Facts::default()
                };
                let step = workflow
                    .fire(&state, &action, &facts, Some(&reasons))
                    .map_err(|refusal| refused(refusal, &action))?;
                let record = DecisionRecord {
                    document_id: &document_id,
                    result: &input.result,
                    reasons: &reasons,
                    fee,
                    author: &worker.id,
                    file: &file,
                    pdf_sha256: &rendered.pdf_sha256,
                    data_sha256: &rendered.data_sha256,
                    pages: i32::try_from(rendered.pages).ok(),
                };
                store(conn, &row, &procedure, version, &record, now)?;
                let context = EffectContext::of(&row, &procedure, &service, now);
                let actor = (StepActor::Staff(&worker.id), None);
                case::advance(conn, &context, &workflow, &state, step, actor, &facts)?;
                crate::fiction::stop(conn, &id, "decided", now)?;
                crate::staff::audit(conn, &worker, "case.decided", &id, now)?;
                let row = crate::staff::load_row(conn, &id)?;
                service.staff_view(conn, &row, &worker, lang, now)
            })
            .await
    }

    /// The second signature of a pending decision by another staff member of the unit; the case then goes on
    /// (e.g. to delivery) where its workflow waits for it.
    pub async fn cosign(
        &self,
        worker: CaseWorker,
        id: &str,
        version: i64,
        lang: Lang,
    ) -> Result<StaffCaseView, ApplicationError> {
        let id = id.to_owned();
        let now = self.clock().now();
        let service = self.clone();
        self.db()
            .write(move |conn| {
                let row = case_of(conn, &id, &worker)?;
                if row.version != version {
                    return Err(ApplicationError::StaleVersion { current: row.version });
                }
                let Some((decision_id, author)) = pending(conn, &id)? else {
                    return Err(ApplicationError::Conflict(
                        "nothing_to_cosign",
                        Text::fixed(
                            "Es liegt keine Entscheidung zur Mitzeichnung vor.",
                            "There is no decision waiting for a second signature.",
                        ),
                    ));
                };
                if author == worker.id {
                    return Err(ApplicationError::Forbidden(Text::fixed(
                        "Eine Entscheidung zeichnet eine zweite Person mit, nicht ihre Verfasserin oder ihr Verfasser.",
                        "A decision is co-signed by a second person, not by its author.",
                    )));
                }
                diesel::update(application_decisions::table.find(&decision_id))
                    .set((
                        application_decisions::cosigned_by.eq(&worker.id),
                        application_decisions::cosigned_at.eq(now),
                    ))
                    .execute(conn)?;
                diesel::update(applications::table.find(&id))
                    .set((applications::version.eq(version + 1), applications::updated_at.eq(now)))
                    .execute(conn)?;
                let (workflow, procedure) = service.case_parts(conn, &row)?;
                let state = row.state.clone().unwrap_or_default();
                case::record(
                    conn,
                    &id,
                    &case::Step {
                        action: "cosign",
                        from: Some(&state),
                        to: &state,
                        actor: StepActor::Staff(&worker.id),
                        comment: None,
                        public: false,
                    },
                    now,
                )?;
                let expired = expired_timers(conn, &id, now)?;
                let facts = Facts {
                    by: Caller::System,
                    documents_complete: documents_complete(conn, &id, &procedure)?,
                    payment_settled: payment_settled(&procedure, &row),
                    cosigned: true,
                    expired_timers: &expired,
                    ..Facts::default()
                };
                let context = EffectContext::of(&row, &procedure, &service, now);
                let reached = case::run_automatic(conn, &context, &workflow, &facts, &state)?;
                crate::events::transitioned(conn, &context, &state, &reached, "cosign")?;
                crate::staff::audit(conn, &worker, "case.cosigned", &id, now)?;
                let row = crate::staff::load_row(conn, &id)?;
                service.staff_view(conn, &row, &worker, lang, now)
            })
            .await
    }

    /// A decision document of a case the caller works on: (file, holder account) for the download.
    pub async fn decision_document(
        &self,
        worker: CaseWorker,
        id: &str,
    ) -> Result<(FileId, String), ApplicationError> {
        let id = id.to_owned();
        self.db()
            .read(move |conn| {
                let row = case_of(conn, &id, &worker)?;
                let file: String = application_decisions::table
                    .filter(application_decisions::application_id.eq(&id))
                    .order(application_decisions::created_at.desc())
                    .select(application_decisions::file_id)
                    .first(conn)
                    .optional()?
                    .ok_or(ApplicationError::NotFoundAs(
                        "decision_not_found",
                        Text::fixed("Noch keine Entscheidung.", "No decision yet."),
                    ))?;
                Ok((FileId::from_string(file), row.account_id))
            })
            .await
    }

    /// The mails about a case of the caller's units, with their delivery status.
    pub async fn case_notifications(
        &self,
        worker: CaseWorker,
        id: &str,
    ) -> Result<Vec<amtsweg_mail::Notification>, ApplicationError> {
        let id = id.to_owned();
        self.db()
            .read(move |conn| {
                case_of(conn, &id, &worker)?;
                Ok(amtsweg_mail::notifications(conn, &format!("application:{id}"))?)
            })
            .await
    }
}
