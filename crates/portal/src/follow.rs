//! Following: the visitor's applications, each with its business status and timeline, deadlines, open information
//! requests (answered here with data and documents), the receipt, paying the fee through the Paypage and coming
//! back from it, and withdrawing.

use actix_multipart::Multipart;
use actix_web::http::StatusCode;
use actix_web::web::{Bytes, Data};
use actix_web::{HttpRequest, HttpResponse};
use amtsweg_kernel::http::Path;
use amtsweg_payment::model::State;
use reqwest::Method;
use serde_json::{Value, json};

use crate::Portal;
use crate::api::{Body, Call, Problem};
use crate::apply::{draft_page, fetch, procedure_of};
use crate::session::Visitor;
use crate::upload::{Target, receive, refused};
use crate::web::{
    download, field, member, member_form, message, pass_download, problem, query, render, said, see_other,
    segment, text, tri, visit,
};

pub(crate) async fn list(portal: Data<Portal>, req: HttpRequest) -> HttpResponse {
    let visitor = tri!(member(&portal, &req).await);
    let mut path = "/api/v1/applications?limit=50".to_owned();
    if let Some(cursor) = query(&visitor, "cursor") {
        path.push_str(&format!("&cursor={}", segment(&cursor)));
    }
    let page = match portal.api.get(&Call::of(&visitor), &path).await {
        Ok(page) => page,
        Err(failure) => return problem(&portal, &visitor, &failure),
    };
    let lang = visitor.lang.lang;
    let items: Vec<Value> = page["items"]
        .as_array()
        .cloned()
        .unwrap_or_default()
        .into_iter()
        .map(|mut a| {
            let title = procedure_of(&portal, &a).map(|p| p.procedure.title.get(lang).to_owned());
            a["title"] =
                json!(title.unwrap_or_else(|| a["procedure_id"].as_str().unwrap_or_default().to_owned()));
            a
        })
        .collect();
    render(
        &portal,
        &visitor,
        StatusCode::OK,
        "applications.html",
        json!({"items": items, "next_cursor": page["next_cursor"], "done": query(&visitor, "done")}),
    )
}

/// A draft shows its form; a submitted application its status, timeline, requests and payments.
pub(crate) async fn show(portal: Data<Portal>, req: HttpRequest, id: Path<String>) -> HttpResponse {
    let visitor = tri!(member(&portal, &req).await);
    let application = tri!(fetch(&portal, &visitor, &id).await);
    if application["status"] == "draft" {
        return draft_page(&portal, &visitor, StatusCode::OK, &application, &[], None);
    }
    application_page(&portal, &visitor, StatusCode::OK, &application, None).await
}

async fn application_page(
    portal: &Portal,
    visitor: &Visitor,
    status: StatusCode,
    application: &Value,
    answer_error: Option<(&str, String)>,
) -> HttpResponse {
    let lang = visitor.lang.lang;
    let id = application["id"].as_str().unwrap_or_default();
    let call = Call::of(visitor);
    let (requests_path, payments_path) = (
        format!("/api/v1/applications/{}/requests", segment(id)),
        format!("/api/v1/applications/{}/payments", segment(id)),
    );
    let (requests, payments) = futures_util::join!(
        portal.api.get(&call, &requests_path),
        portal.api.get(&call, &payments_path),
    );
    let procedure = procedure_of(portal, application);
    let title = procedure
        .as_ref()
        .map(|p| p.procedure.title.get(lang).to_owned())
        .unwrap_or_default();
    let mut requests = requests.unwrap_or_default();
    if let (Some(all), Some(procedure)) = (requests.as_array_mut(), procedure.as_ref()) {
        // The fields asked for, as form fields with the current values.
        for request in all.iter_mut() {
            let asked: Vec<String> = request["fields"]
                .as_array()
                .map(|f| {
                    f.iter()
                        .filter_map(|x| x["pointer"].as_str().map(str::to_owned))
                        .collect()
                })
                .unwrap_or_default();
            let errors: Vec<(String, String)> = match &answer_error {
                Some((request_id, message)) if request["id"] == *request_id => {
                    vec![(String::new(), message.clone())]
                }
                _ => Vec::new(),
            };
            let fields: Vec<Value> =
                crate::form::fields(&procedure.procedure, &application["data"], &[], &[], lang)
                    .into_iter()
                    .filter(|f| asked.iter().any(|p| f["pointer"] == p.as_str()))
                    .collect();
            request["form_fields"] = json!(fields);
            request["error"] = json!(errors.first().map(|(_, m)| m));
        }
    }
    let payments = payments.unwrap_or_default();
    let open_payment = payments.as_array().and_then(|all| {
        all.iter()
            .find(|p| {
                matches!(
                    p["state"].as_str(),
                    Some("initial" | "pending" | "failed" | "cancelled" | "expired")
                )
            })
            .cloned()
    });
    let paid = payments
        .as_array()
        .is_some_and(|all| all.iter().any(|p| p["state"] == "paid"));
    let waiting_for_payment = application["business_status"]["waiting_for"] == "payment";
    render(
        portal,
        visitor,
        status,
        "application.html",
        json!({
            "application": application,
            "title": title,
            "requests": requests,
            "payments": payments,
            "can_pay": waiting_for_payment && !paid,
            "open_payment": open_payment,
            "just_submitted": query(visitor, "eingereicht").is_some(),
            "done": query(visitor, "done"),
            "terminal": application["business_status"]["terminal"] == true,
        }),
    )
}

