//! Argon2id (m = 19 MiB, t = 2, p = 1 — the OWASP parameters and the crate's defaults) on dedicated threads, one
//! per core, each reusing its own 19 MiB of working memory instead of allocating and zeroing it per login.
//!
//! Logins queue for a thread. A request that waited longer than the configured time, or finds the queue full,
//! is answered 503 at once — a login storm cannot pile up and starve every other request.

use std::sync::mpsc::{Receiver, SyncSender, TrySendError, sync_channel};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use argon2::password_hash::phc::{PasswordHash, Salt};
use argon2::{Algorithm, Argon2, Block, Params, Version};
use base64::Engine;
use base64::engine::general_purpose::STANDARD_NO_PAD;
use secrecy::{ExposeSecret, SecretString};
use subtle::ConstantTimeEq;
use tokio::sync::oneshot;

use crate::service::guard::Admitted;

#[derive(Debug, thiserror::Error)]
pub enum HashError {
    #[error("password hashing is saturated")]
    Overloaded,
    #[error("password hashing failed: {0}")]
    Failed(String),
}

enum Work {
    Hash(String),
    /// `None`: no such account — verify against the dummy so that both cases take the same time.
    Verify(String, Option<String>),
}

struct Job {
    work: Work,
    queued: Instant,
    reply: oneshot::Sender<Result<Answer, HashError>>,
}

enum Answer {
    Hash(String),
    Matches(bool),
}

#[derive(Clone)]
pub struct PasswordHasher {
    queue: SyncSender<Job>,
}

const OUTPUT_LEN: usize = 32;

fn argon2(params: Params) -> Argon2<'static> {
    Argon2::new(Algorithm::Argon2id, Version::V0x13, params)
}

/// Runs Argon2id with this thread's memory, growing it only for (older) hashes with a larger memory cost.
fn compute(
    memory: &mut Vec<Block>,
    params: Params,
    password: &[u8],
    salt: &[u8],
    out: &mut [u8],
) -> Result<(), HashError> {
    let needed = params.block_count();
    if memory.len() < needed {
        memory.resize(needed, Block::default());
    }
    argon2(params)
        .hash_password_into_with_memory(password, salt, out, &mut memory[..needed])
        .map_err(|err| HashError::Failed(err.to_string()))
}

fn hash_new(memory: &mut Vec<Block>, password: &str) -> Result<String, HashError> {
    let salt = Salt::generate();
    let params = Params::DEFAULT;
    let mut out = [0u8; OUTPUT_LEN];
    compute(
        memory,
        params.clone(),
        password.as_bytes(),
        salt.as_ref(),
        &mut out,
    )?;
    Ok(format!(
        "$argon2id$v=19$m={},t={},p={}${}${}",
        params.m_cost(),
        params.t_cost(),
        params.p_cost(),
        STANDARD_NO_PAD.encode(salt.as_ref()),
        STANDARD_NO_PAD.encode(out)
    ))
}

fn matches(memory: &mut Vec<Block>, password: &str, stored: &str) -> Result<bool, HashError> {
    let parsed = PasswordHash::new(stored).map_err(|err| HashError::Failed(err.to_string()))?;
    if parsed.algorithm.as_str() != "argon2id" {
        return Err(HashError::Failed(format!(
            "unsupported hash algorithm {}",
            parsed.algorithm
        )));
    }
    let params = Params::try_from(&parsed).map_err(|err| HashError::Failed(err.to_string()))?;
    let (Some(salt), Some(expected)) = (parsed.salt, parsed.hash) else {
        return Err(HashError::Failed("incomplete password hash".into()));
    };
    let mut out = vec![0u8; expected.len()];
    compute(memory, params, password.as_bytes(), salt.as_ref(), &mut out)?;
    Ok(bool::from(out.as_slice().ct_eq(expected.as_bytes())))
}

