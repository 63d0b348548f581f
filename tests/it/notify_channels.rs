//! Every notification channel against a local fake on 127.0.0.1 that checks the request
//! exactly as the service documents it (path, method, headers, body), answering as the
//! service does. Each test goes the whole way: `notify` → outbox → render → send, and
//! checks the delivery status the UI shows.

use docker_watcher::crypto::{KeyFile, Sealer};
use docker_watcher::notify::{Endpoints, EventKind, HttpNotifier, Notification, Notifier};
use docker_watcher::store::{
    NewNotificationTarget, NotificationKind, Store, TargetFilter, Templates,
};
use serde_json::{Value, json};
use wiremock::matchers::{body_json, header, method, path, path_regex};
use wiremock::{Mock, MockServer, Request, ResponseTemplate};

pub struct Harness {
    pub store: Store,
    pub notifier: HttpNotifier,
    _dir: tempfile::TempDir,
}

/// A store with one target at `url`, and a notifier whose fixed hosts point at `fake`.
pub fn harness(url: &str, kind: NotificationKind, fake: Option<&MockServer>) -> (Harness, i64) {
    let mut endpoints = Endpoints::default();
    if let Some(fake) = fake {
        endpoints.telegram_api = fake.uri();
        endpoints.pushover_api = fake.uri();
    }
    harness_with(url, kind, endpoints)
}

/// A store with one target at `url`, and a notifier using `endpoints`.
pub fn harness_with(url: &str, kind: NotificationKind, endpoints: Endpoints) -> (Harness, i64) {
    let dir = tempfile::tempdir().unwrap();
    let (key, _) = KeyFile::new(dir.path().join("master.key"))
        .load_or_create()
        .unwrap();
    let store = Store::open(dir.path(), Sealer::new(key)).unwrap();
    let target = store
        .create_notification_target(&NewNotificationTarget {
            name: "team".into(),
            kind,
            url: url.into(),
            filter: TargetFilter::default(),
            templates: Templates::default(),
        })
        .unwrap();
    let notifier = HttpNotifier::with_endpoints(
        store.clone(),
        Some("https://deploy.example.test".into()),
        endpoints,
    );
    (
        Harness {
            store,
            notifier,
            _dir: dir,
        },
        target.id,
    )
}

impl Harness {
    /// Notifies `n` and runs one outbox round; returns the target's last error.
    pub async fn deliver(&self, n: Notification, target: i64) -> Option<String> {
        self.notifier.notify(n);
        self.notifier.deliver_due().await;
        self.store
            .get_notification_target(target)
            .unwrap()
            .status
            .last_error
    }
}

/// The rollback every test sends: every field set, the deploy link from the public URL.
fn rollback() -> Notification {
    Notification {
        deploy_url: None,
        ..Notification::sample(EventKind::Rollback)
    }
}

const TITLE: &str = "shop/dev: rolled back dev-4f2a91";
const BODY: &str = "shop/dev rolled back dev-4f2a91 in 12.3 s.\nFailed step: health_check\n\
    Reason: never became healthy: GET /healthz answered 503\nhttps://dev-shop.example.test\n\
    Deploy: https://deploy.example.test/deploys/42\nLast log lines:\nlistening on :8080\n\
    error: cannot reach database at db:5432";

fn one_text() -> String {
    format!("{TITLE}\n\n{BODY}")
}

