//! `Idempotency-Key` (IETF draft, Stripe semantics) for requests that create something.
//!
//! The first request with a key claims it (caller, route, key) with a hash of its body. The handler's write
//! records the response in the same transaction ([`Claim::record`]), so the record exists if and only if the write
//! committed. Then:
//! - a retry with the same key and body gets the stored response again (`Idempotent-Replayed: true`);
//! - the same key with another body is refused with 422 `idempotency_key_reused`;
//! - the same key while the first request still runs is refused with 409 `idempotency_key_in_use`;
//! - a request whose write failed releases its claim, so the client may try again with the same key.
//!
//! A response that shows a secret once is recorded without it ([`recorder_without_secret`]): the replay says so
//! instead. Keys are kept at least 24 hours, then purged by a daily job.

mod schema;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use actix_web::http::StatusCode;
use actix_web::http::header::{HeaderName, HeaderValue};
use actix_web::{FromRequest, HttpRequest, HttpResponse, dev::Payload};
use amtsweg_db::{Database, DbConnection, DbError, InTransaction};
use amtsweg_jobs::{JobError, Period, Registry, Schedule, handler_fn};
use amtsweg_kernel::http::JSON_CONTENT_TYPE;
use amtsweg_kernel::{ApiError, SharedClock, Text, Timestamp};
use chrono::Duration;
use diesel::prelude::*;
use serde::Serialize;
use serde_json::json;
use sha2::{Digest, Sha256};

use schema::idempotency_keys as keys;

pub const HEADER: &str = "idempotency-key";
pub static REPLAYED: HeaderName = HeaderName::from_static("idempotent-replayed");

/// How long a key is remembered.
const KEEP: Duration = Duration::hours(24);
/// How long a claim holds before a retry may take it over (the first request died without an answer).
const CLAIM_LEASE: Duration = Duration::seconds(60);

/// The `Idempotency-Key` header of a request, if it carries one: 1–255 visible ASCII characters.
#[derive(Debug, Clone)]
pub struct IdempotencyKey(pub Option<String>);

impl IdempotencyKey {
    /// For routes that require a key: 400 `idempotency_key_required` without one.
    pub fn required(self) -> Result<String, ApiError> {
        self.0.ok_or_else(|| {
            ApiError::bad_request(
                "idempotency_key_required",
                Text::fixed(
                    "Diese Anfrage braucht einen Idempotency-Key-Header.",
                    "This request needs an Idempotency-Key header.",
                ),
            )
        })
    }
}

impl FromRequest for IdempotencyKey {
    type Error = ApiError;
    type Future = std::future::Ready<Result<Self, ApiError>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        let parsed = match req.headers().get(HEADER) {
            None => Ok(IdempotencyKey(None)),
            Some(value) => match value.to_str() {
                Ok(key) if (1..=255).contains(&key.len()) && key.bytes().all(|b| b.is_ascii_graphic()) => {
                    Ok(IdempotencyKey(Some(key.to_owned())))
                }
                _ => Err(ApiError::bad_request(
                    "invalid_idempotency_key",
                    Text::fixed(
                        "Der Idempotency-Key muss aus 1 bis 255 sichtbaren ASCII-Zeichen bestehen.",
                        "The Idempotency-Key must be 1 to 255 visible ASCII characters.",
                    ),
                )),
            },
        };
        std::future::ready(parsed)
    }
}

/// The outcome of presenting a key.
pub enum Begun {
    /// The key is this request's; record the response in the write's transaction.
    Fresh(Claim),
    /// A retry: answer with this stored response.
    Replay(HttpResponse),
}

/// A key claimed by the running request. Dropped without a committed record, it is released again.
pub struct Claim {
    db: Database,
    caller: String,
    route: String,
    key: String,
    recorded: Arc<AtomicBool>,
}

fn hash(request: &impl Serialize) -> Result<String, ApiError> {
    // serde_json writes object members in a fixed order for a given type, so equal bodies hash equal.
    let bytes = serde_json::to_vec(request).map_err(ApiError::internal)?;
    Ok(hex::encode(Sha256::digest(bytes)))
}

fn db_problem(err: DbError) -> ApiError {
    match err {
        DbError::Unavailable(cause) => ApiError::unavailable(cause),
        other => ApiError::internal(other),
    }
}

