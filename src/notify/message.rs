//! What a notification says: the facts of one event (the outbox's payload and the JSON
//! webhook's body) and the fields templates see.

use serde::{Deserialize, Deserializer, Serialize, Serializer};

pub use crate::store::EventKind;

/// At most this many container log lines ride along with a failure.
pub const LOG_TAIL_LINES: usize = 20;
/// Each log line is cut to this many characters.
pub const LOG_LINE_CHARS: usize = 300;

/// One event, as the targets are told. The JSON webhook receives exactly this.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Notification {
    pub event: EventKind,
    pub project: String,
    pub stage: String,
    pub tag: String,
    pub digest: Option<String>,
    /// The deploy's status (`success`, `failed`, `rolled_back`, `awaiting_approval`, …).
    pub status: String,
    /// Why it failed.
    pub error: Option<String>,
    pub failed_step: Option<String>,
    pub deploy_id: Option<i64>,
    pub duration_ms: u64,
    pub urls: Vec<String>,
    /// The last lines of the new container's log when a deploy failed (bounded).
    #[serde(default)]
    pub log_tail: Vec<String>,
    /// The deploy's page in the UI; filled in by the notifier from the public URL.
    #[serde(default)]
    pub deploy_url: Option<String>,
    /// Poll errors: how many polls in a row failed.
    #[serde(default)]
    pub consecutive_failures: Option<u32>,
    /// How many identical failures of this stage were held back since the last message.
    #[serde(default)]
    pub repeats: u32,
}

impl Notification {
    /// A deploy waits for someone to approve it. The notifier adds the link to the deploy
    /// page; send it with [`super::Notifier::notify`].
    pub fn approval_needed(project: &str, stage: &str, tag: &str, deploy_id: i64) -> Notification {
        Notification {
            status: "awaiting_approval".into(),
            deploy_id: Some(deploy_id),
            ..Notification::blank(EventKind::ApprovalNeeded, project, stage, tag)
        }
    }

    /// A stage's registry poll failed `consecutive_failures` times in a row.
    pub fn poll_error(
        project: &str,
        stage: &str,
        error: &str,
        consecutive_failures: u32,
    ) -> Notification {
        Notification {
            status: "poll_error".into(),
            error: Some(error.into()),
            consecutive_failures: Some(consecutive_failures),
            ..Notification::blank(EventKind::PollError, project, stage, "")
        }
    }

    /// An event with only its names set; callers fill in the rest.
    pub fn blank(event: EventKind, project: &str, stage: &str, tag: &str) -> Notification {
        Notification {
            event,
            project: project.into(),
            stage: stage.into(),
            tag: tag.into(),
            digest: None,
            status: String::new(),
            error: None,
            failed_step: None,
            deploy_id: None,
            duration_ms: 0,
            urls: Vec::new(),
            log_tail: Vec::new(),
            deploy_url: None,
            consecutive_failures: None,
            repeats: 0,
        }
    }

    /// A made-up rollback with every field set: test sends and template previews.
    pub fn sample(event: EventKind) -> Notification {
        let failed = matches!(event, EventKind::Failure | EventKind::Rollback);
        Notification {
            digest: Some("sha256:4f2a91c0ffee".into()),
            status: match event {
                EventKind::Success => "success",
                EventKind::Failure => "failed",
                EventKind::Rollback => "rolled_back",
                EventKind::ApprovalNeeded => "awaiting_approval",
                EventKind::PollError => "poll_error",
            }
            .into(),
            error: (failed || event == EventKind::PollError)
                .then(|| "never became healthy: GET /healthz answered 503".into()),
            failed_step: failed.then(|| "health_check".into()),
            deploy_id: Some(42),
            duration_ms: 12_345,
            urls: vec!["https://dev-shop.example.test".into()],
            log_tail: if failed {
                vec![
                    "listening on :8080".into(),
                    "error: cannot reach database at db:5432".into(),
                ]
            } else {
                Vec::new()
            },
            deploy_url: Some("https://deploy.example.test/deploys/42".into()),
            consecutive_failures: (event == EventKind::PollError).then_some(3),
            ..Notification::blank(event, "shop", "dev", "dev-4f2a91")
        }
    }

    /// Keeps the last [`LOG_TAIL_LINES`] non-empty lines of a log, each cut short.
    pub fn set_log_tail(&mut self, log: &str) {
        let lines: Vec<&str> = log.lines().filter(|l| !l.trim().is_empty()).collect();
        let start = lines.len().saturating_sub(LOG_TAIL_LINES);
        self.log_tail = lines[start..]
            .iter()
            .map(|line| cut(line, LOG_LINE_CHARS))
            .collect();
    }

    /// Words for what happened: "deployed", "rolled back", …
    pub fn outcome(&self) -> &'static str {
        match self.event {
            EventKind::Success => "deployed",
            EventKind::Failure => "failed to deploy",
            EventKind::Rollback => "rolled back",
            EventKind::ApprovalNeeded => "waits for approval to deploy",
            EventKind::PollError => "cannot poll the registry",
        }
    }

    /// Whether a failure like this one would be the same message again.
    pub(super) fn fingerprint(&self) -> Option<String> {
        matches!(self.event, EventKind::Failure | EventKind::Rollback).then(|| {
            format!(
                "{}|{}|{}",
                self.event,
                self.failed_step.as_deref().unwrap_or(""),
                self.error.as_deref().unwrap_or("")
            )
        })
    }
}

/// Cuts `text` to at most `max` characters, marking the cut with "…".
pub fn cut(text: &str, max: usize) -> String {
    if text.chars().count() <= max {
        return text.to_string();
    }
    let mut out: String = text.chars().take(max.saturating_sub(1)).collect();
    out.push('…');
    out
}

impl Serialize for EventKind {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(self.as_str())
    }
}

impl<'de> Deserialize<'de> for EventKind {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        String::deserialize(deserializer)?
            .parse()
            .map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn log_tail_keeps_the_last_lines_each_cut_short() {
        let mut n = Notification::sample(EventKind::Rollback);
        let long = "x".repeat(1000);
        let log: String = (0..50).map(|i| format!("line {i}\n\n")).collect::<String>() + &long;
        n.set_log_tail(&log);
        assert_eq!(n.log_tail.len(), LOG_TAIL_LINES);
        assert_eq!(n.log_tail[0], "line 31");
        assert_eq!(n.log_tail.last().unwrap().chars().count(), LOG_LINE_CHARS);
        assert!(n.log_tail.last().unwrap().ends_with('…'));
    }

    #[test]
    fn payload_round_trips_through_json_with_snake_case_events() {
        let n = Notification::sample(EventKind::ApprovalNeeded);
        let json = serde_json::to_value(&n).unwrap();
        assert_eq!(json["event"], "approval_needed");
        assert_eq!(json["deploy_id"], 42);
        let back: Notification = serde_json::from_value(json).unwrap();
        assert_eq!(back, n);
    }
}
