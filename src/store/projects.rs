//! Projects: one image repository each, with how to run and health-check its containers,
//! env vars (sealed where marked secret) and an event log of what happened to it.

use std::time::Duration;

use chrono::{DateTime, Utc};
use rusqlite::Row;

use super::env::{self, EnvColumnEntry, stored_var};
use super::{
    Store, StoreError, StoreResult, changed_or_not_found, json_column, now, one, parse_time,
};

/// A stored project. Secret env values are not here: ask [`Store::project_env`].
#[derive(Clone, Debug, PartialEq)]
pub struct Project {
    pub id: i64,
    pub name: String,
    /// Registry host and repository, without tag: `127.0.0.1:5000/acme/shop`.
    pub image: String,
    pub registry_id: Option<i64>,
    /// 0 when unknown (an auto-created project whose image could not be inspected).
    pub container_port: u16,
    pub health_path: Option<String>,
    pub health: ProjectHealth,
    pub env: Vec<StoredEnvVar>,
    pub volumes: Vec<String>,
    pub network: Option<String>,
    pub memory_bytes: Option<i64>,
    pub nano_cpus: Option<i64>,
    pub auto_created: bool,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

/// Per-project overrides of the health-check policy; `None` takes the settings' default.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct ProjectHealth {
    pub interval: Option<Duration>,
    pub timeout: Option<Duration>,
    pub retries: Option<u32>,
    pub start_period: Option<Duration>,
}

/// An env var as written by a caller. A secret var with `value: None` in an update keeps
/// its current value (secrets are write-only, so a form cannot send them back).
#[derive(Clone, Debug, PartialEq)]
pub struct EnvVar {
    pub name: String,
    pub value: Option<String>,
    pub secret: bool,
}

/// An env var as read back: secret values are hidden.
#[derive(Clone, Debug, PartialEq)]
pub struct StoredEnvVar {
    pub name: String,
    /// `None` for secrets.
    pub value: Option<String>,
    pub secret: bool,
}

#[derive(Clone, Debug, Default)]
pub struct NewProject {
    pub name: String,
    pub image: String,
    pub registry_id: Option<i64>,
    pub container_port: u16,
    pub health_path: Option<String>,
    pub health: ProjectHealth,
    pub env: Vec<EnvVar>,
    pub volumes: Vec<String>,
    pub network: Option<String>,
    pub memory_bytes: Option<i64>,
    pub nano_cpus: Option<i64>,
    pub auto_created: bool,
}

/// Fields left `None` keep their value; `Some(None)` clears an optional field.
#[derive(Clone, Debug, Default)]
pub struct ProjectUpdate {
    pub name: Option<String>,
    pub image: Option<String>,
    pub registry_id: Option<Option<i64>>,
    pub container_port: Option<u16>,
    pub health_path: Option<Option<String>>,
    pub health: Option<ProjectHealth>,
    pub env: Option<Vec<EnvVar>>,
    pub volumes: Option<Vec<String>>,
    pub network: Option<Option<String>>,
    pub memory_bytes: Option<Option<i64>>,
    pub nano_cpus: Option<Option<i64>>,
}

#[derive(Clone, Debug, PartialEq)]
pub struct ProjectEvent {
    pub id: i64,
    pub project_id: i64,
    pub at: DateTime<Utc>,
    pub level: String,
    pub message: String,
}

const COLUMNS: &str =
    "id, name, image, registry_id, container_port, health_path, health_interval_ms,
    health_timeout_ms, health_retries, health_start_period_ms, env_json, volumes_json, network,
    memory_bytes, nano_cpus, auto_created, created_at, updated_at";

