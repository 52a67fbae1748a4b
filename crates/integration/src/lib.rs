//! Integrationsplattform: how specialised procedures (Fachverfahren) receive applications from Amtsweg and report
//! back — FIT-Connect's pull pattern with the Dutch ZGW lessons applied.
//!
//! - [`pull`]: the inbox of submitted applications of procedures processed by clients (`processing.by: client` or
//!   `both`), in feed order, until each client acknowledges them (accept, or reject with RFC 9457 problems).
//!   Reading a full application, its attachments, workflow actions declared for clients and their decisions go
//!   through the applications module's public API ([`amtsweg_applications::clients`]).
//! - [`feed`]: the event feed over the outbox, limited to the procedures the client's scopes cover; every event is
//!   signed (detached JWS over its RFC 8785 form) with the seal keys.
//! - [`webhooks`]: subscriptions, deliveries as jobs with Standard Webhooks' retry schedule, SSRF-safe targets,
//!   a delivery log, replay.
//! - [`statistics`]: open data per procedure and month, without personal data.
//!
//! Every route checks the client's `applications:read:{procedure}` / `applications:write:{procedure}` scopes on
//! every object: an application of another procedure is "not found", whichever route asks.

pub mod events;
pub mod feed;
pub mod http;
pub mod nats;
pub mod pull;
mod schema;
pub mod scopes;
pub mod statistics;
pub mod webhooks;

use std::sync::Arc;
use std::time::Duration;

use actix_web::web::{Data, ServiceConfig};
use amtsweg_applications::ApplicationService;
use amtsweg_auth::{Access, KeyEncryptionKey, ScopeDefinition};
use amtsweg_catalogue::CatalogueService;
use amtsweg_db::{Database, DbConnection, DbError};
use amtsweg_events::Subscriptions;
use amtsweg_files::FileStore;
use amtsweg_jobs::{JobError, Registry, handler_fn};
use amtsweg_kernel::{SharedClock, Timestamp};
use amtsweg_seal::Sealer;
use serde::Deserialize;

use webhooks::targets::{AllowList, GuardedResolver, TargetPolicy};

/// The scopes this module declares (granted per client by the system administrator).
pub fn access() -> Access {
    Access::new()
        .scope(ScopeDefinition {
            name: "procedures:read",
            per_procedure: false,
            description: "Read the catalogue",
        })
        .scope(ScopeDefinition {
            name: scopes::READ,
            per_procedure: true,
            description: "Receive the applications of a procedure and its events (pending list, full application, attachments, event feed, webhooks)",
        })
        .scope(ScopeDefinition {
            name: scopes::WRITE,
            per_procedure: true,
            description: "Report back on applications of a procedure: acknowledge, status, decision",
        })
}

/// `integration.*` settings.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct IntegrationSettings {
    pub webhooks: WebhookSettings,
    pub nats: nats::NatsSettings,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct WebhookSettings {
    /// Targets exempt from the refusal of loopback, private and special addresses (and allowed over plain http):
    /// host names, addresses or networks (`intranet.example`, `10.20.0.0/16`). Empty by default.
    pub allow: Vec<String>,
    /// Time to connect to a receiver.
    pub connect_timeout_secs: u64,
    /// Time for the whole request and response.
    pub timeout_secs: u64,
}

impl Default for WebhookSettings {
    fn default() -> Self {
        Self {
            allow: Vec::new(),
            connect_timeout_secs: 5,
            timeout_secs: 15,
        }
    }
}

impl IntegrationSettings {
    /// What is wrong with the settings, one line each.
    pub fn problems(&self) -> Vec<String> {
        match AllowList::parse(&self.webhooks.allow) {
            Ok(_) => Vec::new(),
            Err(problem) => vec![format!("integration.webhooks.allow: {problem}")],
        }
    }
}