#[tokio::test]
async fn telegram_send_message_per_chat_and_its_refusals() {
    let fake = MockServer::start().await;
    let token = "123456:ABC-DEF1234ghIkl-zyx57W2v1u123ew11";
    for chat in [json!(-1001234567890i64), json!("@ops_channel")] {
        Mock::given(method("POST"))
            .and(path(format!("/bot{token}/sendMessage")))
            .and(header("content-type", "application/json"))
            .and(body_json(json!({
                "chat_id": chat,
                "text": one_text(),
                "link_preview_options": { "is_disabled": true },
            })))
            .respond_with(ResponseTemplate::new(200).set_body_json(json!({
                "ok": true,
                "result": { "message_id": 7, "date": 1_700_000_000, "chat": { "id": -1001234567890i64, "type": "channel" }, "text": "…" }
            })))
            .expect(1)
            .mount(&fake)
            .await;
    }
    let url = format!("telegram://{token}@telegram?chats=-1001234567890,@ops_channel");
    let (h, target) = harness(&url, NotificationKind::Telegram, Some(&fake));
    assert_eq!(h.deliver(rollback(), target).await, None);
    assert!(h.store.pending_notifications().unwrap().is_empty());
    fake.verify().await;

    // A chat the bot cannot reach: Telegram's own reason is shown and the message waits.
    let refusing = MockServer::start().await;
    Mock::given(method("POST"))
        .respond_with(ResponseTemplate::new(400).set_body_json(json!({
            "ok": false, "error_code": 400, "description": "Bad Request: chat not found"
        })))
        .mount(&refusing)
        .await;
    let (h, target) = harness(&url, NotificationKind::Telegram, Some(&refusing));
    let error = h.deliver(rollback(), target).await.expect("an error");
    assert!(error.contains("chat not found"), "{error}");
    assert!(!error.contains(token), "the token never shows: {error}");
    let pending = h.store.pending_notifications().unwrap();
    assert_eq!(pending.len(), 1);
    assert_eq!(pending[0].attempts, 1);
}

#[tokio::test]
async fn gotify_message_with_application_token_header() {
    let fake = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/gotify/message"))
        .and(header("X-Gotify-Key", "AqW9.zE1kXb"))
        .and(body_json(json!({
            "title": TITLE,
            "message": BODY,
            "priority": 8,
            "extras": { "client::notification": { "click": { "url": "https://deploy.example.test/deploys/42" } } },
        })))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({
            "id": 25, "appid": 5, "message": BODY, "title": TITLE, "priority": 8, "date": "2026-11-30T02:00:00Z"
        })))
        .expect(1)
        .mount(&fake)
        .await;
    let url = format!(
        "gotify://{}/gotify/AqW9.zE1kXb?disabletls=yes",
        fake.address()
    );
    let (h, target) = harness(&url, NotificationKind::Gotify, None);
    assert_eq!(h.deliver(rollback(), target).await, None);
}

#[tokio::test]
async fn matrix_put_room_message_with_a_stable_transaction_id() {
    let fake = MockServer::start().await;
    Mock::given(method("PUT"))
        .and(path_regex(r"^/_matrix/client/v3/rooms/%21abcDEF%3Aexample\.test/send/m\.room\.message/dw-[0-9]+-0$"))
        .and(header("authorization", "Bearer syt_bot_secret"))
        .and(body_json(json!({ "msgtype": "m.text", "body": one_text() })))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({ "event_id": "$YUwRidLecu:example.test" })))
        .expect(1)
        .mount(&fake)
        .await;
    let url = format!(
        "matrix://:syt_bot_secret@{}/?rooms=!abcDEF:example.test&disabletls=yes",
        fake.address()
    );
    let (h, target) = harness(&url, NotificationKind::Matrix, None);
    assert_eq!(h.deliver(rollback(), target).await, None);
}

