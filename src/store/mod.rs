//! The store: one SQLite file (WAL, foreign keys on, STRICT tables), migrated at start-up,
//! with typed CRUD for every entity of DESIGN.md.
//!
//! Invariants:
//! - this is the only module that knows SQL (a tidy test enforces it);
//! - secrets go in as plaintext and are sealed here, bound to their row, before they touch
//!   the file; they come out opened only through the `*_secret` accessors;
//! - a missing row is `StoreError::NotFound`, a unique clash `Conflict`, never a panic or
//!   an empty default.
//!
//! Calls are synchronous and short (one statement or one small transaction on a local
//! file), so async callers make them directly; the connection sits behind a mutex.

mod admission;
mod checkpointer;
mod config_cache;
mod deploys;
mod env;
mod instances;
mod managed;
mod notifications;
mod poll_state;
mod projects;
mod registries;
mod release;
mod retention;
mod settings;
mod stage_targets;
mod stages;
#[cfg(test)]
pub(crate) mod test_support;
mod users;
mod webhook_events;

use std::path::Path;
use std::sync::{Arc, Mutex, MutexGuard};

use chrono::{DateTime, SecondsFormat, Utc};
use rusqlite::{Connection, ErrorCode, OptionalExtension, Transaction};
use rusqlite_migration::{M, Migrations};

use crate::crypto::{CryptoError, Sealer};

pub use admission::{Admission, Admissions, Admitted, Superseded};
pub use config_cache::{ProjectWithStages, WebhookView};
pub use deploys::{
    Deploy, DeployFilter, DeployLogEntry, DeployStatus, LogLevel, NewDeploy, Trigger,
};
pub use instances::{Instance, InstanceStatus, NewInstance};
pub use managed::{ManagedKind, ManagedMarker, ScratchStore};
pub use notifications::{
    DeliveryStatus, EventKind, NewNotificationTarget, NotificationKind, NotificationTarget,
    NotificationTargetUpdate, OutboxEntry, TargetFilter, Templates,
};
pub use poll_state::{PollResult, PollState, SeenTags};
pub use projects::{
    EnvVar, NewProject, Project, ProjectEvent, ProjectHealth, ProjectUpdate, StoredEnvVar,
};
pub use registries::{NewRegistry, Registry, RegistryUpdate};
pub use release::{ActorKind, AuditEntry, AuditFilter, Decision, NewAuditEntry, VersionPolicy};
pub use settings::{ProxyKind, Reachability, Settings, SettingsUpdate, WebhookLimits};
pub use stage_targets::{StageTarget, SwarmTarget};
pub use stages::{NewStage, Stage, StageRelease, StageUpdate};
pub use users::{ApiToken, Session, TokenScope, User};
pub use webhook_events::{NewWebhookEvent, WebhookEvent, WebhookOutcome};

/// Statements kept prepared (`prepare_cached`; SQLite's text is the key).
const PREPARED_STATEMENTS: usize = 64;

/// Name of the database file inside the data folder.
pub const DATABASE_FILE: &str = "docker-watcher.db";

/// SQLite's page cache for the connection, in KiB (SQLite's default is 2,000). The pages
/// every request reads (settings, projects, stages, sessions) fit many times over; what
/// a webhook burst or a long deploy history reads once would otherwise stay cached for
/// good, and a miss costs a read from the OS's file cache, a few microseconds.
const PAGE_CACHE_KIB: i64 = 512;

