//! Deploys (one attempt to bring a tag to a stage) and their step-by-step logs.

use chrono::{DateTime, Utc};
use rusqlite::{Connection, Row};

use super::{
    Store, StoreResult, changed_or_not_found, now, one, parse_column, parse_opt_time, parse_time,
    text_enum, timestamp,
};

text_enum! {
    /// What started a deploy.
    pub enum Trigger {
        Webhook => "webhook",
        Poll => "poll",
        Manual => "manual",
        Api => "api",
        /// Another stage's deploy, promoted here with its digest.
        Promotion => "promotion",
    }
}

text_enum! {
    /// Where a deploy is. The first two wait outside the queue (for approvals, for a
    /// deploy window); `success` and what follows it are final.
    pub enum DeployStatus {
        AwaitingApproval => "awaiting_approval",
        Scheduled => "scheduled",
        Pending => "pending",
        Pulling => "pulling",
        Starting => "starting",
        ConfiguringProxy => "configuring_proxy",
        HealthChecking => "health_checking",
        Success => "success",
        Failed => "failed",
        RolledBack => "rolled_back",
        Superseded => "superseded",
        /// An approver said no; it never ran.
        Rejected => "rejected",
        /// Its approvals did not come in time; it never ran.
        Expired => "expired",
    }
}

impl DeployStatus {
    pub fn is_final(self) -> bool {
        matches!(
            self,
            DeployStatus::Success
                | DeployStatus::Failed
                | DeployStatus::RolledBack
                | DeployStatus::Superseded
                | DeployStatus::Rejected
                | DeployStatus::Expired
        )
    }

    /// Waiting outside the queue: for approvals or for a deploy window.
    pub fn is_waiting(self) -> bool {
        matches!(
            self,
            DeployStatus::AwaitingApproval | DeployStatus::Scheduled
        )
    }
}

text_enum! {
    pub enum LogLevel {
        Debug => "debug",
        Info => "info",
        Warn => "warn",
        Error => "error",
    }
}

#[derive(Clone, Debug, PartialEq)]
pub struct Deploy {
    pub id: i64,
    pub project_id: i64,
    pub stage_id: i64,
    pub tag: String,
    pub digest: Option<String>,
    pub trigger: Trigger,
    pub status: DeployStatus,
    /// The step that failed, for `failed` and `rolled_back`.
    pub failed_step: Option<String>,
    pub error: Option<String>,
    pub instance_id: Option<i64>,
    /// When the new tag was first noticed (push webhook or poll), for detection-to-serving time.
    pub detected_at: Option<DateTime<Utc>>,
    pub created_at: DateTime<Utc>,
    pub started_at: Option<DateTime<Utc>>,
    pub finished_at: Option<DateTime<Utc>>,
    /// The stage (and deploy) a promotion took its digest from.
    pub promoted_from_stage_id: Option<i64>,
    pub promoted_from_deploy_id: Option<i64>,
    /// When a deploy awaiting approval expires.
    pub approval_expires_at: Option<DateTime<Utc>>,
    /// A person chose to deploy outside the stage's windows.
    pub outside_window: bool,
}

#[derive(Clone, Debug)]
pub struct NewDeploy {
    pub project_id: i64,
    pub stage_id: i64,
    pub tag: String,
    pub digest: Option<String>,
    pub trigger: Trigger,
    pub detected_at: Option<DateTime<Utc>>,
}

#[derive(Clone, Debug, PartialEq)]
pub struct DeployLogEntry {
    pub id: i64,
    pub deploy_id: i64,
    pub at: DateTime<Utc>,
    pub level: LogLevel,
    pub step: String,
    pub message: String,
}

/// [`Store::list_unfinished_deploys`]'s clause. Start-up asks it, so it must not read the
/// whole history: its first line is the condition of the partial index
/// `deploys_unfinished` (migration 007) verbatim, which is what lets SQLite use the index
/// (it does not work out that a longer `NOT IN` list implies the index's). `+id` keeps
/// SQLite from walking the table in id order to save sorting the few rows found.
const UNFINISHED_QUERY: &str =
    "status NOT IN ('success', 'failed', 'rolled_back', 'superseded', 'rejected', 'expired')
    AND status NOT IN ('awaiting_approval', 'scheduled') ORDER BY +id";

