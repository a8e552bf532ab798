//! The hub's persistent store: embedded SQLite by default, PostgreSQL for scale.
//!
//! One [`Store`] type serves both dialects. Queries are written once where the
//! SQL is the same and dispatched to the pool of the configured backend by
//! [`with_pool!`]; each dialect has its own migrations folder.

pub mod alerts;
mod audit;
pub mod calls;
mod devices;
mod org;
mod plans;
mod users;
mod visits;

pub use audit::AuditEntry;
pub use devices::{DeviceRecord, NewDevice, StoredEvent};
pub use org::{Area, Client, ClientChanges, DutyPeriod, NewClient, Team, TeamChanges, TeamKind};
pub use plans::{BulkImport, Nurse, Pause, Shift, VisitRuleRecord};
pub use users::{NewUser, Role, SessionUser, User};
pub use visits::{Assignment, NewVisit, Visit, VisitEvent, WorklistItem};

use std::path::Path;
use std::str::FromStr;
use std::time::Duration;

use sqlx::migrate::{MigrateError, Migrator};
use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous};
use sqlx::{PgPool, SqlitePool};

static SQLITE_MIGRATIONS: Migrator = sqlx::migrate!("./migrations/sqlite");
static POSTGRES_MIGRATIONS: Migrator = sqlx::migrate!("./migrations/postgres");

