//! The payment use cases: request (in the caller's transaction), start or resume the online attempt, check the
//! provider's status, take notifications, reconcile. Every state change appends a history step, an audit entry
//! and an event in one transaction, guarded by the payment's version.

use std::sync::Arc;

use amtsweg_audit::{Actor, Event, Outcome};
use amtsweg_db::{Database, DbConnection, DbError};
use amtsweg_kernel::{SharedClock, Timestamp};
use chrono::Duration;
use diesel::prelude::*;
use serde::Serialize;
use utoipa::ToSchema;

use crate::events;
use crate::model::{self, BookingLine, Observed, Reason, State};
use crate::provider::{Notice, NoticeError, Order, Provider, ProviderError, Reference, Urls};
use crate::schema::{payment_steps, payments};
use crate::settings::PaymentSettings;
use crate::sim::Simulator;

/// What a module asks to be paid.
#[derive(Debug, Clone)]
pub struct PaymentRequest {
    /// The owner as the requesting module names it, e.g. `application:{id}`; opaque to this crate.
    pub owner: String,
    pub unit_id: String,
    pub amount_cents: i64,
    /// The transfer purpose beside the Kassenzeichen (at most [`PaymentService::purpose_room`] characters).
    pub purpose: String,
    pub description: String,
    pub bookings: Vec<BookingLine>,
    /// When the debt falls due (`YYYY-MM-DD`); unset: `due_days` after the request.
    pub due_on: Option<String>,
}

