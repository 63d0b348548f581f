//! A swarm stage's service outside a deploy: its view, scale (stop/start) and removal for
//! the API, and what reconciliation does with services — the domains they route, the heal
//! that re-points those domains at the tasks, and deploys a restart interrupted, followed
//! again to the end Swarm gives them.

use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::Instant;

use crate::docker::{self, Engine, EngineError, ServiceInfo, SwarmRole, TaskInfo};
use crate::proxy::Upstream;
use crate::store::{DeployStatus, LogLevel, Project, Stage, StageTarget};
use crate::subdomain::Subdomain;

use super::super::pipeline::{Failure, Plan, Run};
use super::super::{DeployOutcome, Deployer, Inner, naming};
use super::follow::{Follow, shown, upstream_of};
use super::{Route, failed_outcome, finish_failed, finish_success, manager, monitor};

/// A swarm stage's service as the API shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServiceView {
    pub name: String,
    /// `None` when the stage has no service yet (never deployed, or removed).
    pub service: Option<ServiceInfo>,
    pub tasks: Vec<TaskInfo>,
}

impl Deployer {
    /// Why a swarm stage could not deploy on this engine now, or `None` when it can.
    pub async fn swarm_problem(&self) -> Option<String> {
        manager(&self.inner).await.err()
    }

    /// The stage's service and its tasks.
    pub async fn service_view(&self, stage_id: i64) -> Result<ServiceView, super::super::OpsError> {
        let (engine, name) = self.service_of(stage_id).await?;
        let service = engine.inspect_service(&name).await.map_err(engine_error)?;
        let tasks = match service {
            Some(_) => engine.service_tasks(&name).await.map_err(engine_error)?,
            None => Vec::new(),
        };
        Ok(ServiceView {
            name,
            service,
            tasks,
        })
    }

    /// Scales the stage's service: 0 stops every task (`stop`), the stage's replicas
    /// start them again (`start`). The stage's domain follows the tasks at the next heal.
    pub async fn scale_service(
        &self,
        stage_id: i64,
        replicas: u64,
    ) -> Result<(), super::super::OpsError> {
        let (engine, name) = self.service_of(stage_id).await?;
        engine
            .scale_service(&name, replicas)
            .await
            .map_err(engine_error)
    }

    /// Removes the stage's service and the stage domain's proxy route.
    pub async fn remove_service(&self, stage_id: i64) -> Result<(), super::super::OpsError> {
        let (engine, name) = self.service_of(stage_id).await?;
        engine.remove_service(&name).await.map_err(engine_error)?;
        if let Some(domain) = stage_domain(&self.inner, stage_id) {
            let proxy = self.inner.proxy();
            if let Ok(hosts) = proxy.list_hosts().await
                && let Some(host) = hosts.iter().find(|h| h.domain == domain.as_str())
                && let Err(e) = proxy.delete_host(&host.id).await
            {
                tracing::warn!(%domain, "cannot delete the route of a removed service: {e}");
            }
        }
        Ok(())
    }

    /// Refuses to switch a stage between the container and the swarm target while the
    /// other kind still runs something of it, or a deploy of it runs: the stage domain
    /// has one owner at every moment, and the user chooses when the old one stops.
    pub async fn check_target_switch(
        &self,
        stage_id: i64,
        to: &StageTarget,
    ) -> Result<(), super::super::OpsError> {
        let from = self.inner.store.stage_target(stage_id)?;
        if from.swarm().is_some() == to.swarm().is_some() {
            return Ok(()); // not a switch: replicas or update pace only
        }
        if let Some(deploy_id) = self.queue.running(stage_id) {
            return Err(super::super::OpsError::Conflict(format!(
                "deploy {deploy_id} of this stage is running; wait for it to finish, then change the target"
            )));
        }
        if to.swarm().is_some() {
            let instances: Vec<String> = self
                .inner
                .store
                .list_instances(stage_id)?
                .into_iter()
                .map(|i| format!("{} ({})", i.id, i.tag))
                .collect();
            if !instances.is_empty() {
                return Err(super::super::OpsError::Conflict(format!(
                    "the stage still has container instances {}: remove them first (DELETE /api/instances/{{id}}), then switch it to swarm",
                    instances.join(", ")
                )));
            }
            return Ok(());
        }
        // swarm → container: an engine outside any swarm holds no service of the stage.
        match self.service_view(stage_id).await {
            Ok(view) if view.service.is_some() => Err(super::super::OpsError::Conflict(format!(
                "the stage still runs the swarm service {}: remove it first (POST /api/stages/{stage_id}/service/remove), then switch it to containers",
                view.name
            ))),
            Ok(_) | Err(super::super::OpsError::Conflict(_)) => Ok(()),
            Err(e) => Err(e),
        }
    }

