//! Cursor pagination: `limit` (1–100, default 20) and an opaque `cursor`; answers carry `next_cursor` when there is
//! more. Cursors encode the sort key of the last item, so pages stay stable while items are added.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use crate::i18n::Text;
use crate::problem::{ApiError, FieldError};

pub const DEFAULT_LIMIT: u32 = 20;
pub const MAX_LIMIT: u32 = 100;

#[derive(Debug, Clone, Default, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct PageQuery {
    /// Items per page, 1–100 (default 20).
    #[param(minimum = 1, maximum = 100)]
    pub limit: Option<u32>,
    /// `next_cursor` of the previous page.
    pub cursor: Option<String>,
}

/// A checked page request: the limit is in range and the cursor decoded to the last key seen.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PageRequest {
    pub limit: usize,
    pub after: Option<String>,
}

impl PageQuery {
    pub fn parse(&self) -> Result<PageRequest, ApiError> {
        let limit = self.limit.unwrap_or(DEFAULT_LIMIT);
        if !(1..=MAX_LIMIT).contains(&limit) {
            return Err(invalid(
                "limit",
                "out_of_range",
                Text::fixed(
                    "Erlaubt sind Werte von 1 bis 100.",
                    "Allowed values are 1 to 100.",
                ),
            ));
        }
        // An empty `cursor=` is the first page, as an absent one.
        let after = match self.cursor.as_deref().filter(|c| !c.is_empty()) {
            None => None,
            Some(cursor) => Some(decode_cursor(cursor).ok_or_else(|| {
                invalid(
                    "cursor",
                    "invalid_cursor",
                    Text::fixed(
                        "Der Cursor ist ungültig; verwenden Sie next_cursor der vorigen Seite.",
                        "The cursor is invalid; use next_cursor of the previous page.",
                    ),
                )
            })?),
        };
        Ok(PageRequest {
            limit: limit as usize,
            after,
        })
    }
}

fn invalid(parameter: &str, code: &'static str, message: Text) -> ApiError {
    ApiError::bad_request(
        "invalid_query",
        Text::fixed("Ungültige Abfrageparameter.", "Invalid query parameters."),
    )
    .with_errors(vec![FieldError::at_parameter(parameter, code, message)])
}

pub fn encode_cursor(last_key: &str) -> String {
    URL_SAFE_NO_PAD.encode(format!("k:{last_key}"))
}

fn decode_cursor(cursor: &str) -> Option<String> {
    let bytes = URL_SAFE_NO_PAD.decode(cursor).ok()?;
    String::from_utf8(bytes)
        .ok()
        .filter(|key| crate::text::storable(key))?
        .strip_prefix("k:")
        .map(str::to_owned)
}

/// One page of a list.
#[derive(Debug, Serialize, ToSchema)]
pub struct Page<T> {
    pub items: Vec<T>,
    /// Pass as `cursor` to get the next page; absent on the last page.
    #[schema(nullable = false)]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub next_cursor: Option<String>,
}

impl<T> Page<T> {
    /// Builds a page from up to `limit + 1` items sorted by key: the extra item only says that there is more.
    pub fn from_overfetched(mut items: Vec<T>, limit: usize, key: impl Fn(&T) -> String) -> Page<T> {
        let next_cursor = if items.len() > limit {
            items.truncate(limit);
            items.last().map(|last| encode_cursor(&key(last)))
        } else {
            None
        };
        Page { items, next_cursor }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cursors_round_trip_and_garbage_is_refused() {
        let query = PageQuery {
            limit: Some(5),
            cursor: Some(encode_cursor("hundesteuer")),
        };
        assert_eq!(
            query.parse().unwrap(),
            PageRequest {
                limit: 5,
                after: Some("hundesteuer".into())
            }
        );
        let bad = PageQuery {
            limit: None,
            cursor: Some("not a cursor".into()),
        };
        assert_eq!(bad.parse().unwrap_err().code(), "invalid_query");
        let nul = PageQuery {
            limit: None,
            cursor: Some("azoA".into()),
        };
        assert_eq!(nul.parse().unwrap_err().code(), "invalid_query");
        let too_many = PageQuery {
            limit: Some(101),
            cursor: None,
        };
        assert_eq!(
            too_many.parse().unwrap_err().errors()[0].parameter.as_deref(),
            Some("limit")
        );
    }

    #[test]
    fn a_page_knows_whether_there_is_more() {
        let page = Page::from_overfetched(vec!["a", "b", "c"], 2, |s| s.to_string());
        assert_eq!(page.items, vec!["a", "b"]);
        assert_eq!(page.next_cursor, Some(encode_cursor("b")));
        let last = Page::from_overfetched(vec!["a"], 2, |s| s.to_string());
        assert_eq!(last.next_cursor, None);
    }
}
