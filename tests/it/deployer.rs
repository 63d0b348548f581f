//! The deployer on the real Docker Engine, with images pushed to a real registry: healthy
//! deploys, every way a deploy fails and rolls back, instances side by side, the queue,
//! reconciliation after a crash, and notifications.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::Json;
use axum::routing::post;
use docker_watcher::deployer::{DeployOutcome, DeployRequest, DeployTrigger};
use docker_watcher::docker::{ContainerSpec, Publish, labels};
use docker_watcher::store::*;

use crate::support::deploy::DeployHarness;
use crate::support::{CRASH_IMAGE, HEALTHY_IMAGE, SLOW_IMAGE, UNHEALTHY_IMAGE, free_port};

/// A registry may announce a push before the tag resolves (Docker Distribution notifies
/// from inside the manifest write and links the tag after it): the pull asks again.
#[tokio::test]
async fn a_tag_pushed_just_after_the_deploy_was_requested_is_pulled() {
    let h = DeployHarness::new().await;
    let project = h.project(Some("/health"));
    let stage = h.stage(&project, "dev", 1);
    let push_later = async {
        tokio::time::sleep(Duration::from_secs(1)).await;
        h.registry
            .push_keeping_local_tag(HEALTHY_IMAGE, &h.repository, "dev-1")
            .await
    };
    let ((deploy, outcome), _) = tokio::join!(h.deploy_now(&stage, "dev-1"), push_later);
    let logs = h.store.deploy_logs(deploy.id, 0).unwrap();
    let DeployOutcome::Success { instance_id } = outcome else {
        panic!("{outcome:?}: {logs:?}");
    };
    assert!(
        logs.iter().any(|l| l.message.contains("does not know")),
        "the first pull found no tag: {logs:?}"
    );
    let instance = h.store.get_instance(instance_id).unwrap();
    assert_eq!(h.get_from(&instance, "/tag").await.unwrap(), "dev-1");
}

#[tokio::test]
async fn healthy_deploy_runs_the_tag_and_records_every_step() {
    let h = DeployHarness::new().await;
    let digest = h.push(HEALTHY_IMAGE, "dev-1").await;
    let project = h.project(Some("/health"));
    let stage = h.stage(&project, "dev", 1);

    let (deploy, outcome) = h.deploy_now(&stage, "dev-1").await;
    let DeployOutcome::Success { instance_id } = outcome else {
        panic!("{outcome:?}: {:?}", h.store.deploy_logs(deploy.id, 0));
    };
    assert_eq!(deploy.status, DeployStatus::Success);
    assert_eq!(
        deploy.digest.as_deref(),
        Some(digest.as_str()),
        "the pulled digest is recorded"
    );
    assert!(deploy.finished_at.is_some());

    let instance = h.store.get_instance(instance_id).unwrap();
    assert_eq!(instance.status, InstanceStatus::Running);
    assert_eq!(
        h.get_from(&instance, "/tag").await.unwrap(),
        "dev-1",
        "DW_TAG is set"
    );
    let container_id = instance.container_id.clone().unwrap();
    assert_eq!(
        h.get_from(&instance, "/id").await.unwrap(),
        container_id[..12]
    );

    let info = h
        .engine
        .inspect_container(&docker_watcher::docker::ContainerId::new(&container_id))
        .await
        .unwrap();
    assert!(
        info.name
            .starts_with(&format!("dw-{}-dev-dev-1-", project.name)),
        "{}",
        info.name
    );
    assert_eq!(info.labels.get(labels::PROJECT), Some(&project.name));
    assert_eq!(
        info.labels.get(labels::STAGE).map(String::as_str),
        Some("dev")
    );
    assert_eq!(
        info.labels.get(labels::INSTANCE),
        Some(&instance_id.to_string())
    );
    assert_eq!(
        info.labels.get(labels::DEPLOY),
        Some(&deploy.id.to_string())
    );

    let steps: Vec<String> = h
        .store
        .deploy_logs(deploy.id, 0)
        .unwrap()
        .into_iter()
        .map(|l| l.step)
        .collect();
    for step in ["pull", "create", "start", "health_check", "done"] {
        assert!(steps.iter().any(|s| s == step), "no {step} in {steps:?}");
    }
}