#[tokio::test]
async fn pushover_form_fields_as_documented() {
    let fake = MockServer::start().await;
    let expected: Vec<(String, String)> = [
        ("token", "azGDORePK8gMaC0QOYAMyEEuzJnyUi"),
        ("user", "uQiRzpo4DXghDmr9QzzfQu27cmVRsG"),
        ("title", TITLE),
        ("message", BODY),
        ("priority", "1"),
        ("device", "phone,tablet"),
        ("url", "https://deploy.example.test/deploys/42"),
    ]
    .iter()
    .map(|(k, v)| (k.to_string(), v.to_string()))
    .collect();
    Mock::given(method("POST"))
        .and(path("/1/messages.json"))
        .and(header("content-type", "application/x-www-form-urlencoded"))
        .and(move |request: &Request| {
            serde_urlencoded::from_bytes::<Vec<(String, String)>>(&request.body)
                .ok()
                .as_ref()
                == Some(&expected)
        })
        .respond_with(ResponseTemplate::new(200).set_body_json(
            json!({ "status": 1, "request": "647d2300-702c-4b38-8b2f-d56326ae460b" }),
        ))
        .expect(1)
        .mount(&fake)
        .await;
    let url = "pushover://shoutrrr:azGDORePK8gMaC0QOYAMyEEuzJnyUi@uQiRzpo4DXghDmr9QzzfQu27cmVRsG/?devices=phone,tablet";
    let (h, target) = harness(url, NotificationKind::Pushover, Some(&fake));
    assert_eq!(h.deliver(rollback(), target).await, None);
}

#[tokio::test]
async fn teams_workflow_gets_an_adaptive_card() {
    let fake = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/workflows/abc123/triggers/manual/paths/invoke"))
        .and(wiremock::matchers::query_param("sig", "s1g"))
        .and(body_json(json!({
            "type": "message",
            "attachments": [{
                "contentType": "application/vnd.microsoft.card.adaptive",
                "contentUrl": null,
                "content": {
                    "$schema": "http://adaptivecards.io/schemas/adaptive-card.json",
                    "type": "AdaptiveCard",
                    "version": "1.4",
                    "body": [
                        { "type": "TextBlock", "text": TITLE, "weight": "Bolder", "size": "Medium", "wrap": true },
                        { "type": "TextBlock", "text": BODY, "wrap": true },
                    ],
                    "actions": [{ "type": "Action.OpenUrl", "title": "Open deploy", "url": "https://deploy.example.test/deploys/42" }],
                },
            }],
        })))
        .respond_with(ResponseTemplate::new(202))
        .expect(1)
        .mount(&fake)
        .await;
    let url = format!(
        "teams+{}/workflows/abc123/triggers/manual/paths/invoke?api-version=2016-06-01&sig=s1g",
        fake.uri()
    );
    let (h, target) = harness(&url, NotificationKind::Teams, None);
    assert_eq!(h.deliver(rollback(), target).await, None);
}

#[tokio::test]
async fn apprise_api_notify_key_with_type_and_tags() {
    let fake = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/notify/team"))
        .and(body_json(json!({ "title": TITLE, "body": BODY, "type": "failure", "format": "text", "tag": "ops,devs" })))
        .respond_with(ResponseTemplate::new(200).set_body_string("Notification(s) sent."))
        .expect(1)
        .mount(&fake)
        .await;
    let url = format!("apprise+{}/notify/team?tags=ops,devs", fake.uri());
    let (h, target) = harness(&url, NotificationKind::Apprise, None);
    assert_eq!(h.deliver(rollback(), target).await, None);
}

#[tokio::test]
async fn json_webhook_slack_discord_and_ntfy() {
    let fake = MockServer::start().await;
    let mut webhook: Value = serde_json::to_value(Notification {
        deploy_url: Some("https://deploy.example.test/deploys/42".into()),
        ..rollback()
    })
    .unwrap();
    webhook["title"] = json!(TITLE);
    webhook["message"] = json!(BODY);
    assert_eq!(webhook["event"], "rollback");
    for (route, body) in [
        ("/hook", webhook),
        ("/slack", json!({ "text": one_text() })),
        ("/discord", json!({ "content": one_text() })),
    ] {
        Mock::given(method("POST"))
            .and(path(route))
            .and(body_json(body))
            .respond_with(ResponseTemplate::new(204))
            .expect(1)
            .mount(&fake)
            .await;
    }
    Mock::given(method("POST"))
        .and(path("/deploys-topic"))
        .and(header("Title", TITLE))
        .and(header("Priority", "high"))
        .and(header("Tags", "leftwards_arrow_with_hook"))
        .and(header("Click", "https://deploy.example.test/deploys/42"))
        .and(wiremock::matchers::body_string(BODY))
        .respond_with(
            ResponseTemplate::new(200)
                .set_body_json(json!({ "id": "sPs71M8A2T", "event": "message" })),
        )
        .expect(1)
        .mount(&fake)
        .await;
    for (route, kind) in [
        ("/hook", NotificationKind::Webhook),
        ("/slack", NotificationKind::Slack),
        ("/discord", NotificationKind::Discord),
        ("/deploys-topic", NotificationKind::Ntfy),
    ] {
        let url = docker_watcher::notify::Destination::parse(
            &format!("{}{route}", fake.uri()),
            Some(kind),
        )
        .unwrap()
        .to_url();
        let (h, target) = harness(&url, kind, None);
        assert_eq!(h.deliver(rollback(), target).await, None, "{kind}");
    }
}