const COLUMNS: &str = "id, project_id, stage_id, tag, digest, trigger, status, failed_step, error,
    instance_id, detected_at, created_at, started_at, finished_at, promoted_from_stage_id,
    promoted_from_deploy_id, approval_expires_at, outside_window";

fn from_row(row: &Row<'_>) -> rusqlite::Result<Deploy> {
    Ok(Deploy {
        id: row.get(0)?,
        project_id: row.get(1)?,
        stage_id: row.get(2)?,
        tag: row.get(3)?,
        digest: row.get(4)?,
        trigger: parse_column(row.get(5)?)?,
        status: parse_column(row.get(6)?)?,
        failed_step: row.get(7)?,
        error: row.get(8)?,
        instance_id: row.get(9)?,
        detected_at: parse_opt_time(row.get(10)?)?,
        created_at: parse_time(&row.get::<_, String>(11)?)?,
        started_at: parse_opt_time(row.get(12)?)?,
        finished_at: parse_opt_time(row.get(13)?)?,
        promoted_from_stage_id: row.get(14)?,
        promoted_from_deploy_id: row.get(15)?,
        approval_expires_at: parse_opt_time(row.get(16)?)?,
        outside_window: row.get(17)?,
    })
}

fn log_from_row(row: &Row<'_>) -> rusqlite::Result<DeployLogEntry> {
    Ok(DeployLogEntry {
        id: row.get(0)?,
        deploy_id: row.get(1)?,
        at: parse_time(&row.get::<_, String>(2)?)?,
        level: parse_column(row.get(3)?)?,
        step: row.get(4)?,
        message: row.get(5)?,
    })
}

/// Filters for listing deploys; `None` means any.
#[derive(Clone, Debug, Default)]
pub struct DeployFilter {
    pub project_id: Option<i64>,
    pub stage_id: Option<i64>,
    pub status: Option<DeployStatus>,
    /// Only deploys with an id below this (paging backwards from the newest).
    pub before_id: Option<i64>,
    pub limit: u32,
}

impl Store {
    pub fn create_deploy(&self, new: &NewDeploy) -> StoreResult<Deploy> {
        let conn = self.conn();
        let id = insert(&conn, new, &Placement::default())?;
        get(&conn, id)
    }

    pub fn get_deploy(&self, id: i64) -> StoreResult<Deploy> {
        get(&self.conn(), id)
    }

    /// Newest first.
    pub fn list_deploys_by_project(&self, project_id: i64, limit: u32) -> StoreResult<Vec<Deploy>> {
        self.list_deploys(&DeployFilter {
            project_id: Some(project_id),
            limit,
            ..Default::default()
        })
    }

    /// The most recent deploys of any project, newest first.
    pub fn list_recent_deploys(&self, limit: u32) -> StoreResult<Vec<Deploy>> {
        self.list_deploys(&DeployFilter {
            limit,
            ..Default::default()
        })
    }

