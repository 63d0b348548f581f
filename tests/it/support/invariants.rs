//! The promise every fault-injection test ends on, checked once here: whatever went wrong
//! on the way, once the dust settles
//!
//! 1. every deploy is in a final status (success, failed, rolled_back, superseded);
//! 2. every container of the installation belongs to a live instance row, and every live
//!    row has its container (running when the row says `running`); no row is left in a
//!    passing state (`starting`, `removing`, `stopping`); a `failed` row holds nothing;
//! 3. every proxy host we own routes a domain of a running instance to that instance's
//!    upstream, and every running instance's own domain has its host;
//! 4. the stage serves a healthy instance: its domain, through the proxy when one is
//!    configured (real Caddy's listener; the NPM fake's host for the domain, which is
//!    then followed to its upstream), answers `/health` with 200 from a running instance.
//!
//! [`assert_settled`] waits (bounded) for this to hold, because retiring drains in the
//! background, and panics with every violation it last saw.

use std::collections::{BTreeMap, HashSet};
use std::process::Command;
use std::time::{Duration, Instant};

use docker_watcher::docker::labels;
use docker_watcher::store::{DeployFilter, Instance, InstanceStatus, Store};

use super::caddy::TestCaddy;
use super::docker_cli;
use super::npm_fake::FakeNpm;

/// The reverse proxy the daemon under test was given.
#[derive(Clone, Copy)]
pub enum ProxyView<'a> {
    None,
    Caddy(&'a TestCaddy),
    Npm(&'a FakeNpm),
}

/// What to check: the store the daemon writes, its installation's containers, its proxy,
/// and the stage that must be serving.
pub struct World<'a> {
    pub store: &'a Store,
    pub installation: String,
    pub proxy: ProxyView<'a>,
    pub stage_id: i64,
}

/// How long things may take to settle (background retiring, a reconcile pass).
const SETTLE: Duration = Duration::from_secs(45);

