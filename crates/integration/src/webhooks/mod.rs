//! Webhooks: clients subscribe a target URL to event types and procedures; every matching event is delivered as a
//! job (CloudEvents 1.0 JSON, signed twice: the event's own JWS and the scheme's HMAC headers), retried with
//! backoff over about three days, logged per subscription, and replayable from a feed position.

pub mod delivery;
mod group;
pub mod signature;
pub mod targets;

use amtsweg_auth::KeyEncryptionKey;
use amtsweg_db::{DbConnection, DbError};
use amtsweg_events::Procedures;
use amtsweg_kernel::{ApiError, FieldError, Text, Timestamp};
use diesel::prelude::*;
use serde::{Deserialize, Serialize};
use serde_json::json;
use utoipa::ToSchema;

use crate::schema::{webhook_deliveries as deliveries, webhook_subscriptions as subscriptions};
pub(crate) use group::GroupWriter;
use signature::Scheme;

/// Subscriptions a client may hold.
pub const MAX_SUBSCRIPTIONS: i64 = 20;

/// What a client subscribes.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewSubscription {
    /// Where deliveries are POSTed: `https://…` (plain `http` only for allow-listed targets).
    pub url: String,
    /// Event types (e.g. `de.amtsweg.application.submitted.v1`); empty: all.
    #[serde(default)]
    pub event_types: Vec<String>,
    /// Procedures within the client's `applications:read` scopes; empty: all of them, as the scopes stand at
    /// each delivery.
    #[serde(default)]
    pub procedures: Vec<String>,
    /// `standard_webhooks` (default) or `fit_connect`.
    #[serde(default)]
    pub scheme: Option<String>,
}

/// A subscription as its client sees it.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct SubscriptionView {
    pub id: String,
    pub url: String,
    pub event_types: Vec<String>,
    pub procedures: Vec<String>,
    pub scheme: String,
    /// `active` or `disabled` (the receiver answered 410 Gone, or the client was disabled).
    pub status: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub disabled_reason: Option<String>,
    /// Events after this feed position are delivered.
    pub starts_after: i64,
    pub created_at: Timestamp,
    /// The signing secret — shown once, in the answer to the creation.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub secret: Option<String>,
}

#[derive(Debug, Clone, Queryable, Selectable)]
#[diesel(table_name = subscriptions)]
pub struct SubscriptionRow {
    pub id: String,
    pub client_id: String,
    pub url: String,
    pub event_types: String,
    pub procedures: String,
    pub scheme: String,
    pub secret: String,
    pub status: String,
    pub disabled_reason: Option<String>,
    pub starts_after: i64,
    pub created_at: Timestamp,
}

fn list_of(text: &str) -> Vec<String> {
    serde_json::from_str(text).unwrap_or_default()
}

impl SubscriptionRow {
    pub(crate) fn view(&self) -> SubscriptionView {
        SubscriptionView {
            id: self.id.clone(),
            url: self.url.clone(),
            event_types: list_of(&self.event_types),
            procedures: list_of(&self.procedures),
            scheme: self.scheme.clone(),
            status: self.status.clone(),
            disabled_reason: self.disabled_reason.clone(),
            starts_after: self.starts_after,
            created_at: self.created_at,
            secret: None,
        }
    }

    /// Whether an event of `event_type` about `procedure` goes to this subscription, given the procedures the
    /// client may read now.
    pub(crate) fn wants(&self, event_type: &str, procedure: &str, readable: &Procedures) -> bool {
        let types = list_of(&self.event_types);
        let procedures = list_of(&self.procedures);
        (types.is_empty() || types.iter().any(|t| t == event_type))
            && (procedures.is_empty() || procedures.iter().any(|p| p == procedure))
            && crate::scopes::includes(readable, procedure)
    }
}

/// One delivery as the subscription's log shows it.
#[derive(Debug, Clone, Serialize, ToSchema, Queryable, Selectable)]
#[diesel(table_name = deliveries)]
pub struct DeliveryView {
    pub id: String,
    pub subscription_id: String,
    pub event_id: String,
    /// The event's feed position (`sequence`): receivers order by it, deliveries carry no order.
    pub position: i64,
    /// `pending`, `succeeded`, `dead` (every attempt failed, or 410) or `cancelled` (the subscription ended).
    pub status: String,
    pub attempts: i32,
    /// The HTTP status of the last attempt, if one was received.
    pub last_status: Option<i32>,
    pub last_error: Option<String>,
    pub last_attempt_at: Option<Timestamp>,
    pub delivered_at: Option<Timestamp>,
    /// Queued by a replay.
    pub replay: bool,
    pub created_at: Timestamp,
}