#[derive(Queryable)]
struct Stored {
    request_hash: String,
    state: String,
    locked_until: Option<Timestamp>,
    response_status: Option<i32>,
    response_body: Option<String>,
    expires_at: Timestamp,
}

/// What a presented key turned out to be.
enum Found {
    Fresh,
    Reused,
    InUse,
    Done(i32, String),
}

/// Presents `key` for `request` by `caller` on `route` (e.g. `POST /api/v1/organisations`).
pub async fn begin(
    db: &Database,
    clock: &SharedClock,
    key: String,
    caller: String,
    route: String,
    request: &impl Serialize,
) -> Result<Begun, ApiError> {
    let request_hash = hash(request)?;
    releasing::settle(&caller, &route, &key).await;
    let now = clock.now();
    let (c, r, k) = (caller.clone(), route.clone(), key.clone());
    let found = db
        .write(move |conn| claim(conn, &c, &r, &k, &request_hash, now))
        .await
        .map_err(db_problem)?;
    match found {
        Found::Fresh => Ok(Begun::Fresh(Claim {
            db: db.clone(),
            caller,
            route,
            key,
            recorded: Arc::new(AtomicBool::new(false)),
        })),
        Found::Reused => Err(ApiError::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "idempotency_key_reused",
            Text::fixed(
                "Dieser Idempotency-Key wurde schon für eine andere Anfrage verwendet.",
                "This Idempotency-Key was already used for a different request.",
            ),
        )),
        Found::InUse => Err(ApiError::new(
            StatusCode::CONFLICT,
            "idempotency_key_in_use",
            Text::fixed(
                "Eine Anfrage mit diesem Idempotency-Key läuft noch. Bitte gleich erneut versuchen.",
                "A request with this Idempotency-Key is still running. Please retry shortly.",
            ),
        )
        .with_header(
            actix_web::http::header::RETRY_AFTER,
            HeaderValue::from_static("1"),
        )),
        Found::Done(status, body) => {
            let status = u16::try_from(status)
                .ok()
                .and_then(|s| StatusCode::from_u16(s).ok())
                .unwrap_or(StatusCode::OK);
            Ok(Begun::Replay(
                HttpResponse::build(status)
                    .insert_header((actix_web::http::header::CONTENT_TYPE, JSON_CONTENT_TYPE))
                    .insert_header((REPLAYED.clone(), HeaderValue::from_static("true")))
                    .body(body),
            ))
        }
    }
}

fn claim(
    conn: &mut DbConnection,
    caller: &str,
    route: &str,
    key: &str,
    request_hash: &str,
    now: Timestamp,
) -> Result<Found, DbError> {
    let insert = diesel::insert_into(keys::table)
        .values((
            keys::caller.eq(caller),
            keys::route.eq(route),
            keys::idempotency_key.eq(key),
            keys::request_hash.eq(request_hash),
            keys::state.eq("running"),
            keys::locked_until.eq(now + CLAIM_LEASE),
            keys::created_at.eq(now),
            keys::expires_at.eq(now + KEEP),
        ))
        .on_conflict_do_nothing();
    let inserted = match conn {
        DbConnection::Postgres(pg) => insert.execute(pg)?,
        DbConnection::Sqlite(lite) => insert.execute(lite)?,
    };
    if inserted == 1 {
        return Ok(Found::Fresh);
    }
    let row = keys::table.find((caller, route, key));
    let stored: Stored = row
        .select((
            keys::request_hash,
            keys::state,
            keys::locked_until,
            keys::response_status,
            keys::response_body,
            keys::expires_at,
        ))
        .first(conn)?;
    let expired = stored.expires_at <= now;
    let abandoned = stored.state == "running" && stored.locked_until.is_none_or(|until| until <= now);
    if expired || abandoned {
        // A key past its time, or a claim whose request died: this request takes it over.
        diesel::update(row)
            .set((
                keys::request_hash.eq(request_hash),
                keys::state.eq("running"),
                keys::locked_until.eq(now + CLAIM_LEASE),
                keys::response_status.eq(None::<i32>),
                keys::response_body.eq(None::<String>),
                keys::created_at.eq(now),
                keys::expires_at.eq(now + KEEP),
            ))
            .execute(conn)?;
        return Ok(Found::Fresh);
    }
    if stored.request_hash != request_hash {
        return Ok(Found::Reused);
    }
    match (
        stored.state.as_str(),
        stored.response_status,
        stored.response_body,
    ) {
        ("done", Some(status), Some(body)) => Ok(Found::Done(status, body)),
        _ => Ok(Found::InUse),
    }
}

