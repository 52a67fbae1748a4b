//! The citizen's use cases: drafts, attachments, the one atomic submit, and reading the business status.

use std::collections::BTreeMap;
use std::sync::Arc;

use amtsweg_account::directory;
use amtsweg_audit::{Actor, ActorKind, Event, Outcome};
use amtsweg_catalogue::domain::procedure::PaymentPolicy;
use amtsweg_catalogue::{CatalogueService, LoadedProcedure};
use amtsweg_db::{Database, DbConnection, DbError, InTransaction};
use amtsweg_files::{FileId, FileStore};
use amtsweg_kernel::pagination::{Page, PageRequest, encode_cursor};
use amtsweg_kernel::{FieldError, Lang, SharedClock, Text, Timestamp};
use amtsweg_workflow::{Calendar, Caller, Definition, Effect, Facts, Workflows};
use diesel::prelude::*;
use serde::Deserialize;
use serde_json::{Value, json};

use crate::case::{self, Step, StepActor};
use crate::error::ApplicationError;
use crate::schema::{application_attachments, application_steps, application_timers, applications};
use crate::view::{ApplicationView, AttachmentView, BusinessStatus, PrefilledField, TimelineStep, Warning};
use crate::{case_number, events, templates};

/// The documents the application module keeps (attachments taken up from uploads).
pub const OWNER_MODULE: &str = "applications";

/// Configuration of the applications module.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ApplicationSettings {
    /// The case number of every unit without its own: `{unit}`, `{year}` (Europe/Berlin), `{seq}` or `{seq:0N}`.
    pub case_number_format: String,
    /// Formats of single units, by unit id.
    pub case_number_formats: BTreeMap<String, String>,
    /// Public holidays for deadlines.
    pub calendar: Calendar,
}

impl Default for ApplicationSettings {
    fn default() -> Self {
        Self {
            case_number_format: "{unit}-{year}-{seq:06}".into(),
            case_number_formats: BTreeMap::new(),
            calendar: Calendar::saxony(),
        }
    }
}

impl ApplicationSettings {
    /// Every format that would not give unique numbers.
    pub fn problems(&self) -> Vec<String> {
        std::iter::once((
            "applications.case_number_format".to_owned(),
            &self.case_number_format,
        ))
        .chain(
            self.case_number_formats
                .iter()
                .map(|(unit, format)| (format!("applications.case_number_formats.{unit}"), format)),
        )
        .filter(|(_, format)| !case_number::valid_format(format))
        .map(|(key, format)| format!("{key} = {format:?} must contain {{seq}} or {{seq:0N}}"))
        .collect()
    }

    fn format_for(&self, unit: &str) -> &str {
        self.case_number_formats
            .get(unit)
            .map_or(self.case_number_format.as_str(), String::as_str)
    }
}

pub struct ApplicationDeps {
    pub db: Database,
    pub clock: SharedClock,
    pub catalogue: CatalogueService,
    pub workflows: Workflows,
    pub files: FileStore,
    pub payments: amtsweg_payment::PaymentService,
    pub mailroom: amtsweg_mailroom::Mailroom,
    pub settings: ApplicationSettings,
}

/// The applications module. Cheap to clone.
#[derive(Clone)]
pub struct ApplicationService {
    inner: Arc<ApplicationDeps>,
    pinned: Arc<crate::versions::Pinned>,
}

/// A new draft.
pub struct NewDraft {
    pub procedure_id: String,
    pub on_behalf_of: Option<String>,
    pub data: Option<Value>,
}

/// Filters of the citizen's list.
#[derive(Debug, Clone, Default)]
pub struct ListFilter {
    pub status: Option<String>,
    pub state: Option<String>,
    pub procedure_id: Option<String>,
}

#[derive(Debug, Clone, Queryable, Selectable)]
#[diesel(table_name = applications)]
pub(crate) struct ApplicationRow {
    pub id: String,
    pub account_id: String,
    pub on_behalf_of: Option<String>,
    pub procedure_id: String,
    pub procedure_version: i32,
    pub procedure_hash: String,
    pub unit_id: String,
    pub data: String,
    pub status: String,
    pub case_number: Option<String>,
    pub workflow_id: Option<String>,
    pub workflow_hash: Option<String>,
    pub state: Option<String>,
    pub version: i64,
    pub applicant_name: Option<String>,
    pub fee_cents: Option<i64>,
    pub fee_lines: Option<String>,
    pub submitted_at: Option<Timestamp>,
    pub created_at: Timestamp,
    pub updated_at: Timestamp,
    pub assignee: Option<String>,
    pub prefilled: String,
    pub service_norm_due: Option<String>,
    pub waiting_since: Option<Timestamp>,
    pub payment_settled_at: Option<Timestamp>,
}

#[derive(Debug, Clone, Queryable, Selectable)]
#[diesel(table_name = application_attachments)]
pub(crate) struct AttachmentRow {
    pub id: String,
    pub document_type: String,
    pub file_id: String,
    pub uploaded_by: String,
    pub name: String,
    pub media_type: String,
    pub size: i64,
    pub sha256: String,
    pub created_at: Timestamp,
}

#[derive(Debug, Clone, Queryable, Selectable)]
#[diesel(table_name = application_steps)]
pub(crate) struct StepRow {
    pub at: Timestamp,
    pub action: String,
    pub to_state: String,
    pub comment: Option<String>,
    pub public: bool,
}

impl ApplicationService {
    pub fn new(deps: ApplicationDeps) -> ApplicationService {
        ApplicationService {
            pinned: Arc::new(crate::versions::Pinned::new(&deps.workflows)),
            inner: Arc::new(deps),
        }
    }