    pub fn list_deploys(&self, filter: &DeployFilter) -> StoreResult<Vec<Deploy>> {
        let conn = self.conn();
        let mut statement = conn.prepare(&format!(
            "SELECT {COLUMNS} FROM deploys
             WHERE (?1 IS NULL OR project_id = ?1) AND (?2 IS NULL OR stage_id = ?2)
               AND (?3 IS NULL OR status = ?3) AND (?4 IS NULL OR id < ?4)
             ORDER BY id DESC LIMIT ?5"
        ))?;
        let rows = statement.query_map(
            rusqlite::params![
                filter.project_id,
                filter.stage_id,
                filter.status.map(DeployStatus::as_str),
                filter.before_id,
                filter.limit.max(1),
            ],
            from_row,
        )?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    /// Deploys queued or under way (what a crash leaves behind), oldest first. Deploys
    /// waiting for approval or a window are not: they wait in the store, not the queue.
    pub fn list_unfinished_deploys(&self) -> StoreResult<Vec<Deploy>> {
        self.deploys_where(UNFINISHED_QUERY, [])
    }

    /// Deploys matching a `WHERE` clause of this module's callers (never user input).
    pub(super) fn deploys_where(
        &self,
        clause: &str,
        params: impl rusqlite::Params,
    ) -> StoreResult<Vec<Deploy>> {
        let conn = self.conn();
        let mut statement =
            conn.prepare_cached(&format!("SELECT {COLUMNS} FROM deploys WHERE {clause}"))?;
        let rows = statement.query_map(params, from_row)?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    /// Moves a deploy to `status`; sets `started_at` on the first move out of pending and
    /// `finished_at` on a final status.
    pub fn set_deploy_status(&self, id: i64, status: DeployStatus) -> StoreResult<()> {
        set_status(&self.conn(), id, status)
    }

    /// Finishes a deploy as `failed` or `rolled_back` with the step and reason.
    pub fn finish_deploy_failed(
        &self,
        id: i64,
        status: DeployStatus,
        step: &str,
        error: &str,
    ) -> StoreResult<()> {
        let changed = self.conn().execute(
            "UPDATE deploys SET status = ?2, failed_step = ?3, error = ?4, finished_at = ?5,
                started_at = COALESCE(started_at, ?5)
             WHERE id = ?1",
            (id, status.as_str(), step, error, now()),
        )?;
        changed_or_not_found(changed, "deploy", id)
    }

    pub fn set_deploy_digest(&self, id: i64, digest: &str) -> StoreResult<()> {
        let changed = self
            .conn()
            .execute("UPDATE deploys SET digest = ?2 WHERE id = ?1", (id, digest))?;
        changed_or_not_found(changed, "deploy", id)
    }

    pub fn set_deploy_instance(&self, id: i64, instance_id: i64) -> StoreResult<()> {
        let changed = self.conn().execute(
            "UPDATE deploys SET instance_id = ?2 WHERE id = ?1",
            (id, instance_id),
        )?;
        changed_or_not_found(changed, "deploy", id)
    }

    /// Appends a log line to a deploy and returns it (with its id, for streaming).
    pub fn append_deploy_log(
        &self,
        deploy_id: i64,
        level: LogLevel,
        step: &str,
        message: &str,
    ) -> StoreResult<DeployLogEntry> {
        append_log(&self.conn(), deploy_id, level, step, message)
    }

    /// The deploy's log entries with an id above `after_id` (0 for all), in order.
    pub fn deploy_logs(&self, deploy_id: i64, after_id: i64) -> StoreResult<Vec<DeployLogEntry>> {
        let conn = self.conn();
        let mut statement = conn.prepare(
            "SELECT id, deploy_id, at, level, step, message FROM deploy_logs
             WHERE deploy_id = ?1 AND id > ?2 ORDER BY id",
        )?;
        let rows = statement.query_map((deploy_id, after_id), log_from_row)?;
        Ok(rows.collect::<Result<_, _>>()?)
    }
}

/// Where a new deploy starts and where it came from; the default is a plain `pending` one.
#[derive(Clone, Debug)]
pub(super) struct Placement {
    pub status: DeployStatus,
    pub promoted_from_stage_id: Option<i64>,
    pub promoted_from_deploy_id: Option<i64>,
    pub outside_window: bool,
    pub approval_expires_at: Option<DateTime<Utc>>,
}

impl Default for Placement {
    fn default() -> Placement {
        Placement {
            status: DeployStatus::Pending,
            promoted_from_stage_id: None,
            promoted_from_deploy_id: None,
            outside_window: false,
            approval_expires_at: None,
        }
    }
}

/// Inserts a deploy on `conn` (the connection or a transaction of the caller) and
/// returns its id.
pub(super) fn insert(
    conn: &Connection,
    new: &NewDeploy,
    placement: &Placement,
) -> StoreResult<i64> {
    conn.prepare_cached(
        "INSERT INTO deploys (project_id, stage_id, tag, digest, trigger, status, detected_at,
            created_at, promoted_from_stage_id, promoted_from_deploy_id, outside_window,
            approval_expires_at)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12)",
    )?
    .execute(rusqlite::params![
        new.project_id,
        new.stage_id,
        new.tag,
        new.digest,
        new.trigger.as_str(),
        placement.status.as_str(),
        new.detected_at.map(timestamp),
        now(),
        placement.promoted_from_stage_id,
        placement.promoted_from_deploy_id,
        placement.outside_window,
        placement.approval_expires_at.map(timestamp),
    ])?;
    Ok(conn.last_insert_rowid())
}

