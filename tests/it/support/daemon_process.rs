//! The daemon as a real child process (the built binary, `serve`), so a test can kill it
//! with SIGKILL at any moment and start it again on the same data folder, as a crash and
//! a restart by systemd would.
//!
//! Each start listens on a fresh free 127.0.0.1 port (a killed listener's port may linger);
//! an API token made at the first start is kept, so a restart needs no new login (the
//! daemon allows five logins a minute). The store is read directly from the data folder
//! (SQLite in WAL mode reads beside the daemon) to watch a deploy's status closely.

use std::path::{Path, PathBuf};
use std::process::Child;
use std::time::{Duration, Instant};

use serde_json::{Value, json};

use docker_watcher::crypto::{MasterKey, Sealer};
use docker_watcher::store::{Deploy, DeployStatus, Store};

use super::app::{ADMIN_PASSWORD, Api};
use super::serve_child::{Serve, wait_ready};
use super::{free_port, remove_containers_labelled, require_docker};

pub struct DaemonProcess {
    dir: tempfile::TempDir,
    child: Option<Child>,
    port: u16,
    token: Option<String>,
    store: Option<Store>,
    installation: Option<String>,
    docker_host: Option<String>,
}

impl DaemonProcess {
    /// Starts the daemon on a temp data folder and waits until `/healthz` answers.
    pub async fn start() -> DaemonProcess {
        Self::start_with_docker(None).await
    }

    /// Like [`DaemonProcess::start`], with `DW_DOCKER_HOST` set when given.
    pub async fn start_with_docker(docker_host: Option<String>) -> DaemonProcess {
        require_docker();
        let mut daemon = DaemonProcess {
            docker_host,
            dir: tempfile::tempdir().expect("temp data folder"),
            child: None,
            port: 0,
            token: None,
            store: None,
            installation: None,
        };
        daemon.spawn().await;
        let store = Store::open(&daemon.data_dir(), Sealer::new(MasterKey::generate()))
            .expect("open the daemon's store beside it");
        daemon.installation = Some(store.installation_id().expect("installation id"));
        daemon.store = Some(store);
        // One login, then a named API token that outlives restarts.
        let client = reqwest::Client::new();
        let login: Value = client
            .post(format!("{}/api/auth/login", daemon.address()))
            .json(&json!({ "username": "admin", "password": ADMIN_PASSWORD }))
            .send()
            .await
            .expect("login")
            .json()
            .await
            .expect("login JSON");
        let session = Api {
            address: daemon.address(),
            client,
            token: login["token"].as_str().map(str::to_string),
            seen: Default::default(),
        };
        let token = session
            .create(
                "/api/auth/tokens",
                json!({ "name": "faults", "scope": "admin" }),
            )
            .await;
        daemon.token = Some(token["token"].as_str().expect("token").to_string());
        daemon
    }

    pub fn data_dir(&self) -> PathBuf {
        self.dir.path().join("data")
    }

    pub fn address(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// An API client for the daemon as it runs now (the address changes on restart).
    pub fn api(&self) -> Api {
        Api {
            address: self.address(),
            client: reqwest::Client::new(),
            token: self.token.clone(),
            seen: Default::default(),
        }
    }

    /// A view of the daemon's store, read beside it.
    pub fn store(&self) -> &Store {
        self.store.as_ref().expect("store")
    }

    pub fn installation_id(&self) -> String {
        self.installation.clone().expect("installation id")
    }

    /// SIGKILL, as the kernel's OOM killer or a power cut would: no shutdown code runs.
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            child.kill().expect("SIGKILL the daemon");
            child.wait().expect("reap the daemon");
        }
    }

    /// Starts the daemon again on the same data folder (after [`DaemonProcess::kill`]).
    pub async fn restart(&mut self) {
        assert!(self.child.is_none(), "kill the daemon before restarting it");
        self.spawn().await;
    }

    /// Waits (bounded) until the deploy's status satisfies `reached`; returns it. Panics,
    /// with the daemon's log, when the deploy ends first or 60 s pass.
    pub async fn wait_status(
        &self,
        deploy_id: i64,
        what: &str,
        reached: impl Fn(DeployStatus) -> bool,
    ) -> Deploy {
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            let deploy = self.store().get_deploy(deploy_id).expect("deploy row");
            if reached(deploy.status) {
                return deploy;
            }
            assert!(
                !deploy.status.is_final() && Instant::now() < deadline,
                "deploy {deploy_id} is {} and never reached {what}; daemon log:\n{}",
                deploy.status,
                self.log()
            );
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }

    /// Waits (bounded: 90 s) until the deploy is final.
    pub async fn wait_final(&self, deploy_id: i64) -> Deploy {
        self.wait_status(deploy_id, "a final status", DeployStatus::is_final)
            .await
    }

    /// Everything the daemon wrote to stdout and stderr, over all its starts.
    pub fn log(&self) -> String {
        let text = std::fs::read_to_string(self.dir.path().join("daemon.log")).unwrap_or_default();
        // The tail is what matters in a failure message.
        let start = text.len().saturating_sub(20_000);
        let start = (start..text.len())
            .find(|&i| text.is_char_boundary(i))
            .unwrap_or(0);
        text[start..].to_string()
    }

    async fn spawn(&mut self) {
        self.port = free_port();
        let data_dir = self.data_dir();
        let log = self.dir.path().join("daemon.log");
        let mut child = Serve {
            binary: Path::new(env!("CARGO_BIN_EXE_docker-watcher")),
            port: self.port,
            data_dir: &data_dir,
            admin_password: ADMIN_PASSWORD,
            log: &log,
            log_level: Some("info,docker_watcher=debug"),
            docker_host: self.docker_host.as_deref(),
        }
        .spawn();
        let ready = wait_ready(
            &mut child,
            self.port,
            Duration::from_millis(50),
            Duration::from_secs(30),
        )
        .await;
        self.child = Some(child);
        if let Err(reason) = ready {
            panic!(
                "the daemon did not come up: {reason}; its log:\n{}",
                self.log()
            );
        }
    }
}

impl Drop for DaemonProcess {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
        if let Some(installation) = &self.installation {
            remove_containers_labelled(docker_watcher::docker::labels::INSTALLATION, installation);
        }
    }
}
