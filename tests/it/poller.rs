//! The poller against a real docker-registry: first-poll safety, a new tag detected
//! exactly once, digest tracking, one listing per image, and back-off of a dead registry.

use std::sync::{Arc, Mutex};

use docker_watcher::crypto::{MasterKey, Sealer};
use docker_watcher::poller::Poller;
use docker_watcher::registry::RegistryKind;
use docker_watcher::store::*;
use docker_watcher::trigger::{DeployRequest, DeployTrigger};

use crate::support::registry::{RegistryOptions, TestRegistry};
use crate::support::{HEALTHY_IMAGE, UNHEALTHY_IMAGE, free_port, unique_name};

/// Records deploy requests instead of deploying (the deployer is tested on its own).
#[derive(Default)]
struct RecordingTrigger {
    requests: Mutex<Vec<DeployRequest>>,
}

#[async_trait::async_trait]
impl DeployTrigger for RecordingTrigger {
    async fn request_deploy(&self, request: DeployRequest) -> Result<i64, StoreError> {
        let mut requests = self.requests.lock().unwrap();
        requests.push(request);
        Ok(requests.len() as i64)
    }
}

impl RecordingTrigger {
    fn tags(&self) -> Vec<String> {
        self.requests
            .lock()
            .unwrap()
            .iter()
            .map(|r| r.tag.clone())
            .collect()
    }
}

struct Setup {
    store: Store,
    trigger: Arc<RecordingTrigger>,
    poller: Poller,
    _dir: tempfile::TempDir,
}

fn setup() -> Setup {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path(), Sealer::new(MasterKey::generate())).unwrap();
    let trigger = Arc::new(RecordingTrigger::default());
    let poller = Poller::new(store.clone(), trigger.clone());
    Setup {
        store,
        trigger,
        poller,
        _dir: dir,
    }
}

fn project(store: &Store, image: String, registry_id: Option<i64>) -> Project {
    store
        .create_project(&NewProject {
            name: unique_name("p"),
            image,
            registry_id,
            container_port: 8080,
            ..Default::default()
        })
        .unwrap()
}

fn polling_stage(store: &Store, project: &Project, name: &str, pattern: &str) -> Stage {
    store
        .create_stage(&NewStage {
            tag_pattern: pattern.into(),
            polling: true,
            ..NewStage::defaults(project.id, name)
        })
        .unwrap()
}

#[tokio::test]
async fn first_poll_is_a_baseline_and_a_new_tag_is_deployed_exactly_once() {
    let registry = TestRegistry::start().await;
    let repository = unique_name("acme/shop");
    registry.push(HEALTHY_IMAGE, &repository, "dev-1").await;
    registry.push(HEALTHY_IMAGE, &repository, "v1.0.0").await;
    let s = setup();
    let project = project(&s.store, format!("{}/{repository}", registry.host()), None);
    let dev = polling_stage(&s.store, &project, "dev", "dev-*");

    let first = s.poller.poll_once().await;
    assert_eq!(first.stages[0].result, PollResult::Baseline);
    assert!(
        s.trigger.tags().is_empty(),
        "the first poll deploys nothing"
    );
    let state = s.store.get_poll_state(dev.id).unwrap().unwrap();
    assert_eq!(
        state.seen.keys().collect::<Vec<_>>(),
        vec!["dev-1"],
        "only matching tags are kept"
    );

    registry.push(HEALTHY_IMAGE, &repository, "dev-2").await;
    registry.push(HEALTHY_IMAGE, &repository, "v1.1.0").await;
    let second = s.poller.poll_once().await;
    assert_eq!(second.stages[0].result, PollResult::NewTag);
    assert_eq!(second.stages[0].new_tag.as_deref(), Some("dev-2"));
    assert_eq!(s.trigger.tags(), vec!["dev-2"]);
    let request = s.trigger.requests.lock().unwrap()[0].clone();
    assert_eq!(
        (request.project_id, request.stage_id, request.trigger),
        (project.id, dev.id, Trigger::Poll)
    );

    let third = s.poller.poll_once().await;
    assert_eq!(third.stages[0].result, PollResult::NoChange);
    assert_eq!(s.trigger.tags(), vec!["dev-2"], "detected exactly once");
}

#[tokio::test]
async fn new_tag_without_auto_deploy_is_recorded_not_deployed() {
    let registry = TestRegistry::start().await;
    let repository = unique_name("acme/shop");
    registry.push(HEALTHY_IMAGE, &repository, "1.0.0").await;
    let s = setup();
    let project = project(&s.store, format!("{}/{repository}", registry.host()), None);
    let prod = s
        .store
        .create_stage(&NewStage {
            tag_pattern: "*".into(),
            version_range: Some(">=1.0, <2".into()),
            polling: true,
            auto_deploy: false,
            ..NewStage::defaults(project.id, "prod")
        })
        .unwrap();
    s.poller.poll_once().await;
    registry.push(HEALTHY_IMAGE, &repository, "2.0.0").await;
    registry.push(HEALTHY_IMAGE, &repository, "1.1.0").await;
    let outcome = s.poller.poll_once().await;
    assert_eq!(
        outcome.stages[0].new_tag.as_deref(),
        Some("1.1.0"),
        "2.0.0 is out of range"
    );
    assert_eq!(outcome.stages[0].deploy_id, None);
    assert!(s.trigger.tags().is_empty());
    assert_eq!(
        s.store
            .get_poll_state(prod.id)
            .unwrap()
            .unwrap()
            .last_new_tag
            .as_deref(),
        Some("1.1.0")
    );
}

