//! The stage every fault-injection test starts from: the daemon as a child process, a
//! real registry reached only through a fault proxy, optionally the NPM fake (behind its
//! own fault proxy) or real Caddy, and a project with stage `dev` made over the API, with
//! `v1` (the healthy test image) deployed and serving.

use serde_json::{Value, json};

use docker_watcher::store::DeployStatus;

use crate::support::caddy::TestCaddy;
use crate::support::daemon_process::DaemonProcess;
use crate::support::fault_proxy::FaultProxy;
use crate::support::invariants::{self, ProxyView, World};
use crate::support::npm_fake::{self, FakeNpm};
use crate::support::registry::TestRegistry;
use crate::support::{HEALTHY_IMAGE, unique_name};

pub const BASE_DOMAIN: &str = "faults.test";

/// Which reverse proxy the daemon gets.
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum ProxyChoice {
    None,
    Npm,
    Caddy,
}

/// How the stage is set up.
pub struct Options {
    pub proxy: ProxyChoice,
    pub max_instances: u32,
    /// Project environment (`SLOW_SECONDS` for the slow image).
    pub env: Vec<(&'static str, &'static str)>,
    /// Health-check start period; the slow image needs more than the quick default.
    pub start_period_ms: u64,
    /// Put the Docker Engine behind a fault proxy too (for slow Docker calls).
    pub docker_proxy: bool,
}

impl Default for Options {
    fn default() -> Options {
        Options {
            proxy: ProxyChoice::None,
            max_instances: 1,
            env: Vec::new(),
            start_period_ms: 2000,
            docker_proxy: false,
        }
    }
}

pub struct Setup {
    // Dropped in order: the daemon (and its containers) first, then what it talked to.
    pub daemon: DaemonProcess,
    pub registry_front: FaultProxy,
    pub registry: TestRegistry,
    pub npm_front: Option<FaultProxy>,
    pub npm: Option<FakeNpm>,
    pub caddy: Option<TestCaddy>,
    pub docker_front: Option<FaultProxy>,
    pub repository: String,
    pub project_id: i64,
    pub stage_id: i64,
}

impl Setup {
    /// Everything above, with `v1` deployed and the invariants holding.
    pub async fn new(options: Options) -> Setup {
        let registry = TestRegistry::start().await;
        let registry_front = FaultProxy::start(&registry.host()).await;
        let docker_front = if options.docker_proxy {
            Some(FaultProxy::docker().await)
        } else {
            None
        };
        let daemon =
            DaemonProcess::start_with_docker(docker_front.as_ref().map(FaultProxy::docker_host))
                .await;
        let repository = unique_name("faults/app");
        registry.push(HEALTHY_IMAGE, &repository, "v1").await;

        let (mut npm, mut npm_front, mut caddy) = (None, None, None);
        let mut settings = json!({
            "health_interval_ms": 200, "health_timeout_ms": 2000, "health_retries": 3,
            "health_start_period_ms": options.start_period_ms,
        });
        match options.proxy {
            ProxyChoice::None => {}
            ProxyChoice::Npm => {
                let fake = FakeNpm::start().await;
                let front = FaultProxy::start(fake.url().trim_start_matches("http://")).await;
                settings["base_domain"] = json!(BASE_DOMAIN);
                settings["proxy_kind"] = json!("npm");
                settings["proxy_url"] = json!(front.url());
                settings["proxy_username"] = json!(npm_fake::IDENTITY);
                settings["proxy_secret"] = json!(npm_fake::SECRET);
                npm = Some(fake);
                npm_front = Some(front);
            }
            ProxyChoice::Caddy => {
                let real = TestCaddy::start().await;
                settings["base_domain"] = json!(BASE_DOMAIN);
                settings["proxy_kind"] = json!("caddy");
                settings["proxy_url"] = json!(real.admin_url());
                settings["proxy_listen"] = json!(real.listen_addr());
                caddy = Some(real);
            }
        }
        let api = daemon.api();
        let (status, body) = api.put("/api/settings", settings).await;
        assert_eq!(status, 200, "settings: {body}");
        let env: Vec<Value> = options
            .env
            .iter()
            .map(|(name, value)| json!({ "name": name, "value": value }))
            .collect();
        let project = api
            .create(
                "/api/projects",
                json!({ "name": unique_name("faults"),
                        "image": format!("{}/{repository}", registry_front.host()),
                        "container_port": 8080, "health_path": "/health", "env": env }),
            )
            .await;
        let stage = api
            .create(
                &format!("/api/projects/{}/stages", project["id"]),
                json!({ "name": "dev", "max_instances": options.max_instances }),
            )
            .await;
        let setup = Setup {
            daemon,
            registry_front,
            registry,
            npm_front,
            npm,
            caddy,
            docker_front,
            repository,
            project_id: project["id"].as_i64().expect("project id"),
            stage_id: stage["id"].as_i64().expect("stage id"),
        };
        let first = setup.deploy("v1").await;
        let first = setup.daemon.wait_final(first).await;
        assert_eq!(
            first.status,
            DeployStatus::Success,
            "v1 deploys before any fault; log:\n{}",
            setup.daemon.log()
        );
        setup.assert_settled().await;
        setup
    }

    /// Pushes the local test image `source` as `tag` (straight to the registry, not
    /// through the fault proxy).
    pub async fn push(&self, source: &str, tag: &str) {
        self.registry.push(source, &self.repository, tag).await;
    }

    /// Asks for a deploy of `tag` over the API; returns its id.
    pub async fn deploy(&self, tag: &str) -> i64 {
        let (status, body) = self
            .daemon
            .api()
            .post(
                &format!("/api/stages/{}/deploys", self.stage_id),
                json!({ "tag": tag }),
            )
            .await;
        assert_eq!(status, 202, "deploy {tag}: {body}");
        body["id"].as_i64().expect("deploy id")
    }

    /// Deploys `tag` and waits for its end; returns its final status.
    pub async fn deploy_and_wait(&self, tag: &str) -> DeployStatus {
        let id = self.deploy(tag).await;
        self.daemon.wait_final(id).await.status
    }

    /// The invariants of [`invariants`], waited for (bounded).
    pub async fn assert_settled(&self) {
        let proxy = match (&self.npm, &self.caddy) {
            (Some(npm), _) => ProxyView::Npm(npm),
            (_, Some(caddy)) => ProxyView::Caddy(caddy),
            _ => ProxyView::None,
        };
        invariants::assert_settled(&World {
            store: self.daemon.store(),
            installation: self.daemon.installation_id(),
            proxy,
            stage_id: self.stage_id,
        })
        .await;
    }

    /// The tag the stage serves now: its newest running instance's.
    pub fn serving_tag(&self) -> Option<String> {
        self.daemon
            .store()
            .list_instances(self.stage_id)
            .expect("instances")
            .into_iter()
            .filter(|i| i.status == docker_watcher::store::InstanceStatus::Running)
            .max_by_key(|i| i.id)
            .map(|i| i.tag)
    }
}
