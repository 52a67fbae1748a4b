//! Applying: start a draft from a procedure's page, fill in the generated form (saved as a draft at every step),
//! upload the documents, review everything, and submit once — a double click or a reload sends the same
//! idempotency key, so it never submits twice.

use std::sync::Arc;

use actix_multipart::Multipart;
use actix_web::http::StatusCode;
use actix_web::web::{Bytes, Data};
use actix_web::{HttpRequest, HttpResponse};
use amtsweg_catalogue::LoadedProcedure;
use amtsweg_kernel::http::Path;
use reqwest::Method;
use serde_json::{Value, json};

use crate::Portal;
use crate::api::{Body, Call, Problem};
use crate::form;
use crate::session::{Visitor, random_secret};
use crate::upload::{Target, receive, refused};
use crate::web::{
    check_csrf, done, field, member, member_form, posted, problem, render, see_other, segment, sign_in_first,
    text, tri, visit,
};

pub(crate) async fn start(
    portal: Data<Portal>,
    req: HttpRequest,
    id: Path<String>,
    body: Bytes,
) -> HttpResponse {
    let visitor = tri!(visit(&portal, &req).await);
    if visitor.signed_in.is_none() {
        let next: String =
            form_urlencoded::byte_serialize(format!("/leistungen/{}", segment(&id)).as_bytes()).collect();
        return see_other(&portal, &visitor, &format!("/login?next={next}"));
    }
    let form = posted(&body);
    tri!(check_csrf(&portal, &visitor, field(&form, "csrf")));
    // With the citizen's consent, the procedure may fill the form from the profile.
    if field(&form, "prefill") == Some("yes")
        && let Some(procedure) = portal.catalogue.catalogue().get(id.as_str())
    {
        let attributes = crate::pages::prefill_attributes(&procedure.procedure);
        let consent =
            json!({"recipient": {"kind": "procedure", "id": id.as_str()}, "attributes": attributes});
        if let Err(failure) = portal
            .api
            .json(
                &Call::of(&visitor),
                Method::POST,
                "/api/v1/me/consents",
                Body::Json(consent),
            )
            .await
        {
            return problem(&portal, &visitor, &failure);
        }
    }
    match portal
        .api
        .json(
            &Call::of(&visitor),
            Method::POST,
            "/api/v1/applications",
            Body::Json(json!({
                "procedure_id": id.as_str(),
                "on_behalf_of": field(&form, "on_behalf_of").filter(|o| !o.is_empty()),
            })),
        )
        .await
    {
        Ok(created) => see_other(
            &portal,
            &visitor,
            &format!(
                "/antraege/{}",
                segment(created["id"].as_str().unwrap_or_default())
            ),
        ),
        Err(failure) => problem(&portal, &visitor, &failure),
    }
}

/// The application as the API shows it to its owner.
pub(crate) async fn fetch(portal: &Portal, visitor: &Visitor, id: &str) -> Result<Value, HttpResponse> {
    portal
        .api
        .get(
            &Call::of(visitor),
            &format!("/api/v1/applications/{}", segment(id)),
        )
        .await
        .map_err(|failure| problem(portal, visitor, &failure))
}

/// The application's procedure as the catalogue shows it now (labels and hints; the API checks against the
/// version the application is pinned to).
pub(crate) fn procedure_of(portal: &Portal, application: &Value) -> Option<Arc<LoadedProcedure>> {
    let id = application["procedure_id"].as_str()?;
    portal.catalogue.catalogue().get(id)
}

