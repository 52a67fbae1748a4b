use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use diesel::connection::SimpleConnection;
use diesel::r2d2::{ConnectionManager, ManageConnection, Pool, PooledConnection};
use diesel::{Connection, RunQueryDsl};

use crate::{Backend, DatabaseUrl, DbConnection};

/// How long after serving a request a connection is trusted without a ping (HikariCP's "alive bypass window").
const ALIVE_WINDOW: Duration = Duration::from_millis(500);

/// How long a request waits for a connection while the database is known to be down (and the slice in which a
/// waiting request looks again whether it is): long enough to take one the pool's background reconnection has
/// just made, short enough that nobody hangs on a database that is away.
const DOWN_CHECKOUT: Duration = Duration::from_millis(200);

#[derive(Debug, thiserror::Error)]
pub enum DbError {
    /// The database cannot be reached or no connection became free in time.
    #[error("database unavailable: {0}")]
    Unavailable(String),
    #[error(transparent)]
    Query(diesel::result::Error),
    #[error("database task failed: {0}")]
    Task(String),
}

/// A statement that failed because the connection to the database was lost (the server restarted or went away) is
/// the database being unavailable — answered 503, retried by jobs — not a failed query.
///
/// Likewise a database whose disk (or, for SQLite, `max_page_count`) is full: the write is rolled back whole and the
/// service answers 503 until space returns — an operator's matter, logged as an error, never a 500.
impl From<diesel::result::Error> for DbError {
    fn from(err: diesel::result::Error) -> DbError {
        if connection_lost(&err) {
            DbError::Unavailable(format!("the connection to the database was lost: {err}"))
        } else if storage_full(&err) {
            tracing::error!(error = %err, "the database's storage is full: writes are refused until space returns");
            DbError::Unavailable(format!("the database's storage is full: {err}"))
        } else {
            DbError::Query(err)
        }
    }
}

fn storage_full(err: &diesel::result::Error) -> bool {
    // Also when it comes at COMMIT (`RollbackErrorOnCommit` names it in its text).
    let message = err.to_string().to_lowercase();
    // SQLite's SQLITE_FULL; PostgreSQL's disk_full (53100) and a failed file extension.
    [
        "database or disk is full",
        "no space left on device",
        "could not extend file",
    ]
    .iter()
    .any(|full| message.contains(full))
}

fn connection_lost(err: &diesel::result::Error) -> bool {
    use diesel::result::{DatabaseErrorKind, Error};
    match err {
        Error::DatabaseError(DatabaseErrorKind::ClosedConnection, _) => true,
        Error::DatabaseError(DatabaseErrorKind::Unknown, info) => {
            let message = info.message().to_lowercase();
            [
                "server closed the connection",
                "terminating connection",
                "no connection to the server",
                "could not receive data from server",
                "could not send data to server",
                "connection refused",
            ]
            .iter()
            .any(|lost| message.contains(lost))
        }
        _ => false,
    }
}

impl DbError {
    pub fn is_unique_violation(&self) -> bool {
        matches!(
            self,
            DbError::Query(diesel::result::Error::DatabaseError(
                diesel::result::DatabaseErrorKind::UniqueViolation,
                _
            ))
        )
    }
}

#[derive(Debug, Clone, Copy)]
pub struct PoolOptions {
    pub max_size: u32,
    /// How long a request waits for a free connection before it is answered 503.
    pub checkout_timeout: Duration,
    pub connect_timeout: Duration,
}

