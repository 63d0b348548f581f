//! `spawn_app()`: the real daemon, in process, on a free 127.0.0.1 port with a temp data
//! folder, and a handle with one method per endpoint.

use docker_watcher::config::Config;
use docker_watcher::daemon::{self, Daemon};
use docker_watcher::store::Store;

pub struct TestApp {
    pub address: String,
    pub client: reqwest::Client,
    pub data_dir: tempfile::TempDir,
    daemon: Option<Daemon>,
}

/// Options for a spawned daemon; the default uses the local Docker Engine.
#[derive(Default)]
pub struct AppOptions {
    pub docker_host: Option<String>,
}

pub async fn spawn_app() -> TestApp {
    spawn_app_with(AppOptions::default()).await
}

pub async fn spawn_app_with(options: AppOptions) -> TestApp {
    let data_dir = tempfile::tempdir().expect("temp data dir");
    let config = Config {
        listen: "127.0.0.1:0".parse().expect("address"),
        data_dir: data_dir.path().join("data"),
        docker_host: options.docker_host,
        ..Config::default()
    };
    let daemon = daemon::start(config).await.expect("daemon starts");
    TestApp {
        address: format!("http://{}", daemon.addr),
        client: reqwest::Client::new(),
        data_dir,
        daemon: Some(daemon),
    }
}

impl TestApp {
    pub fn store(&self) -> &Store {
        &self.daemon.as_ref().expect("running").store
    }

    pub async fn get(&self, path: &str) -> reqwest::Response {
        self.client
            .get(format!("{}{path}", self.address))
            .send()
            .await
            .expect("request")
    }

    pub async fn healthz(&self) -> (u16, serde_json::Value) {
        let response = self.get("/healthz").await;
        let status = response.status().as_u16();
        (status, response.json().await.expect("healthz JSON"))
    }

    pub async fn shutdown(mut self) {
        if let Some(daemon) = self.daemon.take() {
            daemon.shutdown().await.expect("clean shutdown");
        }
    }
}
