//! A registry that answers 500, hangs until the client gives up, or closes connections
//! (a fault proxy in front of a real `docker-registry`), while the Docker Engine pulls and
//! while the poller lists tags: the deploy fails cleanly and the old tag keeps serving;
//! the poll reports the error and deploys nothing; once the registry is back, both work.

use std::time::Duration;

use serde_json::json;

use docker_watcher::store::{DeployFilter, DeployStatus};

use crate::faults_setup::{Options, Setup};
use crate::support::HEALTHY_IMAGE;
use crate::support::fault_proxy::Fault;

/// The faults a registry shows, with a short stall (a registry that hangs and then drops
/// the connection; the pull's own timeouts are minutes long).
const PULL_FAULTS: [Fault; 3] = [
    Fault::Status500,
    Fault::Reset,
    Fault::Stall(Duration::from_secs(5)),
];

#[tokio::test]
async fn registry_faults_during_pulls_fail_the_deploy_and_keep_the_stage_serving() {
    let setup = Setup::new(Options::default()).await;
    setup.push(HEALTHY_IMAGE, "v2").await;
    for fault in PULL_FAULTS {
        setup.registry_front.set(fault);
        let before = setup.registry_front.faulted();
        let status = setup.deploy_and_wait("v2").await;
        assert!(
            matches!(status, DeployStatus::Failed | DeployStatus::RolledBack),
            "{fault:?}: the deploy ends {status}"
        );
        assert!(
            setup.registry_front.faulted() > before,
            "{fault:?} was never met"
        );
        assert_eq!(setup.serving_tag().as_deref(), Some("v1"), "{fault:?}");
        setup.assert_settled().await;
    }
    setup.registry_front.set(Fault::Pass);
    assert_eq!(setup.deploy_and_wait("v2").await, DeployStatus::Success);
    setup.assert_settled().await;
    assert_eq!(setup.serving_tag().as_deref(), Some("v2"));
}

#[tokio::test]
async fn registry_faults_during_polls_deploy_nothing_until_the_registry_is_back() {
    let setup = Setup::new(Options::default()).await;
    let api = setup.daemon.api();
    let (status, body) = api
        .put(
            &format!("/api/stages/{}", setup.stage_id),
            json!({ "polling": true }),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    let poll = || async {
        let (status, body) = api
            .post(
                &format!("/api/projects/{}/poll", setup.project_id),
                json!({}),
            )
            .await;
        assert_eq!(status, 200, "poll: {body}");
        body[0].clone()
    };
    // The first successful poll is the baseline (v1 is known).
    let first = poll().await;
    assert!(
        first["result"] == "baseline" || first["result"] == "no_change",
        "{first}"
    );
    // The registry fails before v2 exists, so no poll (ours or the poller's own) can
    // see v2 before the faults are over. The push goes to the registry directly.
    setup.registry_front.set(Fault::Status500);
    setup.push(HEALTHY_IMAGE, "v2").await;
    // The client's own timeout ends a hanging listing (30 s): the stall outlasts it.
    for fault in [
        Fault::Status500,
        Fault::Reset,
        Fault::Stall(Duration::from_secs(40)),
    ] {
        setup.registry_front.set(fault);
        let outcome = poll().await;
        assert_eq!(outcome["result"], "error", "{fault:?}: {outcome}");
        assert!(
            outcome["error"].as_str().is_some_and(|e| !e.is_empty()),
            "{fault:?}: the error says what went wrong: {outcome}"
        );
        assert!(outcome["deploy_id"].is_null(), "{fault:?}: {outcome}");
    }
    let v2_deploys = || {
        setup
            .daemon
            .store()
            .list_deploys(&DeployFilter {
                stage_id: Some(setup.stage_id),
                limit: 100,
                ..Default::default()
            })
            .unwrap()
            .into_iter()
            .filter(|d| d.tag == "v2")
            .collect::<Vec<_>>()
    };
    assert!(
        v2_deploys().is_empty(),
        "nothing deployed while the registry failed"
    );
    setup.assert_settled().await;

    setup.registry_front.set(Fault::Pass);
    let outcome = poll().await;
    // The background poller may have found v2 first; either way one deploy of it runs.
    assert_ne!(outcome["result"], "error", "{outcome}");
    let deploys = v2_deploys();
    assert_eq!(deploys.len(), 1, "exactly one deploy of v2: {deploys:?}");
    let deploy = setup.daemon.wait_final(deploys[0].id).await;
    assert_eq!(
        deploy.status,
        DeployStatus::Success,
        "{}",
        setup.daemon.log()
    );
    setup.assert_settled().await;
    assert_eq!(setup.serving_tag().as_deref(), Some("v2"));
}