    /// Records the workflow versions not seen before, so cases submitted under them can always find them. Refuses
    /// a changed file that kept its version.
    pub async fn record_workflow_versions(&self) -> Result<(), crate::versions::RecordError> {
        let service = self.clone();
        let now = self.now();
        let recorded = self
            .inner
            .db
            .write(move |conn| crate::versions::record(conn, &service.inner.workflows, now))
            .await?;
        for (id, version) in recorded {
            tracing::info!(workflow = %id, version, "recorded new workflow version");
        }
        Ok(())
    }

    fn now(&self) -> Timestamp {
        self.inner.clock.now()
    }

    fn procedure(&self, id: &str) -> Result<Arc<LoadedProcedure>, ApplicationError> {
        self.inner
            .catalogue
            .catalogue()
            .get(id)
            .ok_or(ApplicationError::UnknownProcedure)
    }

    pub(crate) fn workflow(&self, id: &str) -> Option<Arc<Definition>> {
        self.inner.workflows.get(id).map(|w| w.definition.clone())
    }

    pub fn files(&self) -> &FileStore {
        &self.inner.files
    }

    pub(crate) fn db(&self) -> &Database {
        &self.inner.db
    }

    pub(crate) fn clock(&self) -> &SharedClock {
        &self.inner.clock
    }

    pub(crate) fn catalogue(&self) -> &amtsweg_catalogue::Catalogue {
        self.inner.catalogue.catalogue()
    }

    pub(crate) fn payments(&self) -> &amtsweg_payment::PaymentService {
        &self.inner.payments
    }

    pub(crate) fn calendar(&self) -> &Calendar {
        &self.inner.settings.calendar
    }

    /// The workflow definition a submitted case runs under: the version it was submitted with.
    pub(crate) fn workflow_of(
        &self,
        conn: &mut DbConnection,
        row: &ApplicationRow,
    ) -> Result<Option<Arc<Definition>>, ApplicationError> {
        if let Some(hash) = &row.workflow_hash {
            return Ok(self.pinned.get(conn, hash)?);
        }
        Ok(row.workflow_id.as_deref().and_then(|id| self.workflow(id)))
    }

    /// The procedure of an application.
    pub(crate) fn procedure_of(
        &self,
        row: &ApplicationRow,
    ) -> Result<Arc<LoadedProcedure>, ApplicationError> {
        self.procedure(&row.procedure_id)
    }

    /// The workflow (the version the case was submitted with) and procedure a submitted case runs under.
    pub(crate) fn case_parts(
        &self,
        conn: &mut DbConnection,
        row: &ApplicationRow,
    ) -> Result<(Arc<Definition>, Arc<LoadedProcedure>), ApplicationError> {
        let procedure = self.procedure_of(row)?;
        let workflow = self.workflow_of(conn, row)?.ok_or_else(|| {
            ApplicationError::Internal(format!(
                "the workflow of case {} ({:?}, {:?}) is not recorded",
                row.id, row.workflow_id, row.workflow_hash
            ))
        })?;
        Ok((workflow, procedure))
    }

    /// Creates a draft pinned to the procedure's current version.
    pub async fn create_draft(
        &self,
        person: &str,
        draft: NewDraft,
        lang: Lang,
        also: InTransaction<ApplicationView>,
    ) -> Result<ApplicationView, ApplicationError> {
        let procedure = self.procedure(&draft.procedure_id)?;
        let data = draft.data.unwrap_or_else(|| json!({}));
        if !data.is_object() {
            return Err(ApplicationError::field(
                "/data",
                "invalid_type",
                Text::fixed("Die Angaben sind ein JSON-Objekt.", "The data is a JSON object."),
            ));
        }
        let now = self.now();
        let person = person.to_owned();
        let service = self.clone();
        self.inner
            .db
            .write(move |conn| {
                if let Some(organisation) = &draft.on_behalf_of
                    && !directory::is_member(conn, organisation, &person)?
                {
                    return Err(ApplicationError::field(
                        "/on_behalf_of",
                        "not_a_member",
                        Text::fixed(
                            "Sie handeln nicht für diese Organisation.",
                            "You do not act for this organisation.",
                        ),
                    ));
                }
                let id = amtsweg_kernel::id::new_id();
                let p = &procedure.procedure;
                // Fields the citizen consented to fill from the profile, where the draft does not bring them.
                let mut data = data;
                let mut prefilled: Vec<PrefilledField> = Vec::new();
                if !p.prefill.is_empty()
                    && draft.on_behalf_of.is_none()
                    && let Some((consent, shared)) =
                        directory::shared_profile(conn, &person, &p.id, &p.authority.ags)?
                {
                    for (pointer, attribute) in &p.prefill {
                        let value = shared.iter().find(|(name, _)| name == attribute);
                        if let Some((_, value)) = value
                            && data.pointer(pointer).is_none()
                            && crate::form::set(&mut data, pointer, Value::String(value.clone()))
                        {
                            prefilled.push(PrefilledField {
                                pointer: pointer.clone(),
                                attribute: attribute.clone(),
                                consent_id: consent.clone(),
                            });
                        }
                    }
                }
                diesel::insert_into(applications::table)
                    .values((
                        applications::id.eq(&id),
                        applications::account_id.eq(&person),
                        applications::on_behalf_of.eq(&draft.on_behalf_of),
                        applications::procedure_id.eq(&p.id),
                        applications::procedure_version.eq(i32::try_from(p.version).unwrap_or(i32::MAX)),
                        applications::procedure_hash.eq(&procedure.content_hash),
                        applications::unit_id.eq(&p.unit.id),
                        applications::data.eq(data.to_string()),
                        applications::prefilled.eq(json!(prefilled).to_string()),
                        applications::status.eq("draft"),
                        applications::version.eq(1_i64),
                        applications::created_at.eq(now),
                        applications::updated_at.eq(now),
                    ))
                    .execute(conn)?;
                audit(conn, &person, "application.draft_created", &id, now)?;
                let row = load(conn, &id)?;
                let view = service.view(conn, &row, lang, false)?;
                also(conn, &view)?;
                Ok(view)
            })
            .await
    }

