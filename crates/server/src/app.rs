//! The composition root: settings → database → services → HTTP server.

use std::net::TcpListener;
use std::sync::Arc;

use actix_web::dev::Server;
use actix_web::middleware::from_fn;
use actix_web::{App, HttpResponse, HttpServer, web};
use amtsweg_account::{AccountDeps, AccountPersonalData, AccountService};
use amtsweg_applications::{ApplicationDeps, ApplicationService, ApplicationsPersonalData};
use amtsweg_auth::{Authenticator, KeyRing};
use amtsweg_catalogue::CatalogueService;
use amtsweg_db::personal_data::{PersonalData, PersonalDataRegistry};
use amtsweg_db::{Database, PoolOptions};
use amtsweg_events::{EventsPersonalData, Sequencer, Subscriptions};
use amtsweg_files::{FileStore, FilesPersonalData};
use amtsweg_idempotency::{Idempotency, IdempotencyPersonalData};
use amtsweg_jobs::{Registry, Runner};
use amtsweg_kernel::http::{
    Admission, BodyIdleTimeout, JsonLimit, admission, body_idle_timeout, path_error_handler, request_context,
};
use amtsweg_kernel::{SharedClock, SystemClock};
use amtsweg_mail::{MailPersonalData, MailSender};
use amtsweg_module::Module;
use amtsweg_payment::{PaymentDeps, PaymentService};
use anyhow::Context;
use tokio::task::AbortHandle;
use utoipa_actix_web::service_config::ServiceConfig;
use utoipa_actix_web::{AppExt, scope};
use utoipa_swagger_ui::SwaggerUi;

use crate::metrics::{self, Metrics, MetricsAccess};
use crate::operations::{self, RouteTable};
use crate::settings::Settings;

/// Every documented route. The OpenAPI document is generated from exactly this.
pub fn routes(cfg: &mut ServiceConfig) {
    cfg.service(
        scope::scope("/api/v1")
            .configure(amtsweg_catalogue::configure)
            .configure(amtsweg_account::configure)
            .configure(amtsweg_admin::configure)
            .configure(amtsweg_files::http::configure)
            .configure(amtsweg_applications::configure)
            .configure(amtsweg_payment::configure)
            .configure(amtsweg_mailroom::configure)
            .configure(amtsweg_integration::configure)
            .configure(amtsweg_seal::configure),
    )
    .configure(amtsweg_account::http::configure_root)
    .configure(amtsweg_seal::configure_root)
    .service(operations::live)
    .service(operations::ready)
    .service(operations::metrics);
}

/// What the app needs besides settings; tests substitute the clock and may add job handlers.
pub struct Dependencies {
    pub clock: SharedClock,
    /// Handlers, schedules and ticks beyond the modules' own.
    pub jobs: Registry,
    /// Event subscriptions beyond the modules' own (their handlers go into `jobs`).
    pub subscriptions: Subscriptions,
}

impl Default for Dependencies {
    fn default() -> Self {
        Self {
            clock: Arc::new(SystemClock),
            jobs: Registry::new(),
            subscriptions: Subscriptions::new(),
        }
    }
}

/// Opens the database and applies pending migrations.
pub async fn open_database(settings: &Settings) -> anyhow::Result<Database> {
    let url = settings.database_url()?;
    let options = PoolOptions {
        max_size: settings.database.pool_size,
        checkout_timeout: std::time::Duration::from_millis(settings.database.checkout_timeout_ms),
        connect_timeout: std::time::Duration::from_secs(settings.database.connect_timeout_secs),
    };
    let described = url.redacted();
    tokio::task::spawn_blocking(move || -> anyhow::Result<Database> {
        let db = Database::connect(&url, options)
            .with_context(|| format!("cannot open the database {described}"))?;
        let mut conn = db.connection()?;
        let applied = amtsweg_db::run_migrations(&mut conn)?;
        for name in applied {
            tracing::info!(migration = %name, "applied migration");
        }
        Ok(db)
    })
    .await?
}

/// Every module that keeps personal data, so that export and erasure cover all of them. A test checks that each
/// table with an `account_id` column belongs to one of these sections.
pub fn personal_data() -> PersonalDataRegistry {
    let sections: Vec<Arc<dyn PersonalData>> = vec![
        Arc::new(AccountPersonalData),
        Arc::new(MailPersonalData),
        Arc::new(EventsPersonalData),
        Arc::new(IdempotencyPersonalData),
        Arc::new(FilesPersonalData),
        Arc::new(ApplicationsPersonalData),
        Arc::new(amtsweg_mailroom::MailroomPersonalData),
    ];
    PersonalDataRegistry::new(sections)
}

