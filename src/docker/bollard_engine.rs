//! [`Engine`] over the Docker Engine API with bollard.
//!
//! Connecting never touches the daemon: the client is built and the API version
//! negotiated on first use, and again on every use until that succeeds. So the daemon
//! starts while Docker is down, `/healthz` says "docker unreachable", and everything
//! works once dockerd is up, without a restart. Negotiation matters: bollard speaks API
//! 1.53 and Debian's dockerd 1.41, which refuses versions newer than its own.
//!
//! Endpoints: `unix:///path/docker.sock` (or a bare path), `tcp://host:port` and
//! `http://host:port` (plain HTTP; TLS endpoints are not supported).

use std::collections::{BTreeMap, HashMap};
use std::error::Error as StdError;
use std::time::Duration;

use base64::Engine as _;
use bollard::Docker;
use bollard::container::LogOutput;
use bollard::errors::Error as BollardError;
use bollard::models::{NetworkConnectRequest, NetworkCreateRequest};
use bollard::query_parameters::{
    CreateContainerOptionsBuilder, CreateImageOptionsBuilder, InspectContainerOptions,
    InspectNetworkOptions, ListContainersOptionsBuilder, LogsOptionsBuilder,
    RemoveContainerOptionsBuilder, RemoveImageOptionsBuilder, StopContainerOptionsBuilder,
};
use futures_util::StreamExt;
use tokio::sync::{Mutex, OnceCell};

use super::convert;
use super::logs::frame_lines;
use super::{
    ContainerId, ContainerInfo, ContainerSpec, ContainerSummary, Engine, EngineError,
    EngineVersion, ExecOutput, ImageInfo, LogLines, LogSource, PullProgress, RegistryAuth,
};
use crate::errors::error_chain;

/// The socket Docker listens on by default.
const DEFAULT_ENDPOINT: &str = "unix:///var/run/docker.sock";
/// How long one request may wait for the daemon's answer (headers; streams run on).
const REQUEST_TIMEOUT: Duration = Duration::from_secs(120);
/// How much of an exec's output is kept (the end of it).
const EXEC_OUTPUT_LIMIT: usize = 4096;
/// How long a version answer is reused: `/healthz` asks on every call (load balancers,
/// uptime checks, the start-up probe), and Docker takes tens of milliseconds to answer
/// under load. A failure is never reused, so "unreachable" shows at once.
const VERSION_FRESH: Duration = Duration::from_secs(1);

/// An [`Engine`] talking to one Docker daemon.
pub struct BollardEngine {
    endpoint: String,
    client: OnceCell<Docker>,
    /// Serialises `ensure_network`: daemons before API 1.44 create a second network
    /// of the same name instead of refusing.
    network_lock: Mutex<()>,
    /// The last successful version answer and when it came.
    version_seen: std::sync::Mutex<Option<(std::time::Instant, EngineVersion)>>,
}

impl BollardEngine {
    /// An engine for `endpoint`, or `DOCKER_HOST`, or the local socket. Does not contact
    /// the daemon (see the module header); fails only for an endpoint it cannot use.
    pub fn connect(endpoint: Option<&str>) -> Result<BollardEngine, EngineError> {
        let endpoint = match endpoint {
            Some(endpoint) => endpoint.to_string(),
            None => std::env::var("DOCKER_HOST")
                .ok()
                .filter(|host| !host.trim().is_empty())
                .unwrap_or_else(|| DEFAULT_ENDPOINT.to_string()),
        };
        let endpoint = if endpoint.starts_with('/') {
            format!("unix://{endpoint}")
        } else {
            endpoint
        };
        let supported = ["unix://", "tcp://", "http://"];
        if !supported.iter().any(|scheme| endpoint.starts_with(scheme)) {
            return Err(EngineError::Other(format!(
                "unsupported docker endpoint {endpoint}: use unix:///path/to/docker.sock or tcp://host:port"
            )));
        }
        Ok(BollardEngine {
            endpoint,
            client: OnceCell::new(),
            network_lock: Mutex::new(()),
            version_seen: std::sync::Mutex::new(None),
        })
    }

    /// The endpoint in use, e.g. `unix:///var/run/docker.sock`.
    pub fn endpoint(&self) -> &str {
        &self.endpoint
    }

