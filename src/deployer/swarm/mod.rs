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
//! stage's one running thing; reconciliation finds it by name (`manage.rs`). `follow.rs`
//! follows one update to its end.

mod follow;
mod manage;

use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::docker::{
    self, Engine, EngineError, ServiceHealth, ServiceInfo, ServiceSpec, SwarmRole, UpdatePolicy,
    UpdateState,
};
use crate::health::HealthPolicy;
use crate::notify::EventKind;
use crate::store::{DeployStatus, LogLevel, SwarmTarget};
use crate::subdomain::Subdomain;

use super::pipeline::{Failure, Plan, Run};
use super::{DeployOutcome, Inner, naming};
use follow::{Follow, shown};

pub(super) use manage::{
    heal, is_swarm_deploy, resume, resume_interrupted, routed_domains, take_resuming,
};

/// How often the service is inspected while an update runs (as the Docker CLI does).
pub const POLL: Duration = Duration::from_millis(200);

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
            finish_success(&mut run, &plan, &service, started);
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
            failed_outcome(failure, status)
        }
    }
}

/// What a deploy that ended `status` (failed or rolled back) tells the queue.
pub(super) fn failed_outcome(failure: Failure, status: DeployStatus) -> DeployOutcome {
    let (step, error) = (failure.step.to_string(), failure.message);
    if status == DeployStatus::RolledBack {
        DeployOutcome::RolledBack { step, error }
    } else {
        DeployOutcome::Failed { step, error }
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
    // `repo:tag@digest` also for a promotion, whose plan image is `repo@digest` already.
    let image = match &run.deploy.digest {
        Some(digest) => format!(
            "{}@{digest}",
            super::rules::image(&plan.project, &run.deploy.tag)
        ),
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
    follow.run().await.into_result(&name)?;
    run.set_status(DeployStatus::ConfiguringProxy);
    let routed = follow.route_now(true).await;
    match (&route, routed) {
        (None, _) => run.log(
            LogLevel::Info,
            "proxy",
            "no domain, no port or no proxy: nothing to route",
        ),
        (Some(route), Ok(upstreams)) => {
            run.log(
                LogLevel::Info,
                "proxy",
                &format!("{} → {}", route.domain, shown(&upstreams)),
            );
            let kind = run.inner.proxy().kind();
            if let Some(note) = routing_note(kind, &route.domain, &upstreams) {
                run.log(LogLevel::Warn, "proxy", &note);
            }
        }
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

/// What the deploy log must say when the proxy cannot spread the stage's domain over
/// every task: NPM forwards a proxy host to one address, and Traefik reads container
/// labels, which a swarm service's tasks do not get from docker-watcher.
pub(super) fn routing_note(
    kind: crate::store::ProxyKind,
    domain: &Subdomain,
    upstreams: &[crate::proxy::Upstream],
) -> Option<String> {
    use crate::store::ProxyKind;
    match kind {
        ProxyKind::Npm if upstreams.len() > 1 => Some(format!(
            "Nginx Proxy Manager forwards a proxy host to one address: {domain} goes to the first task only ({}), the other {} get no traffic from it; use Caddy to spread the domain over every task",
            upstreams[0].address(),
            upstreams.len() - 1
        )),
        ProxyKind::Traefik => Some(format!(
            "docker-watcher does not route swarm services through Traefik: {domain} is not routed; give the service Traefik's swarm-provider labels yourself, or use Caddy"
        )),
        _ => None,
    }
}

/// The engine, when it is a swarm manager; else what to do, in words.
pub(super) async fn manager(inner: &Inner) -> Result<Arc<dyn Engine>, String> {
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
pub(super) fn monitor(policy: &HealthPolicy) -> Duration {
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

pub(super) fn finish_success(run: &mut Run<'_>, plan: &Plan, service: &str, started: Instant) {
    run.log(
        LogLevel::Info,
        "done",
        &format!(
            "{} is live on service {service} in {:.1} s",
            run.deploy.tag,
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
}

pub(super) fn finish_failed(
    run: &mut Run<'_>,
    failure: &Failure,
    status: DeployStatus,
    started: Instant,
) {
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
pub(super) struct Route {
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

#[cfg(test)]
mod tests {
    use super::follow::{upstream_of, with_cause};
    use super::*;
    use crate::docker::TaskInfo;
    use crate::proxy::Upstream;

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
    fn the_log_says_when_the_proxy_routes_only_one_task_or_none() {
        use crate::store::ProxyKind;
        let domain = Subdomain::parse("shop-prod.example.com").unwrap();
        let two = [
            Upstream {
                host: "127.0.0.1".into(),
                port: 30001,
            },
            Upstream {
                host: "127.0.0.1".into(),
                port: 30002,
            },
        ];
        let npm = routing_note(ProxyKind::Npm, &domain, &two).unwrap();
        assert!(npm.contains("first task only (127.0.0.1:30001)"), "{npm}");
        assert_eq!(routing_note(ProxyKind::Npm, &domain, &two[..1]), None);
        assert!(
            routing_note(ProxyKind::Traefik, &domain, &two)
                .unwrap()
                .contains("not routed")
        );
        assert_eq!(routing_note(ProxyKind::Caddy, &domain, &two), None);
    }

    #[test]
    fn not_a_manager_says_what_to_do() {
        let message = not_manager(&SwarmRole::NotInSwarm);
        assert!(message.contains("not part of a swarm"), "{message}");
        assert!(message.contains("docker swarm init"), "{message}");
        assert!(not_manager(&SwarmRole::Worker).contains("worker"));
    }
}
