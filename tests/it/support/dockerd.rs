//! Restarting the local Docker Engine the way `./dev services` starts it (`nohup dockerd`,
//! removing a stale pid file). Only for tests that run alone: `./dev test` runs them in a
//! serial phase after everything else (see .config/nextest.toml), because every other test
//! on the engine would fail while it is down.

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use super::docker_cli;

/// The variable `./dev test` sets for the serial phase only.
pub const RESTART_GATE: &str = "DW_FAULTS_RESTART_DOCKER";

const PID_FILE: &str = "/var/run/docker.pid";

/// Panics (never returns early) unless the serial phase selected this test: restarting
/// the shared engine while other tests run would break them.
pub fn require_restart_gate() {
    assert_eq!(
        std::env::var(RESTART_GATE).as_deref(),
        Ok("1"),
        "this test restarts the Docker Engine and must run alone: `./dev test` runs it in \
         its serial phase ({RESTART_GATE}=1 cargo nextest run --profile docker-restart --tests)"
    );
}

/// Stops dockerd (SIGTERM, as `systemctl restart docker` would), waits until it is gone,
/// starts it again and waits until it answers.
pub async fn restart_dockerd() {
    let pid = std::fs::read_to_string(PID_FILE)
        .unwrap_or_else(|e| panic!("read {PID_FILE}: {e} (is dockerd running?)"));
    let pid = pid.trim().to_string();
    let status = Command::new("kill")
        .args(["-TERM", &pid])
        .status()
        .expect("kill");
    assert!(status.success(), "kill -TERM {pid}");
    let proc_dir = format!("/proc/{pid}");
    wait_until("dockerd to stop", || {
        !std::path::Path::new(&proc_dir).exists()
    })
    .await;
    // A pid file left by a dockerd that died keeps the next one from starting.
    if std::fs::read_to_string(PID_FILE).is_ok_and(|p| p.trim() == pid) {
        let _ = std::fs::remove_file(PID_FILE);
    }
    let status = Command::new("sh")
        .args([
            "-c",
            // Its own session: nextest may signal the test's process group when it ends.
            "setsid nohup dockerd >>/var/log/dockerd.log 2>&1 </dev/null &",
        ])
        .status()
        .expect("start dockerd");
    assert!(status.success(), "start dockerd");
    wait_until("dockerd to answer", engine_answers).await;
}

/// Whether `docker info` works.
pub fn engine_answers() -> bool {
    Command::new(docker_cli())
        .arg("info")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

async fn wait_until(what: &str, done: impl Fn() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(90);
    while !done() {
        assert!(Instant::now() < deadline, "waited 90 s for {what}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}