    /// One application the caller may see, with its timeline.
    pub async fn get(&self, person: &str, id: &str, lang: Lang) -> Result<ApplicationView, ApplicationError> {
        let (person, id) = (person.to_owned(), id.to_owned());
        let service = self.clone();
        self.inner
            .db
            .read(move |conn| {
                let row = visible(conn, &id, &person)?;
                service.view(conn, &row, lang, true)
            })
            .await
    }

    /// The caller's own applications and those of the organisations they act for, newest first.
    pub async fn list(
        &self,
        person: &str,
        filter: ListFilter,
        page: PageRequest,
        lang: Lang,
    ) -> Result<Page<ApplicationView>, ApplicationError> {
        let person = person.to_owned();
        let service = self.clone();
        self.inner
            .db
            .read(move |conn| {
                let organisations = directory::organisations_of(conn, &person)?;
                let mut query = applications::table
                    .filter(
                        applications::account_id
                            .eq(&person)
                            .or(applications::on_behalf_of.eq_any(&organisations)),
                    )
                    .select(ApplicationRow::as_select())
                    .order(applications::id.desc())
                    .limit(i64::try_from(page.limit + 1).unwrap_or(101))
                    .into_boxed();
                if let Some(after) = &page.after {
                    query = query.filter(applications::id.lt(after.clone()));
                }
                if let Some(status) = filter.status {
                    query = query.filter(applications::status.eq(status));
                }
                if let Some(state) = filter.state {
                    query = query.filter(applications::state.eq(state));
                }
                if let Some(procedure) = filter.procedure_id {
                    query = query.filter(applications::procedure_id.eq(procedure));
                }
                let mut rows: Vec<ApplicationRow> = query.load(conn)?;
                let next_cursor = if rows.len() > page.limit {
                    rows.truncate(page.limit);
                    rows.last().map(|row| encode_cursor(&row.id))
                } else {
                    None
                };
                let items = rows
                    .iter()
                    .map(|row| service.view(conn, row, lang, false))
                    .collect::<Result<_, _>>()?;
                Ok(Page { items, next_cursor })
            })
            .await
    }

