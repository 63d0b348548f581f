//! Notifications of deploy outcomes (success, failure, rollback) to the targets in the
//! store: a JSON webhook, Slack, Discord or ntfy.
//!
//! Fire-and-forget: `notify` returns at once; each target is sent on its own task with a
//! timeout and one retry, and a failure is logged by target name (never by URL, which
//! often carries a token). A failing notifier never fails or delays a deploy.

use std::time::Duration;

use serde::Serialize;
use tokio_util::task::TaskTracker;

use crate::store::{NotificationKind, NotificationTarget, Store};

/// Per-try timeout; with one retry a dead target costs at most twice this, off the deploy's path.
pub const SEND_TIMEOUT: Duration = Duration::from_secs(5);

/// What happened, as the targets are told.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Outcome {
    Success,
    Failed,
    RolledBack,
    /// A deploy waits for approval (every target hears of it; `urls` links to the deploy).
    ApprovalNeeded,
}

impl Outcome {
    fn wanted_by(self, target: &NotificationTarget) -> bool {
        match self {
            Outcome::Success => target.on_success,
            Outcome::Failed => target.on_failure,
            Outcome::RolledBack => target.on_rollback,
            Outcome::ApprovalNeeded => true,
        }
    }

    fn verb(self) -> &'static str {
        match self {
            Outcome::Success => "deployed",
            Outcome::Failed => "failed to deploy",
            Outcome::RolledBack => "rolled back",
            Outcome::ApprovalNeeded => "needs approval to deploy",
        }
    }
}

/// The JSON body of a `webhook` target, and the facts the chat formats are made from.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct DeployNotification {
    pub event: Outcome,
    pub project: String,
    pub stage: String,
    pub tag: String,
    pub digest: Option<String>,
    pub status: String,
    pub error: Option<String>,
    pub failed_step: Option<String>,
    pub deploy_id: i64,
    pub duration_ms: u64,
    pub urls: Vec<String>,
}

impl DeployNotification {
    /// One line for chat targets: "shop/dev: deployed dev-4f2a91 in 12.3 s".
    pub fn summary(&self) -> String {
        if self.event == Outcome::ApprovalNeeded {
            let mut line = format!(
                "{}/{}: {} {}",
                self.project,
                self.stage,
                self.event.verb(),
                self.tag
            );
            if let Some(url) = self.urls.first() {
                line.push_str(&format!(" — approve or reject at {url}"));
            }
            return line;
        }
        let mut line = format!(
            "{}/{}: {} {} in {:.1} s",
            self.project,
            self.stage,
            self.event.verb(),
            self.tag,
            self.duration_ms as f64 / 1000.0
        );
        if let Some(error) = &self.error {
            let step = self.failed_step.as_deref().unwrap_or("deploy");
            line.push_str(&format!(" — {step}: {error}"));
        }
        if let Some(url) = self.urls.first() {
            line.push_str(&format!(" — {url}"));
        }
        line
    }
}

/// Something that tells people about deploy outcomes. The deployer holds `Arc<dyn Notifier>`.
pub trait Notifier: Send + Sync {
    /// Queues the notification and returns at once.
    fn notify(&self, notification: DeployNotification);
}

/// Sends to the targets stored in settings, over HTTP.
#[derive(Clone)]
pub struct HttpNotifier {
    store: Store,
    client: reqwest::Client,
    tasks: TaskTracker,
}

impl HttpNotifier {
    pub fn new(store: Store) -> HttpNotifier {
        let client = reqwest::Client::builder()
            .timeout(SEND_TIMEOUT)
            .connect_timeout(SEND_TIMEOUT)
            .user_agent(concat!("docker-watcher/", env!("CARGO_PKG_VERSION")))
            .build()
            .unwrap_or_default();
        HttpNotifier {
            store,
            client,
            tasks: TaskTracker::new(),
        }
    }

    /// Sends a sample notification to one target and waits for the answer (the API's
    /// "test send"), so a person sees at once whether the target works.
    pub async fn send_test(&self, target_id: i64) -> Result<(), String> {
        let target = self
            .store
            .get_notification_target(target_id)
            .map_err(|e| e.to_string())?;
        let url = self
            .store
            .notification_url(target_id)
            .map_err(|e| e.to_string())?;
        let sample = DeployNotification {
            event: Outcome::Success,
            project: "example".into(),
            stage: "dev".into(),
            tag: "test-notification".into(),
            digest: None,
            status: "success".into(),
            error: None,
            failed_step: None,
            deploy_id: 0,
            duration_ms: 0,
            urls: Vec::new(),
        };
        send(&self.client, target.kind, &url, &sample).await
    }