pub(crate) async fn attachment(
    portal: Data<Portal>,
    req: HttpRequest,
    ids: Path<(String, String)>,
) -> HttpResponse {
    let visitor = tri!(member(&portal, &req).await);
    let (id, attachment) = ids.into_inner();
    let path = format!(
        "/api/v1/applications/{}/attachments/{}",
        segment(&id),
        segment(&attachment)
    );
    download(&portal, &visitor, &path).await
}

pub(crate) async fn receipt(portal: Data<Portal>, req: HttpRequest, id: Path<String>) -> HttpResponse {
    let visitor = tri!(member(&portal, &req).await);
    let path = format!("/api/v1/applications/{}/receipt", segment(&id));
    match portal.api.download(&Call::of(&visitor), &path).await {
        Ok(response) => pass_download(response),
        // The receipt is made right after the submission; until it is there, the page says so.
        Err(failure) if failure.status == 409 || failure.status == 503 => said(
            &portal,
            &visitor,
            StatusCode::ACCEPTED,
            "receipt_pending",
            Some((&format!("/antraege/{}", segment(&id)), "back_to_application")),
        ),
        Err(failure) => problem(&portal, &visitor, &failure),
    }
}

/// A conflict the API reports about an application (not payable or not withdrawable now), with the way back to it.
fn conflict(portal: &Portal, visitor: &Visitor, id: &str, failure: &Problem) -> HttpResponse {
    message(
        portal,
        visitor,
        StatusCode::CONFLICT,
        &failure.title,
        failure.message(),
        Some((
            &format!("/antraege/{}", segment(id)),
            &text(visitor, "back_to_application"),
        )),
    )
}

/// Starts (or resumes) the payment and sends the browser to the Paypage.
pub(crate) async fn pay(
    portal: Data<Portal>,
    req: HttpRequest,
    id: Path<String>,
    body: Bytes,
) -> HttpResponse {
    let (visitor, form) = tri!(member_form(&portal, &req, &body).await);
    let key = field(&form, "key").unwrap_or_default().to_owned();
    let call = Call::of(&visitor).key(&key);
    let path = format!("/api/v1/applications/{}/payments", segment(&id));
    match portal.api.json(&call, Method::POST, &path, Body::None).await {
        Ok(started) => match started["redirect_url"].as_str() {
            Some(url) if url.starts_with("https://") || url.starts_with("http://") => {
                see_other(&portal, &visitor, url)
            }
            _ => see_other(&portal, &visitor, &format!("/antraege/{}", segment(&id))),
        },
        Err(failure) if failure.status == 409 || failure.status == 422 => {
            conflict(&portal, &visitor, &id, &failure)
        }
        Err(failure) => problem(&portal, &visitor, &failure),
    }
}

pub(crate) async fn withdraw(
    portal: Data<Portal>,
    req: HttpRequest,
    id: Path<String>,
    body: Bytes,
) -> HttpResponse {
    let (visitor, form) = tri!(member_form(&portal, &req, &body).await);
    if field(&form, "confirm") != Some("yes") {
        return see_other(
            &portal,
            &visitor,
            &format!(
                "/antraege/{}?done=withdraw_unconfirmed#zurueckziehen",
                segment(&id)
            ),
        );
    }
    let path = format!("/api/v1/applications/{}/withdraw", segment(&id));
    match portal
        .api
        .json(&Call::of(&visitor), Method::POST, &path, Body::None)
        .await
    {
        Ok(_) => see_other(
            &portal,
            &visitor,
            &format!("/antraege/{}?done=withdrawn", segment(&id)),
        ),
        Err(failure) if failure.status == 409 => conflict(&portal, &visitor, &id, &failure),
        Err(failure) => problem(&portal, &visitor, &failure),
    }
}

