//! The deployer's decisions as pure functions: which image, which environment, which
//! health probe, where a domain pointed before a deploy, and what a rollback undoes. The
//! pipeline does the I/O around them; these are unit-tested alone.

use crate::docker::ContainerId;
use crate::health::{HealthPolicy, HealthProbe, Reachability};
use crate::proxy::{HostId, Upstream};
use crate::store::{Instance, InstanceStatus, Project, Settings, Stage};
use crate::subdomain::Subdomain;

/// The image a deploy pulls and runs: `host/repo@digest` for a promotion (so the stage
/// runs byte for byte what the source stage ran, whatever the tag points at now), else
/// `host/repo:tag`.
pub(super) fn deploy_image(project: &Project, deploy: &crate::store::Deploy) -> String {
    match (&deploy.promoted_from_stage_id, &deploy.digest) {
        (Some(_), Some(digest)) => format!("{}@{digest}", project.image),
        _ => image(project, &deploy.tag),
    }
}

/// The image of a tag: `host/repo:tag`.
pub(super) fn image(project: &Project, tag: &str) -> String {
    format!("{}:{tag}", project.image)
}

/// The port the application listens on: the stage's override, else the project's (0 in
/// How containers are reached, as the settings say: by their 127.0.0.1 port, or by name
/// on the network the settings name.
pub(super) fn reachability(settings: &Settings) -> Result<Reachability, String> {
    match settings.reachability {
        crate::store::Reachability::Loopback => Ok(Reachability::Loopback),
        crate::store::Reachability::Network => settings
            .reach_network
            .clone()
            .map(|network| Reachability::Network { network })
            .ok_or_else(|| "reachability is `network` but no network is set in settings".into()),
    }
}

/// the project means "none").
pub(super) fn container_port(project: &Project, stage: &Stage) -> Option<u16> {
    stage
        .container_port
        .or((project.container_port > 0).then_some(project.container_port))
}

/// The health path: the stage's override, else the project's.
pub(super) fn probe_path(project: &Project, stage: &Stage) -> Option<String> {
    stage
        .health_path
        .clone()
        .or_else(|| project.health_path.clone())
}

/// The project's health-check overrides on top of the installation's defaults.
pub(super) fn health_policy(project: &Project, settings: &Settings) -> HealthPolicy {
    HealthPolicy {
        interval: project.health.interval.unwrap_or(settings.health_interval),
        timeout: project.health.timeout.unwrap_or(settings.health_timeout),
        retries: project.health.retries.unwrap_or(settings.health_retries),
        start_period: project
            .health
            .start_period
            .unwrap_or(settings.health_start_period),
    }
}

/// A container's environment: the project's variables, the stage's replacing those of the
/// same name, then `DW_PROJECT`, `DW_STAGE` and `DW_TAG` unless the user set them.
pub(super) fn environment(
    project_env: Vec<(String, String)>,
    stage_env: Vec<(String, String)>,
    identity: [(&str, &str); 3],
) -> Vec<(String, String)> {
    let mut env = project_env;
    for (name, value) in stage_env {
        env.retain(|(n, _)| *n != name);
        env.push((name, value));
    }
    for (name, value) in identity {
        if !env.iter().any(|(n, _)| n == name) {
            env.push((name.to_string(), value.to_string()));
        }
    }
    env
}

/// How to tell the container is healthy: its health path over HTTP when it has one and a
/// reachable port; else the image's HEALTHCHECK; else a TCP connect to the port; else that
/// it keeps running for a few seconds.
pub(super) fn probe(
    path: Option<&str>,
    upstream: Option<&Upstream>,
    image_has_healthcheck: bool,
) -> HealthProbe {
    match (path, upstream) {
        (Some(path), Some(upstream)) => HealthProbe::Http {
            url: format!("http://{upstream}{path}"),
        },
        _ if image_has_healthcheck => HealthProbe::DockerHealthcheck,
        (None, Some(upstream)) => HealthProbe::Tcp {
            addr: upstream.to_string(),
        },
        (Some(_), None) | (None, None) => HealthProbe::StaysRunning {
            duration: std::time::Duration::from_secs(3),
        },
    }
}

/// Where `domain` points while `except` is being deployed: the newest other running
/// instance that routes it (the rule reconciliation restores by). `instances` is oldest
/// first.
pub(super) fn upstream_before(
    instances: &[Instance],
    domain: &str,
    except: i64,
) -> Option<Upstream> {
    instances
        .iter()
        .rev()
        .filter(|i| i.id != except && i.status == InstanceStatus::Running)
        .filter(|i| i.subdomains.iter().any(|d| d == domain))
        .find_map(|i| i.upstream.as_deref().and_then(parse_upstream))
}

