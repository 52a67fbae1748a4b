//! The account pages: register, verify the address, log in and out (password, TOTP, eID card), forgotten
//! password, confirm a new address, step-up, and the account overview (profile, two-factor, consents, security
//! events, export, deletion). Mail links (`/verify-email`, `/reset-password`, `/confirm-email`) only show a form on
//! GET; the token is used when the form is posted, so a mail scanner opening the link uses nothing up.

use actix_web::http::StatusCode;
use actix_web::web::{Bytes, Data};
use actix_web::{HttpRequest, HttpResponse};
use amtsweg_auth::Audience;
use amtsweg_kernel::http::Path;
use reqwest::Method;
use serde_json::{Value, json};

use crate::Portal;
use crate::api::{Body, Call, Problem};
use crate::session::{SESSION_COOKIE, Visitor};
use crate::web::{
    done, field, local_path, member, member_form, message, problem, public_form, query, render, said,
    see_other, text, tri, visit,
};

/// Field problems of an API answer as `(field name, message)`, and the rest as general messages.
fn split(problem: &Problem, fields: &[&str]) -> (Value, Vec<String>) {
    let mut at = serde_json::Map::new();
    let mut general = Vec::new();
    for (pointer, msg) in &problem.errors {
        let name = pointer.trim_start_matches('/');
        if fields.contains(&name) {
            at.entry(name.to_owned()).or_insert_with(|| json!(msg));
        } else {
            general.push(msg.clone());
        }
    }
    if at.is_empty() && general.is_empty() {
        general.push(problem.message().to_owned());
    }
    (Value::Object(at), general)
}

/// The error summary of a form: each field problem linked to its field, then the general ones.
fn summary(errors: &Value, general: &[String], order: &[&str]) -> Vec<Value> {
    let mut out: Vec<Value> = order
        .iter()
        .filter_map(|name| {
            errors
                .get(*name)
                .map(|m| json!({"href": format!("#{name}"), "message": m}))
        })
        .collect();
    out.extend(general.iter().map(|m| json!({"href": "#content", "message": m})));
    out
}

fn redirect_signed_in(portal: &Portal, visitor: &Visitor) -> Option<HttpResponse> {
    visitor
        .signed_in
        .as_ref()
        .map(|_| see_other(portal, visitor, "/antraege"))
}

const REGISTER_FIELDS: &[&str] = &["name", "email", "password"];

pub(crate) async fn register_form(portal: Data<Portal>, req: HttpRequest) -> HttpResponse {
    let visitor = tri!(visit(&portal, &req).await);
    if let Some(answer) = redirect_signed_in(&portal, &visitor) {
        return answer;
    }
    render(
        &portal,
        &visitor,
        StatusCode::OK,
        "register.html",
        json!({"values": {}, "errors": {}}),
    )
}

pub(crate) async fn register(portal: Data<Portal>, req: HttpRequest, body: Bytes) -> HttpResponse {
    let (visitor, form) = tri!(public_form(&portal, &req, &body).await);
    let values = json!({
        "name": field(&form, "name").unwrap_or_default(),
        "email": field(&form, "email").unwrap_or_default(),
    });
    let request = json!({
        "name": field(&form, "name").unwrap_or_default(),
        "email": field(&form, "email").unwrap_or_default(),
        "password": field(&form, "password").unwrap_or_default(),
        "preferred_language": visitor.lang.code(),
    });
    match portal
        .api
        .json(
            &Call::of(&visitor),
            Method::POST,
            "/api/v1/accounts",
            Body::Json(request),
        )
        .await
    {
        Ok(_) => said(&portal, &visitor, StatusCode::OK, "register_sent", None),
        Err(failure) => {
            let (errors, general) = split(&failure, REGISTER_FIELDS);
            let summary = summary(&errors, &general, REGISTER_FIELDS);
            render(
                &portal,
                &visitor,
                StatusCode::UNPROCESSABLE_ENTITY,
                "register.html",
                json!({"values": values, "errors": errors, "summary": summary}),
            )
        }
    }
}