/// How a request with an optional key goes on.
pub enum Start {
    /// Answer with the stored response of the first request.
    Replay(HttpResponse),
    /// Do the work; with a key, record the response through the claim.
    Proceed(Option<Claim>),
}

/// Presents the request's key, if it has one (for routes where the key is optional).
pub async fn start(
    db: &Database,
    clock: &SharedClock,
    key: IdempotencyKey,
    caller: String,
    route: String,
    request: &impl Serialize,
) -> Result<Start, ApiError> {
    let Some(key) = key.0 else {
        return Ok(Start::Proceed(None));
    };
    Ok(match begin(db, clock, key, caller, route, request).await? {
        Begun::Fresh(claim) => Start::Proceed(Some(claim)),
        Begun::Replay(response) => Start::Replay(response),
    })
}

/// Records the response in the use case's transaction, when there is a claim.
pub fn recorder<T: Serialize>(claim: Option<&Claim>, status: StatusCode) -> InTransaction<T> {
    match claim {
        None => amtsweg_db::nothing(),
        Some(claim) => {
            let target = claim.target();
            Box::new(move |conn, response| target.store(conn, status, response))
        }
    }
}

/// Like [`recorder`] for a response that shows a secret once: the stored one has `secret` removed and says
/// `"secret_already_shown": true`.
pub fn recorder_without_secret<T: Serialize>(
    claim: Option<&Claim>,
    status: StatusCode,
    secret: &'static str,
) -> InTransaction<T> {
    match claim {
        None => amtsweg_db::nothing(),
        Some(claim) => {
            let target = claim.target();
            Box::new(move |conn, response| {
                let mut replay =
                    serde_json::to_value(response).map_err(|err| DbError::Task(err.to_string()))?;
                if let Some(members) = replay.as_object_mut() {
                    members.remove(secret);
                    members.insert("secret_already_shown".into(), json!(true));
                }
                target.store(conn, status, &replay)
            })
        }
    }
}

/// Where a claim's response goes; cheap to move into a transaction while the claim stays with the request.
struct Target {
    caller: String,
    route: String,
    key: String,
    recorded: Arc<AtomicBool>,
}

impl Target {
    fn store(
        &self,
        conn: &mut DbConnection,
        status: StatusCode,
        body: &impl Serialize,
    ) -> Result<(), DbError> {
        let body = serde_json::to_string(body).map_err(|err| DbError::Task(err.to_string()))?;
        diesel::update(keys::table.find((&self.caller, &self.route, &self.key)))
            .set((
                keys::state.eq("done"),
                keys::locked_until.eq(None::<Timestamp>),
                keys::response_status.eq(i32::from(status.as_u16())),
                keys::response_body.eq(body),
            ))
            .execute(conn)?;
        let recorded = self.recorded.clone();
        amtsweg_db::after_commit(move || recorded.store(true, Ordering::SeqCst));
        Ok(())
    }
}

impl Claim {
    fn target(&self) -> Target {
        Target {
            caller: self.caller.clone(),
            route: self.route.clone(),
            key: self.key.clone(),
            recorded: self.recorded.clone(),
        }
    }

    /// Records the response inside the transaction of the request's write.
    pub fn record(
        &self,
        conn: &mut DbConnection,
        status: StatusCode,
        body: &impl Serialize,
    ) -> Result<(), DbError> {
        self.target().store(conn, status, body)
    }
}

impl Drop for Claim {
    fn drop(&mut self) {
        if self.recorded.load(Ordering::SeqCst) {
            return;
        }
        // The write failed or was never made: give the key back, so the client can retry with it.
        let (db, caller, route, key) = (
            self.db.clone(),
            self.caller.clone(),
            self.route.clone(),
            self.key.clone(),
        );
        if let Ok(runtime) = tokio::runtime::Handle::try_current() {
            let pending = releasing::start(&caller, &route, &key);
            runtime.spawn(async move {
                let _pending = pending;
                let released = db
                    .write(move |conn| {
                        diesel::delete(
                            keys::table
                                .find((&caller, &route, &key))
                                .filter(keys::state.eq("running")),
                        )
                        .execute(conn)
                        .map_err(DbError::from)
                    })
                    .await;
                if let Err(err) = released {
                    tracing::warn!(error = %err, "idempotency key not released; it frees itself after its lease");
                }
            });
        }
    }
}

