//! Configuration: built-in defaults, then an optional TOML file (`--config FILE`), then `AMTSWEG__SECTION__KEY`
//! environment variables. Typed and strict: an unknown or malformed key stops start-up with its path named.

use std::path::{Path, PathBuf};

use amtsweg_account::AccountSettings;
use amtsweg_db::DatabaseUrl;
use amtsweg_mail::MailSettings;
use figment::Figment;
use figment::providers::{Env, Format, Toml};
use secrecy::{ExposeSecret, SecretString};
use serde::Deserialize;

#[derive(Debug, Clone, Deserialize, Default)]
#[serde(deny_unknown_fields, default)]
pub struct Settings {
    pub server: ServerSettings,
    pub database: DatabaseSettings,
    pub storage: StorageSettings,
    pub catalogue: CatalogueSettings,
    pub workflows: WorkflowSettings,
    pub applications: amtsweg_applications::ApplicationSettings,
    pub payment: amtsweg_payment::PaymentSettings,
    pub integration: amtsweg_integration::IntegrationSettings,
    pub log: LogSettings,
    pub account: AccountSettings,
    pub mail: MailSettings,
    pub metrics: MetricsSettings,
    pub keys: KeySettings,
    pub jobs: JobSettings,
}

/// The background job runner of this instance.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct JobSettings {
    /// Jobs this instance runs at the same time.
    pub concurrency: usize,
    /// How often it looks for due jobs without being woken (jobs queued elsewhere, retries, schedules).
    pub poll_interval_ms: u64,
    /// How long a claimed job is held before another instance may take it over (renewed while it runs).
    pub lease_secs: u64,
}

impl Default for JobSettings {
    fn default() -> Self {
        Self {
            concurrency: 4,
            poll_interval_ms: 1_000,
            lease_secs: 300,
        }
    }
}

impl JobSettings {
    pub fn runner(&self) -> amtsweg_jobs::RunnerSettings {
        amtsweg_jobs::RunnerSettings {
            concurrency: self.concurrency.max(1),
            poll_interval: std::time::Duration::from_millis(self.poll_interval_ms.max(10)),
            lease: std::time::Duration::from_secs(self.lease_secs.max(3)),
        }
    }
}

/// The key-encryption key of the token signing keys (stored encrypted in the database). Neither set: a key file
/// in `{storage.data_dir}/secrets/`, generated at the first start.
#[derive(Debug, Clone, Deserialize, Default)]
#[serde(deny_unknown_fields, default)]
pub struct KeySettings {
    /// 32 bytes, base64 (`openssl rand -base64 32`).
    pub encryption_key: Option<SecretString>,
    /// A file holding the key as base64, readable by its owner only.
    pub encryption_key_file: Option<PathBuf>,
}

