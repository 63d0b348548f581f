//! Notifications: deploy outcomes, approvals waiting and failing polls, told to the
//! targets in the store (JSON webhook, Slack, Discord, ntfy, Telegram, Gotify, email,
//! Matrix, Pushover, Teams, Apprise).
//!
//! [`Notifier::notify`] returns at once: it filters the event per target (events,
//! projects, stages, poll-error threshold), holds back repeats of an identical failure
//! ([`noise`]), and queues one message per target in the store's outbox. The outbox worker
//! ([`outbox`]) renders each with the target's templates ([`template`]) and sends it
//! ([`send`] and one module per channel), retrying with back-off across restarts. A
//! failing target never fails or delays a deploy, and errors never show a target's URL.

mod apprise;
mod email;
mod gotify;
mod matrix;
pub mod message;
mod noise;
pub mod outbox;
mod pushover;
pub mod send;
mod teams;
mod telegram;
pub mod template;
pub mod url;
mod webhook;

use std::sync::Arc;
use std::time::Duration;

use tokio_util::task::TaskTracker;

pub use message::{EventKind, Notification};
pub use send::{Endpoints, SEND_TIMEOUT};
pub use template::Rendered;
pub use url::Destination;

use crate::store::{NotificationTarget, Store, TargetFilter};

/// Something that tells people about events. The deployer and poller hold `Arc<dyn Notifier>`.
pub trait Notifier: Send + Sync {
    /// Queues the notification for every target that wants it and returns at once.
    fn notify(&self, notification: Notification);
}

/// Sends to the targets stored in settings, through the persistent outbox.
#[derive(Clone)]
pub struct HttpNotifier {
    inner: Arc<Inner>,
}

struct Inner {
    store: Store,
    sender: send::Sender,
    /// The UI's address, for links to deploy pages.
    public_url: Option<String>,
    wake: tokio::sync::Notify,
    repeats: noise::Repeats,
    tasks: TaskTracker,
}

impl HttpNotifier {
    pub fn new(store: Store, public_url: Option<String>) -> HttpNotifier {
        HttpNotifier::with_endpoints(store, public_url, Endpoints::default())
    }

    /// Like [`HttpNotifier::new`] with other service hosts (tests point them at fakes).
    pub fn with_endpoints(
        store: Store,
        public_url: Option<String>,
        endpoints: Endpoints,
    ) -> HttpNotifier {
        HttpNotifier {
            inner: Arc::new(Inner {
                store,
                sender: send::Sender::new(endpoints),
                public_url: public_url.map(|u| u.trim_end_matches('/').to_string()),
                wake: tokio::sync::Notify::new(),
                repeats: noise::Repeats::default(),
                tasks: TaskTracker::new(),
            }),
        }
    }

    /// Sends a sample message to one target now and waits for the answer (the API's
    /// "test send"), so a person sees at once whether the target works.
    pub async fn send_test(&self, target_id: i64) -> Result<(), String> {
        let mut sample = Notification::sample(EventKind::Success);
        sample.tag = "test-notification".into();
        sample.deploy_url = self.inner.public_url.clone();
        let id = format!("test-{}", uuid::Uuid::new_v4());
        let result = self.send_to(target_id, &sample, &id).await;
        if let Err(e) = self
            .inner
            .store
            .record_notification_delivery(target_id, result.as_ref().err().map(String::as_str))
        {
            tracing::warn!(target = target_id, "cannot record the test send: {e}");
        }
        result
    }

    /// Renders and sends one message to one target.
    async fn send_to(
        &self,
        target_id: i64,
        notification: &Notification,
        id: &str,
    ) -> Result<(), String> {
        let store = &self.inner.store;
        let target = store
            .get_notification_target(target_id)
            .map_err(|e| e.to_string())?;
        let url = store
            .notification_url(target_id)
            .map_err(|e| e.to_string())?;
        let destination = Destination::parse(&url, Some(target.kind))?;
        let text = template::render(
            target.templates.title.as_deref(),
            target.templates.body.as_deref(),
            notification,
        )?;
        let delivery = send::Delivery {
            notification,
            text: &text,
            id,
        };
        self.inner.sender.send(&destination, &delivery).await
    }

    /// Waits (at most `limit`) for a delivery round under way, at shutdown; whatever is
    /// not delivered stays in the outbox for the next start.
    pub async fn drain(&self, limit: Duration) {
        self.inner.tasks.close();
        let _ = tokio::time::timeout(limit, self.inner.tasks.wait()).await;
    }
}

impl Notifier for HttpNotifier {
    fn notify(&self, mut notification: Notification) {
        if notification.deploy_url.is_none()
            && let (Some(base), Some(id)) = (&self.inner.public_url, notification.deploy_id)
        {
            notification.deploy_url = Some(format!("{base}/deploys/{id}"));
        }
        if !self.inner.repeats.admit(&mut notification) {
            tracing::debug!(project = %notification.project, stage = %notification.stage, "identical failure held back");
            return;
        }
        let targets = match self.inner.store.list_notification_targets() {
            Ok(targets) => targets,
            Err(e) => {
                tracing::warn!("cannot read notification targets: {e}");
                return;
            }
        };
        let payload = match serde_json::to_string(&notification) {
            Ok(payload) => payload,
            Err(e) => {
                tracing::warn!("cannot encode a notification: {e}");
                return;
            }
        };
        for target in targets.iter().filter(|t| wants(t, &notification)) {
            if let Err(e) = self.inner.store.enqueue_notification(target.id, &payload) {
                tracing::warn!(target = %target.name, "cannot queue a notification: {e}");
            }
        }
        self.inner.wake.notify_one();
    }
}

/// Whether a target's filter takes this event.
pub fn wants(target: &NotificationTarget, n: &Notification) -> bool {
    let TargetFilter {
        events,
        projects,
        stages,
        poll_error_threshold,
    } = &target.filter;
    events.contains(&n.event)
        && (projects.is_empty() || projects.contains(&n.project))
        && (stages.is_empty() || stages.contains(&n.stage))
        && (n.event != EventKind::PollError
            || n.consecutive_failures == Some(*poll_error_threshold))
}

/// A notifier that sends nothing (no targets configured, or in tests that do not care).
pub struct NoNotifier;

impl Notifier for NoNotifier {
    fn notify(&self, _notification: Notification) {}
}
