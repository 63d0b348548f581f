//! Auto-creating a project for an image nobody configured: name from the image name (made
//! unique and DNS-safe), port from the image's EXPOSE, health-check path from the
//! `dev.docker-watcher.health-path` label, one stage `dev` (pattern `*`, auto-deploy,
//! max one instance). When the image cannot be inspected the project is still created,
//! with port 0 and no health check, and its events say why.
//!
//! Concurrent pushes of one new image wait for each other ([`Creations`]): the first makes
//! the project and its stage, the others then find both. At most `per_minute` projects
//! are made a minute, since each may pull an image for up to 20 s.

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crate::image_ref::ImageRef;
use crate::store::{NewProject, NewStage, Project, Store, StoreError};

/// The image label naming the HTTP health-check path.
pub const HEALTH_PATH_LABEL: &str = "dev.docker-watcher.health-path";

/// What auto-create learns from an image.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct ImageFacts {
    pub exposed_ports: Vec<u16>,
    pub labels: std::collections::BTreeMap<String, String>,
    /// The image's own HEALTHCHECK command, if any.
    pub healthcheck: Option<Vec<String>>,
}

/// Reads an image's metadata (implemented over the Docker Engine in `daemon`).
#[async_trait::async_trait]
pub trait ImageInspector: Send + Sync {
    async fn inspect(&self, image: &str) -> Result<ImageFacts, String>;
}

/// Inspects images through the Docker Engine, pulling the image first when it is not
/// local (bounded by `PULL_LIMIT`, since a webhook sender waits for the answer).
pub struct EngineInspector {
    pub engine: std::sync::Arc<dyn crate::docker::Engine>,
}

const PULL_LIMIT: std::time::Duration = std::time::Duration::from_secs(20);

#[async_trait::async_trait]
impl ImageInspector for EngineInspector {
    async fn inspect(&self, image: &str) -> Result<ImageFacts, String> {
        use crate::docker::EngineError;
        let info = match self.engine.inspect_image(image).await {
            Ok(info) => info,
            Err(EngineError::ImageNotFound { .. }) => {
                let pulled =
                    tokio::time::timeout(PULL_LIMIT, self.engine.pull(image, None, &|_| {})).await;
                match pulled {
                    Ok(Ok(())) => self
                        .engine
                        .inspect_image(image)
                        .await
                        .map_err(|e| e.to_string())?,
                    Ok(Err(e)) => return Err(format!("cannot pull it: {e}")),
                    Err(_) => {
                        return Err(format!("pulling it took over {} s", PULL_LIMIT.as_secs()));
                    }
                }
            }
            Err(e) => return Err(e.to_string()),
        };
        Ok(ImageFacts {
            exposed_ports: info.exposed_ports,
            labels: info.labels,
            healthcheck: info.healthcheck,
        })
    }
}

/// Auto-creations in progress (one lock per image) and the times of recent ones.
#[derive(Default)]
pub(super) struct Creations {
    in_progress: Mutex<HashMap<String, Arc<tokio::sync::Mutex<()>>>>,
    recent: Mutex<VecDeque<Instant>>,
}

/// The window `per_minute` counts in.
const WINDOW: Duration = Duration::from_secs(60);

impl Creations {
    /// The project for `image`, made now (`true`) or by a concurrent push (`false`);
    /// `Ok(Err(reason))` when the rate limit says no.
    pub(super) async fn create(
        &self,
        store: &Store,
        inspector: &dyn ImageInspector,
        image: &ImageRef,
        per_minute: u32,
    ) -> Result<Result<(Project, bool), String>, StoreError> {
        let name = image.name();
        let turn = {
            let mut map = lock(&self.in_progress);
            map.entry(name.clone()).or_default().clone()
        };
        let result = {
            let _turn = turn.lock().await;
            match store.find_project_by_image(&name) {
                Err(e) => Err(e),
                Ok(Some(project)) => Ok(Ok((project, false))),
                Ok(None) if !self.try_acquire(per_minute) => Ok(Err(format!(
                    "no project has this image and auto-create made {per_minute} projects in \
                     the last minute (auto_create_per_minute): push again later or create \
                     the project"
                ))),
                Ok(None) => create_project(store, inspector, image).await.map(Ok),
            }
        };
        // The last one out removes the image's lock (the map holds one reference).
        let mut map = lock(&self.in_progress);
        if Arc::strong_count(&turn) <= 2 {
            map.remove(&name);
        }
        result
    }