#[tokio::test]
async fn never_healthy_image_is_rolled_back_and_the_old_instance_keeps_serving() {
    let h = DeployHarness::new().await;
    h.push(HEALTHY_IMAGE, "dev-1").await;
    h.push(UNHEALTHY_IMAGE, "dev-2").await;
    let project = h.project(Some("/health"));
    let stage = h.stage(&project, "dev", 1);
    let (_, first) = h.deploy_now(&stage, "dev-1").await;
    let DeployOutcome::Success { instance_id: old } = first else {
        panic!("{first:?}")
    };

    let (deploy, outcome) = h.deploy_now(&stage, "dev-2").await;
    assert!(
        matches!(outcome, DeployOutcome::RolledBack { ref step, .. } if step == "health_check"),
        "{outcome:?}"
    );
    assert_eq!(deploy.status, DeployStatus::RolledBack);
    assert_eq!(deploy.failed_step.as_deref(), Some("health_check"));
    assert!(
        deploy
            .error
            .as_deref()
            .unwrap()
            .contains("did not become healthy"),
        "{:?}",
        deploy.error
    );

    let failed = h.store.get_instance(deploy.instance_id.unwrap()).unwrap();
    assert_eq!(failed.status, InstanceStatus::Failed);
    assert!(
        !h.container_exists(failed.container_id.as_deref().unwrap())
            .await,
        "nothing left behind"
    );
    let containers = h.containers().await;
    assert_eq!(
        containers.len(),
        1,
        "only the old container: {containers:?}"
    );

    let old = h.store.get_instance(old).unwrap();
    assert_eq!(old.status, InstanceStatus::Running);
    assert_eq!(
        h.get_from(&old, "/health").await.unwrap(),
        "ok",
        "the previous instance still serves"
    );
}

#[tokio::test]
async fn container_that_exits_at_once_fails_fast_with_its_log() {
    let h = DeployHarness::new().await;
    h.push(CRASH_IMAGE, "dev-crash").await;
    let project = h.project(Some("/health"));
    let stage = h.stage(&project, "dev", 1);
    // A long budget: the crash must be noticed by the container's state, not the budget.
    h.store
        .update_settings(&SettingsUpdate {
            health_start_period: Some(Duration::from_secs(120)),
            ..Default::default()
        })
        .unwrap();
    let (deploy, outcome) = h.deploy_now(&stage, "dev-crash").await;
    assert!(
        matches!(outcome, DeployOutcome::RolledBack { .. }),
        "{outcome:?}"
    );
    let error = deploy.error.unwrap();
    // Under `unless-stopped` Docker may already be restarting it, which hides the exit code.
    assert!(
        error.contains("exit code 3") || error.contains("restart"),
        "{error}"
    );
    assert!(
        error.contains("crashing on purpose"),
        "the container's own log is quoted: {error}"
    );
    let duration = deploy.finished_at.unwrap() - deploy.started_at.unwrap();
    assert!(
        duration < chrono::Duration::seconds(60),
        "failed fast, not after the 120 s start period"
    );
    assert!(h.containers().await.is_empty());
}

#[tokio::test]
async fn pull_of_a_missing_tag_fails_without_creating_anything() {
    let h = DeployHarness::new().await;
    h.push(HEALTHY_IMAGE, "dev-1").await;
    let project = h.project(Some("/health"));
    let stage = h.stage(&project, "dev", 1);
    let (deploy, outcome) = h.deploy_now(&stage, "no-such-tag").await;
    assert!(
        matches!(outcome, DeployOutcome::Failed { ref step, .. } if step == "pull"),
        "{outcome:?}"
    );
    assert_eq!(deploy.status, DeployStatus::Failed);
    assert!(deploy.error.unwrap().contains("not found"));
    assert_eq!(deploy.instance_id, None);
    assert!(h.store.list_instances(stage.id).unwrap().is_empty());
}

#[tokio::test]
async fn slow_starter_becomes_healthy_within_the_budget() {
    let h = DeployHarness::new().await;
    h.push(SLOW_IMAGE, "dev-slow").await;
    let project = h.project(Some("/health"));
    let stage = h.stage(&project, "dev", 1);
    // The image is healthy after 4 s; the start period is 2 s, then 3 × 200 ms is not
    // enough — so give this project a longer start period of its own.
    h.store
        .update_project(
            project.id,
            &ProjectUpdate {
                health: Some(ProjectHealth {
                    start_period: Some(Duration::from_secs(15)),
                    ..Default::default()
                }),
                ..Default::default()
            },
        )
        .unwrap();
    let (deploy, outcome) = h.deploy_now(&stage, "dev-slow").await;
    assert!(
        matches!(outcome, DeployOutcome::Success { .. }),
        "{outcome:?} {:?}",
        deploy.error
    );
}