    async fn service_of(
        &self,
        stage_id: i64,
    ) -> Result<(Arc<dyn Engine>, String), super::super::OpsError> {
        let stage = self.inner.store.get_stage(stage_id)?;
        if !matches!(
            self.inner.store.stage_target(stage_id)?,
            StageTarget::Swarm(_)
        ) {
            return Err(super::super::OpsError::Conflict(
                "this stage runs containers, not a swarm service: use its instances".into(),
            ));
        }
        let project = self.inner.store.get_project(stage.project_id)?;
        let engine = manager(&self.inner)
            .await
            .map_err(super::super::OpsError::Conflict)?;
        Ok((engine, naming::service_name(&project.name, &stage.name)))
    }
}

fn engine_error(e: EngineError) -> super::super::OpsError {
    super::super::OpsError::Engine(e.to_string())
}

/// The stage's domain under the current settings, if domains are configured.
fn stage_domain(inner: &Inner, stage_id: i64) -> Option<Subdomain> {
    let stage = inner.store.get_stage(stage_id).ok()?;
    let project = inner.store.get_project(stage.project_id).ok()?;
    domain_of(inner, &project, &stage)
}

fn domain_of(inner: &Inner, project: &Project, stage: &Stage) -> Option<Subdomain> {
    let settings = inner.store.settings().ok()?;
    if settings.base_domain.is_empty() {
        return None;
    }
    Subdomain::for_stage(
        &settings.stage_subdomain_pattern,
        &settings.base_domain,
        &project.name,
        &stage.name,
    )
    .ok()
}

/// The domains swarm stages route (reconciliation must not take them for orphans).
pub(in crate::deployer) fn routed_domains(inner: &Inner) -> Vec<String> {
    inner
        .store
        .swarm_stage_ids()
        .unwrap_or_default()
        .into_iter()
        .filter_map(|id| stage_domain(inner, id))
        .map(|d| d.to_string())
        .collect()
}

/// Points each swarm stage's domain at its serving tasks again (Swarm reschedules tasks
/// on new ports when a node or task fails). Returns what changed or failed, as words.
pub(in crate::deployer) async fn heal(inner: &Inner) -> (Vec<String>, Vec<String>) {
    let (mut changed, mut problems) = (Vec::new(), Vec::new());
    let proxy = inner.proxy();
    if proxy.kind() == crate::store::ProxyKind::None {
        return (changed, problems);
    }
    let Some(engine) = inner.engine.docker() else {
        return (changed, problems);
    };
    let ids = inner.store.swarm_stage_ids().unwrap_or_default();
    if ids.is_empty() || !matches!(engine.swarm_role().await, Ok(SwarmRole::Manager { .. })) {
        return (changed, problems);
    }
    let hosts = proxy.list_hosts().await.unwrap_or_default();
    for id in ids {
        let (Ok(stage), Some(domain)) = (inner.store.get_stage(id), stage_domain(inner, id)) else {
            continue;
        };
        let Ok(project) = inner.store.get_project(stage.project_id) else {
            continue;
        };
        let Some(port) = super::super::rules::container_port(&project, &stage) else {
            continue;
        };
        let name = naming::service_name(&project.name, &stage.name);
        let Ok(tasks) = engine.service_tasks(&name).await else {
            continue;
        };
        let upstreams: BTreeSet<Upstream> = tasks
            .iter()
            .filter(|t| t.is_serving())
            .filter_map(|t| upstream_of(t, port))
            .collect();
        let Some(first) = upstreams.iter().next() else {
            continue; // scaled to 0 or not deployed: nothing to route to
        };
        let list: Vec<Upstream> = upstreams.iter().cloned().collect();
        // list_hosts shows a pool's first upstream; a pool route is rewritten only when
        // that differs (ensure_pool changes nothing when the route is already right).
        let current = hosts.iter().find(|h| h.domain == domain.as_str());
        if current.is_some_and(|h| &h.upstream == first) {
            if let Err(e) = proxy.ensure_pool(&domain, &list).await {
                problems.push(format!("cannot route {domain}: {e}"));
            }
            continue;
        }
        match proxy.ensure_pool(&domain, &list).await {
            Ok(_) => changed.push(format!("{domain} → {}", shown(&list))),
            Err(e) => problems.push(format!("cannot route {domain}: {e}")),
        }
    }
    (changed, problems)
}

