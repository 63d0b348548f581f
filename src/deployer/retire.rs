//! Retiring instances: after a successful deploy, the same tag's older instance and the
//! oldest instances beyond `max_instances` go — proxy hosts first, then the container,
//! then the row. Also used by the manual "remove instance".

use std::time::Duration;

use crate::docker::ContainerId;
use crate::proxy::HostId;
use crate::store::{Instance, InstanceStatus, LogLevel, Stage};

use super::Inner;

/// How long a retired container gets to stop before it is killed.
pub(super) const STOP_GRACE: Duration = Duration::from_secs(10);

/// Retires what the rules say must go now that `kept` is running. Failures are logged on
/// the deploy and do not fail it: the new instance is already serving.
pub(super) async fn retire_beyond_limit(
    inner: &Inner,
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
        let _ = inner.store.delete_instance(failed.id);
    }
    let mut older: Vec<&Instance> = instances
        .iter()
        .filter(|i| i.id != kept.id && i.status != InstanceStatus::Failed)
        .collect();
    let mut to_retire: Vec<&Instance> = Vec::new();
    // Redeploying a running tag replaces it: new container first, then the old one goes.
    older.retain(|i| {
        if i.tag == kept.tag {
            to_retire.push(i);
            false
        } else {
            true
        }
    });
    let room = usize::try_from(stage.max_instances.saturating_sub(1)).unwrap_or(0);
    if older.len() > room {
        // `list_instances` is oldest first.
        let excess = older.len() - room;
        to_retire.extend(older.into_iter().take(excess));
    }
    for instance in to_retire {
        inner.log(
            deploy_id,
            LogLevel::Info,
            "retire",
            &format!("retiring {} ({})", instance.tag, instance.container_name),
        );
        if let Err(e) = remove_instance(inner, instance).await {
            inner.log(deploy_id, LogLevel::Warn, "retire", &e);
        }
    }
}

/// Removes an instance's proxy hosts, container and row. Safe to repeat.
pub(super) async fn remove_instance(inner: &Inner, instance: &Instance) -> Result<(), String> {
    let _ = inner
        .store
        .set_instance_status(instance.id, InstanceStatus::Removing);
    let problems = delete_proxy_hosts(inner, instance).await;
    if !problems.is_empty() {
        return Err(problems.join("; "));
    }
    if let Some(id) = &instance.container_id {
        let id = ContainerId::new(id.clone());
        // Stop first so the application can finish its requests; then remove.
        let _ = inner.engine.stop(&id, STOP_GRACE).await;
        inner
            .engine
            .remove(&id, true)
            .await
            .map_err(|e| format!("cannot remove container {}: {e}", instance.container_name))?;
    }
    inner
        .store
        .delete_instance(instance.id)
        .map_err(|e| format!("cannot delete instance row: {e}"))
}

/// Deletes every proxy host recorded for `instance`, trying them all; returns what failed.
pub(super) async fn delete_proxy_hosts(inner: &Inner, instance: &Instance) -> Vec<String> {
    let proxy = inner.proxy();
    let mut problems = Vec::new();
    for host in &instance.proxy_hosts {
        let deleted = match HostId::parse(host) {
            Ok(id) => proxy.delete_host(&id).await.map_err(|e| e.to_string()),
            Err(e) => Err(e.to_string()),
        };
        if let Err(e) = deleted {
            problems.push(format!("cannot delete proxy host {host}: {e}"));
        }
    }
    problems
}