    /// The negotiated client, built on first use.
    pub(super) async fn client(&self) -> Result<&Docker, EngineError> {
        self.client
            .get_or_try_init(|| async {
                let timeout = REQUEST_TIMEOUT.as_secs();
                let version = bollard::API_DEFAULT_VERSION;
                let docker = if self.endpoint.starts_with("unix://") {
                    Docker::connect_with_unix(&self.endpoint, timeout, version)
                } else {
                    Docker::connect_with_http(&self.endpoint, timeout, version)
                }
                .map_err(|e| self.error(e, other))?;
                docker
                    .negotiate_version()
                    .await
                    .map_err(|e| self.error(e, other))
            })
            .await
    }

    /// Our error for a bollard error: transport failures are `Unreachable`; a status
    /// answer from the daemon goes through `on_status`.
    pub(super) fn error(
        &self,
        error: BollardError,
        on_status: impl FnOnce(u16, String) -> EngineError,
    ) -> EngineError {
        translate(&self.endpoint, error, on_status)
    }
}

/// [`BollardEngine::error`] where the engine is not at hand (inside a stream).
fn translate(
    endpoint: &str,
    error: BollardError,
    on_status: impl FnOnce(u16, String) -> EngineError,
) -> EngineError {
    match error {
        BollardError::DockerResponseServerError {
            status_code,
            message,
        } => on_status(status_code, message),
        BollardError::SocketNotFoundError(path) => EngineError::Unreachable {
            endpoint: endpoint.to_string(),
            reason: format!("no socket at {path}"),
        },
        BollardError::RequestTimeoutError => EngineError::Unreachable {
            endpoint: endpoint.to_string(),
            reason: format!("no answer within {} s", REQUEST_TIMEOUT.as_secs()),
        },
        error @ (BollardError::IOError { .. }
        | BollardError::HyperLegacyError { .. }
        | BollardError::HyperResponseError { .. }) => EngineError::Unreachable {
            endpoint: endpoint.to_string(),
            reason: root_cause(&error),
        },
        error => EngineError::Other(error_chain(&error)),
    }
}

#[async_trait::async_trait]
impl Engine for BollardEngine {
    async fn swarm_role(&self) -> Result<super::SwarmRole, EngineError> {
        self.swarm_role_impl().await
    }

    async fn deploy_service(
        &self,
        spec: &super::ServiceSpec,
        auth: Option<&RegistryAuth>,
    ) -> Result<super::ServiceChange, EngineError> {
        self.deploy_service_impl(spec, auth).await
    }

    async fn rollback_service(&self, name: &str) -> Result<(), EngineError> {
        self.rollback_service_impl(name).await
    }

    async fn scale_service(&self, name: &str, replicas: u64) -> Result<(), EngineError> {
        self.scale_service_impl(name, replicas).await
    }

    async fn remove_service(&self, name: &str) -> Result<(), EngineError> {
        self.remove_service_impl(name).await
    }

    async fn inspect_service(&self, name: &str) -> Result<Option<super::ServiceInfo>, EngineError> {
        self.inspect_service_impl(name).await
    }

    async fn service_tasks(&self, name: &str) -> Result<Vec<super::TaskInfo>, EngineError> {
        self.service_tasks_impl(name).await
    }

