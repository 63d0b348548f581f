//! One deploy, top to bottom: plan → pull → create and start → wait healthy → route →
//! keep (retire the old) → record → notify; on any failure, undo what was created.
//!
//! Each step is a call with a name; what a step creates is pushed on `created`, and the
//! rollback walks that list backwards. Nothing here decides policy beyond the order.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::docker::{self, ContainerId, ContainerSpec, Publish, RegistryAuth, RestartPolicy};
use crate::health::{self, HealthPolicy, HealthProbe, HealthcheckWay, Reachability};
use crate::notify::{EventKind, Notification};
use crate::proxy::{HostId, HostSpec, ProxyError, Upstream};
use crate::store::{
    Deploy, DeployStatus, Instance, InstanceStatus, LogLevel, NewInstance, Project, Stage,
};
use crate::subdomain::Subdomain;

use super::rules::{self, Created, Undo};
use super::{DeployOutcome, Inner, naming, retire};

/// Reconciliation reads stored upstreams back the same way.
pub(super) use super::rules::parse_upstream;

/// Lines of a failed container's own log quoted in the deploy log.
const LOG_TAIL: usize = 20;

/// Runs deploy `deploy_id` to its end. Returns `Skipped` when it is no longer pending.
pub(super) async fn deploy(inner: &Arc<Inner>, deploy_id: i64) -> DeployOutcome {
    if super::swarm::take_resuming(inner, deploy_id) {
        return super::swarm::resume(inner, deploy_id).await;
    }
    let deploy = match inner.store.get_deploy(deploy_id) {
        Ok(deploy) if deploy.status == DeployStatus::Pending => deploy,
        Ok(_) => return DeployOutcome::Skipped,
        Err(e) => {
            tracing::warn!(deploy_id, "cannot read deploy: {e}");
            return DeployOutcome::Skipped;
        }
    };
    let started = Instant::now();
    if let Ok(crate::store::StageTarget::Swarm(target)) = inner.store.stage_target(deploy.stage_id)
    {
        return super::swarm::deploy(Run::new(inner, deploy), target, started).await;
    }
    let mut run = Run {
        inner,
        deploy,
        created: Vec::new(),
    };
    match run.steps().await {
        Ok((plan, instance)) => run.succeed(&plan, instance, started).await,
        Err(failure) => run.roll_back(failure, started).await,
    }
}

/// Everything a deploy needs, read once at its start.
pub(super) struct Plan {
    pub project: Project,
    pub stage: Stage,
    /// `host/repo:tag`.
    pub image: String,
    pub auth: Option<RegistryAuth>,
    pub container_port: Option<u16>,
    pub probe_path: Option<String>,
    pub policy: HealthPolicy,
    pub reach: Reachability,
    pub stage_domain: Option<Subdomain>,
    pub instance_domain: Option<Subdomain>,
}

/// A step that failed, and why, in words for the deploy log.
pub(super) struct Failure {
    pub step: &'static str,
    pub message: String,
}

/// Waits before asking again for a tag the registry does not know (yet): about 5 s in all.
const PULL_RETRY_WAITS: [Duration; 6] = [
    Duration::from_millis(100),
    Duration::from_millis(200),
    Duration::from_millis(400),
    Duration::from_millis(800),
    Duration::from_millis(1600),
    Duration::from_millis(2000),
];

pub(super) fn fail(step: &'static str) -> impl FnOnce(String) -> Failure {
    move |message| Failure { step, message }
}

pub(super) struct Run<'a> {
    pub inner: &'a Arc<Inner>,
    pub deploy: Deploy,
    created: Vec<Created>,
}

