//! A reverse proxy that fails while a deploy routes traffic and while it retires the old
//! instance: Nginx Proxy Manager (the fake, behind a fault proxy) answering 500, hanging
//! until the client gives up, or with tokens that die between requests. The stage keeps
//! serving a healthy instance through the proxy, and nothing is left that nobody owns.

use std::time::Duration;

use docker_watcher::store::DeployStatus;

use crate::faults_setup::{Options, ProxyChoice, Setup};
use crate::support::HEALTHY_IMAGE;
use crate::support::fault_proxy::Fault;

async fn npm_setup() -> Setup {
    let setup = Setup::new(Options {
        proxy: ProxyChoice::Npm,
        ..Options::default()
    })
    .await;
    setup.push(HEALTHY_IMAGE, "v2").await;
    setup
}

/// Waits (bounded) until the NPM fault proxy has faulted more than `before` requests.
async fn until_faulted(setup: &Setup, before: usize) {
    let front = setup.npm_front.as_ref().unwrap();
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    while front.faulted() <= before {
        assert!(
            std::time::Instant::now() < deadline,
            "no NPM request met the fault; log:\n{}",
            setup.daemon.log()
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

#[tokio::test]
async fn npm_answering_500_while_routing_rolls_back_to_the_serving_tag() {
    let setup = npm_setup().await;
    let front = setup.npm_front.as_ref().unwrap();
    front.set(Fault::Status500);
    let status = setup.deploy_and_wait("v2").await;
    assert!(
        matches!(status, DeployStatus::RolledBack | DeployStatus::Failed),
        "{status}"
    );
    assert!(front.faulted() > 0);
    front.set(Fault::Pass);
    setup.assert_settled().await;
    assert_eq!(setup.serving_tag().as_deref(), Some("v1"));
    assert_eq!(setup.deploy_and_wait("v2").await, DeployStatus::Success);
    setup.assert_settled().await;
}

#[tokio::test]
async fn npm_hanging_while_routing_times_out_and_rolls_back() {
    let setup = npm_setup().await;
    let front = setup.npm_front.as_ref().unwrap();
    // One request hangs past the client's 30 s timeout; the rollback after it gets answers.
    front.set(Fault::Stall(Duration::from_secs(40)));
    let id = setup.deploy("v2").await;
    until_faulted(&setup, 0).await;
    front.set(Fault::Pass);
    let deploy = setup.daemon.wait_final(id).await;
    assert!(
        matches!(
            deploy.status,
            DeployStatus::RolledBack | DeployStatus::Failed
        ),
        "{}",
        deploy.status
    );
    setup.assert_settled().await;
    assert_eq!(setup.serving_tag().as_deref(), Some("v1"));
}

#[tokio::test]
async fn npm_answering_500_while_retiring_leaves_nothing_behind() {
    let setup = npm_setup().await;
    let front = setup.npm_front.as_ref().unwrap();
    // Routing works; deleting the old instance's host fails.
    front.set_for("DELETE /api/nginx/proxy-hosts", Fault::Status500);
    let status = setup.deploy_and_wait("v2").await;
    assert_eq!(status, DeployStatus::Success, "{}", setup.daemon.log());
    assert!(front.faulted() > 0, "the retire step deleted no host");
    front.set(Fault::Pass);
    setup.assert_settled().await;
    assert_eq!(setup.serving_tag().as_deref(), Some("v2"));
}

#[tokio::test]
async fn npm_hanging_while_retiring_leaves_nothing_behind() {
    let setup = npm_setup().await;
    let front = setup.npm_front.as_ref().unwrap();
    front.set_for(
        "DELETE /api/nginx/proxy-hosts",
        Fault::Stall(Duration::from_secs(40)),
    );
    let id = setup.deploy("v2").await;
    until_faulted(&setup, 0).await;
    front.set(Fault::Pass);
    let deploy = setup.daemon.wait_final(id).await;
    assert_eq!(
        deploy.status,
        DeployStatus::Success,
        "{}",
        setup.daemon.log()
    );
    setup.assert_settled().await;
    assert_eq!(setup.serving_tag().as_deref(), Some("v2"));
}

#[tokio::test]
async fn npm_tokens_dying_while_routing_and_retiring_are_renewed() {
    let setup = npm_setup().await;
    let npm = setup.npm.as_ref().unwrap();
    let v1 = setup
        .daemon
        .store()
        .list_instances(setup.stage_id)
        .unwrap()
        .into_iter()
        .find(|i| i.tag == "v1")
        .expect("v1");
    // Requests to NPM take a while, so a token killed when a step starts is dead by the
    // time that step's request arrives (NPM restarted with new keys, say).
    setup
        .npm_front
        .as_ref()
        .unwrap()
        .set(Fault::Delay(Duration::from_millis(400)));
    let logins = npm.logins();
    let id = setup.deploy("v2").await;
    setup
        .daemon
        .wait_status(id, "configuring_proxy", |s| {
            s == DeployStatus::ConfiguringProxy
        })
        .await;
    npm.expire_tokens();
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    while matches!(
        setup.daemon.store().get_instance(v1.id).map(|i| i.status),
        Ok(docker_watcher::store::InstanceStatus::Running)
    ) {
        assert!(std::time::Instant::now() < deadline, "v1 never retired");
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    npm.expire_tokens();
    let deploy = setup.daemon.wait_final(id).await;
    assert_eq!(
        deploy.status,
        DeployStatus::Success,
        "{}",
        setup.daemon.log()
    );
    assert!(
        npm.logins() >= logins + 2,
        "signed in again at both steps ({} logins)",
        npm.logins() - logins
    );
    setup.npm_front.as_ref().unwrap().set(Fault::Pass);
    setup.assert_settled().await;
    assert_eq!(setup.serving_tag().as_deref(), Some("v2"));
}