/// A form that posts the code of a mail link: `/verify-email`, `/reset-password`, `/confirm-email`.
fn token_form(
    portal: &Portal,
    visitor: &Visitor,
    status: StatusCode,
    kind: &str,
    token: &str,
    error: Option<&str>,
) -> HttpResponse {
    let summary: Vec<Value> = error
        .map(|m| vec![json!({"href": "#token", "message": m})])
        .unwrap_or_default();
    render(
        portal,
        visitor,
        status,
        "token_form.html",
        json!({"kind": kind, "token": token, "error": error, "summary": summary}),
    )
}

pub(crate) async fn verify_form(portal: Data<Portal>, req: HttpRequest) -> HttpResponse {
    let visitor = tri!(visit(&portal, &req).await);
    let token = query(&visitor, "token").unwrap_or_default();
    token_form(&portal, &visitor, StatusCode::OK, "verify", &token, None)
}

pub(crate) async fn verify(portal: Data<Portal>, req: HttpRequest, body: Bytes) -> HttpResponse {
    let (visitor, form) = tri!(public_form(&portal, &req, &body).await);
    use_code(
        &portal,
        &visitor,
        &form,
        ("verify", "/api/v1/accounts/verify-email"),
        ("verified", ("/login", "nav_login")),
    )
    .await
}

/// Posts the code of a mail link to the API: the page that says it worked, or the form again with the problem.
async fn use_code(
    portal: &Portal,
    visitor: &Visitor,
    form: &[(String, String)],
    (kind, path): (&str, &str),
    (said_key, link): (&str, (&str, &str)),
) -> HttpResponse {
    let token = field(form, "token").unwrap_or_default().trim().to_owned();
    match portal
        .api
        .json(
            &Call::of(visitor),
            Method::POST,
            path,
            Body::Json(json!({"token": token})),
        )
        .await
    {
        Ok(_) => said(portal, visitor, StatusCode::OK, said_key, Some(link)),
        Err(failure) if failure.signed_out() || failure.wants_step_up() => problem(portal, visitor, &failure),
        Err(failure) => token_form(
            portal,
            visitor,
            StatusCode::UNPROCESSABLE_ENTITY,
            kind,
            &token,
            Some(failure.message()),
        ),
    }
}

pub(crate) async fn login_form(portal: Data<Portal>, req: HttpRequest) -> HttpResponse {
    let visitor = tri!(visit(&portal, &req).await);
    if let Some(answer) = redirect_signed_in(&portal, &visitor) {
        return answer;
    }
    let next = local_path(query(&visitor, "next").as_deref());
    render(
        &portal,
        &visitor,
        StatusCode::OK,
        "login.html",
        json!({"next": next, "values": {}, "errors": {}}),
    )
}

/// Opens the browser session for the tokens of a login and sends the visitor on.
async fn signed_in_to(portal: &Portal, visitor: &Visitor, tokens: &Value, next: &str) -> HttpResponse {
    let token = tokens["access_token"].as_str().unwrap_or_default();
    let Ok(claims) = portal.auth.verify(token, Audience::Citizen).await else {
        return problem(portal, visitor, &unreadable(visitor));
    };
    let Some(session_id) = claims.sid else {
        return problem(portal, visitor, &unreadable(visitor));
    };
    match portal.open(&session_id, Some(visitor)).await {
        Ok(secret) => {
            let mut answer = see_other(portal, visitor, next);
            let _ = answer.add_cookie(&portal.cookie(SESSION_COOKIE, secret));
            answer
        }
        Err(_) => crate::web::unavailable(),
    }
}

fn unreadable(visitor: &Visitor) -> Problem {
    Problem {
        status: 502,
        code: "login_unreadable".into(),
        title: text(visitor, "error_title"),
        detail: None,
        errors: Vec::new(),
        acr_values: None,
    }
}

