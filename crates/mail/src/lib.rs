//! Outgoing e-mail through a durable queue: a module enqueues a message in the same transaction as the change it
//! reports, and a job (`mail.send`) sends it after the commit — by SMTP when configured, otherwise as `.eml` files
//! under `data/mail/` — retried with backoff while the mail server is unavailable. Nothing is lost when it is down.
//!
//! Every message has a delivery status like GOV.UK Notify's ([`Status`]). A message queued with a `reference`
//! (what it announces) publishes its fate as an event ([`events`]), so that the announcing module can record
//! when the notification left — the start of a legal period for a decision in the Postfach.

pub mod events;
mod outbox;
mod sender;

pub use outbox::{MailPersonalData, Message, Notification, enqueue, notifications, notifications_of};
pub use sender::{MailSender, MailSettings, MailSetupError, SmtpSettings, SmtpTls};

/// The delivery status of one message.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, utoipa::ToSchema)]
#[serde(rename_all = "kebab-case")]
pub enum Status {
    /// Queued; not tried yet.
    Created,
    /// Accepted by the mail relay.
    Delivered,
    /// The relay could not be reached or deferred it; it is tried again.
    TemporaryFailure,
    /// The relay or the address refused it for good (a bounce or refusal).
    PermanentFailure,
    /// The message could not be built or the tries ran out: our side failed.
    TechnicalFailure,
}

impl Status {
    pub fn as_str(self) -> &'static str {
        match self {
            Status::Created => "created",
            Status::Delivered => "delivered",
            Status::TemporaryFailure => "temporary-failure",
            Status::PermanentFailure => "permanent-failure",
            Status::TechnicalFailure => "technical-failure",
        }
    }

    pub fn parse(text: &str) -> Status {
        match text {
            "delivered" => Status::Delivered,
            "temporary-failure" => Status::TemporaryFailure,
            "permanent-failure" => Status::PermanentFailure,
            "technical-failure" => Status::TechnicalFailure,
            _ => Status::Created,
        }
    }

    /// In plain words, for the citizen.
    pub fn explained(self) -> amtsweg_kernel::Text {
        use amtsweg_kernel::Text;
        match self {
            Status::Created => Text::fixed("Wird versendet.", "Being sent."),
            Status::Delivered => Text::fixed(
                "An Ihren E-Mail-Anbieter übergeben.",
                "Handed to your e-mail provider.",
            ),
            Status::TemporaryFailure => Text::fixed(
                "Noch nicht zugestellt; wir versuchen es weiter.",
                "Not delivered yet; we keep trying.",
            ),
            Status::PermanentFailure => Text::fixed(
                "Ihre E-Mail-Adresse hat die Nachricht abgelehnt.",
                "Your e-mail address refused the message.",
            ),
            Status::TechnicalFailure => Text::fixed(
                "Die Nachricht konnte nicht versendet werden.",
                "The message could not be sent.",
            ),
        }
    }
}
