//! The deployer: brings a tag to a stage — pull, create, start, wait healthy, route,
//! retire, record, notify — and rolls back everything a failed deploy created.
//!
//! Webhooks and the poller ask for deploys through [`DeployTrigger`]; the queue runs one
//! deploy at a time per stage and stages in parallel; [`Deployer::deploy`] is the step
//! function that runs one deploy to its end and returns what happened.
//!
//! Invariants: the deployer sees the outside world only through [`Containers`] (Docker),
//! `proxy::Proxy` and `notify::Notifier`; traffic moves only to a container that passed
//! its health check; a deploy never stops instances it did not create except by the
//! retirement rule (beyond `max_instances`, oldest first, or the same tag redeployed).

mod admitter;
mod containers;
mod events;
#[cfg(test)]
pub(crate) mod fakes;
mod gate;
mod images;
mod naming;
mod ops;
mod pipeline;
mod queue;
mod reconcile;
mod retire;
mod rules;
mod swarm;
#[cfg(test)]
mod tests;

use std::sync::Arc;

use crate::docker::Engine;
use crate::notify::Notifier;
use crate::proxy::Proxy;
use crate::store::{
    Admitted, Deploy, DeployLogEntry, DeployStatus, LogLevel, Store, StoreError, Superseded,
};

pub use crate::trigger::{DeployRequest, DeployTrigger};
pub use containers::{Containers, DockerContainers};
pub use events::{DeployEvent, DeployEvents};
pub use naming::container_name;
pub use ops::OpsError;
pub use reconcile::ReconcileReport;

/// How one deploy ended.
#[derive(Clone, Debug, PartialEq)]
pub enum DeployOutcome {
    Success {
        instance_id: i64,
    },
    /// Nothing had been created (e.g. the pull failed).
    Failed {
        step: String,
        error: String,
    },
    /// Something had been created and was removed again.
    RolledBack {
        step: String,
        error: String,
    },
    /// A swarm stage's service was created or updated and Swarm completed the update.
    ServiceUpdated {
        service: String,
    },
    /// The deploy was not pending any more (superseded, or already run).
    Skipped,
}

/// The deployer. Cheap to clone.
#[derive(Clone)]
pub struct Deployer {
    inner: Arc<Inner>,
    queue: queue::DeployQueue,
    admitter: Arc<admitter::Admitter>,
}

struct Inner {
    store: Store,
    /// Stamped on every container, so reconciliation only ever touches this installation's.
    installation_id: String,
    /// The container runtime, in the deployer's words (Docker, or a fake in unit tests).
    engine: Arc<dyn Containers>,
    proxy: std::sync::RwLock<Arc<dyn Proxy>>,
    notifier: Arc<dyn Notifier>,
    events: DeployEvents,
    /// Containers of retired instances, stopping in the background.
    retiring: tokio_util::task::TaskTracker,
    /// Ids of the instances those tasks are stopping, so a reconcile meanwhile does not
    /// start a second stop of the same one.
    stopping: std::sync::Mutex<std::collections::HashSet<i64>>,
    /// How long a retired instance stays up after it left the proxy (`retire::DRAIN` unless a test set it).
    drain: std::sync::Mutex<std::time::Duration>,
    /// Swarm deploys a restart interrupted, queued on their stage's lane to be followed
    /// again (`swarm::resume_interrupted`): the queue runs them instead of skipping them.
    resuming: std::sync::Mutex<std::collections::HashSet<i64>>,
}

/// How often an idle deployer checks that Docker and the proxy still match the store.
pub const HEAL_INTERVAL: std::time::Duration = std::time::Duration::from_secs(15);

impl Deployer {
    pub fn new(
        store: Store,
        engine: Arc<dyn Engine>,
        proxy: Arc<dyn Proxy>,
        notifier: Arc<dyn Notifier>,
        events: DeployEvents,
    ) -> Result<Deployer, StoreError> {
        Deployer::with_containers(
            store,
            Arc::new(DockerContainers(engine)),
            proxy,
            notifier,
            events,
        )
    }