#[derive(Debug, thiserror::Error)]
pub enum PaymentError {
    #[error("payment not found")]
    NotFound,
    #[error("the payment breaks the provider's limits")]
    Invalid(Vec<model::Violation>),
    #[error("the payment cannot be paid online in state {0}")]
    NotPayable(&'static str),
    #[error("the payment cannot be changed in state {0}")]
    WrongState(&'static str),
    /// A refund whose caller expected another refundable amount (someone refunded meanwhile).
    #[error("{0} cents are refundable")]
    RefundConflict(i64),
    #[error(transparent)]
    Provider(#[from] ProviderError),
    #[error(transparent)]
    Notice(#[from] NoticeError),
    #[error(transparent)]
    Db(#[from] DbError),
}

impl From<diesel::result::Error> for PaymentError {
    fn from(err: diesel::result::Error) -> Self {
        PaymentError::Db(DbError::from(err))
    }
}

#[derive(Debug, Clone, Queryable, Selectable)]
#[diesel(table_name = payments)]
pub(crate) struct PaymentRow {
    pub id: String,
    pub transaction_number: String,
    pub owner_ref: String,
    pub unit_id: String,
    pub provider: String,
    pub kassenzeichen: Option<String>,
    pub provider_ref: Option<String>,
    pub amount_cents: i64,
    pub purpose: String,
    pub description: String,
    pub bookings: String,
    pub due_on: Option<String>,
    pub state: String,
    pub paypage_url: Option<String>,
    pub attempt_started_at: Option<Timestamp>,
    pub next_check_at: Option<Timestamp>,
    pub checks: i32,
    pub paid_cents: Option<i64>,
    pub paid_at: Option<Timestamp>,
    pub superseded_by: Option<String>,
    pub version: i64,
    pub created_at: Timestamp,
    pub updated_at: Timestamp,
}

impl PaymentRow {
    pub(crate) fn state(&self) -> State {
        State::parse(&self.state).unwrap_or(State::Review)
    }

    fn reference(&self) -> Reference<'_> {
        Reference {
            transaction_number: &self.transaction_number,
            kassenzeichen: self.kassenzeichen.as_deref(),
            provider_ref: self.provider_ref.as_deref(),
            amount_cents: self.amount_cents,
        }
    }

    pub(crate) fn bookings(&self) -> Vec<BookingLine> {
        serde_json::from_str(&self.bookings).unwrap_or_default()
    }
}

#[derive(Queryable, Selectable)]
#[diesel(table_name = payment_steps)]
struct StepRow {
    from_state: Option<String>,
    to_state: String,
    reason: String,
    note: Option<String>,
    actor: String,
    at: Timestamp,
}

/// A payment as its owner and the cash office see it.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct PaymentView {
    pub id: String,
    /// Ours; the provider's idempotency key.
    pub transaction_number: String,
    pub state: State,
    /// Assigned by the provider once the payment is there.
    pub kassenzeichen: Option<String>,
    pub amount_cents: i64,
    /// Amount confirmed paid.
    pub paid_cents: Option<i64>,
    pub purpose: String,
    pub description: String,
    pub due_on: Option<String>,
    pub unit_id: String,
    /// The opaque owner reference of the requesting module.
    pub owner: String,
    /// `epaybl`.
    pub provider: String,
    pub bookings: Vec<BookingLine>,
    /// The payment that took over after this online attempt ended.
    pub superseded_by: Option<String>,
    pub created_at: Timestamp,
    pub updated_at: Timestamp,
    pub paid_at: Option<Timestamp>,
    /// When the reconciliation job asks the provider next (open payments only).
    pub next_check_at: Option<Timestamp>,
    /// Oldest first; never rewritten.
    pub history: Vec<HistoryStep>,
}

#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct HistoryStep {
    pub at: Timestamp,
    pub from: Option<State>,
    pub to: State,
    /// `requested`, `at_provider`, `confirmed_by_provider`, `aborted_by_payer`, `failed_at_provider`,
    /// `amount_mismatch`, `unknown_kassenzeichen`, `paid_after_attempt_ended`, `paypage_session_ended`,
    /// `offline_receipt`, `resolved_by_cash_office`.
    pub reason: String,
    /// `system`, `provider`, `citizen:{id}`, `staff:{id}`.
    pub actor: String,
    pub note: Option<String>,
}

/// An online attempt to send the payer to.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct Started {
    pub payment: PaymentView,
    /// The provider's Paypage.
    pub redirect_url: String,
}

/// Who caused a change: the label in the history and the audit actor.
#[derive(Debug, Clone)]
pub struct ChangedBy {
    pub label: String,
    pub actor: Actor,
}

impl ChangedBy {
    pub fn system() -> ChangedBy {
        ChangedBy {
            label: "system".into(),
            actor: Actor::system(),
        }
    }

    fn provider() -> ChangedBy {
        ChangedBy {
            label: "provider".into(),
            actor: Actor::system(),
        }
    }
}

pub(crate) struct Inner {
    pub db: Database,
    pub clock: SharedClock,
    pub provider: Arc<dyn Provider>,
    pub settings: PaymentSettings,
    pub public_url: String,
    pub simulator: Option<Simulator>,
}

#[derive(Clone)]
pub struct PaymentService {
    pub(crate) inner: Arc<Inner>,
}

/// How long to wait before asking the provider again after `checks` questions: 1, 2, 4 … minutes, at most an hour.
fn backoff(checks: i32) -> Duration {
    Duration::minutes(1i64 << checks.clamp(0, 6)).min(Duration::hours(1))
}

impl PaymentService {
    pub fn db(&self) -> &Database {
        &self.inner.db
    }

    pub(crate) fn now(&self) -> Timestamp {
        self.inner.clock.now()
    }

    /// The in-process simulator, when it stands in for the platform.
    pub fn simulator(&self) -> Option<&Simulator> {
        self.inner.simulator.as_ref()
    }

    /// The longest Kassenzeichen: of the cash office's format, or as the platform assigns them.
    pub fn kassenzeichen_len(&self) -> usize {
        match &self.inner.settings.kassenzeichen_format {
            Some(format) => crate::settings::longest_kassenzeichen(format).len(),
            None => self.inner.provider.kassenzeichen_len(),
        }
    }