    /// Takes one of the minute's `per_minute` creations, if any is left.
    fn try_acquire(&self, per_minute: u32) -> bool {
        let mut recent = lock(&self.recent);
        let now = Instant::now();
        while recent
            .front()
            .is_some_and(|t| now.duration_since(*t) >= WINDOW)
        {
            recent.pop_front();
        }
        if recent.len() >= per_minute as usize {
            return false;
        }
        recent.push_back(now);
        true
    }
}

fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    // Plain maps and queues: a panic elsewhere cannot leave them half-changed.
    mutex
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// Makes the project and its `dev` stage. A concurrent creation of the same image (one
/// that bypassed [`Creations`]) is not an error: its project is used. A name taken in the
/// meantime is retried with the next free one.
async fn create_project(
    store: &Store,
    inspector: &dyn ImageInspector,
    image: &ImageRef,
) -> Result<(Project, bool), StoreError> {
    let reference = image.to_string();
    let facts = inspector.inspect(&reference).await;
    let mut attempts = 0;
    let project = loop {
        let name = unique_name(store, &base_name(image.repository()))?;
        match insert_project(store, image, name, &facts) {
            Ok(project) => break project,
            Err(StoreError::Conflict(why)) => {
                if let Some(project) = store.find_project_by_image(&image.name())? {
                    return Ok((project, false));
                }
                attempts += 1;
                if attempts >= 5 {
                    return Err(StoreError::Conflict(why));
                }
            }
            Err(e) => return Err(e),
        }
    };
    store.create_stage(&NewStage::defaults(project.id, "dev"))?;
    let (port, health_path) = (project.container_port, project.health_path.clone());
    let message = match &facts {
        Ok(facts) => {
            let mut message = format!(
                "created from a push of {reference}: port {}, health check {}",
                if port == 0 {
                    "unknown (no EXPOSE)".to_string()
                } else {
                    port.to_string()
                },
                health_path
                    .as_deref()
                    .unwrap_or("none (no health-path label)")
            );
            if let Some(check) = &facts.healthcheck {
                message.push_str(&format!("; the image's HEALTHCHECK: {}", check.join(" ")));
            }
            message
        }
        Err(e) => format!(
            "created from a push of {reference} without inspecting the image ({e}): port 0 and no health check; set them before deploying"
        ),
    };
    let level = if facts.is_ok() { "info" } else { "warn" };
    store.add_project_event(project.id, level, &message)?;
    Ok((project, true))
}

fn insert_project(
    store: &Store,
    image: &ImageRef,
    name: String,
    facts: &Result<ImageFacts, String>,
) -> Result<Project, StoreError> {
    let (port, health_path) = match facts {
        Ok(facts) => (
            facts.exposed_ports.first().copied().unwrap_or(0),
            facts
                .labels
                .get(HEALTH_PATH_LABEL)
                .filter(|p| p.starts_with('/'))
                .cloned(),
        ),
        Err(_) => (0, None),
    };
    store.create_project(&NewProject {
        name,
        image: image.name(),
        container_port: port,
        health_path,
        auto_created: true,
        ..Default::default()
    })
}

/// The last path component, lower case, with anything but letters, digits and dashes
/// turned into dashes.
fn base_name(repository: &str) -> String {
    let last = repository.rsplit('/').next().unwrap_or(repository);
    let mut name = String::new();
    for c in last.chars().flat_map(char::to_lowercase) {
        let c = if c.is_ascii_alphanumeric() { c } else { '-' };
        if !(c == '-' && name.ends_with('-')) {
            name.push(c);
        }
    }
    let name = name.trim_matches('-');
    let name: String = name.chars().take(50).collect();
    if name.is_empty() { "app".into() } else { name }
}

fn unique_name(store: &Store, base: &str) -> Result<String, StoreError> {
    let mut n = 1;
    loop {
        let candidate = if n == 1 {
            base.to_string()
        } else {
            format!("{base}-{n}")
        };
        match store.get_project_by_name(&candidate) {
            Err(StoreError::NotFound { .. }) => return Ok(candidate),
            Ok(_) => n += 1,
            Err(e) => return Err(e),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_come_from_the_last_path_component() {
        assert_eq!(base_name("acme/shop"), "shop");
        assert_eq!(base_name("acme/my_shop.web"), "my-shop-web");
        assert_eq!(base_name("library/nginx"), "nginx");
        assert_eq!(base_name("__"), "app");
    }
}
