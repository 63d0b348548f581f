//! Stages with the `swarm` target: a deploy is a Docker Swarm service update.
//!
//! plan → check the engine is a manager → pull (for the digest) → create the stage's
//! service (first deploy) or update its image by digest (start-first, roll back on
//! failure, the health check gating each task) → follow the update as `docker service
//! update` does → route the stage's domain to the healthy tasks → record.
//!
//! Swarm does the fan-out and the automatic rollback; this module only reads what it did:
//! `UpdateStatus.State` every [`POLL`] and the tasks. A deploy is `success` only when the
//! update completed with every replica on the new image, `rolled_back` (with Swarm's
//! message) when Swarm rolled back, `failed` when it paused. A deploy back to the image
//! the standing update replaced is Swarm's own rollback (`rollback=previous`).
//!
//! The stage's domain routes to the serving tasks' published host ports (host mode, a
//! port per task), as a pool with retries, following the tasks while the update runs, so
//! a task Swarm stops is left out before it goes. No instance rows: the service is the
//! stage's one running thing; reconciliation finds it by name.

use std::collections::{BTreeSet, HashSet};
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::docker::{
    self, Engine, EngineError, ServiceHealth, ServiceInfo, ServiceSpec, SwarmRole, TaskInfo,
    UpdatePolicy, UpdateState, UpdateStatus,
};
use crate::health::HealthPolicy;
use crate::notify::EventKind;
use crate::proxy::Upstream;
use crate::store::{DeployStatus, LogLevel, Project, Stage, StageTarget, SwarmTarget};
use crate::subdomain::Subdomain;

use super::pipeline::{Failure, Plan, Run};
use super::{DeployOutcome, Deployer, Inner, naming};

/// How often the service is inspected while an update runs (as the Docker CLI does).
pub const POLL: Duration = Duration::from_millis(200);
/// How long a deploy follows an update before it gives up on Swarm.
const FOLLOW_LIMIT: Duration = Duration::from_secs(15 * 60);

/// Runs a deploy of a swarm stage to its end.
pub(super) async fn deploy(
    mut run: Run<'_>,
    target: SwarmTarget,
    started: Instant,
) -> DeployOutcome {
    let mut created = None;
    let result = steps(&mut run, &target, &mut created).await;
    match result {
        Ok((plan, service)) => {
            run.log(
                LogLevel::Info,
                "done",
                &format!(
                    "{} is live on {} replicas of {service} in {:.1} s",
                    run.deploy.tag,
                    target.replicas,
                    started.elapsed().as_secs_f64()
                ),
            );
            run.set_status(DeployStatus::Success);
            crate::metrics::deploy_finished("success", started.elapsed(), None);
            let urls: Vec<String> = plan.stage_domain.iter().map(|d| d.to_string()).collect();
            run.notify(
                &plan.project,
                &plan.stage,
                EventKind::Success,
                started,
                None,
                &urls,
            );
            DeployOutcome::ServiceUpdated { service }
        }
        Err((failure, mut status)) => {
            run.log(LogLevel::Error, failure.step, &failure.message);
            if let Some(service) = created {
                // The first deploy made the service: a failed one takes it away again.
                status = DeployStatus::RolledBack;
                if let Some(engine) = run.inner.engine.docker() {
                    match engine.remove_service(&service).await {
                        Ok(()) => run.log(
                            LogLevel::Info,
                            "rollback",
                            &format!("removed service {service}"),
                        ),
                        Err(e) => run.log(
                            LogLevel::Warn,
                            "rollback",
                            &format!("cannot remove service {service}: {e}"),
                        ),
                    }
                }
            }
            finish_failed(&mut run, &failure, status, started);
            let (step, error) = (failure.step.to_string(), failure.message);
            if status == DeployStatus::RolledBack {
                DeployOutcome::RolledBack { step, error }
            } else {
                DeployOutcome::Failed { step, error }
            }
        }
    }
}