    async fn version(&self) -> Result<EngineVersion, EngineError> {
        let seen = self
            .version_seen
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone();
        if let Some((at, version)) = seen
            && at.elapsed() < VERSION_FRESH
        {
            return Ok(version);
        }
        let version = self
            .client()
            .await?
            .version()
            .await
            .map_err(|e| self.error(e, other))?;
        let version = EngineVersion {
            version: version.version.unwrap_or_default(),
            api_version: version.api_version.unwrap_or_default(),
        };
        *self
            .version_seen
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner) =
            Some((std::time::Instant::now(), version.clone()));
        Ok(version)
    }

    async fn api_version(&self) -> Result<String, EngineError> {
        let version = self.client().await?.client_version();
        Ok(format!(
            "{}.{}",
            version.major_version, version.minor_version
        ))
    }

    async fn pull(
        &self,
        image: &str,
        auth: Option<&RegistryAuth>,
        progress: &(dyn Fn(PullProgress) + Send + Sync),
    ) -> Result<(), EngineError> {
        let (reference, registry) = convert::pull_reference(image);
        let mut docker = self.client().await?.clone();
        if let Some(auth) = auth {
            // bollard encodes X-Registry-Auth with the standard base64 alphabet, but
            // dockerd decodes the URL-safe one and silently drops credentials it cannot
            // decode (a password with `?` or `~` would then look like "no credentials").
            let header = registry_auth_header(auth, &registry);
            docker = docker.with_request_modifier(move |mut request| {
                if let Ok(value) = header.parse() {
                    request.headers_mut().insert("X-Registry-Auth", value);
                }
                request
            });
        }
        let options = CreateImageOptionsBuilder::default()
            .from_image(&reference)
            .build();
        let password = auth.map(|auth| auth.password.as_str());
        let mut stream = docker.create_image(Some(options), None, None);
        while let Some(message) = stream.next().await {
            match message {
                Ok(info) => {
                    if let Some(line) = convert::pull_progress(info) {
                        progress(line);
                    }
                }
                Err(BollardError::DockerStreamError { error }) => {
                    return Err(pull_failure(&reference, None, &error, password));
                }
                Err(error) => {
                    return Err(self.error(error, |status, message| {
                        pull_failure(&reference, Some(status), &message, password)
                    }));
                }
            }
        }
        Ok(())
    }

    async fn inspect_image(&self, image: &str) -> Result<ImageInfo, EngineError> {
        let inspect = self
            .client()
            .await?
            .inspect_image(image)
            .await
            .map_err(|e| {
                self.error(e, |status, message| match status {
                    404 => EngineError::ImageNotFound {
                        image: image.to_string(),
                        message,
                    },
                    _ => EngineError::Other(message),
                })
            })?;
        Ok(convert::image_info(inspect))
    }

    async fn remove_image(&self, image: &str) -> Result<(), EngineError> {
        let options = RemoveImageOptionsBuilder::default()
            .force(false)
            .noprune(false)
            .build();
        let result = self
            .client()
            .await?
            .remove_image(image, Some(options), None)
            .await;
        match result {
            Ok(_) => Ok(()),
            Err(BollardError::DockerResponseServerError {
                status_code: 404, ..
            }) => Ok(()),
            Err(error) => Err(self.error(error, |status, message| match status {
                409 => EngineError::ImageInUse {
                    image: image.to_string(),
                    message,
                },
                _ => EngineError::Other(message),
            })),
        }
    }

    async fn create(&self, spec: &ContainerSpec) -> Result<ContainerId, EngineError> {
        let options = CreateContainerOptionsBuilder::default()
            .name(&spec.name)
            .build();
        let created = self
            .client()
            .await?
            .create_container(Some(options), convert::create_body(spec))
            .await
            .map_err(|e| {
                self.error(e, |status, message| match status {
                    409 => EngineError::NameConflict {
                        name: spec.name.clone(),
                    },
                    404 => EngineError::ImageNotFound {
                        image: spec.image.clone(),
                        message,
                    },
                    _ => EngineError::Other(message),
                })
            })?;
        Ok(ContainerId::new(created.id))
    }

    async fn start(&self, id: &ContainerId) -> Result<(), EngineError> {
        self.client()
            .await?
            .start_container(id.as_str(), None)
            .await
            // A 404 here can also be the network named at create.
            .map_err(|e| self.error(e, |status, message| container_404(id, status, message)))
    }

    async fn stop(&self, id: &ContainerId, grace: Duration) -> Result<(), EngineError> {
        let seconds = i32::try_from(grace.as_secs()).unwrap_or(i32::MAX);
        let options = StopContainerOptionsBuilder::default().t(seconds).build();
        // The daemon answers only once the container is down, up to `grace` later.
        let docker = self
            .client()
            .await?
            .clone()
            .with_timeout(REQUEST_TIMEOUT.max(grace + Duration::from_secs(30)));
        docker
            .stop_container(id.as_str(), Some(options))
            .await
            .map_err(|e| self.error(e, |status, message| any_404(id, status, message)))
    }

    async fn remove(&self, id: &ContainerId, force: bool) -> Result<(), EngineError> {
        let options = RemoveContainerOptionsBuilder::default()
            .force(force)
            .v(true)
            .build();
        let result = self
            .client()
            .await?
            .remove_container(id.as_str(), Some(options))
            .await;
        match result {
            Ok(()) => Ok(()),
            Err(BollardError::DockerResponseServerError {
                status_code: 404, ..
            }) => Ok(()),
            // Someone else is already removing it: the outcome is the one we want.
            Err(BollardError::DockerResponseServerError {
                status_code: 409,
                message,
            }) if message.contains("already in progress") => Ok(()),
            Err(error) => Err(self.error(error, |status, message| any_404(id, status, message))),
        }
    }

    async fn connect_network(&self, id: &ContainerId, network: &str) -> Result<(), EngineError> {
        let request = NetworkConnectRequest {
            container: id.to_string(),
            endpoint_config: None,
        };
        let result = self.client().await?.connect_network(network, request).await;
        match result {
            Ok(()) => Ok(()),
            // Already attached: the outcome is the one asked for.
            Err(BollardError::DockerResponseServerError { message, .. })
                if message.contains("already exists in network") =>
            {
                Ok(())
            }
            Err(error) => {
                Err(self.error(error, |status, message| container_404(id, status, message)))
            }
        }
    }

    async fn ensure_network(
        &self,
        name: &str,
        labels: &BTreeMap<String, String>,
    ) -> Result<(), EngineError> {
        let _guard = self.network_lock.lock().await;
        let docker = self.client().await?;
        match docker
            .inspect_network(name, None::<InspectNetworkOptions>)
            .await
        {
            Ok(_) => return Ok(()),
            Err(BollardError::DockerResponseServerError {
                status_code: 404, ..
            }) => {}
            Err(error) => return Err(self.error(error, other)),
        }
        let request = NetworkCreateRequest {
            name: name.to_string(),
            driver: Some("bridge".to_string()),
            labels: Some(labels.iter().map(|(k, v)| (k.clone(), v.clone())).collect()),
            ..Default::default()
        };
        match docker.create_network(request).await {
            Ok(_) => Ok(()),
            // Created meanwhile by another process (newer daemons refuse duplicates).
            Err(BollardError::DockerResponseServerError {
                status_code: 409, ..
            }) => Ok(()),
            Err(error) => Err(self.error(error, other)),
        }
    }

    async fn remove_network(&self, name: &str) -> Result<(), EngineError> {
        match self.client().await?.remove_network(name).await {
            Ok(()) => Ok(()),
            Err(BollardError::DockerResponseServerError {
                status_code: 404, ..
            }) => Ok(()),
            Err(error) => Err(self.error(error, other)),
        }
    }

    async fn inspect_container(&self, id: &ContainerId) -> Result<ContainerInfo, EngineError> {
        let inspect = self
            .client()
            .await?
            .inspect_container(id.as_str(), None::<InspectContainerOptions>)
            .await
            .map_err(|e| self.error(e, |status, message| any_404(id, status, message)))?;
        Ok(convert::container_info(inspect))
    }

    async fn logs(&self, id: &ContainerId, tail: usize) -> Result<String, EngineError> {
        let options = LogsOptionsBuilder::default()
            .stdout(true)
            .stderr(true)
            .tail(&tail.to_string())
            .build();
        let docker = self.client().await?;
        let mut stream = docker.logs(id.as_str(), Some(options));
        let mut text = String::new();
        while let Some(chunk) = stream.next().await {
            let chunk =
                chunk.map_err(|e| self.error(e, |status, message| any_404(id, status, message)))?;
            text.push_str(&String::from_utf8_lossy(chunk.as_ref()));
        }
        Ok(last_lines(&text, tail))
    }

    async fn follow_logs(
        &self,
        id: &ContainerId,
        tail: usize,
        follow: bool,
    ) -> Result<LogLines, EngineError> {
        // Ask once before streaming, so a missing container is an error the caller can
        // answer with (a stream's first item may take as long as the container is quiet).
        self.inspect_container(id).await?;
        let options = LogsOptionsBuilder::default()
            .stdout(true)
            .stderr(true)
            .timestamps(true)
            .follow(follow)
            .tail(&tail.to_string())
            .build();
        let docker = self.client().await?.clone();
        let endpoint = self.endpoint.clone();
        let id = id.clone();
        let frames = docker.logs(id.as_str(), Some(options));
        let lines = frames.flat_map(move |frame| {
            let lines = match frame {
                Ok(LogOutput::StdErr { message }) => Ok(frame_lines(LogSource::Stderr, &message)),
                Ok(
                    LogOutput::StdOut { message }
                    | LogOutput::Console { message }
                    | LogOutput::StdIn { message },
                ) => Ok(frame_lines(LogSource::Stdout, &message)),
                Err(e) => Err(translate(&endpoint, e, |status, message| {
                    any_404(&id, status, message)
                })),
            };
            futures_util::stream::iter(match lines {
                Ok(lines) => lines.into_iter().map(Ok).collect::<Vec<_>>(),
                Err(e) => vec![Err(e)],
            })
        });
        Ok(lines.boxed())
    }

    async fn list_containers(
        &self,
        label_filters: &[(&str, &str)],
    ) -> Result<Vec<ContainerSummary>, EngineError> {
        let labels: Vec<String> = label_filters
            .iter()
            .map(|(key, value)| format!("{key}={value}"))
            .collect();
        let mut options = ListContainersOptionsBuilder::default().all(true);
        if !labels.is_empty() {
            options = options.filters(&HashMap::from([("label", labels)]));
        }
        let options = options.build();
        let summaries = self
            .client()
            .await?
            .list_containers(Some(options))
            .await
            .map_err(|e| self.error(e, other))?;
        Ok(summaries
            .into_iter()
            .map(convert::container_summary)
            .collect())
    }

    async fn exec(
        &self,
        id: &ContainerId,
        command: &[String],
        user: Option<&str>,
    ) -> Result<ExecOutput, EngineError> {
        let docker = self.client().await?;
        let created = docker
            .create_exec(
                id.as_str(),
                bollard::exec::CreateExecOptions {
                    cmd: Some(command.to_vec()),
                    user: user.map(str::to_string),
                    attach_stdout: Some(true),
                    attach_stderr: Some(true),
                    ..Default::default()
                },
            )
            .await
            .map_err(|e| self.error(e, |status, message| any_404(id, status, message)))?;
        let started = docker
            .start_exec(&created.id, None)
            .await
            .map_err(|e| self.error(e, |status, message| any_404(id, status, message)))?;
        let mut output = Vec::new();
        if let bollard::exec::StartExecResults::Attached {
            output: mut stream, ..
        } = started
        {
            while let Some(chunk) = stream.next().await {
                let chunk = chunk.map_err(|e| self.error(e, other))?;
                output.extend_from_slice(chunk.as_ref());
                // Docker keeps 4 KiB of a health check's output; so do we.
                if output.len() > 2 * EXEC_OUTPUT_LIMIT {
                    output.drain(..output.len() - EXEC_OUTPUT_LIMIT);
                }
            }
        }
        let inspected = docker
            .inspect_exec(&created.id)
            .await
            .map_err(|e| self.error(e, other))?;
        let start = output.len().saturating_sub(EXEC_OUTPUT_LIMIT);
        Ok(ExecOutput {
            // An exec whose process could not start reports no code: treat it as failed.
            exit_code: inspected.exit_code.unwrap_or(-1),
            output: String::from_utf8_lossy(&output[start..])
                .trim_end()
                .to_string(),
        })
    }
}

