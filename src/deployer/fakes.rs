//! In-memory fakes for the deployer's unit tests: [`FakeContainers`] (a container runtime
//! whose steps can be made to fail), [`FakeProxy`] (hosts by domain, writes that can be
//! made to fail) and a [`Harness`] with a real SQLite store in a temp folder. Fast enough
//! to cover every branch of the pipeline and its rollback; the real-Docker tests in
//! `tests/it/` stay the proof that the real parts behave.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use crate::crypto::{MasterKey, Sealer};
use crate::docker::{
    ContainerId, ContainerInfo, ContainerSpec, ContainerState, ContainerStatus, ContainerSummary,
    EngineError, ImageInfo, PullProgress, RegistryAuth,
};
use crate::health::{Attempt, HealthError, HealthPolicy, HealthProbe, Healthy};
use crate::notify::{Notification, Notifier};
use crate::proxy::{HostId, HostSpec, OwnedHost, Proxy, ProxyError, ProxyKind, Upstream};
use crate::store::{
    Deploy, NewDeploy, NewProject, NewStage, Project, Settings, SettingsUpdate, Stage, Store,
    Trigger,
};

use super::{Containers, DeployEvents, DeployOutcome, Deployer};

/// A step of the fake runtime that can be made to fail.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Step {
    Pull,
    Create,
    Start,
    Remove,
}

#[derive(Default)]
pub struct FakeContainers {
    state: Mutex<RuntimeState>,
}

#[derive(Default)]
struct RuntimeState {
    images: BTreeSet<String>,
    containers: BTreeMap<String, FakeContainer>,
    next: u32,
    failing: BTreeSet<Step>,
    /// Images whose containers never become healthy.
    unhealthy: BTreeSet<String>,
    /// Images the registry does not know for this many more pulls.
    unknown_for: BTreeMap<String, u32>,
}

#[derive(Clone)]
struct FakeContainer {
    spec: ContainerSpec,
    running: bool,
    port: u16,
}

impl FakeContainers {
    pub fn fail(&self, step: Step) {
        self.lock().failing.insert(step);
    }

    pub fn heal(&self, step: Step) {
        self.lock().failing.remove(&step);
    }

    /// The next `pulls` pulls of `image` fail as a registry answers a tag it does not
    /// know (yet).
    pub fn unknown_for(&self, image: &str, pulls: u32) {
        self.lock().unknown_for.insert(image.to_string(), pulls);
    }

    pub fn make_unhealthy(&self, image: &str) {
        self.lock().unhealthy.insert(image.to_string());
    }

    /// Names of the containers that exist.
    pub fn names(&self) -> Vec<String> {
        let state = self.lock();
        state
            .containers
            .values()
            .map(|c| c.spec.name.clone())
            .collect()
    }

    pub fn images(&self) -> Vec<String> {
        self.lock().images.iter().cloned().collect()
    }

    /// Puts an image in the local store as if pulled earlier.
    pub fn add_image(&self, image: &str) {
        self.lock().images.insert(image.to_string());
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, RuntimeState> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn failing(&self, step: Step) -> Result<(), EngineError> {
        if self.lock().failing.contains(&step) {
            Err(EngineError::Other(format!("fake {step:?} failure")))
        } else {
            Ok(())
        }
    }
}

#[async_trait::async_trait]
impl Containers for FakeContainers {
    async fn pull(
        &self,
        image: &str,
        _auth: Option<&RegistryAuth>,
        _progress: &(dyn Fn(PullProgress) + Send + Sync),
    ) -> Result<(), EngineError> {
        self.failing(Step::Pull)?;
        let mut state = self.lock();
        if let Some(left) = state.unknown_for.get_mut(image).filter(|left| **left > 0) {
            *left -= 1;
            return Err(EngineError::ImageNotFound {
                image: image.into(),
                message: "manifest unknown".into(),
            });
        }
        state.images.insert(image.to_string());
        Ok(())
    }

