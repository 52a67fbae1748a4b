//! The composition root: settings → database → services → HTTP server.

use std::net::TcpListener;
use std::sync::Arc;

use actix_web::dev::Server;
use actix_web::middleware::from_fn;
use actix_web::{App, HttpResponse, HttpServer, web};
use amtsweg_catalogue::CatalogueService;
use amtsweg_db::{Database, PoolOptions};
use amtsweg_kernel::http::{JsonLimit, path_error_handler, request_context};
use amtsweg_kernel::{SharedClock, SystemClock};
use anyhow::Context;
use utoipa_actix_web::service_config::ServiceConfig;
use utoipa_actix_web::{AppExt, scope};
use utoipa_swagger_ui::SwaggerUi;

use crate::metrics::{self, Metrics};
use crate::operations::{self, RouteTable};
use crate::settings::Settings;

/// Every documented route. The OpenAPI document is generated from exactly this.
pub fn routes(cfg: &mut ServiceConfig) {
    cfg.service(scope::scope("/api/v1").configure(amtsweg_catalogue::configure))
        .service(operations::live)
        .service(operations::ready)
        .service(operations::metrics);
}

/// A running (not yet awaited) service.
pub struct Application {
    port: u16,
    host: String,
    server: Server,
    db: Database,
}

/// What the app needs besides settings; tests substitute the clock.
pub struct Dependencies {
    pub clock: SharedClock,
}

impl Default for Dependencies {
    fn default() -> Self {
        Self {
            clock: Arc::new(SystemClock),
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

impl Application {
    pub async fn build(settings: Settings) -> anyhow::Result<Application> {
        Application::build_with(settings, Dependencies::default()).await
    }

    pub async fn build_with(settings: Settings, deps: Dependencies) -> anyhow::Result<Application> {
        std::fs::create_dir_all(&settings.storage.data_dir).with_context(|| {
            format!(
                "cannot create the data directory {}",
                settings.storage.data_dir.display()
            )
        })?;
        let db = open_database(&settings).await?;
        let catalogue =
            CatalogueService::start(&settings.catalogue.dir, db.clone(), deps.clock.clone()).await?;

        let metrics = web::Data::new(Metrics::new()?);
        metrics
            .catalogue_size
            .set(i64::try_from(catalogue.catalogue().len()).unwrap_or(i64::MAX));
        let api = crate::openapi::document();
        let route_table = web::Data::new(RouteTable::from_openapi(&api));
        let catalogue = web::Data::new(catalogue);
        let db_data = web::Data::new(db.clone());
        let json_limit = JsonLimit(settings.server.max_body_bytes);

        let listener = TcpListener::bind((settings.server.host.as_str(), settings.server.port))
            .with_context(|| {
                format!(
                    "cannot listen on {}:{}",
                    settings.server.host, settings.server.port
                )
            })?;
        let port = listener.local_addr()?.port();
        let mut server = HttpServer::new(move || {
            App::new()
                .into_utoipa_app()
                .app_data(catalogue.clone())
                .app_data(db_data.clone())
                .app_data(metrics.clone())
                .app_data(route_table.clone())
                .app_data(json_limit)
                .app_data(web::PathConfig::default().error_handler(path_error_handler))
                .configure(routes)
                .into_app()
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
                .wrap(from_fn(metrics::record))
                .wrap(from_fn(request_context))
        })
        .shutdown_timeout(settings.server.shutdown_timeout_secs)
        .listen(listener)?;
        if let Some(workers) = settings.server.workers {
            server = server.workers(workers);
        }
        Ok(Application {
            port,
            host: settings.server.host.clone(),
            server: server.run(),
            db,
        })
    }

    pub fn port(&self) -> u16 {
        self.port
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
        self.server.await
    }
}