#[tokio::test]
async fn instances_run_side_by_side_and_the_oldest_beyond_the_limit_goes() {
    let h = DeployHarness::new().await;
    for tag in ["v1", "v2", "v3"] {
        h.push(HEALTHY_IMAGE, tag).await;
    }
    let project = h.project(Some("/health"));
    let stage = h.stage(&project, "dev", 2);
    let mut ids = Vec::new();
    for tag in ["v1", "v2"] {
        let (_, outcome) = h.deploy_now(&stage, tag).await;
        let DeployOutcome::Success { instance_id } = outcome else {
            panic!("{outcome:?}")
        };
        ids.push(instance_id);
    }
    assert_eq!(
        h.containers().await.len(),
        2,
        "a new deploy never stops existing instances"
    );
    let first = h.store.get_instance(ids[0]).unwrap();

    let (_, outcome) = h.deploy_now(&stage, "v3").await;
    assert!(matches!(outcome, DeployOutcome::Success { .. }));
    // v1 is off the air at once; its container stops in the background.
    h.deployer.settle().await;
    let tags: Vec<String> = h
        .store
        .list_instances(stage.id)
        .unwrap()
        .into_iter()
        .map(|i| i.tag)
        .collect();
    assert_eq!(tags, vec!["v2", "v3"], "v1 was the oldest");
    assert!(
        !h.container_exists(first.container_id.as_deref().unwrap())
            .await
    );
    assert_eq!(h.containers().await.len(), 2);
}

#[tokio::test]
async fn redeploying_a_running_tag_replaces_its_instance() {
    let h = DeployHarness::new().await;
    h.push(HEALTHY_IMAGE, "v1").await;
    let project = h.project(Some("/health"));
    let stage = h.stage(&project, "dev", 3);
    let (_, first) = h.deploy_now(&stage, "v1").await;
    let DeployOutcome::Success { instance_id: old } = first else {
        panic!()
    };
    let old = h.store.get_instance(old).unwrap();
    let (_, second) = h.deploy_now(&stage, "v1").await;
    let DeployOutcome::Success { instance_id: new } = second else {
        panic!("{second:?}")
    };
    assert_ne!(old.id, new);
    h.deployer.settle().await;
    let instances = h.store.list_instances(stage.id).unwrap();
    assert_eq!(
        instances.iter().map(|i| i.id).collect::<Vec<_>>(),
        vec![new]
    );
    assert!(
        !h.container_exists(old.container_id.as_deref().unwrap())
            .await
    );
}

#[tokio::test]
async fn requests_for_one_stage_are_serialised_and_the_newest_wins() {
    let h = DeployHarness::new().await;
    for tag in ["dev-1", "dev-2", "dev-3"] {
        h.push(HEALTHY_IMAGE, tag).await;
    }
    let project = h.project(Some("/health"));
    let stage = h.stage(&project, "dev", 1);
    let request = |tag: &str| DeployRequest {
        project_id: project.id,
        stage_id: stage.id,
        tag: tag.into(),
        digest: None,
        trigger: Trigger::Webhook,
        detected_at: Some(chrono::Utc::now()),
        origin: Default::default(),
    };
    let first = h.deployer.request_deploy(request("dev-1")).await.unwrap();
    let second = h.deployer.request_deploy(request("dev-2")).await.unwrap();
    let third = h.deployer.request_deploy(request("dev-3")).await.unwrap();

    let first = h.wait_final(first).await;
    let second = h.wait_final(second).await;
    let third = h.wait_final(third).await;
    assert_eq!(first.status, DeployStatus::Success);
    assert_eq!(
        second.status,
        DeployStatus::Superseded,
        "the waiting request was replaced"
    );
    assert_eq!(third.status, DeployStatus::Success);
    assert!(
        third.started_at.unwrap() >= first.finished_at.unwrap(),
        "one at a time per stage"
    );
    h.deployer.settle().await;
    let instances = h.store.list_instances(stage.id).unwrap();
    assert_eq!(
        instances.iter().map(|i| i.tag.as_str()).collect::<Vec<_>>(),
        vec!["dev-3"]
    );
}

