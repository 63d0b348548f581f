//! The outbox survives a restart: a real daemon process on a real SQLite file fails to
//! deliver (the target answers 503), is killed with the message pending, and delivers it
//! after it starts again.

use std::time::{Duration, Instant};

use serde_json::json;
use wiremock::matchers::{header, method, path};
use wiremock::{Mock, MockServer, ResponseTemplate};

use crate::support::daemon_process::DaemonProcess;

async fn wait_until(what: &str, daemon: &DaemonProcess, done: impl Fn() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(90);
    while !done() {
        assert!(
            Instant::now() < deadline,
            "never saw {what}; daemon log:\n{}",
            daemon.log()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test]
async fn a_pending_message_is_delivered_after_a_restart() {
    let fake = MockServer::start().await;
    let failing = Mock::given(method("POST"))
        .and(path("/message"))
        .respond_with(ResponseTemplate::new(503).set_body_string("gotify is restarting"))
        .mount_as_scoped(&fake)
        .await;
    let mut daemon = DaemonProcess::start().await;
    let api = daemon.api();
    let target = api
        .create(
            "/api/notifications",
            json!({ "name": "gotify", "url": format!("gotify://{}/AppToken1?disabletls=yes", fake.address()), "events": ["rollback"] }),
        )
        .await;
    let id = target["id"].as_i64().unwrap();
    assert_eq!(target["kind"], "gotify");

    // A rollback for the target, queued as the deployer queues it.
    let payload = serde_json::to_string(&docker_watcher::notify::Notification::sample(
        docker_watcher::notify::EventKind::Rollback,
    ))
    .unwrap();
    daemon.store().enqueue_notification(id, &payload).unwrap();
    // The worker looks at the queue at least every 30 s; it tries and fails once.
    wait_until("a failed attempt", &daemon, || {
        daemon
            .store()
            .pending_notifications()
            .unwrap()
            .first()
            .is_some_and(|m| m.attempts >= 1)
    })
    .await;
    let (_, view) = api.get(&format!("/api/notifications/{id}")).await;
    assert_eq!(view["delivery"]["pending"], 1, "{view}");
    assert!(
        view["delivery"]["last_error"]
            .as_str()
            .unwrap()
            .contains("503"),
        "{view}"
    );

    daemon.kill();
    drop(failing);
    Mock::given(method("POST"))
        .and(path("/message"))
        .and(header("X-Gotify-Key", "AppToken1"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({ "id": 1 })))
        .expect(1)
        .mount(&fake)
        .await;
    assert_eq!(
        daemon.store().pending_notifications().unwrap().len(),
        1,
        "still queued while down"
    );
    daemon.restart().await;
    wait_until("the queued message delivered", &daemon, || {
        daemon.store().pending_notifications().unwrap().is_empty()
    })
    .await;
    let (_, view) = daemon.api().get(&format!("/api/notifications/{id}")).await;
    assert_eq!(
        view["delivery"]["last_error"],
        serde_json::Value::Null,
        "{view}"
    );
    assert!(view["delivery"]["last_success_at"].is_string(), "{view}");
    fake.verify().await;
}