/// Errors callers branch on. Anything else is `Database` with SQLite's message.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("{entity} {key} not found")]
    NotFound { entity: &'static str, key: String },
    #[error("{0}")]
    Conflict(String),
    #[error("{0}")]
    Invalid(String),
    #[error("secret could not be opened: {0}")]
    Crypto(#[from] CryptoError),
    #[error("database error: {0}")]
    Database(String),
}

impl StoreError {
    fn not_found(entity: &'static str, key: impl ToString) -> StoreError {
        StoreError::NotFound {
            entity,
            key: key.to_string(),
        }
    }
}

impl From<rusqlite::Error> for StoreError {
    fn from(error: rusqlite::Error) -> StoreError {
        match &error {
            rusqlite::Error::SqliteFailure(e, message) => {
                let message = message.clone().unwrap_or_else(|| e.to_string());
                match (e.code, e.extended_code) {
                    (ErrorCode::ConstraintViolation, rusqlite::ffi::SQLITE_CONSTRAINT_UNIQUE)
                    | (
                        ErrorCode::ConstraintViolation,
                        rusqlite::ffi::SQLITE_CONSTRAINT_PRIMARYKEY,
                    ) => StoreError::Conflict(unique_message(&message)),
                    (
                        ErrorCode::ConstraintViolation,
                        rusqlite::ffi::SQLITE_CONSTRAINT_FOREIGNKEY,
                    ) => StoreError::Invalid("refers to a row that does not exist".into()),
                    (ErrorCode::ConstraintViolation, _) => {
                        StoreError::Invalid(format!("rejected by the schema: {message}"))
                    }
                    _ => StoreError::Database(message),
                }
            }
            _ => StoreError::Database(error.to_string()),
        }
    }
}

impl From<serde_json::Error> for StoreError {
    fn from(error: serde_json::Error) -> StoreError {
        StoreError::Database(format!("bad JSON column: {error}"))
    }
}

/// Turns SQLite's "UNIQUE constraint failed: projects.name" into "projects.name is already taken".
fn unique_message(message: &str) -> String {
    match message.strip_prefix("UNIQUE constraint failed: ") {
        Some(columns) => format!("{columns} is already taken"),
        None => message.to_string(),
    }
}

pub type StoreResult<T> = Result<T, StoreError>;

/// Handle on the database. Cheap to clone.
#[derive(Clone)]
pub struct Store {
    connection: Arc<Mutex<Connection>>,
    sealer: Arc<Sealer>,
    cache: Arc<config_cache::ConfigCache>,
    /// The WAL checkpoint thread of a database file, alive while the store is.
    _checkpointer: Option<Arc<checkpointer::Checkpointer>>,
}

impl Store {
    /// Opens (creating if needed) the database in `data_dir` and applies migrations.
    pub fn open(data_dir: &Path, sealer: Sealer) -> StoreResult<Store> {
        std::fs::create_dir_all(data_dir).map_err(|e| {
            StoreError::Database(format!("cannot create {}: {e}", data_dir.display()))
        })?;
        let file = data_dir.join(DATABASE_FILE);
        let mut store = Self::from_connection(Connection::open(&file)?, sealer)?;
        let checkpointer = checkpointer::start(&store.conn(), &file)?;
        store._checkpointer = Some(Arc::new(checkpointer));
        Ok(store)
    }

    fn from_connection(mut connection: Connection, sealer: Sealer) -> StoreResult<Store> {
        connection.pragma_update(None, "journal_mode", "WAL")?;
        connection.pragma_update(None, "synchronous", "NORMAL")?;
        connection.pragma_update(None, "cache_size", -PAGE_CACHE_KIB)?;
        connection.busy_timeout(std::time::Duration::from_secs(5))?;
        // Hot statements (a webhook's, a deploy's) are prepared once, not per call:
        // preparing was a quarter of the CPU of a deploy-starting webhook.
        connection.set_prepared_statement_cache_capacity(PREPARED_STATEMENTS);
        // Foreign keys are off while migrating, as SQLite's table rebuild asks (a dropped
        // table would otherwise take its children's rows with it); migrations that rebuild
        // check the keys afterwards (`foreign_key_check`).
        connection.pragma_update(None, "foreign_keys", "OFF")?;
        migrations()
            .to_latest(&mut connection)
            .map_err(|e| StoreError::Database(format!("migration failed: {e}")))?;
        connection.pragma_update(None, "foreign_keys", "ON")?;
        let cache = Arc::new(config_cache::ConfigCache::default());
        cache.watch(&connection)?;
        let store = Store {
            connection: Arc::new(Mutex::new(connection)),
            sealer: Arc::new(sealer),
            cache,
            _checkpointer: None,
        };
        store.ensure_settings_row()?;
        Ok(store)
    }

    /// The folder the database file lives in: the daemon's data folder (deployed
    /// containers may never mount it). `None` for a database that is not a file.
    pub fn data_dir(&self) -> Option<std::path::PathBuf> {
        let conn = self.conn();
        let file = conn.path().filter(|p| !p.is_empty())?;
        Path::new(file).parent().map(Path::to_path_buf)
    }

    /// A cheap query that proves the file is readable, for /healthz.
    pub fn ping(&self) -> StoreResult<()> {
        self.conn()
            .query_row("SELECT 1", [], |_| Ok(()))
            .map_err(Into::into)
    }

    /// Re-seals every secret under `new_sealer`'s current key in one transaction, and from
    /// then on seals with it. `new_sealer` must still open values sealed under the old key.
    /// Returns how many values were re-sealed.
    pub fn reseal_all(&mut self, new_sealer: Sealer) -> StoreResult<usize> {
        let count = {
            let mut conn = self.conn();
            let tx = conn.transaction()?;
            let mut count = 0;
            for column in SEALED_COLUMNS {
                count += reseal_column(&tx, &new_sealer, column)?;
            }
            for table in env::ENV_TABLES {
                count += env::reseal_env_table(&tx, &new_sealer, table)?;
            }
            tx.commit()?;
            count
        };
        self.sealer = Arc::new(new_sealer);
        Ok(count)
    }

    fn conn(&self) -> MutexGuard<'_, Connection> {
        // A panic while holding the lock cannot leave SQLite half-written (transactions roll
        // back on drop), so a poisoned lock is safe to keep using.
        self.connection
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    fn seal(&self, context: &str, plaintext: &str) -> String {
        self.sealer.seal(context, plaintext)
    }

    fn open_secret(&self, context: &str, sealed: &str) -> StoreResult<String> {
        Ok(self.sealer.open(context, sealed)?)
    }
}

/// A sealed column: table, column, and the context each value is bound to (with its row id).
struct SealedColumn {
    table: &'static str,
    column: &'static str,
}

impl SealedColumn {
    fn context(&self, id: i64) -> String {
        format!("{}.{}:{id}", self.table, self.column)
    }
}

const SEALED_COLUMNS: &[SealedColumn] = &[
    registries::SECRET,
    settings::WEBHOOK_SECRET,
    settings::WEBHOOK_SIGNING_SECRET,
    settings::PROXY_SECRET,
    notifications::URL,
];

fn reseal_column(tx: &Transaction, sealer: &Sealer, column: &SealedColumn) -> StoreResult<usize> {
    let select = format!(
        "SELECT id, {col} FROM {table} WHERE {col} IS NOT NULL",
        col = column.column,
        table = column.table
    );
    let rows: Vec<(i64, String)> = tx
        .prepare(&select)?
        .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))?
        .collect::<Result<_, _>>()?;
    let update = format!(
        "UPDATE {table} SET {col} = ?1 WHERE id = ?2",
        col = column.column,
        table = column.table
    );
    for (id, sealed) in &rows {
        let context = column.context(*id);
        let plaintext = sealer.open(&context, sealed)?;
        tx.execute(&update, (sealer.seal(&context, &plaintext), id))?;
    }
    Ok(rows.len())
}

