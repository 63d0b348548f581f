//! The label keys docker-watcher stamps on the containers and networks it creates.
//!
//! They are how the reconciler finds what belongs to us after a crash, and how
//! `Engine::list_containers` filters. This module only names keys; the deployer decides
//! what values go in them.

/// Present with the value [`MANAGED_VALUE`] on everything docker-watcher created.
pub const MANAGED: &str = "dev.docker-watcher.managed";
/// The value of [`MANAGED`].
pub const MANAGED_VALUE: &str = "true";
/// The project's name.
pub const PROJECT: &str = "dev.docker-watcher.project";
/// The stage's name within the project.
pub const STAGE: &str = "dev.docker-watcher.stage";
/// The instance's id in the store.
pub const INSTANCE: &str = "dev.docker-watcher.instance";
/// The id of the deploy that created the container.
pub const DEPLOY: &str = "dev.docker-watcher.deploy";
/// The image tag the container runs.
pub const TAG: &str = "dev.docker-watcher.tag";
/// The installation (store) that created the container: reconciliation only touches its own.
pub const INSTALLATION: &str = "dev.docker-watcher.installation";
/// An image label naming the HTTP health-check path (e.g. `/health`); read, never set.
pub const HEALTH_PATH: &str = "dev.docker-watcher.health-path";
/// On a swarm stage's service: the image of the spec the last update replaced, which is
/// what Swarm's rollback goes back to while that update stands.
pub const PREVIOUS_IMAGE: &str = "dev.docker-watcher.previous-image";
