//! Outgoing e-mail through a durable queue: a module enqueues a message in the same transaction as the change it
//! reports, and a job (`mail.send`) sends it after the commit — by SMTP when configured, otherwise as `.eml` files
//! under `data/mail/` — retried with backoff while the mail server is unavailable. Nothing is lost when it is down.

mod outbox;
mod sender;

pub use outbox::{MailPersonalData, Message, enqueue};
pub use sender::{MailSender, MailSettings, MailSetupError, SmtpSettings, SmtpTls};
