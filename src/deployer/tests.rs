//! Every branch of the pipeline and its rollback on the in-memory fakes (`fakes.rs`):
//! what each failure leaves behind — nothing this deploy created, and the stage's domain
//! on the previous upstream.

use super::DeployOutcome;
use super::fakes::{Harness, Step};
use crate::store::{DeployStatus, InstanceStatus};

/// Deploys `tag` and expects success; returns the instance id.
async fn live(h: &Harness, tag: &str) -> i64 {
    let (deploy, outcome) = h.deploy(tag).await;
    match outcome {
        DeployOutcome::Success { instance_id } => instance_id,
        other => panic!("{other:?}: {:?}", h.store.deploy_logs(deploy.id, 0)),
    }
}

fn failed_at(outcome: &DeployOutcome) -> &str {
    match outcome {
        DeployOutcome::Failed { step, .. } | DeployOutcome::RolledBack { step, .. } => step,
        other => panic!("expected a failure, got {other:?}"),
    }
}

/// The stage serves `instance` alone, on both domains; nothing else is left.
fn only_serving(h: &Harness, instance: i64, tag: &str) {
    let upstream = h.upstream_of(instance);
    assert_eq!(h.proxy.upstream(&h.stage_domain()), Some(upstream.clone()));
    assert_eq!(h.proxy.upstream(&h.tag_domain(tag)), Some(upstream));
    assert_eq!(
        h.proxy.domains().len(),
        2,
        "no host left over: {:?}",
        h.proxy.domains()
    );
    assert_eq!(h.containers.names().len(), 1, "{:?}", h.containers.names());
    let instances = h.store.list_instances(h.stage.id).unwrap();
    let serving: Vec<i64> = instances
        .iter()
        .filter(|i| i.status == InstanceStatus::Running)
        .map(|i| i.id)
        .collect();
    assert_eq!(serving, vec![instance]);
    assert!(
        instances
            .iter()
            .all(|i| matches!(i.status, InstanceStatus::Running | InstanceStatus::Failed)),
        "{instances:?}"
    );
}

#[tokio::test]
async fn a_healthy_deploy_routes_both_domains_and_the_next_replaces_it() {
    let h = Harness::new();
    let v1 = live(&h, "v1").await;
    only_serving(&h, v1, "v1");
    let v2 = live(&h, "v2").await;
    h.deployer.settle().await;
    assert_eq!(
        h.proxy.upstream(&h.tag_domain("v1")),
        None,
        "v1's host went"
    );
    only_serving(&h, v2, "v2");
}

#[tokio::test]
async fn a_failed_pull_creates_nothing() {
    let h = Harness::new();
    let v1 = live(&h, "v1").await;
    h.containers.fail(Step::Pull);
    let (deploy, outcome) = h.deploy("v2").await;
    assert_eq!(failed_at(&outcome), "pull");
    assert_eq!(deploy.status, DeployStatus::Failed);
    only_serving(&h, v1, "v1");
}

#[tokio::test]
async fn a_failed_create_leaves_no_container_and_a_failed_instance() {
    let h = Harness::new();
    let v1 = live(&h, "v1").await;
    h.containers.fail(Step::Create);
    let (deploy, outcome) = h.deploy("v2").await;
    assert_eq!(failed_at(&outcome), "create");
    assert_eq!(deploy.status, DeployStatus::RolledBack);
    only_serving(&h, v1, "v1");
}

#[tokio::test]
async fn a_failed_start_removes_the_created_container() {
    let h = Harness::new();
    let v1 = live(&h, "v1").await;
    h.containers.fail(Step::Start);
    let (_, outcome) = h.deploy("v2").await;
    assert_eq!(failed_at(&outcome), "start");
    only_serving(&h, v1, "v1");
}

#[tokio::test]
async fn an_unhealthy_container_is_removed_and_traffic_never_moves() {
    let h = Harness::new();
    let v1 = live(&h, "v1").await;
    h.containers.make_unhealthy(&h.image("v2"));
    let (deploy, outcome) = h.deploy("v2").await;
    assert_eq!(failed_at(&outcome), "health_check");
    assert!(
        deploy.error.unwrap().contains("fake app: not ready"),
        "the container's log is quoted"
    );
    only_serving(&h, v1, "v1");
}

