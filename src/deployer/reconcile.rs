//! Reconciliation: at start-up (and on demand) the store is compared with the containers
//! that carry this installation's labels, and with the proxy's hosts we own.
//!
//! - deploys a crash left mid-way are finished as failed, and what they created is removed;
//! - containers we own but the store does not know are removed;
//! - instances whose container vanished are marked failed;
//! - proxy hosts we own that no instance uses any more are deleted, and the hosts running
//!   instances need are put back (a proxy restarted from its own config forgets ours).

use std::collections::{BTreeMap, HashSet};

use crate::docker::{ContainerId, labels};
use crate::proxy::{HostId, Upstream};
use crate::store::{DeployStatus, Instance, InstanceStatus, LogLevel};

use super::Inner;

/// What reconciliation found and did, for the log and the API.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct ReconcileReport {
    pub interrupted_deploys: Vec<i64>,
    pub removed_containers: Vec<String>,
    pub vanished_instances: Vec<i64>,
    pub removed_proxy_hosts: Vec<String>,
    /// Domains whose host was missing or pointed elsewhere and was put back.
    pub restored_proxy_hosts: Vec<String>,
    /// Running instances reachable at another address than recorded (Docker restarted
    /// them on new ports), as `name: old → new`.
    pub moved_upstreams: Vec<String>,
    /// Things it could not check or undo (Docker down, proxy unreachable).
    pub problems: Vec<String>,
}

pub(super) async fn reconcile(inner: &Inner) -> ReconcileReport {
    let mut report = ReconcileReport::default();
    finish_interrupted_deploys(inner, &mut report).await;
    heal_into(inner, &mut report).await;
    tracing::info!(
        interrupted = report.interrupted_deploys.len(),
        removed_containers = report.removed_containers.len(),
        vanished_instances = report.vanished_instances.len(),
        removed_proxy_hosts = report.removed_proxy_hosts.len(),
        restored_proxy_hosts = report.restored_proxy_hosts.len(),
        problems = report.problems.len(),
        "reconciled store with docker and proxy"
    );
    for problem in &report.problems {
        tracing::warn!("reconcile: {problem}");
    }
    report
}

/// The part of reconciliation that is safe while the daemon runs (deploys under way are
/// never touched: their containers are known by name from the moment their row exists):
/// containers nothing owns any more go (such as one a rollback could not remove while
/// Docker was down), upstreams that moved are recorded (Docker gives a restarted
/// container a new 127.0.0.1 port), and the proxy is made to match.
pub(super) async fn heal(inner: &Inner) -> ReconcileReport {
    let mut report = ReconcileReport::default();
    heal_into(inner, &mut report).await;
    report
}

async fn heal_into(inner: &Inner, report: &mut ReconcileReport) {
    remove_unknown_containers(inner, report).await;
    refresh_upstreams(inner, report).await;
    remove_orphan_proxy_hosts(inner, report).await;
    restore_proxy_hosts(inner, report).await;
    let (routed, problems) = super::swarm::heal(inner).await;
    report.restored_proxy_hosts.extend(routed);
    report.problems.extend(problems);
}

/// Records where each running instance is reachable now. After the Docker Engine restarts,
/// it starts our containers again (restart policy) on new 127.0.0.1 ports, so the stored
/// upstreams, and the proxy hosts made from them, point at nothing.
async fn refresh_upstreams(inner: &Inner, report: &mut ReconcileReport) {
    let Ok(settings) = inner.store.settings() else {
        return report.problems.push("cannot read settings".into());
    };
    let Ok(reach) = super::rules::reachability(&settings) else {
        return; // the next deploy's plan says what is missing
    };
    let instances = inner.store.list_all_instances().unwrap_or_default();
    for instance in instances
        .iter()
        .filter(|i| i.status == InstanceStatus::Running)
    {
        let (Some(container), Some(recorded)) = (&instance.container_id, &instance.upstream) else {
            continue;
        };
        let Ok(stage) = inner.store.get_stage(instance.stage_id) else {
            continue;
        };
        let Ok(project) = inner.store.get_project(stage.project_id) else {
            continue;
        };
        let port = super::rules::container_port(&project, &stage);
        let Ok(info) = inner
            .engine
            .inspect_container(&ContainerId::new(container.clone()))
            .await
        else {
            continue; // gone or Docker down: the other steps (or the next run) see to it
        };
        let Some(now) = super::pipeline::upstream(&reach, &info, port) else {
            continue;
        };
        if now.to_string() != *recorded {
            match inner
                .store
                .set_instance_container(instance.id, container, Some(&now.to_string()))
            {
                Ok(()) => report
                    .moved_upstreams
                    .push(format!("{}: {recorded} → {now}", instance.container_name)),
                Err(e) => report.problems.push(format!(
                    "cannot record instance {}'s new upstream: {e}",
                    instance.id
                )),
            }
        }
    }
}

