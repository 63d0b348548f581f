//! Telegram Bot API `sendMessage`: one plain-text message per chat (no parse mode, so
//! nothing in a tag or log line needs escaping).

use serde::Deserialize;

use super::send::{Delivery, Sender, check, one_text};

/// Telegram refuses texts longer than this.
const MAX_TEXT: usize = 4096;

#[derive(Deserialize)]
struct Answer {
    ok: bool,
    description: Option<String>,
}

pub(super) async fn send(
    sender: &Sender,
    token: &str,
    chats: &[String],
    delivery: &Delivery<'_>,
) -> Result<(), String> {
    let url = format!("{}/bot{token}/sendMessage", sender.endpoints.telegram_api);
    let text = one_text(delivery.text, MAX_TEXT);
    for chat in chats {
        // Numeric ids go as numbers, `@channel` names as strings, as the API documents.
        let chat_id = chat
            .parse::<i64>()
            .map_or_else(|_| serde_json::json!(chat), |id| serde_json::json!(id));
        let body = serde_json::json!({
            "chat_id": chat_id,
            "text": text,
            "link_preview_options": { "is_disabled": true },
        });
        let result = check(sender.client.post(&url).json(&body).send().await).await;
        // Telegram explains refusals in `description` ("Bad Request: chat not found").
        let answer = result.map_err(|e| match e.split_once(": ") {
            Some((status, json)) => match serde_json::from_str::<Answer>(json) {
                Ok(Answer {
                    description: Some(d),
                    ..
                }) => format!("{status}: {d}"),
                _ => e.clone(),
            },
            None => e,
        })?;
        match serde_json::from_str::<Answer>(&answer) {
            Ok(Answer { ok: true, .. }) => {}
            Ok(Answer { description, .. }) => {
                return Err(format!(
                    "telegram refused: {}",
                    description.unwrap_or_default()
                ));
            }
            Err(_) => {
                return Err("telegram answered something that is not the Bot API's JSON".into());
            }
        }
    }
    Ok(())
}
