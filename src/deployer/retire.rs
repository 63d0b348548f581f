//! Retiring instances: after a successful deploy, the same tag's older instance and the
//! oldest instances beyond `max_instances` go. Their routes go at once, before the deploy
//! reports success (so no more than `max_instances` ever serve); their containers stop in
//! the background (status `stopping`), so a grace period never holds the stage's queue.
//!
//! A proxy host belongs to a domain, not to an instance: a redeploy of the same tag points
//! the tag's host at the new container, so a host is deleted only when no remaining
//! instance routes it. Also used by the manual "remove instance" ([`remove_instance`]) and
//! at start-up for `stopping` instances a crash left ([`resume_stopping`]).

use std::collections::HashSet;
use std::sync::Arc;
use std::time::Duration;

use futures_util::future::join_all;

use crate::docker::ContainerId;
use crate::proxy::HostId;
use crate::store::{Instance, InstanceStatus, LogLevel, Stage};

use super::Inner;

/// How long a retired container gets to stop before it is killed.
pub(super) const STOP_GRACE: Duration = Duration::from_secs(10);

/// How long a retired instance keeps running after it left the proxy before it is
/// stopped: requests already on their way to it finish, and NPM, which reloads nginx only
/// after its API answered, has time to stop sending new ones. The stop runs in the
/// background, so this never holds a deploy.
pub(super) const DRAIN: Duration = Duration::from_secs(5);

/// Back-off between attempts to delete a retired instance's proxy hosts when the proxy
/// fails: 0.5 s doubling, 6 attempts (about 30 s in all), then the row stays `stopping`
/// with the hosts it still holds, for the next start-up to finish.
const HOST_RETRY_FIRST: Duration = Duration::from_millis(500);
const HOST_RETRY_ATTEMPTS: u32 = 6;

/// Takes off the air what the rules say must go now that `kept` serves, and stops their
/// containers in the background. Failures are logged on the deploy and do not fail it: the
/// new instance is already serving.
pub(super) async fn retire_beyond_limit(
    inner: &Arc<Inner>,
    stage: &Stage,
    kept: &Instance,
    deploy_id: i64,
) {
    let instances = match inner.store.list_instances(stage.id) {
        Ok(instances) => instances,
        Err(e) => {
            inner.log(
                deploy_id,
                LogLevel::Warn,
                "retire",
                &format!("cannot list instances: {e}"),
            );
            return;
        }
    };
    // Rows of instances that failed earlier hold nothing any more: clear them.
    for failed in instances
        .iter()
        .filter(|i| i.status == InstanceStatus::Failed)
    {
        if let Err(e) = inner.store.delete_instance(failed.id) {
            tracing::warn!(
                instance = failed.id,
                "cannot delete failed instance row: {e}"
            );
        }
    }
    // Claimed now, so neither a reconcile nor a manual remove meanwhile races the stop.
    let retirees: Vec<Instance> = to_retire(&instances, kept, stage.max_instances)
        .into_iter()
        .filter(|i| claim(inner, i.id))
        .cloned()
        .collect();
    for instance in &retirees {
        inner.log(
            deploy_id,
            LogLevel::Info,
            "retire",
            &format!(
                "retiring {} ({}): off the proxy now, its container stops in the background",
                instance.tag, instance.container_name
            ),
        );
        for problem in unroute(inner, instance).await {
            inner.log(deploy_id, LogLevel::Warn, "retire", &problem);
        }
    }
    spawn_stop_and_clean_up(inner, retirees, stage.project_id, deploy_id);
}

/// Which instances go now that `kept` runs: an older instance of the same tag (a redeploy
/// replaces it), then the oldest beyond `max_instances`. Instances already stopping or
/// failed do not serve and do not count. `instances` is oldest first.
pub(super) fn to_retire<'a>(
    instances: &'a [Instance],
    kept: &Instance,
    max_instances: u32,
) -> Vec<&'a Instance> {
    let serving = instances.iter().filter(|i| {
        i.id != kept.id
            && !matches!(
                i.status,
                InstanceStatus::Failed | InstanceStatus::Stopping | InstanceStatus::Removing
            )
    });
    let (mut retire, older): (Vec<&Instance>, Vec<&Instance>) =
        serving.partition(|i| i.tag == kept.tag);
    let room = usize::try_from(max_instances.saturating_sub(1)).unwrap_or(0);
    let excess = older.len().saturating_sub(room);
    retire.extend(older.into_iter().take(excess));
    retire.sort_by_key(|i| i.id);
    retire
}

/// Removes an instance now: its routes, its container (after a grace period) and its row.
/// Safe to repeat. The manual "remove instance", and deleting a stage or project, use it.
pub(super) async fn remove_instance(inner: &Inner, instance: &Instance) -> Result<(), String> {
    let problems = unroute(inner, instance).await;
    if !problems.is_empty() {
        return Err(problems.join("; "));
    }
    stop_and_forget(inner, instance).await
}

