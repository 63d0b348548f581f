//! Following one update of a swarm service to its end, as `docker service update` does:
//! `UpdateStatus` and the tasks every [`POLL`](super::POLL), `replicas updated n/total` in
//! the deploy log, and the stage's domain kept on the tasks that serve meanwhile.

use std::collections::{BTreeSet, HashSet};
use std::time::{Duration, Instant};

use crate::docker::{Engine, EngineError, TaskInfo, UpdateState, UpdateStatus};
use crate::proxy::Upstream;
use crate::store::{DeployStatus, LogLevel};

use super::super::Inner;
use super::super::pipeline::Failure;
use super::{POLL, Route};

/// How long a deploy follows an update before it gives up on Swarm.
const FOLLOW_LIMIT: Duration = Duration::from_secs(15 * 60);

/// How an update ended, as Swarm said.
#[derive(Debug, PartialEq, Eq)]
pub(super) enum Ending {
    Completed,
    RolledBack(String),
    Paused(String),
    Failed(String),
}

impl Ending {
    /// What the deploy records: nothing more to do, or the failure and its status.
    pub(super) fn into_result(self, service: &str) -> Result<(), (Failure, DeployStatus)> {
        let (message, status) = match self {
            Ending::Completed => return Ok(()),
            Ending::RolledBack(message) => (
                format!("swarm rolled the update back: {message}"),
                DeployStatus::RolledBack,
            ),
            Ending::Paused(message) => (
                format!(
                    "swarm paused the update: {message}; look at `docker service ps {service}`"
                ),
                DeployStatus::Failed,
            ),
            Ending::Failed(message) => (message, DeployStatus::Failed),
        };
        Err((
            Failure {
                step: "update",
                message,
            },
            status,
        ))
    }
}

/// Follows one update (or creation, or rollback) of a service to its end.
pub(super) struct Follow<'a> {
    pub(super) inner: &'a Inner,
    pub(super) engine: &'a dyn Engine,
    pub(super) deploy_id: i64,
    pub(super) service: &'a str,
    /// The image every replica must run at the end.
    pub(super) image: &'a str,
    pub(super) replicas: u64,
    pub(super) monitor: Duration,
    /// The update status before ours: seen again, it is not ours.
    pub(super) baseline: Option<UpdateStatus>,
    /// We asked for Swarm's rollback: `rollback_completed` is the success.
    pub(super) swarm_rollback: bool,
    pub(super) route: Option<&'a Route>,
}

