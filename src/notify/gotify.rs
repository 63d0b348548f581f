//! Gotify `POST /message` with the application token in `X-Gotify-Key`.

use super::EventKind;
use super::send::{Delivery, Sender, check};

pub(super) async fn send(
    sender: &Sender,
    server: &str,
    token: &str,
    priority: Option<u8>,
    delivery: &Delivery<'_>,
) -> Result<(), String> {
    // Failures go high enough to sound on Gotify's Android app (priority 8 and up).
    let priority = priority.unwrap_or(match delivery.notification.event {
        EventKind::Success => 4,
        EventKind::ApprovalNeeded => 6,
        EventKind::Failure | EventKind::Rollback | EventKind::PollError => 8,
    });
    let mut body = serde_json::json!({
        "title": delivery.text.title,
        "message": delivery.text.body,
        "priority": priority,
    });
    if let Some(link) = &delivery.notification.deploy_url {
        body["extras"] =
            serde_json::json!({ "client::notification": { "click": { "url": link } } });
    }
    let request = sender
        .client
        .post(format!("{}/message", server.trim_end_matches('/')))
        .header("X-Gotify-Key", token)
        .json(&body);
    check(request.send().await).await.map(drop)
}