impl Default for PoolOptions {
    fn default() -> Self {
        Self {
            max_size: 10,
            checkout_timeout: Duration::from_secs(5),
            connect_timeout: Duration::from_secs(3),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PoolStatus {
    pub connections: u32,
    pub idle: u32,
    pub max_size: u32,
}

/// A pool of connections to one database. Cheap to clone.
#[derive(Clone)]
pub struct Database {
    inner: Arc<Inner>,
}

struct Inner {
    pool: Pool<Manager>,
    url: DatabaseUrl,
    max_size: u32,
    checkout_timeout: Duration,
    /// Shared with the [`Manager`]: whether the database is known to be away.
    health: Arc<Health>,
    /// SQLite allows one writer at a time; writers queue here instead of meeting `SQLITE_BUSY`.
    write_gate: Mutex<()>,
}

/// A pooled connection and when it last served a request successfully.
pub struct Pooled {
    conn: DbConnection,
    alive_at: Option<Instant>,
}

impl std::ops::Deref for Pooled {
    type Target = DbConnection;

    fn deref(&self) -> &DbConnection {
        &self.conn
    }
}

impl std::ops::DerefMut for Pooled {
    fn deref_mut(&mut self) -> &mut DbConnection {
        &mut self.conn
    }
}

impl Pooled {
    /// Records the outcome of a use: a success vouches for the connection for a moment; after an error the next
    /// check-out pings it first.
    fn served<T, E>(&mut self, outcome: &Result<T, E>) {
        self.alive_at = outcome.is_ok().then(Instant::now);
    }
}

/// Connections for the pool. A connection is pinged on check-out only when it has not served a request in the
/// last half second: busy connections skip a round trip per request, idle ones are still checked, so a restarted
/// database is noticed.
pub struct Manager {
    inner: ConnectionManager<DbConnection>,
    /// The connection string, for connecting to the one backend it names.
    url: String,
    sqlite: bool,
    health: Arc<Health>,
}

/// Whether the database is known to be away, and why.
///
/// `down` is set when a connection could not be made (a broken connection alone only makes the pool connect
/// anew): the database is away, and requests wait only [`DOWN_CHECKOUT`] for a connection instead of the full
/// check-out timeout. It is cleared as soon as a connection is made or checked out again (the pool keeps
/// reconnecting in the background). A busy pool or a slow connect (a remote database) never sets it, so a busy
/// service is not mistaken for an unreachable database.
#[derive(Default)]
struct Health {
    down: AtomicBool,
    /// The last failed connect's reason, for the log and the 503 (r2d2 hands it to one waiter only).
    last_error: Mutex<Option<String>>,
}

impl Health {
    fn failed(&self, reason: String) {
        self.down.store(true, Ordering::Relaxed);
        *self.last_error.lock().unwrap_or_else(|p| p.into_inner()) = Some(reason);
    }

    fn recovered(&self) {
        self.down.store(false, Ordering::Relaxed);
    }

    fn is_down(&self) -> bool {
        self.down.load(Ordering::Relaxed)
    }

    fn last_error(&self) -> Option<String> {
        self.last_error.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }
}

impl Manager {
    /// Connects to the backend the URL names. (The multi-backend connection tries every backend and, when the
    /// database is down, reports only "Invalid connection url for multiconnection"; this keeps the real cause,
    /// e.g. "connection refused", for the log and the readiness answer.)
    fn establish(&self) -> Result<DbConnection, diesel::ConnectionError> {
        if self.sqlite {
            diesel::SqliteConnection::establish(&self.url).map(DbConnection::Sqlite)
        } else {
            diesel::PgConnection::establish(&self.url).map(DbConnection::Postgres)
        }
    }
}

impl ManageConnection for Manager {
    type Connection = Pooled;
    type Error = diesel::r2d2::Error;

    fn connect(&self) -> Result<Pooled, Self::Error> {
        let mut conn = self.establish().map_err(|err| {
            self.health.failed(err.to_string());
            diesel::r2d2::Error::ConnectionError(err)
        })?;
        self.health.recovered();
        if self.sqlite {
            // WAL is set once per file (at start-up), the rest per connection.
            conn.batch_execute(
                "PRAGMA busy_timeout = 5000; PRAGMA foreign_keys = ON; PRAGMA synchronous = FULL;",
            )
            .map_err(diesel::r2d2::Error::QueryError)?;
        } else {
            // The service's statements are short and index-ordered. With bound parameters (a bound LIMIT hides how
            // few rows are wanted) PostgreSQL's generic plans chose parallel workers for the case search: two worker
            // processes started per request, 12.8 ms instead of 2.0 ms for a page of a name search over a million
            // cases. Operators' own sessions (reports, exports) keep parallel query.
            conn.batch_execute("SET max_parallel_workers_per_gather = 0")
                .map_err(diesel::r2d2::Error::QueryError)?;
        }
        Ok(Pooled { conn, alive_at: None })
    }

    fn is_valid(&self, conn: &mut Pooled) -> Result<(), Self::Error> {
        if conn.alive_at.is_some_and(|at| at.elapsed() < ALIVE_WINDOW) {
            return Ok(());
        }
        self.inner.is_valid(&mut conn.conn)
    }

    fn has_broken(&self, conn: &mut Pooled) -> bool {
        self.inner.has_broken(&mut conn.conn)
    }
}

impl Database {
    /// Opens the pool. SQLite files and their directory are created; PostgreSQL must be reachable.
    pub fn connect(url: &DatabaseUrl, options: PoolOptions) -> Result<Database, DbError> {
        let connection_string = url.connection_string(options.connect_timeout.as_secs().max(1));
        if let DatabaseUrl::Sqlite(path) = url {
            if let Some(dir) = path.parent().filter(|dir| !dir.as_os_str().is_empty()) {
                std::fs::create_dir_all(dir).map_err(|err| {
                    DbError::Unavailable(format!("cannot create directory {}: {err}", dir.display()))
                })?;
            }
            let mut first = DbConnection::establish(&connection_string)
                .map_err(|err| DbError::Unavailable(err.to_string()))?;
            first.batch_execute("PRAGMA journal_mode = WAL;")?;
        }
        let health = Arc::new(Health::default());
        let manager = Manager {
            inner: ConnectionManager::new(connection_string.clone()),
            url: connection_string,
            sqlite: url.backend() == Backend::Sqlite,
            health: health.clone(),
        };
        let pool = Pool::builder()
            .max_size(options.max_size)
            .min_idle(Some(1))
            .connection_timeout(options.checkout_timeout)
            .test_on_check_out(true)
            .build(manager)
            .map_err(|err| DbError::Unavailable(err.to_string()))?;
        Ok(Database {
            inner: Arc::new(Inner {
                pool,
                url: url.clone(),
                max_size: options.max_size,
                checkout_timeout: options.checkout_timeout,
                health,
                write_gate: Mutex::new(()),
            }),
        })
    }

    pub fn backend(&self) -> Backend {
        self.inner.url.backend()
    }

    pub fn url(&self) -> &DatabaseUrl {
        &self.inner.url
    }

    pub fn status(&self) -> PoolStatus {
        let state = self.inner.pool.state();
        PoolStatus {
            connections: state.connections,
            idle: state.idle_connections,
            max_size: self.inner.max_size,
        }
    }

    /// A connection for blocking contexts (command-line tools, start-up). Never call this on an async executor
    /// thread; use [`Database::read`] or [`Database::write`] there.
    ///
    /// Waits up to the check-out timeout for a free connection, in slices: as soon as the database is known to be
    /// away (a connection failed meanwhile), the wait ends with `Unavailable` instead of running out the timeout.
    pub fn connection(&self) -> Result<PooledConnection<Manager>, DbError> {
        let deadline = Instant::now() + self.inner.checkout_timeout;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.checkout(DOWN_CHECKOUT.min(left)) {
                Ok(conn) => return Ok(conn),
                Err(err) if self.is_known_down() || Instant::now() >= deadline => return Err(err),
                Err(_) => {}
            }
        }
    }

    /// Whether the database is known to be away (see [`Health`]).
    pub fn is_known_down(&self) -> bool {
        self.inner.health.is_down()
    }

    fn checkout(&self, timeout: Duration) -> Result<PooledConnection<Manager>, DbError> {
        match self.inner.pool.get_timeout(timeout) {
            Ok(conn) => {
                self.inner.health.recovered();
                Ok(conn)
            }
            Err(err) => Err(DbError::Unavailable(match self.inner.health.last_error() {
                Some(reason) if self.is_known_down() => format!("the database cannot be reached: {reason}"),
                _ => err.to_string(),
            })),
        }
    }

    /// Runs `f` with a connection on the blocking thread pool.
    pub async fn read<T, E, F>(&self, f: F) -> Result<T, E>
    where
        F: FnOnce(&mut DbConnection) -> Result<T, E> + Send + 'static,
        T: Send + 'static,
        E: From<DbError> + Send + 'static,
    {
        let db = self.clone();
        spawn(move || {
            let mut conn = db.connection()?;
            let outcome = f(&mut conn);
            conn.served(&outcome);
            outcome
        })
        .await
    }

    /// Runs `f` inside one transaction on the blocking thread pool: all of it is committed, or none of it.
    pub async fn write<T, E, F>(&self, f: F) -> Result<T, E>
    where
        F: FnOnce(&mut DbConnection) -> Result<T, E> + Send + 'static,
        T: Send + 'static,
        E: From<DbError> + From<diesel::result::Error> + Send + 'static,
    {
        let db = self.clone();
        spawn(move || db.write_blocking(f)).await
    }

    /// The blocking form of [`Database::write`], for command-line tools and start-up.
    pub fn write_blocking<T, E, F>(&self, f: F) -> Result<T, E>
    where
        F: FnOnce(&mut DbConnection) -> Result<T, E>,
        E: From<DbError> + From<diesel::result::Error>,
    {
        // SQLite writers queue at the gate before they take a connection: a writer waiting its turn must not hold
        // one of the connections readers need meanwhile.
        let _gate = match self.backend() {
            Backend::Sqlite => Some(self.inner.write_gate.lock().unwrap_or_else(|p| p.into_inner())),
            Backend::Postgres => None,
        };
        let mut pooled = self.connection()?;
        let conn: &mut DbConnection = &mut pooled;
        let hooks = crate::commit::Collector::start();
        let outcome = match conn.backend() {
            Backend::Postgres => conn.transaction(f),
            Backend::Sqlite => immediate_transaction(conn, f),
        };
        pooled.served(&outcome);
        hooks.finish(outcome.is_ok());
        outcome
    }

    /// Whether the database answers within `timeout`. For SQLite the file must also still be where it was opened:
    /// a deleted or moved file would swallow every write.
    pub async fn ping(&self, timeout: Duration) -> Result<(), DbError> {
        let db = self.clone();
        let check = spawn(move || {
            if let DatabaseUrl::Sqlite(path) = &db.inner.url
                && !path.exists()
            {
                return Err(DbError::Unavailable(format!(
                    "database file {} is missing",
                    path.display()
                )));
            }
            let mut conn = db.checkout(timeout.min(db.inner.checkout_timeout))?;
            let outcome = diesel::sql_query("SELECT 1")
                .execute(&mut **conn)
                .map(|_| ())
                .map_err(DbError::from);
            conn.served(&outcome);
            outcome
        });
        match tokio::time::timeout(timeout, check).await {
            Ok(result) => result,
            Err(_) => Err(DbError::Unavailable(format!(
                "no answer within {} ms",
                timeout.as_millis()
            ))),
        }
    }
}

/// A SQLite write transaction that takes the write lock at `BEGIN`. A deferred transaction that reads first and
/// writes later fails with `SQLITE_BUSY` at once when another process wrote in between; an immediate one waits
/// (busy timeout) for the lock instead. The gate above already orders writers of this process.
fn immediate_transaction<T, E, F>(conn: &mut DbConnection, f: F) -> Result<T, E>
where
    F: FnOnce(&mut DbConnection) -> Result<T, E>,
    E: From<diesel::result::Error>,
{
    use diesel::connection::{AnsiTransactionManager, TransactionManager};
    if let DbConnection::Sqlite(lite) = conn {
        AnsiTransactionManager::begin_transaction_sql(lite, "BEGIN IMMEDIATE")?;
    }
    let outcome = f(conn);
    let DbConnection::Sqlite(lite) = conn else {
        return outcome;
    };
    match outcome {
        Ok(value) => {
            AnsiTransactionManager::commit_transaction(lite)?;
            Ok(value)
        }
        Err(err) => {
            // SQLite rolls a transaction back by itself after some errors ("database or disk is full", I/O
            // errors): then there is nothing left to roll back, and the error to report is the first one. A
            // connection whose rollback failed counts as broken and is replaced.
            if let Err(rollback) = AnsiTransactionManager::rollback_transaction(lite) {
                tracing::warn!(error = %rollback, "no rollback after a failed transaction (SQLite ended it itself)");
            }
            Err(err)
        }
    }
}

trait ConnectionBackend {
    fn backend(&self) -> Backend;
}

impl ConnectionBackend for DbConnection {
    fn backend(&self) -> Backend {
        match self {
            DbConnection::Postgres(_) => Backend::Postgres,
            DbConnection::Sqlite(_) => Backend::Sqlite,
        }
    }
}

async fn spawn<T, E, F>(f: F) -> Result<T, E>
where
    F: FnOnce() -> Result<T, E> + Send + 'static,
    T: Send + 'static,
    E: From<DbError> + Send + 'static,
{
    match tokio::task::spawn_blocking(f).await {
        Ok(result) => result,
        Err(err) => Err(DbError::Task(err.to_string()).into()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_lost_connection_is_unavailability_not_a_failed_query() {
        use diesel::result::{DatabaseErrorKind, Error};
        let closed = Error::DatabaseError(
            DatabaseErrorKind::ClosedConnection,
            Box::new(String::from("closed")),
        );
        assert!(matches!(DbError::from(closed), DbError::Unavailable(_)));
        let restarted = Error::DatabaseError(
            DatabaseErrorKind::Unknown,
            Box::new(String::from(
                "terminating connection due to administrator command",
            )),
        );
        assert!(matches!(DbError::from(restarted), DbError::Unavailable(_)));
        let full = Error::DatabaseError(
            DatabaseErrorKind::Unknown,
            Box::new(String::from("database or disk is full")),
        );
        assert!(matches!(DbError::from(full), DbError::Unavailable(_)));
        let duplicate =
            Error::DatabaseError(DatabaseErrorKind::UniqueViolation, Box::new(String::from("dup")));
        assert!(DbError::from(duplicate).is_unique_violation());
        assert!(matches!(
            DbError::from(Error::NotFound),
            DbError::Query(Error::NotFound)
        ));
    }
}
