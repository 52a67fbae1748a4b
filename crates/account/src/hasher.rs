//! Argon2id (m = 19 MiB, t = 2, p = 1 — the OWASP parameters and the crate's defaults) on the blocking pool, at
//! most one hash per core at a time. A login storm queues briefly and is then answered 503, instead of piling up
//! and starving every other request.

use std::sync::Arc;
use std::time::Duration;

use argon2::Argon2;
use argon2::password_hash::phc::PasswordHash;
use argon2::password_hash::{PasswordHasher as _, PasswordVerifier as _};
use secrecy::{ExposeSecret, SecretString};
use tokio::sync::Semaphore;

#[derive(Debug, thiserror::Error)]
pub enum HashError {
    #[error("password hashing is saturated")]
    Overloaded,
    #[error("password hashing failed: {0}")]
    Failed(String),
}

#[derive(Clone)]
pub struct PasswordHasher {
    slots: Arc<Semaphore>,
    wait: Duration,
    /// A hash of a random password, verified when an account has none, so both cases cost the same.
    dummy: Arc<String>,
}

fn hash_now(password: &str) -> Result<String, HashError> {
    Argon2::default()
        .hash_password(password.as_bytes())
        .map(|hash| hash.to_string())
        .map_err(|err| HashError::Failed(err.to_string()))
}

impl PasswordHasher {
    pub fn new(wait: Duration) -> Result<PasswordHasher, HashError> {
        let cores = std::thread::available_parallelism().map(|n| n.get()).unwrap_or(2);
        let dummy = hash_now(&crate::domain::secret::random_token())?;
        Ok(PasswordHasher {
            slots: Arc::new(Semaphore::new(cores)),
            wait,
            dummy: Arc::new(dummy),
        })
    }

    async fn slot(&self) -> Result<tokio::sync::OwnedSemaphorePermit, HashError> {
        match tokio::time::timeout(self.wait, self.slots.clone().acquire_owned()).await {
            Ok(Ok(permit)) => Ok(permit),
            _ => Err(HashError::Overloaded),
        }
    }

    pub async fn hash(&self, password: &SecretString) -> Result<String, HashError> {
        let permit = self.slot().await?;
        let password = password.expose_secret().to_owned();
        tokio::task::spawn_blocking(move || {
            let _permit = permit;
            hash_now(&password)
        })
        .await
        .map_err(|err| HashError::Failed(err.to_string()))?
    }

    /// Whether `password` matches `hash`; with no hash it verifies against a dummy and answers false, taking the
    /// same time.
    pub async fn verify(&self, password: &SecretString, hash: Option<String>) -> Result<bool, HashError> {
        let permit = self.slot().await?;
        let password = password.expose_secret().to_owned();
        let present = hash.is_some();
        let hash = hash.unwrap_or_else(|| self.dummy.as_ref().clone());
        tokio::task::spawn_blocking(move || {
            let _permit = permit;
            let parsed = PasswordHash::new(&hash).map_err(|err| HashError::Failed(err.to_string()))?;
            Ok(present
                && Argon2::default()
                    .verify_password(password.as_bytes(), &parsed)
                    .is_ok())
        })
        .await
        .map_err(|err| HashError::Failed(err.to_string()))?
    }
}
