//! Virtuelle Poststelle: the Postfach of every account and organisation, decisions delivered with the evidence
//! administrative law asks for, and paper as the fallback.
//!
//! - [`postfach`]: messages in both directions between a Postfach and a unit, in threads, with attachments, read
//!   state and a required trust level per message.
//! - [`delivery`]: [`Mailroom::provide`] — called by the deciding module in its own transaction — provides a
//!   sealed decision in the Postfach (with the citizen's consent to electronic delivery) or queues it for paper,
//!   and records the evidence once and for all: provided, notification sent (from the mail module's event),
//!   first retrieval, deemed notification by the procedure's rule ([`rules`]); a daily job applies the rules.
//! - [`print`]: letters for the central print line, in batches, and the day they were posted.
//! - [`evidence`]: the evidence of a delivery as staff print it.
//!
//! The mailroom knows cases only through the [`CaseDirectory`] the composition root injects, and tells the case's
//! module what happened through its [`events`].

pub mod cases;
pub mod delivery;
pub mod events;
pub mod evidence;
pub mod http;
pub mod inbound;
pub mod postfach;
pub mod print;
mod privacy;
pub mod rules;
mod schema;
mod templates;

use std::sync::Arc;

use actix_web::web::{Data, ServiceConfig};
use amtsweg_auth::{Access, RoleDefinition, RoleReach, ScopeDefinition};
use amtsweg_catalogue::CatalogueService;
use amtsweg_db::{Database, DbError};
use amtsweg_files::{FileError, FileStore};
use amtsweg_jobs::{JobError, Period, Registry, Schedule, handler_fn};
use amtsweg_kernel::{ApiError, SharedClock, Text};
use amtsweg_seal::Sealer;
use serde_json::json;

pub use cases::{CaseDirectory, CaseInfo};
pub use delivery::{Document, Provided, Provision};
pub use http::configure;
pub use privacy::MailroomPersonalData;

/// The central print line: print batches of letters and record when they were posted.
pub const PRINT_OFFICE: &str = "print_office";
/// The job that applies the delivery rules (daily).
pub const RULES: &str = "mailroom.delivery_rules";
/// The job that records what became of a notification mail.
pub const MAIL_OUTCOME: &str = "mailroom.mail_outcome";

/// The staff roles this module's routes check (besides a unit's `case_worker` and `supervisor`, who answer the
/// unit's messages).
pub fn access() -> Access {
    Access::new()
        .role(RoleDefinition {
            name: PRINT_OFFICE,
            reach: RoleReach::Global,
            description: "The central print line: batches of letters for the post, and the day they were posted",
        })
        .role(RoleDefinition {
            name: inbound::SCAN_OFFICE,
            reach: RoleReach::Global,
            description: "The central scan office: records inbound mail and assigns what could not be routed",
        })
        .scope(ScopeDefinition {
            name: inbound::INBOUND_SCOPE,
            per_procedure: false,
            description: "Send documents to the administration (another authority's system)",
        })
}

/// What the mailroom is built from.
pub struct MailroomDeps {
    pub db: Database,
    pub clock: SharedClock,
    pub files: FileStore,
    pub sealer: Arc<dyn Sealer>,
    pub cases: Arc<dyn CaseDirectory>,
    pub catalogue: CatalogueService,
    /// Where citizens log in, for the notification mails.
    pub portal_url: String,
}

/// The mailroom. Cheap to clone.
#[derive(Clone)]
pub struct Mailroom {
    inner: Arc<MailroomDeps>,
}

