//! Delivery of one rendered message to one destination, dispatching to the channel
//! modules. Errors are short texts for the UI and the log; they never carry the target's
//! URL or token (reqwest's own error text includes the URL, so it is not used).

use std::time::Duration;

use serde::Serialize;

use super::message::Notification;
use super::template::Rendered;
use super::url::Destination;
use super::{apprise, email, gotify, matrix, pushover, teams, telegram, webhook};

/// Per-request timeout; a dead target costs at most this per attempt, off the deploy's path.
pub const SEND_TIMEOUT: Duration = Duration::from_secs(10);

/// The fixed hosts of hosted services, and extra trust for mail servers. Tests point the
/// hosts at local fakes; production uses [`Endpoints::default`].
#[derive(Clone, Debug)]
pub struct Endpoints {
    pub telegram_api: String,
    pub pushover_api: String,
    /// A PEM certificate trusted for SMTP TLS beside the system's roots (a private CA).
    pub smtp_extra_root_pem: Option<Vec<u8>>,
}

impl Default for Endpoints {
    fn default() -> Endpoints {
        Endpoints {
            telegram_api: "https://api.telegram.org".into(),
            pushover_api: "https://api.pushover.net".into(),
            smtp_extra_root_pem: None,
        }
    }
}

/// Sends messages; cheap to clone.
#[derive(Clone)]
pub struct Sender {
    pub(super) client: reqwest::Client,
    pub(super) endpoints: Endpoints,
}

/// What one delivery is: the event, its text, and an id stable across retries (Matrix
/// uses it as the transaction id, so a retry after a lost answer is not posted twice).
pub struct Delivery<'a> {
    pub notification: &'a Notification,
    pub text: &'a Rendered,
    pub id: &'a str,
}

impl Sender {
    pub fn new(endpoints: Endpoints) -> Sender {
        let client = crate::http_client::builder()
            .timeout(SEND_TIMEOUT)
            .connect_timeout(SEND_TIMEOUT)
            .user_agent(concat!("docker-watcher/", env!("CARGO_PKG_VERSION")))
            .build()
            .unwrap_or_default();
        Sender { client, endpoints }
    }

    pub async fn send(
        &self,
        destination: &Destination,
        delivery: &Delivery<'_>,
    ) -> Result<(), String> {
        match destination {
            Destination::Http { kind, url } => match kind {
                crate::store::NotificationKind::Teams => teams::send(self, url, delivery).await,
                _ => webhook::send(self, *kind, url, delivery).await,
            },
            Destination::Telegram { token, chats } => {
                telegram::send(self, token, chats, delivery).await
            }
            Destination::Gotify {
                server,
                token,
                priority,
            } => gotify::send(self, server, token, *priority, delivery).await,
            Destination::Email(mail) => email::send(self, mail, delivery).await,
            Destination::Matrix {
                server,
                token,
                rooms,
            } => matrix::send(self, server, token, rooms, delivery).await,
            Destination::Pushover {
                token,
                user,
                devices,
                priority,
            } => pushover::send(self, token, user, devices, *priority, delivery).await,
            Destination::Apprise { url, tags } => apprise::send(self, url, tags, delivery).await,
        }
    }

    /// POSTs JSON and checks the answer is a 2xx.
    pub(super) async fn post_json(
        &self,
        url: &str,
        body: &impl Serialize,
    ) -> Result<String, String> {
        check(self.client.post(url).json(body).send().await).await
    }
}

/// Turns a response into its body text when it is a 2xx, else into an error carrying the
/// status and the start of the service's own explanation.
pub(super) async fn check(result: reqwest::Result<reqwest::Response>) -> Result<String, String> {
    let response = result.map_err(|e| describe(&e))?;
    let status = response.status();
    let text = response.text().await.unwrap_or_default();
    if status.is_success() {
        Ok(text)
    } else {
        let detail = super::message::cut(text.trim(), 200);
        if detail.is_empty() {
            Err(format!("target answered {status}"))
        } else {
            Err(format!("target answered {status}: {detail}"))
        }
    }
}

pub(super) fn describe(error: &reqwest::Error) -> String {
    if error.is_timeout() {
        "timed out".into()
    } else if error.is_connect() {
        "could not connect".into()
    } else {
        "request failed".into()
    }
}

/// Title and body as one text, for channels with a single text field.
pub(super) fn one_text(text: &Rendered, max: usize) -> String {
    let joined = if text.body.is_empty() {
        text.title.clone()
    } else if text.title.is_empty() {
        text.body.clone()
    } else {
        format!("{}\n\n{}", text.title, text.body)
    };
    super::message::cut(&joined, max)
}
