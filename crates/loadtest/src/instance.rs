//! An instance of the service started for one run, on a fresh data directory.

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use tokio::process::{Child, Command};

pub struct Instance {
    pub base: String,
    pub admin_password: String,
    data: tempfile::TempDir,
    child: Child,
}

impl Instance {
    pub async fn start(binary: &Path, database_url: Option<&str>) -> anyhow::Result<Instance> {
        let data = tempfile::Builder::new().prefix("amtsweg-load-").tempdir()?;
        let port = std::net::TcpListener::bind("127.0.0.1:0")?.local_addr()?.port();
        let admin_password = format!("Lastprobe {} im Rathaus!", std::process::id());
        let log = std::fs::File::create(data.path().join("serve.log"))?;
        let mut command = Command::new(binary);
        command
            .arg("serve")
            .env("AMTSWEG__STORAGE__DATA_DIR", data.path())
            .env("AMTSWEG__SERVER__HOST", "127.0.0.1")
            .env("AMTSWEG__SERVER__PORT", port.to_string())
            .env("AMTSWEG__ACCOUNT__BOOTSTRAP__ADMIN_PASSWORD", &admin_password)
            // One load generator stands for many citizens behind one address.
            .env("AMTSWEG__ACCOUNT__AUTH_REQUESTS_PER_MINUTE", "1000000")
            .env("AMTSWEG__LOG__LEVEL", "warn")
            // The run's webhook receiver listens on loopback.
            .env("AMTSWEG__INTEGRATION__WEBHOOKS__ALLOW", "[\"127.0.0.1\"]")
            .stdout(Stdio::null())
            .stderr(log)
            .kill_on_drop(true);
        if let Some(url) = database_url {
            command.env("AMTSWEG__DATABASE__URL", url);
        }
        let child = command
            .spawn()
            .with_context(|| format!("cannot start {}", binary.display()))?;
        let instance = Instance {
            base: format!("http://127.0.0.1:{port}"),
            admin_password,
            data,
            child,
        };
        instance.wait_until_ready().await?;
        Ok(instance)
    }

    async fn wait_until_ready(&self) -> anyhow::Result<()> {
        let client = reqwest::Client::new();
        let started = Instant::now();
        loop {
            if let Ok(response) = client.get(format!("{}/health/ready", self.base)).send().await
                && response.status().is_success()
            {
                return Ok(());
            }
            if started.elapsed() > Duration::from_secs(120) {
                let log = std::fs::read_to_string(self.data.path().join("serve.log")).unwrap_or_default();
                bail!("the instance did not become ready within 120 s:\n{log}");
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }

    pub fn mail_dir(&self) -> PathBuf {
        self.data.path().join("mail")
    }

    /// Stops the instance; its log is copied to `keep_log` first, if given.
    pub async fn stop(mut self, keep_log: Option<&Path>) {
        let _ = self.child.start_kill();
        let _ = self.child.wait().await;
        if let Some(to) = keep_log
            && let Err(err) = std::fs::copy(self.data.path().join("serve.log"), to)
        {
            eprintln!("cannot keep the instance's log in {}: {err}", to.display());
        }
    }
}