/// A burst of pushes for one stage, all at once: the admissions are written in batches
/// (several requests to one commit), yet each request gets its own deploy, every one
/// either runs or is superseded, and the stage ends on the newest.
#[tokio::test]
async fn a_burst_of_pushes_for_one_stage_ends_on_the_newest_and_supersedes_the_rest() {
    let h = DeployHarness::new().await;
    h.push(HEALTHY_IMAGE, "burst").await;
    let project = h.project(Some("/health"));
    let stage = h.stage(&project, "dev", 1);
    let requests = (0..100).map(|_| {
        h.deployer.request_deploy(DeployRequest {
            project_id: project.id,
            stage_id: stage.id,
            tag: "burst".into(),
            digest: None,
            trigger: Trigger::Webhook,
            detected_at: Some(chrono::Utc::now()),
            origin: Default::default(),
        })
    });
    let mut ids: Vec<i64> = futures_util::future::join_all(requests)
        .await
        .into_iter()
        .map(Result::unwrap)
        .collect();
    ids.sort_unstable();
    ids.dedup();
    assert_eq!(ids.len(), 100, "one deploy per request");
    let mut statuses = Vec::new();
    for id in &ids {
        statuses.push(h.wait_final(*id).await.status);
    }
    let newest = *ids.last().unwrap();
    assert_eq!(
        h.store.get_deploy(newest).unwrap().status,
        DeployStatus::Success,
        "the newest request deploys"
    );
    let ran = statuses
        .iter()
        .filter(|s| **s == DeployStatus::Success)
        .count();
    assert!(
        statuses
            .iter()
            .all(|s| matches!(s, DeployStatus::Success | DeployStatus::Superseded)),
        "{statuses:?}"
    );
    // The first request runs while the others arrive; they replace one another.
    assert!(ran <= 2, "{ran} of the burst ran: {statuses:?}");
    for id in &ids {
        let log = h.store.deploy_logs(*id, 0).unwrap();
        assert!(
            log.first()
                .is_some_and(|l| l.message == "webhook requested burst"),
            "deploy {id} starts with its request: {log:?}"
        );
    }
    h.deployer.settle().await;
    let instances = h.store.list_instances(stage.id).unwrap();
    let deploys: Vec<Option<i64>> = instances.iter().map(|i| i.deploy_id).collect();
    assert_eq!(deploys, vec![Some(newest)], "the stage serves the newest");
}

#[tokio::test]
async fn two_stages_deploy_in_parallel() {
    let h = DeployHarness::new().await;
    h.push(SLOW_IMAGE, "v1").await;
    let project = h.project(Some("/health"));
    h.store
        .update_project(
            project.id,
            &ProjectUpdate {
                health: Some(ProjectHealth {
                    start_period: Some(Duration::from_secs(15)),
                    ..Default::default()
                }),
                ..Default::default()
            },
        )
        .unwrap();
    let dev = h.stage(&project, "dev", 1);
    let prod = h.stage(&project, "prod", 1);
    let a = h
        .deployer
        .deploy_tag(dev.id, "v1", Trigger::Manual)
        .await
        .unwrap();
    let b = h
        .deployer
        .deploy_tag(prod.id, "v1", Trigger::Manual)
        .await
        .unwrap();
    let a = h.wait_final(a).await;
    let b = h.wait_final(b).await;
    assert_eq!(
        (a.status, b.status),
        (DeployStatus::Success, DeployStatus::Success)
    );
    // Each takes about 4 s to become healthy; run in turn, one would start after the other ended.
    assert!(
        b.started_at.unwrap() < a.finished_at.unwrap(),
        "the stages overlapped"
    );
    assert!(a.started_at.unwrap() < b.finished_at.unwrap());
}