fn invalid(pointer: &str, code: &'static str, text: Text) -> FieldError {
    FieldError::at_pointer(pointer, code, text)
}

impl NewSubscription {
    /// Checks the form of the request (the target's addresses are checked by the caller, asynchronously).
    pub fn check(&self, readable: &Procedures) -> Result<(url::Url, Scheme), ApiError> {
        let mut errors = Vec::new();
        let url = url::Url::parse(self.url.trim())
            .ok()
            .filter(|_| self.url.len() <= 2_000);
        if url.is_none() {
            errors.push(invalid(
                "/url",
                "invalid_url",
                Text::fixed("Bitte eine absolute URL angeben.", "Please give an absolute URL."),
            ));
        }
        if self.event_types.len() > 50 {
            errors.push(invalid(
                "/event_types",
                "too_many",
                Text::fixed("Höchstens 50 Ereignistypen.", "At most 50 event types."),
            ));
        }
        for (i, event_type) in self.event_types.iter().enumerate() {
            if event_type.is_empty() || event_type.len() > 200 || !event_type.is_ascii() {
                errors.push(invalid(
                    &format!("/event_types/{i}"),
                    "invalid_event_type",
                    Text::fixed(
                        "Ein Ereignistyp wie de.amtsweg.application.submitted.v1.",
                        "An event type such as de.amtsweg.application.submitted.v1.",
                    ),
                ));
            }
        }
        if self.procedures.len() > 500 {
            errors.push(invalid(
                "/procedures",
                "too_many",
                Text::fixed("Höchstens 500 Verfahren.", "At most 500 procedures."),
            ));
        }
        for (i, procedure) in self.procedures.iter().enumerate() {
            if !crate::scopes::includes(readable, procedure) {
                errors.push(invalid(
                    &format!("/procedures/{i}"),
                    "procedure_not_in_scope",
                    Text::fixed(
                        "Für dieses Verfahren fehlt dem Client der Scope applications:read.",
                        "The client holds no applications:read scope for this procedure.",
                    ),
                ));
            }
        }
        let scheme = match self.scheme.as_deref() {
            None => Some(Scheme::StandardWebhooks),
            Some(text) => Scheme::parse(text),
        };
        if scheme.is_none() {
            errors.push(invalid(
                "/scheme",
                "not_allowed",
                Text::fixed(
                    "Erlaubt sind „standard_webhooks“ und „fit_connect“.",
                    "Allowed are “standard_webhooks” and “fit_connect”.",
                ),
            ));
        }
        match (url, scheme) {
            (Some(url), Some(scheme)) if errors.is_empty() => Ok((url, scheme)),
            _ => Err(ApiError::validation(errors)),
        }
    }
}

pub(crate) fn target_refused(reason: &targets::Refused) -> ApiError {
    ApiError::validation(vec![invalid(
        "/url",
        "target_not_allowed",
        Text::new(
            format!("Dieses Ziel ist nicht erlaubt: {reason}."),
            format!("This target is not allowed: {reason}."),
        ),
    )])
}

