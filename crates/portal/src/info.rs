//! The accessibility statement with its feedback form (BITV 2.0 § 7: a way to report barriers, answered by the
//! office that runs the portal) and the explanation of the portal in Leichte Sprache.

use actix_web::http::StatusCode;
use actix_web::web::{Bytes, Data};
use actix_web::{HttpRequest, HttpResponse};
use amtsweg_audit::{Actor, Event, Outcome};
use amtsweg_db::DbError;
use diesel::prelude::*;
use serde_json::json;

use crate::Portal;
use crate::schema::portal_feedback;
use crate::web::{field, public_form, render, text, tri, visit};

const MESSAGE_LIMIT: usize = 5_000;

pub(crate) async fn accessibility(portal: Data<Portal>, req: HttpRequest) -> HttpResponse {
    let visitor = tri!(visit(&portal, &req).await);
    render(
        &portal,
        &visitor,
        StatusCode::OK,
        "accessibility.html",
        json!({"values": {}, "errors": {}}),
    )
}

/// Feedback on a barrier: kept for the office that runs the portal, and audited.
pub(crate) async fn feedback(portal: Data<Portal>, req: HttpRequest, body: Bytes) -> HttpResponse {
    let (visitor, form) = tri!(public_form(&portal, &req, &body).await);
    let clean = |name: &str, limit: usize| -> String {
        field(&form, name)
            .unwrap_or_default()
            .chars()
            .filter(|c| !c.is_control() || *c == '\n')
            .take(limit)
            .collect::<String>()
            .trim()
            .to_owned()
    };
    let (message, contact, page) = (
        clean("message", MESSAGE_LIMIT + 1),
        clean("contact", 254),
        clean("page", 500),
    );
    let problem = if message.is_empty() {
        Some(text(&visitor, "feedback_empty"))
    } else if message.chars().count() > MESSAGE_LIMIT {
        Some(text(&visitor, "feedback_too_long"))
    } else {
        None
    };
    if let Some(problem) = problem {
        return render(
            &portal,
            &visitor,
            StatusCode::UNPROCESSABLE_ENTITY,
            "accessibility.html",
            json!({
                "values": {"message": message, "contact": contact, "page": page},
                "errors": {"message": problem},
                "summary": [{"href": "#message", "message": problem}],
            }),
        );
    }
    let (id, now, lang, address) = (
        amtsweg_kernel::id::new_id(),
        portal.clock.now(),
        visitor.lang.code(),
        visitor.address.clone(),
    );
    let stored = portal
        .db
        .write(move |conn| {
            diesel::insert_into(portal_feedback::table)
                .values((
                    portal_feedback::id.eq(&id),
                    portal_feedback::page.eq((!page.is_empty()).then_some(&page)),
                    portal_feedback::message.eq(&message),
                    portal_feedback::contact.eq((!contact.is_empty()).then_some(&contact)),
                    portal_feedback::lang.eq(lang),
                    portal_feedback::created_at.eq(now),
                ))
                .execute(conn)?;
            amtsweg_audit::append(
                conn,
                &Event {
                    actor: &Actor::anonymous(address),
                    action: "portal.accessibility_feedback",
                    object: Some(("portal_feedback", &id)),
                    outcome: Outcome::Success,
                    at: now,
                },
            )?;
            Ok::<_, DbError>(())
        })
        .await;
    if stored.is_err() {
        return crate::web::unavailable();
    }
    crate::web::said(
        &portal,
        &visitor,
        StatusCode::OK,
        "feedback_thanks",
        Some(("/", "to_start")),
    )
}

pub(crate) async fn easy_language(portal: Data<Portal>, req: HttpRequest) -> HttpResponse {
    let visitor = tri!(visit(&portal, &req).await);
    render(&portal, &visitor, StatusCode::OK, "easy.html", json!({}))
}
