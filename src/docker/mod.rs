//! The Docker Engine in our own words: pull, inspect, create/start/stop/remove, networks,
//! logs and listing our containers by label.
//!
//! [`Engine`] is what the deployer, the health checker and the reconciler hold (as
//! `Arc<dyn Engine>`); [`BollardEngine`] implements it over the Engine API.
//!
//! Invariant: this module is the only one that uses bollard, and no bollard type appears
//! in its public API. It translates; it never decides (no retries of deploy steps, no
//! naming policy, no choice of labels).

mod bollard_engine;
mod bollard_swarm;
mod convert;
pub mod labels;
mod logs;
pub mod swarm;

use std::collections::BTreeMap;
use std::fmt;
use std::time::Duration;

use chrono::{DateTime, Utc};

pub use bollard_engine::BollardEngine;
pub use logs::{LogLine, LogLines, LogSource, MAX_LINE_BYTES};
pub use swarm::{
    ServiceChange, ServiceHealth, ServiceInfo, ServiceSpec, SwarmRole, TaskInfo, UpdatePolicy,
    UpdateState, UpdateStatus,
};

/// What docker-watcher needs from a Docker Engine.
///
/// Every method answers [`EngineError::Unreachable`] when the daemon cannot be reached,
/// so a caller can tell "Docker is down" from "this container is gone".
#[async_trait::async_trait]
pub trait Engine: Send + Sync {
    /// The daemon's version, for `/healthz`.
    async fn version(&self) -> Result<EngineVersion, EngineError>;

    /// The API version negotiated with the daemon (what requests are sent as), e.g. `1.41`.
    async fn api_version(&self) -> Result<String, EngineError> {
        Ok(self.version().await?.api_version)
    }

    /// Pulls `image` (`host/repo:tag` or `host/repo@sha256:…`; no tag means `latest`),
    /// reporting each progress message as it arrives.
    async fn pull(
        &self,
        image: &str,
        auth: Option<&RegistryAuth>,
        progress: &(dyn Fn(PullProgress) + Send + Sync),
    ) -> Result<(), EngineError>;

    /// A local image's metadata; [`EngineError::ImageNotFound`] when it is not present.
    async fn inspect_image(&self, image: &str) -> Result<ImageInfo, EngineError>;

    /// Removes a local image by reference (untags it; its layers go with its last tag).
    /// Never forced: an image any container uses, running or not, is refused with
    /// [`EngineError::ImageInUse`]; an image that is not there is Ok. The default answers
    /// that the engine cannot, so an engine written before this method still compiles.
    async fn remove_image(&self, image: &str) -> Result<(), EngineError> {
        Err(EngineError::Other(format!(
            "this engine cannot remove images (asked to remove {image})"
        )))
    }

    /// Creates (does not start) a container; [`EngineError::NameConflict`] when the name
    /// is taken, [`EngineError::ImageNotFound`] when the image is not local.
    async fn create(&self, spec: &ContainerSpec) -> Result<ContainerId, EngineError>;

    /// Starts a created or stopped container; starting a running one is Ok.
    async fn start(&self, id: &ContainerId) -> Result<(), EngineError>;

    /// Sends the stop signal and kills after `grace`; stopping a stopped one is Ok.
    async fn stop(&self, id: &ContainerId, grace: Duration) -> Result<(), EngineError>;

    /// Removes a container and its anonymous volumes (`force` also kills a running one).
    /// Removing a container that does not exist is Ok: clean-up must be repeatable.
    async fn remove(&self, id: &ContainerId, force: bool) -> Result<(), EngineError>;

    /// Attaches a container to one more network.
    async fn connect_network(&self, id: &ContainerId, network: &str) -> Result<(), EngineError>;

    /// Creates the bridge network `name` with `labels` unless a network of that name exists.
    async fn ensure_network(
        &self,
        name: &str,
        labels: &BTreeMap<String, String>,
    ) -> Result<(), EngineError>;

    /// Removes a network; a network that does not exist is Ok.
    async fn remove_network(&self, name: &str) -> Result<(), EngineError>;