/// Finishes, in the background, the instances a crash left `stopping` (their routes go
/// first again, in case the crash came before). Returns how many it took up.
pub(super) fn resume_stopping(inner: &Arc<Inner>) -> Result<usize, String> {
    let instances = inner
        .store
        .list_all_instances()
        .map_err(|e| format!("cannot list instances: {e}"))?;
    let stopping: Vec<Instance> = instances
        .into_iter()
        .filter(|i| i.status == InstanceStatus::Stopping)
        .filter(|i| claim(inner, i.id))
        .collect();
    for instance in &stopping {
        let (inner, instance) = (inner.clone(), instance.clone());
        inner.clone().retiring.spawn(async move {
            for problem in unroute(&inner, &instance).await {
                tracing::warn!(instance = instance.id, "{problem}");
            }
            tokio::time::sleep(inner.drain()).await;
            if let Err(e) = stop_and_forget(&inner, &instance).await {
                tracing::warn!(instance = instance.id, "{e}");
            }
            release(&inner, instance.id);
        });
    }
    Ok(stopping.len())
}

/// Deletes every proxy host recorded for `instance` that no other instance routes (a
/// same-tag redeploy shares the tag's host), trying them all; returns what failed.
pub(super) async fn delete_proxy_hosts(inner: &Inner, instance: &Instance) -> Vec<String> {
    delete_unshared_hosts(inner, instance).await.1
}

/// [`delete_proxy_hosts`], also returning the hosts whose delete failed (the instance
/// must keep them, to try again).
async fn delete_unshared_hosts(inner: &Inner, instance: &Instance) -> (Vec<String>, Vec<String>) {
    let others = match inner.store.list_all_instances() {
        Ok(all) => all,
        Err(e) => {
            return (
                instance.proxy_hosts.clone(),
                vec![format!("cannot list instances: {e}")],
            );
        }
    };
    let shared = hosts_routed_by_others(&others, instance.id);
    let proxy = inner.proxy();
    let mut problems = Vec::new();
    let mut left = Vec::new();
    for host in &instance.proxy_hosts {
        if shared.contains(host.as_str()) {
            tracing::debug!(
                instance = instance.id,
                host,
                "host kept: another instance routes it"
            );
            continue;
        }
        let deleted = match HostId::parse(host) {
            Ok(id) => proxy.delete_host(&id).await.map_err(|e| e.to_string()),
            Err(e) => Err(e.to_string()),
        };
        if let Err(e) = deleted {
            problems.push(format!("cannot delete proxy host {host}: {e}"));
            left.push(host.clone());
        }
    }
    (left, problems)
}

/// Host ids that instances other than `except` still route (they are starting, running or
/// stopped by hand; stopping, failed and removed ones route nothing).
fn hosts_routed_by_others(instances: &[Instance], except: i64) -> HashSet<&str> {
    instances
        .iter()
        .filter(|i| i.id != except)
        .filter(|i| {
            matches!(
                i.status,
                InstanceStatus::Starting | InstanceStatus::Running | InstanceStatus::Stopped
            )
        })
        .flat_map(|i| i.proxy_hosts.iter().map(String::as_str))
        .collect()
}

/// Takes an instance off the proxy: marks it `stopping`, deletes the hosts only it routes
/// and forgets its routing (so reconciliation never puts it back), except the hosts whose
/// delete failed: the stopping row keeps those, and [`stop_and_forget`] tries them again.
/// Returns the problems.
async fn unroute(inner: &Inner, instance: &Instance) -> Vec<String> {
    let mut problems = Vec::new();
    if let Err(e) = inner
        .store
        .set_instance_status(instance.id, InstanceStatus::Stopping)
    {
        problems.push(format!(
            "cannot mark instance {} stopping: {e}",
            instance.id
        ));
    }
    let (left, failed) = delete_unshared_hosts(inner, instance).await;
    problems.extend(failed);
    if let Err(e) = inner.store.set_instance_routing(instance.id, &[], &left) {
        problems.push(format!(
            "cannot forget the routes of instance {}: {e}",
            instance.id
        ));
    }
    problems
}

/// In the background: stops the unrouted instances' containers (side by side), removes
/// them and their rows, then the project's images nothing needs any more. A failure leaves
/// the row `stopping` for reconciliation to finish.
fn spawn_stop_and_clean_up(
    inner: &Arc<Inner>,
    retirees: Vec<Instance>,
    project_id: i64,
    deploy_id: i64,
) {
    let inner = inner.clone();
    inner.clone().retiring.spawn(async move {
        tokio::time::sleep(inner.drain()).await;
        let stops = retirees
            .iter()
            .map(|instance| stop_and_forget(&inner, instance));
        for (instance, stopped) in retirees.iter().zip(join_all(stops).await) {
            let (level, message) = match stopped {
                Ok(()) => (
                    LogLevel::Debug,
                    format!(
                        "{} ({}) stopped and removed",
                        instance.tag, instance.container_name
                    ),
                ),
                Err(e) => (LogLevel::Warn, e),
            };
            inner.log(deploy_id, level, "retire", &message);
            release(&inner, instance.id);
        }
        let (removed, problems) = super::images::clean_up(&inner, project_id).await;
        for image in removed {
            inner.log(
                deploy_id,
                LogLevel::Debug,
                "retire",
                &format!("removed image {image}"),
            );
        }
        for problem in problems {
            inner.log(deploy_id, LogLevel::Warn, "retire", &problem);
        }
    });
}