    /// Applies a JSON merge patch (RFC 7396) to a draft's `data`; answers the draft with the form's current
    /// problems as warnings (a draft may be incomplete).
    pub async fn patch(
        &self,
        person: &str,
        id: &str,
        patch: Value,
        lang: Lang,
    ) -> Result<ApplicationView, ApplicationError> {
        let Value::Object(members) = patch else {
            return Err(ApplicationError::field(
                "",
                "invalid_type",
                Text::fixed("Erwartet wird ein JSON-Objekt.", "A JSON object is expected."),
            ));
        };
        if let Some((name, _)) = members.iter().find(|(name, _)| name.as_str() != "data") {
            return Err(ApplicationError::field(
                &format!("/{name}"),
                "not_patchable",
                Text::fixed("Nur „data“ kann geändert werden.", "Only “data” can be changed."),
            ));
        }
        let data_patch = members.get("data").cloned().unwrap_or(Value::Null);
        if !data_patch.is_object() {
            return Err(ApplicationError::field(
                "/data",
                "invalid_type",
                Text::fixed("„data“ ist ein JSON-Objekt.", "“data” is a JSON object."),
            ));
        }
        let (person, id) = (person.to_owned(), id.to_owned());
        let now = self.now();
        let service = self.clone();
        self.inner
            .db
            .write(move |conn| {
                let row = draft_of(conn, &id, &person)?;
                let mut data: Value = serde_json::from_str(&row.data).unwrap_or_else(|_| json!({}));
                merge_patch(&mut data, &data_patch);
                diesel::update(
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
                let row = load(conn, &id)?;
                let mut view = service.view(conn, &row, lang, false)?;
                if let Ok(procedure) = service.procedure(&row.procedure_id) {
                    view.warnings = procedure
                        .violations(&data)
                        .iter()
                        .map(|error| Warning::of(error, lang))
                        .collect();
                }
                Ok(view)
            })
            .await
    }

    /// Deletes a draft with its attachments.
    pub async fn delete(&self, person: &str, id: &str) -> Result<(), ApplicationError> {
        let (person, id) = (person.to_owned(), id.to_owned());
        let now = self.now();
        self.inner
            .db
            .write(move |conn| {
                draft_of(conn, &id, &person)?;
                let files: Vec<String> = application_attachments::table
                    .filter(application_attachments::application_id.eq(&id))
                    .select(application_attachments::file_id)
                    .load(conn)?;
                diesel::delete(
                    application_attachments::table.filter(application_attachments::application_id.eq(&id)),
                )
                .execute(conn)?;
                for file in files {
                    amtsweg_files::remove(conn, &FileId::from_string(file), now)?;
                }
                diesel::delete(applications::table.find(&id)).execute(conn)?;
                audit(conn, &person, "application.draft_deleted", &id, now)?;
                Ok(())
            })
            .await
    }

    /// Attaches an uploaded file of the caller to a draft as a document of `document_type`. The file's sniffed
    /// type and size are checked against the procedure's rules for that type.
    pub async fn attach(
        &self,
        person: &str,
        id: &str,
        document_type: &str,
        file: amtsweg_files::FileView,
    ) -> Result<AttachmentView, ApplicationError> {
        let (person, id, document_type) = (person.to_owned(), id.to_owned(), document_type.to_owned());
        let now = self.now();
        let service = self.clone();
        self.inner
            .db
            .write(move |conn| {
                let row = draft_of(conn, &id, &person)?;
                let procedure = service.procedure(&row.procedure_id)?;
                check_document(&procedure, &document_type, &file)?;
                let taken = amtsweg_files::take_up(conn, &file.id, &person, OWNER_MODULE)?
                    .ok_or(ApplicationError::NotFound)?;
                let attachment = insert_attachment(conn, &id, &document_type, taken, &person, None, now)?;
                bump(conn, &row, now)?;
                audit(conn, &person, "application.attachment_added", &id, now)?;
                Ok(AttachmentView::of(&attachment))
            })
            .await
    }

    /// An attachment of an application the caller may see, with who holds its file (for the download).
    pub async fn attachment(
        &self,
        person: &str,
        id: &str,
        attachment_id: &str,
    ) -> Result<(FileId, String), ApplicationError> {
        let (person, id, attachment_id) = (person.to_owned(), id.to_owned(), attachment_id.to_owned());
        self.inner
            .db
            .read(move |conn| {
                visible(conn, &id, &person)?;
                let (file, holder): (String, String) = application_attachments::table
                    .find(&attachment_id)
                    .filter(application_attachments::application_id.eq(&id))
                    .select((
                        application_attachments::file_id,
                        application_attachments::uploaded_by,
                    ))
                    .first(conn)
                    .optional()?
                    .ok_or(ApplicationError::NotFound)?;
                Ok((FileId::from_string(file), holder))
            })
            .await
    }

    /// Removes an attachment from a draft.
    pub async fn detach(&self, person: &str, id: &str, attachment_id: &str) -> Result<(), ApplicationError> {
        let (person, id, attachment_id) = (person.to_owned(), id.to_owned(), attachment_id.to_owned());
        let now = self.now();
        self.inner
            .db
            .write(move |conn| {
                let row = draft_of(conn, &id, &person)?;
                let file: String = application_attachments::table
                    .find(&attachment_id)
                    .filter(application_attachments::application_id.eq(&id))
                    .select(application_attachments::file_id)
                    .first(conn)
                    .optional()?
                    .ok_or(ApplicationError::NotFound)?;
                diesel::delete(application_attachments::table.find(&attachment_id)).execute(conn)?;
                amtsweg_files::remove(conn, &FileId::from_string(file), now)?;
                bump(conn, &row, now)?;
                audit(conn, &person, "application.attachment_removed", &id, now)?;
                Ok(())
            })
            .await
    }

    /// The trust level submitting this application needs (the procedure's); also proves the caller may see it.
    /// What the session must bring to submit the application: the procedure's trust level, and whether it is
    /// in written form (then only an eID login will do).
    pub async fn submit_requirements(
        &self,
        person: &str,
        id: &str,
    ) -> Result<(amtsweg_kernel::TrustLevel, bool), ApplicationError> {
        let (person, id) = (person.to_owned(), id.to_owned());
        let row = self
            .inner
            .db
            .read(move |conn| visible(conn, &id, &person))
            .await?;
        let procedure = self.procedure(&row.procedure_id)?;
        Ok((procedure.procedure.trust_level, procedure.procedure.written_form))
    }

    /// Submits a draft: full validation, required documents (the procedure's trust level is checked by the route
    /// against `submit_requirements`; a changed procedure is refused below), then in one transaction the final
    /// case number, the workflow's first state (and any automatic steps after it), the fee, the eID assertion of a
    /// written-form submission, the audit entry and the event.
    pub async fn submit(
        &self,
        person: &str,
        session: &str,
        id: &str,
        lang: Lang,
        also: InTransaction<ApplicationView>,
    ) -> Result<ApplicationView, ApplicationError> {
        let (person, session, id) = (person.to_owned(), session.to_owned(), id.to_owned());
        let now = self.now();
        let service = self.clone();
        let submitted = self
            .inner
            .db
            .write(move |conn| {
                let row = draft_of(conn, &id, &person)?;
                let procedure = service.procedure(&row.procedure_id)?;
                if procedure.content_hash != row.procedure_hash {
                    return Err(ApplicationError::Conflict(
                        "procedure_changed",
                        Text::fixed(
                            "Die Leistung wurde seit dem Anlegen des Entwurfs geändert. Bitte legen Sie einen neuen Antrag an.",
                            "The procedure has changed since the draft was created. Please start a new application.",
                        ),
                    ));
                }
                let p = &procedure.procedure;
                let data: Value = serde_json::from_str(&row.data).unwrap_or_else(|_| json!({}));
                let mut errors = procedure.violations(&data);
                let attached: Vec<String> = application_attachments::table
                    .filter(application_attachments::application_id.eq(&id))
                    .select(application_attachments::document_type)
                    .load(conn)?;
                for document in p.documents.iter().filter(|d| d.required) {
                    if !attached.contains(&document.kind) {
                        errors.push(FieldError::at_pointer(
                            format!("/attachments/{}", document.kind),
                            "document_missing",
                            Text::new(
                                format!("Bitte fügen Sie „{}“ bei.", document.name.de),
                                format!("Please attach “{}”.", document.name.en),
                            ),
                        ));
                    }
                }
                if !errors.is_empty() {
                    return Err(ApplicationError::Validation(errors));
                }
                let fee = procedure.assess_fee(&data).map_err(|err| {
                    ApplicationError::field(
                        "/data",
                        "fee_not_computable",
                        Text::new(
                            format!("Die Gebühr lässt sich nicht berechnen: {err}"),
                            format!("The fee cannot be computed: {err}"),
                        ),
                    )
                })?;
                let workflow = service
                    .workflow(&p.workflow)
                    .ok_or_else(|| ApplicationError::Internal(format!("workflow {} is not loaded", p.workflow)))?;
                let workflow_hash = service
                    .inner
                    .workflows
                    .get(&p.workflow)
                    .map(|w| w.sha256.clone())
                    .unwrap_or_default();
                let applicant = match &row.on_behalf_of {
                    Some(organisation) => directory::contact(conn, organisation)?,
                    None => directory::contact(conn, &person)?,
                }
                .map(|contact| contact.name)
                .unwrap_or_default();

                let year = chrono::Datelike::year(&amtsweg_workflow::deadline::berlin_date(now.utc().naive_utc()));
                let seq = case_number::next(conn)?;
                let number = case_number::render(service.inner.settings.format_for(&p.unit.id), &p.unit.id, year, seq);

                let updated = diesel::update(
                    applications::table
                        .find(&id)
                        .filter(applications::version.eq(row.version))
                        .filter(applications::status.eq("draft")),
                )
                .set((
                    applications::status.eq("submitted"),
                    applications::case_number.eq(&number),
                    applications::workflow_id.eq(&workflow.id),
                    applications::workflow_hash.eq(&workflow_hash),
                    applications::state.eq(&workflow.initial),
                    applications::version.eq(row.version + 1),
                    applications::applicant_name.eq(&applicant),
                    applications::fee_cents.eq(fee.total.get()),
                    applications::fee_lines.eq(crate::fees::lines_json(&fee.lines)),
                    applications::submitted_at.eq(now),
                    applications::service_norm_due.eq(
                        amtsweg_workflow::deadline::berlin_date(now.utc().naive_utc())
                            .checked_add_days(chrono::Days::new(p.processing.target_days.into()))
                            .map(|day| day.to_string()),
                    ),
                    applications::updated_at.eq(now),
                ))
                .execute(conn)?;
                if updated == 0 {
                    return Err(ApplicationError::Conflict(
                        "application_changed",
                        Text::fixed(
                            "Der Antrag wurde gerade geändert. Bitte laden Sie ihn neu und reichen Sie ihn erneut ein.",
                            "The application was changed just now. Please reload it and submit again.",
                        ),
                    ));
                }
                crate::search::index_name(conn, &id, &applicant)?;
                let eid_login_at = if p.written_form {
                    let assertion =
                        directory::eid_assertion(conn, &person, &session)?.ok_or(ApplicationError::EidRequired)?;
                    crate::written_form::record(conn, &id, &assertion, now)?;
                    Some(assertion.authenticated_at)
                } else {
                    None
                };
                let submit_step = Step {
                    action: "submit",
                    from: None,
                    to: &workflow.initial,
                    actor: StepActor::Citizen(&person),
                    comment: None,
                    public: false,
                };
                case::record(conn, &id, &submit_step, now)?;
                case::enter(conn, &id, &workflow, None, &workflow.initial, now)?;
                let effects = workflow.state(&workflow.initial).map(|s| s.on_enter.clone()).unwrap_or_default();
                let context = EffectContext {
                    application_id: &id,
                    person: &row.account_id,
                    case_number: &number,
                    procedure: &procedure,
                    calendar: &service.inner.settings.calendar,
                    payments: &service.inner.payments,
                    mailroom: &service.inner.mailroom,
                    now,
                };
                run_effects(conn, &context, &workflow, &effects)?;
                crate::fiction::start(conn, &context)?;
                let facts = Facts {
                    by: Caller::System,
                    documents_complete: true,
                    // Nothing is paid yet at submission: only a procedure without a fee to pay first goes on.
                    payment_settled: p.payment != PaymentPolicy::BeforeProcessing
                        || fee.total.is_zero(),
                    ..Facts::default()
                };
                let state = case::run_automatic(conn, &context, &workflow, &facts, &workflow.initial)?;
                events::submitted(conn, &id, &row.procedure_id, &row.unit_id, &number, &state, now)?;
                let row = load(conn, &id)?;
                let view = service.view(conn, &row, lang, true)?;
                crate::receipt::take_snapshot(conn, &row, &view.attachments, eid_login_at, lang, now)?;
                also(conn, &view)?;
                // Last: the audit append locks the log's head row until the commit.
                audit(conn, &person, "application.submitted", &id, now)?;
                Ok(view)
            })
            .await;
        if submitted.is_ok() {
            amtsweg_jobs::wake();
        }
        submitted
    }

    /// Withdraws a submitted application while its workflow lets the citizen: the citizen's transition from the
    /// current state into a final state.
    pub async fn withdraw(
        &self,
        person: &str,
        id: &str,
        lang: Lang,
    ) -> Result<ApplicationView, ApplicationError> {
        let (person, id) = (person.to_owned(), id.to_owned());
        let now = self.now();
        let service = self.clone();
        self.inner
            .db
            .write(move |conn| {
                let row = visible(conn, &id, &person)?;
                let not_now = || {
                    ApplicationError::Conflict(
                        "withdrawal_not_possible",
                        Text::fixed(
                            "Der Antrag kann in diesem Stand nicht zurückgezogen werden.",
                            "The application cannot be withdrawn at this stage.",
                        ),
                    )
                };
                if row.status != "submitted" {
                    return Err(not_now());
                }
                let (workflow, procedure) = service.case_parts(conn, &row)?;
                let state = row.state.clone().unwrap_or_default();
                let facts = Facts {
                    by: Caller::Citizen,
                    documents_complete: crate::staff::documents_complete(conn, &id, &procedure)?,
                    payment_settled: payment_settled(&procedure, &row),
                    ..Facts::default()
                };
                let action = workflow
                    .available(&state, &facts)
                    .find(|t| {
                        t.by == amtsweg_workflow::By::Citizen
                            && workflow.state(&t.to).is_some_and(|s| s.terminal)
                    })
                    .map(|t| t.action.clone())
                    .ok_or_else(not_now)?;
                let step = workflow
                    .fire(&state, &action, &facts, None)
                    .map_err(|_| not_now())?;
                diesel::update(
                    applications::table
                        .find(&id)
                        .filter(applications::version.eq(row.version)),
                )
                .set((
                    applications::version.eq(row.version + 1),
                    applications::updated_at.eq(now),
                ))
                .execute(conn)?;
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
                audit(conn, &person, "application.withdrawn", &id, now)?;
                let row = load(conn, &id)?;
                service.view(conn, &row, lang, true)
            })
            .await
    }

    /// Renders a row for the citizen.
    pub(crate) fn view(
        &self,
        conn: &mut DbConnection,
        row: &ApplicationRow,
        lang: Lang,
        with_timeline: bool,
    ) -> Result<ApplicationView, ApplicationError> {
        let attachments: Vec<AttachmentRow> = application_attachments::table
            .filter(application_attachments::application_id.eq(&row.id))
            .select(AttachmentRow::as_select())
            .order(application_attachments::id)
            .load(conn)?;
        let business_status = match (&row.state, &row.workflow_id) {
            (Some(state), Some(_)) => {
                let workflow = self.workflow_of(conn, row)?;
                let label = |state: &str| {
                    workflow
                        .as_ref()
                        .and_then(|w| w.state(state))
                        .map_or_else(|| state.to_owned(), |s| pick(&s.label, lang))
                };
                let current = workflow.as_ref().and_then(|w| w.state(state));
                let timeline = if with_timeline {
                    let steps: Vec<StepRow> = application_steps::table
                        .filter(application_steps::application_id.eq(&row.id))
                        .select(StepRow::as_select())
                        .order(application_steps::seq)
                        .load(conn)?;
                    steps
                        .iter()
                        .map(|step| TimelineStep {
                            at: step.at,
                            state: step.to_state.clone(),
                            label: crate::fiction::step_label(&step.action, lang)
                                .or_else(|| crate::delivery::step_label(&step.action, lang))
                                .unwrap_or_else(|| label(&step.to_state)),
                            comment: step.comment.clone().filter(|_| step.public),
                        })
                        .collect()
                } else {
                    Vec::new()
                };
                let due_on: Option<String> = application_timers::table
                    .filter(application_timers::application_id.eq(&row.id))
                    .filter(application_timers::timer_id.eq_any(deadline_timers(workflow.as_deref())))
                    .select(application_timers::due_on)
                    .order(application_timers::due_on)
                    .first(conn)
                    .optional()?;
                Some(BusinessStatus {
                    state: state.clone(),
                    label: label(state),
                    next_step: current
                        .and_then(|s| s.next_step.as_ref())
                        .map(|text| pick(text, lang)),
                    terminal: current.is_some_and(|s| s.terminal),
                    waiting_for: current.and_then(|s| s.waits_for).map(|w| match w {
                        amtsweg_workflow::Waits::Citizen => "citizen",
                        amtsweg_workflow::Waits::Payment => "payment",
                        amtsweg_workflow::Waits::Delivery => "delivery",
                    }),
                    processing_deadline: due_on,
                    service_norm_due: row.service_norm_due.clone(),
                    service_norm_paused: row.waiting_since.is_some(),
                    approval_fiction: if has_fiction(self.catalogue(), &row.procedure_id) {
                        crate::fiction::of(conn, &row.id, false)?
                    } else {
                        None
                    },
                    timeline,
                })
            }
            _ => None,
        };
        Ok(ApplicationView {
            id: row.id.clone(),
            procedure_id: row.procedure_id.clone(),
            procedure_version: u32::try_from(row.procedure_version).unwrap_or_default(),
            on_behalf_of: row.on_behalf_of.clone(),
            status: row.status.clone(),
            case_number: row.case_number.clone(),
            data: serde_json::from_str(&row.data).unwrap_or_else(|_| json!({})),
            attachments: attachments.iter().map(AttachmentView::of).collect(),
            business_status,
            fee_cents: row.fee_cents,
            version: row.version,
            submitted_at: row.submitted_at,
            created_at: row.created_at,
            updated_at: row.updated_at,
            prefilled: serde_json::from_str(&row.prefilled).unwrap_or_default(),
            warnings: Vec::new(),
        })
    }
}

/// Whether the payment the procedure's policy requires before processing is settled: nothing to pay, or the
/// payment module reported the payment paid (recorded on the case by `payments::settled`).
pub(crate) fn payment_settled(procedure: &LoadedProcedure, row: &ApplicationRow) -> bool {
    procedure.procedure.payment != PaymentPolicy::BeforeProcessing
        || row.fee_cents.unwrap_or(0) == 0
        || row.payment_settled_at.is_some()
}

/// The timers whose end the citizen sees as the processing deadline.
fn deadline_timers(workflow: Option<&Definition>) -> Vec<String> {
    workflow
        .map(|w| {
            w.timers
                .iter()
                .filter(|t| t.kind == amtsweg_workflow::TimerKind::Deadline)
                .map(|t| t.id.clone())
                .collect()
        })
        .unwrap_or_default()
}

fn timer_kind(kind: amtsweg_workflow::TimerKind) -> &'static str {
    match kind {
        amtsweg_workflow::TimerKind::Deadline => "deadline",
        amtsweg_workflow::TimerKind::ReplyWindow => "reply_window",
        amtsweg_workflow::TimerKind::Resubmission => "resubmission",
        amtsweg_workflow::TimerKind::ApprovalFiction => "approval_fiction",
    }
}

