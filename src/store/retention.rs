//! Pruning what grows without bound: webhook events (by age and count) and the logs of
//! finished deploys (by age and by how many newer deploys their stage has had). The deploy
//! rows themselves stay (they are small and instances point at them).
//!
//! Each call deletes in small batches, each under its own short lock, so a first prune of
//! a large backlog does not hold up requests.

use chrono::{DateTime, Utc};

use super::{Store, StoreResult, timestamp};

/// Rows deleted per batch (one lock, one transaction).
const BATCH: i64 = 5_000;
/// Deploys whose logs are deleted per batch.
const DEPLOY_BATCH: usize = 50;

impl Store {
    /// Deletes webhook events received before `before`, then the oldest beyond `keep`.
    /// Returns how many were deleted.
    pub fn prune_webhook_events(&self, before: DateTime<Utc>, keep: u32) -> StoreResult<u64> {
        let before = timestamp(before);
        let mut deleted = 0u64;
        loop {
            let n = self.conn().execute(
                "DELETE FROM webhook_events WHERE id IN (
                    SELECT id FROM webhook_events WHERE received_at < ?1 LIMIT ?2)",
                (&before, BATCH),
            )?;
            deleted += n as u64;
            if (n as i64) < BATCH {
                break;
            }
        }
        // The id of the `keep`-th newest event; everything older goes.
        let cutoff: Option<i64> = {
            use rusqlite::OptionalExtension;
            self.conn()
                .query_row(
                    "SELECT id FROM webhook_events ORDER BY id DESC LIMIT 1 OFFSET ?1",
                    [i64::from(keep.max(1)) - 1],
                    |r| r.get(0),
                )
                .optional()?
        };
        if let Some(cutoff) = cutoff {
            loop {
                let n = self.conn().execute(
                    "DELETE FROM webhook_events WHERE id IN (
                        SELECT id FROM webhook_events WHERE id < ?1 LIMIT ?2)",
                    (cutoff, BATCH),
                )?;
                deleted += n as u64;
                if (n as i64) < BATCH {
                    break;
                }
            }
        }
        Ok(deleted)
    }

    /// Deletes the log lines of finished deploys that finished before `before`, or that
    /// have at least `keep_per_stage` newer deploys in their stage. Deploys still running
    /// keep theirs. Returns how many log lines were deleted.
    pub fn prune_deploy_logs(
        &self,
        before: DateTime<Utc>,
        keep_per_stage: u32,
    ) -> StoreResult<u64> {
        let before = timestamp(before);
        let doomed: Vec<i64> = {
            let conn = self.conn();
            let mut statement = conn.prepare(
                "SELECT id FROM (
                    SELECT id, status, finished_at,
                        ROW_NUMBER() OVER (PARTITION BY stage_id ORDER BY id DESC) AS newer
                    FROM deploys)
                 WHERE status IN ('success', 'failed', 'rolled_back', 'superseded', 'rejected', 'expired')
                   AND (COALESCE(finished_at, '') < ?1 OR newer > ?2)
                   AND EXISTS (SELECT 1 FROM deploy_logs WHERE deploy_id = id)",
            )?;
            let rows =
                statement.query_map((&before, i64::from(keep_per_stage.max(1))), |r| r.get(0))?;
            rows.collect::<Result<_, _>>()?
        };
        let mut deleted = 0u64;
        for chunk in doomed.chunks(DEPLOY_BATCH) {
            let mut conn = self.conn();
            let tx = conn.transaction()?;
            for id in chunk {
                deleted += tx.execute("DELETE FROM deploy_logs WHERE deploy_id = ?1", [id])? as u64;
            }
            tx.commit()?;
        }
        Ok(deleted)
    }
}
