//! Containers as the deployer sees them: the few things a deploy, a retirement and a
//! reconciliation do to the Docker Engine, in one small trait ([`Containers`]).
//!
//! [`DockerContainers`] is the real one, over [`docker::Engine`](crate::docker::Engine);
//! the deployer's unit tests use an in-memory fake (`fakes.rs`). The health wait is part of
//! the trait because it is one deploy step: the Docker side probes the container for real
//! ([`health::wait_healthy`]); a fake answers at once.
//!
//! Invariant: no policy here; the method names are the Engine's, so code written against
//! the Engine reads the same.

use std::sync::Arc;
use std::time::Duration;

use crate::docker::{
    ContainerId, ContainerInfo, ContainerSpec, ContainerSummary, Engine, EngineError, ImageInfo,
    PullProgress, RegistryAuth,
};
use crate::health::{self, Attempt, HealthError, HealthPolicy, HealthProbe, Healthy};

/// What the deployer needs from a container runtime. Held as `Arc<dyn Containers>`.
#[async_trait::async_trait]
pub trait Containers: Send + Sync {
    /// Pulls `image` (`host/repo:tag`), reporting progress as it arrives.
    async fn pull(
        &self,
        image: &str,
        auth: Option<&RegistryAuth>,
        progress: &(dyn Fn(PullProgress) + Send + Sync),
    ) -> Result<(), EngineError>;

    /// A local image's metadata (the deployer reads its registry digests).
    async fn inspect_image(&self, image: &str) -> Result<ImageInfo, EngineError>;

    /// The API version negotiated with the runtime; an old one (`1.41`) by default.
    async fn api_version(&self) -> Result<String, EngineError> {
        Ok("1.41".to_string())
    }

    /// Removes a local image by reference, never forced: an image a container (ours or
    /// not, running or not) uses is refused with [`EngineError::ImageInUse`].
    async fn remove_image(&self, image: &str) -> Result<(), EngineError>;

    async fn create(&self, spec: &ContainerSpec) -> Result<ContainerId, EngineError>;

    async fn start(&self, id: &ContainerId) -> Result<(), EngineError>;

    /// Sends the stop signal and kills after `grace`.
    async fn stop(&self, id: &ContainerId, grace: Duration) -> Result<(), EngineError>;

    /// Removes a container; one that does not exist is Ok.
    async fn remove(&self, id: &ContainerId, force: bool) -> Result<(), EngineError>;

    async fn inspect_container(&self, id: &ContainerId) -> Result<ContainerInfo, EngineError>;

    /// The last `tail` lines of a container's output.
    async fn logs(&self, id: &ContainerId, tail: usize) -> Result<String, EngineError>;

    /// Containers carrying every `(key, value)` label given.
    async fn list_containers(
        &self,
        label_filters: &[(&str, &str)],
    ) -> Result<Vec<ContainerSummary>, EngineError>;

    /// The Docker Engine underneath, for what only it does (Swarm services); `None` for
    /// runtimes that are not Docker (the unit tests' fake).
    fn docker(&self) -> Option<Arc<dyn Engine>> {
        None
    }

    /// Waits until `id` is healthy by `probe`, or fails (see [`health::wait_healthy`]).
    async fn wait_healthy(
        &self,
        id: &ContainerId,
        probe: &HealthProbe,
        policy: &HealthPolicy,
        on_attempt: &(dyn for<'a> Fn(&'a Attempt) + Send + Sync),
    ) -> Result<Healthy, HealthError>;
}

/// [`Containers`] on a real Docker Engine.
pub struct DockerContainers(pub Arc<dyn Engine>);

#[async_trait::async_trait]
impl Containers for DockerContainers {
    fn docker(&self) -> Option<Arc<dyn Engine>> {
        Some(self.0.clone())
    }

    async fn pull(
        &self,
        image: &str,
        auth: Option<&RegistryAuth>,
        progress: &(dyn Fn(PullProgress) + Send + Sync),
    ) -> Result<(), EngineError> {
        self.0.pull(image, auth, progress).await
    }

    async fn api_version(&self) -> Result<String, EngineError> {
        self.0.api_version().await
    }

    async fn inspect_image(&self, image: &str) -> Result<ImageInfo, EngineError> {
        self.0.inspect_image(image).await
    }

    async fn remove_image(&self, image: &str) -> Result<(), EngineError> {
        self.0.remove_image(image).await
    }

    async fn create(&self, spec: &ContainerSpec) -> Result<ContainerId, EngineError> {
        self.0.create(spec).await
    }

    async fn start(&self, id: &ContainerId) -> Result<(), EngineError> {
        self.0.start(id).await
    }

    async fn stop(&self, id: &ContainerId, grace: Duration) -> Result<(), EngineError> {
        self.0.stop(id, grace).await
    }

    async fn remove(&self, id: &ContainerId, force: bool) -> Result<(), EngineError> {
        self.0.remove(id, force).await
    }

    async fn inspect_container(&self, id: &ContainerId) -> Result<ContainerInfo, EngineError> {
        self.0.inspect_container(id).await
    }

    async fn logs(&self, id: &ContainerId, tail: usize) -> Result<String, EngineError> {
        self.0.logs(id, tail).await
    }

    async fn list_containers(
        &self,
        label_filters: &[(&str, &str)],
    ) -> Result<Vec<ContainerSummary>, EngineError> {
        self.0.list_containers(label_filters).await
    }

    async fn wait_healthy(
        &self,
        id: &ContainerId,
        probe: &HealthProbe,
        policy: &HealthPolicy,
        on_attempt: &(dyn for<'a> Fn(&'a Attempt) + Send + Sync),
    ) -> Result<Healthy, HealthError> {
        health::wait_healthy(self.0.as_ref(), id, probe, policy, |a: &Attempt| {
            on_attempt(a)
        })
        .await
    }
}