fn migrations() -> Migrations<'static> {
    Migrations::new(vec![
        M::up(include_str!("migrations/001_initial.sql")),
        M::up(include_str!(
            "migrations/002_token_scopes_and_container_policy.sql"
        )),
        M::up(include_str!("migrations/003_webhook_limits.sql")),
        M::up(include_str!("migrations/004_instance_stopping.sql")).foreign_key_check(),
        M::up(include_str!("migrations/005_notifications.sql")).foreign_key_check(),
        M::up(include_str!("migrations/006_managed_resources.sql")),
        M::up(include_str!("migrations/007_release_workflow.sql")).foreign_key_check(),
        M::up(include_str!("migrations/008_webhook_senders.sql")),
        M::up(include_str!("migrations/009_stage_targets.sql")),
        M::up(include_str!("migrations/010_audit_retention.sql")),
        M::up(include_str!("migrations/011_audit_anonymous_actor.sql")),
    ])
}

/// The one text form of a time in the database.
fn timestamp(at: DateTime<Utc>) -> String {
    at.to_rfc3339_opts(SecondsFormat::Millis, true)
}

fn from_millis(ms: i64) -> std::time::Duration {
    std::time::Duration::from_millis(ms.max(0).unsigned_abs())
}

fn now() -> String {
    timestamp(Utc::now())
}