    /// How many characters a purpose may have beside the longest Kassenzeichen in a transfer's 27.
    pub fn purpose_room(&self) -> usize {
        model::MAX_REMITTANCE.saturating_sub(self.kassenzeichen_len() + 1)
    }

    /// A Kassenzeichen of the cash office's format, where it assigns them itself.
    fn local_kassenzeichen(
        &self,
        conn: &mut DbConnection,
        now: Timestamp,
    ) -> Result<Option<String>, DbError> {
        let Some(format) = &self.inner.settings.kassenzeichen_format else {
            return Ok(None);
        };
        let seq = amtsweg_db::counter::next(conn, "kassenzeichen_numbers")?;
        let year = chrono::Datelike::year(&amtsweg_workflow::deadline::berlin_date(now.utc().naive_utc()));
        Ok(Some(amtsweg_kernel::numbering::render(format, "", year, seq)))
    }

    /// Records a payment in the caller's transaction (state `initial`, nothing sent yet); answers its id. The
    /// provider's limits are checked here, before any call.
    pub fn request(
        &self,
        conn: &mut DbConnection,
        request: &PaymentRequest,
        by: &ChangedBy,
        now: Timestamp,
    ) -> Result<String, PaymentError> {
        let problems = model::violations(
            request.amount_cents,
            &request.purpose,
            &request.description,
            &request.bookings,
            self.kassenzeichen_len(),
        );
        if !problems.is_empty() {
            return Err(PaymentError::Invalid(problems));
        }
        let due_on = request.due_on.clone().unwrap_or_else(|| {
            let today = amtsweg_workflow::deadline::berlin_date(now.utc().naive_utc());
            (today + Duration::days(self.inner.settings.due_days.into())).to_string()
        });
        let id = amtsweg_kernel::id::new_id();
        let bookings =
            serde_json::to_string(&request.bookings).map_err(|err| DbError::Task(err.to_string()))?;
        let kassenzeichen = self.local_kassenzeichen(conn, now)?;
        insert(
            conn,
            &id,
            kassenzeichen.as_deref(),
            &request.owner,
            &request.unit_id,
            self.inner.provider.name(),
            request.amount_cents,
            (&request.purpose, &request.description, &bookings),
            &due_on,
            now,
        )?;
        events::requested(
            conn,
            &id,
            &request.owner,
            &request.unit_id,
            request.amount_cents,
            now,
        )?;
        // Last: the step's audit append locks the log's head row until the commit.
        step(conn, &id, None, State::Initial, Reason::Requested, None, by, now)?;
        Ok(id)
    }

    /// Ends, in the caller's transaction, what is still open of an owner's payments: the owner no longer asks for
    /// them (its application was withdrawn or discontinued unpaid). A payment made afterwards goes to review.
    /// Answers how many were ended.
    pub fn close_open(
        &self,
        conn: &mut DbConnection,
        owner: &str,
        note: &str,
        by: &ChangedBy,
        now: Timestamp,
    ) -> Result<usize, PaymentError> {
        let open: Vec<PaymentRow> = payments::table
            .filter(payments::owner_ref.eq(owner))
            .filter(payments::state.eq_any(OWNER_CLOSABLE.map(State::as_str)))
            .select(PaymentRow::as_select())
            .load(conn)?;
        let mut closed = 0;
        for mut row in open {
            loop {
                diesel::update(payments::table.find(&row.id))
                    .set(payments::next_check_at.eq(None::<Timestamp>))
                    .execute(conn)?;
                if change(
                    conn,
                    &row,
                    State::Cancelled,
                    Reason::OwnerClosed,
                    Some(note),
                    by,
                    now,
                )? {
                    closed += 1;
                    break;
                }
                // Changed since it was read (its Paypage session ended, a check found it paid): look again, and
                // end it if it is still open.
                row = load(conn, &row.id)?;
                if !OWNER_CLOSABLE.contains(&row.state()) {
                    break;
                }
            }
        }
        Ok(closed)
    }

