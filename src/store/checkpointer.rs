//! WAL checkpoints mostly off the writers' path. SQLite's automatic checkpoint runs inside
//! the commit that crosses 1,000 WAL pages (its default, which the store keeps), on the
//! committing connection: copying the pages and three fsyncs (~4 ms here) while the
//! store's one connection is held, so every few hundred milliseconds of webhook load one
//! request waited for them (they were the p99 of "webhook → deploy queued", 4.5–5.0 ms
//! against a 5 ms goal). This thread checkpoints on a connection of its own every [`EVERY`] when
//! something was committed; a `PASSIVE` checkpoint never blocks the writer. Under light
//! load the log then never reaches the writer's threshold.
//!
//! The writer keeps its own checkpoint, at SQLite's default threshold, as the bound on the
//! log: the log starts over only when a write begins with every page checkpointed, which
//! under sustained writes (each of the thread's checkpoints overtaken by commits) never
//! happens; without it the log grew without end (2 GB in a one-minute webhook benchmark).
//! Its checkpoints are cheaper for the thread's: most pages are copied and synced already.
//! Measured alternatives: a 4,000-page bound made each of the writer's checkpoints longer
//! (webhook p99 12–16 ms on the static binary); a check once a second did too.
//!
//! The thread ends when the store's last handle goes, and the store waits for it; the
//! last connection to close then checkpoints what is left, as SQLite always does.

use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc;
use std::time::Duration;

use rusqlite::Connection;

/// How often the thread looks for new commits.
const EVERY: Duration = Duration::from_millis(100);
/// The thread's connection only copies pages from the log to the file: a small cache.
const CACHE_KIB: i64 = 64;

/// The checkpoint thread; dropped with the store's last handle, it ends the thread and
/// waits for it, so no connection to the file outlives the store.
pub(super) struct Checkpointer {
    alive: Option<mpsc::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Drop for Checkpointer {
    fn drop(&mut self) {
        drop(self.alive.take());
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

/// Moves most of `connection`'s checkpoints to a thread with a connection of its own to
/// the database file at `path`.
pub(super) fn start(connection: &Connection, path: &Path) -> rusqlite::Result<Checkpointer> {
    let commits = Arc::new(AtomicU64::new(0));
    let counted = commits.clone();
    connection.commit_hook(Some(move || {
        counted.fetch_add(1, Ordering::Relaxed);
        false // false lets the commit go on
    }))?;
    let own = Connection::open(path)?;
    own.pragma_update(None, "synchronous", "NORMAL")?;
    own.pragma_update(None, "cache_size", -CACHE_KIB)?;
    own.busy_timeout(Duration::from_secs(5))?;
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
    // Without the thread the writer's own checkpoint still runs, as it always did.
    let thread = spawned
        .map_err(|e| tracing::error!("cannot start the WAL checkpoint thread: {e}"))
        .ok();
    Ok(Checkpointer {
        alive: Some(alive),
        thread,
    })
}

#[cfg(test)]
mod tests {
    use crate::store::test_support::{Shop, shop};
    use crate::store::{DATABASE_FILE, NewAuditEntry, Store};

    /// The log's size (pages of 4 KiB) at which the writer checkpoints itself: SQLite's
    /// default, which the store keeps.
    const WRITER_CHECKPOINT_PAGES: i64 = 1_000;

    fn audit(store: &Store, detail: String) {
        store
            .append_audit(&NewAuditEntry {
                actor_kind: None,
                actor: "test".into(),
                action: "test.write".into(),
                target_kind: "test".into(),
                target_id: None,
                target_name: None,
                project_id: None,
                detail,
                before: None,
                after: None,
            })
            .unwrap();
    }

    /// Waits up to 20 s for `done`.
    fn eventually(what: &str, done: impl Fn() -> bool) {
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
        while !done() {
            assert!(std::time::Instant::now() < deadline, "{what}");
            std::thread::sleep(std::time::Duration::from_millis(20));
        }
    }

    /// Fewer writes than make the writer checkpoint: the thread copies them into the
    /// database file, and its connection is closed with the store.
    #[test]
    fn the_thread_copies_the_log_into_the_database_and_ends_with_the_store() {
        let Shop { dir, store, .. } = shop("dev");
        let autocheckpoint: i64 = store
            .conn()
            .query_row("PRAGMA wal_autocheckpoint", [], |row| row.get(0))
            .unwrap();
        assert_eq!(
            autocheckpoint, WRITER_CHECKPOINT_PAGES,
            "the writer's bound"
        );
        let file = dir.path().join(DATABASE_FILE);
        let before = std::fs::metadata(&file).unwrap().len();
        // Each commit adds a few frames to the log (the row's pages, the table's and the
        // indexes' leaves): ~500 in all, fewer than make the writer checkpoint, so only
        // the thread can copy them into the file.
        for i in 0..100 {
            audit(&store, format!("{i} {}", "x".repeat(4_000)));
        }
        let size = || std::fs::metadata(&file).unwrap().len();
        eventually("the log reaches the database file", || {
            size() > before + 350_000
        });
        drop(store);
        // The last connection to close removes the log: none outlived the store.
        let wal = dir.path().join(format!("{DATABASE_FILE}-wal"));
        assert!(!wal.exists(), "{} is still there", wal.display());
    }

    /// Commits without a pause, so that the thread's checkpoints are always overtaken:
    /// the log still starts over near the writer's bound instead of growing without end.
    #[test]
    fn sustained_writes_keep_the_log_bounded() {
        let Shop { dir, store, .. } = shop("dev");
        let wal = dir.path().join(format!("{DATABASE_FILE}-wal"));
        let mut largest = 0;
        for i in 0..30_000 {
            audit(&store, format!("{i} {}", "x".repeat(1_000)));
            if i % 500 == 0 {
                largest = largest.max(std::fs::metadata(&wal).unwrap().len());
            }
        }
        largest = largest.max(std::fs::metadata(&wal).unwrap().len());
        // The writer's checkpoint waits while the thread's runs (one at a time), so the
        // log can pass the bound by what is committed meanwhile; unbounded, these writes
        // make a log of over 100 MB.
        let bound = 2 * WRITER_CHECKPOINT_PAGES as u64 * 4_096;
        assert!(
            largest < bound,
            "the log grew to {largest} bytes (bound {bound})"
        );
    }
}
