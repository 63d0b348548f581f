//! The Swarm half of [`BollardEngine`]: services and tasks over the Engine API, translated
//! to and from `swarm.rs`'s types. Updates always send the whole spec with the version
//! just read (Swarm refuses a stale version, as `docker service update` would retry).

use std::collections::{BTreeMap, HashMap};

use bollard::Docker;
use bollard::models::{
    EndpointPortConfig, EndpointPortConfigProtocolEnum, EndpointPortConfigPublishModeEnum,
    EndpointSpec, HealthConfig, Limit, LocalNodeState, Service, ServiceSpecMode,
    ServiceSpecModeReplicated, ServiceSpecRollbackConfig,
    ServiceSpecRollbackConfigFailureActionEnum, ServiceSpecRollbackConfigOrderEnum,
    ServiceSpecUpdateConfig, ServiceSpecUpdateConfigFailureActionEnum,
    ServiceSpecUpdateConfigOrderEnum, ServiceUpdateStatusStateEnum, Task, TaskSpec,
    TaskSpecContainerSpec, TaskSpecPlacement, TaskSpecResources,
};
use bollard::query_parameters::{
    InspectServiceOptions, ListNodesOptions, ListTasksOptions, UpdateServiceOptions,
};

use super::bollard_engine::{BollardEngine, other, registry_auth_header};
use super::swarm::{
    ServiceChange, ServiceInfo, ServiceSpec, SwarmRole, TaskInfo, UpdateState, UpdateStatus,
};
use super::{EngineError, RegistryAuth, convert};

impl BollardEngine {
    pub(super) async fn swarm_role_impl(&self) -> Result<SwarmRole, EngineError> {
        let info = self
            .client()
            .await?
            .info()
            .await
            .map_err(|e| self.error(e, other))?;
        let Some(swarm) = info.swarm else {
            return Ok(SwarmRole::NotInSwarm);
        };
        Ok(match swarm.local_node_state {
            None | Some(LocalNodeState::INACTIVE) | Some(LocalNodeState::EMPTY) => {
                SwarmRole::NotInSwarm
            }
            Some(LocalNodeState::ACTIVE) if swarm.control_available == Some(true) => {
                SwarmRole::Manager {
                    node_id: swarm.node_id.unwrap_or_default(),
                }
            }
            Some(LocalNodeState::ACTIVE) => SwarmRole::Worker,
            Some(state) => SwarmRole::Other(match swarm.error.filter(|e| !e.is_empty()) {
                Some(error) => format!("{state}: {error}"),
                None => state.to_string(),
            }),
        })
    }

    pub(super) async fn inspect_service_impl(
        &self,
        name: &str,
    ) -> Result<Option<ServiceInfo>, EngineError> {
        Ok(self.raw_service(name).await?.map(|s| service_info(&s)))
    }

    pub(super) async fn deploy_service_impl(
        &self,
        spec: &ServiceSpec,
        auth: Option<&RegistryAuth>,
    ) -> Result<ServiceChange, EngineError> {
        let docker = self.with_auth(&spec.image, auth).await?;
        let body = service_spec(spec);
        match self.raw_service(&spec.name).await? {
            None => {
                let created = docker
                    .create_service(body, None)
                    .await
                    .map_err(|e| self.error(e, other))?;
                Ok(ServiceChange {
                    id: created.id.unwrap_or_default(),
                    created: true,
                    warnings: created.warnings.unwrap_or_default(),
                })
            }
            Some(current) => {
                let id = current.id.clone().unwrap_or_default();
                let updated = docker
                    .update_service(&id, body, update_options(&current, None), None)
                    .await
                    .map_err(|e| self.error(e, other))?;
                Ok(ServiceChange {
                    id,
                    created: false,
                    warnings: updated.warnings.unwrap_or_default(),
                })
            }
        }
    }

    pub(super) async fn rollback_service_impl(&self, name: &str) -> Result<(), EngineError> {
        let current = self.existing(name).await?;
        let spec = current.spec.clone().unwrap_or_default();
        let id = current.id.clone().unwrap_or_default();
        self.client()
            .await?
            .update_service(
                &id,
                spec,
                update_options(&current, Some("previous".into())),
                None,
            )
            .await
            .map_err(|e| self.error(e, other))?;
        Ok(())
    }