pub(crate) fn pick(label: &amtsweg_workflow::Label, lang: Lang) -> String {
    match lang {
        Lang::De => label.de.clone(),
        Lang::En => label.en.clone(),
    }
}

pub(crate) struct EffectContext<'a> {
    pub application_id: &'a str,
    pub person: &'a str,
    pub case_number: &'a str,
    pub procedure: &'a LoadedProcedure,
    pub calendar: &'a Calendar,
    pub payments: &'a amtsweg_payment::PaymentService,
    pub mailroom: &'a amtsweg_mailroom::Mailroom,
    pub now: Timestamp,
}

impl<'a> EffectContext<'a> {
    /// The context of a submitted case: effects concern its applicant and carry its case number.
    pub(crate) fn of(
        row: &'a ApplicationRow,
        procedure: &'a LoadedProcedure,
        service: &'a ApplicationService,
        now: Timestamp,
    ) -> EffectContext<'a> {
        EffectContext {
            application_id: &row.id,
            person: &row.account_id,
            case_number: row.case_number.as_deref().unwrap_or_default(),
            procedure,
            calendar: service.calendar(),
            payments: &service.inner.payments,
            mailroom: &service.inner.mailroom,
            now,
        }
    }
}

impl ApplicationService {
    /// Takes the system step `action` out of the case's current state (in the caller's transaction), with the
    /// timers that ran out; answers false when it no longer leaves that state. Audited as `audit_action`.
    pub(crate) fn take_system_step(
        &self,
        conn: &mut DbConnection,
        row: &ApplicationRow,
        action: &str,
        expired_timers: &[String],
        audit_action: &str,
        now: Timestamp,
    ) -> Result<bool, ApplicationError> {
        let (workflow, procedure) = self.case_parts(conn, row)?;
        let state = row.state.clone().unwrap_or_default();
        let facts = Facts {
            by: Caller::System,
            documents_complete: crate::staff::documents_complete(conn, &row.id, &procedure)?,
            payment_settled: payment_settled(&procedure, row),
            expired_timers,
            ..Facts::default()
        };
        let Ok(step) = workflow.fire(&state, action, &facts, None) else {
            return Ok(false);
        };
        diesel::update(applications::table.find(&row.id))
            .set((
                applications::version.eq(row.version + 1),
                applications::updated_at.eq(now),
            ))
            .execute(conn)?;
        let context = EffectContext::of(row, &procedure, self, now);
        case::advance(
            conn,
            &context,
            &workflow,
            &state,
            step,
            (StepActor::System, None),
            &facts,
        )?;
        amtsweg_audit::append(
            conn,
            &Event {
                actor: &Actor::system(),
                action: audit_action,
                object: Some(("application", &row.id)),
                outcome: Outcome::Success,
                at: now,
            },
        )?;
        Ok(true)
    }
}

