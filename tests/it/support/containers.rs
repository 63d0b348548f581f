//! Containers, networks and images a test makes on the shared Docker Engine, removed
//! when the test ends (passed or panicked) by a [`TestScope`] guard.

use std::collections::BTreeMap;
use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex};

use docker_watcher::docker::{BollardEngine, ContainerSpec, Engine, Publish};

use super::{TEST_LABEL, docker_cli, remove_containers_labelled, require_docker, unique_name};

/// The engine under test, on the local daemon.
pub fn engine() -> Arc<dyn Engine> {
    require_docker();
    Arc::new(BollardEngine::connect(None).expect("connect to the local Docker Engine"))
}

/// One test's share of the Docker Engine: a unique value for [`TEST_LABEL`], names made
/// from it, and clean-up of everything labelled with it (plus tracked images) on drop.
pub struct TestScope {
    pub value: String,
    images: Mutex<Vec<String>>,
}

impl TestScope {
    pub fn new(prefix: &str) -> TestScope {
        TestScope {
            value: unique_name(prefix),
            images: Mutex::new(Vec::new()),
        }
    }

    /// A container or network name unique to this scope.
    pub fn name(&self, suffix: &str) -> String {
        format!("{}-{suffix}", self.value)
    }

    /// The test label, to put on everything the test creates.
    pub fn labels(&self) -> BTreeMap<String, String> {
        BTreeMap::from([(TEST_LABEL.to_string(), self.value.clone())])
    }

    /// A spec for `image` named `suffix`, labelled, with port 8080 on 127.0.0.1.
    pub fn spec(&self, suffix: &str, image: &str) -> ContainerSpec {
        ContainerSpec {
            name: self.name(suffix),
            image: image.to_string(),
            labels: self.labels(),
            container_port: Some(8080),
            publish: Publish::Loopback,
            ..Default::default()
        }
    }

    /// Removes `image` from the local store when the scope ends (pulled test images).
    pub fn track_image(&self, image: &str) {
        self.images
            .lock()
            .expect("image list")
            .push(image.to_string());
    }
}

impl Drop for TestScope {
    fn drop(&mut self) {
        remove_containers_labelled(TEST_LABEL, &self.value);
        let networks = Command::new(docker_cli())
            .args([
                "network",
                "ls",
                "-q",
                "--filter",
                &format!("label={TEST_LABEL}={}", self.value),
            ])
            .output()
            .map(|output| String::from_utf8_lossy(&output.stdout).to_string())
            .unwrap_or_default();
        for network in networks.split_whitespace() {
            quiet(&["network", "rm", network]);
        }
        let images = std::mem::take(&mut *self.images.lock().unwrap_or_else(|e| e.into_inner()));
        for image in images {
            quiet(&["rmi", &image]);
        }
    }
}

/// `docker inspect --format FORMAT target`, trimmed; for what the Engine API types hide.
pub fn docker_inspect(format: &str, target: &str) -> String {
    let output = Command::new(docker_cli())
        .args(["inspect", "--format", format, target])
        .output()
        .expect("docker inspect");
    assert!(
        output.status.success(),
        "docker inspect {target}: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8_lossy(&output.stdout).trim().to_string()
}

fn quiet(args: &[&str]) {
    let _ = Command::new(docker_cli())
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status();
}