    async fn inspect_image(&self, image: &str) -> Result<ImageInfo, EngineError> {
        if !self.lock().images.contains(image) {
            return Err(EngineError::ImageNotFound {
                image: image.into(),
                message: "not here".into(),
            });
        }
        Ok(ImageInfo {
            id: format!("sha256:{image}"),
            repo_digests: Vec::new(),
            exposed_ports: vec![8080],
            labels: BTreeMap::new(),
            healthcheck: None,
            created: None,
        })
    }

    async fn remove_image(&self, image: &str) -> Result<(), EngineError> {
        let mut state = self.lock();
        if state.containers.values().any(|c| c.spec.image == image) {
            return Err(EngineError::ImageInUse {
                image: image.into(),
                message: "a container uses it".into(),
            });
        }
        state.images.remove(image);
        Ok(())
    }

    async fn create(&self, spec: &ContainerSpec) -> Result<ContainerId, EngineError> {
        self.failing(Step::Create)?;
        let mut state = self.lock();
        if !state.images.contains(&spec.image) {
            return Err(EngineError::ImageNotFound {
                image: spec.image.clone(),
                message: "not pulled".into(),
            });
        }
        state.next += 1;
        let id = format!("fake{:012}", state.next);
        let port = 40_000 + u16::try_from(state.next).unwrap_or(0);
        state.containers.insert(
            id.clone(),
            FakeContainer {
                spec: spec.clone(),
                running: false,
                port,
            },
        );
        Ok(ContainerId::new(id))
    }

    async fn start(&self, id: &ContainerId) -> Result<(), EngineError> {
        self.failing(Step::Start)?;
        match self.lock().containers.get_mut(id.as_str()) {
            Some(container) => {
                container.running = true;
                Ok(())
            }
            None => Err(EngineError::ContainerNotFound { id: id.to_string() }),
        }
    }

    async fn stop(&self, id: &ContainerId, _grace: Duration) -> Result<(), EngineError> {
        if let Some(container) = self.lock().containers.get_mut(id.as_str()) {
            container.running = false;
        }
        Ok(())
    }

    async fn remove(&self, id: &ContainerId, _force: bool) -> Result<(), EngineError> {
        self.failing(Step::Remove)?;
        self.lock().containers.remove(id.as_str());
        Ok(())
    }

    async fn inspect_container(&self, id: &ContainerId) -> Result<ContainerInfo, EngineError> {
        let state = self.lock();
        let container = state
            .containers
            .get(id.as_str())
            .ok_or_else(|| EngineError::ContainerNotFound { id: id.to_string() })?;
        let ports = match (container.running, container.spec.container_port) {
            (true, Some(port)) => BTreeMap::from([(port, container.port)]),
            _ => BTreeMap::new(),
        };
        Ok(ContainerInfo {
            id: id.clone(),
            name: container.spec.name.clone(),
            image: container.spec.image.clone(),
            image_id: format!("sha256:{}", container.spec.image),
            labels: container.spec.labels.clone(),
            state: ContainerState {
                status: if container.running {
                    ContainerStatus::Running
                } else {
                    ContainerStatus::Created
                },
                running: container.running,
                exit_code: 0,
                restart_count: 0,
                started_at: None,
                health: None,
                oom_killed: false,
                error: None,
            },
            loopback_port: ports.values().next().copied(),
            loopback_ports: ports,
            networks: Vec::new(),
        })
    }

    async fn logs(&self, _id: &ContainerId, _tail: usize) -> Result<String, EngineError> {
        Ok("fake app: not ready\n".into())
    }

    async fn list_containers(
        &self,
        label_filters: &[(&str, &str)],
    ) -> Result<Vec<ContainerSummary>, EngineError> {
        let state = self.lock();
        Ok(state
            .containers
            .iter()
            .filter(|(_, c)| {
                label_filters
                    .iter()
                    .all(|(k, v)| c.spec.labels.get(*k).map(String::as_str) == Some(*v))
            })
            .map(|(id, c)| ContainerSummary {
                id: ContainerId::new(id.clone()),
                name: c.spec.name.clone(),
                labels: c.spec.labels.clone(),
                state: ContainerStatus::Running,
                image: c.spec.image.clone(),
            })
            .collect())
    }

