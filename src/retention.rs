//! Keeping the database from growing without bound: prunes webhook events, the logs of
//! finished deploys and audit entries by the limits in the settings (`WebhookLimits`),
//! shortly after start and then every hour, on a blocking thread. Each prune deletes in small batches
//! (see `store::retention`), so requests are never held up for long.

use std::time::Duration;

use chrono::Utc;
use tokio_util::sync::CancellationToken;

use crate::store::{Store, StoreResult};

/// How often the limits are applied.
pub const INTERVAL: Duration = Duration::from_secs(3600);
/// The first prune, after start-up has settled.
const FIRST: Duration = Duration::from_secs(30);

/// What one prune removed.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Pruned {
    pub webhook_events: u64,
    pub deploy_log_lines: u64,
    pub audit_entries: u64,
}

/// Applies the settings' retention limits once (blocking).
pub fn prune_once(store: &Store) -> StoreResult<Pruned> {
    let limits = store.settings()?.limits;
    let now = Utc::now();
    let days = |n: u32| chrono::Duration::days(i64::from(n));
    Ok(Pruned {
        webhook_events: store.prune_webhook_events(
            now - days(limits.webhook_event_retention_days),
            limits.webhook_event_max_count,
        )?,
        deploy_log_lines: store.prune_deploy_logs(
            now - days(limits.deploy_log_retention_days),
            limits.deploy_logs_per_stage,
        )?,
        audit_entries: store.prune_audit(now - days(limits.audit_retention_days))?,
    })
}

/// Prunes after [`FIRST`] and then every [`INTERVAL`] until `shutdown`.
pub async fn run(store: Store, shutdown: CancellationToken) {
    let mut wait = FIRST;
    loop {
        tokio::select! {
            () = shutdown.cancelled() => return,
            () = tokio::time::sleep(wait) => {}
        }
        wait = INTERVAL;
        let store = store.clone();
        let pruning = tokio::task::spawn_blocking(move || {
            let pruned = prune_once(&store);
            // Deleting a day's records frees what it read; glibc would keep it.
            crate::memory::release_freed();
            pruned
        });
        match pruning.await {
            Ok(Ok(pruned)) if pruned != Pruned::default() => tracing::info!(
                webhook_events = pruned.webhook_events,
                deploy_log_lines = pruned.deploy_log_lines,
                audit_entries = pruned.audit_entries,
                "pruned old records"
            ),
            Ok(Ok(_)) => {}
            Ok(Err(e)) => tracing::warn!("pruning old records failed: {e}"),
            Err(e) => tracing::warn!("pruning old records stopped: {e}"),
        }
    }
}
