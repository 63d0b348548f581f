//! The outbox worker: delivers queued messages, retries failures with back-off (the queue
//! is in SQLite, so retries survive restarts) and drops a message after a day. Each
//! attempt's outcome is recorded on the target for the UI.

use std::time::Duration;

use chrono::Utc;
use tokio_util::sync::CancellationToken;

use super::HttpNotifier;
use super::message::Notification;
use crate::store::OutboxEntry;

/// A message still undelivered after this long is dropped.
pub const MAX_AGE: chrono::TimeDelta = chrono::TimeDelta::days(1);
/// The worker looks at the queue at least this often (new messages wake it at once).
const IDLE_WAIT: Duration = Duration::from_secs(30);
/// Messages sent together in one round.
const BATCH: u32 = 20;

/// Wait before the next attempt after `attempts` failed ones: 10 s, 20 s, 40 s, … up to 30 min.
pub fn backoff(attempts: u32) -> Duration {
    let seconds = 10u64.saturating_mul(1 << attempts.min(8));
    Duration::from_secs(seconds.min(30 * 60))
}

impl HttpNotifier {
    /// Delivers queued messages until `shutdown`; what is left stays queued for the next start.
    pub async fn run(self, shutdown: CancellationToken) {
        loop {
            self.deliver_due().await;
            let wait = match self.inner.store.next_notification_due() {
                Ok(Some(at)) => (at - Utc::now())
                    .to_std()
                    .unwrap_or(Duration::ZERO)
                    .min(IDLE_WAIT),
                Ok(None) => IDLE_WAIT,
                Err(e) => {
                    tracing::warn!("cannot read the notification outbox: {e}");
                    IDLE_WAIT
                }
            };
            tokio::select! {
                () = shutdown.cancelled() => return,
                () = self.inner.wake.notified() => {}
                () = tokio::time::sleep(wait) => {}
            }
        }
    }

    /// One round: every message due now, sent concurrently.
    pub async fn deliver_due(&self) {
        let _round = self.inner.tasks.token();
        let due = match self.inner.store.due_notifications(Utc::now(), BATCH) {
            Ok(due) => due,
            Err(e) => {
                tracing::warn!("cannot read the notification outbox: {e}");
                return;
            }
        };
        futures_util::future::join_all(due.into_iter().map(|entry| self.deliver(entry))).await;
    }

    async fn deliver(&self, entry: OutboxEntry) {
        let store = &self.inner.store;
        let outcome = if Utc::now() - entry.created_at > MAX_AGE {
            Err(None)
        } else {
            match serde_json::from_str::<Notification>(&entry.payload_json) {
                Ok(n) => self
                    .send_to(entry.target_id, &n, &entry.id.to_string())
                    .await
                    .map_err(Some),
                Err(e) => Err(Some(format!("unreadable queued message: {e}"))),
            }
        };
        let target = entry.target_id;
        let recorded = match outcome {
            Ok(()) => {
                tracing::debug!(target, "notification sent");
                store
                    .remove_notification(entry.id)
                    .and(store.record_notification_delivery(target, None))
            }
            Err(None) => {
                tracing::warn!(
                    target,
                    attempts = entry.attempts,
                    "notification dropped: undelivered for a day"
                );
                let reason = format!(
                    "a message was dropped after {} failed attempts over a day",
                    entry.attempts
                );
                store
                    .remove_notification(entry.id)
                    .and(store.record_notification_delivery(target, Some(&reason)))
            }
            Err(Some(error)) => {
                let next = Utc::now() + backoff(entry.attempts);
                tracing::warn!(
                    target,
                    attempts = entry.attempts + 1,
                    "notification failed, will retry: {error}"
                );
                store
                    .retry_notification_later(entry.id, next, &error)
                    .and(store.record_notification_delivery(target, Some(&error)))
            }
        };
        if let Err(e) = recorded {
            tracing::warn!(target, "cannot record the notification's delivery: {e}");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_up_to_half_an_hour() {
        let waits: Vec<u64> = (0..12).map(|a| backoff(a).as_secs()).collect();
        assert_eq!(
            waits,
            vec![10, 20, 40, 80, 160, 320, 640, 1280, 1800, 1800, 1800, 1800]
        );
    }
}