    pub(super) async fn scale_service_impl(
        &self,
        name: &str,
        replicas: u64,
    ) -> Result<(), EngineError> {
        let current = self.existing(name).await?;
        let mut spec = current.spec.clone().unwrap_or_default();
        spec.mode = Some(replicated(replicas));
        let id = current.id.clone().unwrap_or_default();
        self.client()
            .await?
            .update_service(&id, spec, update_options(&current, None), None)
            .await
            .map_err(|e| self.error(e, other))?;
        Ok(())
    }

    pub(super) async fn remove_service_impl(&self, name: &str) -> Result<(), EngineError> {
        match self.client().await?.delete_service(name).await {
            Ok(()) => Ok(()),
            Err(e) => match self.error(e, |status, message| {
                if status == 404 {
                    EngineError::Other(String::new())
                } else {
                    EngineError::Other(message)
                }
            }) {
                EngineError::Other(message) if message.is_empty() => Ok(()),
                e => Err(e),
            },
        }
    }

    pub(super) async fn service_tasks_impl(
        &self,
        name: &str,
    ) -> Result<Vec<TaskInfo>, EngineError> {
        let docker = self.client().await?;
        let filters = HashMap::from([("service".to_string(), vec![name.to_string()])]);
        let tasks = docker
            .list_tasks(Some(ListTasksOptions {
                filters: Some(filters),
            }))
            .await
            .map_err(|e| self.error(e, other))?;
        let local = match self.swarm_role_impl().await? {
            SwarmRole::Manager { node_id } => node_id,
            _ => String::new(),
        };
        let mut hosts: HashMap<String, String> = HashMap::new();
        if tasks
            .iter()
            .any(|t| t.node_id.as_deref().is_some_and(|n| n != local))
        {
            let nodes = docker
                .list_nodes(None::<ListNodesOptions>)
                .await
                .map_err(|e| self.error(e, other))?;
            for node in nodes {
                if let (Some(id), Some(addr)) = (node.id, node.status.and_then(|s| s.addr)) {
                    hosts.insert(id, addr);
                }
            }
        }
        Ok(tasks
            .iter()
            .map(|task| {
                let node = task.node_id.clone().unwrap_or_default();
                let host = if node == local || node.is_empty() {
                    "127.0.0.1".to_string()
                } else {
                    hosts.get(&node).cloned().unwrap_or(node)
                };
                task_info(task, host)
            })
            .collect())
    }

    /// The service, or `None` when Docker has no service of that name.
    async fn raw_service(&self, name: &str) -> Result<Option<Service>, EngineError> {
        match self
            .client()
            .await?
            .inspect_service(name, None::<InspectServiceOptions>)
            .await
        {
            Ok(service) => Ok(Some(service)),
            Err(e) => match self.error(e, |status, message| {
                if status == 404 {
                    EngineError::Other(String::new())
                } else {
                    EngineError::Other(message)
                }
            }) {
                EngineError::Other(message) if message.is_empty() => Ok(None),
                e => Err(e),
            },
        }
    }

    async fn existing(&self, name: &str) -> Result<Service, EngineError> {
        self.raw_service(name).await?.ok_or_else(|| {
            EngineError::Other(format!(
                "there is no swarm service {name}: deploy the stage first"
            ))
        })
    }

    /// A client that sends the registry credentials with the request, so every node can
    /// pull (`--with-registry-auth`).
    async fn with_auth(
        &self,
        image: &str,
        auth: Option<&RegistryAuth>,
    ) -> Result<Docker, EngineError> {
        let mut docker = self.client().await?.clone();
        if let Some(auth) = auth {
            let (_, registry) = convert::pull_reference(image);
            let header = registry_auth_header(auth, &registry);
            docker = docker.with_request_modifier(move |mut request| {
                if let Ok(value) = header.parse() {
                    request.headers_mut().insert("X-Registry-Auth", value);
                }
                request
            });
        }
        Ok(docker)
    }
}

