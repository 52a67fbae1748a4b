//! The Postfach: messages and decisions of the visitor and their organisations, opened at the level each needs (a
//! step-up when the session's is lower), attachments downloaded through the API (which records the retrieval as
//! evidence of delivery), replies, and a new message to the unit handling one of the visitor's applications.

use actix_multipart::Multipart;
use actix_web::http::StatusCode;
use actix_web::web::Data;
use actix_web::{HttpRequest, HttpResponse};
use amtsweg_kernel::http::Path;
use reqwest::Method;
use serde_json::{Value, json};

use crate::Portal;
use crate::api::{Body, Call};
use crate::session::Visitor;
use crate::upload::{Received, Target, receive, refused};
use crate::web::{download, field, member, problem, query, render, see_other, segment, text, tri};

pub(crate) async fn list(portal: Data<Portal>, req: HttpRequest) -> HttpResponse {
    let visitor = tri!(member(&portal, &req).await);
    let mut path = "/api/v1/mailbox/messages?limit=50".to_owned();
    if let Some(cursor) = query(&visitor, "cursor") {
        path.push_str(&format!("&cursor={}", segment(&cursor)));
    }
    match portal.api.get(&Call::of(&visitor), &path).await {
        Ok(page) => render(
            &portal,
            &visitor,
            StatusCode::OK,
            "postfach.html",
            json!({"items": page["items"], "next_cursor": page["next_cursor"], "done": query(&visitor, "done")}),
        ),
        Err(failure) => problem(&portal, &visitor, &failure),
    }
}

pub(crate) async fn show(portal: Data<Portal>, req: HttpRequest, id: Path<String>) -> HttpResponse {
    let visitor = tri!(member(&portal, &req).await);
    let path = format!("/api/v1/mailbox/messages/{}", segment(&id));
    match portal.api.get(&Call::of(&visitor), &path).await {
        Ok(mail) => render(
            &portal,
            &visitor,
            StatusCode::OK,
            "mail.html",
            json!({"mail": mail, "done": query(&visitor, "done")}),
        ),
        Err(failure) => problem(&portal, &visitor, &failure),
    }
}

pub(crate) async fn attachment(
    portal: Data<Portal>,
    req: HttpRequest,
    ids: Path<(String, String)>,
) -> HttpResponse {
    let visitor = tri!(member(&portal, &req).await);
    let (id, attachment) = ids.into_inner();
    let path = format!(
        "/api/v1/mailbox/messages/{}/attachments/{}",
        segment(&id),
        segment(&attachment)
    );
    download(&portal, &visitor, &path).await
}

pub(crate) async fn compose(portal: Data<Portal>, req: HttpRequest) -> HttpResponse {
    let visitor = tri!(member(&portal, &req).await);
    let application = query(&visitor, "antrag").unwrap_or_default();
    render(
        &portal,
        &visitor,
        StatusCode::OK,
        "compose.html",
        json!({"application_id": application, "values": {}, "errors": {}}),
    )
}

/// Reads a message form: text fields and an optional attachment uploaded to the caller's files.
async fn read(
    portal: &Portal,
    visitor: &Visitor,
    form: Multipart,
    back: &str,
) -> Result<Received, HttpResponse> {
    match receive(portal, visitor, form, |name, _| {
        (name == "attachment").then(|| Target {
            path: "/api/v1/files".to_owned(),
            fields: Vec::new(),
        })
    })
    .await
    {
        Ok(received) => Ok(received),
        Err(why) => Err(refused(portal, visitor, why, back, "nav_postfach")),
    }
}

/// The uploaded attachments' ids, or the message of the first upload that failed.
fn attachments(received: &Received) -> Result<Vec<Value>, String> {
    received
        .uploads
        .iter()
        .map(|(_, upload)| match upload {
            Ok(file) => Ok(file["id"].clone()),
            Err(failure) => Err(failure.first_message()),
        })
        .collect()
}

