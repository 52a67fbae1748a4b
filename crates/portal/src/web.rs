//! What every page shares: rendering with the layout's context and security headers, redirects, reading posted
//! forms, and turning an API problem into the right answer (log in, step up, not found, or the message).

use actix_web::http::StatusCode;
use actix_web::http::header::{CACHE_CONTROL, CONTENT_TYPE, LOCATION};
use actix_web::{HttpResponse, HttpResponseBuilder};
use serde_json::{Value, json};

use crate::Portal;
use crate::api::Problem;
use crate::i18n::texts;
use crate::session::{CSRF_COOKIE, Visitor};

/// No script or style from anywhere but this origin, no inline ones, no framing. Forms post to this origin; the
/// redirects after a few of them (to the Paypage, to the eID provider) lead to other sites over TLS — and, where
/// the portal itself runs without TLS (development, tests), to the simulators over plain HTTP.
pub(crate) fn content_security_policy(tls: bool) -> &'static str {
    if tls {
        "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; \
         form-action 'self' https:; frame-ancestors 'none'; base-uri 'none'"
    } else {
        "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; \
         form-action 'self' https: http:; frame-ancestors 'none'; base-uri 'none'"
    }
}

/// Early return of a finished answer: `tri!(result)` gives the value or answers the response.
macro_rules! tri {
    ($e:expr) => {
        match $e {
            Ok(value) => value,
            Err(response) => return response,
        }
    };
}
pub(crate) use tri;

fn headers(portal: &Portal, visitor: &Visitor, status: StatusCode) -> HttpResponseBuilder {
    let mut response = HttpResponseBuilder::new(status);
    response
        .insert_header((
            "content-security-policy",
            content_security_policy(portal.secure_cookies),
        ))
        .insert_header(("x-content-type-options", "nosniff"))
        .insert_header(("referrer-policy", "same-origin"))
        .insert_header(("x-frame-options", "DENY"))
        // Pages show who is logged in and carry CSRF tokens: never stored by a browser or a proxy.
        .insert_header((CACHE_CONTROL, "no-store"))
        .insert_header(("vary", "Accept-Language, Cookie"));
    if visitor.lang.chosen {
        response.cookie(
            actix_web::cookie::Cookie::build("lang", visitor.lang.code())
                .path("/")
                .max_age(actix_web::cookie::time::Duration::days(365))
                .same_site(actix_web::cookie::SameSite::Lax)
                .http_only(true)
                .secure(portal.secure_cookies)
                .finish(),
        );
    }
    if visitor.new_csrf_cookie {
        response.cookie(portal.cookie(CSRF_COOKIE, visitor.csrf.clone()));
    }
    response
}

/// A page in the layout.
pub(crate) fn render(
    portal: &Portal,
    visitor: &Visitor,
    status: StatusCode,
    template: &str,
    context: Value,
) -> HttpResponse {
    let mut context = context;
    context["t"] = texts(visitor.lang.lang).clone();
    context["lang"] = json!(visitor.lang.code());
    context["csrf"] = json!(visitor.csrf);
    context["signed_in"] = json!(visitor.signed_in.is_some());
    context["here"] = json!(visitor.here);
    context["eid"] = json!(portal.eid);
    let rendered = portal
        .templates
        .get_template(template)
        .and_then(|t| t.render(&context));
    match rendered {
        Ok(html) => headers(portal, visitor, status)
            .insert_header((CONTENT_TYPE, "text/html; charset=utf-8"))
            .insert_header(("content-language", visitor.lang.code()))
            .body(html),
        Err(err) => {
            tracing::error!(template, error = %err, "a portal page cannot be rendered");
            HttpResponse::InternalServerError()
                .insert_header((CONTENT_TYPE, "text/plain; charset=utf-8"))
                .body("Die Seite kann nicht angezeigt werden. / The page cannot be shown.")
        }
    }
}

/// A short page with a heading, a text and an optional link onward.
pub(crate) fn message(
    portal: &Portal,
    visitor: &Visitor,
    status: StatusCode,
    title: &str,
    text: &str,
    link: Option<(&str, &str)>,
) -> HttpResponse {
    render(
        portal,
        visitor,
        status,
        "message.html",
        json!({"title": title, "text": text, "link": link.map(|(href, label)| json!({"href": href, "label": label}))}),
    )
}

