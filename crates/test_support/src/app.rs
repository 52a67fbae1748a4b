use std::path::{Path, PathBuf};

use std::sync::Arc;

use amtsweg_kernel::clock::ManualClock;
use amtsweg_server::{Application, Dependencies, Settings};
use reqwest::Response;
use secrecy::SecretString;
use serde_json::Value;

use crate::backend::{Backend, FreshDatabase};

/// A running application with its own database, reachable over HTTP.
pub struct TestApp {
    pub address: String,
    pub client: reqwest::Client,
    pub database: FreshDatabase,
    /// The app's own connection pool, for tests that work inside its transactions (queueing jobs, say).
    pub pool: amtsweg_db::Database,
    pub data_dir: PathBuf,
    /// The service's clock; it only moves when a test moves it.
    pub clock: Arc<ManualClock>,
    /// The port of the separate metrics listener, when the settings ask for one.
    pub metrics_port: Option<u16>,
    /// The SMTP server the service sends to, when the test asked for one.
    pub smtp: Option<Arc<crate::SmtpServer>>,
    /// TOTP secret of the bootstrap administrator once it enrolled.
    pub(crate) admin_secret: std::sync::Mutex<Option<String>>,
    handle: actix_web::dev::ServerHandle,
    _data: std::sync::Arc<tempfile::TempDir>,
}

type SettingsChange = Box<dyn FnOnce(&mut Settings)>;

pub struct TestAppBuilder {
    backend: Backend,
    procedures: PathBuf,
    database: Option<FreshDatabase>,
    data: Option<std::sync::Arc<tempfile::TempDir>>,
    database_url: Option<String>,
    configure: Vec<SettingsChange>,
    clock: Option<Arc<ManualClock>>,
    smtp: bool,
    jobs: amtsweg_jobs::Registry,
    subscriptions: amtsweg_events::Subscriptions,
}

impl TestApp {
    pub async fn spawn(backend: Backend) -> TestApp {
        TestApp::builder(backend)
            .spawn()
            .await
            .expect("the application starts")
    }

    pub fn builder(backend: Backend) -> TestAppBuilder {
        TestAppBuilder {
            backend,
            procedures: crate::workspace_root().join("procedures"),
            database: None,
            data: None,
            database_url: None,
            configure: Vec::new(),
            clock: None,
            smtp: false,
            jobs: amtsweg_jobs::Registry::new(),
            subscriptions: amtsweg_events::Subscriptions::new(),
        }
    }

    /// Another instance on the same database and data directory (for restarts); this one keeps running.
    pub fn restart_builder(&self) -> TestAppBuilder {
        let backend = match &self.database.url {
            amtsweg_db::DatabaseUrl::Postgres(url) => Backend::Postgres(url.clone()),
            amtsweg_db::DatabaseUrl::Sqlite(_) => Backend::Sqlite,
        };
        TestAppBuilder {
            backend,
            procedures: crate::workspace_root().join("procedures"),
            database: Some(self.database.clone()),
            data: Some(self._data.clone()),
            database_url: None,
            configure: Vec::new(),
            clock: Some(self.clock.clone()),
            smtp: false,
            jobs: amtsweg_jobs::Registry::new(),
            subscriptions: amtsweg_events::Subscriptions::new(),
        }
    }

    /// A connection of the test's own to the app's database, as an operator (or an attacker) would open one. On
    /// SQLite it waits for the lock like the service does, since the service may be writing meanwhile.
    pub fn connect(&self) -> amtsweg_db::DbConnection {
        use diesel::Connection;
        use diesel::connection::SimpleConnection;
        let url = self.database.url_string();
        let mut conn = amtsweg_db::DbConnection::establish(url.strip_prefix("sqlite://").unwrap_or(&url))
            .expect("a connection to the test database");
        if let amtsweg_db::DbConnection::Sqlite(lite) = &mut conn {
            lite.batch_execute("PRAGMA busy_timeout = 5000")
                .expect("busy timeout");
        }
        conn
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.address)
    }

    pub async fn get(&self, path: &str) -> Response {
        self.client.get(self.url(path)).send().await.expect("request")
    }

    pub async fn post_json(&self, path: &str, body: &Value) -> Response {
        self.client
            .post(self.url(path))
            .json(body)
            .send()
            .await
            .expect("request")
    }

    pub async fn stop(&self) {
        self.handle.stop(true).await;
    }
}

impl Drop for TestApp {
    fn drop(&mut self) {
        // Stop accepting; the database guard then removes the per-test database.
        drop(self.handle.stop(false));
    }
}