/// Whether the procedure has a fiction of approval, so that its cases have a record of it to read.
pub(crate) fn has_fiction(catalogue: &amtsweg_catalogue::Catalogue, procedure_id: &str) -> bool {
    catalogue
        .get(procedure_id)
        .is_some_and(|p| p.procedure.approval_fiction.is_some())
}

/// Queues the notice mail `template` to the applicant (through the mail crate's queue, the one notification path).
pub(crate) fn notify(
    conn: &mut DbConnection,
    context: &EffectContext<'_>,
    template: &str,
) -> Result<(), ApplicationError> {
    if let Some(contact) = directory::contact(conn, context.person)?
        && let Some(email) = contact.email
    {
        let (subject, body) = templates::notice(
            template,
            contact.lang,
            context.case_number,
            &context.procedure.procedure.title,
        );
        amtsweg_mail::enqueue(
            conn,
            &amtsweg_mail::Message {
                to: email,
                subject,
                body,
                kind: "applications.notice",
                account_id: Some(context.person.to_owned()),
                reference: Some(format!("application:{}", context.application_id)),
                publish_outcome: false,
            },
            context.now,
        )?;
    }
    Ok(())
}

/// Runs the effects of a step inside its transaction: mails are queued, timers set or cleared, events recorded,
/// payments requested (ePayment module) and decisions provided (Virtuelle Poststelle).
pub(crate) fn run_effects(
    conn: &mut DbConnection,
    context: &EffectContext<'_>,
    workflow: &Definition,
    effects: &[Effect],
) -> Result<(), ApplicationError> {
    for effect in effects {
        match effect {
            Effect::Notify(template) => notify(conn, context, template)?,
            Effect::StartTimer(timer_id) => {
                let Some(timer) = workflow.timer(timer_id) else {
                    continue;
                };
                let today = amtsweg_workflow::deadline::berlin_date(context.now.utc().naive_utc());
                let fixed_end = timer.kind == amtsweg_workflow::TimerKind::ReplyWindow;
                let due = context
                    .calendar
                    .deadline(today, timer.period, fixed_end)
                    .ok_or_else(|| ApplicationError::Internal("deadline beyond the calendar".into()))?;
                let alert = timer.alert_before.and_then(|before| before.before(due));
                diesel::delete(
                    application_timers::table
                        .filter(application_timers::application_id.eq(context.application_id))
                        .filter(application_timers::timer_id.eq(timer_id)),
                )
                .execute(conn)?;
                diesel::insert_into(application_timers::table)
                    .values((
                        application_timers::application_id.eq(context.application_id),
                        application_timers::timer_id.eq(timer_id),
                        application_timers::started_at.eq(context.now),
                        application_timers::due_on.eq(due.to_string()),
                        application_timers::alert_on.eq(alert.map(|d| d.to_string())),
                        application_timers::kind.eq(timer_kind(timer.kind)),
                    ))
                    .execute(conn)?;
            }
            Effect::StopTimer(timer_id) => {
                diesel::delete(
                    application_timers::table
                        .filter(application_timers::application_id.eq(context.application_id))
                        .filter(application_timers::timer_id.eq(timer_id)),
                )
                .execute(conn)?;
            }
            Effect::Publish(name) => {
                events::milestone(conn, name, context)?;
            }
            Effect::RequestPayment => crate::payments::request(conn, context, "zahlung_ausstehend")?,
            Effect::DeliverDecision => {
                crate::delivery::provide(conn, context)?;
                // The fee set with the decision is invoiced when the decision goes out.
                if context.procedure.procedure.payment == PaymentPolicy::AfterDecision {
                    crate::payments::request(conn, context, "rechnung")?;
                }
            }
        }
    }
    Ok(())
}

