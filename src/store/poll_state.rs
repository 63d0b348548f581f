//! Poll state per stage: the tags (and digests) seen, and how the last poll went.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use rusqlite::{OptionalExtension, Row};

use super::{Store, StoreResult, json_column, now, parse_column, parse_opt_time, text_enum};

text_enum! {
    pub enum PollResult {
        /// First poll of the stage: recorded what exists, deployed nothing.
        Baseline => "baseline",
        NoChange => "no_change",
        NewTag => "new_tag",
        Error => "error",
    }
}

/// Tag → digest (when digest tracking is on, else `None`).
pub type SeenTags = BTreeMap<String, Option<String>>;

#[derive(Clone, Debug, PartialEq)]
pub struct PollState {
    pub stage_id: i64,
    pub seen: SeenTags,
    /// When the first successful poll recorded what existed; `None` means the next
    /// successful poll is the baseline and deploys nothing.
    pub baseline_at: Option<DateTime<Utc>>,
    pub last_polled_at: Option<DateTime<Utc>>,
    pub last_result: Option<PollResult>,
    pub last_error: Option<String>,
    pub last_new_tag: Option<String>,
    pub consecutive_failures: u32,
}

fn from_row(row: &Row<'_>) -> rusqlite::Result<PollState> {
    Ok(PollState {
        stage_id: row.get(0)?,
        seen: json_column(row.get::<_, String>(1)?)?,
        baseline_at: parse_opt_time(row.get(2)?)?,
        last_polled_at: parse_opt_time(row.get(3)?)?,
        last_result: row
            .get::<_, Option<String>>(4)?
            .map(parse_column)
            .transpose()?,
        last_error: row.get(5)?,
        last_new_tag: row.get(6)?,
        consecutive_failures: row.get(7)?,
    })
}

/// Saves what a poll saw: (stage id, seen JSON, now, result, new tag or NULL).
const RECORD_POLL: &str = "INSERT INTO poll_state (stage_id, seen_json, baseline_at, last_polled_at, last_result, last_error, last_new_tag, consecutive_failures)
     VALUES (?1, ?2, ?3, ?3, ?4, NULL, ?5, 0)
     ON CONFLICT (stage_id) DO UPDATE SET seen_json = ?2, baseline_at = COALESCE(baseline_at, ?3),
        last_polled_at = ?3, last_result = ?4,
        last_error = NULL, last_new_tag = COALESCE(?5, last_new_tag), consecutive_failures = 0";

impl Store {
    /// `None` until the stage has been polled once.
    pub fn get_poll_state(&self, stage_id: i64) -> StoreResult<Option<PollState>> {
        Ok(self
            .conn()
            .query_row(
                "SELECT stage_id, seen_json, baseline_at, last_polled_at, last_result, last_error, last_new_tag,
                        consecutive_failures FROM poll_state WHERE stage_id = ?1",
                [stage_id],
                from_row,
            )
            .optional()?)
    }

    /// Records a successful poll: the full set of tags seen and what came of it.
    /// Every stage's poll state, by stage id: one read for a whole poll cycle.
    pub fn poll_states(&self) -> StoreResult<std::collections::HashMap<i64, PollState>> {
        let conn = self.conn();
        let mut statement = conn.prepare(
            "SELECT stage_id, seen_json, baseline_at, last_polled_at, last_result, last_error, last_new_tag,
                    consecutive_failures FROM poll_state",
        )?;
        let rows = statement.query_map([], from_row)?;
        rows.map(|row| row.map(|state| (state.stage_id, state)).map_err(Into::into))
            .collect()
    }

    /// [`Store::record_poll`] for many stages in one transaction (a poll cycle's stages
    /// that saw nothing new): all are saved, or none.
    pub fn record_polls(&self, polls: &[(i64, SeenTags, PollResult)]) -> StoreResult<()> {
        let mut conn = self.conn();
        let tx = conn.transaction()?;
        {
            let mut upsert = tx.prepare_cached(RECORD_POLL)?;
            let at = now();
            for (stage_id, seen, result) in polls {
                upsert.execute((
                    stage_id,
                    serde_json::to_string(seen)?,
                    &at,
                    result.as_str(),
                    None::<&str>,
                ))?;
            }
        }
        tx.commit()?;
        Ok(())
    }

    pub fn record_poll(
        &self,
        stage_id: i64,
        seen: &SeenTags,
        result: PollResult,
        new_tag: Option<&str>,
    ) -> StoreResult<()> {
        self.conn().execute(
            RECORD_POLL,
            (
                stage_id,
                serde_json::to_string(seen)?,
                now(),
                result.as_str(),
                new_tag,
            ),
        )?;
        Ok(())
    }

    /// Records a failed poll, keeping the tags seen before. Returns the failure count.
    pub fn record_poll_error(&self, stage_id: i64, error: &str) -> StoreResult<u32> {
        let conn = self.conn();
        conn.execute(
            "INSERT INTO poll_state (stage_id, last_polled_at, last_result, last_error, consecutive_failures)
             VALUES (?1, ?2, 'error', ?3, 1)
             ON CONFLICT (stage_id) DO UPDATE SET last_polled_at = ?2, last_result = 'error',
                last_error = ?3, consecutive_failures = consecutive_failures + 1",
            (stage_id, now(), error),
        )?;
        Ok(conn.query_row(
            "SELECT consecutive_failures FROM poll_state WHERE stage_id = ?1",
            [stage_id],
            |r| r.get(0),
        )?)
    }
}