#[tokio::test]
async fn filters_and_repeats_decide_what_is_queued() {
    let fake = MockServer::start().await;
    Mock::given(method("POST"))
        .respond_with(ResponseTemplate::new(204))
        .mount(&fake)
        .await;
    let (h, target) = harness(
        &format!("{}/hook", fake.uri()),
        NotificationKind::Webhook,
        None,
    );
    h.store
        .update_notification_target(
            target,
            &docker_watcher::store::NotificationTargetUpdate {
                filter: Some(TargetFilter {
                    events: vec![EventKind::Rollback, EventKind::PollError],
                    projects: vec!["shop".into()],
                    stages: Vec::new(),
                    poll_error_threshold: 2,
                }),
                ..Default::default()
            },
        )
        .unwrap();
    let queued = |h: &Harness| h.store.pending_notifications().unwrap().len();
    h.notifier.notify(Notification::sample(EventKind::Success));
    assert_eq!(queued(&h), 0, "success is not wanted");
    h.notifier.notify(Notification {
        project: "blog".into(),
        ..rollback()
    });
    assert_eq!(queued(&h), 0, "other projects are not wanted");
    h.notifier.notify(rollback());
    h.notifier.notify(rollback());
    assert_eq!(queued(&h), 1, "an identical rollback is held back");
    h.notifier.notify(Notification::poll_error(
        "shop",
        "dev",
        "registry answered 503",
        1,
    ));
    assert_eq!(queued(&h), 1, "one failed poll is below the threshold");
    h.notifier.notify(Notification::poll_error(
        "shop",
        "dev",
        "registry answered 503",
        2,
    ));
    h.notifier.notify(Notification::poll_error(
        "shop",
        "dev",
        "registry answered 503",
        3,
    ));
    assert_eq!(
        queued(&h),
        2,
        "sent once, when the streak reaches the threshold"
    );
    h.notifier.deliver_due().await;
    assert_eq!(queued(&h), 0);
    let sent: Vec<Value> = fake
        .received_requests()
        .await
        .unwrap()
        .iter()
        .map(|r| r.body_json().unwrap())
        .collect();
    assert_eq!(sent[1]["event"], "poll_error");
    assert_eq!(sent[1]["consecutive_failures"], 2);
}

#[tokio::test]
async fn approval_needed_links_the_deploy_page() {
    let fake = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/slack"))
        .and(body_json(json!({ "text": "shop/prod: waits for approval to deploy v1.4.0\n\nshop/prod waits for approval to deploy v1.4.0.\nDeploy: https://deploy.example.test/deploys/9" })))
        .respond_with(ResponseTemplate::new(200))
        .expect(1)
        .mount(&fake)
        .await;
    let (h, target) = harness(
        &format!("slack+{}/slack", fake.uri()),
        NotificationKind::Slack,
        None,
    );
    assert_eq!(
        h.deliver(
            Notification::approval_needed("shop", "prod", "v1.4.0", 9),
            target
        )
        .await,
        None
    );
}
