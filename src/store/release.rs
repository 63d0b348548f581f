//! The release workflow's rows: version policies (a stage column), approvals of waiting
//! deploys, the deploys that wait outside the queue (`awaiting_approval`, `scheduled`),
//! and the audit log with its pruning.

use chrono::{DateTime, Utc};
use rusqlite::Row;

use super::deploys::{Deploy, DeployStatus};
use super::{
    Store, StoreResult, changed_or_not_found, now, parse_column, parse_time, text_enum, timestamp,
};

text_enum! {
    /// Which versions a stage takes automatically, by semver where tags are versions.
    pub enum VersionPolicy {
        /// Any tag the pattern matches (the default).
        Any => "any",
        /// Never a version lower than the one running.
        Forward => "forward",
        /// Forward within the running major.minor.
        Patch => "patch",
        /// Forward within the running major.
        Minor => "minor",
    }
}

text_enum! {
    /// What an approver said.
    pub enum Decision {
        Approve => "approve",
        Reject => "reject",
    }
}

text_enum! {
    /// Who did something: a person, a named API token, the daemon's own detectors, or
    /// someone not signed in (a failed login, named by its address).
    pub enum ActorKind {
        User => "user",
        Token => "token",
        Webhook => "webhook",
        Poller => "poller",
        System => "system",
        Anonymous => "anonymous",
    }
}

/// One entry of the audit log, as written.
#[derive(Clone, Debug, Default)]
pub struct NewAuditEntry {
    pub actor_kind: Option<ActorKind>,
    pub actor: String,
    /// What was done, e.g. `stage.update`, `deploy.approve`.
    pub action: String,
    /// What it was done to: `stage`, `deploy`, `project`, …
    pub target_kind: String,
    pub target_id: Option<i64>,
    pub target_name: Option<String>,
    pub project_id: Option<i64>,
    pub detail: String,
    pub before: Option<serde_json::Value>,
    pub after: Option<serde_json::Value>,
}

#[derive(Clone, Debug, PartialEq)]
pub struct AuditEntry {
    pub id: i64,
    pub at: DateTime<Utc>,
    pub actor_kind: ActorKind,
    pub actor: String,
    pub action: String,
    pub target_kind: String,
    pub target_id: Option<i64>,
    pub target_name: Option<String>,
    pub project_id: Option<i64>,
    pub detail: String,
    pub before: Option<serde_json::Value>,
    pub after: Option<serde_json::Value>,
}

/// Filters for reading the audit log; `None` means any.
#[derive(Clone, Debug, Default)]
pub struct AuditFilter {
    pub actor: Option<String>,
    /// An action, or a prefix ending in `.` (`deploy.` for every deploy action).
    pub action: Option<String>,
    pub target_kind: Option<String>,
    pub target_id: Option<i64>,
    pub project_id: Option<i64>,
    pub since: Option<DateTime<Utc>>,
    pub before_id: Option<i64>,
    pub limit: u32,
}

/// Rows deleted per batch when pruning.
const BATCH: i64 = 5_000;

fn audit_from_row(row: &Row<'_>) -> rusqlite::Result<AuditEntry> {
    let json = |text: Option<String>| -> rusqlite::Result<Option<serde_json::Value>> {
        text.map(super::json_column).transpose()
    };
    Ok(AuditEntry {
        id: row.get(0)?,
        at: parse_time(&row.get::<_, String>(1)?)?,
        actor_kind: parse_column(row.get(2)?)?,
        actor: row.get(3)?,
        action: row.get(4)?,
        target_kind: row.get(5)?,
        target_id: row.get(6)?,
        target_name: row.get(7)?,
        project_id: row.get(8)?,
        detail: row.get(9)?,
        before: json(row.get(10)?)?,
        after: json(row.get(11)?)?,
    })
}

/// [`Store::list_waiting_deploys`]'s clause; its second line is the condition of the
/// index `deploys_unfinished` (migration 007), verbatim.
const WAITING_QUERY: &str = "status = ?1
    AND status NOT IN ('success', 'failed', 'rolled_back', 'superseded', 'rejected', 'expired')
    ORDER BY id";

