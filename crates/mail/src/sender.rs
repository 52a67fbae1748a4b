//! The sending side: the handler of `mail.send` jobs.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use amtsweg_db::{Database, DbError};
use amtsweg_jobs::{Job, JobError, JobFuture, JobHandler};
use amtsweg_kernel::SharedClock;
use diesel::prelude::*;
use lettre::message::{Mailbox, header::ContentType};
use lettre::transport::smtp::authentication::Credentials;
use lettre::{AsyncFileTransport, AsyncSmtpTransport, AsyncTransport, Tokio1Executor};
use secrecy::{ExposeSecret, SecretString};
use serde::Deserialize;
use serde_json::json;

use crate::Status;
use crate::outbox::mail_outbox;

#[derive(Debug, Clone, Copy, Deserialize, PartialEq, Eq, Default)]
#[serde(rename_all = "lowercase")]
pub enum SmtpTls {
    /// Plain SMTP; only for a relay on the same host or in tests.
    None,
    /// STARTTLS on the submission port (587).
    #[default]
    Starttls,
    /// Implicit TLS (465).
    Tls,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SmtpSettings {
    pub host: String,
    pub port: Option<u16>,
    #[serde(default)]
    pub tls: SmtpTls,
    pub username: Option<String>,
    pub password: Option<SecretString>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct MailSettings {
    /// Sender of every message.
    pub from: String,
    /// SMTP relay; without it, messages are written as files to `storage.data_dir/mail/`.
    pub smtp: Option<SmtpSettings>,
    /// Seconds to wait after each failed try; the last wait repeats until the tries run out (40 in all).
    pub backoff_secs: Vec<u64>,
}

impl Default for MailSettings {
    fn default() -> Self {
        Self {
            from: "Amtsweg <noreply@amtsweg.invalid>".into(),
            smtp: None,
            backoff_secs: BACKOFF_SECS.to_vec(),
        }
    }
}

/// The job kind that sends one queued message.
pub(crate) const KIND: &str = "mail.send";

/// Waits after a failed attempt; the last one repeats until the job's limit (about eight days in all).
const BACKOFF_SECS: [u64; 6] = [30, 120, 600, 1_800, 3_600, 21_600];
const MAX_ATTEMPTS: u32 = 40;

enum Transport {
    Smtp(AsyncSmtpTransport<Tokio1Executor>),
    Files(AsyncFileTransport<Tokio1Executor>),
}

/// Sends queued messages as the handler of `mail.send` jobs.
#[derive(Clone)]
pub struct MailSender {
    inner: Arc<Inner>,
}

struct Inner {
    db: Database,
    clock: SharedClock,
    transport: Transport,
    from: Mailbox,
    backoff: Vec<u64>,
}

#[derive(Debug, thiserror::Error)]
pub enum MailSetupError {
    #[error("mail.from `{0}` is not an e-mail address")]
    From(String),
    #[error("mail.smtp: {0}")]
    Smtp(String),
    #[error("cannot create the mail directory {0}: {1}")]
    Directory(PathBuf, std::io::Error),
}

#[derive(Queryable)]
struct Queued {
    to_address: String,
    subject: String,
    body_text: String,
    status: String,
    reference: Option<String>,
    publish_outcome: bool,
}

/// Why a message was not sent.
enum Refusal {
    /// The server or the address refused it for good.
    Permanent(String),
    /// It cannot be built (our side).
    Technical(String),
    /// Worth another try.
    Transient(String),
}

impl MailSender {
    pub fn new(
        db: Database,
        clock: SharedClock,
        settings: &MailSettings,
        data_dir: &std::path::Path,
    ) -> Result<MailSender, MailSetupError> {
        let from: Mailbox = settings
            .from
            .parse()
            .map_err(|_| MailSetupError::From(settings.from.clone()))?;
        let transport = match &settings.smtp {
            Some(smtp) => {
                let builder = match smtp.tls {
                    SmtpTls::None => AsyncSmtpTransport::<Tokio1Executor>::builder_dangerous(&smtp.host),
                    SmtpTls::Starttls => AsyncSmtpTransport::<Tokio1Executor>::starttls_relay(&smtp.host)
                        .map_err(|err| MailSetupError::Smtp(err.to_string()))?,
                    SmtpTls::Tls => AsyncSmtpTransport::<Tokio1Executor>::relay(&smtp.host)
                        .map_err(|err| MailSetupError::Smtp(err.to_string()))?,
                };
                let mut builder = builder.timeout(Some(Duration::from_secs(20)));
                if let Some(port) = smtp.port {
                    builder = builder.port(port);
                }
                if let (Some(user), Some(password)) = (&smtp.username, &smtp.password) {
                    builder = builder.credentials(Credentials::new(
                        user.clone(),
                        password.expose_secret().to_owned(),
                    ));
                }
                Transport::Smtp(builder.build())
            }
            None => {
                let dir = data_dir.join("mail");
                std::fs::create_dir_all(&dir).map_err(|err| MailSetupError::Directory(dir.clone(), err))?;
                Transport::Files(AsyncFileTransport::new(dir))
            }
        };
        Ok(MailSender {
            inner: Arc::new(Inner {
                db,
                clock,
                transport,
                from,
                backoff: if settings.backoff_secs.is_empty() {
                    BACKOFF_SECS.to_vec()
                } else {
                    settings.backoff_secs.clone()
                },
            }),
        })
    }
}

impl JobHandler for MailSender {
    fn kind(&self) -> &'static str {
        KIND
    }

    fn max_attempts(&self) -> u32 {
        MAX_ATTEMPTS
    }

    fn backoff(&self, attempt: u32) -> Duration {
        let steps = &self.inner.backoff;
        let index = usize::try_from(attempt.saturating_sub(1))
            .unwrap_or(usize::MAX)
            .min(steps.len().saturating_sub(1));
        Duration::from_secs(steps.get(index).copied().unwrap_or(30))
    }

    fn run(&self, job: Job) -> JobFuture {
        let inner = self.inner.clone();
        Box::pin(async move { inner.deliver(&job).await })
    }
}

impl Inner {
    /// Sends the message the job names, unless it was sent already (a job may run twice).
    async fn deliver(&self, job: &Job) -> Result<amtsweg_jobs::JobOutput, JobError> {
        let Some(id) = job.payload["id"].as_str().map(str::to_owned) else {
            return Err(JobError::Permanent("the job names no message".into()));
        };
        let lookup = id.clone();
        let queued: Option<Queued> = self
            .db
            .read(move |conn| {
                Ok::<_, DbError>(
                    mail_outbox::table
                        .find(&lookup)
                        .select((
                            mail_outbox::to_address,
                            mail_outbox::subject,
                            mail_outbox::body_text,
                            mail_outbox::status,
                            mail_outbox::reference,
                            mail_outbox::publish_outcome,
                        ))
                        .first(conn)
                        .optional()?,
                )
            })
            .await
            .map_err(|err| JobError::Transient(err.to_string()))?;
        let Some(queued) = queued else {
            // Erased with its account before it went out.
            return Ok(Some(json!({"skipped": "message no longer exists"})));
        };
        let current = Status::parse(&queued.status);
        if matches!(
            current,
            Status::Delivered | Status::PermanentFailure | Status::TechnicalFailure
        ) {
            return Ok(Some(json!({"skipped": "already done", "status": current})));
        }
        let outcome = self.send(&id, &queued).await;
        let now = self.clock.now();
        let last_try = job.attempt >= MAX_ATTEMPTS;
        let (status, error) = match &outcome {
            Ok(()) => (Status::Delivered, None),
            Err(Refusal::Permanent(reason)) => (Status::PermanentFailure, Some(reason.clone())),
            Err(Refusal::Technical(reason)) => (Status::TechnicalFailure, Some(reason.clone())),
            Err(Refusal::Transient(reason)) if last_try => (Status::TechnicalFailure, Some(reason.clone())),
            Err(Refusal::Transient(reason)) => (Status::TemporaryFailure, Some(reason.clone())),
        };
        let reference = queued.reference.clone().filter(|_| queued.publish_outcome);
        self.db
            .write(move |conn| {
                // Only the first final outcome counts (a job may run twice).
                let changed =
                    diesel::update(mail_outbox::table.find(&id).filter(mail_outbox::status.ne_all([
                        Status::Delivered.as_str(),
                        Status::PermanentFailure.as_str(),
                        Status::TechnicalFailure.as_str(),
                    ])))
                    .set((
                        mail_outbox::status.eq(status.as_str()),
                        mail_outbox::last_error.eq(&error),
                        mail_outbox::sent_at.eq((status == Status::Delivered).then_some(now)),
                    ))
                    .execute(conn)?;
                if changed == 1
                    && let Some(reference) = reference
                    && status != Status::TemporaryFailure
                {
                    crate::events::outcome(conn, &id, &reference, status, now)?;
                }
                Ok::<_, DbError>(())
            })
            .await
            .map_err(|err| JobError::Transient(err.to_string()))?;
        match outcome {
            Ok(()) => Ok(None),
            Err(Refusal::Technical(reason)) => {
                tracing::warn!(job = %job.id, %reason, "mail cannot be built");
                Err(JobError::Permanent(reason))
            }
            Err(Refusal::Permanent(reason)) => {
                tracing::warn!(job = %job.id, %reason, "mail rejected permanently");
                Err(JobError::Permanent(reason))
            }
            Err(Refusal::Transient(reason)) => {
                tracing::info!(job = %job.id, attempt = job.attempt, %reason, "mail not sent; will retry");
                Err(JobError::Transient(reason))
            }
        }
    }