/// Deploys of swarm stages a restart interrupted, as `(stage, deploy)`: Swarm went on
/// without us, so each is followed again to the end Swarm gives it — queued on its
/// stage's lane by the caller, so no other deploy of the stage runs meanwhile ([`resume`]
/// is what the lane runs for it). A deploy that never reached Swarm (its update carries
/// neither its id nor a later start) is finished as failed.
pub(in crate::deployer) fn resume_interrupted(inner: &Inner) -> Vec<(i64, i64)> {
    let deploys = inner.store.list_unfinished_deploys().unwrap_or_default();
    let resumed: Vec<(i64, i64)> = deploys
        .into_iter()
        .filter(|d| is_swarm_deploy(inner, d.stage_id))
        .map(|d| (d.stage_id, d.id))
        .collect();
    lock(&inner.resuming).extend(resumed.iter().map(|(_, id)| *id));
    resumed
}

/// Whether the queue's turn for `deploy_id` is a resumption (taken once).
pub(in crate::deployer) fn take_resuming(inner: &Inner, deploy_id: i64) -> bool {
    lock(&inner.resuming).remove(&deploy_id)
}

fn lock<T>(mutex: &std::sync::Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(|p| p.into_inner())
}

/// Whether a deploy is one reconciliation leaves to [`resume_interrupted`].
pub(in crate::deployer) fn is_swarm_deploy(inner: &Inner, stage_id: i64) -> bool {
    matches!(
        inner.store.stage_target(stage_id),
        Ok(StageTarget::Swarm(_))
    )
}

/// Follows an interrupted swarm deploy again (its turn in the stage's lane).
pub(in crate::deployer) async fn resume(inner: &Arc<Inner>, deploy_id: i64) -> DeployOutcome {
    let Ok(deploy) = inner.store.get_deploy(deploy_id) else {
        return DeployOutcome::Skipped;
    };
    let Ok(StageTarget::Swarm(target)) = inner.store.stage_target(deploy.stage_id) else {
        return DeployOutcome::Skipped;
    };
    if deploy.status.is_final() {
        return DeployOutcome::Skipped;
    }
    let started = Instant::now();
    let deploy_started = deploy.started_at;
    let mut run = Run::new(inner, deploy);
    run.log(
        LogLevel::Info,
        "reconcile",
        "the daemon restarted during this deploy: following the swarm service again",
    );
    let outcome: Result<(Plan, String), (Failure, DeployStatus)> = async {
        let failed = |message: String| {
            (
                Failure {
                    step: "reconcile",
                    message,
                },
                DeployStatus::Failed,
            )
        };
        let plan = run.plan().map_err(|f| (f, DeployStatus::Failed))?;
        let engine = manager(inner).await.map_err(failed)?;
        let name = naming::service_name(&plan.project.name, &plan.stage.name);
        let info = engine
            .inspect_service(&name)
            .await
            .map_err(|e| failed(e.to_string()))?
            .ok_or_else(|| failed(format!("interrupted: the service {name} does not exist")))?;
        let ours = info.labels.get(docker::labels::DEPLOY) == Some(&run.deploy.id.to_string());
        let later = info.update.as_ref().is_some_and(
            |u| matches!((u.started_at, deploy_started), (Some(a), Some(b)) if a >= b),
        );
        if !ours && !later {
            return Err(failed(
                "interrupted: the daemon stopped before the service was updated".into(),
            ));
        }
        // The image our spec asked for is the service's (ours) or, after Swarm rolled
        // it back, no longer known from the service: a rollback then ends the deploy.
        let image = if ours {
            info.image.clone()
        } else {
            String::from("\u{0}not-the-current-image")
        };
        let route = Route::of(&plan);
        let follow = Follow {
            inner,
            engine: engine.as_ref(),
            deploy_id: run.deploy.id,
            service: &name,
            image: &image,
            replicas: u64::from(target.replicas),
            monitor: monitor(&plan.policy),
            baseline: None,
            swarm_rollback: false,
            route: route.as_ref(),
        };
        follow.run().await.into_result(&name)?;
        follow.route_now(true).await.map_err(failed)?;
        Ok((plan, name))
    }
    .await;
    match outcome {
        Ok((plan, service)) => {
            finish_success(&mut run, &plan, &service, started);
            DeployOutcome::ServiceUpdated { service }
        }
        Err((failure, status)) => {
            run.log(LogLevel::Error, failure.step, &failure.message);
            finish_failed(&mut run, &failure, status, started);
            failed_outcome(failure, status)
        }
    }
}