    /// A container's state, labels and published port; [`EngineError::ContainerNotFound`]
    /// when it is gone.
    async fn inspect_container(&self, id: &ContainerId) -> Result<ContainerInfo, EngineError>;

    /// The last `tail` lines of a container's stdout and stderr, interleaved as written.
    async fn logs(&self, id: &ContainerId, tail: usize) -> Result<String, EngineError>;

    /// The last `tail` lines of a container's stdout and stderr, then, with `follow`, each
    /// new line as the container writes it, until the container stops or the stream is
    /// dropped. [`EngineError::ContainerNotFound`] when the container is gone. The
    /// default answers that the engine cannot, so engines written before it still compile.
    async fn follow_logs(
        &self,
        id: &ContainerId,
        tail: usize,
        follow: bool,
    ) -> Result<LogLines, EngineError> {
        let _ = (tail, follow);
        Err(EngineError::Other(format!(
            "this engine cannot stream the logs of {id}"
        )))
    }

    /// All containers (running or not) that carry every `(key, value)` label given.
    async fn list_containers(
        &self,
        label_filters: &[(&str, &str)],
    ) -> Result<Vec<ContainerSummary>, EngineError>;

    /// Runs `command` in the running container `id` as `user` (the container's own user
    /// when `None`), like `docker exec`, and waits for it to end: its exit code and the
    /// tail of its output. The default answers that the engine cannot, so an engine
    /// written before this method still compiles.
    async fn exec(
        &self,
        id: &ContainerId,
        command: &[String],
        user: Option<&str>,
    ) -> Result<ExecOutput, EngineError> {
        let _ = (command, user);
        Err(EngineError::Other(format!(
            "this engine cannot run commands in containers (asked for {id})"
        )))
    }
    /// What this engine is in a Docker Swarm. The default: not in one.
    async fn swarm_role(&self) -> Result<SwarmRole, EngineError> {
        Ok(SwarmRole::NotInSwarm)
    }

    /// Creates the service `spec.name`, or updates it to `spec` (start-first, rolling
    /// back on failure, see [`UpdatePolicy`]). Answers at once: Swarm rolls out alone.
    async fn deploy_service(
        &self,
        spec: &ServiceSpec,
        auth: Option<&RegistryAuth>,
    ) -> Result<ServiceChange, EngineError> {
        let _ = auth;
        Err(no_swarm(&spec.name))
    }

    /// `docker service rollback`: back to the service's previous spec.
    async fn rollback_service(&self, name: &str) -> Result<(), EngineError> {
        Err(no_swarm(name))
    }

    /// Sets the service's replica count (0 stops every task, the service stays).
    async fn scale_service(&self, name: &str, replicas: u64) -> Result<(), EngineError> {
        let _ = replicas;
        Err(no_swarm(name))
    }

    /// Removes a service; one that does not exist is Ok.
    async fn remove_service(&self, name: &str) -> Result<(), EngineError> {
        Err(no_swarm(name))
    }

    /// A service by name; `None` when there is none.
    async fn inspect_service(&self, name: &str) -> Result<Option<ServiceInfo>, EngineError> {
        Err(no_swarm(name))
    }

    /// The service's tasks (the latest per slot and older ones Swarm keeps).
    async fn service_tasks(&self, name: &str) -> Result<Vec<TaskInfo>, EngineError> {
        Err(no_swarm(name))
    }
}

fn no_swarm(service: &str) -> EngineError {
    EngineError::Other(format!(
        "this engine cannot run swarm services (asked about {service})"
    ))
}

/// How a command run with [`Engine::exec`] ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExecOutput {
    pub exit_code: i64,
    /// The last few hundred bytes of its stdout and stderr, as Docker keeps for a
    /// HEALTHCHECK.
    pub output: String,
}

/// A container's own health check as Docker runs it (its image's HEALTHCHECK, or one
/// given at create), with Docker's defaults filled in.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HealthTest {
    /// What Docker runs in the container: `CMD a b` is `[a, b]`; `CMD-SHELL x` is the
    /// container's shell (by default `/bin/sh -c`) with `x`.
    pub command: Vec<String>,
    pub interval: Duration,
    pub timeout: Duration,
    pub start_period: Duration,
    pub retries: u32,
    /// The user the container runs as (Docker runs the test as it); `None`: the image's
    /// default, root.
    pub user: Option<String>,
}

