//! The JSON webhook (the event as JSON, plus the rendered title and message), Slack and
//! Discord incoming webhooks, and ntfy topics.

use serde::Serialize;

use super::EventKind;
use super::message::Notification;
use super::send::{Delivery, Sender, check, one_text};
use crate::store::NotificationKind;

/// Discord refuses `content` longer than this.
const DISCORD_MAX: usize = 2000;
/// Slack truncates `text` beyond this.
const SLACK_MAX: usize = 40_000;

#[derive(Serialize)]
struct WebhookBody<'a> {
    #[serde(flatten)]
    notification: &'a Notification,
    title: &'a str,
    message: &'a str,
}

pub(super) async fn send(
    sender: &Sender,
    kind: NotificationKind,
    url: &str,
    delivery: &Delivery<'_>,
) -> Result<(), String> {
    let text = delivery.text;
    match kind {
        NotificationKind::Slack => sender
            .post_json(
                url,
                &serde_json::json!({ "text": one_text(text, SLACK_MAX) }),
            )
            .await
            .map(drop),
        NotificationKind::Discord => sender
            .post_json(
                url,
                &serde_json::json!({ "content": one_text(text, DISCORD_MAX) }),
            )
            .await
            .map(drop),
        NotificationKind::Ntfy => {
            let (priority, tags) = match delivery.notification.event {
                EventKind::Success => ("default", "white_check_mark"),
                EventKind::Failure => ("high", "x"),
                EventKind::Rollback => ("high", "leftwards_arrow_with_hook"),
                EventKind::ApprovalNeeded => ("default", "raised_hand"),
                EventKind::PollError => ("high", "warning"),
            };
            let mut request = sender
                .client
                .post(url)
                .header("Title", header_safe(&text.title))
                .header("Priority", priority)
                .header("Tags", tags)
                .body(text.body.clone());
            if let Some(link) = &delivery.notification.deploy_url {
                request = request.header("Click", header_safe(link));
            }
            check(request.send().await).await.map(drop)
        }
        _ => sender
            .post_json(
                url,
                &WebhookBody {
                    notification: delivery.notification,
                    title: &text.title,
                    message: &text.body,
                },
            )
            .await
            .map(drop),
    }
}

/// HTTP header values must be visible ASCII; anything else becomes `?`.
fn header_safe(text: &str) -> String {
    text.chars()
        .map(|c| {
            if c == ' ' || c.is_ascii_graphic() {
                c
            } else {
                '?'
            }
        })
        .collect()
}
