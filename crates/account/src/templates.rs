//! The texts of the account service's e-mails, in German and English. Notices never contain secrets beyond the
//! single-use link they exist for.

use amtsweg_kernel::Lang;

pub struct Mail {
    pub kind: &'static str,
    pub subject: String,
    pub body: String,
}

const SIGNATURE_DE: &str = "\n\nIhr Bürgerkonto Amtsweg\n(Diese Nachricht wurde automatisch erstellt.)";
const SIGNATURE_EN: &str = "\n\nYour Amtsweg citizen account\n(This message was generated automatically.)";

fn mail(kind: &'static str, lang: Lang, subject: (&str, &str), body: (String, String)) -> Mail {
    match lang {
        Lang::De => Mail {
            kind,
            subject: subject.0.to_owned(),
            body: format!("{}{SIGNATURE_DE}", body.0),
        },
        Lang::En => Mail {
            kind,
            subject: subject.1.to_owned(),
            body: format!("{}{SIGNATURE_EN}", body.1),
        },
    }
}

/// To an address not verified yet: fixed text only — nothing the requester typed (a name could carry a phishing
/// link into an official mail).
pub fn verify_email(lang: Lang, link: &str, token: &str, hours: i64) -> Mail {
    mail(
        "account.verify_email",
        lang,
        (
            "Bitte bestätigen Sie Ihre E-Mail-Adresse",
            "Please confirm your e-mail address",
        ),
        (
            format!(
                "Guten Tag,\n\nbitte bestätigen Sie Ihre E-Mail-Adresse für Ihr Bürgerkonto:\n\n{link}\n\nBestätigungscode: {token}\n\nDer Link gilt {hours} Stunden und nur einmal. Wenn Sie kein Konto angelegt haben, können Sie diese Nachricht ignorieren."
            ),
            format!(
                "Hello,\n\nplease confirm your e-mail address for your citizen account:\n\n{link}\n\nConfirmation code: {token}\n\nThe link is valid for {hours} hours and only once. If you did not create an account, you can ignore this message."
            ),
        ),
    )
}

pub fn already_registered(lang: Lang, reset_link: &str) -> Mail {
    mail(
        "account.already_registered",
        lang,
        (
            "Registrierungsversuch mit Ihrer E-Mail-Adresse",
            "Registration attempt with your e-mail address",
        ),
        (
            format!(
                "Guten Tag,\n\njemand hat versucht, mit Ihrer E-Mail-Adresse ein neues Bürgerkonto anzulegen. Sie haben bereits ein Konto.\n\nFalls Sie das waren und Ihr Passwort nicht mehr wissen, können Sie es hier zurücksetzen:\n{reset_link}\n\nFalls nicht, müssen Sie nichts tun."
            ),
            format!(
                "Hello,\n\nsomeone tried to create a new citizen account with your e-mail address. You already have an account.\n\nIf that was you and you have forgotten your password, you can reset it here:\n{reset_link}\n\nIf not, there is nothing you need to do."
            ),
        ),
    )
}

pub fn password_reset(lang: Lang, link: &str, token: &str, minutes: i64) -> Mail {
    mail(
        "account.password_reset",
        lang,
        ("Passwort zurücksetzen", "Reset your password"),
        (
            format!(
                "Guten Tag,\n\nüber diesen Link können Sie ein neues Passwort festlegen:\n\n{link}\n\nCode: {token}\n\nDer Link gilt {minutes} Minuten und nur einmal. Danach werden alle angemeldeten Geräte abgemeldet. Wenn Sie das nicht angefordert haben, ignorieren Sie diese Nachricht."
            ),
            format!(
                "Hello,\n\nyou can set a new password with this link:\n\n{link}\n\nCode: {token}\n\nThe link is valid for {minutes} minutes and only once. All signed-in devices will be signed out. If you did not ask for this, ignore this message."
            ),
        ),
    )
}

pub fn security_notice(lang: Lang, what: (&str, &str)) -> Mail {
    mail(
        "account.security_notice",
        lang,
        (
            "Sicherheitshinweis zu Ihrem Bürgerkonto",
            "Security notice for your citizen account",
        ),
        (
            format!(
                "Guten Tag,\n\nan Ihrem Bürgerkonto wurde gerade Folgendes geändert: {}.\n\nWenn Sie das nicht waren, setzen Sie bitte sofort Ihr Passwort zurück und wenden Sie sich an uns.",
                what.0
            ),
            format!(
                "Hello,\n\nthe following was just changed in your citizen account: {}.\n\nIf this was not you, please reset your password at once and contact us.",
                what.1
            ),
        ),
    )
}

pub fn account_deleted(lang: Lang) -> Mail {
    mail(
        "account.deleted",
        lang,
        ("Ihr Bürgerkonto wurde gelöscht", "Your citizen account has been deleted"),
        (
            "Guten Tag,\n\nIhr Bürgerkonto wurde auf Ihren Wunsch gelöscht. Daten, die wir aus rechtlichen Gründen aufbewahren müssen, bleiben bis zum Ende der jeweiligen Frist gesperrt gespeichert.".to_owned(),
            "Hello,\n\nyour citizen account has been deleted as you asked. Data we must keep for legal reasons stays stored, blocked, until its retention period ends.".to_owned(),
        ),
    )
}

pub fn inactive(lang: Lang, login_link: &str) -> Mail {
    mail(
        "account.inactive",
        lang,
        (
            "Ihr Bürgerkonto wird bald gelöscht",
            "Your citizen account will be deleted soon",
        ),
        (
            format!(
                "Guten Tag,\n\nSie haben sich seit zwei Jahren nicht mehr angemeldet. Ihr Bürgerkonto ist deshalb zur Löschung vorgemerkt. Wenn Sie es behalten möchten, melden Sie sich einfach an:\n\n{login_link}"
            ),
            format!(
                "Hello,\n\nyou have not logged in for two years, so your citizen account is marked for deletion. To keep it, simply log in:\n\n{login_link}"
            ),
        ),
    )
}

pub fn staff_welcome(lang: Lang, name: &str) -> Mail {
    mail(
        "staff.welcome",
        lang,
        ("Ihr Zugang zu Amtsweg", "Your Amtsweg access"),
        (
            format!(
                "Guten Tag {name},\n\nfür Sie wurde ein Zugang für Mitarbeitende eingerichtet. Ihr Startpasswort erhalten Sie von Ihrer Administration. Bei der ersten Anmeldung richten Sie die Zwei-Faktor-Anmeldung ein."
            ),
            format!(
                "Hello {name},\n\na staff account has been set up for you. Your administrator gives you the initial password. At your first login you set up two-factor login."
            ),
        ),
    )
}

/// No text of the inviter's (the organisation's name is theirs): only that there is something to look at.
pub fn invitation_received(lang: Lang, login_link: &str) -> Mail {
    mail(
        "account.invitation_received",
        lang,
        (
            "Neue Einladung in Ihrem Bürgerkonto",
            "New invitation in your citizen account",
        ),
        (
            format!(
                "Guten Tag,\n\nin Ihrem Bürgerkonto liegt eine neue Einladung. Melden Sie sich an, um sie anzusehen und anzunehmen oder abzulehnen:\n\n{login_link}\n\nWenn Sie keine Einladung erwarten, lehnen Sie sie einfach ab."
            ),
            format!(
                "Hello,\n\nthere is a new invitation in your citizen account. Log in to look at it and accept or decline it:\n\n{login_link}\n\nIf you are not expecting an invitation, simply decline it."
            ),
        ),
    )
}
