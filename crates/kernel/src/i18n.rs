//! German and English texts. German is the default; a client picks English with `?lang=en` or `Accept-Language`.

use std::borrow::Cow;
use std::future::{Ready, ready};

use actix_web::{FromRequest, HttpRequest, dev::Payload, http::header::ACCEPT_LANGUAGE};
use diesel::backend::Backend;
use diesel::deserialize::{self, FromSql};
use diesel::serialize::{self, Output, ToSql};
use diesel::sql_types::Text as SqlText;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::input::FieldType;
use crate::problem::FieldError;

/// The languages the service speaks; stored as its code (`de`, `en`) in text columns.
#[derive(
    Debug,
    Clone,
    Copy,
    PartialEq,
    Eq,
    Hash,
    Default,
    Serialize,
    Deserialize,
    ToSchema,
    diesel::AsExpression,
    diesel::FromSqlRow,
)]
#[serde(rename_all = "lowercase")]
#[diesel(sql_type = SqlText)]
pub enum Lang {
    #[default]
    De,
    En,
}

impl Lang {
    pub fn code(self) -> &'static str {
        match self {
            Lang::De => "de",
            Lang::En => "en",
        }
    }

    fn from_tag(tag: &str) -> Option<Lang> {
        let primary = tag.split(['-', '_']).next()?.trim();
        if primary.eq_ignore_ascii_case("de") {
            Some(Lang::De)
        } else if primary.eq_ignore_ascii_case("en") {
            Some(Lang::En)
        } else {
            None
        }
    }

    /// The language of a request: an explicit `lang` query parameter wins, then the best-weighted supported entry of
    /// `Accept-Language`, then German.
    pub fn of_request(req: &HttpRequest) -> Lang {
        let from_query = req
            .query_string()
            .split('&')
            .filter_map(|pair| pair.split_once('='))
            .find(|(key, _)| *key == "lang")
            .and_then(|(_, value)| Lang::from_tag(value));
        if let Some(lang) = from_query {
            return lang;
        }
        req.headers()
            .get(ACCEPT_LANGUAGE)
            .and_then(|value| value.to_str().ok())
            .and_then(Lang::from_accept_language)
            .unwrap_or_default()
    }

    /// Picks the supported language with the highest `q` (first wins on ties); `None` when neither is acceptable.
    pub fn from_accept_language(header: &str) -> Option<Lang> {
        let mut best: Option<(Lang, f32)> = None;
        for entry in header.split(',') {
            let mut parts = entry.split(';');
            let Some(lang) = parts.next().and_then(|tag| Lang::from_tag(tag.trim())) else {
                continue;
            };
            let q = parts
                .filter_map(|param| param.trim().strip_prefix("q="))
                .find_map(|q| q.trim().parse::<f32>().ok())
                .unwrap_or(1.0);
            if q > 0.0 && best.is_none_or(|(_, best_q)| q > best_q) {
                best = Some((lang, q));
            }
        }
        best.map(|(lang, _)| lang)
    }
}

/// Exactly `de` or `en` (for command lines and configuration; requests use [`Lang::of_request`]).
impl std::str::FromStr for Lang {
    type Err = String;

    fn from_str(code: &str) -> Result<Lang, String> {
        match code {
            "de" => Ok(Lang::De),
            "en" => Ok(Lang::En),
            other => Err(format!("unknown language {other:?}: de or en")),
        }
    }
}

impl FieldType for Lang {
    fn invalid(pointer: &str) -> FieldError {
        FieldError::at_pointer(
            pointer,
            "not_allowed",
            Text::fixed("Erlaubt sind „de“ und „en“.", "Allowed are “de” and “en”."),
        )
    }
}

impl<DB> ToSql<SqlText, DB> for Lang
where
    DB: Backend,
    str: ToSql<SqlText, DB>,
{
    fn to_sql<'b>(&'b self, out: &mut Output<'b, '_, DB>) -> serialize::Result {
        self.code().to_sql(out)
    }
}

impl<DB> FromSql<SqlText, DB> for Lang
where
    DB: Backend,
    String: FromSql<SqlText, DB>,
{
    /// Anything but `en` reads as German, the service's default.
    fn from_sql(bytes: DB::RawValue<'_>) -> deserialize::Result<Self> {
        Ok(if String::from_sql(bytes)? == "en" {
            Lang::En
        } else {
            Lang::De
        })
    }
}

impl FromRequest for Lang {
    type Error = actix_web::Error;
    type Future = Ready<Result<Lang, actix_web::Error>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        ready(Ok(Lang::of_request(req)))
    }
}

/// A text in both languages the service speaks.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Text {
    pub de: Cow<'static, str>,
    pub en: Cow<'static, str>,
}

impl Text {
    pub const fn fixed(de: &'static str, en: &'static str) -> Text {
        Text {
            de: Cow::Borrowed(de),
            en: Cow::Borrowed(en),
        }
    }

    pub fn new(de: impl Into<String>, en: impl Into<String>) -> Text {
        Text {
            de: Cow::Owned(de.into()),
            en: Cow::Owned(en.into()),
        }
    }

    pub fn get(&self, lang: Lang) -> &str {
        match lang {
            Lang::De => &self.de,
            Lang::En => &self.en,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::Lang;

    #[test]
    fn accept_language_picks_the_best_supported_entry() {
        assert_eq!(
            Lang::from_accept_language("en-GB,en;q=0.9,de;q=0.8"),
            Some(Lang::En)
        );
        assert_eq!(
            Lang::from_accept_language("fr-FR, de;q=0.5, en;q=0.4"),
            Some(Lang::De)
        );
        assert_eq!(Lang::from_accept_language("de;q=0.2, en;q=0.7"), Some(Lang::En));
        assert_eq!(Lang::from_accept_language("fr, pl"), None);
        assert_eq!(Lang::from_accept_language("en;q=0"), None);
    }
}
