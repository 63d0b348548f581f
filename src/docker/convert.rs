//! Translation between bollard's models (Engine API 1.53 shapes, read from a daemon that
//! may speak 1.41) and this module's own types. Pure functions, so they are unit-tested
//! without a daemon; no I/O and no decisions beyond filling gaps Docker leaves.

use std::collections::{BTreeMap, HashMap};
use std::time::Duration;

use bollard::models::{
    ContainerCreateBody, ContainerInspectResponse, ContainerSummary as BollardSummary,
    CreateImageInfo, HealthConfig, HealthStatusEnum, HostConfig, ImageInspect, PortBinding,
    PortMap, RestartPolicy as BollardRestartPolicy, RestartPolicyNameEnum,
};
use chrono::{DateTime, Utc};

use super::{
    ContainerId, ContainerInfo, ContainerSpec, ContainerState, ContainerStatus, ContainerSummary,
    DockerHealth, HealthTest, ImageInfo, Publish, PullProgress, RestartPolicy,
};
use crate::image_ref::ImageRef;

/// The create request for `spec`: labels, env, the container port (published on
/// 127.0.0.1 when asked), network mode, restart policy, binds and limits.
pub(super) fn create_body(spec: &ContainerSpec) -> ContainerCreateBody {
    let port_key = spec.container_port.map(|port| format!("{port}/tcp"));
    let port_bindings = match (&port_key, spec.publish) {
        (Some(key), Publish::Loopback) => {
            // No host port: Docker picks a free one, read back by inspect.
            let binding = PortBinding {
                host_ip: Some("127.0.0.1".to_string()),
                host_port: None,
            };
            Some(PortMap::from([(key.clone(), Some(vec![binding]))]))
        }
        _ => None,
    };
    let restart_policy = match spec.restart_policy {
        RestartPolicy::No => BollardRestartPolicy {
            name: Some(RestartPolicyNameEnum::NO),
            maximum_retry_count: None,
        },
        RestartPolicy::UnlessStopped => BollardRestartPolicy {
            name: Some(RestartPolicyNameEnum::UNLESS_STOPPED),
            maximum_retry_count: None,
        },
        RestartPolicy::OnFailure { max_retries } => BollardRestartPolicy {
            name: Some(RestartPolicyNameEnum::ON_FAILURE),
            maximum_retry_count: Some(i64::from(max_retries)),
        },
    };
    let host_config = HostConfig {
        port_bindings,
        network_mode: spec.network.clone(),
        restart_policy: Some(restart_policy),
        binds: (!spec.volumes.is_empty()).then(|| spec.volumes.clone()),
        memory: spec.memory_bytes,
        nano_cpus: spec.nano_cpus,
        init: Some(spec.init),
        ..Default::default()
    };
    ContainerCreateBody {
        image: Some(spec.image.clone()),
        labels: Some(
            spec.labels
                .iter()
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect::<HashMap<_, _>>(),
        ),
        env: Some(spec.env.iter().map(|(k, v)| format!("{k}={v}")).collect()),
        exposed_ports: port_key.map(|key| vec![key]),
        host_config: Some(host_config),
        // Only the start fields: Docker fills what is left empty from the image.
        healthcheck: spec.health_start.map(|start| HealthConfig {
            start_period: Some(nanos(start.period)),
            start_interval: Some(nanos(start.interval)),
            ..Default::default()
        }),
        ..Default::default()
    }
}

fn nanos(duration: Duration) -> i64 {
    i64::try_from(duration.as_nanos()).unwrap_or(i64::MAX)
}

/// Our view of an inspected image.
pub(super) fn image_info(inspect: ImageInspect) -> ImageInfo {
    let config = inspect.config.unwrap_or_default();
    let mut exposed_ports: Vec<u16> = config
        .exposed_ports
        .unwrap_or_default()
        .iter()
        .filter_map(|key| tcp_port(key))
        .collect();
    exposed_ports.sort_unstable();
    exposed_ports.dedup();
    let healthcheck = config
        .healthcheck
        .and_then(|health| health.test)
        // `HEALTHCHECK NONE` is stored as ["NONE"]: the image opted out.
        .filter(|test| !test.is_empty() && test.first().map(String::as_str) != Some("NONE"));
    ImageInfo {
        id: inspect.id.unwrap_or_default(),
        repo_digests: inspect.repo_digests.unwrap_or_default(),
        exposed_ports,
        labels: sorted(config.labels),
        healthcheck,
        created: inspect.created.as_deref().and_then(parse_time),
    }
}

