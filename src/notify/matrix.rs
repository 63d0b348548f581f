//! Matrix client-server API: `PUT /_matrix/client/v3/rooms/{roomId}/send/m.room.message/{txnId}`
//! with the access token as a bearer token. The transaction id is stable across retries,
//! so the homeserver drops a repeat of a message it already has.

use percent_encoding::utf8_percent_encode;

use super::url::COMPONENT;

use super::send::{Delivery, Sender, check, one_text};

/// Keeps events well under Matrix's 64 KiB limit.
const MAX_BODY: usize = 30_000;

pub(super) async fn send(
    sender: &Sender,
    server: &str,
    token: &str,
    rooms: &[String],
    delivery: &Delivery<'_>,
) -> Result<(), String> {
    let body =
        serde_json::json!({ "msgtype": "m.text", "body": one_text(delivery.text, MAX_BODY) });
    for (index, room) in rooms.iter().enumerate() {
        let url = format!(
            "{}/_matrix/client/v3/rooms/{}/send/m.room.message/{}",
            server.trim_end_matches('/'),
            utf8_percent_encode(room, COMPONENT),
            utf8_percent_encode(&format!("dw-{}-{index}", delivery.id), COMPONENT),
        );
        let request = sender.client.put(url).bearer_auth(token).json(&body);
        check(request.send().await).await?;
    }
    Ok(())
}