    /// The payment, for whoever the caller has checked may see it.
    pub async fn get(&self, id: &str) -> Result<PaymentView, PaymentError> {
        let id = id.to_owned();
        self.db()
            .read(move |conn| {
                let row = load(conn, &id)?;
                view(conn, &row)
            })
            .await
    }

    /// The payments of an owner, newest first.
    pub async fn of_owner(&self, owner: &str) -> Result<Vec<PaymentView>, PaymentError> {
        let owner = owner.to_owned();
        self.db()
            .read(move |conn| {
                let rows: Vec<PaymentRow> = payments::table
                    .filter(payments::owner_ref.eq(&owner))
                    .order((payments::created_at.desc(), payments::id.desc()))
                    .select(PaymentRow::as_select())
                    .load(conn)?;
                rows.iter().map(|row| view(conn, row)).collect()
            })
            .await
    }

    /// Sends the payer to the provider: creates the payment there (idempotent by its transaction number), resumes
    /// an open Paypage, or — after an attempt ended unpaid — starts a new attempt for the same debt.
    pub async fn start_online(&self, id: &str, by: ChangedBy) -> Result<Started, PaymentError> {
        let mut row = self.load(id).await?;
        let now = self.now();
        if row.state() == State::Pending {
            // Resume only a Paypage that is still open: the payer may have left it a moment ago, before its
            // notification arrived.
            self.refresh(&row.id).await?;
            if self.session_over(&row, now) {
                self.end_session_if_open(&row.id).await?;
            }
            row = self.load(&row.id).await?;
        }
        match row.state() {
            State::Paid | State::Review => return Err(PaymentError::NotPayable(row.state().as_str())),
            State::Pending => {
                if let Some(url) = row.paypage_url.clone() {
                    let payment = self.get(&row.id).await?;
                    return Ok(Started {
                        payment,
                        redirect_url: url,
                    });
                }
            }
            State::Cancelled | State::Failed | State::Expired => row = self.successor(&row, &by).await?,
            State::Initial => {}
        }
        let urls = self.urls(&row.id);
        let bookings = row.bookings();
        let order = Order {
            transaction_number: &row.transaction_number,
            kassenzeichen: row.kassenzeichen.as_deref(),
            amount_cents: row.amount_cents,
            purpose: &row.purpose,
            description: &row.description,
            bookings: &bookings,
            due_on: row.due_on.as_deref().unwrap_or_default(),
            urls,
        };
        let created = self.inner.provider.create(&order).await?;
        if !model::valid_kassenzeichen(&created.kassenzeichen) {
            return Err(ProviderError::Protocol(format!("Kassenzeichen {:?}", created.kassenzeichen)).into());
        }
        let now = self.now();
        let id = row.id.clone();
        let url = created.paypage_url.clone();
        self.db()
            .write(move |conn| {
                let row = load(conn, &id)?;
                if row.state() != State::Initial {
                    return Ok(());
                }
                diesel::update(payments::table.find(&id))
                    .set((
                        payments::kassenzeichen.eq(&created.kassenzeichen),
                        payments::provider_ref.eq(&created.provider_ref),
                        payments::paypage_url.eq(&created.paypage_url),
                        payments::attempt_started_at.eq(now),
                        payments::next_check_at.eq(Timestamp::from(now.utc() + backoff(0))),
                        payments::checks.eq(0),
                    ))
                    .execute(conn)?;
                change(conn, &row, State::Pending, Reason::AtProvider, None, &by, now).map(|_| ())
            })
            .await?;
        let payment = self.get(&row.id).await?;
        if payment.state != State::Pending {
            return Err(PaymentError::NotPayable(payment.state.as_str()));
        }
        let redirect_url = url;
        Ok(Started {
            payment,
            redirect_url,
        })
    }