/// Our view of an inspected container.
pub(super) fn container_info(inspect: ContainerInspectResponse) -> ContainerInfo {
    let config = inspect.config.unwrap_or_default();
    let state = inspect.state.unwrap_or_default();
    let network_settings = inspect.network_settings.unwrap_or_default();
    let loopback_ports = loopback_ports(network_settings.ports.unwrap_or_default());
    let mut networks: Vec<String> = network_settings
        .networks
        .unwrap_or_default()
        .into_keys()
        .collect();
    networks.sort();
    let image_id = inspect.image.unwrap_or_default();
    ContainerInfo {
        id: ContainerId::new(inspect.id.unwrap_or_default()),
        name: strip_slash(inspect.name.unwrap_or_default()),
        image: config.image.unwrap_or_else(|| image_id.clone()),
        image_id,
        labels: sorted(config.labels),
        state: ContainerState {
            status: state
                .status
                .map(|status| status_from_word(status.as_ref()))
                .unwrap_or_else(|| ContainerStatus::Other(String::new())),
            running: state.running.unwrap_or(false),
            exit_code: state.exit_code.unwrap_or(0),
            restart_count: inspect.restart_count.unwrap_or(0),
            started_at: state.started_at.as_deref().and_then(parse_time),
            health: state.health.and_then(|health| match health.status? {
                HealthStatusEnum::STARTING => Some(DockerHealth::Starting),
                HealthStatusEnum::HEALTHY => Some(DockerHealth::Healthy),
                HealthStatusEnum::UNHEALTHY => Some(DockerHealth::Unhealthy),
                HealthStatusEnum::NONE | HealthStatusEnum::EMPTY => None,
            }),
            oom_killed: state.oom_killed.unwrap_or(false),
            error: state.error.filter(|error| !error.is_empty()),
        },
        loopback_port: loopback_ports.values().next().copied(),
        loopback_ports,
        networks,
        healthcheck: health_test(
            config.healthcheck,
            config.shell,
            config.user.filter(|user| !user.is_empty()),
        ),
    }
}

/// What Docker runs as the container's health check, with its defaults (30 s interval and
/// timeout, 3 retries); `None` for no check, `NONE`, or a test form Docker would not run.
pub(super) fn health_test(
    config: Option<bollard::models::HealthConfig>,
    shell: Option<Vec<String>>,
    user: Option<String>,
) -> Option<HealthTest> {
    let config = config?;
    let test = config.test?;
    let (kind, args) = test.split_first()?;
    let command = match kind.as_str() {
        "CMD" if !args.is_empty() => args.to_vec(),
        "CMD-SHELL" if !args.is_empty() => {
            let mut command = shell
                .filter(|shell| !shell.is_empty())
                .unwrap_or_else(|| vec!["/bin/sh".into(), "-c".into()]);
            command.push(args.join(" "));
            command
        }
        _ => return None,
    };
    let nanos = |value: Option<i64>, default: Duration| match value {
        Some(n) if n > 0 => Duration::from_nanos(n.unsigned_abs()),
        _ => default,
    };
    Some(HealthTest {
        command,
        interval: nanos(config.interval, Duration::from_secs(30)),
        timeout: nanos(config.timeout, Duration::from_secs(30)),
        start_period: nanos(config.start_period, Duration::ZERO),
        retries: match config.retries {
            Some(n) if n > 0 => u32::try_from(n).unwrap_or(u32::MAX),
            _ => 3,
        },
        user,
    })
}

