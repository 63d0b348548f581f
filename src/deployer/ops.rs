//! Manual operations the API calls: deploy a tag, redeploy, roll a stage back, promote
//! another stage's digest; stop,
//! start or remove an instance; and retire everything a stage runs before the stage (or
//! its project) is deleted.

use crate::docker::{ContainerId, EngineError};
use crate::store::{DeployFilter, DeployStatus, InstanceStatus, StoreError, Trigger};

use super::retire::{self, STOP_GRACE};
use super::{DeployRequest, DeployTrigger, Deployer};
use crate::trigger::RequestOrigin;

/// Why a manual operation was refused or failed. The API maps each variant to its own
/// status: a store error keeps its kind (missing 404, clash 409, anything else 500).
#[derive(Debug, thiserror::Error)]
pub enum OpsError {
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The operation does not fit the current state; the message says what to do.
    #[error("{0}")]
    Conflict(String),
    /// The instance's container was removed behind docker-watcher's back; the instance
    /// is marked failed.
    #[error(
        "the container of instance {instance_id} is gone (removed outside docker-watcher); remove the instance or redeploy the stage"
    )]
    ContainerGone { instance_id: i64 },
    /// Docker failed (or a step of removing an instance did).
    #[error("docker: {0}")]
    Engine(String),
}

impl Deployer {
    /// Queues a deploy of `tag` to a stage, as a person or a script asked.
    pub async fn deploy_tag(
        &self,
        stage_id: i64,
        tag: &str,
        trigger: Trigger,
    ) -> Result<i64, OpsError> {
        self.deploy_tag_as(stage_id, tag, trigger, RequestOrigin::default())
            .await
    }

    /// [`Deployer::deploy_tag`] with who asked (for the audit log and approvals) and
    /// whether it may start outside the stage's deploy windows.
    pub async fn deploy_tag_as(
        &self,
        stage_id: i64,
        tag: &str,
        trigger: Trigger,
        origin: RequestOrigin,
    ) -> Result<i64, OpsError> {
        let stage = self.inner.store.get_stage(stage_id)?;
        Ok(self
            .request_deploy(DeployRequest {
                project_id: stage.project_id,
                stage_id,
                tag: tag.to_string(),
                digest: None,
                trigger,
                detected_at: None,
                origin,
            })
            .await?)
    }

    /// Deploys the tag of an earlier deploy again.
    pub async fn redeploy(
        &self,
        deploy_id: i64,
        trigger: Trigger,
        origin: RequestOrigin,
    ) -> Result<i64, OpsError> {
        let deploy = self.inner.store.get_deploy(deploy_id)?;
        self.deploy_tag_as(deploy.stage_id, &deploy.tag, trigger, origin)
            .await
    }

    /// Deploys to `stage_id` exactly what `from_stage_id` (a stage of the same project)
    /// runs (`release::running`): its tag, pulled by its digest.
    pub async fn promote(
        &self,
        stage_id: i64,
        from_stage_id: i64,
        origin: RequestOrigin,
    ) -> Result<i64, OpsError> {
        let store = &self.inner.store;
        let stage = store.get_stage(stage_id)?;
        let from = store.get_stage(from_stage_id)?;
        if from.project_id != stage.project_id {
            return Err(OpsError::Conflict(format!(
                "stage {} belongs to another project; promote between stages of one project",
                from.name
            )));
        }
        if from.id == stage.id {
            return Err(OpsError::Conflict(
                "a stage cannot be promoted to itself; pick another source stage".into(),
            ));
        }
        let running = crate::release::running(store, from.id)?.ok_or_else(|| {
            OpsError::Conflict(format!(
                "stage {} runs nothing to promote; deploy there first",
                from.name
            ))
        })?;
        let digest = running.digest.clone().ok_or_else(|| {
            OpsError::Conflict(format!(
                "the digest of what stage {} runs is not known (it was not pulled from a registry); redeploy it there first",
                from.name
            ))
        })?;
        Ok(self
            .request_deploy(DeployRequest {
                project_id: stage.project_id,
                stage_id,
                tag: running.tag,
                digest: Some(digest),
                trigger: Trigger::Promotion,
                detected_at: None,
                origin: RequestOrigin {
                    promoted_from: Some((from.id, running.deploy_id)),
                    ..origin
                },
            })
            .await?)
    }

    /// Deploys the tag that was live before the current one.
    pub async fn roll_back_stage(
        &self,
        stage_id: i64,
        trigger: Trigger,
        origin: RequestOrigin,
    ) -> Result<i64, OpsError> {
        let successes = self.inner.store.list_deploys(&DeployFilter {
            stage_id: Some(stage_id),
            status: Some(DeployStatus::Success),
            limit: 100,
            ..Default::default()
        })?;
        let current = successes
            .first()
            .ok_or_else(|| OpsError::Conflict("this stage has no successful deploy yet".into()))?;
        let previous = successes
            .iter()
            .find(|d| d.tag != current.tag)
            .ok_or_else(|| {
                OpsError::Conflict(format!(
                    "no earlier tag to roll back to: every successful deploy was {}",
                    current.tag
                ))
            })?;
        self.deploy_tag_as(stage_id, &previous.tag, trigger, origin)
            .await
    }

    pub async fn stop_instance(&self, instance_id: i64) -> Result<(), OpsError> {
        let instance = self.inner.store.get_instance(instance_id)?;
        let id = container_of(&instance)?;
        let stopped = self.inner.engine.stop(&id, STOP_GRACE).await;
        self.engine_outcome(instance_id, stopped)?;
        self.inner
            .store
            .set_instance_status(instance_id, InstanceStatus::Stopped)?;
        Ok(())
    }