/// The draft's form page, with the problems to show (`errors`: pointer and message, relative to the data).
pub(crate) fn draft_page(
    portal: &Portal,
    visitor: &Visitor,
    status: StatusCode,
    application: &Value,
    errors: &[(String, String)],
    notice: Option<&str>,
) -> HttpResponse {
    let Some(procedure) = procedure_of(portal, application) else {
        return render(
            portal,
            visitor,
            StatusCode::NOT_FOUND,
            "not_found.html",
            json!({}),
        );
    };
    let lang = visitor.lang.lang;
    let d = &procedure.procedure;
    let prefilled: Vec<String> = application["prefilled"]
        .as_array()
        .map(|all| {
            all.iter()
                .filter_map(|p| p["pointer"].as_str().map(str::to_owned))
                .collect()
        })
        .unwrap_or_default();
    let fields = form::fields(d, &application["data"], &prefilled, errors, lang);
    // Problems with documents are shown at the upload form.
    let document_errors: Vec<(String, String)> = errors
        .iter()
        .filter(|(pointer, _)| pointer.starts_with("/attachments") || pointer.starts_with("/document"))
        .map(|(_, m)| ("#document_type".to_owned(), m.clone()))
        .collect();
    let unplaced: Vec<(String, String)> = errors
        .iter()
        .filter(|(pointer, _)| {
            !pointer.starts_with("/attachments")
                && !pointer.starts_with("/document")
                && !fields.iter().any(|f| {
                    let at = f["pointer"].as_str().unwrap_or_default();
                    at == pointer || at.starts_with(&format!("{pointer}/"))
                })
        })
        .map(|(_, m)| ("#form".to_owned(), m.clone()))
        .collect();
    let mut others = document_errors;
    others.extend(unplaced);
    let summary = form::summary(&fields, &others);
    let documents: Vec<Value> = d
        .documents
        .iter()
        .map(|doc| {
            let attached: Vec<&Value> = application["attachments"]
                .as_array()
                .map(|all| {
                    all.iter()
                        .filter(|a| a["document_type"] == doc.kind.as_str())
                        .collect()
                })
                .unwrap_or_default();
            json!({
                "type": doc.kind,
                "name": doc.name.get(lang),
                "required": doc.required,
                "media_types": doc.media_types.join(", "),
                "max_size": doc.max_size_bytes,
                "attached": attached,
            })
        })
        .collect();
    render(
        portal,
        visitor,
        status,
        "draft.html",
        json!({
            "application": application,
            "title": d.title.get(lang),
            "fields": fields,
            "documents": documents,
            "summary": summary,
            "notice": notice,
            "upload_error": errors.iter().find(|(p, _)| p.starts_with("/attachments") || p.starts_with("/document")).map(|(_, m)| m),
        }),
    )
}

fn problems_of(failure: &Problem) -> Vec<(String, String)> {
    if failure.errors.is_empty() {
        vec![(String::new(), failure.message().to_owned())]
    } else {
        failure.errors.clone()
    }
}

fn warnings_of(application: &Value) -> Vec<(String, String)> {
    application["warnings"]
        .as_array()
        .map(|warnings| {
            warnings
                .iter()
                .map(|w| {
                    (
                        w["pointer"].as_str().unwrap_or_default().to_owned(),
                        w["message"].as_str().unwrap_or_default().to_owned(),
                    )
                })
                .collect()
        })
        .unwrap_or_default()
}