    async fn wait_healthy(
        &self,
        id: &ContainerId,
        _probe: &HealthProbe,
        _policy: &HealthPolicy,
        _on_attempt: &(dyn for<'a> Fn(&'a Attempt) + Send + Sync),
    ) -> Result<Healthy, HealthError> {
        let info = self
            .inspect_container(id)
            .await
            .map_err(HealthError::Engine)?;
        if self.lock().unhealthy.contains(&info.image) {
            return Err(HealthError::Unhealthy {
                attempts: 3,
                last_error: "GET /health answered 404".into(),
            });
        }
        Ok(Healthy {
            attempts: 1,
            elapsed: Duration::ZERO,
        })
    }
}

/// A proxy in memory: one host per domain, ids never reused.
#[derive(Default)]
pub struct FakeProxy {
    state: Mutex<ProxyState>,
}

#[derive(Default)]
struct ProxyState {
    hosts: BTreeMap<String, (HostId, Upstream)>,
    next: u32,
    /// Writes for domains containing this text fail.
    failing_writes: Option<String>,
    failing_deletes: bool,
}

impl FakeProxy {
    pub fn fail_writes_for(&self, domain_part: &str) {
        self.lock().failing_writes = Some(domain_part.to_string());
    }

    pub fn fail_deletes(&self) {
        self.lock().failing_deletes = true;
    }

    pub fn heal(&self) {
        let mut state = self.lock();
        state.failing_writes = None;
        state.failing_deletes = false;
    }

    /// Where `domain` routes now.
    pub fn upstream(&self, domain: &str) -> Option<Upstream> {
        self.lock().hosts.get(domain).map(|(_, u)| u.clone())
    }

    pub fn domains(&self) -> Vec<String> {
        self.lock().hosts.keys().cloned().collect()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, ProxyState> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }
}

#[async_trait::async_trait]
impl Proxy for FakeProxy {
    fn kind(&self) -> ProxyKind {
        ProxyKind::Npm
    }

    async fn ensure_host(&self, spec: &HostSpec) -> Result<HostId, ProxyError> {
        let mut state = self.lock();
        let domain = spec.domain.to_string();
        if state
            .failing_writes
            .as_deref()
            .is_some_and(|part| domain.contains(part))
        {
            return Err(ProxyError::Unexpected(format!(
                "fake write failure for {domain}"
            )));
        }
        let id = match state.hosts.get(&domain) {
            Some((id, _)) => id.clone(),
            None => {
                state.next += 1;
                HostId::new(ProxyKind::Npm, &state.next.to_string())
            }
        };
        state
            .hosts
            .insert(domain, (id.clone(), spec.upstream.clone()));
        Ok(id)
    }

    async fn delete_host(&self, id: &HostId) -> Result<(), ProxyError> {
        let mut state = self.lock();
        if state.failing_deletes {
            return Err(ProxyError::Unexpected("fake delete failure".into()));
        }
        state.hosts.retain(|_, (held, _)| held != id);
        Ok(())
    }

    async fn list_hosts(&self) -> Result<Vec<OwnedHost>, ProxyError> {
        Ok(self
            .lock()
            .hosts
            .iter()
            .map(|(domain, (id, upstream))| OwnedHost {
                id: id.clone(),
                domain: domain.clone(),
                upstream: upstream.clone(),
            })
            .collect())
    }

    async fn check(&self) -> Result<String, ProxyError> {
        Ok("fake proxy".into())
    }

    fn container_labels(&self, _domains: &[String], _port: u16) -> BTreeMap<String, String> {
        BTreeMap::new()
    }
}

struct NoNotifier;

impl Notifier for NoNotifier {
    fn notify(&self, _notification: Notification) {}
}

/// A deployer on the fakes, with a real store in a temp folder, one project and its stage
/// `dev` (max one instance), domains under `example.test`.
pub struct Harness {
    pub store: Store,
    pub containers: Arc<FakeContainers>,
    pub proxy: Arc<FakeProxy>,
    pub deployer: Deployer,
    pub project: Project,
    pub stage: Stage,
    _dir: tempfile::TempDir,
}