/// Our view of a listed container.
pub(super) fn container_summary(summary: BollardSummary) -> ContainerSummary {
    ContainerSummary {
        id: ContainerId::new(summary.id.unwrap_or_default()),
        name: summary
            .names
            .unwrap_or_default()
            .into_iter()
            .next()
            .map(strip_slash)
            .unwrap_or_default(),
        labels: sorted(summary.labels),
        state: summary
            .state
            .map(|state| status_from_word(state.as_ref()))
            .unwrap_or_else(|| ContainerStatus::Other(String::new())),
        image: summary.image.unwrap_or_default(),
    }
}

/// One pull message as a progress line; `None` for messages that carry nothing.
pub(super) fn pull_progress(info: CreateImageInfo) -> Option<PullProgress> {
    let status = info.status.filter(|status| !status.is_empty())?;
    let detail = info.progress_detail.unwrap_or_default();
    Some(PullProgress {
        layer: info.id.filter(|id| !id.is_empty()),
        status,
        current: detail.current.and_then(|n| u64::try_from(n).ok()),
        total: detail.total.and_then(|n| u64::try_from(n).ok()),
    })
}

/// What a pull asks Docker for (`repo` → `repo:latest`: Docker pulls every tag of a
/// repository named without a tag or digest, and a deploy always means one), and the
/// registry host its credentials are for (`docker.io` when the reference names none), both
/// read by [`ImageRef`], the one parser of image references. A reference `ImageRef` refuses
/// is passed on as it is, for Docker to refuse with its own words.
pub(super) fn pull_reference(image: &str) -> (String, String) {
    match ImageRef::parse(image) {
        Ok(parsed) => {
            let reference = if parsed.tag().is_none() && parsed.digest().is_none() {
                format!("{image}:latest")
            } else {
                image.to_string()
            };
            (reference, parsed.registry().to_string())
        }
        Err(_) => (image.to_string(), "docker.io".to_string()),
    }
}

/// `ContainerStatus` from Docker's word for it.
pub(super) fn status_from_word(word: &str) -> ContainerStatus {
    match word {
        "created" => ContainerStatus::Created,
        "running" => ContainerStatus::Running,
        "paused" => ContainerStatus::Paused,
        "restarting" => ContainerStatus::Restarting,
        "removing" => ContainerStatus::Removing,
        "exited" => ContainerStatus::Exited,
        "dead" => ContainerStatus::Dead,
        other => ContainerStatus::Other(other.to_string()),
    }
}

/// `8080/tcp` or `8080` → 8080; other protocols → None.
fn tcp_port(key: &str) -> Option<u16> {
    let (port, protocol) = key.split_once('/').unwrap_or((key, "tcp"));
    if protocol == "tcp" {
        port.parse().ok()
    } else {
        None
    }
}

/// Container TCP port → host port, for bindings on 127.0.0.1.
fn loopback_ports(ports: PortMap) -> BTreeMap<u16, u16> {
    ports
        .into_iter()
        .filter_map(|(key, bindings)| {
            let container_port = tcp_port(&key)?;
            let host_port = bindings?
                .into_iter()
                .filter(|binding| binding.host_ip.as_deref() == Some("127.0.0.1"))
                .find_map(|binding| binding.host_port?.parse().ok())?;
            Some((container_port, host_port))
        })
        .collect()
}

/// Docker writes `0001-01-01T00:00:00Z` for "never"; that is `None` here.
fn parse_time(text: &str) -> Option<DateTime<Utc>> {
    let time = DateTime::parse_from_rfc3339(text).ok()?.with_timezone(&Utc);
    (time.timestamp() > 0).then_some(time)
}

fn sorted(labels: Option<HashMap<String, String>>) -> BTreeMap<String, String> {
    labels.unwrap_or_default().into_iter().collect()
}

fn strip_slash(name: String) -> String {
    match name.strip_prefix('/') {
        Some(stripped) => stripped.to_string(),
        None => name,
    }
}

#[cfg(test)]
mod tests {
    use bollard::models::{
        ContainerConfig, ContainerState as BollardState, HealthConfig, NetworkSettings,
    };

    use super::*;

