//! The sending side of the queue.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use amtsweg_db::{Database, DbConnection, DbError};
use amtsweg_kernel::SharedClock;
use chrono::{DateTime, NaiveDateTime, Utc};
use diesel::prelude::*;
use lettre::message::{Mailbox, header::ContentType};
use lettre::transport::smtp::authentication::Credentials;
use lettre::{AsyncFileTransport, AsyncSmtpTransport, AsyncTransport, Tokio1Executor};
use secrecy::{ExposeSecret, SecretString};
use serde::Deserialize;
use tokio::sync::Notify;

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
    /// How often the worker looks for due messages (it is also woken on every enqueue).
    pub poll_interval_ms: u64,
}

impl Default for MailSettings {
    fn default() -> Self {
        Self {
            from: "Amtsweg <noreply@amtsweg.invalid>".into(),
            smtp: None,
            poll_interval_ms: 2_000,
        }
    }
}

enum Transport {
    Smtp(AsyncSmtpTransport<Tokio1Executor>),
    Files(AsyncFileTransport<Tokio1Executor>),
}

/// Services hold this to wake the worker after committing a message.
#[derive(Clone, Default)]
pub struct MailQueue {
    notify: Arc<Notify>,
}

impl MailQueue {
    pub fn wake(&self) {
        self.notify.notify_one();
    }
}

pub struct MailWorker {
    db: Database,
    clock: SharedClock,
    transport: Transport,
    from: Mailbox,
    queue: MailQueue,
    poll: Duration,
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

/// Retry delays after a failed attempt; the last one repeats: a message is retried until it is accepted.
const BACKOFF_SECS: [i64; 6] = [30, 120, 600, 1_800, 3_600, 21_600];

#[derive(Queryable)]
struct Due {
    id: String,
    to_address: String,
    subject: String,
    body_text: String,
    attempts: i32,
}

impl MailWorker {
    pub fn new(
        db: Database,
        clock: SharedClock,
        settings: &MailSettings,
        data_dir: &std::path::Path,
    ) -> Result<(MailWorker, MailQueue), MailSetupError> {
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
        let queue = MailQueue::default();
        let worker = MailWorker {
            db,
            clock,
            transport,
            from,
            queue: queue.clone(),
            poll: Duration::from_millis(settings.poll_interval_ms.max(10)),
        };
        Ok((worker, queue))
    }

    /// Runs until the process ends: sends what is due, then waits for a wake-up or the poll interval.
    pub async fn run(self) {
        loop {
            match self.run_once().await {
                Ok(sent) if sent > 0 => continue,
                Ok(_) => {}
                Err(err) => tracing::warn!(error = %err, "mail queue unavailable"),
            }
            let _ = tokio::time::timeout(self.poll, self.queue.notify.notified()).await;
        }
    }

    /// Sends every due message once; returns how many were handled.
    pub async fn run_once(&self) -> Result<usize, DbError> {
        let now = self.clock.now();
        let due = self.db.write(move |conn| claim(conn, now)).await?;
        let count = due.len();
        for message in due {
            let outcome = self.send(&message).await;
            let now = self.clock.now();
            let id = message.id.clone();
            let attempts = message.attempts + 1;
            self.db
                .write(move |conn| record(conn, &id, attempts, outcome, now))
                .await?;
        }
        Ok(count)
    }

    async fn send(&self, due: &Due) -> Result<(), (bool, String)> {
        let to: Mailbox = due
            .to_address
            .parse()
            .map_err(|_| (true, format!("invalid recipient {}", due.to_address)))?;
        let email = lettre::Message::builder()
            .from(self.from.clone())
            .to(to)
            .subject(due.subject.clone())
            .header(ContentType::TEXT_PLAIN)
            .body(due.body_text.clone())
            .map_err(|err| (true, err.to_string()))?;
        match &self.transport {
            Transport::Smtp(smtp) => smtp
                .send(email)
                .await
                .map(|_| ())
                .map_err(|err| (err.is_permanent(), err.to_string())),
            Transport::Files(files) => files
                .send(email)
                .await
                .map(|_| ())
                .map_err(|err| (false, err.to_string())),
        }
    }
}

/// Takes due messages and locks them for five minutes, so that a crashed send is retried and two instances never
/// send the same message at once.
fn claim(conn: &mut DbConnection, now: DateTime<Utc>) -> Result<Vec<Due>, DbError> {
    let now_naive = now.naive_utc();
    let due_filter = mail_outbox::status
        .eq("pending")
        .and(mail_outbox::next_attempt_at.le(now_naive))
        .and(
            mail_outbox::locked_until
                .is_null()
                .or(mail_outbox::locked_until.le(now_naive)),
        );
    let ids: Vec<String> = match conn {
        DbConnection::Postgres(pg) => mail_outbox::table
            .filter(due_filter)
            .order(mail_outbox::next_attempt_at.asc())
            .limit(20)
            .select(mail_outbox::id)
            .for_update()
            .skip_locked()
            .load(pg)?,
        DbConnection::Sqlite(lite) => mail_outbox::table
            .filter(due_filter)
            .order(mail_outbox::next_attempt_at.asc())
            .limit(20)
            .select(mail_outbox::id)
            .load(lite)?,
    };
    if ids.is_empty() {
        return Ok(Vec::new());
    }
    let lock: NaiveDateTime = (now + chrono::Duration::minutes(5)).naive_utc();
    diesel::update(mail_outbox::table.filter(mail_outbox::id.eq_any(&ids)))
        .set(mail_outbox::locked_until.eq(lock))
        .execute(conn)?;
    Ok(mail_outbox::table
        .filter(mail_outbox::id.eq_any(&ids))
        .select((
            mail_outbox::id,
            mail_outbox::to_address,
            mail_outbox::subject,
            mail_outbox::body_text,
            mail_outbox::attempts,
        ))
        .load(conn)?)
}

fn record(
    conn: &mut DbConnection,
    id: &str,
    attempts: i32,
    outcome: Result<(), (bool, String)>,
    now: DateTime<Utc>,
) -> Result<(), DbError> {
    let row = mail_outbox::table.find(id);
    match outcome {
        Ok(()) => {
            diesel::update(row)
                .set((
                    mail_outbox::status.eq("sent"),
                    mail_outbox::attempts.eq(attempts),
                    mail_outbox::sent_at.eq(now.naive_utc()),
                    mail_outbox::locked_until.eq(None::<NaiveDateTime>),
                    mail_outbox::last_error.eq(None::<String>),
                ))
                .execute(conn)?;
        }
        Err((true, error)) => {
            tracing::warn!(mail = %id, %error, "mail rejected permanently");
            diesel::update(row)
                .set((
                    mail_outbox::status.eq("rejected"),
                    mail_outbox::attempts.eq(attempts),
                    mail_outbox::locked_until.eq(None::<NaiveDateTime>),
                    mail_outbox::last_error.eq(Some(error)),
                ))
                .execute(conn)?;
        }
        Err((false, error)) => {
            let index = usize::try_from(attempts - 1)
                .unwrap_or(0)
                .min(BACKOFF_SECS.len() - 1);
            let next = now + chrono::Duration::seconds(BACKOFF_SECS[index]);
            tracing::info!(mail = %id, attempts, %error, retry_at = %next, "mail not sent; will retry");
            diesel::update(row)
                .set((
                    mail_outbox::attempts.eq(attempts),
                    mail_outbox::next_attempt_at.eq(next.naive_utc()),
                    mail_outbox::locked_until.eq(None::<NaiveDateTime>),
                    mail_outbox::last_error.eq(Some(error)),
                ))
                .execute(conn)?;
        }
    }
    Ok(())
}
