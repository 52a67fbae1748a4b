//! The pages of the public catalogue.

use actix_web::http::StatusCode;
use actix_web::http::header::{CACHE_CONTROL, CONTENT_TYPE};
use actix_web::{HttpRequest, HttpResponse, HttpResponseBuilder, web};
use amtsweg_catalogue::{ListFilter, LoadedProcedure};
use amtsweg_kernel::pagination::PageRequest;
use amtsweg_kernel::{Cents, Lang, TrustLevel};
use serde_json::{Value, json};

use crate::Portal;
use crate::i18n::{PortalLang, texts};

/// No script or style from anywhere but this origin, no inline ones, no framing.
const CSP: &str = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; \
                   form-action 'self'; frame-ancestors 'none'; base-uri 'none'";

const STYLESHEET: &str = include_str!("../assets/portal.css");

fn page(
    portal: &Portal,
    status: StatusCode,
    lang: PortalLang,
    template: &str,
    context: Value,
) -> HttpResponse {
    let mut context = context;
    context["t"] = texts(lang.lang);
    context["lang"] = json!(lang.code());
    let rendered = portal
        .templates
        .get_template(template)
        .and_then(|t| t.render(&context));
    let mut response = HttpResponseBuilder::new(status);
    response
        .insert_header((CONTENT_TYPE, "text/html; charset=utf-8"))
        .insert_header(("content-security-policy", CSP))
        .insert_header(("x-content-type-options", "nosniff"))
        .insert_header(("referrer-policy", "same-origin"))
        .insert_header(("content-language", lang.code()))
        .insert_header(("vary", "Accept-Language, Cookie"));
    if lang.chosen {
        response.insert_header((
            "set-cookie",
            format!(
                "lang={}; Path=/; Max-Age=31536000; SameSite=Lax; HttpOnly",
                lang.code()
            ),
        ));
    }
    match rendered {
        Ok(html) => response.body(html),
        Err(err) => {
            tracing_free_log(&err.to_string());
            HttpResponse::InternalServerError()
                .insert_header((CONTENT_TYPE, "text/plain; charset=utf-8"))
                .body("Die Seite kann nicht angezeigt werden. / The page cannot be shown.")
        }
    }
}

/// A template error is a programming error; it shows in the service's log through the standard error stream.
fn tracing_free_log(message: &str) {
    #[allow(clippy::print_stderr, reason = "the portal has no logger of its own yet")]
    {
        eprintln!("portal: template error: {message}");
    }
}

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
    let lang = PortalLang::of(&req);
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
    page(
        &portal,
        StatusCode::OK,
        lang,
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
    let lang = PortalLang::of(&req);
    let id = req.match_info().get("id").unwrap_or_default().to_owned();
    let Some(p) = portal.catalogue.catalogue().get(&id) else {
        return page(&portal, StatusCode::NOT_FOUND, lang, "not_found.html", json!({}));
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
    page(
        &portal,
        StatusCode::OK,
        lang,
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