/// Saves the form as a draft; "continue" goes on to the review when nothing is missing.
pub(crate) async fn save(
    portal: Data<Portal>,
    req: HttpRequest,
    id: Path<String>,
    body: Bytes,
) -> HttpResponse {
    let (visitor, form) = tri!(member_form(&portal, &req, &body).await);
    let application = tri!(fetch(&portal, &visitor, &id).await);
    if application["status"] != "draft" {
        return see_other(&portal, &visitor, &format!("/antraege/{}", segment(&id)));
    }
    let Some(procedure) = procedure_of(&portal, &application) else {
        return render(
            &portal,
            &visitor,
            StatusCode::NOT_FOUND,
            "not_found.html",
            json!({}),
        );
    };
    let patch = json!({"data": form::data_patch(&procedure.procedure, &form)});
    let saved = match portal
        .api
        .json(
            &Call::of(&visitor),
            Method::PATCH,
            &format!("/api/v1/applications/{}", segment(&id)),
            Body::MergePatch(patch),
        )
        .await
    {
        Ok(saved) => saved,
        Err(failure) if failure.status == 422 => {
            return draft_page(
                &portal,
                &visitor,
                StatusCode::UNPROCESSABLE_ENTITY,
                &application,
                &problems_of(&failure),
                None,
            );
        }
        Err(failure) => return problem(&portal, &visitor, &failure),
    };
    let warnings = warnings_of(&saved);
    if field(&form, "action") == Some("review") {
        if warnings.is_empty() {
            return see_other(&portal, &visitor, &format!("/antraege/{}/pruefen", segment(&id)));
        }
        return draft_page(
            &portal,
            &visitor,
            StatusCode::UNPROCESSABLE_ENTITY,
            &saved,
            &warnings,
            None,
        );
    }
    draft_page(
        &portal,
        &visitor,
        StatusCode::OK,
        &saved,
        &[],
        Some(&text(&visitor, "draft_saved")),
    )
}

