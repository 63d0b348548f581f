//! WAL checkpoints off the writers' path. SQLite's automatic checkpoint runs inside the
//! commit that crosses 1,000 WAL pages, on the committing connection: three fsyncs (~4 ms
//! here) while the store's one connection is held, so every few hundred milliseconds of
//! webhook load one request waited for them (they were the p99 of "webhook → deploy
//! queued"). The store turns it off and this thread checkpoints instead, on a connection of
//! its own, once a second when something was committed. A `PASSIVE` checkpoint never
//! blocks the writer; what it cannot copy yet it copies the next time.
//!
//! The thread ends when the store's last handle goes; closing the store's connection then
//! checkpoints what is left, as SQLite always does.

use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc;
use std::time::Duration;

use rusqlite::Connection;

/// How often the thread looks for new commits.
const EVERY: Duration = Duration::from_secs(1);

/// Keeps the checkpoint thread alive; dropped with the store's last handle.
pub(super) struct Checkpointer {
    _alive: mpsc::Sender<()>,
}

/// Turns off `connection`'s automatic checkpoints and starts the thread that makes them
/// for the database file at `path`.
pub(super) fn start(connection: &Connection, path: &Path) -> rusqlite::Result<Checkpointer> {
    let commits = Arc::new(AtomicU64::new(0));
    let counted = commits.clone();
    connection.commit_hook(Some(move || {
        counted.fetch_add(1, Ordering::Relaxed);
        false // false lets the commit go on
    }))?;
    let own = Connection::open(path)?;
    own.pragma_update(None, "synchronous", "NORMAL")?;
    own.busy_timeout(Duration::from_secs(5))?;
    connection.pragma_update(None, "wal_autocheckpoint", 0)?;
    let (alive, gone) = mpsc::channel::<()>();
    let spawned = std::thread::Builder::new()
        .name("wal-checkpoint".into())
        .spawn(move || {
            let mut checkpointed_at = 0;
            while let Err(mpsc::RecvTimeoutError::Timeout) = gone.recv_timeout(EVERY) {
                let now = commits.load(Ordering::Relaxed);
                if now == checkpointed_at {
                    continue;
                }
                checkpointed_at = now;
                if let Err(e) = own.query_row("PRAGMA wal_checkpoint(PASSIVE)", [], |_| Ok(())) {
                    tracing::warn!("checkpointing the database's write-ahead log failed: {e}");
                }
            }
        });
    if let Err(e) = spawned {
        // Better a checkpoint on the writers' path than a log that only grows.
        tracing::error!("cannot start the WAL checkpoint thread: {e}");
        connection.pragma_update(None, "wal_autocheckpoint", 1000)?;
    }
    Ok(Checkpointer { _alive: alive })
}

#[cfg(test)]
mod tests {
    use crate::store::test_support::{Shop, shop};
    use crate::store::{DATABASE_FILE, NewAuditEntry};

    fn checkpoint_threads() -> usize {
        std::fs::read_dir("/proc/self/task")
            .unwrap()
            .filter_map(|task| std::fs::read_to_string(task.ok()?.path().join("comm")).ok())
            .filter(|name| name.trim() == "wal-checkpoint")
            .count()
    }

    /// Waits up to 20 s for `done`.
    fn eventually(what: &str, done: impl Fn() -> bool) {
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
        while !done() {
            assert!(std::time::Instant::now() < deadline, "{what}");
            std::thread::sleep(std::time::Duration::from_millis(20));
        }
    }

    /// More than the 1,000 pages after which SQLite's own checkpoint would run in a commit:
    /// the store's connection does not make it, the thread copies everything into the
    /// database file, and the thread ends with the store.
    #[test]
    fn the_thread_copies_the_log_into_the_database_and_ends_with_the_store() {
        let Shop { dir, store, .. } = shop("dev");
        // The thread names itself once it runs.
        eventually("one checkpoint thread", || checkpoint_threads() == 1);
        let autocheckpoint: i64 = store
            .conn()
            .query_row("PRAGMA wal_autocheckpoint", [], |row| row.get(0))
            .unwrap();
        assert_eq!(autocheckpoint, 0, "no checkpoint inside a commit");
        let file = dir.path().join(DATABASE_FILE);
        let before = std::fs::metadata(&file).unwrap().len();
        for i in 0..1_500 {
            store
                .append_audit(&NewAuditEntry {
                    actor_kind: None,
                    actor: "test".into(),
                    action: "test.write".into(),
                    target_kind: "test".into(),
                    target_id: None,
                    target_name: None,
                    project_id: None,
                    detail: format!("{i} {}", "x".repeat(4_000)),
                    before: None,
                    after: None,
                })
                .unwrap();
        }
        let size = || std::fs::metadata(&file).unwrap().len();
        eventually("the log reaches the database file", || {
            size() > before + 6_000_000
        });
        drop(store);
        eventually("the thread ends with the store", || {
            checkpoint_threads() == 0
        });
    }
}