/// The steps; an error carries the failure and the status it ends in.
async fn steps(
    run: &mut Run<'_>,
    target: &SwarmTarget,
    created: &mut Option<String>,
) -> Result<(Plan, String), (Failure, DeployStatus)> {
    let failed = |failure: Failure| (failure, DeployStatus::Failed);
    let plan = run.plan().map_err(failed)?;
    let engine = manager(run.inner).await.map_err(|message| {
        failed(Failure {
            step: "plan",
            message,
        })
    })?;
    run.set_status(DeployStatus::Pulling);
    run.pull(&plan).await.map_err(failed)?;
    let image = match &run.deploy.digest {
        Some(digest) => format!("{}@{digest}", plan.image),
        None => plan.image.clone(),
    };
    let name = naming::service_name(&plan.project.name, &plan.stage.name);
    let before = engine
        .inspect_service(&name)
        .await
        .map_err(|e| failed(fail("update", e)))?;
    if !plan.project.volumes.is_empty() || plan.project.network.is_some() {
        run.log(
            LogLevel::Warn,
            "update",
            "the project's volumes and network are not given to swarm services (a node-local \
             volume would differ from node to node); use a volume driver every node shares",
        );
    }
    run.set_status(DeployStatus::Starting);
    // While the last update stands (completed), Swarm's previous spec is the one it
    // replaced: going back to that image is Swarm's rollback, not a new spec.
    let swarm_rollback = before.as_ref().is_some_and(|s| {
        s.update
            .as_ref()
            .is_some_and(|u| u.state == UpdateState::Completed)
            && s.labels.get(docker::labels::PREVIOUS_IMAGE) == Some(&image)
    });
    if swarm_rollback {
        run.log(
            LogLevel::Info,
            "update",
            &format!("rolling {name} back to its previous spec ({image})"),
        );
        engine
            .rollback_service(&name)
            .await
            .map_err(|e| failed(fail("update", e)))?;
    } else {
        let spec =
            service_spec(run, &plan, target, &name, &image, before.as_ref()).map_err(failed)?;
        let change = engine
            .deploy_service(&spec, plan.auth.as_ref())
            .await
            .map_err(|e| failed(fail("update", e)))?;
        if change.created {
            *created = Some(name.clone());
        }
        run.log(
            LogLevel::Info,
            "update",
            &if change.created {
                format!(
                    "created service {name} with {} replicas of {image}",
                    target.replicas
                )
            } else {
                format!(
                    "updating service {name} to {image}: {} at a time, start-first, rolling back on failure",
                    match target.update_parallelism {
                        0 => "all".to_string(),
                        n => n.to_string(),
                    }
                )
            },
        );
        for warning in change.warnings {
            run.log(LogLevel::Warn, "update", &warning);
        }
    }
    run.set_status(DeployStatus::HealthChecking);
    let route = Route::of(&plan);
    let follow = Follow {
        inner: run.inner,
        engine: engine.as_ref(),
        deploy_id: run.deploy.id,
        service: &name,
        image: &image,
        replicas: u64::from(target.replicas),
        monitor: monitor(&plan.policy),
        baseline: before.and_then(|s| s.update),
        swarm_rollback,
        route: route.as_ref(),
    };
    match follow.run().await {
        Ending::Completed => {}
        Ending::RolledBack(message) => {
            return Err((
                Failure {
                    step: "update",
                    message: format!("swarm rolled the update back: {message}"),
                },
                DeployStatus::RolledBack,
            ));
        }
        Ending::Paused(message) => {
            return Err(failed(Failure {
                step: "update",
                message: format!(
                    "swarm paused the update: {message}; look at `docker service ps {name}`"
                ),
            }));
        }
        Ending::Failed(message) => {
            return Err(failed(Failure {
                step: "update",
                message,
            }));
        }
    }
    run.set_status(DeployStatus::ConfiguringProxy);
    let routed = follow.route_now(true).await;
    match (&route, routed) {
        (None, _) => run.log(
            LogLevel::Info,
            "proxy",
            "no domain, no port or no proxy: nothing to route",
        ),
        (Some(route), Ok(upstreams)) => run.log(
            LogLevel::Info,
            "proxy",
            &format!("{} → {}", route.domain, shown(&upstreams)),
        ),
        (Some(_), Err(message)) => {
            return Err(failed(Failure {
                step: "proxy",
                message,
            }));
        }
    }
    Ok((plan, name))
}

