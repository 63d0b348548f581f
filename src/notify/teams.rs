//! Microsoft Teams through a Workflows (Power Automate) webhook: a message carrying one
//! Adaptive Card, the form the "post to a channel when a webhook request is received"
//! template expects.

use super::send::{Delivery, Sender};

pub(super) async fn send(
    sender: &Sender,
    url: &str,
    delivery: &Delivery<'_>,
) -> Result<(), String> {
    let text = delivery.text;
    let mut body = vec![
        serde_json::json!({ "type": "TextBlock", "text": text.title, "weight": "Bolder", "size": "Medium", "wrap": true }),
        serde_json::json!({ "type": "TextBlock", "text": text.body, "wrap": true }),
    ];
    let mut card = serde_json::json!({
        "$schema": "http://adaptivecards.io/schemas/adaptive-card.json",
        "type": "AdaptiveCard",
        "version": "1.4",
    });
    if let Some(link) = &delivery.notification.deploy_url {
        card["actions"] =
            serde_json::json!([{ "type": "Action.OpenUrl", "title": "Open deploy", "url": link }]);
    }
    card["body"] = serde_json::Value::Array(std::mem::take(&mut body));
    let message = serde_json::json!({
        "type": "message",
        "attachments": [{
            "contentType": "application/vnd.microsoft.card.adaptive",
            "contentUrl": null,
            "content": card,
        }],
    });
    sender.post_json(url, &message).await.map(drop)
}