pub(crate) async fn login(portal: Data<Portal>, req: HttpRequest, body: Bytes) -> HttpResponse {
    let (visitor, form) = tri!(public_form(&portal, &req, &body).await);
    let next = local_path(field(&form, "next"));
    let email = field(&form, "email").unwrap_or_default().to_owned();
    let code = field(&form, "totp_code").map(str::trim).filter(|c| !c.is_empty());
    let request = json!({
        "email": email,
        "password": field(&form, "password").unwrap_or_default(),
        "totp_code": code,
    });
    match portal
        .api
        .json(
            &Call::of(&visitor),
            Method::POST,
            "/api/v1/auth/login",
            Body::Json(request),
        )
        .await
    {
        Ok(tokens) => signed_in_to(&portal, &visitor, &tokens, &next).await,
        Err(failure) => {
            let errors = match failure.code.as_str() {
                "totp_required" | "totp_invalid" => json!({"totp_code": failure.message()}),
                _ => json!({}),
            };
            let general: Vec<String> = if errors.as_object().is_some_and(|e| e.is_empty()) {
                vec![failure.message().to_owned()]
            } else {
                Vec::new()
            };
            let summary = summary(&errors, &general, &["totp_code"]);
            render(
                &portal,
                &visitor,
                if failure.status == 429 {
                    StatusCode::TOO_MANY_REQUESTS
                } else {
                    StatusCode::UNPROCESSABLE_ENTITY
                },
                "login.html",
                json!({"next": next, "values": {"email": email}, "errors": errors, "summary": summary}),
            )
        }
    }
}

pub(crate) async fn eid_start(portal: Data<Portal>, req: HttpRequest, body: Bytes) -> HttpResponse {
    let (visitor, _) = tri!(public_form(&portal, &req, &body).await);
    match portal
        .api
        .json(
            &Call::of(&visitor),
            Method::POST,
            "/api/v1/auth/eid/start",
            Body::None,
        )
        .await
    {
        Ok(started) => match started["authorization_url"].as_str() {
            Some(url) => see_other(&portal, &visitor, url),
            None => problem(&portal, &visitor, &unreadable(&visitor)),
        },
        Err(failure) => problem(&portal, &visitor, &failure),
    }
}

/// Where the eID provider sends the browser back with `code` and `state` (the configured redirect URI).
pub(crate) async fn eid_callback(portal: Data<Portal>, req: HttpRequest) -> HttpResponse {
    let visitor = tri!(visit(&portal, &req).await);
    let request = json!({
        "code": query(&visitor, "code").unwrap_or_default(),
        "state": query(&visitor, "state").unwrap_or_default(),
    });
    match portal
        .api
        .json(
            &Call::of(&visitor),
            Method::POST,
            "/api/v1/auth/eid/callback",
            Body::Json(request),
        )
        .await
    {
        Ok(tokens) => signed_in_to(&portal, &visitor, &tokens, "/antraege").await,
        Err(failure) => message(
            &portal,
            &visitor,
            StatusCode::from_u16(failure.status).unwrap_or(StatusCode::BAD_GATEWAY),
            &text(&visitor, "eid_failed_title"),
            failure.message(),
            Some(("/login", &text(&visitor, "nav_login"))),
        ),
    }
}

pub(crate) async fn logout(portal: Data<Portal>, req: HttpRequest, body: Bytes) -> HttpResponse {
    let (visitor, _) = tri!(public_form(&portal, &req, &body).await);
    if portal.sign_out(&visitor).await.is_err() {
        return crate::web::unavailable();
    }
    let mut answer = message(
        &portal,
        &Visitor {
            signed_in: None,
            ..visitor
        },
        StatusCode::OK,
        &text(&visitor_lang_only(&req), "logged_out_title"),
        &text(&visitor_lang_only(&req), "logged_out_text"),
        Some(("/", &text(&visitor_lang_only(&req), "to_start"))),
    );
    let _ = answer.add_removal_cookie(&portal.removal(SESSION_COOKIE));
    answer
}

/// A visitor with only the language of the request (for texts after the session has ended).
fn visitor_lang_only(req: &HttpRequest) -> Visitor {
    Visitor {
        lang: crate::PortalLang::of(req),
        signed_in: None,
        csrf: String::new(),
        new_csrf_cookie: false,
        address: None,
        user_agent: None,
        here: "/".into(),
    }
}

pub(crate) async fn forgot_form(portal: Data<Portal>, req: HttpRequest) -> HttpResponse {
    let visitor = tri!(visit(&portal, &req).await);
    token_form(&portal, &visitor, StatusCode::OK, "forgot", "", None)
}