async fn finish_interrupted_deploys(inner: &Inner, report: &mut ReconcileReport) {
    let deploys = match inner.store.list_unfinished_deploys() {
        Ok(deploys) => deploys,
        Err(e) => return report.problems.push(format!("cannot list deploys: {e}")),
    };
    for deploy in deploys {
        if super::swarm::is_swarm_deploy(inner, deploy.stage_id) {
            continue; // Swarm went on without us: `swarm::resume_interrupted` follows it
        }
        let mut cleaned = false;
        let instances = inner
            .store
            .list_instances(deploy.stage_id)
            .unwrap_or_default()
            .into_iter()
            .filter(|i| i.deploy_id == Some(deploy.id) && i.status != InstanceStatus::Running);
        for instance in instances {
            report
                .problems
                .extend(super::retire::delete_proxy_hosts(inner, &instance).await);
            if let Some(id) = &instance.container_id
                && let Err(e) = inner
                    .engine
                    .remove(&ContainerId::new(id.clone()), true)
                    .await
            {
                report.problems.push(format!(
                    "cannot remove container {}: {e}",
                    instance.container_name
                ));
            }
            // An instance left `starting` would look like a deploy still under way.
            if let Err(e) = inner
                .store
                .set_instance_status(instance.id, InstanceStatus::Failed)
            {
                report
                    .problems
                    .push(format!("cannot mark instance {} failed: {e}", instance.id));
            }
            cleaned = true;
        }
        let status = if cleaned {
            DeployStatus::RolledBack
        } else {
            DeployStatus::Failed
        };
        let reason = format!(
            "interrupted: the daemon stopped while the deploy was {}",
            deploy.status
        );
        inner.log(deploy.id, LogLevel::Error, "reconcile", &reason);
        if let Err(e) =
            inner
                .store
                .finish_deploy_failed(deploy.id, status, deploy.status.as_str(), &reason)
        {
            report
                .problems
                .push(format!("cannot finish deploy {}: {e}", deploy.id));
            continue;
        }
        inner.publish_status(&deploy, status);
        report.interrupted_deploys.push(deploy.id);
    }
}

async fn remove_unknown_containers(inner: &Inner, report: &mut ReconcileReport) {
    let ours = match inner
        .engine
        .list_containers(&[
            (labels::MANAGED, labels::MANAGED_VALUE),
            (labels::INSTALLATION, &inner.installation_id),
        ])
        .await
    {
        Ok(containers) => containers,
        Err(e) => return report.problems.push(format!("cannot list containers: {e}")),
    };
    let instances = match inner.store.list_all_instances() {
        Ok(instances) => instances,
        Err(e) => return report.problems.push(format!("cannot list instances: {e}")),
    };
    let live = instances
        .iter()
        .filter(|i| i.status != InstanceStatus::Failed);
    let known: HashSet<&str> = live
        .clone()
        .filter_map(|i| i.container_id.as_deref())
        .collect();
    // A deploy under way names its container before it exists and records the id only
    // after start: a container of a live row's name is that deploy's, not an orphan.
    let named: HashSet<&str> = live.map(|i| i.container_name.as_str()).collect();
    for container in &ours {
        let name = container.name.trim_start_matches('/');
        if !known.contains(container.id.as_str()) && !named.contains(name) {
            match inner.engine.remove(&container.id, true).await {
                Ok(()) => report.removed_containers.push(container.name.clone()),
                Err(e) => report
                    .problems
                    .push(format!("cannot remove {}: {e}", container.name)),
            }
        }
    }
    let present: HashSet<&str> = ours.iter().map(|c| c.id.as_str()).collect();
    for instance in &instances {
        let vanished = matches!(
            instance.status,
            InstanceStatus::Running | InstanceStatus::Stopped
        ) && instance
            .container_id
            .as_deref()
            .is_none_or(|id| !present.contains(id));
        if vanished {
            match inner
                .store
                .set_instance_status(instance.id, InstanceStatus::Failed)
            {
                Ok(()) => report.vanished_instances.push(instance.id),
                Err(e) => report.problems.push(format!(
                    "cannot mark instance {} failed (its container vanished): {e}",
                    instance.id
                )),
            }
        }
    }
}

