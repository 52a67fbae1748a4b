//! The portal's language and its texts.

use actix_web::HttpRequest;
use actix_web::http::header::{ACCEPT_LANGUAGE, COOKIE};
use amtsweg_kernel::Lang;
use serde_json::{Map, Value, json};

/// The language of a page: `?lang=`, then the remembered choice (cookie `lang`), then `Accept-Language`, else
/// German.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PortalLang {
    pub lang: Lang,
    /// Chosen by `?lang=` on this request (to be remembered).
    pub chosen: bool,
}

fn parse(code: &str) -> Option<Lang> {
    match code.trim().get(..2).map(str::to_ascii_lowercase).as_deref() {
        Some("de") => Some(Lang::De),
        Some("en") => Some(Lang::En),
        _ => None,
    }
}

impl PortalLang {
    pub fn of(req: &HttpRequest) -> PortalLang {
        let query = req.query_string();
        if let Some(lang) = query
            .split('&')
            .filter_map(|pair| pair.strip_prefix("lang="))
            .find_map(parse)
        {
            return PortalLang { lang, chosen: true };
        }
        let cookie = req
            .headers()
            .get(COOKIE)
            .and_then(|v| v.to_str().ok())
            .and_then(|cookies| {
                cookies
                    .split(';')
                    .filter_map(|c| c.trim().strip_prefix("lang="))
                    .find_map(parse)
            });
        let accepted = || {
            req.headers()
                .get(ACCEPT_LANGUAGE)
                .and_then(|v| v.to_str().ok())
                .and_then(|v| {
                    v.split(',')
                        .find_map(|part| parse(part.split(';').next().unwrap_or_default()))
                })
        };
        PortalLang {
            lang: cookie.or_else(accepted).unwrap_or(Lang::De),
            chosen: false,
        }
    }

    pub fn code(self) -> &'static str {
        match self.lang {
            Lang::De => "de",
            Lang::En => "en",
        }
    }
}

/// Every text of the portal's pages, (key, German, English).
const TEXTS: &[(&str, &str, &str)] = &[
    (
        "site",
        "Amtsweg – Onlinedienste der Stadt",
        "Amtsweg – the city's online services",
    ),
    ("skip", "Zum Inhalt springen", "Skip to content"),
    ("other_language", "English", "Deutsch"),
    ("other_language_code", "en", "de"),
    (
        "other_language_label",
        "This page in English",
        "Diese Seite auf Deutsch",
    ),
    ("search_title", "Leistungen suchen", "Find a service"),
    ("search_words", "Suchbegriffe", "Search terms"),
    (
        "search_words_help",
        "z. B. Hund, Gewerbe, Parken",
        "e.g. dog, business, parking",
    ),
    ("search_unit", "Zuständige Stelle", "Responsible office"),
    ("search_any_unit", "Alle Stellen", "All offices"),
    ("search_submit", "Suchen", "Search"),
    ("results", "Ergebnisse", "Results"),
    (
        "no_results",
        "Keine Leistung gefunden. Bitte andere Suchbegriffe versuchen.",
        "No service found. Please try other search terms.",
    ),
    ("found_one", "1 Leistung gefunden", "1 service found"),
    ("found_many", "Leistungen gefunden", "services found"),
    ("office", "Zuständig", "Responsible"),
    (
        "trust_level",
        "Erforderliches Vertrauensniveau",
        "Trust level required",
    ),
    (
        "trust_basic",
        "niedrig (Benutzername und Passwort)",
        "basic (user name and password)",
    ),
    (
        "trust_substantial",
        "substanziell (mit zweitem Faktor)",
        "substantial (with a second factor)",
    ),
    ("trust_high", "hoch (Online-Ausweis)", "high (eID card)"),
    (
        "processing_time",
        "Übliche Bearbeitungszeit",
        "Usual processing time",
    ),
    ("days", "Tage", "days"),
    ("documents", "Erforderliche Unterlagen", "Documents required"),
    (
        "documents_none",
        "Keine Unterlagen erforderlich.",
        "No documents required.",
    ),
    ("optional", "freiwillig", "optional"),
    ("fees", "Gebühren", "Fees"),
    ("fees_none", "Gebührenfrei.", "Free of charge."),
    (
        "written_form",
        "Dieser Antrag ersetzt die Schriftform: Sie brauchen zum Absenden den Online-Ausweis.",
        "This application replaces the written form: you need the eID card to submit it.",
    ),
    ("apply", "Jetzt beantragen", "Apply now"),
    (
        "apply_soon",
        "Die Antragstellung im Portal folgt in Kürze; bis dahin steht die Programmierschnittstelle zur Verfügung.",
        "Applying in the portal follows shortly; until then the programming interface is available.",
    ),
    ("back", "Zurück zur Suche", "Back to the search"),
    ("not_found_title", "Seite nicht gefunden", "Page not found"),
    (
        "not_found_text",
        "Diese Seite gibt es nicht. Vielleicht hilft die Suche nach Leistungen.",
        "This page does not exist. The search for services may help.",
    ),
    (
        "footer_api",
        "Programmierschnittstelle (API)",
        "Programming interface (API)",
    ),
];

/// The texts of a page in `lang`, for the templates (`t.key`).
pub fn texts(lang: Lang) -> Value {
    let mut map = Map::new();
    for (key, de, en) in TEXTS {
        map.insert((*key).to_owned(), json!(if lang == Lang::De { de } else { en }));
    }
    Value::Object(map)
}