pub(crate) async fn forgot(portal: Data<Portal>, req: HttpRequest, body: Bytes) -> HttpResponse {
    let (visitor, form) = tri!(public_form(&portal, &req, &body).await);
    let email = field(&form, "email").unwrap_or_default().trim().to_owned();
    match portal
        .api
        .json(
            &Call::of(&visitor),
            Method::POST,
            "/api/v1/auth/password-reset",
            Body::Json(json!({"email": email})),
        )
        .await
    {
        Ok(_) => said(&portal, &visitor, StatusCode::OK, "forgot_sent", None),
        Err(failure) => token_form(
            &portal,
            &visitor,
            StatusCode::UNPROCESSABLE_ENTITY,
            "forgot",
            &email,
            Some(failure.message()),
        ),
    }
}

pub(crate) async fn reset_form(portal: Data<Portal>, req: HttpRequest) -> HttpResponse {
    let visitor = tri!(visit(&portal, &req).await);
    let token = query(&visitor, "token").unwrap_or_default();
    token_form(&portal, &visitor, StatusCode::OK, "reset", &token, None)
}

pub(crate) async fn reset(portal: Data<Portal>, req: HttpRequest, body: Bytes) -> HttpResponse {
    let (visitor, form) = tri!(public_form(&portal, &req, &body).await);
    let token = field(&form, "token").unwrap_or_default().trim().to_owned();
    let request = json!({"token": token, "new_password": field(&form, "new_password").unwrap_or_default()});
    match portal
        .api
        .json(
            &Call::of(&visitor),
            Method::POST,
            "/api/v1/auth/password-reset/confirm",
            Body::Json(request),
        )
        .await
    {
        Ok(_) => said(
            &portal,
            &visitor,
            StatusCode::OK,
            "reset_done",
            Some(("/login", "nav_login")),
        ),
        Err(failure) => {
            let message = failure.first_message();
            token_form(
                &portal,
                &visitor,
                StatusCode::UNPROCESSABLE_ENTITY,
                "reset",
                &token,
                Some(&message),
            )
        }
    }
}

pub(crate) async fn confirm_email_form(portal: Data<Portal>, req: HttpRequest) -> HttpResponse {
    let visitor = tri!(member(&portal, &req).await);
    let token = query(&visitor, "token").unwrap_or_default();
    token_form(&portal, &visitor, StatusCode::OK, "confirm", &token, None)
}

pub(crate) async fn confirm_email(portal: Data<Portal>, req: HttpRequest, body: Bytes) -> HttpResponse {
    let (visitor, form) = tri!(member_form(&portal, &req, &body).await);
    use_code(
        &portal,
        &visitor,
        &form,
        ("confirm", "/api/v1/me/email/confirm"),
        ("email_changed", ("/konto", "nav_account")),
    )
    .await
}

pub(crate) async fn reauthenticate_form(portal: Data<Portal>, req: HttpRequest) -> HttpResponse {
    let visitor = tri!(member(&portal, &req).await);
    let next = local_path(query(&visitor, "next").as_deref());
    let level = query(&visitor, "level").filter(|l| ["substantial", "high"].contains(&l.as_str()));
    render(
        &portal,
        &visitor,
        StatusCode::OK,
        "reauthenticate.html",
        json!({"next": next, "errors": {}, "level": level}),
    )
}

pub(crate) async fn reauthenticate(portal: Data<Portal>, req: HttpRequest, body: Bytes) -> HttpResponse {
    let (visitor, form) = tri!(member_form(&portal, &req, &body).await);
    let next = local_path(field(&form, "next"));
    let nonempty = |name: &str| field(&form, name).map(str::trim).filter(|v| !v.is_empty());
    let request = json!({"password": nonempty("password"), "totp_code": nonempty("totp_code")});
    match portal
        .api
        .json(
            &Call::of(&visitor),
            Method::POST,
            "/api/v1/auth/reauthenticate",
            Body::Json(request),
        )
        .await
    {
        Ok(_) => see_other(&portal, &visitor, &next),
        Err(failure) if failure.signed_out() => problem(&portal, &visitor, &failure),
        Err(failure) => {
            let general = vec![failure.message().to_owned()];
            let summary = summary(&json!({}), &general, &[]);
            render(
                &portal,
                &visitor,
                StatusCode::UNPROCESSABLE_ENTITY,
                "reauthenticate.html",
                json!({"next": next, "errors": {}, "summary": summary}),
            )
        }
    }
}

