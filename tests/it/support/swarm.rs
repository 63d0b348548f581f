//! A single-node Docker Swarm on the shared engine, made by a test and left again when
//! the test ends (also when it panics): `docker swarm init --advertise-addr 127.0.0.1`.
//!
//! Only for the serial swarm phase of `./dev test` (DW_SWARM_TESTS=1, nextest profile
//! `swarm`, one test at a time): other tests on the engine must never see a swarm come
//! and go under them. An engine that already was in a swarm is used as it is and left in
//! it; `docker_gwbridge`, which `swarm init` creates and `leave` keeps, is removed only
//! when it was not there before.

use std::process::{Command, Stdio};

use super::docker_cli;

/// The variable `./dev test` sets for the swarm phase only.
pub const SWARM_GATE: &str = "DW_SWARM_TESTS";

/// Panics (never returns early) unless the swarm phase selected this test.
pub fn require_swarm_gate() {
    assert_eq!(
        std::env::var(SWARM_GATE).as_deref(),
        Ok("1"),
        "this test makes a Docker Swarm on the shared engine and must run alone: `./dev test` \
         runs it in its serial phase ({SWARM_GATE}=1 cargo nextest run --profile swarm --tests)"
    );
}

/// The swarm state of the engine: `inactive`, `active`, …
pub fn swarm_state() -> String {
    let output = Command::new(docker_cli())
        .args(["info", "--format", "{{.Swarm.LocalNodeState}}"])
        .output()
        .expect("docker info");
    String::from_utf8_lossy(&output.stdout).trim().to_string()
}

fn network_exists(name: &str) -> bool {
    Command::new(docker_cli())
        .args(["network", "inspect", name])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

/// A swarm for the length of a test.
pub struct SwarmSession {
    made: bool,
    gwbridge_before: bool,
    /// The installation whose services are removed at the end.
    installations: Vec<String>,
}

impl SwarmSession {
    /// Makes the engine a single-node swarm manager unless it already is one.
    pub fn start() -> SwarmSession {
        require_swarm_gate();
        super::require_docker();
        let gwbridge_before = network_exists("docker_gwbridge");
        let made = swarm_state() != "active";
        if made {
            let status = Command::new(docker_cli())
                .args(["swarm", "init", "--advertise-addr", "127.0.0.1"])
                .stdout(Stdio::null())
                .status()
                .expect("docker swarm init");
            assert!(status.success(), "docker swarm init failed");
        }
        SwarmSession {
            made,
            gwbridge_before,
            installations: Vec::new(),
        }
    }

    /// Removes the services of `installation` when the session ends.
    pub fn clean_up_services_of(&mut self, installation: String) {
        self.installations.push(installation);
    }
}

impl Drop for SwarmSession {
    fn drop(&mut self) {
        for installation in &self.installations {
            let filter = format!("label=dev.docker-watcher.installation={installation}");
            if let Ok(output) = Command::new(docker_cli())
                .args(["service", "ls", "-q", "--filter", &filter])
                .output()
            {
                let ids: Vec<String> = String::from_utf8_lossy(&output.stdout)
                    .split_whitespace()
                    .map(str::to_string)
                    .collect();
                if !ids.is_empty() {
                    let _ = Command::new(docker_cli())
                        .args(["service", "rm"])
                        .args(&ids)
                        .stdout(Stdio::null())
                        .stderr(Stdio::null())
                        .status();
                }
            }
        }
        if self.made {
            let _ = Command::new(docker_cli())
                .args(["swarm", "leave", "--force"])
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .status();
            if !self.gwbridge_before {
                let _ = Command::new(docker_cli())
                    .args(["network", "rm", "docker_gwbridge"])
                    .stdout(Stdio::null())
                    .stderr(Stdio::null())
                    .status();
            }
        }
    }
}