fn update_options(current: &Service, rollback: Option<String>) -> UpdateServiceOptions {
    let version = current
        .version
        .as_ref()
        .and_then(|v| v.index)
        .unwrap_or_default();
    UpdateServiceOptions {
        version: i32::try_from(version).unwrap_or(i32::MAX),
        // Keep the credentials the spec was last sent with unless new ones come along.
        registry_auth_from: "spec".into(),
        rollback,
    }
}

fn replicated(replicas: u64) -> ServiceSpecMode {
    ServiceSpecMode {
        replicated: Some(ServiceSpecModeReplicated {
            replicas: Some(i64::try_from(replicas).unwrap_or(i64::MAX)),
        }),
        ..Default::default()
    }
}

fn nanos(duration: std::time::Duration) -> i64 {
    i64::try_from(duration.as_nanos()).unwrap_or(i64::MAX)
}

fn service_spec(spec: &ServiceSpec) -> bollard::models::ServiceSpec {
    let env: Vec<String> = spec.env.iter().map(|(k, v)| format!("{k}={v}")).collect();
    let parallelism = i64::try_from(spec.update.parallelism).unwrap_or(1);
    let monitor = nanos(spec.update.monitor);
    bollard::models::ServiceSpec {
        name: Some(spec.name.clone()),
        labels: Some(spec.labels.clone().into_iter().collect()),
        task_template: Some(TaskSpec {
            container_spec: Some(TaskSpecContainerSpec {
                image: Some(spec.image.clone()),
                env: Some(env),
                health_check: spec.health.as_ref().map(|h| HealthConfig {
                    test: Some(h.test.clone()),
                    interval: Some(nanos(h.interval)),
                    timeout: Some(nanos(h.timeout)),
                    retries: Some(i64::from(h.retries)),
                    start_period: Some(nanos(h.start_period)),
                    start_interval: None,
                }),
                ..Default::default()
            }),
            resources: (spec.memory_bytes.is_some() || spec.nano_cpus.is_some()).then(|| {
                TaskSpecResources {
                    limits: Some(Limit {
                        nano_cpus: spec.nano_cpus,
                        memory_bytes: spec.memory_bytes,
                        pids: None,
                    }),
                    ..Default::default()
                }
            }),
            placement: Some(TaskSpecPlacement {
                constraints: Some(spec.constraints.clone()),
                ..Default::default()
            }),
            ..Default::default()
        }),
        mode: Some(replicated(spec.replicas)),
        update_config: Some(ServiceSpecUpdateConfig {
            parallelism: Some(parallelism),
            delay: Some(nanos(spec.update.delay)),
            failure_action: Some(ServiceSpecUpdateConfigFailureActionEnum::ROLLBACK),
            monitor: Some(monitor),
            max_failure_ratio: Some(0.0),
            order: Some(ServiceSpecUpdateConfigOrderEnum::START_FIRST),
        }),
        rollback_config: Some(ServiceSpecRollbackConfig {
            parallelism: Some(parallelism),
            delay: Some(0),
            failure_action: Some(ServiceSpecRollbackConfigFailureActionEnum::PAUSE),
            monitor: Some(monitor),
            max_failure_ratio: Some(0.0),
            order: Some(ServiceSpecRollbackConfigOrderEnum::START_FIRST),
        }),
        networks: None,
        endpoint_spec: Some(EndpointSpec {
            mode: None,
            ports: spec.container_port.map(|port| {
                vec![EndpointPortConfig {
                    name: None,
                    protocol: Some(EndpointPortConfigProtocolEnum::TCP),
                    target_port: Some(i64::from(port)),
                    // None: Docker picks a free port per task, so replicas share a node.
                    published_port: None,
                    publish_mode: Some(EndpointPortConfigPublishModeEnum::HOST),
                }]
            }),
        }),
    }
}