#[derive(Debug, thiserror::Error)]
pub enum MailroomError {
    #[error(transparent)]
    Db(#[from] DbError),
    #[error(transparent)]
    File(#[from] FileError),
    #[error("not found")]
    NotFound(&'static str, Text),
    #[error("validation failed")]
    Validation(Vec<amtsweg_kernel::FieldError>),
    #[error("forbidden")]
    Forbidden(Text),
    #[error("conflict")]
    Conflict(&'static str, Text),
    #[error("gone")]
    Gone(&'static str, Text),
    #[error("{0}")]
    Internal(String),
    /// An answer the caller must see as it is (a step-up challenge).
    #[error("{0:?}")]
    Api(Box<ApiError>),
}

impl From<diesel::result::Error> for MailroomError {
    fn from(err: diesel::result::Error) -> Self {
        MailroomError::Db(DbError::from(err))
    }
}

impl From<MailroomError> for ApiError {
    fn from(err: MailroomError) -> Self {
        use actix_web::http::StatusCode;
        match err {
            MailroomError::Db(DbError::Unavailable(cause)) => ApiError::unavailable(cause),
            MailroomError::Db(other) => ApiError::internal(other),
            MailroomError::File(err) => err.into(),
            MailroomError::NotFound(code, title) => ApiError::not_found(code, title),
            MailroomError::Validation(errors) => ApiError::validation(errors),
            MailroomError::Forbidden(detail) => ApiError::new(
                StatusCode::FORBIDDEN,
                "forbidden",
                Text::fixed("Zugriff verweigert.", "Access is denied."),
            )
            .with_detail(detail),
            MailroomError::Conflict(code, title) => ApiError::conflict(code, title),
            MailroomError::Gone(code, title) => ApiError::new(StatusCode::GONE, code, title),
            MailroomError::Internal(cause) => ApiError::internal(cause),
            MailroomError::Api(err) => *err,
        }
    }
}

impl From<ApiError> for MailroomError {
    fn from(err: ApiError) -> Self {
        MailroomError::Api(Box::new(err))
    }
}

/// Appends to the audit chain in the caller's transaction: `action` by `actor` on `object` (kind, id).
pub(crate) fn audit(
    conn: &mut amtsweg_db::DbConnection,
    actor: &amtsweg_audit::Actor,
    action: &str,
    object: (&str, &str),
    now: amtsweg_kernel::Timestamp,
) -> Result<(), DbError> {
    amtsweg_audit::append(
        conn,
        &amtsweg_audit::Event {
            actor,
            action,
            object: Some(object),
            outcome: amtsweg_audit::Outcome::Success,
            at: now,
        },
    )
}

impl Mailroom {
    pub fn new(deps: MailroomDeps) -> Mailroom {
        Mailroom {
            inner: Arc::new(deps),
        }
    }

    pub(crate) fn db(&self) -> &Database {
        &self.inner.db
    }

    pub(crate) fn now(&self) -> amtsweg_kernel::Timestamp {
        self.inner.clock.now()
    }

    pub(crate) fn files(&self) -> &FileStore {
        &self.inner.files
    }

    pub fn sealer(&self) -> &Arc<dyn Sealer> {
        &self.inner.sealer
    }

    pub(crate) fn cases(&self) -> &Arc<dyn CaseDirectory> {
        &self.inner.cases
    }

    pub(crate) fn catalogue(&self) -> &CatalogueService {
        &self.inner.catalogue
    }

    pub(crate) fn portal_url(&self) -> &str {
        &self.inner.portal_url
    }
}

impl amtsweg_module::Module for Mailroom {
    fn name(&self) -> &'static str {
        "mailroom"
    }

    fn app_data(&self, cfg: &mut ServiceConfig) {
        cfg.app_data(Data::new(self.clone()));
    }

    /// The daily delivery rules, and what became of the notification mails.
    fn jobs(&self) -> Registry {
        let (rules, outcome) = (self.clone(), self.clone());
        Registry::new()
            .handler(handler_fn(RULES, 5, move |_job| {
                let service = rules.clone();
                async move {
                    service
                        .apply_rules()
                        .await
                        .map(|done| Some(json!(done)))
                        .map_err(|err| JobError::Transient(err.to_string()))
                }
            }))
            .schedule(Schedule {
                name: "delivery-rules",
                period: Period::daily(),
                kind: RULES,
                payload: json!({}),
            })
            .handler(handler_fn(MAIL_OUTCOME, 8, move |job| {
                let service = outcome.clone();
                async move {
                    service
                        .mail_outcome(&job.payload)
                        .await
                        .map(|changed| Some(json!({"changed": changed})))
                        .map_err(|err| JobError::Transient(err.to_string()))
                }
            }))
    }

    /// The fate of notification mails: sent starts a period, a permanent failure sends the decision to paper.
    fn subscriptions(&self) -> amtsweg_events::Subscriptions {
        amtsweg_events::Subscriptions::new()
            .on(&amtsweg_mail::events::DELIVERED, MAIL_OUTCOME)
            .on(&amtsweg_mail::events::FAILED, MAIL_OUTCOME)
    }
}
