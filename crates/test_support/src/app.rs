use std::path::{Path, PathBuf};

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
    pub data_dir: PathBuf,
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
        }
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
        settings.catalogue.dir = self.procedures;
        let url = self.database_url.unwrap_or_else(|| database.url_string());
        settings.database.url = Some(SecretString::from(url));
        for f in self.configure {
            f(&mut settings);
        }
        let app = Application::build_with(settings, Dependencies::default()).await?;
        let address = format!("http://127.0.0.1:{}", app.port());
        let handle = app.handle();
        tokio::spawn(app.run_until_stopped());
        Ok(TestApp {
            address,
            client: reqwest::Client::builder()
                .redirect(reqwest::redirect::Policy::none())
                .build()?,
            database,
            data_dir: data.path().to_owned(),
            handle,
            _data: data,
        })
    }
}
