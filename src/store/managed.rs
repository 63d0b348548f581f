//! Markers on resources a projects file manages (table `managed_resources`), and the
//! scratch copy of the database that an apply is checked against before it touches the
//! real one.

use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use chrono::{DateTime, Utc};
use rusqlite::{Connection, Row};

use super::{Store, StoreError, StoreResult, now, parse_column, parse_time, text_enum};

text_enum! {
    /// What a marker is on. `settings` has the one id 1.
    pub enum ManagedKind {
        Registry => "registry",
        Project => "project",
        Stage => "stage",
        Notification => "notification",
        Settings => "settings",
    }
}

/// Where a managed resource comes from.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ManagedMarker {
    pub kind: ManagedKind,
    pub resource_id: i64,
    /// The file or folder that was applied, as it was given.
    pub origin: String,
    /// The file the resource is written in and its line.
    pub file: String,
    pub line: u32,
    pub applied_at: DateTime<Utc>,
}

fn from_row(row: &Row<'_>) -> rusqlite::Result<ManagedMarker> {
    Ok(ManagedMarker {
        kind: parse_column(row.get(0)?)?,
        resource_id: row.get(1)?,
        origin: row.get(2)?,
        file: row.get(3)?,
        line: row.get(4)?,
        applied_at: parse_time(&row.get::<_, String>(5)?)?,
    })
}

const COLUMNS: &str = "kind, resource_id, origin, file, line, applied_at";

impl Store {
    /// Every marker, by kind and id.
    pub fn list_managed(&self) -> StoreResult<Vec<ManagedMarker>> {
        let conn = self.conn();
        let mut statement = conn.prepare(&format!(
            "SELECT {COLUMNS} FROM managed_resources ORDER BY kind, resource_id"
        ))?;
        let rows = statement.query_map([], from_row)?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    /// The marker on one resource, if it is managed.
    pub fn managed(
        &self,
        kind: ManagedKind,
        resource_id: i64,
    ) -> StoreResult<Option<ManagedMarker>> {
        use rusqlite::OptionalExtension;
        Ok(self
            .conn()
            .query_row(
                &format!(
                    "SELECT {COLUMNS} FROM managed_resources WHERE kind = ?1 AND resource_id = ?2"
                ),
                (kind.as_str(), resource_id),
                from_row,
            )
            .optional()?)
    }

    /// Marks the resources as coming from their file and line (replacing older marks),
    /// and unmarks the ones of `origin` not among them, in one transaction.
    pub fn set_managed(&self, origin: &str, markers: &[ManagedMarker]) -> StoreResult<()> {
        let mut conn = self.conn();
        let tx = conn.transaction()?;
        tx.execute("DELETE FROM managed_resources WHERE origin = ?1", [origin])?;
        let at = now();
        for m in markers {
            tx.execute(
                "INSERT INTO managed_resources (kind, resource_id, origin, file, line, applied_at)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6)
                 ON CONFLICT (kind, resource_id) DO UPDATE SET origin = excluded.origin,
                     file = excluded.file, line = excluded.line, applied_at = excluded.applied_at",
                (m.kind.as_str(), m.resource_id, origin, &m.file, m.line, &at),
            )?;
        }
        tx.commit()?;
        Ok(())
    }

    /// A copy of the whole database in a file beside it (so checks that look at the data
    /// folder see the same one), to run an apply against before the real one. The copy
    /// is deleted when the returned value is dropped.
    pub fn scratch_copy(&self) -> StoreResult<ScratchStore> {
        let folder = self.data_dir().unwrap_or_else(std::env::temp_dir);
        let path = folder.join(format!(".apply-check-{}.db", uuid::Uuid::new_v4()));
        // Made 0600 and empty first: VACUUM INTO fills an empty file and keeps its mode.
        {
            use std::os::unix::fs::OpenOptionsExt;
            std::fs::OpenOptions::new()
                .create_new(true)
                .write(true)
                .mode(0o600)
                .open(&path)
                .map_err(|e| {
                    StoreError::Database(format!("cannot create {}: {e}", path.display()))
                })?;
        }
        let file = RemoveOnDrop(path);
        let target = file.0.to_str().ok_or_else(|| {
            StoreError::Database(format!("{} is not a UTF-8 path", file.0.display()))
        })?;
        self.conn().execute("VACUUM INTO ?1", [target])?;
        let connection = Connection::open(&file.0)?;
        connection.pragma_update(None, "foreign_keys", "ON")?;
        connection.pragma_update(None, "journal_mode", "MEMORY")?;
        // Its own cache, kept true by its own connection's writes.
        let cache = Arc::new(super::config_cache::ConfigCache::default());
        cache.watch(&connection)?;
        Ok(ScratchStore {
            store: Store {
                connection: Arc::new(Mutex::new(connection)),
                sealer: self.sealer.clone(),
                cache,
                // Not WAL: nothing to checkpoint.
                _checkpointer: None,
            },
            _file: file,
        })
    }
}

/// A throw-away copy of the store; its file goes when this is dropped (an open
/// connection to a removed file keeps working until it closes).
pub struct ScratchStore {
    pub store: Store,
    _file: RemoveOnDrop,
}

struct RemoveOnDrop(PathBuf);

impl Drop for RemoveOnDrop {
    fn drop(&mut self) {
        for suffix in ["", "-journal", "-wal", "-shm"] {
            let mut file = self.0.clone().into_os_string();
            file.push(suffix);
            let _ = std::fs::remove_file(file);
        }
    }
}