    /// Sends with a Message-ID made from the queue's id, so that a message sent twice (a job that ran again after
    /// a crash) shows as the same message.
    async fn send(&self, id: &str, queued: &Queued) -> Result<(), Refusal> {
        let to: Mailbox = queued
            .to_address
            .parse()
            .map_err(|_| Refusal::Permanent(format!("invalid recipient {}", queued.to_address)))?;
        let domain = self.from.email.domain().to_owned();
        let email = lettre::Message::builder()
            .message_id(Some(format!("<{id}@{domain}>")))
            .from(self.from.clone())
            .to(to)
            .subject(queued.subject.clone())
            .header(ContentType::TEXT_PLAIN)
            .body(queued.body_text.clone())
            .map_err(|err| Refusal::Technical(err.to_string()))?;
        match &self.transport {
            Transport::Smtp(smtp) => smtp.send(email).await.map(|_| ()).map_err(|err| {
                if err.is_permanent() {
                    Refusal::Permanent(err.to_string())
                } else {
                    Refusal::Transient(err.to_string())
                }
            }),
            Transport::Files(files) => files
                .send(email)
                .await
                .map(|_| ())
                .map_err(|err| Refusal::Transient(err.to_string())),
        }
    }
}

impl amtsweg_module::Module for MailSender {
    fn name(&self) -> &'static str {
        "mail"
    }

    /// Sending is the `mail.send` job; queueing is [`crate::enqueue`] in the caller's transaction.
    fn jobs(&self) -> amtsweg_jobs::Registry {
        amtsweg_jobs::Registry::new().handler(self.clone())
    }
}