    /// Where the provider sends the payer back and its notifications.
    fn urls(&self, id: &str) -> Urls {
        let base = self.inner.public_url.trim_end_matches('/');
        // The portal's page, which asks the platform for the state and shows it in the portal's look.
        let back = |outcome: &str| format!("{base}/zahlung/{id}?outcome={outcome}");
        Urls {
            notify: format!(
                "{base}/api/v1/payments/notifications/{}",
                self.inner.provider.name()
            ),
            success: back("success"),
            error: back("error"),
            cancel: back("cancel"),
        }
    }

    fn session_over(&self, row: &PaymentRow, now: Timestamp) -> bool {
        row.attempt_started_at.is_some_and(|started| {
            now.utc() - started.utc() >= Duration::minutes(self.inner.settings.paypage_minutes.into())
        })
    }

    async fn load(&self, id: &str) -> Result<PaymentRow, PaymentError> {
        let id = id.to_owned();
        self.db().read(move |conn| load(conn, &id)).await
    }

    /// The payment that takes over after `row`'s attempt ended: created once, however many callers ask at once.
    async fn successor(&self, row: &PaymentRow, by: &ChangedBy) -> Result<PaymentRow, PaymentError> {
        let (old, by, now) = (row.id.clone(), by.clone(), self.now());
        let name = self.inner.provider.name();
        let service = self.clone();
        let next = self
            .db()
            .write(move |conn| {
                let row = load(conn, &old)?;
                if let Some(next) = row.superseded_by {
                    return Ok(next);
                }
                let id = amtsweg_kernel::id::new_id();
                let taken = diesel::update(
                    payments::table
                        .find(&old)
                        .filter(payments::superseded_by.is_null()),
                )
                .set(payments::superseded_by.eq(&id))
                .execute(conn)?;
                if taken == 0 {
                    return load(conn, &old)?.superseded_by.ok_or(PaymentError::NotFound);
                }
                let kassenzeichen = service.local_kassenzeichen(conn, now)?;
                insert(
                    conn,
                    &id,
                    kassenzeichen.as_deref(),
                    &row.owner_ref,
                    &row.unit_id,
                    name,
                    row.amount_cents,
                    (&row.purpose, &row.description, &row.bookings),
                    row.due_on.as_deref().unwrap_or_default(),
                    now,
                )?;
                let note = format!("new attempt after {}", row.id);
                events::requested(conn, &id, &row.owner_ref, &row.unit_id, row.amount_cents, now)?;
                step(
                    conn,
                    &id,
                    None,
                    State::Initial,
                    Reason::Requested,
                    Some(&note),
                    &by,
                    now,
                )?;
                Ok(id)
            })
            .await?;
        self.load(&next).await
    }

    /// Asks the provider and records what changed; answers the payment.
    pub async fn check(&self, id: &str) -> Result<PaymentView, PaymentError> {
        self.refresh(id).await?;
        self.get(id).await
    }

    /// Asks the provider and records what changed; answers the state the payment is in now. A provider that
    /// cannot be reached leaves the payment as it is, to be asked again later.
    pub async fn refresh(&self, id: &str) -> Result<State, PaymentError> {
        let row = self.load(id).await?;
        // Not at the provider yet (a local Kassenzeichen exists before), or settled for good.
        if row.kassenzeichen.is_none() || matches!(row.state(), State::Initial | State::Paid | State::Review)
        {
            return Ok(row.state());
        }
        let observed = self.inner.provider.status(row.reference()).await;
        let now = self.now();
        match observed {
            Ok(observed) => self.observed(&row, observed, now).await,
            Err(ProviderError::Unavailable(cause)) => {
                tracing::info!(payment = %row.id, %cause, "payment provider unavailable; asking again later");
                let (id, checks, state) = (row.id.clone(), row.checks + 1, row.state());
                self.db()
                    .write(move |conn| {
                        diesel::update(
                            payments::table
                                .find(&id)
                                .filter(payments::next_check_at.is_not_null()),
                        )
                        .set((
                            payments::checks.eq(checks),
                            payments::next_check_at.eq(Timestamp::from(now.utc() + backoff(checks))),
                        ))
                        .execute(conn)
                        .map_err(DbError::from)
                    })
                    .await?;
                Ok(state)
            }
            Err(err) => Err(err.into()),
        }
    }