fn worker(jobs: Arc<Mutex<Receiver<Job>>>, wait: Duration, dummy: Arc<String>) {
    let mut memory = vec![Block::default(); Params::DEFAULT.block_count()];
    loop {
        let job = {
            let Ok(receiver) = jobs.lock() else { return };
            match receiver.recv() {
                Ok(job) => job,
                Err(_) => return,
            }
        };
        if job.queued.elapsed() > wait {
            let _ = job.reply.send(Err(HashError::Overloaded));
            continue;
        }
        let answer = match &job.work {
            Work::Hash(password) => hash_new(&mut memory, password).map(Answer::Hash),
            Work::Verify(password, Some(stored)) => {
                matches(&mut memory, password, stored).map(Answer::Matches)
            }
            Work::Verify(password, None) => {
                matches(&mut memory, password, &dummy).map(|_| Answer::Matches(false))
            }
        };
        let _ = job.reply.send(answer);
    }
}

impl PasswordHasher {
    /// Starts one hashing thread per core. A login waits at most `wait` for one.
    pub fn new(wait: Duration) -> Result<PasswordHasher, HashError> {
        let cores = std::thread::available_parallelism().map(|n| n.get()).unwrap_or(2);
        let mut scratch = vec![Block::default(); Params::DEFAULT.block_count()];
        let dummy = Arc::new(hash_new(&mut scratch, &crate::domain::secret::random_token())?);
        drop(scratch);
        // Enough queue for the waiting time at full speed; beyond that, callers are told to come back.
        let (queue, jobs) = sync_channel(cores * 16);
        let jobs = Arc::new(Mutex::new(jobs));
        for index in 0..cores {
            let (jobs, dummy) = (jobs.clone(), dummy.clone());
            std::thread::Builder::new()
                .name(format!("argon2-{index}"))
                .spawn(move || worker(jobs, wait, dummy))
                .map_err(|err| HashError::Failed(err.to_string()))?;
        }
        Ok(PasswordHasher { queue })
    }

    async fn submit(&self, work: Work) -> Result<Answer, HashError> {
        let (reply, answer) = oneshot::channel();
        match self.queue.try_send(Job {
            work,
            queued: Instant::now(),
            reply,
        }) {
            Ok(()) => {}
            Err(TrySendError::Full(_)) => return Err(HashError::Overloaded),
            Err(TrySendError::Disconnected(_)) => {
                return Err(HashError::Failed("hashing threads stopped".into()));
            }
        }
        answer
            .await
            .map_err(|_| HashError::Failed("hashing thread stopped".into()))?
    }

    pub async fn hash(&self, password: &SecretString) -> Result<String, HashError> {
        match self
            .submit(Work::Hash(password.expose_secret().to_owned()))
            .await?
        {
            Answer::Hash(hash) => Ok(hash),
            Answer::Matches(_) => Err(HashError::Failed("unexpected answer".into())),
        }
    }

    /// Whether `password` matches `hash`; with no hash it verifies against a dummy and answers false, taking the
    /// same time. Only an admitted attempt may check a password (see `service::guard`).
    pub async fn verify(
        &self,
        _admitted: Admitted,
        password: &SecretString,
        hash: Option<String>,
    ) -> Result<bool, HashError> {
        match self
            .submit(Work::Verify(password.expose_secret().to_owned(), hash))
            .await?
        {
            Answer::Matches(matches) => Ok(matches),
            Answer::Hash(_) => Err(HashError::Failed("unexpected answer".into())),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hashes_are_standard_phc_strings_that_the_crate_verifies() {
        use argon2::password_hash::PasswordVerifier;
        let mut memory = Vec::new();
        let hash = hash_new(&mut memory, "kaffeetasse wolkenkratzer").unwrap();
        assert!(hash.starts_with("$argon2id$v=19$m=19456,t=2,p=1$"), "{hash}");
        let parsed = PasswordHash::new(&hash).unwrap();
        assert!(
            Argon2::default()
                .verify_password(b"kaffeetasse wolkenkratzer", &parsed)
                .is_ok()
        );
        assert!(matches(&mut memory, "kaffeetasse wolkenkratzer", &hash).unwrap());
        assert!(!matches(&mut memory, "kaffeetasse", &hash).unwrap());
    }

    #[test]
    fn hashes_of_the_crate_are_verified_here() {
        use argon2::password_hash::PasswordHasher as _;
        let standard = Argon2::default()
            .hash_password(b"radweg elster auwald")
            .unwrap()
            .to_string();
        let mut memory = Vec::new();
        assert!(matches(&mut memory, "radweg elster auwald", &standard).unwrap());
    }
}