impl Harness {
    pub fn new() -> Harness {
        let dir = tempfile::tempdir().expect("temp dir");
        let store = Store::open(dir.path(), Sealer::new(MasterKey::generate())).expect("store");
        store
            .update_settings(&SettingsUpdate {
                base_domain: Some("example.test".into()),
                ..Default::default()
            })
            .expect("settings");
        let project = store
            .create_project(&NewProject {
                name: "shop".into(),
                image: "registry.test/acme/shop".into(),
                container_port: 8080,
                health_path: Some("/health".into()),
                ..Default::default()
            })
            .expect("project");
        let stage = store
            .create_stage(&NewStage::defaults(project.id, "dev"))
            .expect("stage");
        let containers = Arc::new(FakeContainers::default());
        let proxy = Arc::new(FakeProxy::default());
        let deployer = Deployer::with_containers(
            store.clone(),
            containers.clone(),
            proxy.clone(),
            Arc::new(NoNotifier),
            DeployEvents::default(),
        )
        .expect("deployer");
        deployer.set_drain(Duration::ZERO);
        Harness {
            store,
            containers,
            proxy,
            deployer,
            project,
            stage,
            _dir: dir,
        }
    }

    /// Runs a deploy of `tag` to the stage to its end.
    pub async fn deploy(&self, tag: &str) -> (Deploy, DeployOutcome) {
        let deploy = self
            .store
            .create_deploy(&NewDeploy {
                project_id: self.project.id,
                stage_id: self.stage.id,
                tag: tag.into(),
                digest: None,
                trigger: Trigger::Manual,
                detected_at: None,
            })
            .expect("deploy row");
        let outcome = self.deployer.deploy(deploy.id).await;
        (self.store.get_deploy(deploy.id).expect("deploy"), outcome)
    }

    pub fn image(&self, tag: &str) -> String {
        format!("{}:{tag}", self.project.image)
    }

    pub fn stage_domain(&self) -> String {
        "stage-dev-shop.example.test".into()
    }

    pub fn tag_domain(&self, tag: &str) -> String {
        format!("stage-dev-shop-{tag}.example.test")
    }

    /// The upstream an instance was given.
    pub fn upstream_of(&self, instance_id: i64) -> Upstream {
        let text = self
            .store
            .get_instance(instance_id)
            .expect("instance")
            .upstream
            .expect("upstream");
        super::rules::parse_upstream(&text).expect("host:port")
    }
}

/// A stage value for pure tests.
pub fn stage(id: i64, project_id: i64) -> Stage {
    Stage {
        id,
        project_id,
        name: "dev".into(),
        tag_pattern: "*".into(),
        version_range: None,
        auto_deploy: true,
        max_instances: 1,
        polling: false,
        track_digest: false,
        env: Vec::new(),
        container_port: None,
        health_path: None,
        release: Default::default(),
        created_at: chrono::Utc::now(),
        updated_at: chrono::Utc::now(),
    }
}

/// Default settings for pure tests.
pub fn settings(proxy_kind: ProxyKind) -> Settings {
    Settings {
        base_domain: "example.test".into(),
        stage_subdomain_pattern: "stage-{stage}-{project}".into(),
        instance_subdomain_pattern: "stage-{stage}-{project}-{tag}".into(),
        poll_interval: Duration::from_secs(300),
        poll_cron: None,
        has_webhook_secret: false,
        has_webhook_signing_secret: false,
        auto_create_projects: true,
        proxy_kind,
        proxy_url: None,
        proxy_username: None,
        has_proxy_secret: false,
        proxy_certificate: None,
        proxy_force_ssl: false,
        proxy_listen: None,
        reachability: crate::store::Reachability::Loopback,
        reach_network: None,
        health_interval: Duration::from_secs(2),
        health_timeout: Duration::from_secs(2),
        health_retries: 3,
        health_start_period: Duration::ZERO,
        allowed_bind_paths: Vec::new(),
        allow_host_network: false,
        limits: Default::default(),
    }
}
