//! Stages: the lanes of a project (`dev`, `staging`, `prod`), each with its tag pattern,
//! deploy policy and optional overrides of the project's settings.

use chrono::{DateTime, Utc};
use rusqlite::Row;

use super::env::{self, EnvColumnEntry, stored_var};
use super::projects::{EnvVar, StoredEnvVar};
use super::release::VersionPolicy;
use super::{
    Store, StoreResult, changed_or_not_found, json_column, now, one, parse_column, parse_time,
};

#[derive(Clone, Debug, PartialEq)]
pub struct Stage {
    pub id: i64,
    pub project_id: i64,
    pub name: String,
    /// Glob; `*` matches every tag.
    pub tag_pattern: String,
    /// Optional semver range on top of the glob, e.g. `>=1.2, <2`.
    pub version_range: Option<String>,
    pub auto_deploy: bool,
    pub max_instances: u32,
    pub polling: bool,
    /// Watch the digest of a mutable tag (`latest`, `dev`): a changed digest is a new version.
    pub track_digest: bool,
    /// Added to (and overriding) the project's env.
    pub env: Vec<StoredEnvVar>,
    pub container_port: Option<u16>,
    pub health_path: Option<String>,
    /// Promotion, approvals, windows and version policy (issue 15).
    pub release: StageRelease,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

#[derive(Clone, Debug)]
pub struct NewStage {
    pub project_id: i64,
    pub name: String,
    pub tag_pattern: String,
    pub version_range: Option<String>,
    pub auto_deploy: bool,
    pub max_instances: u32,
    pub polling: bool,
    pub track_digest: bool,
    pub env: Vec<EnvVar>,
    pub container_port: Option<u16>,
    pub health_path: Option<String>,
    pub release: StageRelease,
}

/// A stage's release rules. The default is today's behaviour: any version, no approvals,
/// no windows, tags from pushes and polls.
#[derive(Clone, Debug, PartialEq)]
pub struct StageRelease {
    pub policy: VersionPolicy,
    /// Whether versions with a prerelease part (`1.3.0-rc.1`) may deploy.
    pub prerelease: bool,
    /// The stage (of the same project) this one takes its versions from, by promotion only.
    pub promote_from: Option<i64>,
    /// Distinct approvers a deploy needs before it runs; 0 for none.
    pub approvals_required: u32,
    /// How long a deploy waits for its approvals before it expires.
    pub approval_timeout_secs: u32,
    /// Ranges in which deploys may start (`Mon-Fri 02:00-06:00`); empty for always.
    pub windows: Vec<String>,
    /// The IANA time zone the windows are in.
    pub window_timezone: String,
}

impl Default for StageRelease {
    fn default() -> StageRelease {
        StageRelease {
            policy: VersionPolicy::Any,
            prerelease: true,
            promote_from: None,
            approvals_required: 0,
            approval_timeout_secs: 86_400,
            windows: Vec::new(),
            window_timezone: "UTC".into(),
        }
    }
}

impl NewStage {
    /// The defaults DESIGN.md gives an auto-created project's stage.
    pub fn defaults(project_id: i64, name: &str) -> NewStage {
        NewStage {
            project_id,
            name: name.to_string(),
            tag_pattern: "*".into(),
            version_range: None,
            auto_deploy: true,
            max_instances: 1,
            polling: false,
            track_digest: false,
            env: Vec::new(),
            container_port: None,
            health_path: None,
            release: StageRelease::default(),
        }
    }
}

/// Fields left `None` keep their value; `Some(None)` clears an optional field.
#[derive(Clone, Debug, Default)]
pub struct StageUpdate {
    pub name: Option<String>,
    pub tag_pattern: Option<String>,
    pub version_range: Option<Option<String>>,
    pub auto_deploy: Option<bool>,
    pub max_instances: Option<u32>,
    pub polling: Option<bool>,
    pub track_digest: Option<bool>,
    pub env: Option<Vec<EnvVar>>,
    pub container_port: Option<Option<u16>>,
    pub health_path: Option<Option<String>>,
    pub release: Option<StageRelease>,
}

const COLUMNS: &str =
    "id, project_id, name, tag_pattern, version_range, auto_deploy, max_instances,
    polling, track_digest, env_json, container_port, health_path, created_at, updated_at,
    policy, prerelease, promote_from, approvals_required, approval_timeout_secs, windows_json,
    window_timezone";

fn from_row(row: &Row<'_>) -> rusqlite::Result<Stage> {
    let env: Vec<EnvColumnEntry> = json_column(row.get::<_, String>(9)?)?;
    Ok(Stage {
        id: row.get(0)?,
        project_id: row.get(1)?,
        name: row.get(2)?,
        tag_pattern: row.get(3)?,
        version_range: row.get(4)?,
        auto_deploy: row.get(5)?,
        max_instances: row.get(6)?,
        polling: row.get(7)?,
        track_digest: row.get(8)?,
        env: env.into_iter().map(stored_var).collect(),
        container_port: row.get(10)?,
        health_path: row.get(11)?,
        release: StageRelease {
            policy: parse_column(row.get(14)?)?,
            prerelease: row.get(15)?,
            promote_from: row.get(16)?,
            approvals_required: row.get(17)?,
            approval_timeout_secs: row.get(18)?,
            windows: json_column(row.get::<_, String>(19)?)?,
            window_timezone: row.get(20)?,
        },
        created_at: parse_time(&row.get::<_, String>(12)?)?,
        updated_at: parse_time(&row.get::<_, String>(13)?)?,
    })
}

impl Store {
    pub fn create_stage(&self, new: &NewStage) -> StoreResult<Stage> {
        let id = {
            let mut conn = self.conn();
            let tx = conn.transaction()?;
            tx.execute(
                "INSERT INTO stages (project_id, name, tag_pattern, version_range, auto_deploy,
                    max_instances, polling, track_digest, container_port, health_path, created_at, updated_at)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?11)",
                rusqlite::params![
                    new.project_id,
                    new.name,
                    new.tag_pattern,
                    new.version_range,
                    new.auto_deploy,
                    new.max_instances,
                    new.polling,
                    new.track_digest,
                    new.container_port,
                    new.health_path,
                    now(),
                ],
            )?;
            let id = tx.last_insert_rowid();
            write_release(&tx, id, &new.release)?;
            let env = env::env_json_for(&tx, &self.sealer, "stages", id, &new.env)?;
            tx.execute("UPDATE stages SET env_json = ?1 WHERE id = ?2", (env, id))?;
            tx.commit()?;
            id
        };
        self.get_stage(id)
    }

    pub fn get_stage(&self, id: i64) -> StoreResult<Stage> {
        one(
            &self.conn(),
            &format!("SELECT {COLUMNS} FROM stages WHERE id = ?1"),
            [id],
            from_row,
            "stage",
            id,
        )
    }

    /// The project's stages in name order (the order tag matching uses).
    pub fn list_stages(&self, project_id: i64) -> StoreResult<Vec<Stage>> {
        let conn = self.conn();
        let mut statement = conn.prepare(&format!(
            "SELECT {COLUMNS} FROM stages WHERE project_id = ?1 ORDER BY name"
        ))?;
        let rows = statement.query_map([project_id], from_row)?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    /// Every stage with polling on, ordered by project then name.
    pub fn list_polling_stages(&self) -> StoreResult<Vec<Stage>> {
        let conn = self.conn();
        let mut statement = conn.prepare(&format!(
            "SELECT {COLUMNS} FROM stages WHERE polling = 1 ORDER BY project_id, name"
        ))?;
        let rows = statement.query_map([], from_row)?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    /// The stage's own env vars, secrets opened (the project's come first, then these).
    pub fn stage_env(&self, id: i64) -> StoreResult<Vec<(String, String)>> {
        env::read_env(&self.conn(), &self.sealer, "stages", "stage", id)
    }

    pub fn update_stage(&self, id: i64, update: &StageUpdate) -> StoreResult<Stage> {
        let current = self.get_stage(id)?;
        {
            let mut conn = self.conn();
            let tx = conn.transaction()?;
            let env_json = update
                .env
                .as_ref()
                .map(|vars| env::env_json_for(&tx, &self.sealer, "stages", id, vars))
                .transpose()?;
            let changed = tx.execute(
                "UPDATE stages SET name = ?2, tag_pattern = ?3, version_range = ?4, auto_deploy = ?5,
                    max_instances = ?6, polling = ?7, track_digest = ?8, env_json = COALESCE(?9, env_json),
                    container_port = ?10, health_path = ?11, updated_at = ?12
                 WHERE id = ?1",
                rusqlite::params![
                    id,
                    update.name.as_ref().unwrap_or(&current.name),
                    update.tag_pattern.as_ref().unwrap_or(&current.tag_pattern),
                    update.version_range.clone().unwrap_or(current.version_range),
                    update.auto_deploy.unwrap_or(current.auto_deploy),
                    update.max_instances.unwrap_or(current.max_instances),
                    update.polling.unwrap_or(current.polling),
                    update.track_digest.unwrap_or(current.track_digest),
                    env_json,
                    update.container_port.unwrap_or(current.container_port),
                    update.health_path.clone().unwrap_or(current.health_path),
                    now(),
                ],
            )?;
            changed_or_not_found(changed, "stage", id)?;
            if let Some(release) = &update.release {
                write_release(&tx, id, release)?;
            }
            tx.commit()?;
        }
        self.get_stage(id)
    }

    pub fn delete_stage(&self, id: i64) -> StoreResult<()> {
        let changed = self
            .conn()
            .execute("DELETE FROM stages WHERE id = ?1", [id])?;
        changed_or_not_found(changed, "stage", id)
    }
}

/// Writes a stage's release rules (create and update share it).
fn write_release(tx: &rusqlite::Transaction, id: i64, release: &StageRelease) -> StoreResult<()> {
    tx.execute(
        "UPDATE stages SET policy = ?2, prerelease = ?3, promote_from = ?4, approvals_required = ?5,
            approval_timeout_secs = ?6, windows_json = ?7, window_timezone = ?8 WHERE id = ?1",
        rusqlite::params![
            id,
            release.policy.as_str(),
            release.prerelease,
            release.promote_from,
            release.approvals_required,
            release.approval_timeout_secs,
            serde_json::to_string(&release.windows)?,
            release.window_timezone,
        ],
    )?;
    Ok(())
}
