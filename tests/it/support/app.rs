//! `spawn_app()`: the real daemon, in process, on a free 127.0.0.1 port with a temp data
//! folder, and a handle with one method per endpoint.

use docker_watcher::config::Config;
use docker_watcher::daemon::{self, Daemon};
use docker_watcher::store::Store;

pub struct TestApp {
    pub address: String,
    installation: String,
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
    daemon
        .store
        .update_settings(&super::deploy::quick_health())
        .expect("quick health checks");
    TestApp {
        installation: daemon.store.installation_id().expect("installation id"),
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

    /// The full webhook URL, as a registry is told it.
    pub fn webhook_url(&self) -> String {
        let secret = self
            .store()
            .webhook_secret()
            .unwrap()
            .expect("webhook secret");
        format!("{}/api/webhook/{secret}", self.address)
    }

    /// POSTs `body` to the webhook with the given headers (JSON unless they say otherwise).
    pub async fn post_webhook(
        &self,
        body: &[u8],
        headers: &[(&str, &str)],
    ) -> (u16, serde_json::Value) {
        self.post_webhook_to(&self.webhook_url(), body, headers)
            .await
    }

    pub async fn post_webhook_to(
        &self,
        url: &str,
        body: &[u8],
        headers: &[(&str, &str)],
    ) -> (u16, serde_json::Value) {
        let mut request = self.client.post(url).body(body.to_vec());
        if !headers
            .iter()
            .any(|(k, _)| k.eq_ignore_ascii_case("content-type"))
        {
            request = request.header("content-type", "application/json");
        }
        for (name, value) in headers {
            request = request.header(*name, *value);
        }
        let response = request.send().await.expect("webhook request");
        let status = response.status().as_u16();
        let text = response.text().await.unwrap_or_default();
        (
            status,
            serde_json::from_str(&text).unwrap_or(serde_json::Value::String(text)),
        )
    }

    /// Waits (bounded) until the deploy reaches a final status.
    pub async fn wait_final(&self, deploy_id: i64) -> docker_watcher::store::Deploy {
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(90);
        loop {
            let deploy = self.store().get_deploy(deploy_id).unwrap();
            if deploy.status.is_final() {
                return deploy;
            }
            assert!(
                std::time::Instant::now() < deadline,
                "deploy {deploy_id} stuck in {}",
                deploy.status
            );
            tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        }
    }

    pub async fn shutdown(mut self) {
        if let Some(daemon) = self.daemon.take() {
            daemon.shutdown().await.expect("clean shutdown");
        }
    }
}

impl Drop for TestApp {
    fn drop(&mut self) {
        super::remove_containers_labelled(
            docker_watcher::docker::labels::INSTALLATION,
            &self.installation,
        );
    }
}