fn fail(step: &'static str, error: EngineError) -> Failure {
    Failure {
        step,
        message: error.to_string(),
    }
}

/// The engine, when it is a swarm manager; else what to do, in words.
async fn manager(inner: &Inner) -> Result<Arc<dyn Engine>, String> {
    let engine = inner
        .engine
        .docker()
        .ok_or("this container runtime cannot run swarm services")?;
    match engine.swarm_role().await {
        Ok(SwarmRole::Manager { .. }) => Ok(engine),
        Ok(role) => Err(not_manager(&role)),
        Err(e) => Err(e.to_string()),
    }
}

/// Why a swarm stage cannot deploy here, for the deploy log and the stage form.
pub fn not_manager(role: &SwarmRole) -> String {
    let what = match role {
        SwarmRole::NotInSwarm => "is not part of a swarm".to_string(),
        SwarmRole::Worker => "is a swarm worker, not a manager".to_string(),
        SwarmRole::Other(state) => format!("is in swarm state {state}"),
        SwarmRole::Manager { .. } => "is a manager".to_string(),
    };
    format!(
        "the Docker Engine docker-watcher uses {what}: swarm stages deploy through a swarm manager; run `docker swarm init` on this host (or run docker-watcher on a manager), or give the stage the container target"
    )
}

/// How long Swarm watches each updated task for failure: a few health intervals.
fn monitor(policy: &HealthPolicy) -> Duration {
    (policy.interval * (policy.retries + 2)).max(Duration::from_secs(1))
}

fn service_spec(
    run: &Run<'_>,
    plan: &Plan,
    target: &SwarmTarget,
    name: &str,
    image: &str,
    before: Option<&ServiceInfo>,
) -> Result<ServiceSpec, Failure> {
    let store = &run.inner.store;
    let to_failure = |e: crate::store::StoreError| Failure {
        step: "update",
        message: e.to_string(),
    };
    let env = super::rules::environment(
        store.project_env(plan.project.id).map_err(to_failure)?,
        store.stage_env(plan.stage.id).map_err(to_failure)?,
        [
            ("DW_PROJECT", plan.project.name.as_str()),
            ("DW_STAGE", plan.stage.name.as_str()),
            ("DW_TAG", run.deploy.tag.as_str()),
        ],
    );
    let mut labels = std::collections::BTreeMap::from([
        (docker::labels::MANAGED.to_string(), "true".to_string()),
        (
            docker::labels::PROJECT.to_string(),
            plan.project.name.clone(),
        ),
        (docker::labels::STAGE.to_string(), plan.stage.name.clone()),
        (
            docker::labels::DEPLOY.to_string(),
            run.deploy.id.to_string(),
        ),
        (docker::labels::TAG.to_string(), run.deploy.tag.clone()),
        (
            docker::labels::INSTALLATION.to_string(),
            run.inner.installation_id.clone(),
        ),
    ]);
    if let Some(before) = before.filter(|b| b.image != image) {
        labels.insert(
            docker::labels::PREVIOUS_IMAGE.to_string(),
            before.image.clone(),
        );
    }
    let health = match (&plan.probe_path, plan.container_port) {
        // The project's HTTP check, run by Swarm inside each task (needs `wget`, as in
        // busybox and Alpine images); without one the image's own HEALTHCHECK gates.
        (Some(path), Some(port)) => Some(ServiceHealth {
            test: vec![
                "CMD-SHELL".into(),
                format!("wget -q -O /dev/null http://127.0.0.1:{port}{path} || exit 1"),
            ],
            interval: plan.policy.interval,
            timeout: plan.policy.timeout,
            start_period: plan.policy.start_period,
            retries: plan.policy.retries,
        }),
        _ => None,
    };
    Ok(ServiceSpec {
        name: name.to_string(),
        image: image.to_string(),
        labels,
        env,
        container_port: plan.container_port,
        replicas: u64::from(target.replicas),
        constraints: target.constraints.clone(),
        update: UpdatePolicy {
            parallelism: u64::from(target.update_parallelism),
            delay: Duration::from_millis(u64::from(target.update_delay_ms)),
            monitor: monitor(&plan.policy),
        },
        health,
        memory_bytes: plan.project.memory_bytes,
        nano_cpus: plan.project.nano_cpus,
    })
}

