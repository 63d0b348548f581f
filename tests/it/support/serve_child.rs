//! `docker-watcher serve` started as a child process on 127.0.0.1 and waited for until
//! `/healthz` answers: shared by the tests' `DaemonProcess` and the deploy bench (which
//! includes this file with `#[path]`), so it uses nothing but std, tokio and reqwest.
//!
//! The environment is the one a test or a measurement needs, whatever the caller's shell
//! holds: settings it does not name (a config file, a public URL, a key file, a Docker
//! host) are removed rather than inherited.

use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// How to start one daemon.
pub struct Serve<'a> {
    /// The built `docker-watcher` binary.
    pub binary: &'a Path,
    /// The 127.0.0.1 port to listen on.
    pub port: u16,
    pub data_dir: &'a Path,
    pub admin_password: &'a str,
    /// stdout and stderr are appended here (over restarts).
    pub log: &'a Path,
    /// `DW_LOG_LEVEL`; `None` runs with the default level, as users do.
    pub log_level: Option<&'a str>,
    /// `DW_DOCKER_HOST`; `None` uses the local engine.
    pub docker_host: Option<&'a str>,
}

impl Serve<'_> {
    /// Spawns the daemon; it is not ready yet (see [`wait_ready`]).
    pub fn spawn(&self) -> Child {
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.log)
            .expect("daemon log file");
        let mut command = Command::new(self.binary);
        command
            .arg("serve")
            .env("DW_LISTEN", format!("127.0.0.1:{}", self.port))
            .env("DW_DATA_DIR", self.data_dir)
            .env("DW_ADMIN_PASSWORD", self.admin_password)
            .env_remove("DW_CONFIG")
            .env_remove("DW_PUBLIC_URL")
            .env_remove("DW_KEY_FILE");
        match self.log_level {
            Some(level) => command.env("DW_LOG_LEVEL", level),
            None => command.env_remove("DW_LOG_LEVEL"),
        };
        match self.docker_host {
            Some(host) => command.env("DW_DOCKER_HOST", host),
            None => command.env_remove("DW_DOCKER_HOST"),
        };
        command
            .stdin(Stdio::null())
            .stdout(log.try_clone().expect("log fd"))
            .stderr(log)
            .spawn()
            .unwrap_or_else(|e| panic!("start {}: {e}", self.binary.display()))
    }
}

/// Polls `http://127.0.0.1:{port}/healthz` every `poll` until it answers 2xx. Fails with
/// the reason when the child exits first or `within` passes.
pub async fn wait_ready(
    child: &mut Child,
    port: u16,
    poll: Duration,
    within: Duration,
) -> Result<(), String> {
    let url = format!("http://127.0.0.1:{port}/healthz");
    // No kept connections: each probe is what a fresh client would see.
    let client = reqwest::Client::builder()
        .pool_max_idle_per_host(0)
        .timeout(Duration::from_secs(2))
        .build()
        .expect("client");
    let deadline = Instant::now() + within;
    loop {
        if let Ok(response) = client.get(&url).send().await
            && response.status().is_success()
        {
            return Ok(());
        }
        if let Ok(Some(status)) = child.try_wait() {
            return Err(format!("the daemon exited ({status})"));
        }
        if Instant::now() >= deadline {
            return Err(format!("/healthz did not answer within {within:?}"));
        }
        tokio::time::sleep(poll).await;
    }
}