/// The daemon's message as it is, for answers no caller branches on.
pub(super) fn other(_status: u16, message: String) -> EngineError {
    EngineError::Other(message)
}

/// A 404 about this container means it is gone.
fn any_404(id: &ContainerId, status: u16, message: String) -> EngineError {
    match status {
        404 => EngineError::ContainerNotFound { id: id.to_string() },
        _ => EngineError::Other(message),
    }
}

/// Like [`any_404`], for calls where a 404 may name something else (a network).
fn container_404(id: &ContainerId, status: u16, message: String) -> EngineError {
    if status == 404 && message.to_lowercase().contains("no such container") {
        EngineError::ContainerNotFound { id: id.to_string() }
    } else {
        EngineError::Other(message)
    }
}

/// Sorts a failed pull into not-found, unauthorized or other, from the status (when the
/// daemon refused before streaming) and the registry's words, with the password (should
/// the registry ever echo it) blanked out.
fn pull_failure(
    image: &str,
    status: Option<u16>,
    message: &str,
    password: Option<&str>,
) -> EngineError {
    let message = match password {
        Some(password) if !password.is_empty() => message.replace(password, "<redacted>"),
        _ => message.to_string(),
    };
    let lower = message.to_lowercase();
    let image = image.to_string();
    let says_unauthorized = [
        "unauthorized",
        "authentication required",
        "no basic auth credentials",
    ]
    .iter()
    .any(|words| lower.contains(words));
    let says_not_found = ["manifest unknown", "not found", "name unknown"]
        .iter()
        .any(|words| lower.contains(words));
    if status == Some(404) || (says_not_found && !says_unauthorized) {
        EngineError::ImageNotFound { image, message }
    } else if matches!(status, Some(401 | 403)) || says_unauthorized {
        EngineError::Unauthorized { image, message }
    } else {
        EngineError::Other(message)
    }
}