fn service_info(service: &Service) -> ServiceInfo {
    let spec = service.spec.clone().unwrap_or_default();
    let image = spec
        .task_template
        .as_ref()
        .and_then(|t| t.container_spec.as_ref())
        .and_then(|c| c.image.clone())
        .unwrap_or_default();
    let replicas = spec
        .mode
        .as_ref()
        .and_then(|m| m.replicated.as_ref())
        .and_then(|r| r.replicas)
        .and_then(|r| u64::try_from(r).ok())
        .unwrap_or(0);
    let update = service.update_status.as_ref().and_then(|status| {
        let state = match status.state? {
            ServiceUpdateStatusStateEnum::EMPTY => return None,
            ServiceUpdateStatusStateEnum::UPDATING => UpdateState::Updating,
            ServiceUpdateStatusStateEnum::PAUSED => UpdateState::Paused,
            ServiceUpdateStatusStateEnum::COMPLETED => UpdateState::Completed,
            ServiceUpdateStatusStateEnum::ROLLBACK_STARTED => UpdateState::RollbackStarted,
            ServiceUpdateStatusStateEnum::ROLLBACK_PAUSED => UpdateState::RollbackPaused,
            ServiceUpdateStatusStateEnum::ROLLBACK_COMPLETED => UpdateState::RollbackCompleted,
        };
        Some(UpdateStatus {
            state,
            message: status.message.clone().unwrap_or_default(),
            started_at: status
                .started_at
                .as_deref()
                .and_then(|at| chrono::DateTime::parse_from_rfc3339(at).ok())
                .map(|at| at.with_timezone(&chrono::Utc)),
        })
    });
    ServiceInfo {
        id: service.id.clone().unwrap_or_default(),
        name: spec.name.clone().unwrap_or_default(),
        image,
        labels: spec
            .labels
            .clone()
            .unwrap_or_default()
            .into_iter()
            .collect(),
        replicas,
        update,
    }
}

fn task_info(task: &Task, host: String) -> TaskInfo {
    let status = task.status.clone().unwrap_or_default();
    // On a host with IPv6, Docker 20.10 publishes a host-mode port twice, on 0.0.0.0 and on
    // ::, and may give the two different numbers; the task lists both, the IPv4 one first,
    // without saying which is which. The first is kept: the node is reached by its IPv4
    // address, and the second number answers on IPv6 only.
    let mut ports: BTreeMap<u16, u16> = BTreeMap::new();
    for port in status.port_status.and_then(|p| p.ports).unwrap_or_default() {
        if let (Some(target), Some(published)) = (
            port.target_port.and_then(|p| u16::try_from(p).ok()),
            port.published_port.and_then(|p| u16::try_from(p).ok()),
        ) {
            ports.entry(target).or_insert(published);
        }
    }
    TaskInfo {
        id: task.id.clone().unwrap_or_default(),
        slot: task.slot,
        image: task
            .spec
            .as_ref()
            .and_then(|s| s.container_spec.as_ref())
            .and_then(|c| c.image.clone())
            .unwrap_or_default(),
        state: status.state.map(|s| s.to_string()).unwrap_or_default(),
        desired_state: task
            .desired_state
            .map(|s| s.to_string())
            .unwrap_or_default(),
        message: status.message.unwrap_or_default(),
        error: status.err.filter(|e| !e.is_empty()),
        host,
        ports,
    }
}

#[cfg(test)]
mod tests {
    use bollard::models::{EndpointPortConfig, Task, TaskStatus};

    /// Seen on Docker 20.10 with IPv6: a host-mode port published on 0.0.0.0:32793 and
    /// on [::]:32791. The route went to 127.0.0.1:32791, where nothing listens (502).
    #[test]
    fn a_port_published_twice_is_reached_by_its_first_ipv4_number() {
        let published = |port: i64| EndpointPortConfig {
            target_port: Some(8080),
            published_port: Some(port),
            ..Default::default()
        };
        let task = Task {
            status: Some(TaskStatus {
                port_status: Some(bollard::models::PortStatus {
                    ports: Some(vec![published(32793), published(32791)]),
                }),
                ..Default::default()
            }),
            ..Default::default()
        };
        let info = super::task_info(&task, "127.0.0.1".into());
        assert_eq!(info.ports.get(&8080), Some(&32793));
    }
}