/// Checks an upload against the procedure's rule for `document_type`: a known type, an accepted media type (as
/// sniffed from the content) and the size limit.
pub(crate) fn check_document(
    procedure: &LoadedProcedure,
    document_type: &str,
    file: &amtsweg_files::FileView,
) -> Result<(), ApplicationError> {
    let documents = &procedure.procedure.documents;
    let Some(rule) = documents.iter().find(|d| d.kind == document_type) else {
        let known: Vec<&str> = documents.iter().map(|d| d.kind.as_str()).collect();
        return Err(ApplicationError::field(
            "/document_type",
            "unknown_document_type",
            Text::new(
                format!(
                    "Für diese Leistung gibt es diese Unterlagen: {}.",
                    known.join(", ")
                ),
                format!("This procedure takes these documents: {}.", known.join(", ")),
            ),
        ));
    };
    if !rule.media_types.contains(&file.media_type) {
        return Err(ApplicationError::field(
            "/file",
            "media_type_not_allowed",
            Text::new(
                format!("Angenommen werden: {}.", rule.media_types.join(", ")),
                format!("Accepted are: {}.", rule.media_types.join(", ")),
            ),
        ));
    }
    if u64::try_from(file.size).unwrap_or(u64::MAX) > rule.max_size_bytes {
        return Err(ApplicationError::field(
            "/file",
            "file_too_large",
            Text::new(
                format!("Höchstens {} MB.", rule.max_size_bytes / 1_000_000),
                format!("At most {} MB.", rule.max_size_bytes / 1_000_000),
            ),
        ));
    }
    Ok(())
}