/// A short page whose heading and text are the portal's `{key}_title` and `{key}_text`, with an optional link
/// onward (`(href, text key)`).
pub(crate) fn said(
    portal: &Portal,
    visitor: &Visitor,
    status: StatusCode,
    key: &str,
    link: Option<(&str, &str)>,
) -> HttpResponse {
    let label = link.map(|(href, label)| (href, text(visitor, label)));
    message(
        portal,
        visitor,
        status,
        &text(visitor, &format!("{key}_title")),
        &text(visitor, &format!("{key}_text")),
        label.as_ref().map(|(href, label)| (*href, label.as_str())),
    )
}

/// A text of the portal in the visitor's language.
pub(crate) fn text(visitor: &Visitor, key: &str) -> String {
    texts(visitor.lang.lang)[key].as_str().unwrap_or(key).to_owned()
}

/// After a POST: see the next page (303), keeping the language and CSRF cookies.
pub(crate) fn see_other(portal: &Portal, visitor: &Visitor, location: &str) -> HttpResponse {
    headers(portal, visitor, StatusCode::SEE_OTHER)
        .insert_header((LOCATION, location.to_owned()))
        .finish()
}

/// A page that needs a login sends the visitor to the login page, and back afterwards.
pub(crate) fn sign_in_first(portal: &Portal, visitor: &Visitor) -> HttpResponse {
    let next: String = form_urlencoded::byte_serialize(visitor.here.as_bytes()).collect();
    see_other(portal, visitor, &format!("/login?next={next}"))
}

/// The visitor's session, or the way to the login page.
pub(crate) fn signed_in(portal: &Portal, visitor: &Visitor) -> Result<(), HttpResponse> {
    if visitor.signed_in.is_some() {
        Ok(())
    } else {
        Err(sign_in_first(portal, visitor))
    }
}

/// Only a path on this site is a place to go back to.
pub(crate) fn local_path(next: Option<&str>) -> String {
    match next {
        Some(path) if path.starts_with('/') && !path.starts_with("//") && !path.contains('\\') => {
            path.to_owned()
        }
        _ => "/antraege".to_owned(),
    }
}

/// The fields of a posted `application/x-www-form-urlencoded` body.
pub(crate) fn posted(body: &[u8]) -> Vec<(String, String)> {
    form_urlencoded::parse(body).into_owned().collect()
}

pub(crate) fn field<'a>(posted: &'a [(String, String)], name: &str) -> Option<&'a str> {
    posted
        .iter()
        .find(|(key, _)| key == name)
        .map(|(_, value)| value.as_str())
}

/// A query parameter of the request's URL.
pub(crate) fn query(visitor: &Visitor, name: &str) -> Option<String> {
    let query = visitor.here.split_once('?').map(|(_, q)| q).unwrap_or_default();
    form_urlencoded::parse(query.as_bytes())
        .find(|(key, _)| key == name)
        .map(|(_, value)| value.into_owned())
}

/// A form without this visitor's CSRF token is refused.
pub(crate) fn check_csrf(
    portal: &Portal,
    visitor: &Visitor,
    submitted: Option<&str>,
) -> Result<(), HttpResponse> {
    if visitor.csrf_ok(submitted) {
        Ok(())
    } else {
        Err(message(
            portal,
            visitor,
            StatusCode::FORBIDDEN,
            &text(visitor, "csrf_title"),
            &text(visitor, "csrf_text"),
            Some(("/", &text(visitor, "to_start"))),
        ))
    }
}

/// The database behind the portal cannot be reached.
/// (Plain text in both languages: the page layout needs the visitor, which needs the database.)
pub(crate) fn unavailable() -> HttpResponse {
    let body = "Der Dienst ist gerade nicht erreichbar. Bitte versuchen Sie es in einigen Minuten erneut. / \
                The service cannot be reached right now. Please try again in a few minutes.";
    HttpResponse::ServiceUnavailable()
        .insert_header((CONTENT_TYPE, "text/plain; charset=utf-8"))
        .insert_header(("retry-after", "30"))
        .insert_header((CACHE_CONTROL, "no-store"))
        .body(body)
}