impl<'a> Run<'a> {
    pub(super) fn new(inner: &'a Arc<Inner>, deploy: Deploy) -> Run<'a> {
        Run {
            inner,
            deploy,
            created: Vec::new(),
        }
    }

    async fn steps(&mut self) -> Result<(Plan, Instance), Failure> {
        let plan = self.plan()?;
        self.set_status(DeployStatus::Pulling);
        self.pull(&plan).await?;
        self.set_status(DeployStatus::Starting);
        let (instance, container) = self.create_and_start(&plan).await?;
        self.set_status(DeployStatus::HealthChecking);
        self.wait_healthy(&plan, &container).await?;
        self.set_status(DeployStatus::ConfiguringProxy);
        self.route(&plan, &instance).await?;
        let instance = self.keep(&plan, instance).await?;
        Ok((plan, instance))
    }

    pub(super) fn plan(&mut self) -> Result<Plan, Failure> {
        let store = &self.inner.store;
        let failed = |e: crate::store::StoreError| Failure {
            step: "plan",
            message: e.to_string(),
        };
        let project = store.get_project(self.deploy.project_id).map_err(failed)?;
        let stage = store.get_stage(self.deploy.stage_id).map_err(failed)?;
        let settings = store.settings().map_err(failed)?;
        crate::container_policy::check_project(&settings, store.data_dir().as_deref(), &project)
            .map_err(fail("plan"))?;
        let auth = match project.registry_id {
            Some(id) => {
                let registry = store.get_registry(id).map_err(failed)?;
                let secret = store.registry_secret(id).map_err(failed)?;
                match (registry.username, secret) {
                    (Some(username), Some(password)) => Some(RegistryAuth { username, password }),
                    _ => None,
                }
            }
            None => None,
        };
        let container_port = rules::container_port(&project, &stage);
        let reach = rules::reachability(&settings).map_err(fail("plan"))?;
        let policy = rules::health_policy(&project, &settings);
        let (stage_domain, instance_domain) = if settings.base_domain.is_empty() {
            (None, None)
        } else {
            let stage_domain = Subdomain::for_stage(
                &settings.stage_subdomain_pattern,
                &settings.base_domain,
                &project.name,
                &stage.name,
            )
            .map_err(|e| e.to_string())
            .map_err(fail("plan"))?;
            let instance_domain = Subdomain::for_instance(
                &settings.instance_subdomain_pattern,
                &settings.base_domain,
                &project.name,
                &stage.name,
                &self.deploy.tag,
            )
            .map_err(|e| e.to_string())
            .map_err(fail("plan"))?;
            (Some(stage_domain), Some(instance_domain))
        };
        let plan = Plan {
            image: rules::deploy_image(&project, &self.deploy),
            probe_path: rules::probe_path(&project, &stage),
            project,
            stage,
            auth,
            container_port,
            policy,
            reach,
            stage_domain,
            instance_domain,
        };
        self.log(
            LogLevel::Info,
            "plan",
            &format!(
                "deploying {} to {}/{}",
                plan.image, plan.project.name, plan.stage.name
            ),
        );
        Ok(plan)
    }

    pub(super) async fn pull(&mut self, plan: &Plan) -> Result<(), Failure> {
        self.log(LogLevel::Info, "pull", &format!("pulling {}", plan.image));
        // Progress arrives per downloaded chunk: the deploy log keeps one line per finished
        // layer and the daemon's final status; the rest goes to the debug log.
        let (inner, deploy_id) = (self.inner, self.deploy.id);
        let progress = move |p: docker::PullProgress| {
            let milestone = p.status == "Pull complete"
                || p.status == "Already exists"
                || p.status.starts_with("Status:");
            if milestone {
                inner.log(deploy_id, LogLevel::Debug, "pull", &p.to_string());
            } else {
                tracing::debug!(deploy_id, "pull: {p}");
            }
        };
        // A registry may announce a push before the tag resolves (Docker Distribution
        // notifies from inside the manifest write, and links the tag after it), so a tag
        // it does not know yet is asked for again for a few seconds before giving up.
        let mut waits = PULL_RETRY_WAITS.iter();
        loop {
            match self
                .inner
                .engine
                .pull(&plan.image, plan.auth.as_ref(), &progress)
                .await
            {
                Ok(()) => break,
                Err(e @ docker::EngineError::ImageNotFound { .. }) => {
                    let Some(wait) = waits.next() else {
                        return Err(fail("pull")(e.to_string()));
                    };
                    self.log(
                        LogLevel::Info,
                        "pull",
                        &format!(
                            "the registry does not know {} yet ({e}); trying again in {} ms",
                            plan.image,
                            wait.as_millis()
                        ),
                    );
                    tokio::time::sleep(*wait).await;
                }
                Err(e) => return Err(fail("pull")(e.to_string())),
            }
        }
        if let Ok(image) = self.inner.engine.inspect_image(&plan.image).await
            && let Some(digest) = image
                .repo_digests
                .iter()
                .find(|d| d.starts_with(&format!("{}@", plan.project.image)))
                .or(image.repo_digests.first())
                .and_then(|d| d.split_once('@').map(|(_, digest)| digest.to_string()))
        {
            if let Err(e) = self.inner.store.set_deploy_digest(self.deploy.id, &digest) {
                tracing::warn!(deploy_id = self.deploy.id, "cannot record the digest: {e}");
            }
            self.deploy.digest = Some(digest.clone());
            self.log(
                LogLevel::Info,
                "pull",
                &format!("pulled {} ({digest})", plan.image),
            );
        }
        Ok(())
    }

    async fn create_and_start(&mut self, plan: &Plan) -> Result<(Instance, ContainerId), Failure> {
        let store = &self.inner.store;
        let name = naming::container_name(&plan.project.name, &plan.stage.name, &self.deploy.tag);
        let instance = store
            .create_instance(&NewInstance {
                stage_id: plan.stage.id,
                deploy_id: Some(self.deploy.id),
                tag: self.deploy.tag.clone(),
                digest: self.deploy.digest.clone(),
                container_name: name.clone(),
                status: InstanceStatus::Starting,
            })
            .map_err(|e| e.to_string())
            .map_err(fail("create"))?;
        self.created.push(Created::Instance(instance.id));
        if let Err(e) = store.set_deploy_instance(self.deploy.id, instance.id) {
            tracing::warn!(deploy_id = self.deploy.id, "cannot link the instance: {e}");
        }

        let mut spec = self.container_spec(plan, &instance)?;
        spec.health_start = self.health_start(plan).await;
        let container = self
            .inner
            .engine
            .create(&spec)
            .await
            .map_err(|e| e.to_string())
            .map_err(fail("create"))?;
        self.created.push(Created::Container(container.clone()));
        self.log(
            LogLevel::Info,
            "create",
            &format!("created container {name} ({})", container.short()),
        );
        self.inner
            .engine
            .start(&container)
            .await
            .map_err(|e| e.to_string())
            .map_err(fail("start"))?;
        let info = self
            .inner
            .engine
            .inspect_container(&container)
            .await
            .map_err(|e| e.to_string())
            .map_err(fail("start"))?;
        let upstream = upstream(&plan.reach, &info, plan.container_port);
        store
            .set_instance_container(
                instance.id,
                container.as_str(),
                upstream.as_ref().map(|u| u.to_string()).as_deref(),
            )
            .map_err(|e| e.to_string())
            .map_err(fail("start"))?;
        self.log(
            LogLevel::Info,
            "start",
            &match &upstream {
                Some(u) => format!("started; reachable at {u}"),
                None => "started (no port: reached by its own health status)".into(),
            },
        );
        let instance = store
            .get_instance(instance.id)
            .map_err(|e| e.to_string())
            .map_err(fail("start"))?;
        Ok((instance, container))
    }

    /// Which way the image's HEALTHCHECK is waited for (from the negotiated API version),
    /// with the deploy log's line about it.
    async fn healthcheck_way(&self) -> (HealthcheckWay, String) {
        let api = self.inner.engine.api_version().await.unwrap_or_default();
        let way = health::healthcheck_way(&api);
        (way, health::healthcheck_way_note(way, &api))
    }

    /// The health start to create the container with: Docker runs the image's HEALTHCHECK
    /// every [`health::START_INTERVAL`] during the stage's start period, where the engine
    /// takes it and the image's check is what the deploy waits for (no health path).
    async fn health_start(&self, plan: &Plan) -> Option<docker::HealthStart> {
        if plan.probe_path.is_some()
            || self.healthcheck_way().await.0 != HealthcheckWay::StartInterval
        {
            return None;
        }
        let image = self.inner.engine.inspect_image(&plan.image).await.ok()?;
        image.healthcheck.is_some().then_some(docker::HealthStart {
            period: plan.policy.start_period,
            interval: health::START_INTERVAL,
        })
    }

    fn container_spec(&self, plan: &Plan, instance: &Instance) -> Result<ContainerSpec, Failure> {
        let store = &self.inner.store;
        let project_env = store
            .project_env(plan.project.id)
            .map_err(|e| e.to_string())
            .map_err(fail("create"))?;
        let stage_env = store
            .stage_env(plan.stage.id)
            .map_err(|e| e.to_string())
            .map_err(fail("create"))?;
        let env = rules::environment(
            project_env,
            stage_env,
            [
                ("DW_PROJECT", plan.project.name.as_str()),
                ("DW_STAGE", plan.stage.name.as_str()),
                ("DW_TAG", self.deploy.tag.as_str()),
            ],
        );
        let mut labels = BTreeMap::from([
            (docker::labels::MANAGED.to_string(), "true".to_string()),
            (
                docker::labels::PROJECT.to_string(),
                plan.project.name.clone(),
            ),
            (docker::labels::STAGE.to_string(), plan.stage.name.clone()),
            (
                docker::labels::INSTANCE.to_string(),
                instance.id.to_string(),
            ),
            (
                docker::labels::DEPLOY.to_string(),
                self.deploy.id.to_string(),
            ),
            (docker::labels::TAG.to_string(), self.deploy.tag.clone()),
            (
                docker::labels::INSTALLATION.to_string(),
                self.inner.installation_id.clone(),
            ),
        ]);
        if let (Some(port), Some(stage_domain), Some(instance_domain)) = (
            plan.container_port,
            &plan.stage_domain,
            &plan.instance_domain,
        ) {
            let domains = [instance_domain.to_string(), stage_domain.to_string()];
            labels.extend(self.inner.proxy().container_labels(&domains, port));
        }
        let network = match &plan.reach {
            Reachability::Network { network } => Some(network.clone()),
            Reachability::Loopback => plan.project.network.clone(),
        };
        Ok(ContainerSpec {
            name: instance.container_name.clone(),
            image: plan.image.clone(),
            labels,
            env,
            container_port: plan.container_port,
            publish: match (&plan.reach, plan.container_port) {
                (Reachability::Loopback, Some(_)) => Publish::Loopback,
                _ => Publish::None,
            },
            network,
            restart_policy: RestartPolicy::UnlessStopped,
            volumes: plan.project.volumes.clone(),
            memory_bytes: plan.project.memory_bytes,
            nano_cpus: plan.project.nano_cpus,
            init: false,
            // Needs the engine's API version and the image: `create_and_start` sets it.
            health_start: None,
        })
    }

    async fn wait_healthy(&mut self, plan: &Plan, container: &ContainerId) -> Result<(), Failure> {
        let info = self
            .inner
            .engine
            .inspect_container(container)
            .await
            .map_err(|e| e.to_string())
            .map_err(fail("health_check"))?;
        let mut probe = rules::probe(
            plan.probe_path.as_deref(),
            upstream(&plan.reach, &info, plan.container_port).as_ref(),
            info.state.health.is_some(),
        );
        if probe == HealthProbe::DockerHealthcheck {
            let (way, note) = self.healthcheck_way().await;
            self.log(LogLevel::Info, "health_check", &note);
            if way == HealthcheckWay::Exec {
                probe = health::by_exec(probe, &info);
            }
        }
        self.log(
            LogLevel::Info,
            "health_check",
            &format!("waiting until healthy: {probe}"),
        );
        let deploy_id = self.deploy.id;
        let healthy = self
            .inner
            .engine
            .wait_healthy(container, &probe, &plan.policy, &|attempt| {
                tracing::debug!(deploy_id, "health attempt: {attempt}")
            })
            .await;
        match healthy {
            Ok(ok) => {
                self.log(
                    LogLevel::Info,
                    "health_check",
                    &format!(
                        "healthy after {:.1} s ({} probes)",
                        ok.elapsed.as_secs_f64(),
                        ok.attempts
                    ),
                );
                Ok(())
            }
            Err(e) => {
                let logs = self
                    .inner
                    .engine
                    .logs(container, LOG_TAIL)
                    .await
                    .unwrap_or_default();
                let mut message = e.to_string();
                if !logs.trim().is_empty() && !message.contains(logs.trim()) {
                    message.push_str(&format!("; container log:\n{}", logs.trim_end()));
                }
                Err(Failure {
                    step: "health_check",
                    message,
                })
            }
        }
    }

    /// Routes the tag's domain to the new instance, then moves the stage's domain to it.
    async fn route(&mut self, plan: &Plan, instance: &Instance) -> Result<(), Failure> {
        let (Some(stage_domain), Some(instance_domain), Some(upstream)) = (
            &plan.stage_domain,
            &plan.instance_domain,
            instance.upstream.as_deref().and_then(parse_upstream),
        ) else {
            self.log(
                LogLevel::Info,
                "proxy",
                "no domain or no port: nothing to route",
            );
            return Ok(());
        };
        let proxy = self.inner.proxy();
        if proxy.kind() == crate::store::ProxyKind::None {
            // The domains are still recorded: they show where the instance will be served
            // once a proxy is configured (reconciliation then creates the hosts).
            self.log(
                LogLevel::Info,
                "proxy",
                &format!(
                    "no proxy configured: {instance_domain} and {stage_domain} are not routed"
                ),
            );
            return self
                .inner
                .store
                .set_instance_routing(
                    instance.id,
                    &[instance_domain.to_string(), stage_domain.to_string()],
                    &[],
                )
                .map_err(|e| e.to_string())
                .map_err(fail("proxy"));
        }
        let tag_host = self
            .route_domain(proxy.as_ref(), instance, instance_domain, &upstream)
            .await?;
        self.route_domain(proxy.as_ref(), instance, stage_domain, &upstream)
            .await?;
        self.inner
            .store
            .set_instance_routing(
                instance.id,
                &[instance_domain.to_string(), stage_domain.to_string()],
                &[tag_host.to_string()],
            )
            .map_err(|e| e.to_string())
            .map_err(fail("proxy"))?;
        Ok(())
    }

    /// Points `domain` at `upstream`, first recording how to undo it: where the domain
    /// pointed before (the newest other running instance that routes it), and the host id
    /// once known (also when nginx refused a host it then holds).
    async fn route_domain(
        &mut self,
        proxy: &dyn crate::proxy::Proxy,
        instance: &Instance,
        domain: &Subdomain,
        upstream: &Upstream,
    ) -> Result<HostId, Failure> {
        let previous = self.upstream_before(domain, instance);
        self.created.push(Created::Route {
            domain: domain.clone(),
            made: None,
            previous: previous.clone(),
        });
        let result = proxy
            .ensure_host(&HostSpec {
                domain: domain.clone(),
                upstream: upstream.clone(),
            })
            .await;
        let id = match &result {
            Ok(id) => Some(id.clone()),
            // nginx refused the config of a host that now exists: undo it too.
            Err(ProxyError::NginxRejected { id, .. }) => Some(id.clone()),
            Err(_) => None,
        };
        if let Some(Created::Route { made, .. }) = self.created.last_mut() {
            *made = id;
        }
        let id = result.map_err(|e| fail("proxy")(e.to_string()))?;
        self.log(
            LogLevel::Info,
            "proxy",
            &match previous {
                Some(old) => format!("{domain} → {upstream} (was {old})"),
                None => format!("{domain} → {upstream}"),
            },
        );
        Ok(id)
    }

    /// Where `domain` pointed before this deploy (see [`rules::upstream_before`]).
    fn upstream_before(&self, domain: &Subdomain, instance: &Instance) -> Option<Upstream> {
        let instances = self.inner.store.list_instances(instance.stage_id).ok()?;
        rules::upstream_before(&instances, domain.as_str(), instance.id)
    }

    /// Marks the new instance running and retires what the rules say must go.
    async fn keep(&mut self, plan: &Plan, instance: Instance) -> Result<Instance, Failure> {
        let store = &self.inner.store;
        store
            .set_instance_status(instance.id, InstanceStatus::Running)
            .map_err(|e| e.to_string())
            .map_err(fail("record"))?;
        retire::retire_beyond_limit(self.inner, &plan.stage, &instance, self.deploy.id).await;
        store
            .get_instance(instance.id)
            .map_err(|e| e.to_string())
            .map_err(fail("record"))
    }

    async fn succeed(
        &mut self,
        plan: &Plan,
        instance: Instance,
        started: Instant,
    ) -> DeployOutcome {
        // The last line goes first: a log stream closes when it sees the final status.
        self.log(
            LogLevel::Info,
            "done",
            &format!(
                "{} is live in {:.1} s",
                self.deploy.tag,
                started.elapsed().as_secs_f64()
            ),
        );
        self.set_status(DeployStatus::Success);
        crate::metrics::deploy_finished(
            "success",
            started.elapsed(),
            self.deploy
                .detected_at
                .and_then(|at| (chrono::Utc::now() - at).to_std().ok()),
        );
        self.notify(
            &plan.project,
            &plan.stage,
            EventKind::Success,
            started,
            None,
            &instance.subdomains,
        );
        DeployOutcome::Success {
            instance_id: instance.id,
        }
    }

    async fn roll_back(&mut self, failure: Failure, started: Instant) -> DeployOutcome {
        self.log(LogLevel::Error, failure.step, &failure.message);
        let rolled_back = !self.created.is_empty();
        // The new container's last words often say why it failed; read them before the
        // rollback removes it.
        let log = match self.created.iter().find_map(|c| match c {
            Created::Container(id) => Some(id.clone()),
            _ => None,
        }) {
            Some(id) => self
                .inner
                .engine
                .logs(&id, crate::notify::message::LOG_TAIL_LINES)
                .await
                .ok(),
            None => None,
        };
        while let Some(created) = self.created.pop() {
            self.undo(created.undo()).await;
        }
        let status = if rolled_back {
            DeployStatus::RolledBack
        } else {
            DeployStatus::Failed
        };
        if let Err(e) = self.inner.store.finish_deploy_failed(
            self.deploy.id,
            status,
            failure.step,
            &failure.message,
        ) {
            tracing::warn!(deploy_id = self.deploy.id, "cannot record failure: {e}");
        }
        self.publish(status);
        crate::metrics::deploy_finished(status.as_str(), started.elapsed(), None);
        if let (Ok(project), Ok(stage)) = (
            self.inner.store.get_project(self.deploy.project_id),
            self.inner.store.get_stage(self.deploy.stage_id),
        ) {
            let outcome = if rolled_back {
                EventKind::Rollback
            } else {
                EventKind::Failure
            };
            self.notify(
                &project,
                &stage,
                outcome,
                started,
                Some((&failure, log)),
                &[],
            );
        }
        let (step, error) = (failure.step.to_string(), failure.message);
        if rolled_back {
            DeployOutcome::RolledBack { step, error }
        } else {
            DeployOutcome::Failed { step, error }
        }
    }

    /// Carries out one step of the rollback; a failure is logged and the rest goes on.
    async fn undo(&mut self, undo: Undo) {
        let done = match undo {
            Undo::PointBack { domain, upstream } => {
                let back = format!("{domain} back to {upstream}");
                self.inner
                    .proxy()
                    .ensure_host(&HostSpec { domain, upstream })
                    .await
                    .map(|_| back)
                    .map_err(|e| format!("cannot point the domain back: {e}"))
            }
            Undo::DeleteHost { domain, id } => self
                .inner
                .proxy()
                .delete_host(&id)
                .await
                .map(|_| format!("removed {domain}"))
                .map_err(|e| format!("cannot delete proxy host {id}: {e}")),
            Undo::Nothing => return,
            Undo::RemoveContainer(id) => self
                .inner
                .engine
                .remove(&id, true)
                .await
                .map(|_| format!("removed container {}", id.short()))
                .map_err(|e| format!("cannot remove container {}: {e}", id.short())),
            Undo::FailInstance(id) => {
                // A row left `starting` would look like a deploy under way forever: when
                // it cannot be marked failed, it goes (its container is already gone).
                let store = &self.inner.store;
                match store.set_instance_status(id, InstanceStatus::Failed) {
                    Ok(()) => return,
                    Err(e) => store
                        .delete_instance(id)
                        .map(|_| String::new())
                        .map_err(|e2| {
                            format!("cannot mark instance {id} failed ({e}) nor delete it ({e2})")
                        }),
                }
            }
        };
        match done {
            Ok(what) if what.is_empty() => {}
            Ok(what) => self.log(LogLevel::Info, "rollback", &what),
            Err(problem) => self.log(LogLevel::Warn, "rollback", &problem),
        }
    }

    pub(super) fn notify(
        &self,
        project: &Project,
        stage: &Stage,
        event: EventKind,
        started: Instant,
        failure: Option<(&Failure, Option<String>)>,
        urls: &[String],
    ) {
        let mut notification =
            Notification::blank(event, &project.name, &stage.name, &self.deploy.tag);
        notification.digest = self.deploy.digest.clone();
        notification.status = match event {
            EventKind::Success => "success",
            EventKind::Rollback => "rolled_back",
            _ => "failed",
        }
        .into();
        notification.deploy_id = Some(self.deploy.id);
        notification.duration_ms = u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX);
        notification.urls = urls.iter().map(|d| format!("http://{d}")).collect();
        if let Some((failure, log)) = failure {
            notification.error = Some(failure.message.clone());
            notification.failed_step = Some(failure.step.to_string());
            notification.set_log_tail(log.as_deref().unwrap_or_default());
        }
        self.inner.notifier.notify(notification);
    }

    pub(super) fn set_status(&mut self, status: DeployStatus) {
        if let Err(e) = self.inner.store.set_deploy_status(self.deploy.id, status) {
            tracing::warn!(deploy_id = self.deploy.id, "cannot record status: {e}");
        }
        self.deploy.status = status;
        self.publish(status);
    }

    pub(super) fn publish(&self, status: DeployStatus) {
        self.inner.publish_status(&self.deploy, status);
    }

    pub(super) fn log(&self, level: LogLevel, step: &str, message: &str) {
        self.inner.log(self.deploy.id, level, step, message);
    }
}

/// Where the daemon (and the proxy) reach a container: its 127.0.0.1 port, or its name
/// on the shared network. `None` when it has no port to reach.
pub(super) fn upstream(
    reach: &Reachability,
    info: &docker::ContainerInfo,
    port: Option<u16>,
) -> Option<Upstream> {
    health::upstream(reach, info, port?).ok()
}