async fn remove_orphan_proxy_hosts(inner: &Inner, report: &mut ReconcileReport) {
    let proxy = inner.proxy();
    let hosts = match proxy.list_hosts().await {
        Ok(hosts) => hosts,
        Err(e) => {
            return report
                .problems
                .push(format!("cannot list proxy hosts: {e}"));
        }
    };
    let instances = inner.store.list_all_instances().unwrap_or_default();
    let in_use: HashSet<&str> = instances
        .iter()
        .filter(|i| matches!(i.status, InstanceStatus::Running | InstanceStatus::Stopped))
        .flat_map(|i| i.subdomains.iter().map(String::as_str))
        .collect();
    let swarm_domains = super::swarm::routed_domains(inner);
    let in_use: HashSet<&str> = in_use
        .into_iter()
        .chain(swarm_domains.iter().map(String::as_str))
        .collect();
    for host in hosts {
        if !in_use.contains(host.domain.as_str()) {
            match proxy.delete_host(&host.id).await {
                Ok(()) => report.removed_proxy_hosts.push(host.domain.clone()),
                Err(e) => report
                    .problems
                    .push(format!("cannot delete proxy host {}: {e}", host.domain)),
            }
        }
    }
}

/// Makes sure every running instance's own domain, and each stage's domain (on the newest
/// running instance), routes where the store says. `ensure_host` changes nothing when a
/// host is already right, so this is cheap on a healthy system. A host made anew gets a new
/// id from the proxy (NPM never reuses one): it is written back to the instance whose own
/// domain it serves, so retiring that instance later deletes the live host, not a dead id.
async fn restore_proxy_hosts(inner: &Inner, report: &mut ReconcileReport) {
    let proxy = inner.proxy();
    if proxy.kind() == crate::store::ProxyKind::None {
        return; // nothing routes, so nothing can be missing
    }
    let Ok(before) = proxy.list_hosts().await else {
        return; // already reported by remove_orphan_proxy_hosts
    };
    let instances: Vec<Instance> = inner
        .store
        .list_all_instances()
        .unwrap_or_default()
        .into_iter()
        .filter(|i| i.status == InstanceStatus::Running)
        .collect();
    // Each domain goes to the newest running instance that claims it (a stage's domain is
    // claimed by all its instances; the newest one is where the last deploy put it).
    let mut wanted: BTreeMap<String, (i64, Upstream)> = BTreeMap::new();
    for instance in &instances {
        let Some(upstream) = instance
            .upstream
            .as_deref()
            .and_then(super::pipeline::parse_upstream)
        else {
            continue;
        };
        for domain in &instance.subdomains {
            let entry = wanted
                .entry(domain.clone())
                .or_insert((instance.id, upstream.clone()));
            if instance.id >= entry.0 {
                *entry = (instance.id, upstream.clone());
            }
        }
    }
    let mut now_at: BTreeMap<String, (i64, HostId)> = BTreeMap::new();
    for (domain, (owner, upstream)) in wanted {
        let Ok(subdomain) = crate::subdomain::Subdomain::parse(&domain) else {
            continue;
        };
        let already = before
            .iter()
            .any(|h| h.domain == domain && h.upstream == upstream);
        let spec = crate::proxy::HostSpec {
            domain: subdomain,
            upstream,
        };
        match proxy.ensure_host(&spec).await {
            Ok(id) => {
                if !already {
                    report.restored_proxy_hosts.push(domain.clone());
                }
                now_at.insert(domain, (owner, id));
            }
            Err(e) => report
                .problems
                .push(format!("cannot restore proxy host {domain}: {e}")),
        }
    }
    let live: HashSet<&HostId> = before
        .iter()
        .map(|h| &h.id)
        .chain(now_at.values().map(|(_, id)| id))
        .collect();
    for instance in &instances {
        let Some(recorded) = recorded_hosts(instance, proxy.kind(), &live, &now_at) else {
            continue;
        };
        if let Err(e) =
            inner
                .store
                .set_instance_routing(instance.id, &instance.subdomains, &recorded)
        {
            report.problems.push(format!(
                "cannot record the restored proxy host of instance {}: {e}",
                instance.id
            ));
        }
    }
}

/// The proxy hosts `instance` should have on record after restoring, when that differs
/// from what it has: its own domain's (first subdomain) host when it serves it, in place of
/// recorded ids of this proxy that no longer exist. Ids of another proxy kind stay (the
/// settings switched proxies; retiring reports them).
fn recorded_hosts(
    instance: &Instance,
    kind: crate::store::ProxyKind,
    live: &HashSet<&HostId>,
    now_at: &BTreeMap<String, (i64, HostId)>,
) -> Option<Vec<String>> {
    let (owner, own) = now_at.get(instance.subdomains.first()?)?;
    if *owner != instance.id || instance.proxy_hosts.iter().any(|h| h == own.as_str()) {
        return None;
    }
    let mut recorded: Vec<String> = instance
        .proxy_hosts
        .iter()
        .filter(|h| HostId::parse(h).is_ok_and(|id| id.kind() != kind || live.contains(&id)))
        .cloned()
        .collect();
    recorded.push(own.to_string());
    Some(recorded)
}