impl Follow<'_> {
    pub(super) async fn run(&self) -> Ending {
        let deadline = Instant::now() + FOLLOW_LIMIT;
        let mut shown_updated = None;
        let mut failures_seen: HashSet<String> = HashSet::new();
        let mut last_error = String::new();
        let mut settled_since: Option<Instant> = None;
        let mut routed: Option<BTreeSet<Upstream>> = None;
        let mut shown_state: Option<UpdateState> = None;
        // Swarm says why it rolls back when it starts to; at the end it only says
        // "rollback completed".
        let mut rollback_reason = String::new();
        loop {
            if Instant::now() > deadline {
                return Ending::Failed(format!(
                    "swarm did not finish within {} min; look at `docker service ps {}`",
                    FOLLOW_LIMIT.as_secs() / 60,
                    self.service
                ));
            }
            tokio::time::sleep(POLL).await;
            let info = match self.engine.inspect_service(self.service).await {
                Ok(Some(info)) => info,
                Ok(None) => {
                    return Ending::Failed(format!(
                        "the service {} was removed during the deploy",
                        self.service
                    ));
                }
                Err(EngineError::Unreachable { .. }) => continue,
                Err(e) => return Ending::Failed(e.to_string()),
            };
            let tasks = self
                .engine
                .service_tasks(self.service)
                .await
                .unwrap_or_default();
            let updated = tasks
                .iter()
                .filter(|t| t.image == self.image && t.is_serving())
                .count() as u64;
            if shown_updated != Some(updated) {
                self.log(
                    LogLevel::Info,
                    &format!("replicas updated {updated}/{}", self.replicas),
                );
                shown_updated = Some(updated);
            }
            for task in tasks.iter().filter(|t| failed(t)) {
                if failures_seen.insert(task.id.clone()) && task.image == self.image {
                    last_error = task_problem(task);
                    self.log(LogLevel::Warn, &last_error);
                }
            }
            if let Some(upstreams) = self.serving_upstreams(&tasks)
                && routed.as_ref() != Some(&upstreams)
                && self.apply_route(&upstreams).await
            {
                routed = Some(upstreams);
            }
            let ours = info.update.filter(|u| Some(u) != self.baseline.as_ref());
            let state = ours.as_ref().map(|u| u.state.clone());
            if state.is_some() && state != shown_state {
                let message = ours.as_ref().map(|u| u.message.as_str()).unwrap_or("");
                self.log(
                    LogLevel::Info,
                    &format!(
                        "swarm: {}{}",
                        state.clone().map(|s| s.to_string()).unwrap_or_default(),
                        if message.is_empty() {
                            String::new()
                        } else {
                            format!(" ({message})")
                        }
                    ),
                );
                shown_state = state.clone();
                if state == Some(UpdateState::RollbackStarted) {
                    rollback_reason = message.to_string();
                }
            }
            let all_new = updated >= self.replicas
                && tasks
                    .iter()
                    .filter(|t| t.is_serving())
                    .all(|t| t.image == self.image);
            match ours {
                None => {
                    // A creation (no update status) or a change Swarm had nothing to roll
                    // out for: done when every replica serves the image for `monitor`.
                    if all_new {
                        let since = *settled_since.get_or_insert_with(Instant::now);
                        if since.elapsed() >= self.monitor {
                            return Ending::Completed;
                        }
                    } else {
                        settled_since = None;
                    }
                    let failures = tasks
                        .iter()
                        .filter(|t| failed(t) && t.image == self.image)
                        .count() as u64;
                    if failures > self.replicas + 2 {
                        return Ending::Failed(format!(
                            "the service's tasks keep failing: {last_error}"
                        ));
                    }
                }
                Some(status) => match status.state {
                    UpdateState::Updating | UpdateState::RollbackStarted => {}
                    UpdateState::Other(_) => {}
                    UpdateState::Completed if all_new => return Ending::Completed,
                    UpdateState::Completed => {}
                    UpdateState::RollbackCompleted if self.swarm_rollback => {
                        if all_new {
                            return Ending::Completed;
                        }
                    }
                    UpdateState::RollbackCompleted => {
                        let reason = if rollback_reason.is_empty() {
                            status.message
                        } else {
                            format!("{rollback_reason}; {}", status.message)
                        };
                        return Ending::RolledBack(with_cause(&reason, &last_error));
                    }
                    UpdateState::Paused | UpdateState::RollbackPaused => {
                        return Ending::Paused(with_cause(&status.message, &last_error));
                    }
                },
            }
        }
    }

    /// Routes the stage's domain to the serving tasks now; `at_end` routes only those on
    /// the deployed image. The upstreams, or why it failed.
    pub(super) async fn route_now(&self, at_end: bool) -> Result<Vec<Upstream>, String> {
        let Some(route) = self.route else {
            return Ok(Vec::new());
        };
        let tasks = self
            .engine
            .service_tasks(self.service)
            .await
            .map_err(|e| e.to_string())?;
        let upstreams: Vec<Upstream> = tasks
            .iter()
            .filter(|t| t.is_serving() && (!at_end || t.image == self.image))
            .filter_map(|t| upstream_of(t, route.port))
            .collect();
        if self.inner.proxy().kind() == crate::store::ProxyKind::None {
            return Ok(upstreams);
        }
        self.inner
            .proxy()
            .ensure_pool(&route.domain, &upstreams)
            .await
            .map_err(|e| e.to_string())?;
        Ok(upstreams)
    }

    fn serving_upstreams(&self, tasks: &[TaskInfo]) -> Option<BTreeSet<Upstream>> {
        let route = self.route?;
        let upstreams: BTreeSet<Upstream> = tasks
            .iter()
            .filter(|t| t.is_serving())
            .filter_map(|t| upstream_of(t, route.port))
            .collect();
        (!upstreams.is_empty()).then_some(upstreams)
    }

    /// Points the domain at `upstreams` while the update runs; false when it could not.
    async fn apply_route(&self, upstreams: &BTreeSet<Upstream>) -> bool {
        let Some(route) = self.route else {
            return false;
        };
        let proxy = self.inner.proxy();
        if proxy.kind() == crate::store::ProxyKind::None {
            return true;
        }
        let list: Vec<Upstream> = upstreams.iter().cloned().collect();
        match proxy.ensure_pool(&route.domain, &list).await {
            Ok(_) => {
                self.log(
                    LogLevel::Debug,
                    &format!("{} → {}", route.domain, shown(&list)),
                );
                true
            }
            Err(e) => {
                self.log(
                    LogLevel::Warn,
                    &format!("cannot route {}: {e}", route.domain),
                );
                false
            }
        }
    }

    fn log(&self, level: LogLevel, message: &str) {
        self.inner.log(self.deploy_id, level, "update", message);
    }
}

pub(super) fn failed(task: &TaskInfo) -> bool {
    matches!(task.state.as_str(), "failed" | "rejected")
}

fn task_problem(task: &TaskInfo) -> String {
    let slot = task.slot.map(|s| format!(" {s}")).unwrap_or_default();
    match &task.error {
        Some(error) => format!("task{slot} {}: {} ({error})", task.state, task.message),
        None => format!("task{slot} {}: {}", task.state, task.message),
    }
}

pub(super) fn with_cause(message: &str, last_error: &str) -> String {
    match (message.is_empty(), last_error.is_empty()) {
        (true, true) => "no reason given".into(),
        (false, true) => message.to_string(),
        (true, false) => last_error.to_string(),
        (false, false) => format!("{message}; {last_error}"),
    }
}

pub(super) fn upstream_of(task: &TaskInfo, port: u16) -> Option<Upstream> {
    Some(Upstream {
        host: task.host.clone(),
        port: *task.ports.get(&port)?,
    })
}

pub(super) fn shown(upstreams: &[Upstream]) -> String {
    if upstreams.is_empty() {
        return "no task".into();
    }
    upstreams
        .iter()
        .map(Upstream::address)
        .collect::<Vec<_>>()
        .join(", ")
}
