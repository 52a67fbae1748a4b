//! Fees paid through the payment module. The application asks for the payment in the submit transaction (the
//! workflow's `request_payment` effect), sends the citizen to the Paypage on request, and learns of the settlement
//! from the payment module's `paid` event — it never reads the payment tables. It alone tells the citizen about
//! payments ("payment outstanding", "received").

use amtsweg_audit::{Actor, ActorKind, Event, Outcome};
use amtsweg_catalogue::domain::procedure::PaymentPolicy;
use amtsweg_jobs::{JobError, Registry, handler_fn};
use amtsweg_payment::{ChangedBy, PaymentRequest, PaymentView, Started};
use amtsweg_workflow::{Caller, Facts};
use diesel::prelude::*;
use serde_json::json;

use crate::case;
use crate::error::ApplicationError;
use crate::schema::applications;
use crate::service::{ApplicationService, EffectContext, notify, visible};
use crate::staff::documents_complete;

/// The job kind that takes the payment module's `paid` events.
pub const SETTLED: &str = "applications.payment_settled";

/// How the application names itself to the payment module.
pub(crate) fn owner(application_id: &str) -> String {
    format!("application:{application_id}")
}

fn application_of(owner: &str) -> Option<&str> {
    owner.strip_prefix("application:")
}

/// The transfer purpose beside the Kassenzeichen: the case number, or — where it does not fit the room there is —
/// its longest tail that starts after a `-` and fits (the year and sequence number stay), else its last characters.
fn purpose(case_number: &str, room: usize) -> String {
    let allowed: String = case_number
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' || c == '/' {
                c
            } else {
                '-'
            }
        })
        .collect();
    if allowed.len() <= room {
        return allowed;
    }
    allowed
        .match_indices('-')
        .map(|(at, _)| &allowed[at + 1..])
        .find(|tail| tail.len() <= room && !tail.is_empty())
        .map_or_else(|| allowed[allowed.len() - room..].to_owned(), str::to_owned)
}

/// The `request_payment` effect (and the invoice of a fee set with the decision): the case's fee becomes a
/// payment in the same transaction, and the citizen gets the `notice`. Nothing to pay, nothing requested.
pub(crate) fn request(
    conn: &mut amtsweg_db::DbConnection,
    context: &EffectContext<'_>,
    notice: &str,
) -> Result<(), ApplicationError> {
    let (fee, lines): (Option<i64>, Option<String>) = applications::table
        .find(context.application_id)
        .select((applications::fee_cents, applications::fee_lines))
        .first(conn)?;
    let amount_cents = fee.unwrap_or(0);
    if amount_cents <= 0 {
        return Ok(());
    }
    let bookings = crate::fees::booking_lines(lines.as_deref());
    let procedure = &context.procedure.procedure;
    let payments = context.payments;
    let description: String = procedure
        .title
        .de
        .chars()
        .take(amtsweg_payment::model::MAX_DESCRIPTION)
        .collect();
    let request = PaymentRequest {
        owner: owner(context.application_id),
        unit_id: procedure.unit.id.clone(),
        amount_cents,
        purpose: purpose(context.case_number, payments.purpose_room()),
        description,
        bookings,
        due_on: None,
    };
    let by = ChangedBy {
        label: format!("citizen:{}", context.person),
        actor: Actor::new(ActorKind::Citizen, context.person, None),
    };
    payments
        .request(conn, &request, &by, context.now)
        .map_err(|err| {
            ApplicationError::Internal(format!("payment request of {}: {err}", context.application_id))
        })?;
    notify(conn, context, notice)
}

/// Ends the open payments of a case that ends before it was paid (`why`: the workflow action).
pub(crate) fn close_open(
    conn: &mut amtsweg_db::DbConnection,
    context: &EffectContext<'_>,
    why: &str,
) -> Result<(), ApplicationError> {
    context
        .payments
        .close_open(
            conn,
            &owner(context.application_id),
            why,
            &ChangedBy::system(),
            context.now,
        )
        .map_err(|err| {
            ApplicationError::Internal(format!(
                "closing the payments of {}: {err}",
                context.application_id
            ))
        })?;
    Ok(())
}

impl ApplicationService {
    /// Sends the citizen to pay the application's outstanding payment: answers the Paypage to redirect to.
    pub async fn pay(&self, person: &str, id: &str) -> Result<Started, ApplicationError> {
        let (person_id, app_id) = (person.to_owned(), id.to_owned());
        let row = self
            .db()
            .read(move |conn| visible(conn, &app_id, &person_id))
            .await?;
        let payments = self.payments().of_owner(&owner(&row.id)).await?;
        let current = payments
            .into_iter()
            .find(|p| p.superseded_by.is_none())
            .ok_or_else(nothing_outstanding)?;
        // A payment ended because the case ended unpaid is not asked for any more.
        if current
            .history
            .last()
            .is_some_and(|step| step.reason == amtsweg_payment::model::Reason::OwnerClosed.as_str())
        {
            return Err(nothing_outstanding());
        }
        let by = ChangedBy {
            label: format!("citizen:{person}"),
            actor: Actor::new(ActorKind::Citizen, person, None),
        };
        Ok(self.payments().start_online(&current.id, by).await?)
    }

