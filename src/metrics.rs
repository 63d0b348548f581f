//! Prometheus metrics: what the deployer, the poller and the webhook record, and the text
//! `/metrics` serves.
//!
//! The recorder is process-wide (the `metrics` crate has one global recorder), installed
//! once by [`install`]; a second daemon in the same process (tests) shares it. Recording
//! before it is installed is a no-op. Labels never carry secrets: registries are named by
//! their base URL, never with credentials.

use std::sync::OnceLock;
use std::time::Duration;

use metrics_exporter_prometheus::{PrometheusBuilder, PrometheusHandle};

/// Deploys by outcome (`success`, `failed`, `rolled_back`).
pub const DEPLOYS: &str = "docker_watcher_deploys_total";
/// Seconds from a deploy's start to its end, by outcome.
pub const DEPLOY_DURATION: &str = "docker_watcher_deploy_duration_seconds";
/// Seconds from the moment a new tag was noticed (webhook or poll) to it serving traffic.
pub const DETECTION_TO_SERVING: &str = "docker_watcher_detection_to_serving_seconds";
/// Polls of a registry, by registry and result (`ok`, `error`).
pub const POLLS: &str = "docker_watcher_polls_total";
/// Webhook events by outcome (`deployed`, `ignored`, `rejected`, `error`).
pub const WEBHOOK_EVENTS: &str = "docker_watcher_webhook_events_total";
/// Instances whose status is `running`.
pub const RUNNING_INSTANCES: &str = "docker_watcher_running_instances";

/// Deploy durations range from seconds to many minutes.
const DURATION_BUCKETS: &[f64] = &[
    1.0, 2.5, 5.0, 10.0, 20.0, 30.0, 60.0, 120.0, 300.0, 600.0, 1800.0,
];

static HANDLE: OnceLock<Option<PrometheusHandle>> = OnceLock::new();

/// Installs the process-wide recorder the first time; later calls do nothing. When
/// another recorder was installed first (an embedding program), metrics are not ours to
/// render and `/metrics` says so.
pub fn install() {
    HANDLE.get_or_init(|| {
        let recorder = PrometheusBuilder::new()
            .set_buckets(DURATION_BUCKETS)
            .map(|b| b.build_recorder());
        let recorder = match recorder {
            Ok(recorder) => recorder,
            Err(e) => {
                tracing::warn!("metrics are off: {e}");
                return None;
            }
        };
        let handle = recorder.handle();
        match metrics::set_global_recorder(recorder) {
            Ok(()) => {
                describe();
                Some(handle)
            }
            Err(e) => {
                tracing::warn!("metrics are off: another recorder is installed ({e})");
                None
            }
        }
    });
}

/// The metrics in Prometheus' text format.
pub fn render() -> String {
    match HANDLE.get() {
        Some(Some(handle)) => handle.render(),
        _ => "# metrics recorder not installed\n".into(),
    }
}

/// A deploy reached a final status after `duration`; `detected_to_serving` is set for a
/// success whose tag was noticed by a webhook or a poll.
pub fn deploy_finished(outcome: &str, duration: Duration, detected_to_serving: Option<Duration>) {
    let outcome = outcome.to_string();
    metrics::counter!(DEPLOYS, "outcome" => outcome.clone()).increment(1);
    metrics::histogram!(DEPLOY_DURATION, "outcome" => outcome).record(duration.as_secs_f64());
    if let Some(elapsed) = detected_to_serving {
        metrics::histogram!(DETECTION_TO_SERVING).record(elapsed.as_secs_f64());
    }
}

/// One listing of a registry's tags by the poller.
pub fn poll(registry: &str, ok: bool) {
    metrics::counter!(
        POLLS,
        "registry" => registry.to_string(),
        "result" => if ok { "ok" } else { "error" }
    )
    .increment(1);
}

/// One event a webhook delivered (a request can carry several).
pub fn webhook_event(outcome: &str) {
    metrics::counter!(WEBHOOK_EVENTS, "outcome" => outcome.to_string()).increment(1);
}

pub fn set_running_instances(count: usize) {
    metrics::gauge!(RUNNING_INSTANCES).set(count as f64);
}

fn describe() {
    metrics::describe_counter!(DEPLOYS, "Deploys that reached a final status, by outcome");
    metrics::describe_histogram!(
        DEPLOY_DURATION,
        metrics::Unit::Seconds,
        "Time from a deploy's start to its end, by outcome"
    );
    metrics::describe_histogram!(
        DETECTION_TO_SERVING,
        metrics::Unit::Seconds,
        "Time from noticing a new tag (webhook or poll) to serving it"
    );
    metrics::describe_counter!(
        POLLS,
        "Registry tag listings by the poller, by registry and result"
    );
    metrics::describe_counter!(WEBHOOK_EVENTS, "Webhook events received, by outcome");
    metrics::describe_gauge!(RUNNING_INSTANCES, "Instances whose status is running");
}