/// Whether a background task is stopping `instance` now.
pub(super) fn stopping_in_background(inner: &Inner, instance: i64) -> bool {
    inner
        .stopping
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .contains(&instance)
}

/// Marks `instance` as being stopped by a background task; false when one already is.
fn claim(inner: &Inner, instance: i64) -> bool {
    inner
        .stopping
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .insert(instance)
}

fn release(inner: &Inner, instance: i64) {
    inner
        .stopping
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .remove(&instance);
}

/// Stops (with the grace period) and removes the container, then deletes the row once
/// the proxy hosts it still holds are deleted (retried with back-off: a host left behind
/// would route to a dead port).
async fn stop_and_forget(inner: &Inner, instance: &Instance) -> Result<(), String> {
    let hosts_left = delete_hosts_left(inner, instance.id).await;
    if let Some(id) = &instance.container_id {
        let id = ContainerId::new(id.clone());
        // Stop first so the application can finish its requests; a failure here (already
        // stopped, or gone) is settled by the forced remove below.
        if let Err(e) = inner.engine.stop(&id, STOP_GRACE).await {
            tracing::debug!(container = %instance.container_name, "stop: {e}");
        }
        inner
            .engine
            .remove(&id, true)
            .await
            .map_err(|e| format!("cannot remove container {}: {e}", instance.container_name))?;
    }
    hosts_left?;
    inner
        .store
        .delete_instance(instance.id)
        .map_err(|e| format!("cannot delete instance row: {e}"))
}

/// Deletes the proxy hosts the (stopping) row of `instance_id` still holds, trying again
/// with back-off, and forgets each once it is deleted (or gone). A host another instance
/// routes meanwhile (a redeploy of the same tag) is kept and forgotten. Err when some
/// remain after the last attempt: the row then keeps them.
async fn delete_hosts_left(inner: &Inner, instance_id: i64) -> Result<(), String> {
    let mut wait = HOST_RETRY_FIRST;
    for attempt in 1..=HOST_RETRY_ATTEMPTS {
        let instance = match inner.store.get_instance(instance_id) {
            Ok(instance) => instance,
            Err(e) => return Err(format!("cannot read instance {instance_id}: {e}")),
        };
        if instance.proxy_hosts.is_empty() {
            return Ok(());
        }
        let (left, problems) = delete_unshared_hosts(inner, &instance).await;
        if left.len() != instance.proxy_hosts.len() {
            inner
                .store
                .set_instance_routing(instance_id, &[], &left)
                .map_err(|e| format!("cannot forget the routes of instance {instance_id}: {e}"))?;
        }
        if left.is_empty() {
            return Ok(());
        }
        if attempt == HOST_RETRY_ATTEMPTS {
            return Err(format!(
                "proxy hosts {} of instance {instance_id} are left after {attempt} attempts ({}); the next start-up tries again",
                left.join(", "),
                problems.join("; ")
            ));
        }
        tracing::debug!(instance = instance_id, attempt, "{}", problems.join("; "));
        tokio::time::sleep(wait).await;
        wait *= 2;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn instance(id: i64, tag: &str, status: InstanceStatus) -> Instance {
        Instance {
            id,
            stage_id: 1,
            deploy_id: None,
            tag: tag.into(),
            digest: None,
            container_id: None,
            container_name: format!("dw-{id}"),
            upstream: None,
            subdomains: Vec::new(),
            proxy_hosts: vec![format!("npm:{tag}")],
            status,
            created_at: chrono::Utc::now(),
            updated_at: chrono::Utc::now(),
        }
    }

    fn ids(instances: Vec<&Instance>) -> Vec<i64> {
        instances.into_iter().map(|i| i.id).collect()
    }

    #[test]
    fn the_same_tag_goes_then_the_oldest_beyond_the_limit() {
        use InstanceStatus::*;
        let all = vec![
            instance(1, "v1", Running),
            instance(2, "v2", Stopping),
            instance(3, "v3", Failed),
            instance(4, "v4", Running),
            instance(5, "v5", Stopped),
            instance(6, "v4", Running),
        ];
        let kept = &all[5];
        // v4's older instance is replaced; of v1 and v5 (stopping and failed do not
        // count), one fits beside v4 with max 2.
        assert_eq!(ids(to_retire(&all, kept, 2)), vec![1, 4]);
        assert_eq!(ids(to_retire(&all, kept, 1)), vec![1, 4, 5]);
        assert_eq!(ids(to_retire(&all, kept, 3)), vec![4]);
    }

    #[test]
    fn a_host_another_live_instance_routes_is_shared() {
        use InstanceStatus::*;
        let all = vec![
            instance(1, "v1", Running),
            instance(2, "v1", Running),
            instance(3, "v2", Stopping),
            instance(4, "v3", Failed),
        ];
        let shared = hosts_routed_by_others(&all, 1);
        assert!(shared.contains("npm:v1"), "the redeployed tag's host");
        assert!(!shared.contains("npm:v2") && !shared.contains("npm:v3"));
    }
}