pub(super) fn get(conn: &Connection, id: i64) -> StoreResult<Deploy> {
    one(
        conn,
        &format!("SELECT {COLUMNS} FROM deploys WHERE id = ?1"),
        [id],
        from_row,
        "deploy",
        id,
    )
}

/// See [`Store::set_deploy_status`].
pub(super) fn set_status(conn: &Connection, id: i64, status: DeployStatus) -> StoreResult<()> {
    let changed = conn
        .prepare_cached(
            "UPDATE deploys SET status = ?2,
                started_at = CASE WHEN started_at IS NULL AND ?2 != 'pending' THEN ?3 ELSE started_at END,
                finished_at = CASE WHEN ?4 THEN ?3 ELSE finished_at END
             WHERE id = ?1",
        )?
        .execute((id, status.as_str(), now(), status.is_final()))?;
    changed_or_not_found(changed, "deploy", id)
}

/// See [`Store::append_deploy_log`].
pub(super) fn append_log(
    conn: &Connection,
    deploy_id: i64,
    level: LogLevel,
    step: &str,
    message: &str,
) -> StoreResult<DeployLogEntry> {
    // Truncated to what the column keeps, so the entry returned equals the one read back.
    let at = chrono::SubsecRound::trunc_subsecs(Utc::now(), 3);
    conn.prepare_cached(
        "INSERT INTO deploy_logs (deploy_id, at, level, step, message) VALUES (?1, ?2, ?3, ?4, ?5)",
    )?
    .execute((deploy_id, timestamp(at), level.as_str(), step, message))?;
    Ok(DeployLogEntry {
        id: conn.last_insert_rowid(),
        deploy_id,
        at,
        level,
        step: step.to_string(),
        message: message.to_string(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::crypto::{MasterKey, Sealer};
    use crate::store::test_support::shop;

    #[test]
    fn unfinished_deploys_are_the_queued_and_running_ones_oldest_first() {
        let shop = shop("dev");
        let store = &shop.store;
        let with_status = |tag: &str, status: DeployStatus| {
            let deploy = shop.deploy(tag);
            store.set_deploy_status(deploy.id, status).unwrap();
            deploy.id
        };
        let pulling = with_status("v1", DeployStatus::Pulling);
        with_status("v2", DeployStatus::Success);
        with_status("v3", DeployStatus::Scheduled);
        with_status("v4", DeployStatus::AwaitingApproval);
        with_status("v5", DeployStatus::Superseded);
        let pending = shop.deploy("v6").id;
        let checking = with_status("v7", DeployStatus::HealthChecking);
        let unfinished: Vec<i64> = store
            .list_unfinished_deploys()
            .unwrap()
            .iter()
            .map(|d| d.id)
            .collect();
        assert_eq!(unfinished, vec![pulling, pending, checking]);
    }

    /// Start-up asks for the unfinished deploys; with 60,000 deploys in the history that
    /// query read the whole table and was a third of the start's CPU.
    #[test]
    fn unfinished_deploys_are_found_through_the_index_not_a_scan() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path(), Sealer::new(MasterKey::generate())).unwrap();
        let conn = store.conn();
        let plan: Vec<String> = conn
            .prepare(&format!(
                "EXPLAIN QUERY PLAN SELECT {COLUMNS} FROM deploys WHERE {UNFINISHED_QUERY}"
            ))
            .unwrap()
            .query_map([], |r| r.get::<_, String>(3))
            .unwrap()
            .collect::<Result<_, _>>()
            .unwrap();
        assert!(
            plan.iter()
                .any(|step| step.contains("USING INDEX deploys_unfinished")),
            "{plan:?}"
        );
        assert!(!plan.iter().any(|step| step == "SCAN deploys"), "{plan:?}");
    }
}