    /// Records an observation of the provider about the payment `seen` (re-read in the transaction).
    async fn observed(
        &self,
        seen: &PaymentRow,
        observed: Observed,
        now: Timestamp,
    ) -> Result<State, PaymentError> {
        let id = seen.id.clone();
        let session_over = self.session_over(seen, now);
        self.db()
            .write(move |conn| {
                let row = load(conn, &id)?;
                let change_to = model::observe(row.state(), row.amount_cents, observed);
                let checks = row.checks + 1;
                let next = match change_to.map_or(row.state(), |(to, _)| to) {
                    State::Initial | State::Pending if !session_over => {
                        Some(Timestamp::from(now.utc() + backoff(checks)))
                    }
                    State::Pending => Some(now),
                    _ => None,
                };
                // What the platform confirmed, also where it does not add up (the cash office sees it).
                let paid_cents = match (change_to, observed) {
                    (Some(_), Observed::Paid { amount_cents }) => Some(amount_cents),
                    _ => row.paid_cents,
                };
                let paid_at = match change_to {
                    Some((State::Paid, _)) => Some(now),
                    _ => row.paid_at,
                };
                // Guarded by the version: a concurrent look (a notification and the payer's return at once) that
                // changed the payment first wins, and this one reports what it found.
                let updated = diesel::update(
                    payments::table
                        .find(&id)
                        .filter(payments::version.eq(row.version)),
                )
                .set((
                    payments::checks.eq(checks),
                    payments::next_check_at.eq(next),
                    payments::paid_cents.eq(paid_cents),
                    payments::paid_at.eq(paid_at),
                ))
                .execute(conn)?;
                if updated == 0 {
                    return Ok(load(conn, &id)?.state());
                }
                let Some((to, reason)) = change_to else {
                    return Ok(row.state());
                };
                let note = match observed {
                    Observed::Paid { amount_cents } if to == State::Review => {
                        Some(format!("paid {amount_cents} cents of {}", row.amount_cents))
                    }
                    _ => None,
                };
                change(
                    conn,
                    &row,
                    to,
                    reason,
                    note.as_deref(),
                    &ChangedBy::provider(),
                    now,
                )?;
                // The row was changed under this transaction's version guard above, so the change holds.
                Ok::<_, PaymentError>(to)
            })
            .await
    }

    /// Ends the online attempt of a payment whose Paypage session ran out while it is still open at the provider.
    async fn end_session_if_open(&self, id: &str) -> Result<(), PaymentError> {
        let row = self.load(id).await?;
        if row.state() != State::Pending {
            return Ok(());
        }
        if let Err(err) = self.inner.provider.cancel(row.reference()).await {
            tracing::info!(payment = %id, error = %err, "ending the Paypage session at the provider failed");
        }
        let now = self.now();
        let id = id.to_owned();
        self.db()
            .write(move |conn| {
                let row = load(conn, &id)?;
                if row.state() != State::Pending {
                    return Ok(());
                }
                diesel::update(payments::table.find(&id))
                    .set(payments::next_check_at.eq(None::<Timestamp>))
                    .execute(conn)?;
                change(
                    conn,
                    &row,
                    State::Expired,
                    Reason::SessionEnded,
                    None,
                    &ChangedBy::system(),
                    now,
                )
                .map(|_| ())
            })
            .await
    }