#[tokio::test]
async fn reconciliation_cleans_up_after_a_crash_mid_deploy() {
    let h = DeployHarness::new().await;
    h.push(HEALTHY_IMAGE, "v1").await;
    let project = h.project(Some("/health"));
    let stage = h.stage(&project, "dev", 1);
    let (_, good) = h.deploy_now(&stage, "v1").await;
    let DeployOutcome::Success { instance_id: good } = good else {
        panic!()
    };

    // What a crash during health checking leaves: a deploy not final, an instance
    // `starting`, and its container running.
    let deploy = h
        .store
        .create_deploy(&NewDeploy {
            project_id: project.id,
            stage_id: stage.id,
            tag: "v1".into(),
            digest: None,
            trigger: Trigger::Webhook,
            detected_at: None,
        })
        .unwrap();
    h.store
        .set_deploy_status(deploy.id, DeployStatus::HealthChecking)
        .unwrap();
    let half = h
        .store
        .create_instance(&NewInstance {
            stage_id: stage.id,
            deploy_id: Some(deploy.id),
            tag: "v1".into(),
            digest: None,
            container_name: crate::support::unique_name("dw-crashed"),
            status: InstanceStatus::Starting,
        })
        .unwrap();
    let installation = h.store.installation_id().unwrap();
    let mut spec_labels = std::collections::BTreeMap::from([
        (labels::MANAGED.to_string(), "true".to_string()),
        (labels::INSTALLATION.to_string(), installation.clone()),
        (labels::INSTANCE.to_string(), half.id.to_string()),
    ]);
    let spec = ContainerSpec {
        name: half.container_name.clone(),
        image: format!("{}/{}:v1", h.registry.host(), h.repository),
        labels: spec_labels.clone(),
        container_port: Some(8080),
        publish: Publish::Loopback,
        ..Default::default()
    };
    let half_container = h.engine.create(&spec).await.unwrap();
    h.store
        .set_instance_container(half.id, half_container.as_str(), None)
        .unwrap();
    // And a container with our labels that the store never heard of.
    spec_labels.insert(labels::INSTANCE.to_string(), "999999".into());
    let stray = h
        .engine
        .create(&ContainerSpec {
            name: crate::support::unique_name("dw-stray"),
            labels: spec_labels,
            ..spec.clone()
        })
        .await
        .unwrap();

    let report = h.deployer.reconcile().await;
    assert_eq!(report.interrupted_deploys, vec![deploy.id]);
    assert_eq!(report.removed_containers.len(), 1, "{report:?}");
    assert!(!h.container_exists(half_container.as_str()).await);
    assert!(!h.container_exists(stray.as_str()).await);
    let deploy = h.store.get_deploy(deploy.id).unwrap();
    assert_eq!(deploy.status, DeployStatus::RolledBack);
    assert!(deploy.error.unwrap().contains("interrupted"));
    assert_eq!(
        h.store.get_instance(half.id).unwrap().status,
        InstanceStatus::Failed
    );
    let good = h.store.get_instance(good).unwrap();
    assert_eq!(
        good.status,
        InstanceStatus::Running,
        "the healthy instance is untouched"
    );
    assert!(
        h.container_exists(good.container_id.as_deref().unwrap())
            .await
    );
    let ours = h.containers().await;
    assert_eq!(ours.len(), 1, "no orphans: {ours:?}");

    // An instance whose container vanished is marked.
    h.engine
        .remove(
            &docker_watcher::docker::ContainerId::new(good.container_id.clone().unwrap()),
            true,
        )
        .await
        .unwrap();
    let report = h.deployer.reconcile().await;
    assert_eq!(report.vanished_instances, vec![good.id]);
    assert_eq!(
        h.store.get_instance(good.id).unwrap().status,
        InstanceStatus::Failed
    );
}