/// Why an [`Engine`] call failed, split where callers act differently.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EngineError {
    /// The daemon did not answer (not running, wrong socket, timed out).
    #[error("docker unreachable ({reason}): is dockerd running? DOCKER_HOST={endpoint}")]
    Unreachable { endpoint: String, reason: String },
    /// The image (or tag) does not exist in the registry, or locally for inspect/create.
    #[error("image {image} not found: {message}")]
    ImageNotFound { image: String, message: String },
    /// The registry refused the credentials (or demanded some and got none).
    #[error("the registry refused access to {image} ({message}): check the registry credentials")]
    Unauthorized { image: String, message: String },
    /// A container (running or stopped) uses the image, so it was not removed.
    #[error("image {image} is in use by a container: {message}")]
    ImageInUse { image: String, message: String },
    /// Another container already has the name.
    #[error("a container named {name} already exists: remove it or pick another name")]
    NameConflict { name: String },
    /// The container does not exist (any more).
    #[error("container {id} not found: it was removed")]
    ContainerNotFound { id: String },
    /// Anything else the daemon said, as it said it.
    #[error("docker: {0}")]
    Other(String),
}

/// The daemon's version, as reported by `GET /version`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EngineVersion {
    /// The Engine's release, e.g. `20.10.24+dfsg1`.
    pub version: String,
    /// The newest API version the daemon speaks, e.g. `1.41`.
    pub api_version: String,
}

/// Credentials for a registry. `Debug` never shows the password.
#[derive(Clone, PartialEq, Eq)]
pub struct RegistryAuth {
    pub username: String,
    pub password: String,
}

impl fmt::Debug for RegistryAuth {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RegistryAuth")
            .field("username", &self.username)
            .field("password", &"<redacted>")
            .finish()
    }
}

/// One message of a pull; `Display` renders it as a line for the deploy log.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PullProgress {
    /// The layer (short digest) the message is about, if any.
    pub layer: Option<String>,
    /// What the daemon said, e.g. `Downloading`, `Pull complete`, `Digest: sha256:…`.
    pub status: String,
    /// Bytes done so far, when the daemon reports it.
    pub current: Option<u64>,
    /// Bytes in total, when the daemon reports it.
    pub total: Option<u64>,
}

impl fmt::Display for PullProgress {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if let Some(layer) = &self.layer {
            write!(f, "{layer}: ")?;
        }
        f.write_str(&self.status)?;
        match (self.current, self.total) {
            (Some(current), Some(total)) if total > 0 => {
                write!(f, " {} / {}", human_bytes(current), human_bytes(total))
            }
            (Some(current), _) if current > 0 => write!(f, " {}", human_bytes(current)),
            _ => Ok(()),
        }
    }
}

/// What docker-watcher reads from a local image.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImageInfo {
    /// The image id (`sha256:…`).
    pub id: String,
    /// `repo@sha256:…` entries: the registry digests this image was pulled by.
    pub repo_digests: Vec<String>,
    /// TCP ports the image EXPOSEs, ascending.
    pub exposed_ports: Vec<u16>,
    pub labels: BTreeMap<String, String>,
    /// The HEALTHCHECK test (e.g. `["CMD-SHELL", "wget -q -O- localhost/health"]`);
    /// `None` when the image has none or disables it with `HEALTHCHECK NONE`.
    pub healthcheck: Option<Vec<String>>,
    pub created: Option<DateTime<Utc>>,
}

/// A container's id (or any name Docker accepts in its place).
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ContainerId(String);