/// The answer to an API problem that no form shows: log in again, step up, not found, or its message.
pub(crate) fn problem(portal: &Portal, visitor: &Visitor, problem: &Problem) -> HttpResponse {
    if problem.wants_step_up() {
        let next: String = form_urlencoded::byte_serialize(visitor.here.as_bytes()).collect();
        let level = match problem.acr_values.as_deref() {
            Some(level @ ("substantial" | "high")) => format!("&level={level}"),
            _ => String::new(),
        };
        return see_other(
            portal,
            visitor,
            &format!("/anmeldung-bestaetigen?next={next}{level}"),
        );
    }
    if problem.signed_out() {
        return sign_in_first(portal, visitor);
    }
    if problem.status == 404 {
        return render(
            portal,
            visitor,
            StatusCode::NOT_FOUND,
            "not_found.html",
            json!({}),
        );
    }
    let status = StatusCode::from_u16(problem.status).unwrap_or(StatusCode::BAD_GATEWAY);
    message(
        portal,
        visitor,
        status,
        &problem.title,
        problem.message(),
        Some(("/antraege", &text(visitor, "nav_applications"))),
    )
}

/// The visitor of a page that needs a login.
pub(crate) async fn member(portal: &Portal, req: &actix_web::HttpRequest) -> Result<Visitor, HttpResponse> {
    let visitor = visit(portal, req).await?;
    signed_in(portal, &visitor)?;
    Ok(visitor)
}

/// A posted form: its visitor and fields, once its CSRF token is checked.
pub(crate) async fn public_form(
    portal: &Portal,
    req: &actix_web::HttpRequest,
    body: &[u8],
) -> Result<(Visitor, Vec<(String, String)>), HttpResponse> {
    let visitor = visit(portal, req).await?;
    let form = posted(body);
    check_csrf(portal, &visitor, field(&form, "csrf"))?;
    Ok((visitor, form))
}

/// A posted form of a logged-in visitor (else the way to the login page).
pub(crate) async fn member_form(
    portal: &Portal,
    req: &actix_web::HttpRequest,
    body: &[u8],
) -> Result<(Visitor, Vec<(String, String)>), HttpResponse> {
    let visitor = member(portal, req).await?;
    let form = posted(body);
    check_csrf(portal, &visitor, field(&form, "csrf"))?;
    Ok((visitor, form))
}

/// After an action: on to `next`, or the answer to the problem.
pub(crate) fn done(
    portal: &Portal,
    visitor: &Visitor,
    result: Result<Value, Problem>,
    next: &str,
) -> HttpResponse {
    match result {
        Ok(_) => see_other(portal, visitor, next),
        Err(failure) => problem(portal, visitor, &failure),
    }
}

/// Reads the visitor, or answers that the service is unavailable.
pub(crate) async fn visit(portal: &Portal, req: &actix_web::HttpRequest) -> Result<Visitor, HttpResponse> {
    portal.visitor(req).await.map_err(|err| {
        tracing::warn!(error = %err, "the portal cannot read its sessions");
        unavailable()
    })
}

/// A file of the API for the visitor (an attachment, a document), or the answer to its problem.
pub(crate) async fn download(portal: &Portal, visitor: &Visitor, path: &str) -> HttpResponse {
    match portal.api.download(&crate::api::Call::of(visitor), path).await {
        Ok(response) => pass_download(response),
        Err(failure) => problem(portal, visitor, &failure),
    }
}

/// Passes a download of the API on to the browser (type, disposition, length and body as they came).
pub(crate) fn pass_download(response: reqwest::Response) -> HttpResponse {
    let mut answer =
        HttpResponse::build(StatusCode::from_u16(response.status().as_u16()).unwrap_or(StatusCode::OK));
    for name in [
        "content-type",
        "content-disposition",
        "content-length",
        "digest",
        "repr-digest",
        "etag",
    ] {
        if let Some(value) = response.headers().get(name)
            && let Ok(value) = value.to_str()
        {
            answer.insert_header((name, value.to_owned()));
        }
    }
    answer
        .insert_header((CACHE_CONTROL, "no-store"))
        .insert_header(("x-content-type-options", "nosniff"))
        .streaming(response.bytes_stream())
}

/// A value as one URL path segment.
pub(crate) fn segment(value: &str) -> String {
    let mut out = String::new();
    for byte in value.bytes() {
        if byte.is_ascii_alphanumeric() || byte == b'-' || byte == b'_' || byte == b'.' {
            out.push(char::from(byte));
        } else {
            out.push_str(&format!("%{byte:02X}"));
        }
    }
    out
}
