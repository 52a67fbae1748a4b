//! Streaming downloads: the stored media type, a `Content-Disposition` built from the cleaned name (RFC 6266 with
//! an ASCII fallback and `filename*`), `nosniff`, and single byte ranges.

use actix_web::http::StatusCode;
use actix_web::http::header::{
    ACCEPT_RANGES, CACHE_CONTROL, CONTENT_DISPOSITION, CONTENT_LENGTH, CONTENT_RANGE, CONTENT_TYPE, ETAG,
    HeaderValue, RANGE,
};
use actix_web::{HttpRequest, HttpResponse};
use amtsweg_kernel::{ApiError, Text};
use futures_util::StreamExt;
use object_store::{GetOptions, ObjectStore};

use crate::{FileError, FileStore, FileView, blob_path};

/// A requested byte range, resolved against the size.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Wanted {
    Whole,
    Part { start: u64, end: u64 },
    Unsatisfiable,
}

/// Reads `Range: bytes=…`: one range (`a-b`, `a-`, `-n`); anything else is answered with the whole file.
fn wanted(header: Option<&str>, size: u64) -> Wanted {
    let Some(spec) = header.and_then(|h| h.trim().strip_prefix("bytes=")) else {
        return Wanted::Whole;
    };
    if spec.contains(',') {
        return Wanted::Whole;
    }
    let Some((first, last)) = spec.trim().split_once('-') else {
        return Wanted::Whole;
    };
    let (first, last) = (first.trim(), last.trim());
    let range = match (first.parse::<u64>().ok(), last.parse::<u64>().ok()) {
        (Some(start), Some(end)) if start <= end => Some((start, end.min(size.saturating_sub(1)))),
        (Some(start), None) if last.is_empty() => Some((start, size.saturating_sub(1))),
        (None, Some(suffix)) if first.is_empty() && suffix > 0 => {
            Some((size.saturating_sub(suffix), size.saturating_sub(1)))
        }
        _ => return Wanted::Whole,
    };
    match range {
        Some((start, end)) if size > 0 && start < size => Wanted::Part { start, end },
        _ => Wanted::Unsatisfiable,
    }
}

/// `attachment; filename="Bescheid - Marz.pdf"; filename*=UTF-8''Bescheid%20%E2%80%93%20M%C3%A4rz.pdf`
fn disposition(name: &str) -> String {
    let ascii: String = name
        .chars()
        .map(|c| if c.is_ascii_graphic() || c == ' ' { c } else { '_' })
        .filter(|c| *c != '"' && *c != '\\')
        .collect();
    let mut encoded = String::new();
    for byte in name.bytes() {
        if byte.is_ascii_alphanumeric() || b"!#$&+-.^_`|~".contains(&byte) {
            encoded.push(char::from(byte));
        } else {
            encoded.push_str(&format!("%{byte:02X}"));
        }
    }
    format!("attachment; filename=\"{ascii}\"; filename*=UTF-8''{encoded}")
}

/// Answers with the file's content (or the requested part of it).
pub async fn download(
    store: &FileStore,
    req: &HttpRequest,
    file: &FileView,
) -> Result<HttpResponse, FileError> {
    let size = u64::try_from(file.size).unwrap_or(0);
    let range = wanted(req.headers().get(RANGE).and_then(|v| v.to_str().ok()), size);
    let mut response = match range {
        Wanted::Unsatisfiable => {
            return Ok(HttpResponse::from_error(
                ApiError::new(
                    StatusCode::RANGE_NOT_SATISFIABLE,
                    "range_not_satisfiable",
                    Text::fixed(
                        "Der angefragte Bereich liegt außerhalb der Datei.",
                        "The requested range lies outside the file.",
                    ),
                )
                .with_header(
                    CONTENT_RANGE,
                    HeaderValue::from_str(&format!("bytes */{size}"))
                        .unwrap_or(HeaderValue::from_static("bytes */0")),
                ),
            ));
        }
        Wanted::Whole => HttpResponse::Ok(),
        Wanted::Part { .. } => HttpResponse::PartialContent(),
    };
    let mut options = GetOptions::new();
    let length = match range {
        Wanted::Part { start, end } => {
            options = options.with_range(Some(start..end + 1));
            response.insert_header((CONTENT_RANGE, format!("bytes {start}-{end}/{size}")));
            end + 1 - start
        }
        _ => size,
    };
    let result = store.objects.get_opts(&blob_path(&file.sha256), options).await?;
    let body = result
        .into_stream()
        .map(|chunk| chunk.map_err(actix_web::error::ErrorServiceUnavailable));
    Ok(response
        .insert_header((CONTENT_TYPE, file.media_type.clone()))
        .insert_header((CONTENT_LENGTH, length))
        .insert_header((CONTENT_DISPOSITION, disposition(&file.name)))
        .insert_header(("X-Content-Type-Options", "nosniff"))
        .insert_header((ACCEPT_RANGES, "bytes"))
        .insert_header((ETAG, format!("\"{}\"", file.sha256)))
        .insert_header((CACHE_CONTROL, "private, no-store"))
        .streaming(body))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ranges_resolve_against_the_size() {
        assert_eq!(wanted(None, 10), Wanted::Whole);
        assert_eq!(wanted(Some("bytes=0-3"), 10), Wanted::Part { start: 0, end: 3 });
        assert_eq!(wanted(Some("bytes=7-"), 10), Wanted::Part { start: 7, end: 9 });
        assert_eq!(wanted(Some("bytes=-4"), 10), Wanted::Part { start: 6, end: 9 });
        assert_eq!(wanted(Some("bytes=5-100"), 10), Wanted::Part { start: 5, end: 9 });
        assert_eq!(wanted(Some("bytes=10-"), 10), Wanted::Unsatisfiable);
        assert_eq!(wanted(Some("bytes=0-1,4-5"), 10), Wanted::Whole);
        assert_eq!(wanted(Some("items=0-1"), 10), Wanted::Whole);
    }

    #[test]
    fn dispositions_are_safe_and_keep_the_name() {
        assert_eq!(
            disposition("Bescheid – März.pdf"),
            "attachment; filename=\"Bescheid _ M_rz.pdf\"; filename*=UTF-8''Bescheid%20%E2%80%93%20M%C3%A4rz.pdf"
        );
        assert!(!disposition("a\"b.pdf").contains("a\"b"));
    }
}