/// Reads back an upstream stored as `host:port`.
pub(super) fn parse_upstream(text: &str) -> Option<Upstream> {
    let (host, port) = text.rsplit_once(':')?;
    Some(Upstream {
        host: host
            .trim_start_matches('[')
            .trim_end_matches(']')
            .to_string(),
        port: port.parse().ok()?,
    })
}

/// What a deploy created (or moved), undone in reverse order on failure.
#[derive(Debug, Clone, PartialEq)]
pub(super) enum Created {
    Instance(i64),
    Container(ContainerId),
    /// A domain was (or may have been) pointed at the new instance. `made` is the host's
    /// id once known (also when nginx refused a host it now holds).
    Route {
        domain: Subdomain,
        made: Option<HostId>,
        previous: Option<Upstream>,
    },
}

/// One step of a rollback.
#[derive(Debug, Clone, PartialEq)]
pub(super) enum Undo {
    /// Point the domain back where it was: a host belongs to its domain, and another
    /// instance routed it before.
    PointBack {
        domain: Subdomain,
        upstream: Upstream,
    },
    /// Delete the host this deploy made for a domain nobody routed before.
    DeleteHost {
        domain: Subdomain,
        id: HostId,
    },
    /// Nothing was written for this domain.
    Nothing,
    RemoveContainer(ContainerId),
    /// The instance holds nothing any more: mark it failed.
    FailInstance(i64),
}