    /// The payments of an application the caller may see, newest first.
    pub async fn payments_of(&self, person: &str, id: &str) -> Result<Vec<PaymentView>, ApplicationError> {
        let (person, id) = (person.to_owned(), id.to_owned());
        let row = self.db().read(move |conn| visible(conn, &id, &person)).await?;
        Ok(self.payments().of_owner(&owner(&row.id)).await?)
    }

    /// One payment, if it belongs to an application the caller may see; otherwise not found.
    pub async fn payment(&self, person: &str, payment_id: &str) -> Result<PaymentView, ApplicationError> {
        let payment = match self.payments().get(payment_id).await {
            Err(amtsweg_payment::PaymentError::NotFound) => return Err(not_found()),
            other => other?,
        };
        let Some(application) = application_of(&payment.owner).map(str::to_owned) else {
            return Err(not_found());
        };
        let person = person.to_owned();
        match self
            .db()
            .read(move |conn| visible(conn, &application, &person))
            .await
        {
            Ok(_) => Ok(payment),
            Err(ApplicationError::NotFound) => Err(not_found()),
            Err(err) => Err(err),
        }
    }

    /// The handler of the payment module's `paid` events.
    pub(crate) fn payment_jobs(&self) -> Registry {
        let service = self.clone();
        Registry::new().handler(handler_fn(SETTLED, 8, move |job| {
            let service = service.clone();
            async move {
                let owner = job.payload["data"]["owner"]
                    .as_str()
                    .unwrap_or_default()
                    .to_owned();
                let Some(id) = application_of(&owner).map(str::to_owned) else {
                    return Ok(None);
                };
                match service.payment_settled(&id).await {
                    Ok(moved) => Ok(Some(json!({"application_id": id, "moved": moved}))),
                    Err(ApplicationError::NotFound) => Ok(None),
                    Err(err) => Err(JobError::Transient(err.to_string())),
                }
            }
        }))
    }

    /// Records that the payment of a case was settled and lets the case go on (into the queue, for a procedure
    /// paid before processing); tells the citizen. Once per case, however often the event arrives.
    pub async fn payment_settled(&self, id: &str) -> Result<bool, ApplicationError> {
        let (id, now, service) = (id.to_owned(), self.clock().now(), self.clone());
        self.db()
            .write(move |conn| {
                let row = crate::staff::load_row(conn, &id)?;
                if row.payment_settled_at.is_some() || row.status != "submitted" {
                    return Ok(false);
                }
                diesel::update(
                    applications::table
                        .find(&id)
                        .filter(applications::version.eq(row.version)),
                )
                .set((
                    applications::payment_settled_at.eq(now),
                    applications::version.eq(row.version + 1),
                    applications::updated_at.eq(now),
                ))
                .execute(conn)?;
                let row = crate::staff::load_row(conn, &id)?;
                let (workflow, procedure) = service.case_parts(conn, &row)?;
                let context = EffectContext::of(&row, &procedure, &service, now);
                let notice = match procedure.procedure.payment {
                    PaymentPolicy::BeforeProcessing => "zahlung_eingegangen",
                    PaymentPolicy::AfterDecision | PaymentPolicy::None => "zahlung_bestaetigt",
                };
                notify(conn, &context, notice)?;
                let state = row.state.clone().unwrap_or_default();
                let facts = Facts {
                    by: Caller::System,
                    documents_complete: documents_complete(conn, &id, &procedure)?,
                    payment_settled: true,
                    ..Facts::default()
                };
                let reached = case::run_automatic(conn, &context, &workflow, &facts, &state)?;
                amtsweg_audit::append(
                    conn,
                    &Event {
                        actor: &Actor::system(),
                        action: "application.payment_settled",
                        object: Some(("application", &id)),
                        outcome: Outcome::Success,
                        at: now,
                    },
                )?;
                Ok(reached != state)
            })
            .await
    }
}

fn nothing_outstanding() -> ApplicationError {
    ApplicationError::Conflict(
        "no_payment_outstanding",
        amtsweg_kernel::Text::fixed(
            "Für diesen Antrag ist keine Zahlung offen.",
            "There is no payment outstanding for this application.",
        ),
    )
}

fn not_found() -> ApplicationError {
    ApplicationError::NotFoundAs(
        "payment_not_found",
        amtsweg_kernel::Text::fixed("Zahlung nicht gefunden.", "Payment not found."),
    )
}

#[cfg(test)]
mod tests {
    use super::purpose;

    #[test]
    fn the_purpose_keeps_the_end_of_the_case_number() {
        assert_eq!(purpose("ordnungsamt-2026-000001", 14), "2026-000001");
        assert_eq!(purpose("OA-2026-1", 14), "OA-2026-1");
    }
}
