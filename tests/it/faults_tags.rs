//! Bad tags back to back: while the previous deploy is still retiring its old instance
//! (a container slow to stop), a never-healthy tag, a crashing tag and a tag that becomes
//! healthy late are pushed one after the other, with real Caddy routing. The bad ones end
//! without taking traffic, the late one serves, and nothing is left behind.

use std::time::Duration;

use docker_watcher::store::{DeployStatus, InstanceStatus};

use crate::faults_setup::{BASE_DOMAIN, Options, ProxyChoice, Setup};
use crate::support::fault_proxy::Fault;
use crate::support::{CRASH_IMAGE, HEALTHY_IMAGE, SLOW_IMAGE, UNHEALTHY_IMAGE};

#[tokio::test]
async fn bad_tags_pushed_back_to_back_while_retiring_leave_the_late_healthy_one_serving() {
    let setup = Setup::new(Options {
        proxy: ProxyChoice::Caddy,
        docker_proxy: true,
        env: vec![("SLOW_SECONDS", "3")],
        start_period_ms: 6000,
        ..Options::default()
    })
    .await;
    setup.push(HEALTHY_IMAGE, "v2").await;
    setup.push(UNHEALTHY_IMAGE, "never").await;
    setup.push(CRASH_IMAGE, "crash").await;
    setup.push(SLOW_IMAGE, "late").await;
    let v1 = setup
        .daemon
        .store()
        .list_instances(setup.stage_id)
        .unwrap()
        .into_iter()
        .find(|i| i.tag == "v1")
        .expect("v1");
    // Stopping a container takes a while, so the pushes land while v1 is retiring.
    setup
        .docker_front
        .as_ref()
        .unwrap()
        .set_for("/stop", Fault::Delay(Duration::from_secs(3)));
    let v2 = setup.deploy("v2").await;
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    while matches!(
        setup.daemon.store().get_instance(v1.id).map(|i| i.status),
        Ok(InstanceStatus::Running)
    ) {
        assert!(std::time::Instant::now() < deadline, "v1 never retired");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let bad = [setup.deploy("never").await, setup.deploy("crash").await];
    let late = setup.deploy("late").await;

    assert_eq!(
        setup.daemon.wait_final(v2).await.status,
        DeployStatus::Success
    );
    for id in bad {
        let deploy = setup.daemon.wait_final(id).await;
        assert!(
            matches!(
                deploy.status,
                DeployStatus::RolledBack | DeployStatus::Failed | DeployStatus::Superseded
            ),
            "{} ends {}",
            deploy.tag,
            deploy.status
        );
    }
    let late = setup.daemon.wait_final(late).await;
    assert_eq!(late.status, DeployStatus::Success, "{}", setup.daemon.log());
    setup.docker_front.as_ref().unwrap().set(Fault::Pass);
    setup.assert_settled().await;
    assert_eq!(setup.serving_tag().as_deref(), Some("late"));
    // Through Caddy, the stage's domain answers with the late tag.
    let stage_domain = setup
        .daemon
        .store()
        .list_instances(setup.stage_id)
        .unwrap()
        .into_iter()
        .find(|i| i.tag == "late")
        .and_then(|i| i.subdomains.get(1).cloned())
        .expect("stage domain");
    assert!(stage_domain.ends_with(BASE_DOMAIN), "{stage_domain}");
    let (status, tag) = setup
        .caddy
        .as_ref()
        .unwrap()
        .get(&stage_domain, "/tag")
        .await;
    assert_eq!((status, tag.trim()), (200, "late"));
}
