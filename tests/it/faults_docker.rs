//! The Docker Engine restarted in the middle of a deploy while the daemon keeps running:
//! the deploy ends in a final status, nothing is left without an owner, the stage serves a
//! healthy instance through real Caddy again, and the next deploy works.
//!
//! This restarts the shared engine, so it runs alone: the default nextest profile leaves
//! it out and `./dev test` runs it in a serial phase afterwards (.config/nextest.toml). Run
//! anywhere else it fails loudly instead of passing without having run.

use docker_watcher::store::DeployStatus;

use crate::faults_setup::{Options, ProxyChoice, Setup};
use crate::support::dockerd::{require_restart_gate, restart_dockerd};
use crate::support::{HEALTHY_IMAGE, SLOW_IMAGE};

#[tokio::test]
async fn docker_engine_restarted_during_a_deploy() {
    require_restart_gate();
    let setup = Setup::new(Options {
        proxy: ProxyChoice::Caddy,
        env: vec![("SLOW_SECONDS", "4")],
        start_period_ms: 20_000,
        ..Options::default()
    })
    .await;
    setup.push(SLOW_IMAGE, "v2").await;
    let id = setup.deploy("v2").await;
    setup
        .daemon
        .wait_status(id, "health_checking", |s| s == DeployStatus::HealthChecking)
        .await;
    restart_dockerd().await;

    setup.daemon.wait_final(id).await;
    setup.assert_settled().await;
    setup.push(HEALTHY_IMAGE, "v3").await;
    assert_eq!(
        setup.deploy_and_wait("v3").await,
        DeployStatus::Success,
        "{}",
        setup.daemon.log()
    );
    setup.assert_settled().await;
    assert_eq!(setup.serving_tag().as_deref(), Some("v3"));
}