/// Waits until every invariant holds; panics with the violations otherwise.
pub async fn assert_settled(world: &World<'_>) {
    let deadline = Instant::now() + SETTLE;
    loop {
        let problems = violations(world).await;
        if problems.is_empty() {
            return;
        }
        if Instant::now() > deadline {
            panic!(
                "invariants still broken after {SETTLE:?}:\n- {}\ninstances: {:#?}",
                problems.join("\n- "),
                world.store.list_all_instances().unwrap_or_default()
            );
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}

/// Every broken invariant, in words; empty when all hold.
pub async fn violations(world: &World<'_>) -> Vec<String> {
    let mut problems = Vec::new();
    let deploys = world
        .store
        .list_deploys(&DeployFilter {
            limit: 1000,
            ..Default::default()
        })
        .expect("list deploys");
    for deploy in deploys.iter().filter(|d| !d.status.is_final()) {
        problems.push(format!(
            "deploy {} ({}) is still {}",
            deploy.id, deploy.tag, deploy.status
        ));
    }

    let instances = world.store.list_all_instances().expect("list instances");
    let containers = containers_of(&world.installation);
    check_containers(&instances, &containers, &mut problems);

    let running: Vec<&Instance> = instances
        .iter()
        .filter(|i| i.status == InstanceStatus::Running)
        .collect();
    let hosts = match world.proxy {
        ProxyView::None => None,
        ProxyView::Caddy(caddy) => Some(caddy_hosts(caddy).await),
        ProxyView::Npm(npm) => Some(npm_hosts(npm)),
    };
    if let Some(hosts) = &hosts {
        check_hosts(hosts, &running, &mut problems);
    }

    let stage_running: Vec<&Instance> = running
        .iter()
        .copied()
        .filter(|i| i.stage_id == world.stage_id)
        .collect();
    if stage_running.is_empty() {
        problems.push(format!("stage {} has no running instance", world.stage_id));
    } else if let Err(e) = check_serving(world, hosts.as_ref(), &stage_running).await {
        problems.push(e);
    }
    problems
}

/// A container of the installation: full id, state (`running`, `exited`…), instance label.
struct Container {
    id: String,
    state: String,
    instance: String,
}

fn containers_of(installation: &str) -> Vec<Container> {
    let output = Command::new(docker_cli())
        .args([
            "ps",
            "-a",
            "--no-trunc",
            "--filter",
            &format!("label={}={installation}", labels::INSTALLATION),
            "--format",
            &format!(
                "{{{{.ID}}}} {{{{.State}}}} {{{{.Label \"{}\"}}}}",
                labels::INSTANCE
            ),
        ])
        .output()
        .expect("docker ps");
    assert!(output.status.success(), "docker ps failed");
    String::from_utf8_lossy(&output.stdout)
        .lines()
        .filter_map(|line| {
            let mut words = line.split_whitespace();
            Some(Container {
                id: words.next()?.to_string(),
                state: words.next()?.to_string(),
                instance: words.next().unwrap_or("").to_string(),
            })
        })
        .collect()
}

fn check_containers(instances: &[Instance], containers: &[Container], problems: &mut Vec<String>) {
    let by_id: BTreeMap<&str, &Instance> = instances
        .iter()
        .filter_map(|i| i.container_id.as_deref().map(|c| (c, i)))
        .collect();
    for container in containers {
        match by_id.get(container.id.as_str()) {
            None => problems.push(format!(
                "container {} (instance label {:?}, {}) belongs to no instance row",
                short(&container.id),
                container.instance,
                container.state
            )),
            Some(instance) if instance.status == InstanceStatus::Failed => problems.push(format!(
                "container {} is left behind by failed instance {}",
                short(&container.id),
                instance.id
            )),
            Some(_) => {}
        }
    }
    let states: BTreeMap<&str, &str> = containers
        .iter()
        .map(|c| (c.id.as_str(), c.state.as_str()))
        .collect();
    for instance in instances {
        let state = instance
            .container_id
            .as_deref()
            .and_then(|id| states.get(id).copied());
        match instance.status {
            InstanceStatus::Running if state != Some("running") => problems.push(format!(
                "instance {} ({}) says running but its container is {}",
                instance.id,
                instance.tag,
                state.unwrap_or("gone")
            )),
            InstanceStatus::Stopped if state.is_none() => problems.push(format!(
                "instance {} ({}) says stopped but its container is gone",
                instance.id, instance.tag
            )),
            InstanceStatus::Failed if !instance.proxy_hosts.is_empty() => problems.push(format!(
                "failed instance {} still records proxy hosts {:?}",
                instance.id, instance.proxy_hosts
            )),
            InstanceStatus::Running | InstanceStatus::Stopped | InstanceStatus::Failed => {}
            // `starting`, `removing` and any newer passing state: nothing should be on its
            // way once every deploy is final and the background work is done.
            _ => problems.push(format!(
                "instance {} ({}) is still {}",
                instance.id, instance.tag, instance.status
            )),
        }
    }
}

/// A host we own in the proxy: its domain and where it forwards.
struct Host {
    domain: String,
    upstream: String,
}

fn npm_hosts(npm: &FakeNpm) -> Vec<Host> {
    npm.hosts()
        .iter()
        .filter(|h| h["meta"]["docker_watcher"] == serde_json::json!(true))
        .map(|h| Host {
            domain: h["domain_names"][0].as_str().unwrap_or("").to_string(),
            upstream: format!(
                "{}:{}",
                h["forward_host"].as_str().unwrap_or(""),
                h["forward_port"]
            ),
        })
        .collect()
}

async fn caddy_hosts(caddy: &TestCaddy) -> Vec<Host> {
    let config = caddy.config().await;
    let routes = config
        .pointer("/apps/http/servers/docker_watcher/routes")
        .and_then(|r| r.as_array())
        .cloned()
        .unwrap_or_default();
    routes
        .iter()
        .filter(|r| r["@id"].as_str().is_some_and(|id| id.starts_with("dw-")))
        .map(|r| Host {
            domain: r
                .pointer("/match/0/host/0")
                .and_then(|v| v.as_str())
                .unwrap_or("")
                .to_string(),
            upstream: r
                .pointer("/handle/0/upstreams/0/dial")
                .and_then(|v| v.as_str())
                .unwrap_or("")
                .to_string(),
        })
        .collect()
}

fn check_hosts(hosts: &[Host], running: &[&Instance], problems: &mut Vec<String>) {
    let mut seen = HashSet::new();
    for host in hosts {
        if !seen.insert(host.domain.as_str()) {
            problems.push(format!("two hosts for {}", host.domain));
        }
        let owners: Vec<&&Instance> = running
            .iter()
            .filter(|i| i.subdomains.iter().any(|d| d == &host.domain))
            .collect();
        if owners.is_empty() {
            problems.push(format!(
                "proxy host {} → {} is routed by no running instance",
                host.domain, host.upstream
            ));
        } else if !owners
            .iter()
            .any(|i| i.upstream.as_deref() == Some(host.upstream.as_str()))
        {
            problems.push(format!(
                "proxy host {} → {} points at none of its running instances ({:?})",
                host.domain,
                host.upstream,
                owners.iter().map(|i| &i.upstream).collect::<Vec<_>>()
            ));
        }
    }
    // An instance's own domain is the first of its subdomains (then the stage's).
    for instance in running {
        if let Some(own) = instance.subdomains.first()
            && !hosts.iter().any(|h| &h.domain == own)
        {
            problems.push(format!(
                "running instance {} ({}) has no proxy host for its domain {own}",
                instance.id, instance.tag
            ));
        }
    }
}

/// The stage's domain answers `/health` with 200 from one of its running instances.
async fn check_serving(
    world: &World<'_>,
    hosts: Option<&Vec<Host>>,
    running: &[&Instance],
) -> Result<(), String> {
    // Newest first: without a proxy, the newest running instance is the stage's.
    let newest = running.iter().max_by_key(|i| i.id).expect("non-empty");
    let stage_domain = newest.subdomains.get(1).cloned();
    let (addr, host_header) = match (world.proxy, &stage_domain) {
        (ProxyView::Caddy(caddy), Some(domain)) => (caddy.listen_addr(), Some(domain.clone())),
        (ProxyView::Npm(_), Some(domain)) => {
            let host = hosts
                .and_then(|hs| hs.iter().find(|h| &h.domain == domain))
                .ok_or(format!("no proxy host for the stage domain {domain}"))?;
            (host.upstream.clone(), None)
        }
        _ => (
            newest
                .upstream
                .clone()
                .ok_or(format!("instance {} has no upstream", newest.id))?,
            None,
        ),
    };
    let client = reqwest::Client::builder()
        .pool_max_idle_per_host(0)
        .timeout(Duration::from_secs(5))
        .build()
        .expect("client");
    let get = |path: &str| {
        let mut request = client.get(format!("http://{addr}{path}"));
        if let Some(host) = &host_header {
            request = request.header(reqwest::header::HOST, host.as_str());
        }
        request.send()
    };
    let health = get("/health")
        .await
        .map_err(|e| format!("stage domain {stage_domain:?} via {addr}: {e}"))?;
    if health.status() != 200 {
        return Err(format!(
            "stage domain {stage_domain:?} via {addr} answers /health with {}",
            health.status()
        ));
    }
    // The test app's /id is its hostname, the container's short id.
    let id = get("/id")
        .await
        .map_err(|e| format!("stage domain {stage_domain:?} /id: {e}"))?
        .text()
        .await
        .unwrap_or_default();
    let id = id.trim();
    if !running.iter().any(|i| {
        i.container_id
            .as_deref()
            .is_some_and(|c| !id.is_empty() && c.starts_with(id))
    }) {
        return Err(format!(
            "stage domain {stage_domain:?} is served by container {id:?}, not a running instance"
        ));
    }
    Ok(())
}

fn short(id: &str) -> &str {
    &id[..id.len().min(12)]
}
