//! Instances: one container of a stage at one tag, with the names and proxy hosts made
//! for it, so everything can be found again and removed.

use chrono::{DateTime, Utc};
use rusqlite::Row;

use super::{
    Store, StoreResult, changed_or_not_found, json_column, now, one, parse_column, parse_time,
    text_enum,
};

text_enum! {
    /// `starting` until the health check passes; only `running` instances get traffic.
    /// `stopping`: retired, off the proxy, its container stopping in the background.
    pub enum InstanceStatus {
        Starting => "starting",
        Running => "running",
        Stopping => "stopping",
        Stopped => "stopped",
        Failed => "failed",
        Removing => "removing",
    }
}

#[derive(Clone, Debug, PartialEq)]
pub struct Instance {
    pub id: i64,
    pub stage_id: i64,
    pub deploy_id: Option<i64>,
    pub tag: String,
    pub digest: Option<String>,
    pub container_id: Option<String>,
    pub container_name: String,
    /// `host:port` the proxy forwards to.
    pub upstream: Option<String>,
    pub subdomains: Vec<String>,
    /// Proxy-side ids of the hosts made for this instance.
    pub proxy_hosts: Vec<String>,
    pub status: InstanceStatus,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

#[derive(Clone, Debug)]
pub struct NewInstance {
    pub stage_id: i64,
    pub deploy_id: Option<i64>,
    pub tag: String,
    pub digest: Option<String>,
    pub container_name: String,
    pub status: InstanceStatus,
}

const COLUMNS: &str =
    "id, stage_id, deploy_id, tag, digest, container_id, container_name, upstream,
    subdomains_json, proxy_hosts_json, status, created_at, updated_at";

fn from_row(row: &Row<'_>) -> rusqlite::Result<Instance> {
    Ok(Instance {
        id: row.get(0)?,
        stage_id: row.get(1)?,
        deploy_id: row.get(2)?,
        tag: row.get(3)?,
        digest: row.get(4)?,
        container_id: row.get(5)?,
        container_name: row.get(6)?,
        upstream: row.get(7)?,
        subdomains: json_column(row.get::<_, String>(8)?)?,
        proxy_hosts: json_column(row.get::<_, String>(9)?)?,
        status: parse_column(row.get(10)?)?,
        created_at: parse_time(&row.get::<_, String>(11)?)?,
        updated_at: parse_time(&row.get::<_, String>(12)?)?,
    })
}

impl Store {
    pub fn create_instance(&self, new: &NewInstance) -> StoreResult<Instance> {
        let id = {
            let conn = self.conn();
            conn.execute(
                "INSERT INTO instances (stage_id, deploy_id, tag, digest, container_name, status, created_at, updated_at)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?7)",
                rusqlite::params![
                    new.stage_id,
                    new.deploy_id,
                    new.tag,
                    new.digest,
                    new.container_name,
                    new.status.as_str(),
                    now(),
                ],
            )?;
            conn.last_insert_rowid()
        };
        self.get_instance(id)
    }

    pub fn get_instance(&self, id: i64) -> StoreResult<Instance> {
        one(
            &self.conn(),
            &format!("SELECT {COLUMNS} FROM instances WHERE id = ?1"),
            [id],
            from_row,
            "instance",
            id,
        )
    }

    /// The stage's instances, oldest first (the order retirement uses).
    pub fn list_instances(&self, stage_id: i64) -> StoreResult<Vec<Instance>> {
        let conn = self.conn();
        let mut statement = conn.prepare_cached(&format!(
            "SELECT {COLUMNS} FROM instances WHERE stage_id = ?1 ORDER BY id"
        ))?;
        let rows = statement.query_map([stage_id], from_row)?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    pub fn list_all_instances(&self) -> StoreResult<Vec<Instance>> {
        let conn = self.conn();
        let mut statement =
            conn.prepare(&format!("SELECT {COLUMNS} FROM instances ORDER BY id"))?;
        let rows = statement.query_map([], from_row)?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    pub fn set_instance_status(&self, id: i64, status: InstanceStatus) -> StoreResult<()> {
        let changed = self.conn().execute(
            "UPDATE instances SET status = ?2, updated_at = ?3 WHERE id = ?1",
            (id, status.as_str(), now()),
        )?;
        changed_or_not_found(changed, "instance", id)
    }

    pub fn set_instance_container(
        &self,
        id: i64,
        container_id: &str,
        upstream: Option<&str>,
    ) -> StoreResult<()> {
        let changed = self.conn().execute(
            "UPDATE instances SET container_id = ?2, upstream = ?3, updated_at = ?4 WHERE id = ?1",
            (id, container_id, upstream, now()),
        )?;
        changed_or_not_found(changed, "instance", id)
    }

    pub fn set_instance_routing(
        &self,
        id: i64,
        subdomains: &[String],
        proxy_hosts: &[String],
    ) -> StoreResult<()> {
        let changed = self.conn().execute(
            "UPDATE instances SET subdomains_json = ?2, proxy_hosts_json = ?3, updated_at = ?4 WHERE id = ?1",
            (
                id,
                serde_json::to_string(subdomains)?,
                serde_json::to_string(proxy_hosts)?,
                now(),
            ),
        )?;
        changed_or_not_found(changed, "instance", id)
    }

    pub fn delete_instance(&self, id: i64) -> StoreResult<()> {
        let changed = self
            .conn()
            .execute("DELETE FROM instances WHERE id = ?1", [id])?;
        changed_or_not_found(changed, "instance", id)
    }
}