    #[test]
    fn health_tests_are_what_docker_runs_with_its_defaults() {
        let config = |test: &[&str]| {
            Some(HealthConfig {
                test: Some(test.iter().map(|s| s.to_string()).collect()),
                interval: Some(30_000_000_000),
                ..Default::default()
            })
        };
        let exec = health_test(
            config(&["CMD", "wget", "-q", "x"]),
            None,
            Some("app".into()),
        )
        .expect("a CMD test");
        assert_eq!(exec.command, ["wget", "-q", "x"]);
        assert_eq!(exec.interval, Duration::from_secs(30));
        assert_eq!(exec.timeout, Duration::from_secs(30), "Docker's default");
        assert_eq!(exec.retries, 3, "Docker's default");
        assert_eq!(exec.user.as_deref(), Some("app"));
        let shell = health_test(
            config(&["CMD-SHELL", "curl -f localhost || exit 1"]),
            None,
            None,
        )
        .expect("a shell test");
        assert_eq!(
            shell.command,
            ["/bin/sh", "-c", "curl -f localhost || exit 1"]
        );
        let own_shell = health_test(
            config(&["CMD-SHELL", "check"]),
            Some(vec!["/bin/bash".into(), "-ec".into()]),
            None,
        )
        .expect("a shell test");
        assert_eq!(own_shell.command, ["/bin/bash", "-ec", "check"]);
        assert_eq!(health_test(config(&["NONE"]), None, None), None);
        assert_eq!(health_test(config(&[]), None, None), None);
        assert_eq!(health_test(None, None, None), None);
    }

    #[test]
    fn a_pull_names_one_tag_and_the_registry_its_credentials_are_for() {
        let pull = pull_reference;
        assert_eq!(
            pull("127.0.0.1:5000/acme/app"),
            (
                "127.0.0.1:5000/acme/app:latest".into(),
                "127.0.0.1:5000".into()
            )
        );
        assert_eq!(
            pull("127.0.0.1:5000/acme/app:v1"),
            ("127.0.0.1:5000/acme/app:v1".into(), "127.0.0.1:5000".into())
        );
        assert_eq!(
            pull("registry.example.com/app"),
            (
                "registry.example.com/app:latest".into(),
                "registry.example.com".into()
            )
        );
        assert_eq!(
            pull("localhost/app:v2"),
            ("localhost/app:v2".into(), "localhost".into())
        );
        assert_eq!(
            pull("acme/app:v1"),
            ("acme/app:v1".into(), "docker.io".into())
        );
        assert_eq!(pull("app"), ("app:latest".into(), "docker.io".into()));
        let pinned = "app@sha256:aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa";
        assert_eq!(pull(pinned), (pinned.into(), "docker.io".into()));
        // What the parser refuses goes to Docker unchanged, for Docker's own error.
        assert_eq!(pull("Bad/App"), ("Bad/App".into(), "docker.io".into()));
    }

    #[test]
    fn tcp_ports_are_read_and_others_skipped() {
        assert_eq!(tcp_port("8080/tcp"), Some(8080));
        assert_eq!(tcp_port("8080"), Some(8080));
        assert_eq!(tcp_port("53/udp"), None);
        assert_eq!(tcp_port("x/tcp"), None);
    }

    #[test]
    fn never_is_none() {
        assert_eq!(parse_time("0001-01-01T00:00:00Z"), None);
        assert!(parse_time("2026-05-07T21:09:36.123456789Z").is_some());
        assert_eq!(parse_time("garbage"), None);
    }

    #[test]
    fn a_health_start_sets_only_the_start_fields_so_docker_keeps_the_images_test() {
        let plain = create_body(&ContainerSpec::default());
        assert_eq!(plain.healthcheck, None, "the image's check untouched");
        let body = create_body(&ContainerSpec {
            health_start: Some(super::super::HealthStart {
                period: Duration::from_secs(60),
                interval: Duration::from_millis(100),
            }),
            ..Default::default()
        });
        let check = body.healthcheck.unwrap();
        assert_eq!(check.start_period, Some(60_000_000_000));
        assert_eq!(check.start_interval, Some(100_000_000));
        assert_eq!(
            (check.test, check.interval, check.retries),
            (None, None, None)
        );
    }