/// Who may read `/metrics`. Neither set: everyone who reaches the service (by default only this machine, as the
/// service listens on loopback).
#[derive(Debug, Clone, Deserialize, Default)]
#[serde(deny_unknown_fields, default)]
pub struct MetricsSettings {
    /// A separate address (`host:port`) that serves `/metrics` and nothing else; the main address then answers 404.
    pub listen: Option<String>,
    /// Required as `Authorization: Bearer …`.
    pub token: Option<SecretString>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ServerSettings {
    pub host: String,
    pub port: u16,
    /// Worker threads; defaults to the number of cores.
    pub workers: Option<usize>,
    /// How long in-flight requests may take to finish after SIGTERM/SIGINT.
    pub shutdown_timeout_secs: u64,
    /// Largest accepted JSON body.
    pub max_body_bytes: usize,
    /// A request body that sends nothing for this long is answered 408 and its connection closed (a gap between
    /// chunks, not a limit on the whole upload).
    pub body_idle_timeout_secs: u64,
    /// API requests (`/api/…`) handled at once; one more waits `admission_wait_ms` for a slot, then is answered
    /// 503 `overloaded` with `Retry-After: 1`.
    pub max_in_flight: usize,
    pub admission_wait_ms: u64,
    /// Reverse proxies / load balancers (addresses or CIDR ranges) whose `X-Forwarded-For` names the client. Empty:
    /// the header is ignored and the socket's address counts.
    pub trusted_proxies: Vec<String>,
}

impl Default for ServerSettings {
    fn default() -> Self {
        Self {
            host: "127.0.0.1".into(),
            port: 8080,
            workers: None,
            shutdown_timeout_secs: 30,
            max_body_bytes: amtsweg_kernel::http::DEFAULT_JSON_LIMIT,
            body_idle_timeout_secs: 20,
            max_in_flight: 64,
            admission_wait_ms: 50,
            trusted_proxies: Vec::new(),
        }
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct DatabaseSettings {
    /// `postgres://…` or `sqlite://PATH` (or a plain path). Unset: SQLite in `{storage.data_dir}/amtsweg.sqlite`.
    pub url: Option<SecretString>,
    pub pool_size: u32,
    /// How long a request waits for a free connection.
    pub checkout_timeout_ms: u64,
    pub connect_timeout_secs: u64,
}

impl Default for DatabaseSettings {
    fn default() -> Self {
        Self {
            url: None,
            pool_size: 10,
            checkout_timeout_ms: 5_000,
            connect_timeout_secs: 3,
        }
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct StorageSettings {
    /// Where the SQLite database and files live.
    pub data_dir: PathBuf,
    pub files: amtsweg_files::FilesSettings,
}

impl Default for StorageSettings {
    fn default() -> Self {
        Self {
            data_dir: PathBuf::from("./data"),
            files: amtsweg_files::FilesSettings::default(),
        }
    }
}

#[derive(Debug, Clone, Deserialize, Default)]
#[serde(deny_unknown_fields, default)]
pub struct CatalogueSettings {
    /// Directory of procedure definitions (`*.yaml`). Unset: `./procedures` if it exists, else the catalogue
    /// shipped in the binary.
    pub dir: Option<PathBuf>,
}

impl CatalogueSettings {
    /// Where the catalogue comes from under these settings.
    pub fn source(&self) -> amtsweg_catalogue::Source {
        match &self.dir {
            Some(dir) => amtsweg_catalogue::Source::Dir(dir.clone()),
            None if Path::new("./procedures").is_dir() => {
                amtsweg_catalogue::Source::Dir(PathBuf::from("./procedures"))
            }
            None => amtsweg_catalogue::Source::Shipped,
        }
    }
}

#[derive(Debug, Clone, Deserialize, Default)]
#[serde(deny_unknown_fields, default)]
pub struct WorkflowSettings {
    /// Directory of workflow definitions (`*.yaml`). Unset: `./workflows` if it exists, else the workflows
    /// shipped in the binary.
    pub dir: Option<PathBuf>,
}

impl WorkflowSettings {
    /// The directory to load, or `None` for the shipped workflows.
    pub fn dir(&self) -> Option<PathBuf> {
        match &self.dir {
            Some(dir) => Some(dir.clone()),
            None if Path::new("./workflows").is_dir() => Some(PathBuf::from("./workflows")),
            None => None,
        }
    }
}

#[derive(Debug, Clone, Copy, Deserialize, Default, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    #[default]
    Text,
    Json,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct LogSettings {
    pub format: LogFormat,
    /// A `tracing` filter such as `info` or `info,amtsweg_catalogue=debug`; `RUST_LOG` overrides it.
    pub level: String,
}

impl Default for LogSettings {
    fn default() -> Self {
        Self {
            format: LogFormat::Text,
            level: "info".into(),
        }
    }
}

#[derive(Debug, thiserror::Error)]
#[error("invalid configuration: {0}")]
pub struct ConfigError(String);

impl Settings {
    /// Defaults, then `file` if given (it must exist), then the environment.
    pub fn load(file: Option<&Path>) -> Result<Settings, ConfigError> {
        let mut figment = Figment::new();
        if let Some(file) = file {
            if !file.is_file() {
                return Err(ConfigError(format!(
                    "the configuration file {} does not exist",
                    file.display()
                )));
            }
            figment = figment.merge(Toml::file(file));
        }
        Settings::from_figment(figment.merge(Env::prefixed("AMTSWEG__").split("__")))
    }

    pub fn from_figment(figment: Figment) -> Result<Settings, ConfigError> {
        let settings: Settings = figment.extract().map_err(|err| {
            let messages: Vec<String> = err
                .into_iter()
                .map(|e| {
                    let key = e.path.join(".");
                    let source = e
                        .metadata
                        .as_ref()
                        .map(|m| format!(" (from {})", m.name))
                        .unwrap_or_default();
                    if key.is_empty() {
                        format!("{}{source}", e.kind)
                    } else {
                        format!("`{key}`: {}{source}", e.kind)
                    }
                })
                .collect();
            ConfigError(messages.join("; "))
        })?;
        settings.check()?;
        Ok(settings)
    }

    fn check(&self) -> Result<(), ConfigError> {
        self.database_url()?;
        if self.database.pool_size == 0 {
            return Err(ConfigError("`database.pool_size`: must be at least 1".into()));
        }
        if let Some(listen) = &self.metrics.listen
            && listen.parse::<std::net::SocketAddr>().is_err()
        {
            return Err(ConfigError(format!(
                "`metrics.listen`: `{listen}` is not an address like 127.0.0.1:9090"
            )));
        }
        if self
            .metrics
            .token
            .as_ref()
            .is_some_and(|t| t.expose_secret().len() < 16)
        {
            return Err(ConfigError(
                "`metrics.token`: must be at least 16 characters".into(),
            ));
        }
        if self.server.body_idle_timeout_secs == 0 {
            return Err(ConfigError(
                "`server.body_idle_timeout_secs`: must be at least 1".into(),
            ));
        }
        if self.server.max_body_bytes == 0 {
            return Err(ConfigError("`server.max_body_bytes`: must be at least 1".into()));
        }
        for (key, minutes) in [
            ("account.access_token_minutes", self.account.access_token_minutes),
            ("account.client_token_minutes", self.account.client_token_minutes),
        ] {
            if !(1..=15).contains(&minutes) {
                return Err(ConfigError(format!("`{key}`: must be between 1 and 15 minutes")));
            }
        }
        if self.account.recent_auth_minutes < 1 || self.account.refresh_token_days < 1 {
            return Err(ConfigError(
                "`account.recent_auth_minutes` and `account.refresh_token_days` must be positive".into(),
            ));
        }
        if !(1..=30).contains(&self.account.reset_minutes) {
            return Err(ConfigError(
                "`account.reset_minutes`: must be between 1 and 30".into(),
            ));
        }
        tracing_subscriber::EnvFilter::try_new(&self.log.level)
            .map_err(|err| ConfigError(format!("`log.level`: {err}")))?;
        Ok(())
    }

    pub fn database_url(&self) -> Result<DatabaseUrl, ConfigError> {
        match &self.database.url {
            Some(url) => DatabaseUrl::parse(url.expose_secret())
                .map_err(|err| ConfigError(format!("`database.url`: {err}"))),
            None => Ok(DatabaseUrl::Sqlite(self.storage.data_dir.join("amtsweg.sqlite"))),
        }
    }
}

#[cfg(test)]
mod tests {
    use figment::providers::Toml;

    use super::*;

    fn from(toml: &str) -> Result<Settings, ConfigError> {
        Settings::from_figment(Figment::new().merge(Toml::string(toml)))
    }

    #[test]
    fn defaults_run_on_sqlite_in_the_data_directory() {
        let settings = from("").unwrap();
        assert_eq!(settings.server.port, 8080);
        assert_eq!(
            settings.database_url().unwrap(),
            DatabaseUrl::Sqlite("./data/amtsweg.sqlite".into())
        );
    }

    #[test]
    fn unknown_keys_are_named() {
        let err = from("[database]\nurll = \"x\"").unwrap_err().to_string();
        assert!(err.contains("database.urll"), "{err}");
    }

    #[test]
    fn malformed_values_are_named() {
        let err = from("[server]\nport = \"achtzig\"").unwrap_err().to_string();
        assert!(err.contains("server.port"), "{err}");
        let err = from("[database]\nurl = \"mysql://h/db\"")
            .unwrap_err()
            .to_string();
        assert!(err.contains("database.url") && err.contains("mysql"), "{err}");
    }

    #[test]
    fn secrets_stay_out_of_debug_output() {
        let settings = from("[database]\nurl = \"postgres://u:geheim@h/db\"").unwrap();
        assert!(!format!("{settings:?}").contains("geheim"));
    }
}