    /// A deployer on any container runtime (the unit tests' in-memory fake, say).
    pub fn with_containers(
        store: Store,
        engine: Arc<dyn Containers>,
        proxy: Arc<dyn Proxy>,
        notifier: Arc<dyn Notifier>,
        events: DeployEvents,
    ) -> Result<Deployer, StoreError> {
        let inner = Arc::new(Inner {
            installation_id: store.installation_id()?,
            store,
            engine,
            proxy: std::sync::RwLock::new(proxy),
            notifier,
            events,
            retiring: tokio_util::task::TaskTracker::new(),
            stopping: Default::default(),
            drain: std::sync::Mutex::new(retire::DRAIN),
            resuming: Default::default(),
        });
        let runner = inner.clone();
        let queue = queue::DeployQueue::new(Arc::new(move |deploy_id| {
            let inner = runner.clone();
            Box::pin(async move {
                let started = gate_audit_start(&inner, deploy_id);
                let outcome = pipeline::deploy(&inner, deploy_id).await;
                if let Some(target) = started {
                    gate_audit_end(&inner, target, &outcome);
                }
            })
        }));
        let admitter = Arc::new(admitter::Admitter::start(inner.clone(), queue.clone()));
        Ok(Deployer {
            inner,
            queue,
            admitter,
        })
    }

    /// Runs one deploy now, bypassing the queue (tests and the benchmark call this; the
    /// daemon goes through [`DeployTrigger::request_deploy`]).
    pub async fn deploy(&self, deploy_id: i64) -> DeployOutcome {
        pipeline::deploy(&self.inner, deploy_id).await
    }

    pub fn events(&self) -> &DeployEvents {
        &self.inner.events
    }

    /// Replaces the proxy (after the settings changed); deploys under way keep the old one.
    pub fn set_proxy(&self, proxy: Arc<dyn Proxy>) {
        *self.inner.proxy.write().unwrap_or_else(|p| p.into_inner()) = proxy;
    }

    /// The proxy deploys use now (the settings check reports on this very client).
    pub fn proxy(&self) -> Arc<dyn Proxy> {
        self.inner.proxy()
    }

    /// Sets how long a retired instance keeps running after it left the proxy, so the
    /// requests it is serving finish (default 5 s). Tests that do not test
    /// draining make it short.
    pub fn set_drain(&self, drain: std::time::Duration) {
        *self.inner.drain.lock().unwrap_or_else(|p| p.into_inner()) = drain;
    }

    /// Whether no deploy is running or waiting.
    pub fn is_idle(&self) -> bool {
        self.queue.is_idle()
    }

    /// Stops taking deploys and waits for those under way to finish, and for retired
    /// containers to stop (at most their grace period).
    pub async fn drain(&self) {
        self.queue.drain().await;
        self.inner.retiring.close();
        self.inner.retiring.wait().await;
    }

    /// Waits until every retired container stopping in the background is gone (or failed
    /// to go, which is logged). Deploys never wait for this; tests and shutdown do.
    pub async fn settle(&self) {
        let retiring = &self.inner.retiring;
        retiring.close();
        retiring.wait().await;
        retiring.reopen();
    }

    /// Every [`HEAL_INTERVAL`] while no deploy is running or waiting, makes the running
    /// system match the store again (see `reconcile::heal`): what a Docker Engine restart
    /// or a rollback that met a dead Docker left behind is put right without a restart of
    /// the daemon. Ends at `shutdown`.
    pub async fn heal_loop(self, shutdown: tokio_util::sync::CancellationToken) {
        loop {
            tokio::select! {
                () = shutdown.cancelled() => return,
                () = tokio::time::sleep(HEAL_INTERVAL) => {}
            }
            if !self.is_idle() {
                continue;
            }
            let report = reconcile::heal(&self.inner).await;
            let changed = report.removed_containers.len()
                + report.moved_upstreams.len()
                + report.removed_proxy_hosts.len()
                + report.restored_proxy_hosts.len();
            if changed > 0 {
                tracing::info!(
                    removed_containers = ?report.removed_containers,
                    moved_upstreams = ?report.moved_upstreams,
                    removed_proxy_hosts = ?report.removed_proxy_hosts,
                    restored_proxy_hosts = ?report.restored_proxy_hosts,
                    "healed: the store, Docker and the proxy agree again"
                );
            }
        }
    }

    /// Compares the store with Docker (and the proxy) and cleans up what a crash left;
    /// instances a crash left `stopping` are finished in the background.
    pub async fn reconcile(&self) -> ReconcileReport {
        let mut report = reconcile::reconcile(&self.inner).await;
        // Followed in the stage's lane, so a deploy asked for meanwhile waits its turn.
        for (stage_id, deploy_id) in swarm::resume_interrupted(&self.inner) {
            self.queue.enqueue(stage_id, deploy_id, false);
            report.interrupted_deploys.push(deploy_id);
        }
        if let Err(e) = retire::resume_stopping(&self.inner) {
            report.problems.push(e);
        }
        report
    }
}

#[async_trait::async_trait]
impl DeployTrigger for Deployer {
    async fn request_deploy(&self, request: DeployRequest) -> Result<i64, StoreError> {
        self.admit(request).await
    }
}