    /// Takes a notification: verified, it only makes us ask the provider now (so duplicates, replays and any order
    /// end in the provider's state); not verified, it changes nothing. Answers the state the payment is in
    /// afterwards, if the notification concerned one of ours.
    pub async fn notified(&self, content_type: &str, body: &[u8]) -> Result<Option<State>, PaymentError> {
        let notice = match self.inner.provider.notification(content_type, body) {
            Ok(notice) => notice,
            Err(NoticeError::Ignored(why)) => {
                tracing::debug!(why, "payment notification ignored");
                return Ok(None);
            }
            Err(err) => {
                tracing::warn!(error = %err, "payment notification rejected; nothing changed");
                return Err(err.into());
            }
        };
        let Notice {
            kassenzeichen,
            transaction_number,
        } = notice;
        let found: Option<String> = self
            .db()
            .read(move |conn| {
                let mut query = payments::table.select(payments::id).into_boxed();
                query = match (&kassenzeichen, &transaction_number) {
                    (Some(k), _) => query.filter(payments::kassenzeichen.eq(k.clone())),
                    (None, Some(t)) => query.filter(payments::transaction_number.eq(t.clone())),
                    (None, None) => return Ok(None),
                };
                query.first(conn).optional().map_err(DbError::from)
            })
            .await?;
        let Some(id) = found else {
            tracing::warn!("verified payment notification about a payment we do not know; nothing changed");
            return Ok(None);
        };
        self.refresh(&id).await.map(Some)
    }

