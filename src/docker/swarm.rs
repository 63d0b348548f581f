//! Docker Swarm services in our own words: what a stage with the `swarm` target asks of the
//! engine (create or update a service, roll it back, scale it, remove it) and what it
//! reads back (the update's state, the tasks and the host ports they publish).
//!
//! The calls themselves are [`Engine`](super::Engine) methods (implemented in
//! `bollard_swarm.rs`); these are their argument and answer types. Nothing here decides:
//! the deployer picks the update order, the health check and when to roll back.

use std::collections::BTreeMap;
use std::fmt;
use std::time::Duration;

use chrono::{DateTime, Utc};

/// What this engine is in a swarm.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SwarmRole {
    /// Not part of a swarm (`docker swarm init` makes it a manager).
    NotInSwarm,
    /// A worker: it runs tasks but cannot create or update services.
    Worker,
    /// A manager: services can be created and updated through it.
    Manager {
        /// This node's id, to tell local tasks (reached on 127.0.0.1) from others.
        node_id: String,
    },
    /// Joining, leaving or in error, as Docker says.
    Other(String),
}

/// A replicated service as we create or update it.
#[derive(Clone, PartialEq, Eq, Default)]
pub struct ServiceSpec {
    pub name: String,
    /// `host/repo:tag@sha256:…`: pinned by digest, so every node runs the same image.
    pub image: String,
    /// On the service (not its containers: our container labels would make
    /// reconciliation take the tasks for orphans).
    pub labels: BTreeMap<String, String>,
    pub env: Vec<(String, String)>,
    /// Published in host mode on a port Docker picks per task.
    pub container_port: Option<u16>,
    pub replicas: u64,
    /// Placement constraints, as `docker service create --constraint` takes them.
    pub constraints: Vec<String>,
    pub update: UpdatePolicy,
    /// `None`: the image's own HEALTHCHECK (if any) gates the update.
    pub health: Option<ServiceHealth>,
    pub memory_bytes: Option<i64>,
    pub nano_cpus: Option<i64>,
}

impl fmt::Debug for ServiceSpec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let env_names: Vec<&str> = self.env.iter().map(|(name, _)| name.as_str()).collect();
        f.debug_struct("ServiceSpec")
            .field("name", &self.name)
            .field("image", &self.image)
            .field("labels", &self.labels)
            .field("env", &env_names)
            .field("container_port", &self.container_port)
            .field("replicas", &self.replicas)
            .field("constraints", &self.constraints)
            .field("update", &self.update)
            .field("health", &self.health)
            .finish()
    }
}

/// How Swarm rolls an update out (and back): always start-first, rolling back on failure.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct UpdatePolicy {
    /// Tasks updated at once (0: all).
    pub parallelism: u64,
    /// Pause between batches.
    pub delay: Duration,
    /// How long each updated task is watched for failure.
    pub monitor: Duration,
}

/// A Swarm health check (`HEALTHCHECK` in the service's task template).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServiceHealth {
    /// `["CMD-SHELL", "…"]` or `["CMD", …]`.
    pub test: Vec<String>,
    pub interval: Duration,
    pub timeout: Duration,
    pub start_period: Duration,
    pub retries: u32,
}

/// How creating or updating a service went.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServiceChange {
    pub id: String,
    /// Whether the service was created (first deploy) rather than updated.
    pub created: bool,
    /// What Docker warned about (an image it could not resolve on every node, …).
    pub warnings: Vec<String>,
}

/// A service as inspected.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServiceInfo {
    pub id: String,
    pub name: String,
    /// The image of the current spec.
    pub image: String,
    pub labels: BTreeMap<String, String>,
    pub replicas: u64,
    /// The last update (or rollback), if the service was ever updated.
    pub update: Option<UpdateStatus>,
}

/// `UpdateStatus` of a service: where its last update or rollback is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UpdateStatus {
    pub state: UpdateState,
    pub message: String,
    pub started_at: Option<DateTime<Utc>>,
}

/// Swarm's update states, as `docker service inspect` shows them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum UpdateState {
    Updating,
    Paused,
    Completed,
    RollbackStarted,
    RollbackPaused,
    RollbackCompleted,
    /// Anything newer than we know.
    Other(String),
}

impl fmt::Display for UpdateState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            UpdateState::Updating => "updating",
            UpdateState::Paused => "paused",
            UpdateState::Completed => "completed",
            UpdateState::RollbackStarted => "rollback_started",
            UpdateState::RollbackPaused => "rollback_paused",
            UpdateState::RollbackCompleted => "rollback_completed",
            UpdateState::Other(other) => other,
        })
    }
}

/// One task of a service.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TaskInfo {
    pub id: String,
    pub slot: Option<i64>,
    /// The image of the spec the task runs.
    pub image: String,
    /// `running`, `starting` (health check pending), `failed`, `shutdown`, …
    pub state: String,
    pub desired_state: String,
    /// Docker's message and error, e.g. `task: non-zero exit (1)`.
    pub message: String,
    pub error: Option<String>,
    /// Where the task's published ports are reached: `127.0.0.1` for this node, the node's
    /// address for others.
    pub host: String,
    /// Container port → published host port (host mode).
    pub ports: BTreeMap<u16, u16>,
}

impl TaskInfo {
    /// Running (and, with a health check, healthy: Swarm keeps it `starting` until then)
    /// and meant to keep running.
    pub fn is_serving(&self) -> bool {
        self.state == "running" && self.desired_state == "running"
    }
}