impl TestAppBuilder {
    pub fn procedures(mut self, dir: &Path) -> Self {
        self.procedures = dir.to_owned();
        self
    }

    /// Connect through this URL instead of the database's own (e.g. through a [`crate::TcpProxy`]).
    pub fn database_url(mut self, url: String) -> Self {
        self.database_url = Some(url);
        self
    }

    /// Sends mail to an SMTP relay at `port` on loopback that the test starts (or leaves down) itself.
    pub fn smtp_at(self, port: u16) -> Self {
        self.configure(move |s| {
            s.mail.smtp = Some(amtsweg_mail::SmtpSettings {
                host: "127.0.0.1".into(),
                port: Some(port),
                tls: amtsweg_mail::SmtpTls::None,
                username: None,
                password: None,
            });
        })
    }

    /// Delivers mail to a real SMTP server (aiosmtpd) that the test can read.
    pub fn with_smtp(mut self) -> Self {
        self.smtp = true;
        self
    }

    /// Event subscriptions beyond the modules' own (their handlers go in with [`TestAppBuilder::jobs`]).
    pub fn subscriptions(mut self, subscriptions: amtsweg_events::Subscriptions) -> Self {
        self.subscriptions = subscriptions;
        self
    }

    /// Job handlers, schedules or ticks beyond the modules' own (a test's probes).
    pub fn jobs(mut self, jobs: amtsweg_jobs::Registry) -> Self {
        self.jobs = jobs;
        self
    }

    pub fn clock(mut self, clock: Arc<ManualClock>) -> Self {
        self.clock = Some(clock);
        self
    }

    /// Use this data directory (e.g. one a backup was restored into) instead of a fresh one.
    pub fn data(mut self, data: std::sync::Arc<tempfile::TempDir>) -> Self {
        self.data = Some(data);
        self
    }

    pub fn database(mut self, database: FreshDatabase) -> Self {
        self.database = Some(database);
        self
    }

    pub fn configure(mut self, f: impl FnOnce(&mut Settings) + 'static) -> Self {
        self.configure.push(Box::new(f));
        self
    }

    pub async fn spawn(self) -> anyhow::Result<TestApp> {
        let database = self.database.unwrap_or_else(|| self.backend.fresh_database(true));
        let data = match self.data {
            Some(data) => data,
            None => std::sync::Arc::new(tempfile::tempdir()?),
        };
        let mut settings = Settings::default();
        settings.server.port = 0;
        settings.server.workers = Some(1);
        settings.server.shutdown_timeout_secs = 1;
        settings.database.pool_size = 4;
        settings.database.checkout_timeout_ms = 1_000;
        settings.database.connect_timeout_secs = 2;
        settings.storage.data_dir = data.path().to_owned();
        settings.catalogue.dir = Some(self.procedures);
        settings.account.auth_requests_per_minute = 100_000;
        settings.account.bootstrap.admin_email = crate::users::ADMIN_EMAIL.into();
        settings.account.bootstrap.admin_password = Some(SecretString::from(crate::users::ADMIN_PASSWORD));
        settings.jobs.poll_interval_ms = 50;
        let smtp = if self.smtp {
            Some(Arc::new(crate::SmtpServer::start()))
        } else {
            None
        };
        if let Some(server) = &smtp {
            settings.mail.smtp = Some(amtsweg_mail::SmtpSettings {
                host: "127.0.0.1".into(),
                port: Some(server.port),
                tls: amtsweg_mail::SmtpTls::None,
                username: None,
                password: None,
            });
        }
        let clock = self.clock.unwrap_or_else(|| {
            use chrono::SubsecRound;
            Arc::new(ManualClock::new(chrono::Utc::now().trunc_subsecs(0)))
        });
        let url = self.database_url.unwrap_or_else(|| database.url_string());
        settings.database.url = Some(SecretString::from(url));
        for f in self.configure {
            f(&mut settings);
        }
        let app = Application::build_with(
            settings,
            Dependencies {
                clock: clock.clone(),
                jobs: self.jobs,
                subscriptions: self.subscriptions,
            },
        )
        .await?;
        let address = format!("http://127.0.0.1:{}", app.port());
        let metrics_port = app.metrics_port();
        let pool = app.database().clone();
        let handle = app.handle();
        tokio::spawn(app.run_until_stopped());
        Ok(TestApp {
            address,
            client: reqwest::Client::builder()
                .redirect(reqwest::redirect::Policy::none())
                .build()?,
            database,
            pool,
            data_dir: data.path().to_owned(),
            metrics_port,
            clock,
            smtp,
            admin_secret: std::sync::Mutex::new(None),
            handle,
            _data: data,
        })
    }
}