/// How long a writer waits for a locked SQLite database before giving up.
const SQLITE_BUSY_TIMEOUT: Duration = Duration::from_secs(5);

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("{0} not found")]
    NotFound(&'static str),
    #[error("{0} already exists")]
    Conflict(&'static str),
    #[error("the database is locked by another process; try again shortly")]
    Busy,
    #[error("the database cannot be reached: {0}")]
    Unavailable(String),
    #[error("database migration failed: {0}")]
    Migration(String),
    #[error("cannot open the database: {0}")]
    Open(String),
    #[error("stored data is invalid: {0}")]
    Corrupt(String),
    #[error("database error: {0}")]
    Database(#[source] sqlx::Error),
}

impl StoreError {
    /// Maps a driver error to the store's error kinds; `what` names the record for conflicts.
    pub(crate) fn from_sqlx(err: sqlx::Error, what: &'static str) -> StoreError {
        match &err {
            sqlx::Error::RowNotFound => StoreError::NotFound(what),
            sqlx::Error::Database(db) => {
                if db.is_unique_violation() {
                    return StoreError::Conflict(what);
                }
                // SQLite: SQLITE_BUSY (5) and SQLITE_LOCKED (6), also as extended codes.
                if let Some(code) = db.code() {
                    let primary = code.parse::<i64>().map(|c| c & 0xff).unwrap_or(-1);
                    if primary == 5 || primary == 6 {
                        return StoreError::Busy;
                    }
                }
                StoreError::Database(err)
            }
            sqlx::Error::Io(_)
            | sqlx::Error::PoolTimedOut
            | sqlx::Error::PoolClosed
            | sqlx::Error::WorkerCrashed
            | sqlx::Error::Tls(_)
            | sqlx::Error::Protocol(_) => StoreError::Unavailable(err.to_string()),
            _ => StoreError::Database(err),
        }
    }

    /// True when retrying later may succeed (locked or unreachable database).
    pub fn is_transient(&self) -> bool {
        matches!(self, StoreError::Busy | StoreError::Unavailable(_))
    }
}

pub type StoreResult<T> = Result<T, StoreError>;

#[derive(Clone, Debug)]
pub(crate) enum Backend {
    Sqlite(SqlitePool),
    Postgres(PgPool),
}

/// Runs the same expression against whichever pool the store uses.
macro_rules! with_pool {
    ($store:expr, $pool:ident => $body:expr) => {
        match &$store.backend {
            $crate::store::Backend::Sqlite($pool) => $body,
            $crate::store::Backend::Postgres($pool) => $body,
        }
    };
}
pub(crate) use with_pool;

/// Runs a statement on whichever pool the store uses; yields the rows affected.
macro_rules! execute {
    ($store:expr, $pool:ident => $body:expr) => {
        $crate::store::with_pool!($store, $pool => ($body).map(|r| r.rows_affected()))
    };
}
pub(crate) use execute;

/// The hub's store. Cheap to clone.
#[derive(Clone, Debug)]
pub struct Store {
    pub(crate) backend: Backend,
}

impl Store {
    /// Opens the store described by `database_url`, or the SQLite file in `data_dir`,
    /// and brings its schema up to date.
    #[tracing::instrument(skip_all)]
    pub async fn open(database_url: Option<&str>, data_dir: &Path) -> StoreResult<Store> {
        let store = match database_url {
            Some(url) if url.starts_with("postgres://") || url.starts_with("postgresql://") => {
                Store::open_postgres(url).await?
            }
            Some(url) if url.starts_with("sqlite:") => {
                let options = SqliteConnectOptions::from_str(url)
                    .map_err(|e| StoreError::Open(format!("invalid SQLite URL: {e}")))?;
                Store::open_sqlite(options).await?
            }
            Some(other) => {
                let scheme = other.split("://").next().unwrap_or(other);
                return Err(StoreError::Open(format!(
                    "unsupported database URL scheme {scheme:?}; use postgres:// or sqlite://"
                )));
            }
            None => {
                std::fs::create_dir_all(data_dir).map_err(|e| {
                    StoreError::Open(format!("cannot create {}: {e}", data_dir.display()))
                })?;
                Store::open_sqlite(
                    SqliteConnectOptions::new().filename(data_dir.join("etahoiva.db")),
                )
                .await?
            }
        };
        store.migrate().await?;
        Ok(store)
    }

    async fn open_sqlite(options: SqliteConnectOptions) -> StoreResult<Store> {
        let options = options
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            // Alarms are acknowledged to terminals only once stored: FULL survives power loss.
            .synchronous(SqliteSynchronous::Full)
            .foreign_keys(true)
            .busy_timeout(SQLITE_BUSY_TIMEOUT)
            // A national schedule is millions of visit rows: keep the hot pages in memory.
            .pragma("cache_size", "-32768")
            .pragma("temp_store", "memory");
        let pool = SqlitePoolOptions::new()
            .max_connections(8)
            .acquire_timeout(Duration::from_secs(10))
            .connect_with(options)
            .await
            .map_err(|e| match StoreError::from_sqlx(e, "database") {
                StoreError::Database(e) => StoreError::Open(e.to_string()),
                other => other,
            })?;
        Ok(Store {
            backend: Backend::Sqlite(pool),
        })
    }

    async fn open_postgres(url: &str) -> StoreResult<Store> {
        let options = PgConnectOptions::from_str(url)
            .map_err(|e| StoreError::Open(format!("invalid PostgreSQL URL: {e}")))?
            .application_name("etahoiva");
        let pool = PgPoolOptions::new()
            .max_connections(16)
            .acquire_timeout(Duration::from_secs(10))
            .test_before_acquire(true)
            .connect_with(options)
            .await
            .map_err(|e| StoreError::Unavailable(e.to_string()))?;
        Ok(Store {
            backend: Backend::Postgres(pool),
        })
    }

    async fn migrate(&self) -> StoreResult<()> {
        let result = match &self.backend {
            Backend::Sqlite(pool) => SQLITE_MIGRATIONS.run(pool).await,
            Backend::Postgres(pool) => POSTGRES_MIGRATIONS.run(pool).await,
        };
        result.map_err(|e| match e {
            MigrateError::Execute(inner) => match StoreError::from_sqlx(inner, "migration") {
                StoreError::Database(e) => StoreError::Migration(e.to_string()),
                other => other,
            },
            MigrateError::ExecuteMigration(inner, version) => {
                StoreError::Migration(format!("migration {version} was rolled back: {inner}"))
            }
            MigrateError::VersionMissing(v) => StoreError::Migration(format!(
                "the database was migrated by a newer version of Etahoiva (migration {v} is unknown to this binary)"
            )),
            MigrateError::VersionMismatch(v) => StoreError::Migration(format!(
                "migration {v} was changed after it was applied; the database does not match this binary"
            )),
            MigrateError::Dirty(v) => StoreError::Migration(format!(
                "migration {v} failed part-way earlier; restore from backup or repair it by hand"
            )),
            other => StoreError::Migration(other.to_string()),
        })
    }

    /// Name of the backend, for health output and logs.
    pub fn kind(&self) -> &'static str {
        match self.backend {
            Backend::Sqlite(_) => "sqlite",
            Backend::Postgres(_) => "postgres",
        }
    }

    /// Answers when the database does.
    pub async fn ping(&self) -> StoreResult<()> {
        execute!(self, pool => sqlx::query("SELECT 1").execute(pool).await)
            .map(|_| ())
            .map_err(|e| StoreError::from_sqlx(e, "database"))
    }

    pub async fn get_meta(&self, key: &str) -> StoreResult<Option<String>> {
        with_pool!(self, pool => sqlx::query_scalar::<_, String>("SELECT value FROM meta WHERE key = $1")
            .bind(key)
            .fetch_optional(pool)
            .await)
        .map_err(|e| StoreError::from_sqlx(e, "setting"))
    }

    pub async fn set_meta(&self, key: &str, value: &str) -> StoreResult<()> {
        execute!(self, pool => sqlx::query(
            "INSERT INTO meta (key, value) VALUES ($1, $2) ON CONFLICT (key) DO UPDATE SET value = excluded.value",
        )
        .bind(key)
        .bind(value)
        .execute(pool)
        .await)
        .map(|_| ())
        .map_err(|e| StoreError::from_sqlx(e, "setting"))
    }

    /// Closes every connection; used on shutdown.
    pub async fn close(&self) {
        with_pool!(self, pool => pool.close().await)
    }
}

/// Milliseconds since the Unix epoch, the store's time representation.
pub fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}

/// A new random identifier, time-ordered.
pub fn new_id() -> String {
    uuid::Uuid::now_v7().to_string()
}
