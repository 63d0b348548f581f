//! A deployer on the real Docker Engine with a temp store and a per-test registry, and
//! the clean-up of every container it made (found by this store's installation label).

use std::sync::Arc;
use std::time::{Duration, Instant};

use docker_watcher::crypto::{MasterKey, Sealer};
use docker_watcher::deployer::{DeployEvents, Deployer};
use docker_watcher::docker::{BollardEngine, ContainerId, Engine, labels};
use docker_watcher::notify::{HttpNotifier, Notifier};
use docker_watcher::proxy::{NoProxy, Proxy};
use docker_watcher::store::*;

use super::registry::TestRegistry;
use super::{remove_containers_labelled, require_docker, unique_name};

pub struct DeployHarness {
    pub store: Store,
    pub engine: Arc<dyn Engine>,
    pub deployer: Deployer,
    pub registry: TestRegistry,
    pub repository: String,
    installation: String,
    _dir: tempfile::TempDir,
}

/// Health checks quick enough for tests: probe every 200 ms, 3 failures after a 2 s start.
pub fn quick_health() -> SettingsUpdate {
    SettingsUpdate {
        health_interval: Some(Duration::from_millis(200)),
        health_timeout: Some(Duration::from_secs(2)),
        health_retries: Some(3),
        health_start_period: Some(Duration::from_secs(2)),
        ..Default::default()
    }
}

impl DeployHarness {
    pub async fn new() -> DeployHarness {
        Self::with_proxy(Arc::new(NoProxy)).await
    }

    pub async fn with_proxy(proxy: Arc<dyn Proxy>) -> DeployHarness {
        require_docker();
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path(), Sealer::new(MasterKey::generate())).unwrap();
        store.update_settings(&quick_health()).unwrap();
        let engine: Arc<dyn Engine> = Arc::new(BollardEngine::connect(None).unwrap());
        let http_notifier = HttpNotifier::new(store.clone(), None);
        // The outbox worker runs for the harness's life (the test process's, at most).
        tokio::spawn(
            http_notifier
                .clone()
                .run(tokio_util::sync::CancellationToken::new()),
        );
        let notifier: Arc<dyn Notifier> = Arc::new(http_notifier);
        let deployer = Deployer::new(
            store.clone(),
            engine.clone(),
            proxy,
            notifier,
            DeployEvents::default(),
        )
        .unwrap();
        // Draining is tested where it matters (proxy_pipeline); elsewhere it only slows.
        deployer.set_drain(Duration::from_millis(100));
        let registry = TestRegistry::start().await;
        DeployHarness {
            installation: store.installation_id().unwrap(),
            store,
            engine,
            deployer,
            registry,
            repository: unique_name("acme/shop"),
            _dir: dir,
        }
    }

    /// Pushes a local test image (`dw-test/app:<mode>`) as `tag` of this harness's repository.
    pub async fn push(&self, source: &str, tag: &str) -> String {
        self.registry.push(source, &self.repository, tag).await
    }

    pub fn project(&self, health_path: Option<&str>) -> Project {
        self.store
            .create_project(&NewProject {
                name: unique_name("shop"),
                image: format!("{}/{}", self.registry.host(), self.repository),
                container_port: 8080,
                health_path: health_path.map(str::to_string),
                ..Default::default()
            })
            .unwrap()
    }

    pub fn stage(&self, project: &Project, name: &str, max_instances: u32) -> Stage {
        self.store
            .create_stage(&NewStage {
                max_instances,
                ..NewStage::defaults(project.id, name)
            })
            .unwrap()
    }

    /// Records a pending deploy and runs it to its end, bypassing the queue.
    pub async fn deploy_now(
        &self,
        stage: &Stage,
        tag: &str,
    ) -> (Deploy, docker_watcher::deployer::DeployOutcome) {
        let deploy = self
            .store
            .create_deploy(&NewDeploy {
                project_id: stage.project_id,
                stage_id: stage.id,
                tag: tag.into(),
                digest: None,
                trigger: Trigger::Manual,
                detected_at: None,
            })
            .unwrap();
        let outcome = self.deployer.deploy(deploy.id).await;
        (self.store.get_deploy(deploy.id).unwrap(), outcome)
    }

    /// Waits (bounded) until a queued deploy reaches a final status.
    pub async fn wait_final(&self, deploy_id: i64) -> Deploy {
        let deadline = Instant::now() + Duration::from_secs(90);
        loop {
            let deploy = self.store.get_deploy(deploy_id).unwrap();
            if deploy.status.is_final() {
                return deploy;
            }
            assert!(
                Instant::now() < deadline,
                "deploy {deploy_id} still {} after 90 s",
                deploy.status
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// This installation's containers on the engine (running or not).
    pub async fn containers(&self) -> Vec<docker_watcher::docker::ContainerSummary> {
        self.engine
            .list_containers(&[(labels::INSTALLATION, &self.installation)])
            .await
            .unwrap()
    }

    /// GETs `path` from an instance through its 127.0.0.1 port.
    pub async fn get_from(&self, instance: &Instance, path: &str) -> Result<String, String> {
        let upstream = instance
            .upstream
            .clone()
            .ok_or("instance has no upstream")?;
        let response = reqwest::Client::new()
            .get(format!("http://{upstream}{path}"))
            .timeout(Duration::from_secs(5))
            .send()
            .await
            .map_err(|e| e.to_string())?;
        if !response.status().is_success() {
            return Err(format!("status {}", response.status()));
        }
        response
            .text()
            .await
            .map(|t| t.trim().to_string())
            .map_err(|e| e.to_string())
    }

    pub async fn container_exists(&self, id: &str) -> bool {
        self.engine
            .inspect_container(&ContainerId::new(id))
            .await
            .is_ok()
    }
}

impl Drop for DeployHarness {
    fn drop(&mut self) {
        remove_containers_labelled(labels::INSTALLATION, &self.installation);
    }
}

/// A local image like `dw-test/app:healthy` whose PID 1 ignores SIGTERM (as many apps do),
/// so `docker stop` waits the whole grace period. Built from the local test image (no
/// pull), removed on drop.
pub struct StubbornImage {
    pub name: String,
}

impl StubbornImage {
    pub fn build() -> StubbornImage {
        super::require_docker();
        let name = format!("dw-test/app:{}", super::unique_name("stubborn"));
        let dir = tempfile::tempdir().unwrap();
        // PID 1 is a shell with no TERM handler: the kernel drops the signal.
        std::fs::write(
            dir.path().join("Dockerfile"),
            format!(
                "FROM {}\nENTRYPOINT [\"/bin/sh\", \"-c\", \"/bin/sh /app.sh & wait\"]\n",
                super::HEALTHY_IMAGE
            ),
        )
        .unwrap();
        let output = std::process::Command::new(super::docker_cli())
            .env("DOCKER_BUILDKIT", "0")
            .args([
                "build",
                "-q",
                "--label",
                &format!("{}=true", super::TEST_LABEL),
            ])
            .args(["-t", &name])
            .arg(dir.path())
            .output()
            .expect("docker build");
        assert!(
            output.status.success(),
            "docker build: {}",
            String::from_utf8_lossy(&output.stderr)
        );
        StubbornImage { name }
    }
}

impl Drop for StubbornImage {
    fn drop(&mut self) {
        let _ = std::process::Command::new(super::docker_cli())
            .args(["rmi", &self.name])
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .status();
    }
}
