//! The cash office's work (role `cash_office`, or a unit's `supervisor` for that unit's payments): find payments,
//! read their history, resolve what went to review, record a bank transfer received with the Kassenzeichen,
//! record refunds (a manual task — the platform has no refund API), and the daily report of settled payments.

use amtsweg_audit::{Actor, ActorKind, Event, Outcome};
use amtsweg_auth::{StaffAuth, Units};
use amtsweg_db::{DbConnection, DbError};
use amtsweg_kernel::pagination::{Page, PageRequest};
use amtsweg_kernel::{ApiError, Text, Timestamp};
use chrono::{Duration, NaiveDate};
use diesel::prelude::*;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::model::{Reason, State};
use crate::provider::decimal;
use crate::schema::{payment_refunds, payments};
use crate::service::{ChangedBy, PaymentError, PaymentRow, PaymentService, PaymentView, change, load, view};

/// The roles that reach payments.
pub const CASH_OFFICE: &str = "cash_office";
const SUPERVISOR: &str = "supervisor";

/// The units whose payments the caller may see and handle.
pub fn reach(auth: &StaffAuth) -> Result<Units, ApiError> {
    let mut all = Vec::new();
    for role in [CASH_OFFICE, SUPERVISOR] {
        match auth.units_for(role) {
            Units::All => return Ok(Units::All),
            Units::Some(units) => all.extend(units),
            Units::None => {}
        }
    }
    if all.is_empty() {
        return Err(ApiError::new(
            actix_web::http::StatusCode::FORBIDDEN,
            "forbidden",
            Text::fixed("Zugriff verweigert.", "Access is denied."),
        )
        .with_detail(Text::fixed(
            "Zahlungen sehen die Stadtkasse und die Leitung der Organisationseinheit.",
            "Payments are for the cash office and the unit's supervisors.",
        )));
    }
    Ok(Units::Some(all))
}

/// Who acts, for the history and the audit log.
pub fn staff(auth: &StaffAuth) -> ChangedBy {
    ChangedBy {
        label: format!("staff:{}", auth.account_id),
        actor: Actor::new(ActorKind::Staff, &auth.account_id, auth.address.clone()),
    }
}

/// Filters of the payment list; all optional.
#[derive(Debug, Clone, Default)]
pub struct PaymentFilter {
    pub state: Option<State>,
    pub unit_id: Option<String>,
    pub kassenzeichen: Option<String>,
    pub owner: Option<String>,
}

/// A bank transfer with the Kassenzeichen, received by the cash office.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct OfflineReceipt {
    /// The amount received; must be the payment's amount (anything else is a case for review).
    pub amount_cents: i64,
    /// Day the money arrived (`YYYY-MM-DD`).
    pub received_on: NaiveDate,
    /// e.g. the bank statement's reference.
    pub reason: String,
}

/// How the cash office ends a review.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Resolution {
    /// The money is there: settled.
    Paid,
    /// Nothing valid was paid (e.g. returned to the payer): the attempt is over.
    Cancelled,
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Resolve {
    pub outcome: Resolution,
    pub reason: String,
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewRefund {
    pub amount_cents: i64,
    pub reason: String,
    /// What the caller believes is still refundable; a different figure answers 412 (someone refunded meanwhile).
    #[serde(default)]
    pub expected_available_cents: Option<i64>,
}

#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct RefundView {
    pub id: String,
    pub payment_id: String,
    pub amount_cents: i64,
    pub reason: String,
    pub recorded_by: String,
    pub recorded_at: Timestamp,
    /// Still refundable after this refund.
    pub available_cents: i64,
}

/// One booking line of a settled payment in the cash office's report.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct ReportLine {
    pub kassenzeichen: String,
    pub transaction_number: String,
    pub paid_at: Timestamp,
    pub haushaltsstelle: String,
    pub objektnummer: String,
    pub buchungstext: String,
    pub amount_cents: i64,
    pub due_on: Option<String>,
    pub unit_id: String,
}