#[tokio::test]
async fn a_proxy_failure_on_the_tag_host_moves_nothing() {
    let h = Harness::new();
    let v1 = live(&h, "v1").await;
    h.proxy.fail_writes_for("-v2.");
    let (_, outcome) = h.deploy("v2").await;
    assert_eq!(failed_at(&outcome), "proxy");
    only_serving(&h, v1, "v1");
}

#[tokio::test]
async fn a_proxy_failure_on_the_stage_host_removes_the_new_tag_host() {
    let h = Harness::new();
    let v1 = live(&h, "v1").await;
    h.proxy.fail_writes_for("stage-dev-shop.");
    let (_, outcome) = h.deploy("v2").await;
    assert_eq!(failed_at(&outcome), "proxy");
    h.proxy.heal();
    // The stage host's write failed, so the rollback could not point it back either; it
    // was never changed, and v2's own host is gone.
    only_serving(&h, v1, "v1");
}

#[tokio::test]
async fn the_first_deploy_failing_at_the_stage_host_leaves_no_host() {
    let h = Harness::new();
    h.proxy.fail_writes_for("stage-dev-shop.");
    let (_, outcome) = h.deploy("v1").await;
    assert_eq!(failed_at(&outcome), "proxy");
    assert!(h.proxy.domains().is_empty(), "{:?}", h.proxy.domains());
    assert!(h.containers.names().is_empty());
}

#[tokio::test]
async fn a_failing_retirement_does_not_fail_the_deploy() {
    let h = Harness::new();
    let v1 = live(&h, "v1").await;
    h.proxy.fail_deletes();
    h.containers.fail(Step::Remove);
    let (deploy, outcome) = h.deploy("v2").await;
    let DeployOutcome::Success { instance_id: v2 } = outcome else {
        panic!("{outcome:?}")
    };
    assert_eq!(deploy.status, DeployStatus::Success);
    // The delete failed: the stopping row keeps the host, to delete it later.
    let old = h.store.get_instance(v1).unwrap();
    assert_eq!(old.status, InstanceStatus::Stopping);
    assert_eq!(old.proxy_hosts.len(), 1, "the tag host: {old:?}");
    assert!(h.proxy.upstream(&h.tag_domain("v1")).is_some());

    // The proxy recovers while the background stop tries again.
    h.proxy.heal();
    h.deployer.settle().await;
    assert_eq!(h.proxy.upstream(&h.stage_domain()), Some(h.upstream_of(v2)));
    assert_eq!(h.proxy.upstream(&h.tag_domain("v1")), None, "host retried");
    // The container could not be removed: v1 waits `stopping`, routing nothing, for
    // reconciliation to finish it.
    let old = h.store.get_instance(v1).unwrap();
    assert_eq!(old.status, InstanceStatus::Stopping);
    assert!(old.proxy_hosts.is_empty());

    h.containers.heal(Step::Remove);
    h.deployer.reconcile().await;
    h.deployer.settle().await;
    only_serving(&h, v2, "v2");
}

#[tokio::test]
async fn a_host_the_redeployed_tag_shares_is_never_deleted_by_the_retry() {
    let h = Harness::new();
    let first = live(&h, "v1").await;
    h.proxy.fail_deletes();
    // The same tag again: the tag's host moves to the new instance; the stage host too.
    let second = live(&h, "v1").await;
    h.proxy.heal();
    h.deployer.settle().await;
    assert!(h.store.get_instance(first).is_err(), "the old row is gone");
    only_serving(&h, second, "v1");
}

#[tokio::test]
async fn a_tag_the_registry_does_not_know_yet_is_pulled_again() {
    let h = Harness::new();
    // The webhook came before the registry linked the tag: two pulls fail as unknown.
    h.containers.unknown_for(&h.image("v1"), 2);
    let (deploy, outcome) = h.deploy("v1").await;
    let DeployOutcome::Success { instance_id } = outcome else {
        panic!("{outcome:?}")
    };
    only_serving(&h, instance_id, "v1");
    let retries = h
        .store
        .deploy_logs(deploy.id, 0)
        .unwrap()
        .into_iter()
        .filter(|l| l.message.contains("does not know"))
        .count();
    assert_eq!(retries, 2);
}