    /// Waits (at most `limit`) for notifications still being sent, at shutdown.
    pub async fn drain(&self, limit: Duration) {
        self.tasks.close();
        let _ = tokio::time::timeout(limit, self.tasks.wait()).await;
    }
}

impl Notifier for HttpNotifier {
    fn notify(&self, notification: DeployNotification) {
        let targets = match self.store.list_notification_targets() {
            Ok(targets) => targets,
            Err(e) => {
                tracing::warn!("cannot read notification targets: {e}");
                return;
            }
        };
        for target in targets
            .into_iter()
            .filter(|t| notification.event.wanted_by(t))
        {
            let url = match self.store.notification_url(target.id) {
                Ok(url) => url,
                Err(e) => {
                    tracing::warn!(target = %target.name, "cannot open notification URL: {e}");
                    continue;
                }
            };
            let client = self.client.clone();
            let notification = notification.clone();
            self.tasks.spawn(async move {
                let mut result = send(&client, target.kind, &url, &notification).await;
                if result.is_err() {
                    tokio::time::sleep(Duration::from_secs(1)).await;
                    result = send(&client, target.kind, &url, &notification).await;
                }
                match result {
                    Ok(()) => tracing::debug!(target = %target.name, "notification sent"),
                    Err(e) => tracing::warn!(target = %target.name, "notification failed: {e}"),
                }
            });
        }
    }
}

/// A notifier that sends nothing (no targets configured, or in tests that do not care).
pub struct NoNotifier;

impl Notifier for NoNotifier {
    fn notify(&self, _notification: DeployNotification) {}
}

async fn send(
    client: &reqwest::Client,
    kind: NotificationKind,
    url: &str,
    notification: &DeployNotification,
) -> Result<(), String> {
    let request = match kind {
        NotificationKind::Webhook => client.post(url).json(notification),
        NotificationKind::Slack => client
            .post(url)
            .json(&serde_json::json!({ "text": notification.summary() })),
        NotificationKind::Discord => client
            .post(url)
            .json(&serde_json::json!({ "content": notification.summary() })),
        NotificationKind::Ntfy => {
            let (priority, tags) = match notification.event {
                Outcome::Success => ("default", "white_check_mark"),
                Outcome::Failed => ("high", "x"),
                Outcome::RolledBack => ("high", "leftwards_arrow_with_hook"),
                Outcome::ApprovalNeeded => ("high", "raised_hand"),
            };
            client
                .post(url)
                .header(
                    "Title",
                    format!(
                        "{}/{} {}",
                        notification.project,
                        notification.stage,
                        notification.event.verb()
                    ),
                )
                .header("Priority", priority)
                .header("Tags", tags)
                .body(notification.summary())
        }
    };
    // reqwest's error text includes the URL; keep only the kind of failure.
    let response = request.send().await.map_err(|e| describe(&e))?;
    if response.status().is_success() {
        Ok(())
    } else {
        Err(format!("target answered {}", response.status()))
    }
}

fn describe(error: &reqwest::Error) -> String {
    if error.is_timeout() {
        "timed out".into()
    } else if error.is_connect() {
        "could not connect".into()
    } else {
        "request failed".into()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample(event: Outcome) -> DeployNotification {
        DeployNotification {
            event,
            project: "shop".into(),
            stage: "dev".into(),
            tag: "dev-4f2a91".into(),
            digest: Some("sha256:abc".into()),
            status: "rolled_back".into(),
            error: Some("never became healthy".into()),
            failed_step: Some("health_check".into()),
            deploy_id: 7,
            duration_ms: 12_345,
            urls: vec!["http://stage-dev-shop.example.test".into()],
        }
    }

    #[test]
    fn summary_names_project_stage_tag_and_reason() {
        let line = sample(Outcome::RolledBack).summary();
        assert_eq!(
            line,
            "shop/dev: rolled back dev-4f2a91 in 12.3 s — health_check: never became healthy — http://stage-dev-shop.example.test"
        );
    }

    #[test]
    fn json_body_uses_snake_case_events() {
        let body = serde_json::to_value(sample(Outcome::RolledBack)).unwrap();
        assert_eq!(body["event"], "rolled_back");
        assert_eq!(body["project"], "shop");
        assert_eq!(body["duration_ms"], 12_345);
    }
}
