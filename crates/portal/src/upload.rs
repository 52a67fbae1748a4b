//! Forms with files (`multipart/form-data`). The CSRF token must come first; text fields are kept (up to a limit)
//! and each chosen file is streamed on to the API as it arrives — to an application's attachments or to the
//! caller's uploads — never held in memory whole. The API's upload checks (size, media type, PDF rules) apply.

use actix_multipart::Multipart;
use actix_web::HttpResponse;
use actix_web::http::StatusCode;
use actix_web::web::Bytes;
use futures_util::StreamExt;
use reqwest::Method;
use serde_json::Value;

use crate::Portal;
use crate::api::{Body, Call, Problem};
use crate::session::{Visitor, random_secret};
use crate::web::text;

/// All text fields together may not exceed this.
const TEXT_LIMIT: usize = 64 * 1024;

/// A file field's way on: the API path and the text fields that precede the file in the request.
pub(crate) struct Target {
    pub path: String,
    pub fields: Vec<(&'static str, String)>,
}

pub(crate) struct Received {
    pub fields: Vec<(String, String)>,
    /// Per file field that carried a file: the field's name and the API's answer.
    pub uploads: Vec<(String, Result<Value, Problem>)>,
}

pub(crate) enum Refused {
    /// No or a wrong CSRF token before the first file.
    Csrf,
    /// The form could not be read.
    Malformed,
}

fn quoted(text: &str) -> String {
    text.chars()
        .filter(|c| !c.is_control() && *c != '"' && *c != '\\')
        .collect()
}

/// The page for a form that could not be taken: the CSRF refusal, or a form that could not be read (with a link back).
pub(crate) fn refused(
    portal: &Portal,
    visitor: &Visitor,
    why: Refused,
    back: &str,
    back_label: &str,
) -> HttpResponse {
    match why {
        Refused::Csrf => crate::web::check_csrf(portal, visitor, None)
            .err()
            .unwrap_or_else(|| HttpResponse::Forbidden().finish()),
        Refused::Malformed => crate::web::message(
            portal,
            visitor,
            StatusCode::BAD_REQUEST,
            &text(visitor, "error_title"),
            &text(visitor, "upload_malformed"),
            Some((back, &text(visitor, back_label))),
        ),
    }
}

/// Reads a multipart form; `target` names where each file field goes, given the text fields read so far.
pub(crate) async fn receive(
    portal: &Portal,
    visitor: &Visitor,
    mut form: Multipart,
    target: impl Fn(&str, &[(String, String)]) -> Option<Target>,
) -> Result<Received, Refused> {
    let mut received = Received {
        fields: Vec::new(),
        uploads: Vec::new(),
    };
    let mut text_size = 0usize;
    let mut csrf_checked = false;
    while let Some(part) = form.next().await {
        let mut part = part.map_err(|_| Refused::Malformed)?;
        let Some(disposition) = part.content_disposition().cloned() else {
            return Err(Refused::Malformed);
        };
        let name = disposition.get_name().unwrap_or_default().to_owned();
        match disposition.get_filename().map(str::to_owned) {
            None => {
                let mut value = Vec::new();
                while let Some(chunk) = part.next().await {
                    let chunk = chunk.map_err(|_| Refused::Malformed)?;
                    text_size += chunk.len();
                    if text_size > TEXT_LIMIT {
                        return Err(Refused::Malformed);
                    }
                    value.extend_from_slice(&chunk);
                }
                let value = String::from_utf8(value).map_err(|_| Refused::Malformed)?;
                if name == "csrf" {
                    if !visitor.csrf_ok(Some(&value)) {
                        return Err(Refused::Csrf);
                    }
                    csrf_checked = true;
                }
                received.fields.push((name, value));
            }
            Some(filename) => {
                if !csrf_checked {
                    return Err(Refused::Csrf);
                }
                // An empty file input sends a part without a name and without content.
                if filename.is_empty() {
                    while part.next().await.is_some() {}
                    continue;
                }
                let Some(target) = target(&name, &received.fields) else {
                    while part.next().await.is_some() {}
                    continue;
                };
                let media_type = part
                    .content_type()
                    .map_or_else(|| "application/octet-stream".to_owned(), ToString::to_string);
                let boundary = format!("amtsweg-{}", random_secret());
                let mut head = String::new();
                for (field, value) in &target.fields {
                    head.push_str(&format!(
                        "--{boundary}\r\nContent-Disposition: form-data; name=\"{field}\"\r\n\r\n{value}\r\n"
                    ));
                }
                head.push_str(&format!(
                    "--{boundary}\r\nContent-Disposition: form-data; name=\"file\"; filename=\"{}\"\r\nContent-Type: {}\r\n\r\n",
                    quoted(&filename),
                    quoted(&media_type)
                ));
                let tail = format!("\r\n--{boundary}--\r\n");
                let (sender, receiver) = tokio::sync::mpsc::channel::<Result<Bytes, std::io::Error>>(4);
                let chunks = futures_util::stream::unfold(receiver, |mut receiver| async move {
                    receiver.recv().await.map(|item| (item, receiver))
                });
                let stream = futures_util::stream::iter([Ok(Bytes::from(head))])
                    .chain(chunks)
                    .chain(futures_util::stream::iter([Ok(Bytes::from(tail))]));
                let body = Body::Raw {
                    content_type: format!("multipart/form-data; boundary={boundary}"),
                    body: reqwest::Body::wrap_stream(stream),
                };
                let call = Call::of(visitor);
                let send = portal.api.json(&call, Method::POST, &target.path, body);
                let feed = async move {
                    while let Some(chunk) = part.next().await {
                        let item = chunk.map_err(|err| std::io::Error::other(err.to_string()));
                        let failed = item.is_err();
                        if sender.send(item).await.is_err() || failed {
                            break;
                        }
                    }
                };
                let (answer, ()) = futures_util::join!(send, feed);
                received.uploads.push((name, answer));
            }
        }
    }
    Ok(received)
}
