//! Where a stage runs: single containers (the default, no row) or a Docker Swarm service
//! with its replicas, placement constraints and update pace (`stage_targets`, issue 17).

use rusqlite::OptionalExtension;

use super::{Store, StoreResult, json_column};

/// A stage's target.
#[derive(Clone, Debug, PartialEq, Eq, Default)]
pub enum StageTarget {
    /// One container per deployed tag on this engine (what every stage did before).
    #[default]
    Container,
    /// One Swarm service per stage, updated in place by each deploy.
    Swarm(SwarmTarget),
}

/// A Swarm stage's service settings.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SwarmTarget {
    pub replicas: u32,
    /// `node.role==worker`, `node.labels.zone==a`, …
    pub constraints: Vec<String>,
    /// Tasks updated at once; 0 updates all at once.
    pub update_parallelism: u32,
    /// Pause between batches of an update.
    pub update_delay_ms: u32,
}

impl Default for SwarmTarget {
    fn default() -> SwarmTarget {
        SwarmTarget {
            replicas: 1,
            constraints: Vec::new(),
            update_parallelism: 1,
            update_delay_ms: 0,
        }
    }
}

impl StageTarget {
    pub fn swarm(&self) -> Option<&SwarmTarget> {
        match self {
            StageTarget::Swarm(swarm) => Some(swarm),
            StageTarget::Container => None,
        }
    }
}

impl Store {
    /// The stage's target; `Container` for a stage without a row.
    pub fn stage_target(&self, stage_id: i64) -> StoreResult<StageTarget> {
        // Asked on every deploy request (the version policy asks what the stage runs):
        // prepared once.
        let conn = self.conn();
        let row = conn
            .prepare_cached(
                "SELECT kind, replicas, constraints_json, update_parallelism, update_delay_ms
                 FROM stage_targets WHERE stage_id = ?1",
            )?
            .query_row([stage_id], |row| {
                let kind: String = row.get(0)?;
                if kind != "swarm" {
                    return Ok(StageTarget::Container);
                }
                Ok(StageTarget::Swarm(SwarmTarget {
                    replicas: row.get(1)?,
                    constraints: json_column(row.get::<_, String>(2)?)?,
                    update_parallelism: row.get(3)?,
                    update_delay_ms: row.get(4)?,
                }))
            })
            .optional()?;
        Ok(row.unwrap_or_default())
    }

    /// Sets the stage's target (`Container` removes its row).
    pub fn set_stage_target(&self, stage_id: i64, target: &StageTarget) -> StoreResult<()> {
        let conn = self.conn();
        match target {
            StageTarget::Container => {
                conn.execute("DELETE FROM stage_targets WHERE stage_id = ?1", [stage_id])?;
            }
            StageTarget::Swarm(swarm) => {
                let constraints = serde_json::to_string(&swarm.constraints)
                    .map_err(|e| super::StoreError::Invalid(e.to_string()))?;
                conn.execute(
                    "INSERT INTO stage_targets (stage_id, kind, replicas, constraints_json,
                        update_parallelism, update_delay_ms)
                     VALUES (?1, 'swarm', ?2, ?3, ?4, ?5)
                     ON CONFLICT (stage_id) DO UPDATE SET kind = 'swarm',
                        replicas = ?2, constraints_json = ?3, update_parallelism = ?4,
                        update_delay_ms = ?5",
                    rusqlite::params![
                        stage_id,
                        swarm.replicas,
                        constraints,
                        swarm.update_parallelism,
                        swarm.update_delay_ms
                    ],
                )?;
            }
        }
        Ok(())
    }

    /// Ids of the stages that run as Swarm services.
    pub fn swarm_stage_ids(&self) -> StoreResult<Vec<i64>> {
        let conn = self.conn();
        let mut statement = conn
            .prepare("SELECT stage_id FROM stage_targets WHERE kind = 'swarm' ORDER BY stage_id")?;
        let ids = statement
            .query_map([], |row| row.get(0))?
            .collect::<rusqlite::Result<Vec<i64>>>()?;
        Ok(ids)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::test_support::shop;

    #[test]
    fn a_stage_is_a_container_stage_until_set_and_its_swarm_settings_round_trip() {
        let shop = shop("prod");
        let (store, stage_id) = (&shop.store, shop.stage_id);
        assert_eq!(
            store.stage_target(stage_id).unwrap(),
            StageTarget::Container
        );
        let swarm = StageTarget::Swarm(SwarmTarget {
            replicas: 3,
            constraints: vec!["node.role==worker".into()],
            update_parallelism: 2,
            update_delay_ms: 500,
        });
        store.set_stage_target(stage_id, &swarm).unwrap();
        assert_eq!(store.stage_target(stage_id).unwrap(), swarm);
        assert_eq!(store.swarm_stage_ids().unwrap(), vec![stage_id]);
        store
            .set_stage_target(stage_id, &StageTarget::Container)
            .unwrap();
        assert_eq!(
            store.stage_target(stage_id).unwrap(),
            StageTarget::Container
        );
        assert!(store.swarm_stage_ids().unwrap().is_empty());
    }
}
