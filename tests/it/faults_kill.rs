//! The daemon killed with SIGKILL at each step of a deploy, then started again on the same
//! data folder: the interrupted deploy ends in a final status, nothing it made is left
//! without an owner, the stage keeps serving, and the next deploy works.
//!
//! Each step is reached without hooks in the daemon: the test watches the deploy's status
//! in the store and makes the step last with the real parts behind a fault proxy (a slow
//! registry for the pull, slow Docker calls for create and retire, the slow test image
//! for the health check, a slow NPM for the proxy step).

use std::time::Duration;

use docker_watcher::store::{DeployStatus, InstanceStatus};

use crate::faults_setup::{Options, ProxyChoice, Setup};
use crate::support::fault_proxy::{Fault, FaultProxy};
use crate::support::{HEALTHY_IMAGE, SLOW_IMAGE};

/// How long a faulted request is held back: long enough to kill the daemon meanwhile.
const HOLD: Duration = Duration::from_secs(3);

/// Waits (bounded) until the fault proxy has held back at least one request.
async fn until_faulted(proxy: &FaultProxy, setup: &Setup) {
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    while proxy.faulted() == 0 {
        assert!(
            std::time::Instant::now() < deadline,
            "no request met the fault; daemon log:\n{}",
            setup.daemon.log()
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

/// Kills the daemon, lets a request the proxy held back reach its service (as one the
/// daemon sent just before dying would), lifts the fault and starts the daemon again.
async fn kill_and_restart(setup: &mut Setup, proxy_of: impl Fn(&Setup) -> &FaultProxy) {
    setup.daemon.kill();
    tokio::time::sleep(HOLD + Duration::from_millis(500)).await;
    proxy_of(setup).set(Fault::Pass);
    setup.daemon.restart().await;
}

/// After the restart: the interrupted deploy is final and not a success it never
/// reached, the invariants hold, and a new deploy goes through.
async fn recovers(setup: &Setup, interrupted: i64) {
    let deploy = setup.daemon.wait_final(interrupted).await;
    assert_ne!(
        deploy.status,
        DeployStatus::Superseded,
        "an interrupted deploy is failed (or done), not superseded"
    );
    setup.assert_settled().await;
    setup.push(HEALTHY_IMAGE, "v3").await;
    let next = setup.deploy_and_wait("v3").await;
    assert_eq!(
        next,
        DeployStatus::Success,
        "a deploy after the restart; log:\n{}",
        setup.daemon.log()
    );
    setup.assert_settled().await;
    assert_eq!(setup.serving_tag().as_deref(), Some("v3"));
}

#[tokio::test]
async fn killed_while_pulling() {
    let mut setup = Setup::new(Options::default()).await;
    setup.push(SLOW_IMAGE, "v2").await;
    setup.registry_front.set(Fault::Delay(HOLD));
    let id = setup.deploy("v2").await;
    setup
        .daemon
        .wait_status(id, "pulling", |s| s == DeployStatus::Pulling)
        .await;
    until_faulted(&setup.registry_front, &setup).await;
    kill_and_restart(&mut setup, |s| &s.registry_front).await;
    let deploy = setup.daemon.wait_final(id).await;
    assert_ne!(deploy.status, DeployStatus::Success, "it never pulled");
    assert_eq!(setup.serving_tag().as_deref(), Some("v1"));
    recovers(&setup, id).await;
}

#[tokio::test]
async fn killed_while_creating_the_container() {
    let mut setup = Setup::new(Options {
        docker_proxy: true,
        ..Options::default()
    })
    .await;
    setup.push(HEALTHY_IMAGE, "v2").await;
    let docker = setup.docker_front.as_ref().expect("docker proxy");
    docker.set_for("/containers/create", Fault::Delay(HOLD));
    let id = setup.deploy("v2").await;
    setup
        .daemon
        .wait_status(id, "starting", |s| s == DeployStatus::Starting)
        .await;
    until_faulted(setup.docker_front.as_ref().unwrap(), &setup).await;
    kill_and_restart(&mut setup, |s| s.docker_front.as_ref().unwrap()).await;
    assert_eq!(setup.serving_tag().as_deref(), Some("v1"));
    recovers(&setup, id).await;
}

#[tokio::test]
async fn killed_while_health_checking() {
    let mut setup = Setup::new(Options {
        env: vec![("SLOW_SECONDS", "5")],
        start_period_ms: 15_000,
        ..Options::default()
    })
    .await;
    setup.push(SLOW_IMAGE, "v2").await;
    let id = setup.deploy("v2").await;
    setup
        .daemon
        .wait_status(id, "health_checking", |s| s == DeployStatus::HealthChecking)
        .await;
    setup.daemon.kill();
    setup.daemon.restart().await;
    let deploy = setup.daemon.wait_final(id).await;
    assert_ne!(deploy.status, DeployStatus::Success, "it never passed");
    assert_eq!(setup.serving_tag().as_deref(), Some("v1"));
    recovers(&setup, id).await;
}

#[tokio::test]
async fn killed_while_configuring_the_proxy() {
    let mut setup = Setup::new(Options {
        proxy: ProxyChoice::Npm,
        ..Options::default()
    })
    .await;
    setup.push(HEALTHY_IMAGE, "v2").await;
    setup.npm_front.as_ref().unwrap().set(Fault::Delay(HOLD));
    let id = setup.deploy("v2").await;
    setup
        .daemon
        .wait_status(id, "configuring_proxy", |s| {
            s == DeployStatus::ConfiguringProxy
        })
        .await;
    until_faulted(setup.npm_front.as_ref().unwrap(), &setup).await;
    kill_and_restart(&mut setup, |s| s.npm_front.as_ref().unwrap()).await;
    recovers(&setup, id).await;
}

#[tokio::test]
async fn killed_while_retiring_the_old_instance() {
    let mut setup = Setup::new(Options {
        docker_proxy: true,
        ..Options::default()
    })
    .await;
    setup.push(HEALTHY_IMAGE, "v2").await;
    let old = setup
        .daemon
        .store()
        .list_instances(setup.stage_id)
        .unwrap()
        .into_iter()
        .find(|i| i.tag == "v1")
        .expect("v1 instance");
    // A container slow to stop: Docker's answer to the stop call comes late.
    setup
        .docker_front
        .as_ref()
        .unwrap()
        .set_for("/stop", Fault::Delay(HOLD));
    let id = setup.deploy("v2").await;
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    loop {
        let status = setup.daemon.store().get_instance(old.id).map(|i| i.status);
        if !matches!(status, Ok(InstanceStatus::Running)) {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "v1 was never retired; log:\n{}",
            setup.daemon.log()
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    until_faulted(setup.docker_front.as_ref().unwrap(), &setup).await;
    kill_and_restart(&mut setup, |s| s.docker_front.as_ref().unwrap()).await;
    // Traffic was on v2 before the kill: the deploy succeeded, whatever became of v1.
    assert_eq!(
        setup.daemon.wait_final(id).await.status,
        DeployStatus::Success,
        "{}",
        setup.daemon.log()
    );
    setup.assert_settled().await;
    assert_eq!(
        setup.serving_tag().as_deref(),
        Some("v2"),
        "v2 was serving before the kill"
    );
    recovers(&setup, id).await;
}