/// Answers an information request: a message, the fields asked for, and a document per type asked for.
pub(crate) async fn answer(
    portal: Data<Portal>,
    req: HttpRequest,
    ids: Path<(String, String)>,
    form: Multipart,
) -> HttpResponse {
    let visitor = tri!(member(&portal, &req).await);
    let (id, request_id) = ids.into_inner();
    let received = match receive(&portal, &visitor, form, |name, _| {
        name.starts_with("document:").then(|| Target {
            path: "/api/v1/files".to_owned(),
            fields: Vec::new(),
        })
    })
    .await
    {
        Ok(received) => received,
        Err(why) => {
            return refused(
                &portal,
                &visitor,
                why,
                &format!("/antraege/{}", segment(&id)),
                "back_to_application",
            );
        }
    };
    let application = tri!(fetch(&portal, &visitor, &id).await);
    let mut attachments = Vec::new();
    for (name, upload) in received.uploads {
        match upload {
            Ok(file) => attachments.push(json!({
                "document_type": name.trim_start_matches("document:"),
                "file_id": file["id"],
            })),
            Err(failure) => {
                let message = failure.first_message();
                return application_page(
                    &portal,
                    &visitor,
                    StatusCode::UNPROCESSABLE_ENTITY,
                    &application,
                    Some((&request_id, message)),
                )
                .await;
            }
        }
    }
    let mut answer = json!({"attachments": attachments});
    if let Some(comment) = field(&received.fields, "comment")
        .map(str::trim)
        .filter(|c| !c.is_empty())
    {
        answer["comment"] = json!(comment);
    }
    if let Some(procedure) = procedure_of(&portal, &application) {
        // Only the fields asked for are in the form; the others stay as they are.
        let asked: Vec<(String, String)> = received
            .fields
            .iter()
            .filter(|(name, _)| name.starts_with('/'))
            .cloned()
            .collect();
        if !asked.is_empty() {
            let full = crate::form::data_patch(&procedure.procedure, &asked);
            let mut patch = json!({});
            for (pointer, _) in &asked {
                if let Some(value) = full.pointer(pointer) {
                    set_pointer(&mut patch, pointer, value.clone());
                }
            }
            answer["data"] = patch;
        }
    }
    let path = format!(
        "/api/v1/applications/{}/requests/{}/answer",
        segment(&id),
        segment(&request_id)
    );
    match portal
        .api
        .json(&Call::of(&visitor), Method::POST, &path, Body::Json(answer))
        .await
    {
        Ok(_) => see_other(
            &portal,
            &visitor,
            &format!("/antraege/{}?done=answered", segment(&id)),
        ),
        Err(failure) if failure.signed_out() || failure.wants_step_up() => {
            problem(&portal, &visitor, &failure)
        }
        Err(failure) => {
            let message = failure
                .errors
                .iter()
                .map(|(_, m)| m.as_str())
                .collect::<Vec<_>>()
                .join(" ");
            let message = if message.is_empty() {
                failure.message().to_owned()
            } else {
                message
            };
            application_page(
                &portal,
                &visitor,
                StatusCode::UNPROCESSABLE_ENTITY,
                &application,
                Some((&request_id, message)),
            )
            .await
        }
    }
}

fn set_pointer(target: &mut Value, pointer: &str, value: Value) {
    let tokens: Vec<&str> = pointer.trim_start_matches('/').split('/').collect();
    let mut current = target;
    for (i, token) in tokens.iter().enumerate() {
        if !current.is_object() {
            *current = json!({});
        }
        let Some(map) = current.as_object_mut() else {
            return;
        };
        if i + 1 == tokens.len() {
            map.insert((*token).to_owned(), value);
            return;
        }
        current = map.entry((*token).to_owned()).or_insert_with(|| json!({}));
    }
}

/// Where the Paypage sends the payer back: the platform is asked for the payment's state (the redirect alone never
/// counts as paid); while it is open, the page refreshes itself (no script).
pub(crate) async fn payment_returned(
    portal: Data<Portal>,
    req: HttpRequest,
    id: Path<String>,
) -> HttpResponse {
    let visitor = tri!(visit(&portal, &req).await);
    let state = match portal.payments.refresh(&id).await {
        Ok(state) => state,
        Err(amtsweg_payment::service::PaymentError::NotFound) => {
            return render(
                &portal,
                &visitor,
                StatusCode::NOT_FOUND,
                "not_found.html",
                json!({}),
            );
        }
        Err(_) => match portal.payments.get(&id).await {
            Ok(view) => view.state,
            Err(_) => return problem(&portal, &visitor, &Problem::unavailable(visitor.lang.code())),
        },
    };
    let key = match state {
        State::Paid => "paid",
        State::Initial | State::Pending => "pending",
        State::Cancelled => "cancelled",
        State::Failed => "failed",
        State::Expired => "expired",
        State::Review => "review",
    };
    // Only a signed-in owner is linked to the application; the page itself shows nothing personal.
    let application = match &visitor.signed_in {
        Some(_) => portal
            .api
            .get(&Call::of(&visitor), &format!("/api/v1/payments/{}", segment(&id)))
            .await
            .ok()
            .and_then(|p| {
                p["owner"]
                    .as_str()
                    .and_then(|o| o.strip_prefix("application:"))
                    .map(str::to_owned)
            }),
        None => None,
    };
    let mut answer = render(
        &portal,
        &visitor,
        StatusCode::OK,
        "payment.html",
        json!({"state": key, "application": application}),
    );
    if key == "pending" {
        answer.headers_mut().insert(
            actix_web::http::header::HeaderName::from_static("refresh"),
            actix_web::http::header::HeaderValue::from_static("3"),
        );
    }
    answer
}