impl ContainerId {
    pub fn new(id: impl Into<String>) -> ContainerId {
        ContainerId(id.into())
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The first 12 characters, as `docker ps` shows them.
    pub fn short(&self) -> &str {
        self.0.get(..12).unwrap_or(&self.0)
    }
}

impl fmt::Display for ContainerId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl From<String> for ContainerId {
    fn from(id: String) -> ContainerId {
        ContainerId(id)
    }
}

impl From<&str> for ContainerId {
    fn from(id: &str) -> ContainerId {
        ContainerId(id.to_string())
    }
}

/// Everything needed to create a container. `Debug` shows env names, never values
/// (they may be secrets).
#[derive(Clone, PartialEq, Eq, Default)]
pub struct ContainerSpec {
    pub name: String,
    pub image: String,
    pub labels: BTreeMap<String, String>,
    pub env: Vec<(String, String)>,
    /// The TCP port the application listens on inside the container.
    pub container_port: Option<u16>,
    pub publish: Publish,
    /// Set as the container's network mode at create (a network joined after start
    /// would leave the container on `bridge` too).
    pub network: Option<String>,
    pub restart_policy: RestartPolicy,
    /// Bind mounts and volumes, `source:destination[:ro]`.
    pub volumes: Vec<String>,
    pub memory_bytes: Option<i64>,
    /// CPU limit in billionths of a CPU (`1_500_000_000` = 1.5 CPUs).
    pub nano_cpus: Option<i64>,
    /// Run an init process as PID 1 (it forwards signals and reaps zombies).
    pub init: bool,
    /// The image's health check run this often during this start period (API 1.44+;
    /// the image's test, interval, timeout and retries stay as they are).
    pub health_start: Option<HealthStart>,
}

/// A health check's start period and the interval of its runs during it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HealthStart {
    pub period: Duration,
    pub interval: Duration,
}

impl fmt::Debug for ContainerSpec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let env_names: Vec<&str> = self.env.iter().map(|(name, _)| name.as_str()).collect();
        f.debug_struct("ContainerSpec")
            .field("name", &self.name)
            .field("image", &self.image)
            .field("labels", &self.labels)
            .field("env", &env_names)
            .field("container_port", &self.container_port)
            .field("publish", &self.publish)
            .field("network", &self.network)
            .field("restart_policy", &self.restart_policy)
            .field("volumes", &self.volumes)
            .field("memory_bytes", &self.memory_bytes)
            .field("nano_cpus", &self.nano_cpus)
            .field("init", &self.init)
            .field("health_start", &self.health_start)
            .finish()
    }
}

/// Whether and how the container port is published on the host.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Publish {
    /// Bind the container port to `127.0.0.1` on a random free host port (see
    /// [`ContainerInfo::loopback_port`]). Needs [`ContainerSpec::container_port`].
    #[default]
    Loopback,
    /// Publish nothing (the container is reached over a Docker network).
    None,
}

/// What Docker does when the container's process exits.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum RestartPolicy {
    #[default]
    No,
    UnlessStopped,
    OnFailure {
        max_retries: u32,
    },
}

/// A container as inspected.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ContainerInfo {
    pub id: ContainerId,
    /// Without Docker's leading `/`.
    pub name: String,
    /// The image reference the container was created from.
    pub image: String,
    /// The image id (`sha256:…`) the container runs.
    pub image_id: String,
    /// The container's labels (the image's labels included, as Docker merges them).
    pub labels: BTreeMap<String, String>,
    pub state: ContainerState,
    /// The `127.0.0.1` host port bound to the container's (lowest) published TCP port;
    /// `None` before start and when nothing is published on loopback.
    pub loopback_port: Option<u16>,
    /// Every TCP port published on `127.0.0.1`: container port → host port.
    pub loopback_ports: BTreeMap<u16, u16>,
    /// Names of the networks the container is attached to.
    pub networks: Vec<String>,
    /// Its own health check, when it has one that runs a command.
    pub healthcheck: Option<HealthTest>,
}

/// A container's run state.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ContainerState {
    pub status: ContainerStatus,
    pub running: bool,
    /// The last exit code (0 while it never exited).
    pub exit_code: i64,
    /// How often Docker restarted it under its restart policy.
    pub restart_count: i64,
    pub started_at: Option<DateTime<Utc>>,
    /// The HEALTHCHECK's verdict; `None` when the container has no HEALTHCHECK.
    pub health: Option<DockerHealth>,
    pub oom_killed: bool,
    /// Docker's error starting the container, if any.
    pub error: Option<String>,
}