/// The services of one instance, wired together; shared by the HTTP server and the command line.
pub struct Services {
    pub db: Database,
    pub clock: SharedClock,
    pub auth: Arc<Authenticator>,
    /// Every module, asked alike for its handlers' state, jobs and subscriptions.
    pub modules: Vec<Arc<dyn Module>>,
    /// Kept by type for the command line and the metrics.
    pub catalogue: CatalogueService,
    /// The checked workflow definitions every procedure names.
    pub workflows: amtsweg_workflow::Workflows,
    pub accounts: AccountService,
    /// The runner of every module's background jobs (started by the HTTP server; the command line drains it).
    pub jobs: Arc<Runner>,
}

impl Services {
    pub async fn start(settings: &Settings, deps: Dependencies) -> anyhow::Result<Services> {
        std::fs::create_dir_all(&settings.storage.data_dir).with_context(|| {
            format!(
                "cannot create the data directory {}",
                settings.storage.data_dir.display()
            )
        })?;
        let clock = deps.clock;
        let db = open_database(settings).await?;
        let source = settings.catalogue.source();
        if source == amtsweg_catalogue::Source::Shipped {
            tracing::info!("no catalogue directory: using the catalogue shipped in the binary");
        }
        let catalogue = CatalogueService::start(&source, db.clone(), clock.clone()).await?;
        let workflow_dir = settings.workflows.dir();
        if workflow_dir.is_none() {
            tracing::info!("no workflows directory: using the workflows shipped in the binary");
        }
        let workflows = crate::workflows::load(workflow_dir.as_deref(), catalogue.catalogue())
            .map_err(|problems| anyhow::anyhow!("the workflows cannot be used:\n{}", problems.join("\n")))?;
        tracing::info!(workflows = workflows.len(), "workflows loaded");
        let kek = crate::keys::key_encryption_key(settings, &db).await?;
        let keys = Arc::new(KeyRing::start(db.clone(), kek, clock.now()).await?);
        let auth = Arc::new(Authenticator::new(
            keys,
            settings.account.issuer.clone(),
            clock.clone(),
        ));
        let mail = MailSender::new(
            db.clone(),
            clock.clone(),
            &settings.mail,
            &settings.storage.data_dir,
        )?;
        let files = FileStore::open(
            db.clone(),
            clock.clone(),
            settings.storage.files.clone(),
            &settings.storage.data_dir,
        )
        .map_err(anyhow::Error::msg)?;
        let accounts = AccountService::new(AccountDeps {
            db: db.clone(),
            auth: auth.clone(),
            clock: clock.clone(),
            settings: settings.account.clone(),
            privacy: personal_data(),
            catalogue: catalogue.clone(),
            files: files.clone(),
            access: crate::access::access(),
        })?;
        accounts.bootstrap_admin().await?;
        let problems = settings.applications.problems();
        if !problems.is_empty() {
            anyhow::bail!("{}", problems.join("\n"));
        }
        let payments = PaymentService::new(PaymentDeps {
            db: db.clone(),
            clock: clock.clone(),
            settings: settings.payment.clone(),
            public_url: settings
                .payment
                .public_url
                .clone()
                .unwrap_or_else(|| format!("http://{}:{}", settings.server.host, settings.server.port)),
        })
        .map_err(|problem| anyhow::anyhow!("the payment settings cannot be used: {problem}"))?;
        let problems = settings.integration.problems();
        if !problems.is_empty() {
            anyhow::bail!("{}", problems.join("\n"));
        }
        let sealer: Arc<dyn amtsweg_seal::Sealer> = Arc::new(
            amtsweg_seal::LocalSealer::start(
                db.clone(),
                auth.keys().kek(),
                clock.clone(),
                settings.account.issuer.clone(),
            )
            .await?,
        );
        let seals = amtsweg_seal::Seals {
            sealer: sealer.clone(),
            max_document_bytes: settings.storage.files.max_upload_bytes,
        };
        let mailroom = amtsweg_mailroom::Mailroom::new(amtsweg_mailroom::MailroomDeps {
            db: db.clone(),
            clock: clock.clone(),
            files: files.clone(),
            sealer: sealer.clone(),
            cases: Arc::new(amtsweg_applications::delivery::ApplicationCases),
            catalogue: catalogue.clone(),
            portal_url: settings.account.portal_url.clone(),
        });
        let applications = ApplicationService::new(ApplicationDeps {
            db: db.clone(),
            clock: clock.clone(),
            catalogue: catalogue.clone(),
            workflows: workflows.clone(),
            files: files.clone(),
            payments: payments.clone(),
            mailroom: mailroom.clone(),
            settings: settings.applications.clone(),
        });
        applications
            .record_workflow_versions()
            .await
            .map_err(|err| anyhow::anyhow!("the workflows cannot be used: {err}"))?;
        let integration = amtsweg_integration::Integration::new(amtsweg_integration::IntegrationDeps {
            db: db.clone(),
            clock: clock.clone(),
            applications: applications.clone(),
            catalogue: catalogue.clone(),
            files: files.clone(),
            sealer,
            kek: auth.keys().kek(),
            settings: settings.integration.clone(),
        })
        .map_err(|problem| anyhow::anyhow!("the integration settings cannot be used: {problem}"))?;
        let portal = amtsweg_portal::Portal::new(amtsweg_portal::PortalDeps {
            db: db.clone(),
            clock: clock.clone(),
            catalogue: catalogue.clone(),
            accounts: accounts.clone(),
            payments: payments.clone(),
            auth: auth.clone(),
            api_base: loopback(&settings.server.host, settings.server.port),
            portal_url: settings.account.portal_url.clone(),
            eid: settings.account.eid.is_some(),
        })
        .map_err(|problem| anyhow::anyhow!("the portal's templates cannot be used: {problem}"))?;
        let idempotency = Idempotency {
            db: db.clone(),
            clock: clock.clone(),
        };

        let modules: Vec<Arc<dyn Module>> = vec![
            Arc::new(catalogue.clone()),
            Arc::new(mail),
            Arc::new(files),
            Arc::new(idempotency),
            Arc::new(accounts.clone()),
            Arc::new(payments),
            Arc::new(seals),
            Arc::new(mailroom),
            Arc::new(applications),
            Arc::new(integration),
            Arc::new(portal),
        ];
        let subscriptions = modules.iter().fold(deps.subscriptions, |all, module| {
            all.merge(module.subscriptions())
        });
        let sequencer = Sequencer::new(db.clone(), clock.clone(), subscriptions);
        let registry = modules
            .iter()
            .fold(deps.jobs, |all, module| all.merge(module.jobs()))
            .tick(Arc::new(sequencer));
        let jobs = Runner::new(db.clone(), clock.clone(), registry, settings.jobs.runner());
        for module in &modules {
            tracing::debug!(module = module.name(), "module started");
        }
        Ok(Services {
            db,
            clock,
            auth,
            modules,
            catalogue,
            workflows,
            accounts,
            jobs,
        })
    }
}