/// `X-Registry-Auth`: the credentials as JSON, URL-safe base64 as dockerd decodes it.
pub(super) fn registry_auth_header(auth: &RegistryAuth, server: &str) -> String {
    let json = serde_json::json!({
        "username": auth.username,
        "password": auth.password,
        "serveraddress": server,
    });
    base64::engine::general_purpose::URL_SAFE.encode(json.to_string())
}

/// The innermost cause (`Connection refused (os error 111)`): the layers above it are
/// the HTTP client's plumbing.
fn root_cause(error: &(dyn StdError + 'static)) -> String {
    let mut cause = error;
    while let Some(source) = cause.source() {
        cause = source;
    }
    cause.to_string()
}

/// The last `count` lines of `text`.
fn last_lines(text: &str, count: usize) -> String {
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(count)..].join("\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn connect_accepts_unix_tcp_http_and_bare_paths() {
        for endpoint in [
            "unix:///var/run/docker.sock",
            "tcp://127.0.0.1:2375",
            "http://localhost:2375",
        ] {
            let engine = BollardEngine::connect(Some(endpoint)).unwrap();
            assert_eq!(engine.endpoint(), endpoint);
        }
        let engine = BollardEngine::connect(Some("/run/docker.sock")).unwrap();
        assert_eq!(engine.endpoint(), "unix:///run/docker.sock");
    }

    #[test]
    fn connect_refuses_endpoints_it_cannot_use() {
        let error = BollardEngine::connect(Some("ssh://host")).err().unwrap();
        assert!(
            error
                .to_string()
                .contains("unsupported docker endpoint ssh://host"),
            "{error}"
        );
    }

    #[test]
    fn pull_failures_are_sorted_by_status_then_words() {
        let missing = pull_failure(
            "r/app:nope",
            Some(404),
            "manifest for r/app:nope not found: manifest unknown: manifest unknown",
            None,
        );
        assert!(
            matches!(missing, EngineError::ImageNotFound { .. }),
            "{missing:?}"
        );
        let streamed = pull_failure("r/app:nope", None, "manifest unknown", None);
        assert!(
            matches!(streamed, EngineError::ImageNotFound { .. }),
            "{streamed:?}"
        );
        let refused = pull_failure(
            "r/app:1",
            Some(500),
            "Head \"http://r/v2/app/manifests/1\": no basic auth credentials",
            None,
        );
        assert!(
            matches!(refused, EngineError::Unauthorized { .. }),
            "{refused:?}"
        );
        let down = pull_failure("r/app:1", Some(500), "dial tcp: connection refused", None);
        assert!(matches!(down, EngineError::Other(_)), "{down:?}");
    }

    #[test]
    fn pull_failure_never_repeats_the_password() {
        let error = pull_failure("r/app:1", Some(401), "bad login s3cret!", Some("s3cret!"));
        assert!(!error.to_string().contains("s3cret!"), "{error}");
    }

    #[test]
    fn registry_auth_header_is_url_safe_base64_json() {
        let auth = RegistryAuth {
            username: "ci".into(),
            password: "??~~>>".into(),
        };
        let header = registry_auth_header(&auth, "127.0.0.1:5000");
        assert!(!header.contains('+') && !header.contains('/'), "{header}");
        let decoded = base64::engine::general_purpose::URL_SAFE
            .decode(&header)
            .unwrap();
        let json: serde_json::Value = serde_json::from_slice(&decoded).unwrap();
        assert_eq!(json["password"], "??~~>>");
        assert_eq!(json["serveraddress"], "127.0.0.1:5000");
    }

    #[test]
    fn last_lines_keeps_the_tail() {
        assert_eq!(last_lines("a\nb\nc\n", 2), "b\nc");
        assert_eq!(last_lines("a\n", 5), "a");
        assert_eq!(last_lines("", 5), "");
    }
}