/// Uploads a document to a draft (`document_type` before `file`, like the API's form).
pub(crate) async fn upload(
    portal: Data<Portal>,
    req: HttpRequest,
    id: Path<String>,
    form: Multipart,
) -> HttpResponse {
    let visitor = tri!(member(&portal, &req).await);
    let path = format!("/api/v1/applications/{}/attachments", segment(&id));
    let received = receive(&portal, &visitor, form, |name, fields| {
        (name == "file").then(|| Target {
            path: path.clone(),
            fields: vec![(
                "document_type",
                field(fields, "document_type").unwrap_or_default().to_owned(),
            )],
        })
    })
    .await;
    let received = match received {
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
    let failure = match received.uploads.into_iter().next() {
        None => Problem::field("/document", &text(&visitor, "upload_choose_file")),
        Some((_, Ok(_))) => {
            return see_other(
                &portal,
                &visitor,
                &format!("/antraege/{}#unterlagen", segment(&id)),
            );
        }
        Some((_, Err(failure))) if failure.signed_out() => return problem(&portal, &visitor, &failure),
        Some((_, Err(failure))) => failure,
    };
    let application = tri!(fetch(&portal, &visitor, &id).await);
    let message = failure.first_message();
    draft_page(
        &portal,
        &visitor,
        StatusCode::UNPROCESSABLE_ENTITY,
        &application,
        &[("/document".to_owned(), message)],
        None,
    )
}

pub(crate) async fn detach(
    portal: Data<Portal>,
    req: HttpRequest,
    ids: Path<(String, String)>,
    body: Bytes,
) -> HttpResponse {
    let (visitor, _) = tri!(member_form(&portal, &req, &body).await);
    let (id, attachment) = ids.into_inner();
    let path = format!(
        "/api/v1/applications/{}/attachments/{}",
        segment(&id),
        segment(&attachment)
    );
    match portal
        .api
        .json(&Call::of(&visitor), Method::DELETE, &path, Body::None)
        .await
    {
        Ok(_) => see_other(
            &portal,
            &visitor,
            &format!("/antraege/{}#unterlagen", segment(&id)),
        ),
        Err(failure) => problem(&portal, &visitor, &failure),
    }
}

fn review_page(
    portal: &Portal,
    visitor: &Visitor,
    status: StatusCode,
    application: &Value,
    errors: &[(String, String)],
) -> HttpResponse {
    let Some(procedure) = procedure_of(portal, application) else {
        return render(
            portal,
            visitor,
            StatusCode::NOT_FOUND,
            "not_found.html",
            json!({}),
        );
    };
    let lang = visitor.lang.lang;
    let d = &procedure.procedure;
    let id = application["id"].as_str().unwrap_or_default();
    let rows = form::review(d, &application["data"], lang);
    let summary: Vec<Value> = errors
        .iter()
        .map(|(pointer, message)| {
            let href = if pointer.starts_with("/attachments") {
                format!("/antraege/{}#unterlagen", segment(id))
            } else if pointer.is_empty() {
                "#content".to_owned()
            } else {
                format!("/antraege/{}#{}", segment(id), form::field_id(pointer))
            };
            json!({"href": href, "message": message})
        })
        .collect();
    let fees: Vec<Value> = d
        .fees
        .iter()
        .map(|rule| json!(rule.description().get(lang)))
        .collect();
    render(
        portal,
        visitor,
        status,
        "review.html",
        json!({
            "application": application,
            "title": d.title.get(lang),
            "rows": rows,
            "summary": summary,
            "fees": fees,
            "pay_first": d.payment == amtsweg_catalogue::domain::procedure::PaymentPolicy::BeforeProcessing,
            "key": random_secret(),
        }),
    )
}

pub(crate) async fn review(portal: Data<Portal>, req: HttpRequest, id: Path<String>) -> HttpResponse {
    let visitor = tri!(member(&portal, &req).await);
    let application = tri!(fetch(&portal, &visitor, &id).await);
    if application["status"] != "draft" {
        return see_other(&portal, &visitor, &format!("/antraege/{}", segment(&id)));
    }
    review_page(&portal, &visitor, StatusCode::OK, &application, &[])
}

/// Submits with the key the review page was rendered with: a second click, a reload or a retry after a lost
/// answer gets the first answer again.
pub(crate) async fn submit(
    portal: Data<Portal>,
    req: HttpRequest,
    id: Path<String>,
    body: Bytes,
) -> HttpResponse {
    let visitor = tri!(visit(&portal, &req).await);
    if visitor.signed_in.is_none() {
        return sign_in_first(&portal, &visitor);
    }
    let form = posted(&body);
    tri!(check_csrf(&portal, &visitor, field(&form, "csrf")));
    let key = field(&form, "key").unwrap_or_default().to_owned();
    let call = Call::of(&visitor).key(&key);
    let path = format!("/api/v1/applications/{}/submit", segment(&id));
    match portal.api.json(&call, Method::POST, &path, Body::None).await {
        Ok(_) => see_other(
            &portal,
            &visitor,
            &format!("/antraege/{}?eingereicht=1", segment(&id)),
        ),
        // The same submit is still running: its result is on the application's page in a moment.
        Err(failure) if failure.code == "idempotency_key_in_use" => {
            see_other(&portal, &visitor, &format!("/antraege/{}", segment(&id)))
        }
        Err(failure) if failure.wants_step_up() => {
            let next: String =
                form_urlencoded::byte_serialize(format!("/antraege/{}/pruefen", segment(&id)).as_bytes())
                    .collect();
            see_other(&portal, &visitor, &format!("/anmeldung-bestaetigen?next={next}"))
        }
        Err(failure) if failure.status == 422 || failure.status == 409 => {
            let application = tri!(fetch(&portal, &visitor, &id).await);
            if application["status"] != "draft" {
                return see_other(&portal, &visitor, &format!("/antraege/{}", segment(&id)));
            }
            review_page(
                &portal,
                &visitor,
                StatusCode::UNPROCESSABLE_ENTITY,
                &application,
                &problems_of(&failure),
            )
        }
        Err(failure) => problem(&portal, &visitor, &failure),
    }
}

pub(crate) async fn discard(
    portal: Data<Portal>,
    req: HttpRequest,
    id: Path<String>,
    body: Bytes,
) -> HttpResponse {
    let (visitor, _) = tri!(member_form(&portal, &req, &body).await);
    let path = format!("/api/v1/applications/{}", segment(&id));
    let result = portal
        .api
        .json(&Call::of(&visitor), Method::DELETE, &path, Body::None)
        .await;
    done(&portal, &visitor, result, "/antraege?done=discarded")
}