fn finish_failed(run: &mut Run<'_>, failure: &Failure, status: DeployStatus, started: Instant) {
    if let Err(e) =
        run.inner
            .store
            .finish_deploy_failed(run.deploy.id, status, failure.step, &failure.message)
    {
        tracing::warn!(deploy_id = run.deploy.id, "cannot record failure: {e}");
    }
    run.deploy.status = status;
    run.publish(status);
    crate::metrics::deploy_finished(status.as_str(), started.elapsed(), None);
    if let (Ok(project), Ok(stage)) = (
        run.inner.store.get_project(run.deploy.project_id),
        run.inner.store.get_stage(run.deploy.stage_id),
    ) {
        let kind = if status == DeployStatus::RolledBack {
            EventKind::Rollback
        } else {
            EventKind::Failure
        };
        run.notify(&project, &stage, kind, started, Some((failure, None)), &[]);
    }
}

/// Where the stage's domain goes: the tasks' published `port`.
struct Route {
    domain: Subdomain,
    port: u16,
}

impl Route {
    fn of(plan: &Plan) -> Option<Route> {
        Some(Route {
            domain: plan.stage_domain.clone()?,
            port: plan.container_port?,
        })
    }
}

/// How an update ended, as Swarm said.
#[derive(Debug, PartialEq, Eq)]
enum Ending {
    Completed,
    RolledBack(String),
    Paused(String),
    Failed(String),
}

/// Follows one update (or creation, or rollback) of a service to its end.
struct Follow<'a> {
    inner: &'a Inner,
    engine: &'a dyn Engine,
    deploy_id: i64,
    service: &'a str,
    /// The image every replica must run at the end.
    image: &'a str,
    replicas: u64,
    monitor: Duration,
    /// The update status before ours: seen again, it is not ours.
    baseline: Option<UpdateStatus>,
    /// We asked for Swarm's rollback: `rollback_completed` is the success.
    swarm_rollback: bool,
    route: Option<&'a Route>,
}

