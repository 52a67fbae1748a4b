//! Notification mails: they say that something is in the Postfach — never what (GDPR Art. 5 (1) (c)).

use amtsweg_kernel::Lang;

/// (subject, body) of the notification that a decision was provided.
pub(crate) fn decision_provided(
    lang: Lang,
    case_number: &str,
    portal: &str,
    expires_after_days: Option<u32>,
) -> (String, String) {
    let fallback = |de: bool| match (expires_after_days, de) {
        (Some(days), true) => {
            format!("Wird er nicht innerhalb von {days} Tagen abgerufen, erhalten Sie ihn per Post.\n\n")
        }
        (Some(days), false) => {
            format!("If it is not opened within {days} days, it will be sent to you by post.\n\n")
        }
        (None, _) => String::new(),
    };
    match lang {
        Lang::De => (
            format!("Neues Dokument in Ihrem Postfach ({case_number})"),
            format!(
                "Guten Tag,\n\nzu Ihrem Antrag {case_number} liegt ein Bescheid in Ihrem Postfach zum Abruf bereit.\n\
                 Bitte melden Sie sich an, um ihn zu öffnen: {portal}/login\n\n\
                 {}Diese Nachricht wurde automatisch erstellt.",
                fallback(true)
            ),
        ),
        Lang::En => (
            format!("New document in your mailbox ({case_number})"),
            format!(
                "Hello,\n\na decision on your application {case_number} is ready in your mailbox.\n\
                 Please log in to open it: {portal}/login\n\n\
                 {}This message was generated automatically.",
                fallback(false)
            ),
        ),
    }
}

/// (subject, body) of the notification about a new message.
pub(crate) fn new_message(lang: Lang, portal: &str) -> (String, String) {
    match lang {
        Lang::De => (
            "Neue Nachricht in Ihrem Postfach".to_owned(),
            format!(
                "Guten Tag,\n\nin Ihrem Postfach liegt eine neue Nachricht.\n\
                 Bitte melden Sie sich an, um sie zu lesen: {portal}/login\n\n\
                 Diese Nachricht wurde automatisch erstellt."
            ),
        ),
        Lang::En => (
            "New message in your mailbox".to_owned(),
            format!(
                "Hello,\n\nthere is a new message in your mailbox.\n\
                 Please log in to read it: {portal}/login\n\n\
                 This message was generated automatically."
            ),
        ),
    }
}