/// A local HTTP receiver that keeps every JSON body posted to it.
async fn notification_receiver() -> (String, Arc<Mutex<Vec<serde_json::Value>>>) {
    let received = Arc::new(Mutex::new(Vec::new()));
    let sink = received.clone();
    let app = axum::Router::new().route(
        "/hook",
        post(move |Json(body): Json<serde_json::Value>| {
            let sink = sink.clone();
            async move {
                sink.lock().unwrap().push(body);
                "ok"
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/hook", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await });
    (url, received)
}

#[tokio::test]
async fn outcomes_are_notified_and_a_dead_target_does_not_slow_the_deploy() {
    let h = DeployHarness::new().await;
    h.push(HEALTHY_IMAGE, "v1").await;
    h.push(UNHEALTHY_IMAGE, "v2").await;
    h.push(CRASH_IMAGE, "v3").await;
    let (url, received) = notification_receiver().await;
    for (name, url) in [
        ("receiver", url),
        ("dead", format!("http://127.0.0.1:{}/gone", free_port())),
    ] {
        h.store
            .create_notification_target(&NewNotificationTarget {
                name: name.into(),
                kind: NotificationKind::Webhook,
                url,
                filter: TargetFilter::default(),
                templates: Templates::default(),
            })
            .unwrap();
    }
    // A target that accepts connections and never answers: the deploy must not wait on it.
    let silent = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    h.store
        .create_notification_target(&NewNotificationTarget {
            name: "silent".into(),
            kind: NotificationKind::Slack,
            url: format!("slack+http://{}/never", silent.local_addr().unwrap()),
            filter: TargetFilter::default(),
            templates: Templates::default(),
        })
        .unwrap();
    let project = h.project(Some("/health"));
    let stage = h.stage(&project, "dev", 1);

    let started = Instant::now();
    let (ok, _) = h.deploy_now(&stage, "v1").await;
    let deploy_time = started.elapsed();
    let (bad, _) = h.deploy_now(&stage, "v2").await;
    assert_eq!(bad.status, DeployStatus::RolledBack);
    let (crashed, _) = h.deploy_now(&stage, "v3").await;
    assert_eq!(crashed.status, DeployStatus::RolledBack);
    let deadline = Instant::now() + Duration::from_secs(15);
    while received.lock().unwrap().len() < 3 && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let bodies = received.lock().unwrap().clone();
    assert_eq!(bodies.len(), 3, "{bodies:?}");
    assert_eq!(bodies[0]["event"], "success");
    assert_eq!(bodies[0]["project"], project.name);
    assert_eq!(bodies[0]["stage"], "dev");
    assert_eq!(bodies[0]["tag"], "v1");
    assert_eq!(bodies[0]["deploy_id"], ok.id);
    assert_eq!(bodies[1]["event"], "rollback");
    assert_eq!(bodies[1]["failed_step"], "health_check");
    assert!(bodies[1]["error"].as_str().unwrap().contains("healthy"));
    // A crash brings the container's last words, read before the rollback removed it.
    assert_eq!(bodies[2]["event"], "rollback");
    assert!(
        bodies[2]["log_tail"].as_array().unwrap().iter().any(|l| l
            .as_str()
            .unwrap()
            .contains("test app: crashing on purpose")),
        "{}",
        bodies[2]
    );
    assert!(
        bodies[2]["message"]
            .as_str()
            .unwrap()
            .contains("Last log lines:")
    );
    // The silent target would hold a waiting deploy for 10 s (two 5 s tries).
    assert!(
        deploy_time < Duration::from_secs(10),
        "deploy took {deploy_time:?}"
    );
    drop(silent);
}

#[tokio::test]
async fn a_replaced_container_stops_in_the_background_without_holding_the_stage() {
    let h = DeployHarness::new().await;
    let stubborn = crate::support::deploy::StubbornImage::build();
    for tag in ["v1", "v2", "v3"] {
        h.push(&stubborn.name, tag).await;
    }
    let project = h.project(Some("/health"));
    let stage = h.stage(&project, "dev", 1);
    let request = |tag: &str| DeployRequest {
        project_id: project.id,
        stage_id: stage.id,
        tag: tag.into(),
        digest: None,
        trigger: Trigger::Webhook,
        detected_at: Some(chrono::Utc::now()),
        origin: Default::default(),
    };
    let v1 = h.deployer.request_deploy(request("v1")).await.unwrap();
    let v1 = h.wait_final(v1).await;
    assert_eq!(v1.status, DeployStatus::Success);
    let old = h.store.get_instance(v1.instance_id.unwrap()).unwrap();

    let v2 = h.deployer.request_deploy(request("v2")).await.unwrap();
    let v2 = h.wait_final(v2).await;
    assert_eq!(v2.status, DeployStatus::Success);
    // v1's container ignores SIGTERM: `docker stop` takes its whole grace period, yet v2
    // is already a success and v1 no longer serves.
    let retiring = h.store.get_instance(old.id).unwrap();
    assert_eq!(retiring.status, InstanceStatus::Stopping);
    assert!(retiring.subdomains.is_empty() && retiring.proxy_hosts.is_empty());
    assert!(
        h.container_exists(old.container_id.as_deref().unwrap())
            .await,
        "the old container is still stopping"
    );

    // The stage's next deploy starts while v1 is still stopping.
    let v3 = h.deployer.request_deploy(request("v3")).await.unwrap();
    let deadline = Instant::now() + Duration::from_secs(60);
    while h.store.get_deploy(v3).unwrap().started_at.is_none() {
        assert!(Instant::now() < deadline, "v3 never started");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(
        h.container_exists(old.container_id.as_deref().unwrap())
            .await,
        "v3 started before v1's container was gone"
    );
    assert_eq!(h.wait_final(v3).await.status, DeployStatus::Success);

    // Eventually the old containers are gone and only v3 is left.
    h.deployer.settle().await;
    assert!(
        !h.container_exists(old.container_id.as_deref().unwrap())
            .await
    );
    let left: Vec<String> = h
        .store
        .list_instances(stage.id)
        .unwrap()
        .into_iter()
        .map(|i| i.tag)
        .collect();
    assert_eq!(left, vec!["v3"]);
    assert_eq!(h.containers().await.len(), 1);
}

#[tokio::test]
async fn reconciliation_finishes_an_instance_a_crash_left_stopping() {
    let h = DeployHarness::new().await;
    h.push(HEALTHY_IMAGE, "v1").await;
    h.push(HEALTHY_IMAGE, "v2").await;
    let project = h.project(Some("/health"));
    let stage = h.stage(&project, "dev", 2);
    let (_, first) = h.deploy_now(&stage, "v1").await;
    let DeployOutcome::Success { instance_id: old } = first else {
        panic!("{first:?}")
    };
    let (_, second) = h.deploy_now(&stage, "v2").await;
    assert!(matches!(second, DeployOutcome::Success { .. }));
    // What a crash during a background stop leaves: the row `stopping`, the container up.
    h.store
        .set_instance_status(old, InstanceStatus::Stopping)
        .unwrap();
    let container = h.store.get_instance(old).unwrap().container_id.unwrap();

    h.deployer.reconcile().await;
    h.deployer.settle().await;
    assert!(!h.container_exists(&container).await);
    assert!(matches!(
        h.store.get_instance(old),
        Err(StoreError::NotFound { .. })
    ));
    assert_eq!(h.containers().await.len(), 1, "v2 still runs");
}

#[tokio::test]
async fn images_no_instance_or_rollback_needs_are_removed_but_never_one_in_use() {
    let h = DeployHarness::new().await;
    for tag in ["v1", "v2", "v3", "v4"] {
        h.push(HEALTHY_IMAGE, tag).await;
    }
    let project = h.project(Some("/health"));
    let stage = h.stage(&project, "dev", 1);
    let image = |tag: &str| format!("{}:{tag}", project.image);
    for tag in ["v1", "v2"] {
        let (_, outcome) = h.deploy_now(&stage, tag).await;
        assert!(
            matches!(outcome, DeployOutcome::Success { .. }),
            "{outcome:?}"
        );
    }
    // A container that is not docker-watcher's uses v1's image.
    let scope = crate::support::containers::TestScope::new("image-user");
    let user = h
        .engine
        .create(&ContainerSpec {
            name: scope.name("user"),
            image: image("v1"),
            labels: scope.labels(),
            ..Default::default()
        })
        .await
        .unwrap();
    for tag in ["v3", "v4"] {
        let (_, outcome) = h.deploy_now(&stage, tag).await;
        assert!(
            matches!(outcome, DeployOutcome::Success { .. }),
            "{outcome:?}"
        );
    }
    h.deployer.settle().await;
    let present = |tag: &'static str| {
        let engine = h.engine.clone();
        let reference = image(tag);
        async move { engine.inspect_image(&reference).await.is_ok() }
    };
    assert!(present("v4").await, "the running tag stays");
    assert!(present("v3").await, "the rollback target stays");
    assert!(!present("v2").await, "a retired tag goes");
    // Removal is never forced: Docker may drop the v1 tag (the image has other names),
    // but never the image a container uses.
    let used = h.engine.inspect_container(&user).await.unwrap().image_id;
    assert!(h.engine.inspect_image(&used).await.is_ok());
    h.engine.start(&user).await.unwrap();
    h.engine.remove(&user, true).await.unwrap();
}