/// Stores a checked subscription; answers its view with the secret shown once.
#[allow(clippy::too_many_arguments, reason = "one row's columns")]
pub(crate) fn create(
    conn: &mut DbConnection,
    kek: &KeyEncryptionKey,
    client: &str,
    url: &url::Url,
    scheme: Scheme,
    request: &NewSubscription,
    now: Timestamp,
) -> Result<SubscriptionView, crate::Failure> {
    let held: i64 = subscriptions::table
        .filter(subscriptions::client_id.eq(client))
        .filter(subscriptions::status.ne("deleted"))
        .count()
        .get_result(conn)?;
    if held >= MAX_SUBSCRIPTIONS {
        return Err(crate::Failure(ApiError::new(
            actix_web::http::StatusCode::CONFLICT,
            "too_many_subscriptions",
            Text::fixed(
                "Ein Client kann höchstens 20 Abonnements halten.",
                "A client may hold at most 20 subscriptions.",
            ),
        )));
    }
    let id = amtsweg_kernel::id::new_id();
    let (shown, bytes) = signature::new_secret();
    let wrapped = kek.wrap(&id, &bytes).map_err(ApiError::internal)?;
    let starts_after = amtsweg_events::last_position(conn)?;
    let row = SubscriptionRow {
        id: id.clone(),
        client_id: client.to_owned(),
        url: url.to_string(),
        event_types: json!(request.event_types).to_string(),
        procedures: json!(request.procedures).to_string(),
        scheme: scheme.as_str().to_owned(),
        secret: wrapped,
        status: "active".into(),
        disabled_reason: None,
        starts_after,
        created_at: now,
    };
    diesel::insert_into(subscriptions::table)
        .values((
            subscriptions::id.eq(&row.id),
            subscriptions::client_id.eq(&row.client_id),
            subscriptions::url.eq(&row.url),
            subscriptions::event_types.eq(&row.event_types),
            subscriptions::procedures.eq(&row.procedures),
            subscriptions::scheme.eq(&row.scheme),
            subscriptions::secret.eq(&row.secret),
            subscriptions::status.eq(&row.status),
            subscriptions::starts_after.eq(row.starts_after),
            subscriptions::created_at.eq(now),
            subscriptions::updated_at.eq(now),
        ))
        .execute(conn)?;
    crate::audit(
        conn,
        client,
        "integration.subscription_created",
        ("webhook_subscription", &id),
        now,
    )?;
    let mut view = row.view();
    view.secret = Some(shown);
    Ok(view)
}

/// A subscription of `client` (any client for `None`, i.e. an administrator), not deleted.
pub(crate) fn find(
    conn: &mut DbConnection,
    client: Option<&str>,
    id: &str,
) -> Result<Option<SubscriptionRow>, DbError> {
    let mut query = subscriptions::table
        .find(id)
        .filter(subscriptions::status.ne("deleted"))
        .into_boxed();
    if let Some(client) = client {
        query = query.filter(subscriptions::client_id.eq(client.to_owned()));
    }
    Ok(query
        .select(SubscriptionRow::as_select())
        .first(conn)
        .optional()?)
}

pub(crate) fn list(conn: &mut DbConnection, client: &str) -> Result<Vec<SubscriptionView>, DbError> {
    let rows: Vec<SubscriptionRow> = subscriptions::table
        .filter(subscriptions::client_id.eq(client))
        .filter(subscriptions::status.ne("deleted"))
        .order(subscriptions::created_at.asc())
        .select(SubscriptionRow::as_select())
        .load(conn)?;
    Ok(rows.iter().map(SubscriptionRow::view).collect())
}

/// Ends a subscription; deliveries still pending are cancelled when their turn comes.
pub(crate) fn delete(
    conn: &mut DbConnection,
    client: &str,
    id: &str,
    now: Timestamp,
) -> Result<bool, DbError> {
    let updated = diesel::update(
        subscriptions::table
            .find(id)
            .filter(subscriptions::client_id.eq(client))
            .filter(subscriptions::status.ne("deleted")),
    )
    .set((
        subscriptions::status.eq("deleted"),
        subscriptions::updated_at.eq(now),
    ))
    .execute(conn)?;
    if updated == 1 {
        crate::audit(
            conn,
            client,
            "integration.subscription_deleted",
            ("webhook_subscription", id),
            now,
        )?;
    }
    Ok(updated == 1)
}

/// The delivery log of a subscription, newest first, optionally of one status; `before` is the last id seen.
pub(crate) fn log(
    conn: &mut DbConnection,
    subscription: Option<&str>,
    status: Option<&str>,
    before: Option<&str>,
    limit: i64,
) -> Result<Vec<DeliveryView>, DbError> {
    let mut query = deliveries::table.into_boxed();
    if let Some(subscription) = subscription {
        query = query.filter(deliveries::subscription_id.eq(subscription.to_owned()));
    }
    if let Some(status) = status {
        query = query.filter(deliveries::status.eq(status.to_owned()));
    }
    if let Some(before) = before {
        query = query.filter(deliveries::id.lt(before.to_owned()));
    }
    Ok(query
        .order(deliveries::id.desc())
        .limit(limit)
        .select(DeliveryView::as_select())
        .load(conn)?)
}