/// Where this process's API answers on loopback (the portal calls it there).
fn loopback(host: &str, port: u16) -> String {
    match host.parse::<std::net::IpAddr>() {
        Ok(ip) if ip.is_unspecified() && ip.is_ipv6() => format!("http://[::1]:{port}"),
        Ok(ip) if ip.is_unspecified() => format!("http://127.0.0.1:{port}"),
        Ok(std::net::IpAddr::V6(ip)) => format!("http://[{ip}]:{port}"),
        Ok(ip) => format!("http://{ip}:{port}"),
        Err(_) => format!("http://{host}:{port}"),
    }
}

/// A running (not yet awaited) service.
pub struct Application {
    port: u16,
    metrics_port: Option<u16>,
    host: String,
    server: Server,
    db: Database,
    background: Vec<AbortHandle>,
}

impl Application {
    pub async fn build(settings: Settings) -> anyhow::Result<Application> {
        Application::build_with(settings, Dependencies::default()).await
    }

    pub async fn build_with(mut settings: Settings, deps: Dependencies) -> anyhow::Result<Application> {
        // Bound first, so that the services know the port they are reached on (payment return and notify URLs).
        let listener = TcpListener::bind((settings.server.host.as_str(), settings.server.port))
            .with_context(|| {
                format!(
                    "cannot listen on {}:{}",
                    settings.server.host, settings.server.port
                )
            })?;
        let port = listener.local_addr()?.port();
        settings.server.port = port;
        let services = Services::start(&settings, deps).await?;
        let Services {
            db,
            clock,
            auth,
            modules,
            catalogue,
            workflows: _,
            accounts: _,
            jobs,
        } = services;

        let background = vec![tokio::spawn(jobs.clone().run()).abort_handle()];
        let registry = web::Data::new(jobs.registry().clone());
        let clock = web::Data::new(clock);

        let metrics = web::Data::new(Metrics::new()?);
        metrics
            .catalogue_size
            .set(i64::try_from(catalogue.catalogue().len()).unwrap_or(i64::MAX));
        let api = crate::openapi::document();
        let route_table = web::Data::new(RouteTable::from_openapi(&api));
        let db_data = web::Data::new(db.clone());
        let auth = web::Data::from(auth);
        let json_limit = JsonLimit(settings.server.max_body_bytes);
        let trusted_proxies = web::Data::new(
            amtsweg_auth::TrustedProxies::parse(&settings.server.trusted_proxies)
                .map_err(|problem| anyhow::anyhow!("server.trusted_proxies: {problem}"))?,
        );
        let admission_state = web::Data::new(Admission::new(
            settings.server.max_in_flight,
            std::time::Duration::from_millis(settings.server.admission_wait_ms),
        ));
        let body_timeout = BodyIdleTimeout(std::time::Duration::from_secs(
            settings.server.body_idle_timeout_secs,
        ));

        let metrics_listener = match &settings.metrics.listen {
            Some(address) => Some(
                TcpListener::bind(address)
                    .with_context(|| format!("cannot listen on {address} (metrics.listen)"))?,
            ),
            None => None,
        };
        let metrics_access = web::Data::new(MetricsAccess {
            token: settings.metrics.token.clone(),
            port: match &metrics_listener {
                Some(listener) => Some(listener.local_addr()?.port()),
                None => None,
            },
        });
        let metrics_port = metrics_access.port;
        let mut server = HttpServer::new(move || {
            App::new()
                .configure(|cfg| modules.iter().for_each(|module| module.app_data(cfg)))
                .into_utoipa_app()
                .app_data(db_data.clone())
                .app_data(metrics.clone())
                .app_data(registry.clone())
                .app_data(clock.clone())
                .app_data(metrics_access.clone())
                .app_data(route_table.clone())
                .app_data(auth.clone())
                .app_data(json_limit)
                .app_data(admission_state.clone())
                .app_data(trusted_proxies.clone())
                .app_data(body_timeout)
                .app_data(web::PathConfig::default().error_handler(path_error_handler))
                .configure(routes)
                .into_app()
                .configure(|cfg| modules.iter().for_each(|module| module.unlisted_routes(cfg)))
                .service(SwaggerUi::new("/docs/{_:.*}").url("/openapi.json", api.clone()))
                .route(
                    "/docs",
                    web::get().to(|| async {
                        HttpResponse::PermanentRedirect()
                            .insert_header(("Location", "/docs/"))
                            .finish()
                    }),
                )
                .default_service(web::to(operations::fallback))
                .wrap(from_fn(admission))
                .wrap(from_fn(metrics::record))
                .wrap(from_fn(metrics::confine_listener))
                .wrap(from_fn(request_context))
                .wrap(from_fn(body_idle_timeout))
        })
        .shutdown_timeout(settings.server.shutdown_timeout_secs)
        .listen(listener)?;
        if let Some(listener) = metrics_listener {
            server = server.listen(listener)?;
        }
        if let Some(workers) = settings.server.workers {
            server = server.workers(workers);
        }
        Ok(Application {
            port,
            metrics_port,
            host: settings.server.host.clone(),
            server: server.run(),
            db,
            background,
        })
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    /// The port of the separate metrics listener, when `metrics.listen` is set.
    pub fn metrics_port(&self) -> Option<u16> {
        self.metrics_port
    }

    pub fn database(&self) -> &Database {
        &self.db
    }

    pub fn handle(&self) -> actix_web::dev::ServerHandle {
        self.server.handle()
    }

    pub async fn run_until_stopped(self) -> std::io::Result<()> {
        let base = format!("http://{}:{}", self.host, self.port);
        tracing::info!(
            backend = %self.db.backend(),
            "Amtsweg listening on {base} — API docs: {base}/docs/ — OpenAPI: {base}/openapi.json"
        );
        let result = self.server.await;
        for task in &self.background {
            task.abort();
        }
        result
    }
}
