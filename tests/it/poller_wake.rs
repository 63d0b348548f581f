//! The poller reacts at once to what people change, against a real docker-registry: a new
//! polling stage gets its baseline within seconds, a shorter interval takes effect without
//! waiting out the old one, and a poll state that cannot be saved never deploys the same
//! tag twice.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use docker_watcher::crypto::{MasterKey, Sealer};
use docker_watcher::poller::Poller;
use docker_watcher::store::*;
use docker_watcher::trigger::{DeployRequest, DeployTrigger};
use serde_json::{Value, json};

use crate::support::app::{Api, spawn_app};
use crate::support::registry::TestRegistry;
use crate::support::{HEALTHY_IMAGE, unique_name};

/// Waits (at most `limit`) until the stage's poll state satisfies `done`; panics with the
/// last state otherwise.
async fn wait_poll_state(api: &Api, stage: &Value, limit: Duration, done: impl Fn(&Value) -> bool) {
    let deadline = Instant::now() + limit;
    loop {
        let (status, state) = api
            .get(&format!("/api/stages/{}/poll-state", stage["id"]))
            .await;
        assert_eq!(status, 200, "{state}");
        if done(&state) {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "poll state not reached within {limit:?}: {state}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test]
async fn new_polling_stages_and_a_new_interval_take_effect_at_once() {
    let app = spawn_app().await;
    let api = app.api().await;
    let registry = TestRegistry::start().await;
    let repository = unique_name("acme/shop");
    registry.push(HEALTHY_IMAGE, &repository, "v1").await;
    let project = api
        .create(
            "/api/projects",
            json!({ "name": unique_name("shop"), "image": format!("{}/{repository}", registry.host()),
                    "container_port": 8080 }),
        )
        .await;
    let stages = format!("/api/projects/{}/stages", project["id"]);
    let baselined = |s: &Value| s["polled"] == true && s["baseline_at"].is_string();

    // The default interval is 300 s: only a woken poller baselines these within seconds.
    let first = api
        .create(
            &stages,
            json!({ "name": "dev", "polling": true, "auto_deploy": false }),
        )
        .await;
    wait_poll_state(&api, &first, Duration::from_secs(20), baselined).await;
    let second = api
        .create(
            &stages,
            json!({ "name": "qa", "polling": true, "auto_deploy": false }),
        )
        .await;
    wait_poll_state(&api, &second, Duration::from_secs(20), baselined).await;

    // A new tag, then a shorter interval (60 s): the poller does not sit out its 300 s.
    registry.push(HEALTHY_IMAGE, &repository, "v2").await;
    let (status, body) = api
        .put("/api/settings", json!({ "poll_interval_secs": 60 }))
        .await;
    assert_eq!(status, 200, "{body}");
    wait_poll_state(&api, &first, Duration::from_secs(30), |s| {
        s["last_new_tag"] == "v2"
    })
    .await;
}

/// Counts deploy requests; deploys nothing.
#[derive(Default)]
struct CountingTrigger {
    tags: Mutex<Vec<String>>,
}

#[async_trait::async_trait]
impl DeployTrigger for CountingTrigger {
    async fn request_deploy(&self, request: DeployRequest) -> Result<i64, StoreError> {
        let mut tags = self.tags.lock().unwrap();
        tags.push(request.tag);
        Ok(tags.len() as i64)
    }
}

#[tokio::test]
async fn a_poll_state_that_cannot_be_saved_does_not_deploy_the_same_tag_twice() {
    let registry = TestRegistry::start().await;
    let repository = unique_name("acme/shop");
    registry.push(HEALTHY_IMAGE, &repository, "v1").await;
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path(), Sealer::new(MasterKey::generate())).unwrap();
    let project = store
        .create_project(&NewProject {
            name: unique_name("p"),
            image: format!("{}/{repository}", registry.host()),
            container_port: 8080,
            ..Default::default()
        })
        .unwrap();
    store
        .create_stage(&NewStage {
            polling: true,
            ..NewStage::defaults(project.id, "dev")
        })
        .unwrap();
    let trigger = Arc::new(CountingTrigger::default());
    let poller = Poller::new(store.clone(), trigger.clone());
    poller.poll_once().await; // baseline
    registry.push(HEALTHY_IMAGE, &repository, "v2").await;

    // Another writer holds the database: reads work (WAL), writes fail after the busy
    // timeout, as on a full disk or a locked file.
    let blocker =
        rusqlite::Connection::open(dir.path().join(docker_watcher::store::DATABASE_FILE)).unwrap();
    blocker.execute_batch("BEGIN EXCLUSIVE").unwrap();
    let blocked = poller.poll_once().await;
    blocker.execute_batch("ROLLBACK").unwrap();
    assert_eq!(blocked.stages[0].result, PollResult::Error, "{blocked:?}");

    let after = poller.poll_once().await;
    poller.poll_once().await;

    assert_eq!(after.stages[0].new_tag.as_deref(), Some("v2"), "{after:?}");
    assert_eq!(
        *trigger.tags.lock().unwrap(),
        vec!["v2".to_string()],
        "v2 is requested once, after its state could be saved"
    );
}