    #[test]
    fn create_body_publishes_the_port_on_loopback_only() {
        let spec = ContainerSpec {
            name: "app".into(),
            image: "img".into(),
            container_port: Some(8080),
            publish: Publish::Loopback,
            network: Some("net".into()),
            restart_policy: RestartPolicy::OnFailure { max_retries: 2 },
            env: vec![("A".into(), "1=2".into())],
            ..Default::default()
        };
        let body = create_body(&spec);
        assert_eq!(body.exposed_ports, Some(vec!["8080/tcp".to_string()]));
        assert_eq!(body.env, Some(vec!["A=1=2".to_string()]));
        let host = body.host_config.unwrap_or_default();
        let bindings = host.port_bindings.unwrap_or_default();
        let binding = &bindings["8080/tcp"].as_ref().unwrap()[0];
        assert_eq!(binding.host_ip.as_deref(), Some("127.0.0.1"));
        assert_eq!(host.network_mode.as_deref(), Some("net"));
        let restart = host.restart_policy.unwrap_or_default();
        assert_eq!(restart.name, Some(RestartPolicyNameEnum::ON_FAILURE));
        assert_eq!(restart.maximum_retry_count, Some(2));
    }

    #[test]
    fn create_body_without_port_or_with_publish_none_binds_nothing() {
        let no_port = ContainerSpec {
            publish: Publish::Loopback,
            ..Default::default()
        };
        assert_eq!(
            create_body(&no_port).host_config.unwrap().port_bindings,
            None
        );
        let unpublished = ContainerSpec {
            container_port: Some(80),
            publish: Publish::None,
            ..Default::default()
        };
        let body = create_body(&unpublished);
        assert_eq!(body.exposed_ports, Some(vec!["80/tcp".to_string()]));
        assert_eq!(body.host_config.unwrap().port_bindings, None);
    }

    #[test]
    fn healthcheck_none_means_no_healthcheck() {
        let inspect = ImageInspect {
            config: Some(bollard::models::ImageConfig {
                healthcheck: Some(bollard::models::HealthConfig {
                    test: Some(vec!["NONE".into()]),
                    ..Default::default()
                }),
                exposed_ports: Some(vec!["8080/tcp".into(), "53/udp".into(), "80/tcp".into()]),
                ..Default::default()
            }),
            ..Default::default()
        };
        let info = image_info(inspect);
        assert_eq!(info.healthcheck, None);
        assert_eq!(info.exposed_ports, vec![80, 8080]);
    }

    #[test]
    fn inspected_container_reads_loopback_port_and_state() {
        let inspect = ContainerInspectResponse {
            id: Some("abc".into()),
            name: Some("/dw-app".into()),
            image: Some("sha256:1".into()),
            restart_count: Some(2),
            config: Some(ContainerConfig {
                image: Some("127.0.0.1:5000/app:v1".into()),
                ..Default::default()
            }),
            state: Some(BollardState {
                status: Some(bollard::models::ContainerStateStatusEnum::EXITED),
                exit_code: Some(3),
                started_at: Some("0001-01-01T00:00:00Z".into()),
                error: Some(String::new()),
                ..Default::default()
            }),
            network_settings: Some(NetworkSettings {
                ports: Some(PortMap::from([
                    (
                        "8080/tcp".to_string(),
                        Some(vec![
                            PortBinding {
                                host_ip: Some("0.0.0.0".into()),
                                host_port: Some("1111".into()),
                            },
                            PortBinding {
                                host_ip: Some("127.0.0.1".into()),
                                host_port: Some("49153".into()),
                            },
                        ]),
                    ),
                    ("9090/tcp".to_string(), None),
                ])),
                ..Default::default()
            }),
            ..Default::default()
        };
        let info = container_info(inspect);
        assert_eq!(info.name, "dw-app");
        assert_eq!(info.image, "127.0.0.1:5000/app:v1");
        assert_eq!(info.loopback_port, Some(49153));
        assert_eq!(info.state.status, ContainerStatus::Exited);
        assert_eq!(info.state.exit_code, 3);
        assert_eq!(info.state.restart_count, 2);
        assert_eq!(info.state.started_at, None);
        assert_eq!(info.state.error, None);
        assert_eq!(info.state.health, None);
    }
}