#[tokio::test]
async fn digest_tracking_sees_a_re_pushed_tag() {
    let registry = TestRegistry::start_with(RegistryOptions {
        auth: Some(("ci".into(), "pw".into())),
        ..Default::default()
    })
    .await;
    let repository = unique_name("acme/shop");
    let first_digest = registry.push(HEALTHY_IMAGE, &repository, "latest").await;
    let s = setup();
    let stored = s
        .store
        .create_registry(&NewRegistry {
            name: unique_name("reg"),
            kind: RegistryKind::Oci,
            base_url: registry.url(),
            username: Some("ci".into()),
            secret: Some("pw".into()),
            insecure: true,
        })
        .unwrap();
    let project = project(
        &s.store,
        format!("{}/{repository}", registry.host()),
        Some(stored.id),
    );
    let stage = s
        .store
        .create_stage(&NewStage {
            tag_pattern: "latest".into(),
            polling: true,
            track_digest: true,
            ..NewStage::defaults(project.id, "dev")
        })
        .unwrap();
    s.poller.poll_once().await;
    let state = s.store.get_poll_state(stage.id).unwrap().unwrap();
    assert_eq!(state.seen.get("latest"), Some(&Some(first_digest.clone())));
    assert_eq!(
        s.poller.poll_once().await.stages[0].result,
        PollResult::NoChange
    );

    let second_digest = registry.push(UNHEALTHY_IMAGE, &repository, "latest").await;
    assert_ne!(first_digest, second_digest);
    let outcome = s.poller.poll_once().await;
    assert_eq!(outcome.stages[0].result, PollResult::NewTag, "{outcome:?}");
    let requests = s.trigger.requests.lock().unwrap().clone();
    assert_eq!(requests.len(), 1);
    assert_eq!(requests[0].digest.as_deref(), Some(second_digest.as_str()));
}

#[tokio::test]
async fn one_tags_listing_per_image_not_per_stage() {
    let registry = TestRegistry::start().await;
    let s = setup();
    let mut repositories = Vec::new();
    for _ in 0..3 {
        let repository = unique_name("acme/app");
        registry.push(HEALTHY_IMAGE, &repository, "dev-1").await;
        let project = project(&s.store, format!("{}/{repository}", registry.host()), None);
        for (stage, pattern) in [("dev", "dev-*"), ("prod", "v*"), ("staging", "*")] {
            polling_stage(&s.store, &project, stage, pattern);
        }
        repositories.push(repository);
    }
    let outcome = s.poller.poll_once().await;
    assert_eq!(outcome.images_listed, 3);
    assert_eq!(outcome.stages.len(), 9);
    s.poller.poll_once().await;
    for repository in &repositories {
        assert_eq!(
            registry.count_requests(&format!("GET /v2/{repository}/tags/list")),
            2,
            "one listing per image per cycle, over two cycles"
        );
    }
}

#[tokio::test]
async fn a_dead_registry_backs_off_and_does_not_stall_the_others() {
    let registry = TestRegistry::start().await;
    let repository = unique_name("acme/shop");
    registry.push(HEALTHY_IMAGE, &repository, "dev-1").await;
    let s = setup();
    let dead = project(
        &s.store,
        format!("127.0.0.1:{}/acme/gone", free_port()),
        None,
    );
    let dead_stage = polling_stage(&s.store, &dead, "dev", "*");
    let live = project(&s.store, format!("{}/{repository}", registry.host()), None);
    let live_stage = polling_stage(&s.store, &live, "dev", "*");

    let first = s.poller.poll_once().await;
    let by_stage = |o: &docker_watcher::poller::PollOutcome, id: i64| {
        o.stages.iter().find(|s| s.stage_id == id).cloned()
    };
    assert_eq!(
        by_stage(&first, dead_stage.id).unwrap().result,
        PollResult::Error
    );
    assert_eq!(
        by_stage(&first, live_stage.id).unwrap().result,
        PollResult::Baseline
    );
    let state = s.store.get_poll_state(dead_stage.id).unwrap().unwrap();
    assert!(
        state
            .last_error
            .as_deref()
            .unwrap()
            .contains("cannot reach"),
        "{state:?}"
    );

    registry.push(HEALTHY_IMAGE, &repository, "dev-2").await;
    let second = s.poller.poll_once().await;
    assert!(
        by_stage(&second, dead_stage.id).is_none(),
        "the dead registry is backing off"
    );
    assert_eq!(second.backing_off.len(), 1);
    assert_eq!(
        by_stage(&second, live_stage.id).unwrap().new_tag.as_deref(),
        Some("dev-2")
    );
    assert_eq!(
        s.store
            .get_poll_state(dead_stage.id)
            .unwrap()
            .unwrap()
            .baseline_at,
        None
    );
}

#[tokio::test]
async fn the_loop_stops_on_shutdown() {
    let s = setup();
    let poller = Arc::new(s.poller);
    let shutdown = tokio_util::sync::CancellationToken::new();
    let task = tokio::spawn(poller.run(shutdown.clone()));
    shutdown.cancel();
    tokio::time::timeout(std::time::Duration::from_secs(5), task)
        .await
        .expect("the loop ends promptly")
        .unwrap();
}