impl Store {
    /// Moves a deploy that waits outside the queue to `status`, only if it is still in
    /// `from` (so two callers never both act on it). Returns whether it moved.
    pub fn move_waiting_deploy(
        &self,
        id: i64,
        from: DeployStatus,
        status: DeployStatus,
    ) -> StoreResult<bool> {
        let at = now();
        let changed = self.conn().execute(
            "UPDATE deploys SET status = ?3,
                finished_at = CASE WHEN ?4 THEN ?5 ELSE finished_at END
             WHERE id = ?1 AND status = ?2",
            (id, from.as_str(), status.as_str(), status.is_final(), &at),
        )?;
        Ok(changed == 1)
    }

    /// Marks a deploy as one waiting for approval until `expires_at`.
    pub fn set_deploy_approval_deadline(
        &self,
        id: i64,
        expires_at: DateTime<Utc>,
    ) -> StoreResult<()> {
        let changed = self.conn().execute(
            "UPDATE deploys SET approval_expires_at = ?2 WHERE id = ?1",
            (id, timestamp(expires_at)),
        )?;
        changed_or_not_found(changed, "deploy", id)
    }

    /// Records where a promoted deploy came from, and whether it may start outside the
    /// stage's windows.
    pub fn set_deploy_origin(
        &self,
        id: i64,
        promoted_from_stage_id: Option<i64>,
        promoted_from_deploy_id: Option<i64>,
        outside_window: bool,
    ) -> StoreResult<()> {
        let changed = self.conn().execute(
            "UPDATE deploys SET promoted_from_stage_id = ?2, promoted_from_deploy_id = ?3,
                outside_window = ?4 WHERE id = ?1",
            (
                id,
                promoted_from_stage_id,
                promoted_from_deploy_id,
                outside_window,
            ),
        )?;
        changed_or_not_found(changed, "deploy", id)
    }

    /// Deploys in `status` (`awaiting_approval` or `scheduled`), oldest first.
    ///
    /// Every deploy request and every tick of the release loop asks this, so it must not
    /// read the whole history: the partial index `deploys_unfinished` serves it, which
    /// SQLite uses only when the query repeats the index's condition word for word (a
    /// bound status alone does not prove it).
    pub fn list_waiting_deploys(&self, status: DeployStatus) -> StoreResult<Vec<Deploy>> {
        self.deploys_where(WAITING_QUERY, [status.as_str()])
    }

    /// Records an approval or rejection of `deploy_id` by `actor` for the deploy's
    /// current digest. An actor approving twice counts once.
    pub fn record_decision(
        &self,
        deploy_id: i64,
        actor: &str,
        decision: Decision,
        digest: Option<&str>,
    ) -> StoreResult<()> {
        self.conn().execute(
            "INSERT INTO deploy_approvals (deploy_id, actor, decision, digest, at)
             VALUES (?1, ?2, ?3, ?4, ?5)
             ON CONFLICT (deploy_id, actor, decision) DO UPDATE SET digest = ?4, at = ?5",
            (deploy_id, actor, decision.as_str(), digest, now()),
        )?;
        Ok(())
    }