fn millis(d: Option<Duration>) -> Option<i64> {
    d.map(|d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
}

fn from_row(row: &Row<'_>) -> rusqlite::Result<Project> {
    let env: Vec<EnvColumnEntry> = json_column(row.get::<_, String>(10)?)?;
    Ok(Project {
        id: row.get(0)?,
        name: row.get(1)?,
        image: row.get(2)?,
        registry_id: row.get(3)?,
        container_port: row.get(4)?,
        health_path: row.get(5)?,
        health: ProjectHealth {
            interval: row.get::<_, Option<i64>>(6)?.map(super::from_millis),
            timeout: row.get::<_, Option<i64>>(7)?.map(super::from_millis),
            retries: row.get(8)?,
            start_period: row.get::<_, Option<i64>>(9)?.map(super::from_millis),
        },
        env: env.into_iter().map(stored_var).collect(),
        volumes: json_column(row.get::<_, String>(11)?)?,
        network: row.get(12)?,
        memory_bytes: row.get(13)?,
        nano_cpus: row.get(14)?,
        auto_created: row.get(15)?,
        created_at: parse_time(&row.get::<_, String>(16)?)?,
        updated_at: parse_time(&row.get::<_, String>(17)?)?,
    })
}

impl Store {
    pub fn create_project(&self, new: &NewProject) -> StoreResult<Project> {
        let id = {
            let mut conn = self.conn();
            let tx = conn.transaction()?;
            let at = now();
            tx.execute(
                "INSERT INTO projects (name, image, registry_id, container_port, health_path,
                    health_interval_ms, health_timeout_ms, health_retries, health_start_period_ms,
                    volumes_json, network, memory_bytes, nano_cpus, auto_created, created_at, updated_at)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?15)",
                rusqlite::params![
                    new.name,
                    new.image,
                    new.registry_id,
                    new.container_port,
                    new.health_path,
                    millis(new.health.interval),
                    millis(new.health.timeout),
                    new.health.retries,
                    millis(new.health.start_period),
                    serde_json::to_string(&new.volumes)?,
                    new.network,
                    new.memory_bytes,
                    new.nano_cpus,
                    new.auto_created,
                    at,
                ],
            )?;
            let id = tx.last_insert_rowid();
            let env = env::env_json_for(&tx, &self.sealer, "projects", id, &new.env)?;
            tx.execute("UPDATE projects SET env_json = ?1 WHERE id = ?2", (env, id))?;
            tx.commit()?;
            id
        };
        self.get_project(id)
    }

    pub fn get_project(&self, id: i64) -> StoreResult<Project> {
        one(
            &self.conn(),
            &format!("SELECT {COLUMNS} FROM projects WHERE id = ?1"),
            [id],
            from_row,
            "project",
            id,
        )
    }

    pub fn get_project_by_name(&self, name: &str) -> StoreResult<Project> {
        one(
            &self.conn(),
            &format!("SELECT {COLUMNS} FROM projects WHERE name = ?1"),
            [name],
            from_row,
            "project",
            name,
        )
    }

    /// The project whose image (host and repository, no tag) is `image`.
    pub fn find_project_by_image(&self, image: &str) -> StoreResult<Option<Project>> {
        match one(
            &self.conn(),
            &format!("SELECT {COLUMNS} FROM projects WHERE image = ?1"),
            [image],
            from_row,
            "project",
            image,
        ) {
            Ok(project) => Ok(Some(project)),
            Err(StoreError::NotFound { .. }) => Ok(None),
            Err(e) => Err(e),
        }
    }

    pub fn list_projects(&self) -> StoreResult<Vec<Project>> {
        let conn = self.conn();
        let mut statement =
            conn.prepare(&format!("SELECT {COLUMNS} FROM projects ORDER BY name"))?;
        let rows = statement.query_map([], from_row)?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    /// The project's env vars, secrets opened, for creating a container.
    pub fn project_env(&self, id: i64) -> StoreResult<Vec<(String, String)>> {
        env::read_env(&self.conn(), &self.sealer, "projects", "project", id)
    }

    pub fn update_project(&self, id: i64, update: &ProjectUpdate) -> StoreResult<Project> {
        let current = self.get_project(id)?;
        {
            let mut conn = self.conn();
            let tx = conn.transaction()?;
            let env_json = update
                .env
                .as_ref()
                .map(|vars| env::env_json_for(&tx, &self.sealer, "projects", id, vars))
                .transpose()?;
            let health = update.health.clone().unwrap_or(current.health);
            let changed = tx.execute(
                "UPDATE projects SET name = ?2, image = ?3, registry_id = ?4, container_port = ?5,
                    health_path = ?6, health_interval_ms = ?7, health_timeout_ms = ?8,
                    health_retries = ?9, health_start_period_ms = ?10,
                    env_json = COALESCE(?11, env_json), volumes_json = ?12, network = ?13,
                    memory_bytes = ?14, nano_cpus = ?15, updated_at = ?16
                 WHERE id = ?1",
                rusqlite::params![
                    id,
                    update.name.as_ref().unwrap_or(&current.name),
                    update.image.as_ref().unwrap_or(&current.image),
                    update.registry_id.unwrap_or(current.registry_id),
                    update.container_port.unwrap_or(current.container_port),
                    update.health_path.clone().unwrap_or(current.health_path),
                    millis(health.interval),
                    millis(health.timeout),
                    health.retries,
                    millis(health.start_period),
                    env_json,
                    serde_json::to_string(update.volumes.as_ref().unwrap_or(&current.volumes))?,
                    update.network.clone().unwrap_or(current.network),
                    update.memory_bytes.unwrap_or(current.memory_bytes),
                    update.nano_cpus.unwrap_or(current.nano_cpus),
                    now(),
                ],
            )?;
            changed_or_not_found(changed, "project", id)?;
            tx.commit()?;
        }
        self.get_project(id)
    }

    /// Deletes the project and, by cascade, its stages, deploys, logs and instance rows.
    pub fn delete_project(&self, id: i64) -> StoreResult<()> {
        let changed = self
            .conn()
            .execute("DELETE FROM projects WHERE id = ?1", [id])?;
        changed_or_not_found(changed, "project", id)
    }

    pub fn add_project_event(
        &self,
        project_id: i64,
        level: &str,
        message: &str,
    ) -> StoreResult<()> {
        self.conn().execute(
            "INSERT INTO project_events (project_id, at, level, message) VALUES (?1, ?2, ?3, ?4)",
            (project_id, now(), level, message),
        )?;
        Ok(())
    }

    pub fn list_project_events(&self, project_id: i64) -> StoreResult<Vec<ProjectEvent>> {
        let conn = self.conn();
        let mut statement = conn.prepare(
            "SELECT id, project_id, at, level, message FROM project_events
             WHERE project_id = ?1 ORDER BY id",
        )?;
        let rows = statement.query_map([project_id], |row| {
            Ok(ProjectEvent {
                id: row.get(0)?,
                project_id: row.get(1)?,
                at: parse_time(&row.get::<_, String>(2)?)?,
                level: row.get(3)?,
                message: row.get(4)?,
            })
        })?;
        Ok(rows.collect::<Result<_, _>>()?)
    }
}