fn reason_required(reason: &str) -> Result<(), PaymentError> {
    let len = reason.trim().chars().count();
    if len == 0 || len > 500 {
        return Err(PaymentError::Invalid(vec![(
            "/reason".into(),
            "reason_required",
            "a reason of 1 to 500 characters is required".into(),
        )]));
    }
    Ok(())
}

fn in_reach(row: &PaymentRow, units: &Units) -> Result<(), PaymentError> {
    if units.contains(&row.unit_id) {
        Ok(())
    } else {
        Err(PaymentError::NotFound)
    }
}

impl PaymentService {
    /// Payments in the caller's units, newest first, in cursor pages.
    pub async fn list(
        &self,
        units: Units,
        filter: PaymentFilter,
        page: PageRequest,
    ) -> Result<Page<PaymentView>, PaymentError> {
        self.db()
            .read(move |conn| {
                let mut query = payments::table
                    .select(PaymentRow::as_select())
                    .order(payments::id.desc())
                    .limit(i64::try_from(page.limit + 1).unwrap_or(101))
                    .into_boxed();
                match &units {
                    Units::All => {}
                    Units::Some(units) => query = query.filter(payments::unit_id.eq_any(units.clone())),
                    Units::None => {
                        return Ok(Page::from_overfetched(Vec::new(), page.limit, |_| String::new()));
                    }
                }
                if let Some(state) = filter.state {
                    query = query.filter(payments::state.eq(state.as_str()));
                }
                if let Some(unit) = &filter.unit_id {
                    query = query.filter(payments::unit_id.eq(unit.clone()));
                }
                if let Some(kassenzeichen) = &filter.kassenzeichen {
                    query = query.filter(payments::kassenzeichen.eq(kassenzeichen.clone()));
                }
                if let Some(owner) = &filter.owner {
                    query = query.filter(payments::owner_ref.eq(owner.clone()));
                }
                if let Some(after) = &page.after {
                    query = query.filter(payments::id.lt(after.clone()));
                }
                let rows: Vec<PaymentRow> = query.load(conn)?;
                let views = rows
                    .iter()
                    .map(|row| view(conn, row))
                    .collect::<Result<Vec<_>, _>>()?;
                Ok(Page::from_overfetched(views, page.limit, |p: &PaymentView| {
                    p.id.clone()
                }))
            })
            .await
    }

    /// One payment in the caller's units.
    pub async fn staff_get(&self, units: Units, id: &str) -> Result<PaymentView, PaymentError> {
        let id = id.to_owned();
        self.db()
            .read(move |conn| {
                let row = load(conn, &id)?;
                in_reach(&row, &units)?;
                view(conn, &row)
            })
            .await
    }

    /// Records a bank transfer with the Kassenzeichen as received: the payment is settled.
    pub async fn record_offline(
        &self,
        units: Units,
        id: &str,
        receipt: OfflineReceipt,
        by: ChangedBy,
    ) -> Result<PaymentView, PaymentError> {
        reason_required(&receipt.reason)?;
        let (id, now) = (id.to_owned(), self.now());
        self.db()
            .write(move |conn| {
                let row = load(conn, &id)?;
                in_reach(&row, &units)?;
                if matches!(row.state(), State::Paid | State::Review) {
                    return Err(PaymentError::WrongState(row.state().as_str()));
                }
                if receipt.amount_cents != row.amount_cents {
                    return Err(PaymentError::Invalid(vec![(
                        "/amount_cents".into(),
                        "amount_mismatch",
                        format!(
                            "{} cents received for a payment of {}; a transfer that does not match goes to review",
                            receipt.amount_cents, row.amount_cents
                        ),
                    )]));
                }
                diesel::update(payments::table.find(&id))
                    .set((
                        payments::paid_cents.eq(receipt.amount_cents),
                        payments::paid_at.eq(now),
                        payments::next_check_at.eq(None::<Timestamp>),
                    ))
                    .execute(conn)?;
                let note = format!("received {}: {}", receipt.received_on, receipt.reason.trim());
                if !change(conn, &row, State::Paid, Reason::OfflineReceipt, Some(&note), &by, now)? {
                    return Err(PaymentError::WrongState("changed"));
                }
                let row = load(conn, &id)?;
                view(conn, &row)
            })
            .await
    }