    /// The actors who approved `deploy_id`'s current digest, in the order they did.
    pub fn approvers(&self, deploy_id: i64) -> StoreResult<Vec<String>> {
        let conn = self.conn();
        let mut statement = conn.prepare(
            "SELECT a.actor FROM deploy_approvals a JOIN deploys d ON d.id = a.deploy_id
             WHERE a.deploy_id = ?1 AND a.decision = 'approve' AND a.digest IS d.digest
             ORDER BY a.id",
        )?;
        let rows = statement.query_map([deploy_id], |r| r.get(0))?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    pub fn append_audit(&self, entry: &NewAuditEntry) -> StoreResult<i64> {
        append_audit(&self.conn(), entry)
    }

    /// Audit entries, newest first.
    pub fn list_audit(&self, filter: &AuditFilter) -> StoreResult<Vec<AuditEntry>> {
        let conn = self.conn();
        let action_prefix = filter
            .action
            .as_deref()
            .filter(|a| a.ends_with('.'))
            .map(|a| format!("{}%", a.replace(['%', '_'], "")));
        let mut statement = conn.prepare(
            "SELECT id, at, actor_kind, actor, action, target_kind, target_id, target_name,
                project_id, detail, before_json, after_json FROM audit_log
             WHERE (?1 IS NULL OR actor = ?1)
               AND (?2 IS NULL OR action = ?2) AND (?3 IS NULL OR action LIKE ?3)
               AND (?4 IS NULL OR target_kind = ?4) AND (?5 IS NULL OR target_id = ?5)
               AND (?6 IS NULL OR project_id = ?6) AND (?7 IS NULL OR at >= ?7)
               AND (?8 IS NULL OR id < ?8)
             ORDER BY id DESC LIMIT ?9",
        )?;
        let exact = filter.action.as_deref().filter(|a| !a.ends_with('.'));
        let rows = statement.query_map(
            rusqlite::params![
                filter.actor,
                exact,
                action_prefix,
                filter.target_kind,
                filter.target_id,
                filter.project_id,
                filter.since.map(timestamp),
                filter.before_id,
                filter.limit.max(1),
            ],
            audit_from_row,
        )?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    /// Deletes audit entries older than `before`, in batches. Returns how many went.
    pub fn prune_audit(&self, before: DateTime<Utc>) -> StoreResult<u64> {
        let before = timestamp(before);
        let mut deleted = 0u64;
        loop {
            let n = self.conn().execute(
                "DELETE FROM audit_log WHERE id IN (
                    SELECT id FROM audit_log WHERE at < ?1 LIMIT ?2)",
                (&before, BATCH),
            )?;
            deleted += n as u64;
            if (n as i64) < BATCH {
                return Ok(deleted);
            }
        }
    }

    /// The name of the API token with this hash, for the audit log.
    pub fn api_token_name(&self, token_hash: &str) -> StoreResult<Option<String>> {
        use rusqlite::OptionalExtension;
        Ok(self
            .conn()
            .query_row(
                "SELECT name FROM api_tokens WHERE token_hash = ?1",
                [token_hash],
                |r| r.get(0),
            )
            .optional()?)
    }
}

/// See [`Store::append_audit`]; on the caller's connection or transaction.
pub(super) fn append_audit(conn: &rusqlite::Connection, entry: &NewAuditEntry) -> StoreResult<i64> {
    conn.prepare_cached(
        "INSERT INTO audit_log (at, actor_kind, actor, action, target_kind, target_id,
            target_name, project_id, detail, before_json, after_json)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11)",
    )?
    .execute(rusqlite::params![
        now(),
        entry.actor_kind.unwrap_or(ActorKind::System).as_str(),
        entry.actor,
        entry.action,
        entry.target_kind,
        entry.target_id,
        entry.target_name,
        entry.project_id,
        entry.detail,
        entry.before.as_ref().map(serde_json::Value::to_string),
        entry.after.as_ref().map(serde_json::Value::to_string),
    ])?;
    Ok(conn.last_insert_rowid())
}

#[cfg(test)]
mod tests {
    use rusqlite::Connection;

    use super::super::{Store, migrations};
    use crate::crypto::{MasterKey, Sealer};
    use crate::store::DeployStatus;