/// Docker's container status words.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ContainerStatus {
    Created,
    Running,
    Paused,
    Restarting,
    Removing,
    Exited,
    Dead,
    /// A word this version does not know.
    Other(String),
}

impl ContainerStatus {
    /// Whether the container's process is gone (exited or dead).
    pub fn has_stopped(&self) -> bool {
        matches!(self, ContainerStatus::Exited | ContainerStatus::Dead)
    }
}

impl fmt::Display for ContainerStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            ContainerStatus::Created => "created",
            ContainerStatus::Running => "running",
            ContainerStatus::Paused => "paused",
            ContainerStatus::Restarting => "restarting",
            ContainerStatus::Removing => "removing",
            ContainerStatus::Exited => "exited",
            ContainerStatus::Dead => "dead",
            ContainerStatus::Other(word) => word,
        })
    }
}

/// The status of a container's own HEALTHCHECK.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DockerHealth {
    Starting,
    Healthy,
    Unhealthy,
}

impl fmt::Display for DockerHealth {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            DockerHealth::Starting => "starting",
            DockerHealth::Healthy => "healthy",
            DockerHealth::Unhealthy => "unhealthy",
        })
    }
}

/// A container as listed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ContainerSummary {
    pub id: ContainerId,
    /// Without Docker's leading `/`.
    pub name: String,
    pub labels: BTreeMap<String, String>,
    pub state: ContainerStatus,
    pub image: String,
}

/// `1536` → `1.5 KB`: pull progress for people.
fn human_bytes(bytes: u64) -> String {
    const UNITS: [&str; 4] = ["B", "KB", "MB", "GB"];
    let mut value = bytes as f64;
    let mut unit = 0;
    while value >= 1000.0 && unit < UNITS.len() - 1 {
        value /= 1000.0;
        unit += 1;
    }
    if unit == 0 {
        format!("{bytes} B")
    } else {
        format!("{value:.1} {}", UNITS[unit])
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn progress_line_shows_layer_status_and_sizes() {
        let progress = PullProgress {
            layer: Some("a1b2c3d4e5f6".into()),
            status: "Downloading".into(),
            current: Some(1_200_000),
            total: Some(3_400_000),
        };
        assert_eq!(
            progress.to_string(),
            "a1b2c3d4e5f6: Downloading 1.2 MB / 3.4 MB"
        );
    }

    #[test]
    fn progress_line_without_layer_or_sizes_is_the_status() {
        let progress = PullProgress {
            layer: None,
            status: "Digest: sha256:abc".into(),
            current: None,
            total: None,
        };
        assert_eq!(progress.to_string(), "Digest: sha256:abc");
    }

    #[test]
    fn registry_auth_debug_hides_the_password() {
        let auth = RegistryAuth {
            username: "ci".into(),
            password: "hunter2".into(),
        };
        let shown = format!("{auth:?}");
        assert!(shown.contains("ci"), "{shown}");
        assert!(!shown.contains("hunter2"), "{shown}");
    }

    #[test]
    fn container_spec_debug_shows_env_names_not_values() {
        let spec = ContainerSpec {
            env: vec![("DB_PASSWORD".into(), "hunter2".into())],
            ..Default::default()
        };
        let shown = format!("{spec:?}");
        assert!(shown.contains("DB_PASSWORD"), "{shown}");
        assert!(!shown.contains("hunter2"), "{shown}");
    }

    #[test]
    fn short_id_is_twelve_characters_or_the_whole_id() {
        assert_eq!(ContainerId::new("0123456789abcdef").short(), "0123456789ab");
        assert_eq!(ContainerId::new("abc").short(), "abc");
    }

    #[test]
    fn human_bytes_uses_decimal_units() {
        assert_eq!(human_bytes(999), "999 B");
        assert_eq!(human_bytes(1_500), "1.5 KB");
        assert_eq!(human_bytes(2_000_000_000), "2.0 GB");
    }
}