/// What the integration platform is built from.
pub struct IntegrationDeps {
    pub db: Database,
    pub clock: SharedClock,
    pub applications: ApplicationService,
    pub catalogue: CatalogueService,
    pub files: FileStore,
    pub sealer: Arc<dyn Sealer>,
    pub kek: Arc<KeyEncryptionKey>,
    pub settings: IntegrationSettings,
}

/// Subscriptions as deliveries read them, kept for a second: a deleted subscription or a revoked scope stops
/// deliveries within that second.
type SubscriptionCache = std::sync::Mutex<
    std::collections::HashMap<
        String,
        (
            std::time::Instant,
            Option<webhooks::SubscriptionRow>,
            Option<amtsweg_events::Procedures>,
        ),
    >,
>;

struct Inner {
    nats: Option<Arc<nats::Publisher>>,
    subscriptions: SubscriptionCache,
    outcomes: webhooks::GroupWriter,
    deps: IntegrationDeps,
    targets: Arc<TargetPolicy>,
    http: reqwest::Client,
    statistics: statistics::Cache,
}

/// The integration platform's service.
#[derive(Clone)]
pub struct Integration {
    inner: Arc<Inner>,
}

impl Integration {
    pub fn new(deps: IntegrationDeps) -> Result<Integration, String> {
        let allow = AllowList::parse(&deps.settings.webhooks.allow)?;
        let targets = Arc::new(TargetPolicy { allow });
        let http = reqwest::Client::builder()
            .dns_resolver(Arc::new(GuardedResolver {
                policy: targets.clone(),
            }))
            .no_proxy()
            .redirect(reqwest::redirect::Policy::none())
            .connect_timeout(Duration::from_secs(
                deps.settings.webhooks.connect_timeout_secs.max(1),
            ))
            .timeout(Duration::from_secs(deps.settings.webhooks.timeout_secs.max(1)))
            .pool_max_idle_per_host(32)
            .user_agent(concat!("Amtsweg-Webhooks/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|err| err.to_string())?;
        let nats = nats::Publisher::new(
            deps.db.clone(),
            deps.clock.clone(),
            deps.sealer.clone(),
            deps.settings.nats.clone(),
        )
        .map(Arc::new);
        Ok(Integration {
            inner: Arc::new(Inner {
                nats,
                subscriptions: SubscriptionCache::default(),
                outcomes: webhooks::GroupWriter::new(deps.db.clone()),
                deps,
                targets,
                http,
                statistics: statistics::Cache::default(),
            }),
        })
    }

    pub fn db(&self) -> &Database {
        &self.inner.deps.db
    }

    pub fn clock(&self) -> &SharedClock {
        &self.inner.deps.clock
    }

    pub fn applications(&self) -> &ApplicationService {
        &self.inner.deps.applications
    }

    pub fn files(&self) -> &FileStore {
        &self.inner.deps.files
    }

    pub fn sealer(&self) -> &Arc<dyn Sealer> {
        &self.inner.deps.sealer
    }

    pub(crate) fn kek(&self) -> &KeyEncryptionKey {
        &self.inner.deps.kek
    }

    pub(crate) fn targets(&self) -> &TargetPolicy {
        &self.inner.targets
    }

    /// A subscription and the procedures its client may read now, as of at most a second ago.
    pub(crate) async fn subscription(
        &self,
        id: &str,
    ) -> Result<
        (
            Option<webhooks::SubscriptionRow>,
            Option<amtsweg_events::Procedures>,
        ),
        DbError,
    > {
        const FRESH: Duration = Duration::from_secs(1);
        {
            let cache = self.inner.subscriptions.lock().unwrap_or_else(|p| p.into_inner());
            if let Some((at, row, readable)) = cache.get(id)
                && at.elapsed() < FRESH
            {
                return Ok((row.clone(), readable.clone()));
            }
        }
        let key = id.to_owned();
        let (row, readable) = self
            .db()
            .read(move |conn| webhooks::delivery::subscription_of(conn, &key))
            .await?;
        let mut cache = self.inner.subscriptions.lock().unwrap_or_else(|p| p.into_inner());
        cache.retain(|_, (at, _, _)| at.elapsed() < FRESH);
        cache.insert(
            id.to_owned(),
            (std::time::Instant::now(), row.clone(), readable.clone()),
        );
        Ok((row, readable))
    }

    /// Where delivery outcomes are written, many per transaction.
    pub(crate) fn outcomes(&self) -> &webhooks::GroupWriter {
        &self.inner.outcomes
    }

    pub(crate) fn http(&self) -> &reqwest::Client {
        &self.inner.http
    }

    pub(crate) fn statistics_cache(&self) -> &statistics::Cache {
        &self.inner.statistics
    }

    /// Fans out the events not yet fanned out to webhook subscriptions (also a tick of the job runner).
    pub async fn fan_out(&self) -> Result<usize, DbError> {
        webhooks::delivery::fan_out(self.db(), self.clock().now()).await
    }
}

/// Appends an audit entry by a client.
pub(crate) fn audit(
    conn: &mut DbConnection,
    client: &str,
    action: &str,
    object: (&str, &str),
    now: Timestamp,
) -> Result<(), DbError> {
    amtsweg_audit::append(
        conn,
        &amtsweg_audit::Event {
            actor: &amtsweg_audit::Actor::new(amtsweg_audit::ActorKind::Client, client.to_owned(), None),
            action,
            object: Some(object),
            outcome: amtsweg_audit::Outcome::Success,
            at: now,
        },
    )
}

impl amtsweg_module::Module for Integration {
    fn name(&self) -> &'static str {
        "integration"
    }

    fn app_data(&self, cfg: &mut ServiceConfig) {
        cfg.app_data(Data::new(self.clone()));
    }

    /// The inbox of handed-over applications, webhook deliveries and replays, the fan-out tick and (when
    /// configured) the NATS publisher.
    fn jobs(&self) -> Registry {
        let (db, catalogue) = (self.db().clone(), self.inner.deps.catalogue.clone());
        let registry = match &self.inner.nats {
            Some(publisher) => Registry::new().tick(Arc::new(nats::PublishTick(publisher.clone()))),
            None => Registry::new(),
        };
        registry
            .handler(handler_fn(pull::INBOX, 10, move |job| {
                let (db, catalogue) = (db.clone(), catalogue.clone());
                async move {
                    let event = job.payload;
                    db.write(move |conn| Ok::<_, DbError>(pull::file_submission(conn, &catalogue, &event)))
                        .await
                        .map_err(|err| JobError::Transient(err.to_string()))??;
                    Ok(None)
                }
            }))
            .handler(webhooks::delivery::Deliver {
                integration: self.clone(),
            })
            .handler(webhooks::delivery::Replay {
                db: self.db().clone(),
                clock: self.clock().clone(),
            })
            .tick(Arc::new(webhooks::delivery::FanOut {
                db: self.db().clone(),
                clock: self.clock().clone(),
            }))
    }

    fn subscriptions(&self) -> Subscriptions {
        Subscriptions::new().on(&amtsweg_applications::events::SUBMITTED, pull::INBOX)
    }
}

pub use http::configure;

/// An answer of a route's transaction: a problem, or a database failure (503 when it is unavailable).
#[derive(Debug)]
pub(crate) struct Failure(pub amtsweg_kernel::ApiError);

impl From<DbError> for Failure {
    fn from(err: DbError) -> Failure {
        Failure(pull::db(err))
    }
}

impl From<diesel::result::Error> for Failure {
    fn from(err: diesel::result::Error) -> Failure {
        Failure(pull::db(DbError::from(err)))
    }
}

impl From<amtsweg_kernel::ApiError> for Failure {
    fn from(err: amtsweg_kernel::ApiError) -> Failure {
        Failure(err)
    }
}

impl From<Failure> for amtsweg_kernel::ApiError {
    fn from(failure: Failure) -> amtsweg_kernel::ApiError {
        failure.0
    }
}