impl Created {
    pub(super) fn undo(self) -> Undo {
        match self {
            Created::Instance(id) => Undo::FailInstance(id),
            Created::Container(id) => Undo::RemoveContainer(id),
            Created::Route {
                domain,
                previous: Some(upstream),
                ..
            } => Undo::PointBack { domain, upstream },
            Created::Route {
                domain,
                made: Some(id),
                previous: None,
            } => Undo::DeleteHost { domain, id },
            Created::Route {
                made: None,
                previous: None,
                ..
            } => Undo::Nothing,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::ProxyKind;
    use std::time::Duration;

    fn project() -> Project {
        Project {
            id: 1,
            name: "shop".into(),
            image: "registry.test/acme/shop".into(),
            registry_id: None,
            container_port: 8080,
            health_path: Some("/health".into()),
            health: Default::default(),
            env: Vec::new(),
            volumes: Vec::new(),
            network: None,
            memory_bytes: None,
            nano_cpus: None,
            auto_created: false,
            created_at: chrono::Utc::now(),
            updated_at: chrono::Utc::now(),
        }
    }

    fn stage() -> Stage {
        Stage {
            container_port: None,
            health_path: None,
            ..super::super::fakes::stage(1, 1)
        }
    }

    fn instance(
        id: i64,
        tag: &str,
        status: InstanceStatus,
        port: u16,
        domains: &[&str],
    ) -> Instance {
        Instance {
            id,
            stage_id: 1,
            deploy_id: None,
            tag: tag.into(),
            digest: None,
            container_id: Some(format!("c{id}")),
            container_name: format!("dw-{id}"),
            upstream: Some(format!("127.0.0.1:{port}")),
            subdomains: domains.iter().map(|d| d.to_string()).collect(),
            proxy_hosts: Vec::new(),
            status,
            created_at: chrono::Utc::now(),
            updated_at: chrono::Utc::now(),
        }
    }

    fn up(port: u16) -> Upstream {
        Upstream {
            host: "127.0.0.1".into(),
            port,
        }
    }

    #[test]
    fn the_image_is_the_projects_repository_at_the_tag() {
        assert_eq!(image(&project(), "v1.2"), "registry.test/acme/shop:v1.2");
    }

    #[test]
    fn stage_overrides_win_over_the_project() {
        let (p, s) = (project(), stage());
        assert_eq!(container_port(&p, &s), Some(8080));
        assert_eq!(probe_path(&p, &s).as_deref(), Some("/health"));
        let s = Stage {
            container_port: Some(3000),
            health_path: Some("/ready".into()),
            ..stage()
        };
        assert_eq!(container_port(&p, &s), Some(3000));
        assert_eq!(probe_path(&p, &s).as_deref(), Some("/ready"));
        let none = Project {
            container_port: 0,
            health_path: None,
            ..project()
        };
        assert_eq!(container_port(&none, &stage()), None);
        assert_eq!(probe_path(&none, &stage()), None);
    }

    #[test]
    fn project_health_overrides_win_over_the_settings() {
        let settings = super::super::fakes::settings(ProxyKind::None);
        let mut p = project();
        assert_eq!(
            health_policy(&p, &settings).retries,
            settings.health_retries
        );
        p.health.retries = Some(9);
        p.health.start_period = Some(Duration::from_secs(1));
        let policy = health_policy(&p, &settings);
        assert_eq!(policy.retries, 9);
        assert_eq!(policy.start_period, Duration::from_secs(1));
        assert_eq!(policy.interval, settings.health_interval);
    }

    #[test]
    fn stage_env_replaces_project_env_and_the_users_identity_vars_win() {
        let pair = |n: &str, v: &str| (n.to_string(), v.to_string());
        let env = environment(
            vec![
                pair("A", "project"),
                pair("B", "project"),
                pair("DW_TAG", "mine"),
            ],
            vec![pair("B", "stage"), pair("C", "stage")],
            [
                ("DW_PROJECT", "shop"),
                ("DW_STAGE", "dev"),
                ("DW_TAG", "v1"),
            ],
        );
        assert_eq!(
            env,
            vec![
                pair("A", "project"),
                pair("DW_TAG", "mine"),
                pair("B", "stage"),
                pair("C", "stage"),
                pair("DW_PROJECT", "shop"),
                pair("DW_STAGE", "dev"),
            ]
        );
    }

    #[test]
    fn the_probe_prefers_http_then_healthcheck_then_tcp_then_staying_up() {
        let u = up(3000);
        assert_eq!(
            probe(Some("/health"), Some(&u), true),
            HealthProbe::Http {
                url: "http://127.0.0.1:3000/health".into()
            }
        );
        assert_eq!(
            probe(Some("/health"), None, true),
            HealthProbe::DockerHealthcheck
        );
        assert_eq!(probe(None, Some(&u), true), HealthProbe::DockerHealthcheck);
        assert_eq!(
            probe(None, Some(&u), false),
            HealthProbe::Tcp {
                addr: "127.0.0.1:3000".into()
            }
        );
        assert!(matches!(
            probe(Some("/health"), None, false),
            HealthProbe::StaysRunning { .. }
        ));
    }

    #[test]
    fn a_domain_pointed_before_at_the_newest_running_instance_that_routes_it() {
        let stage_domain = "stage-dev-shop.example.com";
        let v1_domain = "stage-dev-shop-v1.example.com";
        let instances = vec![
            instance(
                1,
                "v1",
                InstanceStatus::Running,
                1001,
                &[v1_domain, stage_domain],
            ),
            instance(
                2,
                "v2",
                InstanceStatus::Running,
                1002,
                &["v2.example.com", stage_domain],
            ),
            instance(3, "v3", InstanceStatus::Stopping, 1003, &[]),
            instance(
                4,
                "v1",
                InstanceStatus::Starting,
                1004,
                &[v1_domain, stage_domain],
            ),
        ];
        assert_eq!(upstream_before(&instances, stage_domain, 4), Some(up(1002)));
        assert_eq!(
            upstream_before(&instances, v1_domain, 4),
            Some(up(1001)),
            "a same-tag redeploy: the tag's domain pointed at the live v1"
        );
        assert_eq!(upstream_before(&instances, "new.example.com", 4), None);
        assert_eq!(upstream_before(&instances[..1], v1_domain, 1), None);
    }

    #[test]
    fn upstreams_read_back_with_ipv6_brackets() {
        assert_eq!(parse_upstream("127.0.0.1:8080"), Some(up(8080)));
        assert_eq!(
            parse_upstream("[::1]:80"),
            Some(Upstream {
                host: "::1".into(),
                port: 80
            })
        );
        assert_eq!(parse_upstream("nohost"), None);
        assert_eq!(parse_upstream("h:notaport"), None);
    }

    #[test]
    fn a_route_is_undone_by_pointing_back_and_deleted_only_when_nobody_routed_it() {
        let domain = Subdomain::parse("a.example.com").unwrap();
        let id = HostId::new(ProxyKind::Npm, "7");
        let route = |made: Option<HostId>, previous: Option<Upstream>| Created::Route {
            domain: domain.clone(),
            made,
            previous,
        };
        assert_eq!(
            route(Some(id.clone()), Some(up(1))).undo(),
            Undo::PointBack {
                domain: domain.clone(),
                upstream: up(1)
            },
            "a same-tag host is updated, never deleted"
        );
        assert_eq!(
            route(None, Some(up(1))).undo(),
            Undo::PointBack {
                domain: domain.clone(),
                upstream: up(1)
            },
            "a failed write may still have changed the host"
        );
        assert_eq!(
            route(Some(id.clone()), None).undo(),
            Undo::DeleteHost {
                domain: domain.clone(),
                id
            }
        );
        assert_eq!(route(None, None).undo(), Undo::Nothing);
        assert_eq!(Created::Instance(3).undo(), Undo::FailInstance(3));
        assert_eq!(
            Created::Container(ContainerId::new("c")).undo(),
            Undo::RemoveContainer(ContainerId::new("c"))
        );
    }
}
