//! Auto-creating a project for an image nobody configured: name from the image name (made
//! unique and DNS-safe), port from the image's EXPOSE, health-check path from the
//! `dev.docker-watcher.health-path` label, one stage `dev` (pattern `*`, auto-deploy,
//! max one instance). When the image cannot be inspected the project is still created,
//! with port 0 and no health check, and its events say why.

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

pub(super) async fn create_project(
    store: &Store,
    inspector: &dyn ImageInspector,
    image: &ImageRef,
) -> Result<Project, StoreError> {
    let reference = image.to_string();
    let facts = inspector.inspect(&reference).await;
    let name = unique_name(store, &base_name(image.repository()))?;
    let (port, health_path) = match &facts {
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
    let project = store.create_project(&NewProject {
        name,
        image: image.name(),
        container_port: port,
        health_path: health_path.clone(),
        auto_created: true,
        ..Default::default()
    })?;
    store.create_stage(&NewStage::defaults(project.id, "dev"))?;
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
    Ok(project)
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