#[tokio::test]
async fn a_tag_the_registry_never_knows_fails_the_pull() {
    let h = Harness::new();
    h.containers.unknown_for(&h.image("v1"), u32::MAX);
    let (deploy, outcome) = h.deploy("v1").await;
    assert_eq!(failed_at(&outcome), "pull");
    assert_eq!(deploy.status, DeployStatus::Failed);
    assert!(h.containers.names().is_empty());
}

fn assert_stopping_conflict(result: Result<(), super::OpsError>) {
    match result {
        Err(super::OpsError::Conflict(message)) => {
            assert!(message.contains("stopping"), "{message}")
        }
        other => panic!("expected a conflict, got {other:?}"),
    }
}

#[tokio::test]
async fn a_stopping_instance_cannot_be_stopped_started_or_removed() {
    let h = Harness::new();
    let v1 = live(&h, "v1").await;
    // v1 drains (long enough for this test) in the background after v2 replaced it.
    h.deployer.set_drain(std::time::Duration::from_secs(600));
    live(&h, "v2").await;
    assert_eq!(
        h.store.get_instance(v1).unwrap().status,
        InstanceStatus::Stopping
    );
    assert_stopping_conflict(h.deployer.stop_instance(v1).await);
    assert_stopping_conflict(h.deployer.start_instance(v1).await);
    assert_stopping_conflict(h.deployer.remove_instance(v1).await);
    assert_eq!(
        h.store.get_instance(v1).unwrap().status,
        InstanceStatus::Stopping,
        "nothing changed"
    );
    assert_eq!(h.containers.names().len(), 2, "v1's container still drains");
}

#[tokio::test]
async fn a_stopping_instance_nothing_stops_any_more_can_be_removed() {
    let h = Harness::new();
    let v1 = live(&h, "v1").await;
    // What a manual remove that failed on the proxy leaves (or a retirement that gave up).
    h.store
        .set_instance_status(v1, InstanceStatus::Stopping)
        .unwrap();
    assert_stopping_conflict(h.deployer.start_instance(v1).await);
    h.deployer.remove_instance(v1).await.unwrap();
    assert!(h.store.get_instance(v1).is_err());
    assert!(h.containers.names().is_empty());
    assert_eq!(h.proxy.upstream(&h.tag_domain("v1")), None);
}

#[tokio::test]
async fn redeploying_the_serving_tag_keeps_its_host_on_the_new_container() {
    let h = Harness::new();
    let old = live(&h, "v1").await;
    let new = live(&h, "v1").await;
    h.deployer.settle().await;
    assert_ne!(old, new);
    only_serving(&h, new, "v1");
}

#[tokio::test]
async fn a_failed_redeploy_of_the_serving_tag_points_its_host_back() {
    let h = Harness::new();
    let live_v1 = live(&h, "v1").await;
    // The tag's host is updated to the new container, then the stage host fails.
    h.proxy.fail_writes_for("stage-dev-shop.");
    let (_, outcome) = h.deploy("v1").await;
    assert_eq!(failed_at(&outcome), "proxy");
    h.proxy.heal();
    only_serving(&h, live_v1, "v1");
}

#[tokio::test]
async fn images_nothing_needs_are_removed_after_a_success() {
    let h = Harness::new();
    for tag in ["v1", "v2", "v3"] {
        live(&h, tag).await;
    }
    h.containers.make_unhealthy(&h.image("v4"));
    let (_, outcome) = h.deploy("v4").await;
    assert_eq!(failed_at(&outcome), "health_check");
    // Pulled elsewhere, not by a deploy of ours: never touched.
    h.containers.add_image("registry.test/acme/other:v1");
    live(&h, "v5").await;
    h.deployer.settle().await;
    // v5 runs, v3 is the rollback target; v1, v2 and the failed v4 go.
    assert_eq!(
        h.containers.images(),
        vec![
            "registry.test/acme/other:v1".to_string(),
            h.image("v3"),
            h.image("v5")
        ]
    );
}