impl Follow<'_> {
    async fn run(&self) -> Ending {
        let deadline = Instant::now() + FOLLOW_LIMIT;
        let mut shown_updated = None;
        let mut failures_seen: HashSet<String> = HashSet::new();
        let mut last_error = String::new();
        let mut settled_since: Option<Instant> = None;
        let mut routed: Option<BTreeSet<Upstream>> = None;
        let mut shown_state: Option<UpdateState> = None;
        // Swarm says why it rolls back when it starts to; at the end it only says
        // "rollback completed".
        let mut rollback_reason = String::new();
        loop {
            if Instant::now() > deadline {
                return Ending::Failed(format!(
                    "swarm did not finish within {} min; look at `docker service ps {}`",
                    FOLLOW_LIMIT.as_secs() / 60,
                    self.service
                ));
            }
            tokio::time::sleep(POLL).await;
            let info = match self.engine.inspect_service(self.service).await {
                Ok(Some(info)) => info,
                Ok(None) => {
                    return Ending::Failed(format!(
                        "the service {} was removed during the deploy",
                        self.service
                    ));
                }
                Err(EngineError::Unreachable { .. }) => continue,
                Err(e) => return Ending::Failed(e.to_string()),
            };
            let tasks = self
                .engine
                .service_tasks(self.service)
                .await
                .unwrap_or_default();
            let updated = tasks
                .iter()
                .filter(|t| t.image == self.image && t.is_serving())
                .count() as u64;
            if shown_updated != Some(updated) {
                self.log(
                    LogLevel::Info,
                    &format!("replicas updated {updated}/{}", self.replicas),
                );
                shown_updated = Some(updated);
            }
            for task in tasks.iter().filter(|t| failed(t)) {
                if failures_seen.insert(task.id.clone()) && task.image == self.image {
                    last_error = task_problem(task);
                    self.log(LogLevel::Warn, &last_error);
                }
            }
            if let Some(upstreams) = self.serving_upstreams(&tasks)
                && routed.as_ref() != Some(&upstreams)
                && self.apply_route(&upstreams).await
            {
                routed = Some(upstreams);
            }
            let ours = info.update.filter(|u| Some(u) != self.baseline.as_ref());
            let state = ours.as_ref().map(|u| u.state.clone());
            if state.is_some() && state != shown_state {
                let message = ours.as_ref().map(|u| u.message.as_str()).unwrap_or("");
                self.log(
                    LogLevel::Info,
                    &format!(
                        "swarm: {}{}",
                        state.clone().map(|s| s.to_string()).unwrap_or_default(),
                        if message.is_empty() {
                            String::new()
                        } else {
                            format!(" ({message})")
                        }
                    ),
                );
                shown_state = state.clone();
                if state == Some(UpdateState::RollbackStarted) {
                    rollback_reason = message.to_string();
                }
            }
            let all_new = updated >= self.replicas
                && tasks
                    .iter()
                    .filter(|t| t.is_serving())
                    .all(|t| t.image == self.image);
            match ours {
                None => {
                    // A creation (no update status) or a change Swarm had nothing to roll
                    // out for: done when every replica serves the image for `monitor`.
                    if all_new {
                        let since = *settled_since.get_or_insert_with(Instant::now);
                        if since.elapsed() >= self.monitor {
                            return Ending::Completed;
                        }
                    } else {
                        settled_since = None;
                    }
                    let failures = tasks
                        .iter()
                        .filter(|t| failed(t) && t.image == self.image)
                        .count() as u64;
                    if failures > self.replicas + 2 {
                        return Ending::Failed(format!(
                            "the service's tasks keep failing: {last_error}"
                        ));
                    }
                }
                Some(status) => match status.state {
                    UpdateState::Updating | UpdateState::RollbackStarted => {}
                    UpdateState::Other(_) => {}
                    UpdateState::Completed if all_new => return Ending::Completed,
                    UpdateState::Completed => {}
                    UpdateState::RollbackCompleted if self.swarm_rollback => {
                        if all_new {
                            return Ending::Completed;
                        }
                    }
                    UpdateState::RollbackCompleted => {
                        let reason = if rollback_reason.is_empty() {
                            status.message
                        } else {
                            format!("{rollback_reason}; {}", status.message)
                        };
                        return Ending::RolledBack(with_cause(&reason, &last_error));
                    }
                    UpdateState::Paused | UpdateState::RollbackPaused => {
                        return Ending::Paused(with_cause(&status.message, &last_error));
                    }
                },
            }
        }
    }

    /// Routes the stage's domain to the serving tasks now; `at_end` routes only those on
    /// the deployed image. The upstreams, or why it failed.
    async fn route_now(&self, at_end: bool) -> Result<Vec<Upstream>, String> {
        let Some(route) = self.route else {
            return Ok(Vec::new());
        };
        let tasks = self
            .engine
            .service_tasks(self.service)
            .await
            .map_err(|e| e.to_string())?;
        let upstreams: Vec<Upstream> = tasks
            .iter()
            .filter(|t| t.is_serving() && (!at_end || t.image == self.image))
            .filter_map(|t| upstream_of(t, route.port))
            .collect();
        if self.inner.proxy().kind() == crate::store::ProxyKind::None {
            return Ok(upstreams);
        }
        self.inner
            .proxy()
            .ensure_pool(&route.domain, &upstreams)
            .await
            .map_err(|e| e.to_string())?;
        Ok(upstreams)
    }

    fn serving_upstreams(&self, tasks: &[TaskInfo]) -> Option<BTreeSet<Upstream>> {
        let route = self.route?;
        let upstreams: BTreeSet<Upstream> = tasks
            .iter()
            .filter(|t| t.is_serving())
            .filter_map(|t| upstream_of(t, route.port))
            .collect();
        (!upstreams.is_empty()).then_some(upstreams)
    }

    /// Points the domain at `upstreams` while the update runs; false when it could not.
    async fn apply_route(&self, upstreams: &BTreeSet<Upstream>) -> bool {
        let Some(route) = self.route else {
            return false;
        };
        let proxy = self.inner.proxy();
        if proxy.kind() == crate::store::ProxyKind::None {
            return true;
        }
        let list: Vec<Upstream> = upstreams.iter().cloned().collect();
        match proxy.ensure_pool(&route.domain, &list).await {
            Ok(_) => {
                self.log(
                    LogLevel::Debug,
                    &format!("{} → {}", route.domain, shown(&list)),
                );
                true
            }
            Err(e) => {
                self.log(
                    LogLevel::Warn,
                    &format!("cannot route {}: {e}", route.domain),
                );
                false
            }
        }
    }

    fn log(&self, level: LogLevel, message: &str) {
        self.inner.log(self.deploy_id, level, "update", message);
    }
}