pub(crate) async fn send(portal: Data<Portal>, req: HttpRequest, form: Multipart) -> HttpResponse {
    let visitor = tri!(member(&portal, &req).await);
    let received = tri!(read(&portal, &visitor, form, "/postfach/neu").await);
    let subject = field(&received.fields, "subject")
        .unwrap_or_default()
        .trim()
        .to_owned();
    let body = field(&received.fields, "body")
        .unwrap_or_default()
        .trim()
        .to_owned();
    let application = field(&received.fields, "application_id")
        .unwrap_or_default()
        .to_owned();
    let values = json!({"subject": subject, "body": body});
    let rerender = |errors: Value, summary: Vec<Value>| {
        render(
            &portal,
            &visitor,
            StatusCode::UNPROCESSABLE_ENTITY,
            "compose.html",
            json!({"application_id": application, "values": values, "errors": errors, "summary": summary}),
        )
    };
    let files = match attachments(&received) {
        Ok(files) => files,
        Err(message) => {
            return rerender(
                json!({"attachment": message}),
                vec![json!({"href": "#attachment", "message": message})],
            );
        }
    };
    let request = json!({
        "subject": subject,
        "body": body,
        "application_id": (!application.is_empty()).then_some(&application),
        "attachments": files,
    });
    match portal
        .api
        .json(
            &Call::of(&visitor),
            Method::POST,
            "/api/v1/mailbox/messages",
            Body::Json(request),
        )
        .await
    {
        Ok(sent) => see_other(
            &portal,
            &visitor,
            &format!(
                "/postfach/{}?done=sent",
                segment(sent["id"].as_str().unwrap_or_default())
            ),
        ),
        Err(failure) if failure.signed_out() || failure.wants_step_up() => {
            problem(&portal, &visitor, &failure)
        }
        Err(failure) => {
            let mut errors = serde_json::Map::new();
            let mut summary = Vec::new();
            for (pointer, message) in &failure.errors {
                let name = pointer.trim_start_matches('/');
                let name = if ["subject", "body"].contains(&name) {
                    name
                } else {
                    "body"
                };
                errors.entry(name.to_owned()).or_insert_with(|| json!(message));
                summary.push(json!({"href": format!("#{name}"), "message": message}));
            }
            if summary.is_empty() {
                summary.push(json!({"href": "#subject", "message": failure.message()}));
            }
            rerender(Value::Object(errors), summary)
        }
    }
}

pub(crate) async fn reply(
    portal: Data<Portal>,
    req: HttpRequest,
    id: Path<String>,
    form: Multipart,
) -> HttpResponse {
    let visitor = tri!(member(&portal, &req).await);
    let back = format!("/postfach/{}", segment(&id));
    let received = tri!(read(&portal, &visitor, form, &back).await);
    let body = field(&received.fields, "body")
        .unwrap_or_default()
        .trim()
        .to_owned();
    let failed = |message: String| {
        crate::web::message(
            &portal,
            &visitor,
            StatusCode::UNPROCESSABLE_ENTITY,
            &text(&visitor, "reply_failed"),
            &message,
            Some((&back, &text(&visitor, "back_to_message"))),
        )
    };
    let files = match attachments(&received) {
        Ok(files) => files,
        Err(message) => return failed(message),
    };
    let path = format!("/api/v1/mailbox/messages/{}/reply", segment(&id));
    match portal
        .api
        .json(
            &Call::of(&visitor),
            Method::POST,
            &path,
            Body::Json(json!({"body": body, "attachments": files})),
        )
        .await
    {
        Ok(sent) => see_other(
            &portal,
            &visitor,
            &format!(
                "/postfach/{}?done=sent",
                segment(sent["id"].as_str().unwrap_or_default())
            ),
        ),
        Err(failure) if failure.signed_out() || failure.wants_step_up() || failure.status == 404 => {
            problem(&portal, &visitor, &failure)
        }
        Err(failure) => failed(failure.first_message()),
    }
}