    /// Ends a review: settled or cancelled, with the reason in the history.
    pub async fn resolve(
        &self,
        units: Units,
        id: &str,
        resolve: Resolve,
        by: ChangedBy,
    ) -> Result<PaymentView, PaymentError> {
        reason_required(&resolve.reason)?;
        let (id, now) = (id.to_owned(), self.now());
        self.db()
            .write(move |conn| {
                let row = load(conn, &id)?;
                in_reach(&row, &units)?;
                if row.state() != State::Review {
                    return Err(PaymentError::WrongState(row.state().as_str()));
                }
                let to = match resolve.outcome {
                    Resolution::Paid => {
                        diesel::update(payments::table.find(&id))
                            .set((
                                payments::paid_cents.eq(row.paid_cents.unwrap_or(row.amount_cents)),
                                payments::paid_at.eq(now),
                            ))
                            .execute(conn)?;
                        State::Paid
                    }
                    Resolution::Cancelled => State::Cancelled,
                };
                if !change(
                    conn,
                    &row,
                    to,
                    Reason::Resolved,
                    Some(resolve.reason.trim()),
                    &by,
                    now,
                )? {
                    return Err(PaymentError::WrongState("changed"));
                }
                let row = load(conn, &id)?;
                view(conn, &row)
            })
            .await
    }

    /// Records a refund the cash office made by hand, within what is still refundable.
    pub async fn refund(
        &self,
        units: Units,
        id: &str,
        refund: NewRefund,
        by: ChangedBy,
    ) -> Result<RefundView, PaymentError> {
        reason_required(&refund.reason)?;
        let (id, now) = (id.to_owned(), self.now());
        self.db()
            .write(move |conn| {
                let row = load(conn, &id)?;
                in_reach(&row, &units)?;
                if row.state() != State::Paid {
                    return Err(PaymentError::WrongState(row.state().as_str()));
                }
                // Serialises refunds of one payment: the version moves with every refund.
                let locked = diesel::update(
                    payments::table
                        .find(&id)
                        .filter(payments::version.eq(row.version)),
                )
                .set((
                    payments::version.eq(row.version + 1),
                    payments::updated_at.eq(now),
                ))
                .execute(conn)?;
                if locked == 0 {
                    return Err(PaymentError::RefundConflict(available(conn, &row)?));
                }
                let available = available(conn, &row)?;
                if refund
                    .expected_available_cents
                    .is_some_and(|expected| expected != available)
                {
                    return Err(PaymentError::RefundConflict(available));
                }
                if refund.amount_cents <= 0 || refund.amount_cents > available {
                    return Err(PaymentError::Invalid(vec![(
                        "/amount_cents".into(),
                        "refund_exceeds_available",
                        format!("1 to {available} cents can still be refunded"),
                    )]));
                }
                let refund_id = amtsweg_kernel::id::new_id();
                diesel::insert_into(payment_refunds::table)
                    .values((
                        payment_refunds::id.eq(&refund_id),
                        payment_refunds::payment_id.eq(&id),
                        payment_refunds::amount_cents.eq(refund.amount_cents),
                        payment_refunds::reason.eq(refund.reason.trim()),
                        payment_refunds::recorded_by.eq(&by.label),
                        payment_refunds::recorded_at.eq(now),
                    ))
                    .execute(conn)?;
                crate::events::refunded(conn, &row, refund.amount_cents, now)?;
                amtsweg_audit::append(
                    conn,
                    &Event {
                        actor: &by.actor,
                        action: "payment.refund_recorded",
                        object: Some(("payment", &id)),
                        outcome: Outcome::Success,
                        at: now,
                    },
                )?;
                Ok(RefundView {
                    id: refund_id,
                    payment_id: id.clone(),
                    amount_cents: refund.amount_cents,
                    reason: refund.reason.trim().to_owned(),
                    recorded_by: by.label.clone(),
                    recorded_at: now,
                    available_cents: available - refund.amount_cents,
                })
            })
            .await
    }

