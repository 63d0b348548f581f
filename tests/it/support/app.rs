//! `spawn_app()`: the real daemon, in process, on a free 127.0.0.1 port with a temp data
//! folder, and a handle with one method per endpoint.
//!
//! The admin password is [`ADMIN_PASSWORD`]; `login()` signs in (one login attempt per
//! call, and the daemon allows five a minute per address), `api()` gives a client that
//! sends the bearer token and remembers every answer it got (to search them for secrets).

use std::sync::{Arc, Mutex};

use serde_json::Value;

use docker_watcher::config::Config;
use docker_watcher::config::Secret;
use docker_watcher::daemon::{self, Daemon};
use docker_watcher::store::Store;

/// The admin password every spawned daemon starts with.
pub const ADMIN_PASSWORD: &str = "test-admin-password";

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
    pub public_url: Option<String>,
    /// Connection cap and header timeout, when not the defaults.
    pub max_connections: Option<usize>,
    pub header_timeout_secs: Option<u64>,
    /// A projects file to keep applied (managed mode, `serve --projects`).
    pub projects: Option<std::path::PathBuf>,
    /// Where Google's token keys are fetched from (a local key server).
    pub google_keys_url: Option<String>,
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
        public_url: options.public_url,
        projects: options.projects,
        admin_password: Some(Secret(ADMIN_PASSWORD.into())),
        ..Config::default()
    };
    let config = Config {
        max_connections: options.max_connections.unwrap_or(config.max_connections),
        header_timeout_secs: options
            .header_timeout_secs
            .unwrap_or(config.header_timeout_secs),
        google_keys_url: options.google_keys_url.unwrap_or(config.google_keys_url),
        ..config
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

    /// This daemon's installation id: every container it makes carries it as a label.
    pub fn installation_id(&self) -> String {
        self.installation.clone()
    }

    /// Signs in as admin; panics unless it works.
    pub async fn login(&self) -> Login {
        let response = self
            .client
            .post(format!("{}/api/auth/login", self.address))
            .json(&serde_json::json!({ "username": "admin", "password": ADMIN_PASSWORD }))
            .send()
            .await
            .expect("login request");
        assert_eq!(response.status(), 200, "login");
        let cookie = response
            .headers()
            .get("set-cookie")
            .expect("session cookie")
            .to_str()
            .unwrap()
            .to_string();
        let body: Value = response.json().await.expect("login JSON");
        Login {
            token: body["token"].as_str().unwrap().to_string(),
            csrf_token: body["csrf_token"].as_str().unwrap().to_string(),
            set_cookie: cookie.clone(),
            cookie: cookie.split(';').next().unwrap().to_string(),
        }
    }

    /// A client signed in with a fresh login's bearer token.
    pub async fn api(&self) -> Api {
        let login = self.login().await;
        self.api_with_token(&login.token)
    }

    pub fn api_with_token(&self, token: &str) -> Api {
        Api {
            address: self.address.clone(),
            client: self.client.clone(),
            token: Some(token.to_string()),
            seen: Arc::default(),
        }
    }

    /// A client that sends no credentials.
    pub fn anonymous(&self) -> Api {
        Api {
            address: self.address.clone(),
            client: self.client.clone(),
            token: None,
            seen: Arc::default(),
        }
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

/// What a login gave.
pub struct Login {
    pub token: String,
    pub csrf_token: String,
    /// The whole Set-Cookie header.
    pub set_cookie: String,
    /// `dw_session=<value>`, to send back in a Cookie header.
    pub cookie: String,
}

/// An API client: JSON in, status and JSON out; every answer's text is kept.
#[derive(Clone)]
pub struct Api {
    pub address: String,
    pub client: reqwest::Client,
    pub token: Option<String>,
    pub seen: Arc<Mutex<Vec<String>>>,
}

impl Api {
    pub async fn call(&self, method: &str, path: &str, body: Option<Value>) -> (u16, Value) {
        let method = reqwest::Method::from_bytes(method.to_uppercase().as_bytes()).unwrap();
        let mut request = self
            .client
            .request(method.clone(), format!("{}{path}", self.address));
        if let Some(token) = &self.token {
            request = request.bearer_auth(token);
        }
        if let Some(body) = body {
            request = request.json(&body);
        }
        let response = request.send().await.expect("request");
        let status = response.status().as_u16();
        let text = response.text().await.expect("body");
        self.seen
            .lock()
            .unwrap()
            .push(format!("{method} {path} -> {status}: {text}"));
        let value = if text.is_empty() {
            Value::Null
        } else {
            serde_json::from_str(&text).unwrap_or(Value::String(text))
        };
        (status, value)
    }

    pub async fn get(&self, path: &str) -> (u16, Value) {
        self.call("GET", path, None).await
    }

    pub async fn post(&self, path: &str, body: Value) -> (u16, Value) {
        self.call("POST", path, Some(body)).await
    }

    pub async fn put(&self, path: &str, body: Value) -> (u16, Value) {
        self.call("PUT", path, Some(body)).await
    }

    pub async fn delete(&self, path: &str) -> (u16, Value) {
        self.call("DELETE", path, None).await
    }

    /// `POST` expecting `201`; returns the body.
    pub async fn create(&self, path: &str, body: Value) -> Value {
        let (status, answer) = self.post(path, body).await;
        assert_eq!(status, 201, "POST {path}: {answer}");
        answer
    }

    /// Every answer text so far.
    pub fn seen(&self) -> Vec<String> {
        self.seen.lock().unwrap().clone()
    }
}