    /// A webhook load test took 90 % of the daemon's CPU scanning the whole deploy history
    /// here, twice per deploy request; the waiting deploys are found through the index.
    #[test]
    fn waiting_deploys_are_found_through_the_index_not_a_scan() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path(), Sealer::new(MasterKey::generate())).unwrap();
        let conn = store.conn();
        let plan: Vec<String> = conn
            .prepare(&format!(
                "EXPLAIN QUERY PLAN SELECT * FROM deploys WHERE {}",
                super::WAITING_QUERY
            ))
            .unwrap()
            .query_map(["scheduled"], |r| r.get::<_, String>(3))
            .unwrap()
            .collect::<Result<_, _>>()
            .unwrap();
        assert_eq!(
            plan,
            vec!["SEARCH deploys USING INDEX deploys_unfinished (status=?)".to_string()]
        );
    }

    /// Migration 007 rebuilds `deploys`; with foreign keys on, dropping the old table
    /// would have deleted every deploy's log (ON DELETE CASCADE) and unlinked instances.
    #[test]
    fn migrating_to_the_release_workflow_keeps_deploys_and_their_logs() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(super::super::DATABASE_FILE);
        {
            let mut conn = Connection::open(&path).unwrap();
            conn.pragma_update(None, "foreign_keys", "ON").unwrap();
            // A database from before 005-008, as an installation upgrading has it.
            migrations().to_version(&mut conn, 4).unwrap();
            conn.execute_batch(
                "INSERT INTO projects (id, name, image, created_at, updated_at)
                     VALUES (1, 'shop', 'r/shop', '2026-01-01T00:00:00.000Z', '2026-01-01T00:00:00.000Z');
                 INSERT INTO stages (id, project_id, name, created_at, updated_at)
                     VALUES (1, 1, 'dev', '2026-01-01T00:00:00.000Z', '2026-01-01T00:00:00.000Z');
                 INSERT INTO deploys (id, project_id, stage_id, tag, trigger, status, created_at)
                     VALUES (1, 1, 1, 'v1', 'webhook', 'success', '2026-01-01T00:00:00.000Z');
                 INSERT INTO deploy_logs (deploy_id, at, level, step, message)
                     VALUES (1, '2026-01-01T00:00:00.000Z', 'info', 'pull', 'pulled v1');",
            )
            .unwrap();
        }
        let store = Store::open(dir.path(), Sealer::new(MasterKey::generate())).unwrap();
        let deploy = store.get_deploy(1).unwrap();
        assert_eq!(
            (deploy.tag.as_str(), deploy.status),
            ("v1", DeployStatus::Success)
        );
        assert_eq!(
            store.deploy_logs(1, 0).unwrap().len(),
            1,
            "the log survived"
        );
        assert!(store.get_stage(1).unwrap().release.windows.is_empty());
    }

    /// Migration 011 rebuilds `audit_log` to let failed sign-ins be recorded; the entries
    /// written before it stay, in order, and the newest-first index is back.
    #[test]
    fn migrating_to_anonymous_actors_keeps_the_audit_log() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(super::super::DATABASE_FILE);
        {
            let mut conn = Connection::open(&path).unwrap();
            migrations().to_version(&mut conn, 10).unwrap();
            conn.execute_batch(
                "INSERT INTO audit_log (at, actor_kind, actor, action, target_kind, detail)
                     VALUES ('2026-01-01T00:00:00.000Z', 'user', 'admin', 'stage.update', 'stage', 'one'),
                            ('2026-01-02T00:00:00.000Z', 'poller', 'poller', 'deploy.request', 'deploy', 'two');",
            )
            .unwrap();
        }
        let store = Store::open(dir.path(), Sealer::new(MasterKey::generate())).unwrap();
        let details: Vec<String> = store
            .list_audit(&super::AuditFilter {
                limit: 10,
                ..Default::default()
            })
            .unwrap()
            .into_iter()
            .map(|e| e.detail)
            .collect();
        assert_eq!(details, ["two", "one"]);
        store
            .append_audit(&super::NewAuditEntry {
                actor_kind: Some(super::ActorKind::Anonymous),
                actor: "127.0.0.1".into(),
                action: "auth.login_failed".into(),
                target_kind: "user".into(),
                ..Default::default()
            })
            .unwrap();
        let indexes: Vec<String> = store
            .conn()
            .prepare("SELECT name FROM sqlite_master WHERE type = 'index' AND tbl_name = 'audit_log' ORDER BY name")
            .unwrap()
            .query_map([], |r| r.get(0))
            .unwrap()
            .collect::<Result<_, _>>()
            .unwrap();
        assert_eq!(indexes, ["audit_log_by_target", "audit_log_recent"]);
    }

    #[test]
    fn audit_entries_are_filtered_and_pruned_by_age() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path(), Sealer::new(MasterKey::generate())).unwrap();
        for (actor, action) in [
            ("admin", "stage.update"),
            ("ci", "deploy.approve"),
            ("admin", "deploy.reject"),
        ] {
            store
                .append_audit(&super::NewAuditEntry {
                    actor_kind: Some(super::ActorKind::User),
                    actor: actor.into(),
                    action: action.into(),
                    target_kind: "deploy".into(),
                    ..Default::default()
                })
                .unwrap();
        }
        let list = |filter: super::AuditFilter| {
            store
                .list_audit(&super::AuditFilter {
                    limit: 10,
                    ..filter
                })
                .unwrap()
                .into_iter()
                .map(|e| e.action)
                .collect::<Vec<_>>()
        };
        assert_eq!(
            list(super::AuditFilter {
                action: Some("deploy.".into()),
                ..Default::default()
            }),
            ["deploy.reject", "deploy.approve"]
        );
        assert_eq!(
            list(super::AuditFilter {
                actor: Some("admin".into()),
                action: Some("stage.update".into()),
                ..Default::default()
            }),
            ["stage.update"]
        );
        let now = chrono::Utc::now();
        assert_eq!(
            store.prune_audit(now - chrono::Duration::days(1)).unwrap(),
            0
        );
        assert_eq!(
            store
                .prune_audit(now + chrono::Duration::seconds(1))
                .unwrap(),
            3
        );
        assert!(list(super::AuditFilter::default()).is_empty());
    }
}