pub(crate) async fn overview(portal: Data<Portal>, req: HttpRequest) -> HttpResponse {
    let visitor = tri!(member(&portal, &req).await);
    let call = Call::of(&visitor);
    let (me, consents, events, delivery) = futures_util::join!(
        portal.api.get(&call, "/api/v1/me"),
        portal.api.get(&call, "/api/v1/me/consents?limit=50"),
        portal.api.get(&call, "/api/v1/me/security-events?limit=20"),
        portal.api.get(&call, "/api/v1/me/electronic-delivery"),
    );
    let me = match me {
        Ok(me) => me,
        Err(failure) => return problem(&portal, &visitor, &failure),
    };
    render(
        &portal,
        &visitor,
        StatusCode::OK,
        "account.html",
        json!({
            "me": me,
            "consents": consents.map(|c| c["items"].clone()).unwrap_or_default(),
            "events": events.map(|e| e["items"].clone()).unwrap_or_default(),
            "electronic_delivery": delivery.map(|d| d["consented"] == true).unwrap_or_default(),
            "done": query(&visitor, "done"),
        }),
    )
}

pub(crate) async fn update_profile(portal: Data<Portal>, req: HttpRequest, body: Bytes) -> HttpResponse {
    let (visitor, form) = tri!(member_form(&portal, &req, &body).await);
    let me = match portal.api.get(&Call::of(&visitor), "/api/v1/me").await {
        Ok(me) => me,
        Err(failure) => return problem(&portal, &visitor, &failure),
    };
    // Only what changed is sent (fields verified by the eID card cannot be changed by hand); an emptied field
    // clears the value, except the name.
    let value = |name: &str| match field(&form, name).map(str::trim) {
        Some("") | None => Value::Null,
        Some(text) => json!(text),
    };
    let mut patch = json!({});
    for name in ["name", "given_name", "family_name", "date_of_birth", "phone"] {
        if field(&form, name).is_some()
            && value(name) != me[name]
            && !(name == "name" && value(name).is_null())
        {
            patch[name] = value(name);
        }
    }
    for name in ["street", "house_number", "postal_code", "city"] {
        if field(&form, name).is_some() && value(name) != me["address"][name] {
            patch["address"][name] = value(name);
        }
    }
    if let Some(language) = field(&form, "preferred_language") {
        patch["preferred_language"] = json!(language);
    }
    match portal
        .api
        .json(
            &Call::of(&visitor),
            Method::PATCH,
            "/api/v1/me",
            Body::MergePatch(patch),
        )
        .await
    {
        Ok(_) => see_other(&portal, &visitor, "/konto?done=profile"),
        Err(failure) if failure.status == 422 => crate::web::message(
            &portal,
            &visitor,
            StatusCode::UNPROCESSABLE_ENTITY,
            &failure.title,
            &failure
                .errors
                .iter()
                .map(|(_, m)| m.as_str())
                .collect::<Vec<_>>()
                .join(" "),
            Some(("/konto", &text(&visitor, "nav_account"))),
        ),
        Err(failure) => problem(&portal, &visitor, &failure),
    }
}

pub(crate) async fn totp_start(portal: Data<Portal>, req: HttpRequest, body: Bytes) -> HttpResponse {
    let (visitor, _) = tri!(member_form(&portal, &req, &body).await);
    match portal
        .api
        .json(&Call::of(&visitor), Method::POST, "/api/v1/me/totp", Body::None)
        .await
    {
        Ok(enrolment) => render(
            &portal,
            &visitor,
            StatusCode::OK,
            "totp.html",
            json!({"enrolment": enrolment}),
        ),
        Err(failure) => problem(&portal, &visitor, &failure),
    }
}