fn failed(task: &TaskInfo) -> bool {
    matches!(task.state.as_str(), "failed" | "rejected")
}

fn task_problem(task: &TaskInfo) -> String {
    let slot = task.slot.map(|s| format!(" {s}")).unwrap_or_default();
    match &task.error {
        Some(error) => format!("task{slot} {}: {} ({error})", task.state, task.message),
        None => format!("task{slot} {}: {}", task.state, task.message),
    }
}

fn with_cause(message: &str, last_error: &str) -> String {
    match (message.is_empty(), last_error.is_empty()) {
        (true, true) => "no reason given".into(),
        (false, true) => message.to_string(),
        (true, false) => last_error.to_string(),
        (false, false) => format!("{message}; {last_error}"),
    }
}

fn upstream_of(task: &TaskInfo, port: u16) -> Option<Upstream> {
    Some(Upstream {
        host: task.host.clone(),
        port: *task.ports.get(&port)?,
    })
}

fn shown(upstreams: &[Upstream]) -> String {
    if upstreams.is_empty() {
        return "no task".into();
    }
    upstreams
        .iter()
        .map(Upstream::address)
        .collect::<Vec<_>>()
        .join(", ")
}

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
    pub async fn service_view(&self, stage_id: i64) -> Result<ServiceView, super::OpsError> {
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
    pub async fn scale_service(&self, stage_id: i64, replicas: u64) -> Result<(), super::OpsError> {
        let (engine, name) = self.service_of(stage_id).await?;
        engine
            .scale_service(&name, replicas)
            .await
            .map_err(engine_error)
    }

    /// Removes the stage's service and the stage domain's proxy route.
    pub async fn remove_service(&self, stage_id: i64) -> Result<(), super::OpsError> {
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

    async fn service_of(
        &self,
        stage_id: i64,
    ) -> Result<(Arc<dyn Engine>, String), super::OpsError> {
        let stage = self.inner.store.get_stage(stage_id)?;
        if !matches!(
            self.inner.store.stage_target(stage_id)?,
            StageTarget::Swarm(_)
        ) {
            return Err(super::OpsError::Conflict(
                "this stage runs containers, not a swarm service: use its instances".into(),
            ));
        }
        let project = self.inner.store.get_project(stage.project_id)?;
        let engine = manager(&self.inner)
            .await
            .map_err(super::OpsError::Conflict)?;
        Ok((engine, naming::service_name(&project.name, &stage.name)))
    }
}

fn engine_error(e: EngineError) -> super::OpsError {
    super::OpsError::Engine(e.to_string())
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
pub(super) fn routed_domains(inner: &Inner) -> Vec<String> {
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
pub(super) async fn heal(inner: &Inner) -> (Vec<String>, Vec<String>) {
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
        let Some(port) = super::rules::container_port(&project, &stage) else {
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

/// Deploys of swarm stages a restart interrupted: Swarm went on without us, so each is
/// followed to the end Swarm gives it, in the background. A deploy that never reached
/// Swarm (its update carries neither its id nor a later start) is finished as failed.
pub(super) fn resume_interrupted(inner: &Arc<Inner>) -> Vec<i64> {
    let deploys = inner.store.list_unfinished_deploys().unwrap_or_default();
    let mut resumed = Vec::new();
    for deploy in deploys {
        let Ok(StageTarget::Swarm(target)) = inner.store.stage_target(deploy.stage_id) else {
            continue;
        };
        resumed.push(deploy.id);
        let inner = inner.clone();
        tokio::spawn(async move {
            resume(&inner, deploy, target).await;
        });
    }
    resumed
}

/// Whether a deploy is one reconciliation leaves to [`resume_interrupted`].
pub(super) fn is_swarm_deploy(inner: &Inner, stage_id: i64) -> bool {
    matches!(
        inner.store.stage_target(stage_id),
        Ok(StageTarget::Swarm(_))
    )
}

async fn resume(inner: &Arc<Inner>, deploy: crate::store::Deploy, target: SwarmTarget) {
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
        match follow.run().await {
            Ending::Completed => {
                follow.route_now(true).await.map_err(failed)?;
                Ok((plan, name))
            }
            Ending::RolledBack(message) => Err((
                Failure {
                    step: "update",
                    message: format!("swarm rolled the update back: {message}"),
                },
                DeployStatus::RolledBack,
            )),
            Ending::Paused(message) => Err(failed(format!("swarm paused the update: {message}"))),
            Ending::Failed(message) => Err(failed(message)),
        }
    }
    .await;
    match outcome {
        Ok((plan, service)) => {
            run.log(
                LogLevel::Info,
                "done",
                &format!("{} is live on {service}", run.deploy.tag),
            );
            run.set_status(DeployStatus::Success);
            let urls: Vec<String> = plan.stage_domain.iter().map(|d| d.to_string()).collect();
            run.notify(
                &plan.project,
                &plan.stage,
                EventKind::Success,
                started,
                None,
                &urls,
            );
        }
        Err((failure, status)) => {
            run.log(LogLevel::Error, failure.step, &failure.message);
            finish_failed(&mut run, &failure, status, started);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn task(state: &str, desired: &str, ports: &[(u16, u16)]) -> TaskInfo {
        TaskInfo {
            id: "t1".into(),
            slot: Some(1),
            image: "img".into(),
            state: state.into(),
            desired_state: desired.into(),
            message: "started".into(),
            error: None,
            host: "127.0.0.1".into(),
            ports: ports.iter().copied().collect(),
        }
    }

    #[test]
    fn only_running_tasks_meant_to_run_are_routed() {
        assert!(task("running", "running", &[]).is_serving());
        // Swarm keeps a task `starting` until its health check passes.
        assert!(!task("starting", "running", &[]).is_serving());
        // About to be stopped by the update: leave it out before it goes.
        assert!(!task("running", "shutdown", &[]).is_serving());
        let t = task("running", "running", &[(8080, 30001)]);
        assert_eq!(
            upstream_of(&t, 8080),
            Some(Upstream {
                host: "127.0.0.1".into(),
                port: 30001
            })
        );
        assert_eq!(upstream_of(&t, 9090), None);
    }

    #[test]
    fn the_rollback_message_keeps_swarms_words_and_the_task_error() {
        assert_eq!(
            with_cause(
                "update rolled back due to failure",
                "task 1 failed: unhealthy"
            ),
            "update rolled back due to failure; task 1 failed: unhealthy"
        );
        assert_eq!(with_cause("", ""), "no reason given");
    }

    #[test]
    fn the_monitor_window_covers_a_few_health_intervals() {
        let policy = HealthPolicy {
            interval: Duration::from_millis(200),
            retries: 3,
            ..HealthPolicy::default()
        };
        assert_eq!(monitor(&policy), Duration::from_secs(1));
        let slow = HealthPolicy {
            interval: Duration::from_secs(5),
            retries: 3,
            ..HealthPolicy::default()
        };
        assert_eq!(monitor(&slow), Duration::from_secs(25));
    }

    #[test]
    fn not_a_manager_says_what_to_do() {
        let message = not_manager(&SwarmRole::NotInSwarm);
        assert!(message.contains("not part of a swarm"), "{message}");
        assert!(message.contains("docker swarm init"), "{message}");
        assert!(not_manager(&SwarmRole::Worker).contains("worker"));
    }
}
