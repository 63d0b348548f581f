//! Pushover `POST /1/messages.json` (form fields `token`, `user`, `title`, `message`, …),
//! with the limits the API documents.

use super::EventKind;
use super::message::cut;
use super::send::{Delivery, Sender, check};

pub(super) async fn send(
    sender: &Sender,
    token: &str,
    user: &str,
    devices: &[String],
    priority: Option<i8>,
    delivery: &Delivery<'_>,
) -> Result<(), String> {
    let n = delivery.notification;
    let priority = priority.unwrap_or(match n.event {
        EventKind::Failure | EventKind::Rollback | EventKind::PollError => 1,
        EventKind::Success | EventKind::ApprovalNeeded => 0,
    });
    let mut form = vec![
        ("token", token.to_string()),
        ("user", user.to_string()),
        ("title", cut(&delivery.text.title, 250)),
        ("message", cut(&delivery.text.body, 1024)),
        ("priority", priority.to_string()),
    ];
    if !devices.is_empty() {
        form.push(("device", devices.join(",")));
    }
    if let Some(link) = n.deploy_url.as_ref().or(n.urls.first()) {
        form.push(("url", cut(link, 512)));
    }
    let url = format!("{}/1/messages.json", sender.endpoints.pushover_api);
    let answer = check(sender.client.post(url).form(&form).send().await).await?;
    match serde_json::from_str::<serde_json::Value>(&answer) {
        Ok(v) if v["status"] == 1 => Ok(()),
        _ => Err("pushover did not confirm the message (status is not 1)".into()),
    }
}