pub(crate) async fn totp_confirm(portal: Data<Portal>, req: HttpRequest, body: Bytes) -> HttpResponse {
    let (visitor, form) = tri!(member_form(&portal, &req, &body).await);
    let code = field(&form, "code").unwrap_or_default().trim().to_owned();
    match portal
        .api
        .json(
            &Call::of(&visitor),
            Method::POST,
            "/api/v1/me/totp/confirm",
            Body::Json(json!({"code": code})),
        )
        .await
    {
        Ok(confirmed) => render(
            &portal,
            &visitor,
            StatusCode::OK,
            "totp.html",
            json!({"recovery_codes": confirmed["recovery_codes"]}),
        ),
        Err(failure) if failure.signed_out() || failure.wants_step_up() => {
            problem(&portal, &visitor, &failure)
        }
        Err(failure) => render(
            &portal,
            &visitor,
            StatusCode::UNPROCESSABLE_ENTITY,
            "totp.html",
            json!({"failed": failure.message()}),
        ),
    }
}

pub(crate) async fn revoke_consent(
    portal: Data<Portal>,
    req: HttpRequest,
    id: Path<String>,
    body: Bytes,
) -> HttpResponse {
    let (visitor, _) = tri!(member_form(&portal, &req, &body).await);
    let path = format!("/api/v1/me/consents/{}", crate::web::segment(&id));
    let result = portal
        .api
        .json(&Call::of(&visitor), Method::DELETE, &path, Body::None)
        .await;
    done(&portal, &visitor, result, "/konto?done=consent")
}

/// The data export (GDPR Art. 15) as a JSON download; the API asks for a recent login first.
pub(crate) async fn export(portal: Data<Portal>, req: HttpRequest) -> HttpResponse {
    let visitor = tri!(member(&portal, &req).await);
    match portal
        .api
        .download(&Call::of(&visitor), "/api/v1/me/export")
        .await
    {
        Ok(response) => {
            let mut answer = crate::web::pass_download(response);
            answer.headers_mut().insert(
                actix_web::http::header::CONTENT_DISPOSITION,
                actix_web::http::header::HeaderValue::from_static(
                    "attachment; filename=\"amtsweg-export.json\"",
                ),
            );
            answer
        }
        Err(failure) => problem(&portal, &visitor, &failure),
    }
}

pub(crate) async fn delete(portal: Data<Portal>, req: HttpRequest, body: Bytes) -> HttpResponse {
    let (visitor, form) = tri!(member_form(&portal, &req, &body).await);
    if field(&form, "confirm") != Some("yes") {
        return see_other(&portal, &visitor, "/konto?done=delete_unconfirmed#loeschen");
    }
    match portal
        .api
        .json(&Call::of(&visitor), Method::DELETE, "/api/v1/me", Body::None)
        .await
    {
        Ok(_) => {
            let _ = portal.sign_out(&visitor).await;
            let mut answer = message(
                &portal,
                &Visitor {
                    signed_in: None,
                    ..visitor_lang_only(&req)
                },
                StatusCode::OK,
                &text(&visitor, "deleted_title"),
                &text(&visitor, "deleted_text"),
                Some(("/", &text(&visitor, "to_start"))),
            );
            let _ = answer.add_removal_cookie(&portal.removal(SESSION_COOKIE));
            answer
        }
        Err(failure) if failure.wants_step_up() => see_other(
            &portal,
            &visitor,
            "/anmeldung-bestaetigen?next=%2Fkonto%23loeschen",
        ),
        Err(failure) => problem(&portal, &visitor, &failure),
    }
}

/// Consents to (or revokes) receiving decisions electronically in the Postfach (§ 41 (2a) VwVfG).
pub(crate) async fn electronic_delivery(portal: Data<Portal>, req: HttpRequest, body: Bytes) -> HttpResponse {
    let (visitor, form) = tri!(member_form(&portal, &req, &body).await);
    let (method, next) = if field(&form, "consent") == Some("yes") {
        (Method::PUT, "/konto?done=delivery_granted")
    } else {
        (Method::DELETE, "/konto?done=delivery_revoked")
    };
    let result = portal
        .api
        .json(
            &Call::of(&visitor),
            method,
            "/api/v1/me/electronic-delivery",
            Body::None,
        )
        .await;
    done(&portal, &visitor, result, next)
}
