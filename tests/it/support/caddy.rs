//! A throwaway real Caddy (Debian's `caddy`) per test: admin API on a free 127.0.0.1 port,
//! no HTTP server at first (docker-watcher's adapter adds its own, on [`TestCaddy::listen_addr`]),
//! nothing written outside a temp folder. Plus a tiny upstream that says who it is, and a
//! GET through Caddy's listener with any `Host` header.

use std::net::SocketAddr;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::{Value, json};

use super::free_port;

pub struct TestCaddy {
    admin_port: u16,
    listen_port: u16,
    child: Child,
    dir: tempfile::TempDir,
}

impl TestCaddy {
    pub async fn start() -> TestCaddy {
        let dir = tempfile::tempdir().expect("temp dir for caddy");
        let admin_port = free_port();
        let listen_port = free_port();
        let config = json!({
            "admin": {
                "listen": format!("127.0.0.1:{admin_port}"),
                // Changes made through the API stay in memory: no autosave file to clean.
                "config": { "persist": false },
            },
        });
        let config_path = dir.path().join("caddy.json");
        std::fs::write(&config_path, config.to_string()).expect("write caddy config");
        let log = std::fs::File::create(dir.path().join("caddy.log")).expect("caddy log");
        let child = Command::new("caddy")
            .arg("run")
            .arg("--config")
            .arg(&config_path)
            // Caddy keeps certificates and state under these; keep them in the temp folder.
            .env("HOME", dir.path())
            .env("XDG_DATA_HOME", dir.path().join("data"))
            .env("XDG_CONFIG_HOME", dir.path().join("config"))
            .stdin(Stdio::null())
            .stdout(log.try_clone().expect("log fd"))
            .stderr(log)
            .spawn()
            .expect("start caddy (Debian's caddy package)");
        let caddy = TestCaddy {
            admin_port,
            listen_port,
            child,
            dir,
        };
        caddy.wait_ready().await;
        caddy
    }

    /// `http://127.0.0.1:PORT`, the proxy URL for docker-watcher's settings.
    pub fn admin_url(&self) -> String {
        format!("http://127.0.0.1:{}", self.admin_port)
    }

    /// The address docker-watcher's Caddy server should listen on (its `caddy_listen`).
    pub fn listen_addr(&self) -> String {
        format!("127.0.0.1:{}", self.listen_port)
    }

    /// GET `path` on Caddy's listener with `Host: host`; the status and body. A fresh
    /// connection each time, so a config reload never meets a stale pooled one.
    pub async fn get(&self, host: &str, path: &str) -> (u16, String) {
        get_with_host(&self.listen_addr(), host, path).await
    }

    /// Caddy's whole running config.
    pub async fn config(&self) -> Value {
        reqwest::get(format!("{}/config/", self.admin_url()))
            .await
            .expect("GET caddy config")
            .json()
            .await
            .expect("caddy config is JSON")
    }

    /// A request to the admin API, as a person or another tool would make it.
    pub async fn admin(
        &self,
        method: reqwest::Method,
        path: &str,
        body: Option<Value>,
    ) -> (u16, String) {
        let mut request =
            reqwest::Client::new().request(method, format!("{}{path}", self.admin_url()));
        if let Some(body) = body {
            request = request.json(&body);
        }
        let response = request.send().await.expect("caddy admin request");
        let status = response.status().as_u16();
        (status, response.text().await.unwrap_or_default())
    }

    /// How many config-changing requests (anything but GET) the admin API has received,
    /// from Caddy's own request log.
    pub fn admin_changes(&self) -> usize {
        self.log()
            .lines()
            .filter(|line| line.contains("\"msg\":\"received request\""))
            .filter(|line| !line.contains("\"method\":\"GET\""))
            .count()
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("caddy.log")).unwrap_or_default()
    }

    async fn wait_ready(&self) {
        let deadline = Instant::now() + Duration::from_secs(30);
        let url = format!("{}/config/", self.admin_url());
        while Instant::now() < deadline {
            if let Ok(response) = reqwest::get(&url).await
                && response.status().is_success()
            {
                return;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        panic!("caddy did not start; its log:\n{}", self.log());
    }
}

impl Drop for TestCaddy {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// GET `http://addr{path}` with `Host: host`, on a connection of its own.
pub async fn get_with_host(addr: &str, host: &str, path: &str) -> (u16, String) {
    let client = reqwest::Client::builder()
        .pool_max_idle_per_host(0)
        .timeout(Duration::from_secs(10))
        .build()
        .expect("client");
    let response = client
        .get(format!("http://{addr}{path}"))
        .header(reqwest::header::HOST, host)
        .send()
        .await
        .unwrap_or_else(|e| panic!("GET {path} on {addr} (Host: {host}): {e}"));
    let status = response.status().as_u16();
    (status, response.text().await.unwrap_or_default())
}

/// A tiny HTTP server on 127.0.0.1 whose `GET /id` answers its name, like the test
/// images' `/id`.
pub struct TestUpstream {
    pub addr: SocketAddr,
    task: tokio::task::JoinHandle<()>,
}

impl TestUpstream {
    pub async fn start(name: &str) -> TestUpstream {
        let name = name.to_string();
        let app = axum::Router::new().route("/id", axum::routing::get(move || async move { name }));
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind upstream");
        let addr = listener.local_addr().expect("upstream address");
        let task = tokio::spawn(async move {
            axum::serve(listener, app).await.expect("upstream serves");
        });
        TestUpstream { addr, task }
    }

    pub fn port(&self) -> u16 {
        self.addr.port()
    }
}

impl Drop for TestUpstream {
    fn drop(&mut self) {
        self.task.abort();
    }
}