/// Records a file taken up by the module as an attachment of application `id` (answering `request`, if any).
pub(crate) fn insert_attachment(
    conn: &mut DbConnection,
    id: &str,
    document_type: &str,
    file: amtsweg_files::FileView,
    person: &str,
    request: Option<&str>,
    now: Timestamp,
) -> Result<AttachmentRow, DbError> {
    let attachment = AttachmentRow {
        id: amtsweg_kernel::id::new_id(),
        document_type: document_type.to_owned(),
        file_id: file.id.as_str().to_owned(),
        uploaded_by: person.to_owned(),
        name: file.name,
        media_type: file.media_type,
        size: file.size,
        sha256: file.sha256,
        created_at: now,
    };
    diesel::insert_into(application_attachments::table)
        .values((
            application_attachments::id.eq(&attachment.id),
            application_attachments::application_id.eq(id),
            application_attachments::document_type.eq(&attachment.document_type),
            application_attachments::file_id.eq(&attachment.file_id),
            application_attachments::uploaded_by.eq(&attachment.uploaded_by),
            application_attachments::name.eq(&attachment.name),
            application_attachments::media_type.eq(&attachment.media_type),
            application_attachments::size.eq(attachment.size),
            application_attachments::sha256.eq(&attachment.sha256),
            application_attachments::created_at.eq(now),
            application_attachments::request_id.eq(request),
        ))
        .execute(conn)?;
    Ok(attachment)
}

/// An application the caller may see: their own, or one made for an organisation they act for. Anything else is
/// not found — the same answer as for an id that does not exist.
pub(crate) fn visible(
    conn: &mut DbConnection,
    id: &str,
    person: &str,
) -> Result<ApplicationRow, ApplicationError> {
    let row = applications::table
        .find(id)
        .select(ApplicationRow::as_select())
        .first(conn)
        .optional()?
        .ok_or(ApplicationError::NotFound)?;
    let allowed = row.account_id == person
        || match &row.on_behalf_of {
            Some(organisation) => directory::is_member(conn, organisation, person)?,
            None => false,
        };
    if allowed {
        Ok(row)
    } else {
        Err(ApplicationError::NotFound)
    }
}

/// A draft the caller may change; a submitted application answers 409 `application_not_draft`.
fn draft_of(conn: &mut DbConnection, id: &str, person: &str) -> Result<ApplicationRow, ApplicationError> {
    let row = visible(conn, id, person)?;
    if row.status != "draft" {
        return Err(ApplicationError::not_draft());
    }
    Ok(row)
}

fn load(conn: &mut DbConnection, id: &str) -> Result<ApplicationRow, DbError> {
    Ok(applications::table
        .find(id)
        .select(ApplicationRow::as_select())
        .first(conn)?)
}

/// Marks a change of the application (its version and time) for optimistic concurrency and caches.
fn bump(conn: &mut DbConnection, row: &ApplicationRow, now: Timestamp) -> Result<(), DbError> {
    diesel::update(applications::table.find(&row.id))
        .set((
            applications::version.eq(applications::version + 1),
            applications::updated_at.eq(now),
        ))
        .execute(conn)?;
    Ok(())
}

fn audit(
    conn: &mut DbConnection,
    person: &str,
    action: &str,
    id: &str,
    now: Timestamp,
) -> Result<(), DbError> {
    amtsweg_audit::append(
        conn,
        &Event {
            actor: &Actor::new(ActorKind::Citizen, person, None),
            action,
            object: Some(("application", id)),
            outcome: Outcome::Success,
            at: now,
        },
    )
}

/// RFC 7396: members set to `null` are removed, objects merge recursively, everything else replaces.
pub(crate) fn merge_patch(target: &mut Value, patch: &Value) {
    let Value::Object(patch) = patch else {
        *target = patch.clone();
        return;
    };
    if !target.is_object() {
        *target = json!({});
    }
    if let Value::Object(members) = target {
        for (name, value) in patch {
            if value.is_null() {
                members.remove(name);
            } else {
                merge_patch(members.entry(name.clone()).or_insert(Value::Null), value);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::merge_patch;

    #[test]
    fn merge_patch_follows_rfc_7396() {
        let mut target = json!({"a": "b", "c": {"d": "e", "f": "g"}});
        merge_patch(&mut target, &json!({"a": "z", "c": {"f": null}}));
        assert_eq!(target, json!({"a": "z", "c": {"d": "e"}}));
        let mut target = json!({"a": [1, 2]});
        merge_patch(&mut target, &json!({"a": [3], "n": {"x": 1}}));
        assert_eq!(target, json!({"a": [3], "n": {"x": 1}}));
    }
}
