//! The pages of the public catalogue.

use actix_web::http::StatusCode;
use actix_web::http::header::{CACHE_CONTROL, CONTENT_TYPE};
use actix_web::{HttpRequest, HttpResponse, web};
use amtsweg_catalogue::{ListFilter, LoadedProcedure};
use amtsweg_kernel::pagination::PageRequest;
use amtsweg_kernel::{Cents, Lang, TrustLevel};
use serde_json::{Value, json};

use crate::Portal;
use crate::web::{render, tri, visit};

const STYLESHEET: &str = include_str!("../assets/portal.css");
const SCRIPT: &str = include_str!("../assets/portal.js");

fn trust_key(level: TrustLevel) -> &'static str {
    match level {
        TrustLevel::Basic => "trust_basic",
        TrustLevel::Substantial => "trust_substantial",
        TrustLevel::High => "trust_high",
    }
}

fn summary(p: &LoadedProcedure, lang: Lang) -> Value {
    let d = &p.procedure;
    json!({
        "id": d.id,
        "title": d.title.get(lang),
        "description": d.description.get(lang),
        "unit": d.unit.name.get(lang),
        "trust_key": trust_key(d.trust_level),
        "target_days": d.processing.target_days,
    })
}

fn query_value(req: &HttpRequest, name: &str) -> Option<String> {
    form_urlencoded::parse(req.query_string().as_bytes())
        .find(|(key, _)| key == name)
        .map(|(_, v)| {
            v.chars()
                .filter(|c| !c.is_control())
                .take(200)
                .collect::<String>()
        })
        .filter(|v| !v.trim().is_empty())
}

/// The start page: the catalogue, searchable by words and office.
pub(crate) async fn index(portal: web::Data<Portal>, req: HttpRequest) -> HttpResponse {
    let visitor = tri!(visit(&portal, &req).await);
    let lang = visitor.lang;
    let words = query_value(&req, "q");
    let unit = query_value(&req, "unit");
    let catalogue = portal.catalogue.catalogue();
    let mut units: Vec<(String, String)> = catalogue
        .iter()
        .map(|p| {
            (
                p.procedure.unit.id.clone(),
                p.procedure.unit.name.get(lang.lang).to_owned(),
            )
        })
        .collect();
    units.sort_by(|a, b| a.1.cmp(&b.1));
    units.dedup();
    let filter = ListFilter {
        text: words.clone(),
        unit: unit.clone(),
        ..ListFilter::default()
    };
    let found = catalogue.list(
        &filter,
        &PageRequest {
            limit: 100,
            after: None,
        },
    );
    let results: Vec<Value> = found.items.iter().map(|p| summary(p, lang.lang)).collect();
    render(
        &portal,
        &visitor,
        StatusCode::OK,
        "index.html",
        json!({
            "words": words.unwrap_or_default(),
            "unit": unit.unwrap_or_default(),
            "units": units.iter().map(|(id, name)| json!({"id": id, "name": name})).collect::<Vec<_>>(),
            "results": results,
            "searched": !req.query_string().is_empty(),
        }),
    )
}

/// A procedure's page: what it is, who decides, what it needs and costs, and how long it takes.
pub(crate) async fn procedure(portal: web::Data<Portal>, req: HttpRequest) -> HttpResponse {
    let visitor = tri!(visit(&portal, &req).await);
    let lang = visitor.lang;
    let id = req.match_info().get("id").unwrap_or_default().to_owned();
    let Some(p) = portal.catalogue.catalogue().get(&id) else {
        return render(
            &portal,
            &visitor,
            StatusCode::NOT_FOUND,
            "not_found.html",
            json!({}),
        );
    };
    let d = &p.procedure;
    let documents: Vec<Value> = d
        .documents
        .iter()
        .map(|doc| json!({"name": doc.name.get(lang.lang), "required": doc.required}))
        .collect();
    let fees: Vec<Value> = d
        .fees
        .iter()
        .map(|rule| {
            let amount = match rule {
                amtsweg_catalogue::domain::procedure::FeeRule::Fixed { amount_cents, .. } => {
                    Cents::new(*amount_cents).map(|c| c.display(lang.lang))
                }
                _ => None,
            };
            json!({"description": rule.description().get(lang.lang), "amount": amount})
        })
        .collect();
    let mut context = summary(&p, lang.lang);
    context["authority"] = json!(d.authority.name.get(lang.lang));
    context["documents"] = json!(documents);
    context["fees"] = json!(fees);
    context["written_form"] = json!(d.written_form);
    context["prefill"] = json!(prefill_attributes(d));
    // A member of organisations applies for them too.
    if visitor.signed_in.is_some()
        && let Ok(organisations) = portal
            .api
            .get(&crate::api::Call::of(&visitor), "/api/v1/organisations")
            .await
    {
        context["organisations"] = organisations;
    }
    render(
        &portal,
        &visitor,
        StatusCode::OK,
        "procedure.html",
        json!({"procedure": context}),
    )
}

/// The stylesheet, cached for a day (its URL changes with the binary's version when it changes).
pub(crate) async fn stylesheet() -> HttpResponse {
    HttpResponse::Ok()
        .insert_header((CONTENT_TYPE, "text/css; charset=utf-8"))
        .insert_header((CACHE_CONTROL, "public, max-age=86400"))
        .insert_header(("x-content-type-options", "nosniff"))
        .body(STYLESHEET)
}

/// The small script of progressive enhancement (focus on the error summary, confirmations); cached for a day.
pub(crate) async fn script() -> HttpResponse {
    HttpResponse::Ok()
        .insert_header((CONTENT_TYPE, "text/javascript; charset=utf-8"))
        .insert_header((CACHE_CONTROL, "public, max-age=86400"))
        .insert_header(("x-content-type-options", "nosniff"))
        .body(SCRIPT)
}

/// The profile attributes a procedure fills its form from (`address.street` → `address`), each once.
pub(crate) fn prefill_attributes(procedure: &amtsweg_catalogue::domain::procedure::Procedure) -> Vec<String> {
    let mut attributes: Vec<String> = procedure
        .prefill
        .values()
        .map(|attribute| attribute.split('.').next().unwrap_or(attribute).to_owned())
        .collect();
    attributes.sort();
    attributes.dedup();
    attributes
}