/// The audit log's "deploy started" entry, when the deploy is about to run (not when the
/// queue skips it); returns what the end entry needs.
fn gate_audit_start(inner: &Inner, deploy_id: i64) -> Option<crate::audit::Target> {
    let deploy = inner.store.get_deploy(deploy_id).ok()?;
    if deploy.status != DeployStatus::Pending {
        return None;
    }
    let stage = inner.store.get_stage(deploy.stage_id).ok()?;
    let target = gate::deploy_target(&deploy, &stage);
    crate::audit::record(
        &inner.store,
        &crate::audit::Actor::system(),
        "deploy.start",
        target.clone(),
        format!("deploying {}", deploy.tag),
    );
    Some(target)
}

fn gate_audit_end(inner: &Inner, target: crate::audit::Target, outcome: &DeployOutcome) {
    let detail = match outcome {
        DeployOutcome::Success { instance_id } => format!("success (instance {instance_id})"),
        DeployOutcome::ServiceUpdated { service } => format!("success (service {service})"),
        DeployOutcome::Failed { step, error } => format!("failed at {step}: {error}"),
        DeployOutcome::RolledBack { step, error } => format!("rolled back at {step}: {error}"),
        DeployOutcome::Skipped => return,
    };
    crate::audit::record(
        &inner.store,
        &crate::audit::Actor::system(),
        "deploy.finish",
        target,
        detail,
    );
}

impl Inner {
    fn proxy(&self) -> Arc<dyn Proxy> {
        self.proxy.read().unwrap_or_else(|p| p.into_inner()).clone()
    }

    /// How long a retired instance keeps running after it left the proxy. Only proxies we
    /// take routes off (Caddy, NPM) need it: with `none` we route nothing, and Traefik
    /// routes by the container's labels until the container stops, so waiting would only
    /// delay the stop.
    fn drain(&self) -> std::time::Duration {
        match self.proxy().kind() {
            crate::store::ProxyKind::Caddy | crate::store::ProxyKind::Npm => {
                *self.drain.lock().unwrap_or_else(|p| p.into_inner())
            }
            crate::store::ProxyKind::None | crate::store::ProxyKind::Traefik => {
                std::time::Duration::ZERO
            }
        }
    }

    /// Writes a log line and publishes it; a store failure is logged, never fatal.
    fn log(&self, deploy_id: i64, level: LogLevel, step: &str, message: &str) {
        match self
            .store
            .append_deploy_log(deploy_id, level, step, message)
        {
            Ok(entry) => self.logged(entry),
            Err(e) => {
                tracing::warn!(deploy_id, "cannot write deploy log: {e}");
                trace_log(deploy_id, level, step, message);
            }
        }
    }

    /// Publishes a log line already written (by a store transaction).
    fn logged(&self, entry: DeployLogEntry) {
        trace_log(entry.deploy_id, entry.level, &entry.step, &entry.message);
        self.events.publish(DeployEvent::Log(entry));
    }

    fn publish_status(&self, deploy: &Deploy, status: DeployStatus) {
        self.events.publish(DeployEvent::Status {
            deploy_id: deploy.id,
            project_id: deploy.project_id,
            stage_id: deploy.stage_id,
            tag: deploy.tag.clone(),
            status,
        });
    }

    fn supersede(&self, deploy_id: i64, by: i64) {
        match self.store.supersede_deploy(deploy_id, by) {
            Ok(superseded) => self.superseded(superseded),
            Err(e) => tracing::warn!(deploy_id, "cannot mark deploy superseded: {e}"),
        }
    }

    /// Publishes a supersession already written (its log line, then its status).
    /// Publishes what an admission wrote; the new deploy's status when it is queued.
    fn recorded(&self, admitted: Admitted) -> Deploy {
        for entry in admitted.log {
            self.logged(entry);
        }
        for superseded in admitted.superseded {
            self.superseded(superseded);
        }
        let deploy = admitted.deploy;
        if deploy.status == DeployStatus::Pending {
            self.publish_status(&deploy, DeployStatus::Pending);
        }
        deploy
    }

    fn superseded(&self, superseded: Superseded) {
        let deploy = superseded.deploy;
        self.logged(superseded.log);
        self.publish_status(&deploy, DeployStatus::Superseded);
    }
}

/// A deploy's log line in the daemon's own log too.
fn trace_log(deploy_id: i64, level: LogLevel, step: &str, message: &str) {
    match level {
        LogLevel::Error => tracing::warn!(deploy_id, step, "{message}"),
        LogLevel::Debug => tracing::debug!(deploy_id, step, "{message}"),
        _ => tracing::info!(deploy_id, step, "{message}"),
    }
}
