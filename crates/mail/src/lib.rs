//! Outgoing e-mail through a durable queue: a module enqueues a message in the same transaction as the change it
//! reports, a worker sends it — by SMTP when configured, otherwise as `.eml` files under `data/mail/` — and retries
//! with backoff until it is accepted. Nothing is lost when the mail server is down.

mod outbox;
mod worker;

pub use outbox::{MailPersonalData, Message, enqueue};
pub use worker::{MailQueue, MailSettings, MailSetupError, MailWorker, SmtpSettings, SmtpTls};