    /// The booking lines of the payments settled on `day` (Europe/Berlin) in the caller's units.
    pub async fn report(&self, units: Units, day: NaiveDate) -> Result<Vec<ReportLine>, PaymentError> {
        self.db()
            .read(move |conn| {
                // A UTC window around the day, narrowed to the Berlin day below.
                let from = Timestamp::from(
                    day.and_hms_opt(0, 0, 0).unwrap_or_default().and_utc() - Duration::hours(3),
                );
                let to = Timestamp::from(
                    day.and_hms_opt(0, 0, 0).unwrap_or_default().and_utc() + Duration::hours(27),
                );
                let rows: Vec<PaymentRow> = payments::table
                    .filter(payments::paid_at.ge(from))
                    .filter(payments::paid_at.lt(to))
                    .filter(payments::state.eq(State::Paid.as_str()))
                    .order((payments::paid_at, payments::id))
                    .select(PaymentRow::as_select())
                    .load(conn)?;
                let mut lines = Vec::new();
                for row in rows.iter().filter(|row| units.contains(&row.unit_id)) {
                    let Some(paid_at) = row.paid_at else { continue };
                    if amtsweg_workflow::deadline::berlin_date(paid_at.utc().naive_utc()) != day {
                        continue;
                    }
                    for line in row.bookings() {
                        lines.push(ReportLine {
                            kassenzeichen: row.kassenzeichen.clone().unwrap_or_default(),
                            transaction_number: row.transaction_number.clone(),
                            paid_at,
                            haushaltsstelle: line.booking.haushaltsstelle,
                            objektnummer: line.booking.objektnummer,
                            buchungstext: line.booking.buchungstext,
                            amount_cents: line.amount_cents,
                            due_on: row.due_on.clone(),
                            unit_id: row.unit_id.clone(),
                        });
                    }
                }
                Ok(lines)
            })
            .await
    }
}

/// Paid less what was refunded.
fn available(conn: &mut DbConnection, row: &PaymentRow) -> Result<i64, DbError> {
    let refunded: Vec<i64> = payment_refunds::table
        .filter(payment_refunds::payment_id.eq(&row.id))
        .select(payment_refunds::amount_cents)
        .load(conn)?;
    Ok(row.paid_cents.unwrap_or(0) - refunded.iter().sum::<i64>())
}

/// The report as the cash system imports it: CSV with `;`, decimal commas, German dates, UTF-8 with BOM.
pub fn csv(lines: &[ReportLine]) -> String {
    let mut out = String::from(
        "\u{feff}Kassenzeichen;Transaktionsnummer;Bezahlt am;Haushaltsstelle;Objektnummer;Buchungstext;Betrag;Fällig am;Organisationseinheit\r\n",
    );
    let field = |text: &str| {
        if text.contains([';', '"', '\n', '\r']) {
            format!("\"{}\"", text.replace('"', "\"\""))
        } else {
            text.to_owned()
        }
    };
    for line in lines {
        let paid = amtsweg_workflow::deadline::berlin_time(line.paid_at.utc().naive_utc());
        let due = line
            .due_on
            .as_deref()
            .and_then(|d| NaiveDate::parse_from_str(d, "%Y-%m-%d").ok())
            .map(|d| d.format("%d.%m.%Y").to_string())
            .unwrap_or_default();
        out.push_str(&format!(
            "{};{};{};{};{};{};{};{};{}\r\n",
            field(&line.kassenzeichen),
            field(&line.transaction_number),
            paid.format("%d.%m.%Y %H:%M"),
            field(&line.haushaltsstelle),
            field(&line.objektnummer),
            field(&line.buchungstext),
            decimal(line.amount_cents).replace('.', ","),
            due,
            field(&line.unit_id),
        ));
    }
    out
}
