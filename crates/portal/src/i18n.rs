//! The portal's language and its texts.

use actix_web::HttpRequest;
use actix_web::http::header::{ACCEPT_LANGUAGE, COOKIE};
use amtsweg_kernel::Lang;
use std::collections::BTreeMap;
use std::sync::LazyLock;

use amtsweg_kernel::{Cents, Timestamp};
use minijinja::State;
use serde_json::{Map, Value};

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

#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct Entry {
    de: String,
    en: String,
}

/// The texts of both languages, read once from `texts.yaml` (embedded).
static TEXTS: LazyLock<[Value; 2]> = LazyLock::new(|| {
    let entries: BTreeMap<String, Entry> = match serde_yaml_ng::from_str(include_str!("../texts.yaml")) {
        Ok(entries) => entries,
        Err(err) => {
            tracing::error!(error = %err, "the portal's texts cannot be read");
            BTreeMap::new()
        }
    };
    let (mut de, mut en) = (Map::new(), Map::new());
    for (key, entry) in entries {
        de.insert(key.clone(), Value::String(entry.de));
        en.insert(key, Value::String(entry.en));
    }
    [Value::Object(de), Value::Object(en)]
});

/// The texts of a page in `lang`, for the templates (`t.key`).
pub fn texts(lang: Lang) -> &'static Value {
    match lang {
        Lang::De => &TEXTS[0],
        Lang::En => &TEXTS[1],
    }
}

fn lang_of(state: &State) -> Lang {
    match state.lookup("lang").as_ref().and_then(|v| v.as_str()) {
        Some("en") => Lang::En,
        _ => Lang::De,
    }
}

fn berlin(value: &str) -> Option<chrono::NaiveDateTime> {
    let at = Timestamp::parse_rfc3339(value)?;
    Some(amtsweg_workflow::deadline::berlin_time(at.utc().naive_utc()))
}

/// An instant (RFC 3339) as people read it in Germany's time: `1.12.2026, 14:05 Uhr` or `1 December 2026, 14:05`.
pub fn datetime(state: &State, value: String) -> String {
    match berlin(&value) {
        Some(local) => match lang_of(state) {
            Lang::De => format!("{}, {} Uhr", local.format("%-d.%-m.%Y"), local.format("%H:%M")),
            Lang::En => format!("{}, {}", local.format("%-d %B %Y"), local.format("%H:%M")),
        },
        None => value,
    }
}

/// A calendar day (`2026-12-01` or an instant) in the language's convention: `1.12.2026` or `1 December 2026`.
pub fn date(state: &State, value: String) -> String {
    let day = chrono::NaiveDate::parse_from_str(value.get(..10).unwrap_or(&value), "%Y-%m-%d")
        .ok()
        .or_else(|| berlin(&value).map(|local| local.date()));
    match (day, lang_of(state)) {
        (Some(day), Lang::De) => day.format("%-d.%-m.%Y").to_string(),
        (Some(day), Lang::En) => day.format("%-d %B %Y").to_string(),
        (None, _) => value,
    }
}

/// Euro cents as an amount: `61,40 €` or `€61.40`.
pub fn euro(state: &State, cents: i64) -> String {
    Cents::new(cents).map_or_else(|| cents.to_string(), |c| c.display(lang_of(state)))
}

/// A size in bytes: `1,2 MB` or `1.2 MB`.
pub fn bytes(state: &State, size: i64) -> String {
    #[allow(clippy::cast_precision_loss, reason = "a size shown to one decimal")]
    let (value, unit) = if size >= 1_000_000 {
        (size as f64 / 1_000_000.0, "MB")
    } else if size >= 1_000 {
        (size as f64 / 1_000.0, "kB")
    } else {
        return format!("{size} B");
    };
    let text = format!("{value:.1} {unit}");
    match lang_of(state) {
        Lang::De => text.replace('.', ","),
        Lang::En => text,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_text_is_there_in_both_languages() {
        let (de, en) = (
            texts(Lang::De).as_object().unwrap(),
            texts(Lang::En).as_object().unwrap(),
        );
        assert!(de.len() > 100, "texts.yaml is read");
        for (key, value) in de {
            assert!(!value.as_str().unwrap().trim().is_empty(), "{key} (de)");
            assert!(!en[key].as_str().unwrap().trim().is_empty(), "{key} (en)");
        }
    }
}
