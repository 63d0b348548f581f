//! The Apprise API server: `POST /notify/{KEY}` with `title`, `body`, `type` and
//! optional `tag`; Apprise fans the message out to the URLs saved under that key.

use super::EventKind;
use super::send::{Delivery, Sender};

pub(super) async fn send(
    sender: &Sender,
    url: &str,
    tags: &[String],
    delivery: &Delivery<'_>,
) -> Result<(), String> {
    let kind = match delivery.notification.event {
        EventKind::Success => "success",
        EventKind::Failure | EventKind::Rollback => "failure",
        EventKind::PollError => "warning",
        EventKind::ApprovalNeeded => "info",
    };
    let mut body = serde_json::json!({
        "title": delivery.text.title,
        "body": delivery.text.body,
        "type": kind,
        "format": "text",
    });
    if !tags.is_empty() {
        body["tag"] = serde_json::json!(tags.join(","));
    }
    sender.post_json(url, &body).await.map(drop)
}