    /// The reconciliation job's work: asks the provider about payments due for a check and ends Paypage sessions
    /// that ran out; answers how many it looked at.
    pub async fn reconcile(&self) -> Result<usize, PaymentError> {
        let now = self.now();
        let due: Vec<String> = self
            .db()
            .read(move |conn| {
                payments::table
                    .filter(payments::next_check_at.le(now))
                    .order(payments::next_check_at)
                    .limit(200)
                    .select(payments::id)
                    .load(conn)
                    .map_err(DbError::from)
            })
            .await?;
        for id in &due {
            let row = self.load(id).await?;
            let result = async {
                self.refresh(id).await?;
                if self.session_over(&row, self.now()) {
                    self.end_session_if_open(id).await?;
                }
                Ok::<_, PaymentError>(())
            }
            .await;
            if let Err(err) = result {
                tracing::warn!(payment = %id, error = %err, "reconciling a payment failed");
            }
        }
        Ok(due.len())
    }
}

#[allow(clippy::too_many_arguments, reason = "one row's columns")]
fn insert(
    conn: &mut DbConnection,
    id: &str,
    kassenzeichen: Option<&str>,
    owner: &str,
    unit_id: &str,
    provider: &str,
    amount_cents: i64,
    (purpose, description, bookings): (&str, &str, &str),
    due_on: &str,
    now: Timestamp,
) -> Result<(), DbError> {
    diesel::insert_into(payments::table)
        .values((
            payments::id.eq(id),
            payments::transaction_number.eq(model::transaction_number()),
            payments::kassenzeichen.eq(kassenzeichen),
            payments::owner_ref.eq(owner),
            payments::unit_id.eq(unit_id),
            payments::provider.eq(provider),
            payments::amount_cents.eq(amount_cents),
            payments::purpose.eq(purpose),
            payments::description.eq(description),
            payments::bookings.eq(bookings),
            payments::due_on.eq(due_on),
            payments::state.eq(State::Initial.as_str()),
            payments::checks.eq(0),
            payments::version.eq(1i64),
            payments::created_at.eq(now),
            payments::updated_at.eq(now),
        ))
        .execute(conn)?;
    Ok(())
}

/// The states in which an owner's payment is still open and [`PaymentService::close_open`] ends it.
const OWNER_CLOSABLE: [State; 3] = [State::Initial, State::Pending, State::Expired];

pub(crate) fn load(conn: &mut DbConnection, id: &str) -> Result<PaymentRow, PaymentError> {
    payments::table
        .find(id)
        .select(PaymentRow::as_select())
        .first(conn)
        .optional()?
        .ok_or(PaymentError::NotFound)
}

pub(crate) fn view(conn: &mut DbConnection, row: &PaymentRow) -> Result<PaymentView, PaymentError> {
    let steps: Vec<StepRow> = payment_steps::table
        .filter(payment_steps::payment_id.eq(&row.id))
        .order(payment_steps::seq)
        .select(StepRow::as_select())
        .load(conn)?;
    Ok(PaymentView {
        id: row.id.clone(),
        transaction_number: row.transaction_number.clone(),
        state: row.state(),
        kassenzeichen: row.kassenzeichen.clone(),
        amount_cents: row.amount_cents,
        paid_cents: row.paid_cents,
        purpose: row.purpose.clone(),
        description: row.description.clone(),
        due_on: row.due_on.clone(),
        unit_id: row.unit_id.clone(),
        owner: row.owner_ref.clone(),
        provider: row.provider.clone(),
        bookings: row.bookings(),
        superseded_by: row.superseded_by.clone(),
        created_at: row.created_at,
        updated_at: row.updated_at,
        paid_at: row.paid_at,
        next_check_at: row.next_check_at,
        history: steps
            .into_iter()
            .map(|s| HistoryStep {
                at: s.at,
                from: s.from_state.as_deref().and_then(State::parse),
                to: State::parse(&s.to_state).unwrap_or(State::Review),
                reason: s.reason,
                actor: s.actor,
                note: s.note,
            })
            .collect(),
    })
}

/// Moves `row` to `to` if nobody changed it since it was read: the state, a history step, the audit entry and the
/// event, in the caller's transaction. Answers whether it moved.
pub(crate) fn change(
    conn: &mut DbConnection,
    row: &PaymentRow,
    to: State,
    reason: Reason,
    note: Option<&str>,
    by: &ChangedBy,
    now: Timestamp,
) -> Result<bool, PaymentError> {
    let moved = diesel::update(
        payments::table
            .find(&row.id)
            .filter(payments::version.eq(row.version)),
    )
    .set((
        payments::state.eq(to.as_str()),
        payments::version.eq(row.version + 1),
        payments::updated_at.eq(now),
    ))
    .execute(conn)?;
    if moved == 0 {
        return Ok(false);
    }
    events::changed(conn, row, to, now)?;
    // Last: the audit append locks the log's head row until the commit.
    step(conn, &row.id, Some(row.state()), to, reason, note, by, now)?;
    Ok(true)
}

/// Appends a history step and its audit entry.
#[allow(clippy::too_many_arguments, reason = "one step's columns")]
fn step(
    conn: &mut DbConnection,
    id: &str,
    from: Option<State>,
    to: State,
    reason: Reason,
    note: Option<&str>,
    by: &ChangedBy,
    now: Timestamp,
) -> Result<(), PaymentError> {
    let last: Option<i32> = payment_steps::table
        .filter(payment_steps::payment_id.eq(id))
        .select(diesel::dsl::max(payment_steps::seq))
        .first(conn)?;
    diesel::insert_into(payment_steps::table)
        .values((
            payment_steps::payment_id.eq(id),
            payment_steps::seq.eq(last.unwrap_or(0) + 1),
            payment_steps::from_state.eq(from.map(State::as_str)),
            payment_steps::to_state.eq(to.as_str()),
            payment_steps::reason.eq(reason.as_str()),
            payment_steps::note.eq(note),
            payment_steps::actor.eq(&by.label),
            payment_steps::at.eq(now),
        ))
        .execute(conn)?;
    let action = format!("payment.{}", to.as_str());
    amtsweg_audit::append(
        conn,
        &Event {
            actor: &by.actor,
            action: &action,
            object: Some(("payment", id)),
            outcome: Outcome::Success,
            at: now,
        },
    )?;
    Ok(())
}
