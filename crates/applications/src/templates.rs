//! Mails about applications: they say that there is news in the account and never carry form content.

use amtsweg_kernel::{Lang, Text};

/// The templates workflows may name in `notify:`.
pub const NOTICES: [&str; 9] = [
    "quittung",
    "eingang",
    "zahlung_ausstehend",
    "zahlung_eingegangen",
    "rueckfrage",
    "nachforderung",
    "eingestellt",
    "angebot",
    "entscheidung",
];

/// Subject and body of the notice `template` about case `case_number`.
pub fn notice(template: &str, lang: Lang, case_number: &str, procedure: &Text) -> (String, String) {
    let title = procedure.get(lang);
    let (de, en) = match template {
        "quittung" => (
            "Ihre Eingangsbestätigung liegt in Ihrem Konto bereit.",
            "Your receipt is ready in your account.",
        ),
        "eingang" => (
            "Ihr Antrag ist eingegangen.",
            "Your application has been received.",
        ),
        "zahlung_ausstehend" => (
            "Für Ihren Antrag ist eine Gebühr zu bezahlen. Sie können sie in Ihrem Konto online bezahlen; bearbeitet wird der Antrag, sobald die Zahlung eingegangen ist.",
            "A fee is due for your application. You can pay it online in your account; the application is processed once the payment has arrived.",
        ),
        "zahlung_eingegangen" => (
            "Ihre Zahlung ist eingegangen. Ihr Antrag wird nun bearbeitet.",
            "Your payment has arrived. Your application is now being processed.",
        ),
        "rechnung" => (
            "Mit der Entscheidung über Ihren Antrag ist eine Gebühr festgesetzt. Sie können sie in Ihrem Konto online bezahlen oder unter Angabe des Kassenzeichens überweisen.",
            "A fee was set with the decision on your application. You can pay it online in your account or by transfer quoting the Kassenzeichen.",
        ),
        "zahlung_bestaetigt" => (
            "Ihre Zahlung ist eingegangen. Vielen Dank.",
            "Your payment has arrived. Thank you.",
        ),
        "rueckfrage" => (
            "Die Behörde hat eine Rückfrage zu Ihrem Antrag.",
            "The authority has a question about your application.",
        ),
        "nachforderung" => (
            "Die Behörde bittet um weitere Unterlagen.",
            "The authority asks for further documents.",
        ),
        "eingestellt" => (
            "Ihr Antrag wurde eingestellt, weil die Gebühr nicht bezahlt wurde.",
            "Your application was discontinued because the fee was not paid.",
        ),
        "erinnerung" => (
            "Erinnerung: Eine Frist zu Ihrem Antrag endet in wenigen Tagen. Bitte sehen Sie in Ihrem Konto nach.",
            "Reminder: a deadline on your application ends in a few days. Please check your account.",
        ),
        "angebot" => (
            "Sie haben ein Angebot zu Ihrem Antrag erhalten.",
            "You have received an offer about your application.",
        ),
        "fristverlaengerung" => (
            "Die Behörde hat die Frist für die Entscheidung über Ihren Antrag verlängert. Die Begründung finden Sie im Verlauf Ihres Antrags.",
            "The authority has extended the period for deciding on your application. The reasons are in your application's history.",
        ),
        "genehmigungsfiktion" => (
            "Über Ihren Antrag wurde nicht innerhalb der Frist entschieden: Die Genehmigung gilt als erteilt (§ 42a VwVfG). Auf Verlangen bescheinigt Ihnen die Behörde dies schriftlich.",
            "Your application was not decided within the period: the approval is deemed granted (§ 42a VwVfG). On request, the authority certifies this in writing.",
        ),
        _ => (
            "Es gibt Neuigkeiten zu Ihrem Antrag.",
            "There is news about your application.",
        ),
    };
    match lang {
        Lang::De => (
            format!("{title} – Aktenzeichen {case_number}"),
            format!(
                "Guten Tag,\n\n{de}\n\nLeistung: {title}\nAktenzeichen: {case_number}\n\nDie Einzelheiten finden Sie in Ihrem Konto.\n\nDiese Nachricht wurde automatisch erstellt.\n"
            ),
        ),
        Lang::En => (
            format!("{title} – case number {case_number}"),
            format!(
                "Hello,\n\n{en}\n\nService: {title}\nCase number: {case_number}\n\nThe details are in your account.\n\nThis message was generated automatically.\n"
            ),
        ),
    }
}