fn parse_time(text: &str) -> rusqlite::Result<DateTime<Utc>> {
    DateTime::parse_from_rfc3339(text)
        .map(|t| t.with_timezone(&Utc))
        .map_err(|e| {
            rusqlite::Error::FromSqlConversionFailure(0, rusqlite::types::Type::Text, e.into())
        })
}

fn parse_opt_time(text: Option<String>) -> rusqlite::Result<Option<DateTime<Utc>>> {
    text.as_deref().map(parse_time).transpose()
}

/// Reads a JSON column into `T`, as a conversion error when it does not parse.
fn json_column<T: serde::de::DeserializeOwned>(text: String) -> rusqlite::Result<T> {
    serde_json::from_str(&text).map_err(|e| {
        rusqlite::Error::FromSqlConversionFailure(0, rusqlite::types::Type::Text, e.into())
    })
}

/// Maps a parse failure of a stored enum to a conversion error instead of a panic.
fn parse_column<T: std::str::FromStr>(text: String) -> rusqlite::Result<T> {
    text.parse().map_err(|_| {
        rusqlite::Error::FromSqlConversionFailure(
            0,
            rusqlite::types::Type::Text,
            format!("unexpected value {text:?}").into(),
        )
    })
}

fn changed_or_not_found(
    changed: usize,
    entity: &'static str,
    key: impl ToString,
) -> StoreResult<()> {
    if changed == 0 {
        Err(StoreError::not_found(entity, key))
    } else {
        Ok(())
    }
}

/// `query_row` that turns "no rows" into `NotFound`.
fn one<T>(
    conn: &Connection,
    sql: &str,
    params: impl rusqlite::Params,
    map: impl FnOnce(&rusqlite::Row<'_>) -> rusqlite::Result<T>,
    entity: &'static str,
    key: impl ToString,
) -> StoreResult<T> {
    conn.prepare_cached(sql)?
        .query_row(params, map)
        .optional()?
        .ok_or_else(|| StoreError::not_found(entity, key))
}

/// Declares a `FromStr`/`as_str` pair for an enum stored as text.
macro_rules! text_enum {
    ($(#[$meta:meta])* $vis:vis enum $name:ident { $($(#[$vmeta:meta])* $variant:ident => $text:literal),+ $(,)? }) => {
        $(#[$meta])*
        #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
        $vis enum $name { $($(#[$vmeta])* $variant),+ }

        impl $name {
            pub const ALL: &'static [$name] = &[$($name::$variant),+];

            pub fn as_str(self) -> &'static str {
                match self { $($name::$variant => $text),+ }
            }
        }

        impl std::str::FromStr for $name {
            type Err = String;
            fn from_str(s: &str) -> Result<Self, String> {
                match s {
                    $($text => Ok($name::$variant),)+
                    other => Err(format!(
                        "unknown {} {other:?}: expected one of {}",
                        stringify!($name),
                        [$($text),+].join(", ")
                    )),
                }
            }
        }

        impl std::fmt::Display for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(self.as_str())
            }
        }
    };
}
pub(crate) use text_enum;
