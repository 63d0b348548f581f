//! Shared test support: real services on 127.0.0.1 (registry, daemon), unique names,
//! and label-based clean-up of what tests create on the shared Docker Engine.

#![allow(dead_code)]

pub mod app;
pub mod caddy;
pub mod containers;
pub mod daemon_process;
pub mod deploy;
pub mod dockerd;
pub mod fault_proxy;
pub mod google_tokens;
pub mod invariants;
pub mod npm_fake;
pub mod project_cli;
pub mod registry;
pub mod self_signed;
pub mod serve_child;
pub mod swarm;

use std::net::TcpListener;
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};

/// Label put on every container, network and image a test creates, so clean-up can find
/// them even after a crashed test. The daemon's own labels come on top of it.
pub const TEST_LABEL: &str = "dev.docker-watcher.test";

/// Local images built by `./dev services`.
pub const HEALTHY_IMAGE: &str = "dw-test/app:healthy";
pub const SLOW_IMAGE: &str = "dw-test/app:slow";
pub const CRASH_IMAGE: &str = "dw-test/app:crash";
pub const UNHEALTHY_IMAGE: &str = "dw-test/app:unhealthy";
/// The healthy app with its own `HEALTHCHECK --interval=30s` (wget /health).
pub const HEALTHCHECK_IMAGE: &str = "dw-test/app:healthcheck";
/// The unhealthy app (/health answers 404) with the same HEALTHCHECK.
pub const HEALTHCHECK_UNHEALTHY_IMAGE: &str = "dw-test/app:healthcheck-unhealthy";

/// A port that was free a moment ago on 127.0.0.1.
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("bind a free port")
}

/// A name no other test (in this or a parallel process) uses: `prefix-<pid>-<n>-<rand>`.
pub fn unique_name(prefix: &str) -> String {
    static COUNTER: AtomicU32 = AtomicU32::new(0);
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    let random: u32 = rand::random();
    format!(
        "{prefix}-{}-{n}-{:06x}",
        std::process::id(),
        random & 0xff_ffff
    )
}

/// The Docker CLI that matches the daemon (Debian's, when installed).
pub fn docker_cli() -> &'static str {
    if std::path::Path::new("/usr/bin/docker").exists() {
        "/usr/bin/docker"
    } else {
        "docker"
    }
}

/// Whether the Docker Engine answers. Under CI a missing engine is a failure, never a
/// silent pass; on a developer machine without Docker the calling test panics too, with
/// the command that fixes it.
pub fn require_docker() {
    let ok = Command::new(docker_cli())
        .args(["info", "--format", "{{.ServerVersion}}"])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .map(|s| s.success())
        .unwrap_or(false);
    if !ok {
        panic!(
            "this test needs a running Docker Engine (CI={}): run `./dev services` first",
            std::env::var("CI").unwrap_or_default()
        );
    }
}

/// Removes every container that carries `label=value` (forcefully, volumes too).
pub fn remove_containers_labelled(label: &str, value: &str) {
    let output = Command::new(docker_cli())
        .args(["ps", "-aq", "--filter", &format!("label={label}={value}")])
        .output()
        .expect("docker ps");
    let ids: Vec<String> = String::from_utf8_lossy(&output.stdout)
        .split_whitespace()
        .map(str::to_string)
        .collect();
    if !ids.is_empty() {
        let _ = Command::new(docker_cli())
            .args(["rm", "-f", "-v"])
            .args(&ids)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status();
    }
}

/// Removes (untags, forcefully) every local image whose `repository:tag` starts with
/// `prefix`, such as the images pulled from a per-test registry at `127.0.0.1:PORT/`.
pub fn remove_images_with_prefix(prefix: &str) {
    let Ok(output) = Command::new(docker_cli())
        .args(["images", "--format", "{{.Repository}}:{{.Tag}}"])
        .output()
    else {
        return;
    };
    let ours: Vec<String> = String::from_utf8_lossy(&output.stdout)
        .lines()
        .filter(|image| image.starts_with(prefix))
        .map(str::to_string)
        .collect();
    if !ours.is_empty() {
        let _ = Command::new(docker_cli())
            .args(["rmi", "-f"])
            .args(&ours)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status();
    }
}