/// Idempotency as a module of the composition root: its daily purge of keys older than 24 hours.
pub struct Idempotency {
    pub db: Database,
    pub clock: SharedClock,
}

impl amtsweg_module::Module for Idempotency {
    fn name(&self) -> &'static str {
        "idempotency"
    }

    fn jobs(&self) -> Registry {
        jobs(self.db.clone(), self.clock.clone())
    }
}

fn jobs(db: Database, clock: SharedClock) -> Registry {
    const PURGE: &str = "idempotency.purge";
    Registry::new()
        .handler(handler_fn(PURGE, 3, move |_| {
            let (db, now) = (db.clone(), clock.now());
            async move {
                let purged = db
                    .write(move |conn| {
                        diesel::delete(keys::table.filter(keys::expires_at.le(now)))
                            .execute(conn)
                            .map_err(DbError::from)
                    })
                    .await
                    .map_err(|err| JobError::Transient(err.to_string()))?;
                Ok(Some(json!({"purged": purged})))
            }
        }))
        .schedule(Schedule {
            name: "purge-idempotency-keys",
            period: Period::daily(),
            kind: PURGE,
            payload: json!({}),
        })
}

/// Keys of failed requests whose release has not committed yet. The release runs after the failed request has
/// answered; a client retrying at once with the same key (and another body, say a corrected one) must find the
/// key free, not still claimed — so, within this process, a new request with that key waits for the release.
mod releasing {
    use std::collections::HashSet;
    use std::sync::{Mutex, MutexGuard, PoisonError};
    use std::time::{Duration, Instant};

    type Key = (String, String, String);

    static KEYS: Mutex<Option<HashSet<Key>>> = Mutex::new(None);

    fn keys() -> MutexGuard<'static, Option<HashSet<Key>>> {
        KEYS.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn key(caller: &str, route: &str, key: &str) -> Key {
        (caller.to_owned(), route.to_owned(), key.to_owned())
    }

    /// Marks a key as being released until the returned guard is dropped.
    pub(super) fn start(caller: &str, route: &str, id: &str) -> Pending {
        let pending = key(caller, route, id);
        keys().get_or_insert_with(HashSet::new).insert(pending.clone());
        Pending(pending)
    }

    pub(super) struct Pending(Key);

    impl Drop for Pending {
        fn drop(&mut self) {
            if let Some(set) = keys().as_mut() {
                set.remove(&self.0);
            }
        }
    }

    /// Waits (at most two seconds) until a release of this key has committed.
    pub(super) async fn settle(caller: &str, route: &str, id: &str) {
        let wanted = key(caller, route, id);
        let started = Instant::now();
        while keys().as_ref().is_some_and(|set| set.contains(&wanted))
            && started.elapsed() < Duration::from_secs(2)
        {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    }
}

/// Stored responses may name the account (an organisation's members, say): they belong to its export, and an
/// erasure removes them — they only serve retries within a day.
pub struct IdempotencyPersonalData;

fn callers(account_id: &str) -> [String; 2] {
    [format!("citizen:{account_id}"), format!("staff:{account_id}")]
}

impl amtsweg_db::personal_data::PersonalData for IdempotencyPersonalData {
    fn section(&self) -> &'static str {
        "idempotency"
    }

    fn tables(&self) -> &'static [&'static str] {
        &["idempotency_keys"]
    }

    fn export(&self, conn: &mut DbConnection, account_id: &str) -> Result<serde_json::Value, DbError> {
        let rows: Vec<(String, Timestamp)> = keys::table
            .filter(keys::caller.eq_any(callers(account_id)))
            .select((keys::route, keys::created_at))
            .load(conn)?;
        Ok(json!({
            "stored_responses": rows.into_iter().map(|(route, at)| json!({
                "route": route,
                "at": at.rfc3339(),
            })).collect::<Vec<_>>()
        }))
    }

    fn erase(
        &self,
        conn: &mut DbConnection,
        account_id: &str,
        _now: Timestamp,
    ) -> Result<Vec<amtsweg_db::personal_data::Retained>, DbError> {
        diesel::delete(keys::table.filter(keys::caller.eq_any(callers(account_id)))).execute(conn)?;
        Ok(Vec::new())
    }
}