    pub async fn start_instance(&self, instance_id: i64) -> Result<(), OpsError> {
        let instance = self.inner.store.get_instance(instance_id)?;
        let id = container_of(&instance)?;
        let started = self.inner.engine.start(&id).await;
        self.engine_outcome(instance_id, started)?;
        self.inner
            .store
            .set_instance_status(instance_id, InstanceStatus::Running)?;
        Ok(())
    }

    /// Turns Docker's answer into ours; a container that no longer exists marks the
    /// instance failed (as reconciliation would) and says what to do.
    fn engine_outcome(
        &self,
        instance_id: i64,
        result: Result<(), EngineError>,
    ) -> Result<(), OpsError> {
        match result {
            Ok(()) => Ok(()),
            Err(EngineError::ContainerNotFound { .. }) => {
                self.inner
                    .store
                    .set_instance_status(instance_id, InstanceStatus::Failed)?;
                tracing::warn!(
                    instance_id,
                    "the instance's container is gone; marked failed"
                );
                Err(OpsError::ContainerGone { instance_id })
            }
            Err(e) => Err(OpsError::Engine(e.to_string())),
        }
    }

    /// Removes an instance with its container and proxy hosts.
    pub async fn remove_instance(&self, instance_id: i64) -> Result<(), OpsError> {
        let instance = self.inner.store.get_instance(instance_id)?;
        if self.queue.running(instance.stage_id).is_some()
            && instance.status == InstanceStatus::Starting
        {
            return Err(OpsError::Conflict(
                "this instance is being deployed; wait for the deploy to finish".into(),
            ));
        }
        // A `stopping` instance no task is stopping (a removal or a retirement that gave up
        // on the proxy) may be removed again; one being stopped may not.
        if instance.status == InstanceStatus::Stopping
            && retire::stopping_in_background(&self.inner, instance.id)
        {
            return Err(stopping_conflict(instance.id));
        }
        retire::remove_instance(&self.inner, &instance)
            .await
            .map_err(OpsError::Engine)
    }
}

/// How long deleting a stage waits for a deploy of it that is under way.
const DEPLOY_WAIT: std::time::Duration = std::time::Duration::from_secs(30);

impl Deployer {
    /// Retires every instance of the stage — its proxy hosts (the stage domain's too), its
    /// container, its row — so the stage can be deleted without leaving anything serving.
    /// A deploy under way is waited for (at most [`DEPLOY_WAIT`]) rather than cut off
    /// half-way; one still running after that is a conflict, and nothing is retired. When
    /// an instance cannot be retired the error says which, and the stage must stay
    /// (deleting it would orphan what is left).
    pub async fn retire_stage(&self, stage_id: i64) -> Result<(), OpsError> {
        self.inner.store.get_stage(stage_id)?;
        let deadline = tokio::time::Instant::now() + DEPLOY_WAIT;
        while let Some(deploy_id) = self.queue.running(stage_id) {
            if tokio::time::Instant::now() >= deadline {
                return Err(OpsError::Conflict(format!(
                    "deploy {deploy_id} of this stage is still running; wait for it to finish, then delete again"
                )));
            }
            tokio::time::sleep(std::time::Duration::from_millis(200)).await;
        }
        let instances = self.inner.store.list_instances(stage_id)?;
        let domains: std::collections::HashSet<String> = instances
            .iter()
            .flat_map(|i| i.subdomains.iter().cloned())
            .collect();
        let mut problems = Vec::new();
        for instance in &instances {
            if let Err(e) = retire::remove_instance(&self.inner, instance).await {
                problems.push(format!("instance {} ({}): {e}", instance.id, instance.tag));
            }
        }
        // The stage domain's host is recorded on no instance (it moves between them): it
        // goes by its domain, now that nothing of the stage serves it.
        let proxy = self.inner.proxy();
        match proxy.list_hosts().await {
            Ok(hosts) => {
                for host in hosts.iter().filter(|h| domains.contains(&h.domain)) {
                    if let Err(e) = proxy.delete_host(&host.id).await {
                        problems.push(format!("proxy host {}: {e}", host.domain));
                    }
                }
            }
            Err(e) => problems.push(format!("cannot list proxy hosts: {e}")),
        }
        if problems.is_empty() {
            Ok(())
        } else {
            Err(OpsError::Engine(format!(
                "could not retire everything this stage runs, so it was kept: {}; fix that and delete again",
                problems.join("; ")
            )))
        }
    }
}

/// A retired instance is stopped and removed in the background; touching it meanwhile
/// would race that.
fn stopping_conflict(instance_id: i64) -> OpsError {
    OpsError::Conflict(format!(
        "instance {instance_id} was retired and is stopping; it is removed within a minute, deploy its tag again to bring it back"
    ))
}

fn container_of(instance: &crate::store::Instance) -> Result<ContainerId, OpsError> {
    match (&instance.container_id, instance.status) {
        (_, InstanceStatus::Failed) => Err(OpsError::Conflict(format!(
            "instance {} has failed (its container is gone or never became healthy); remove the instance or redeploy the stage",
            instance.id
        ))),
        (_, InstanceStatus::Removing) => Err(OpsError::Conflict(format!(
            "instance {} is being removed",
            instance.id
        ))),
        (_, InstanceStatus::Stopping) => Err(stopping_conflict(instance.id)),
        (Some(id), _) => Ok(ContainerId::new(id.clone())),
        (None, _) => Err(OpsError::Conflict(format!(
            "instance {} has no container",
            instance.id
        ))),
    }
}
