//! Reconciliation with Nginx Proxy Manager (the spec-following fake) and real containers:
//! a host it puts back gets a new id from NPM, and that id is what the instance records,
//! so retiring the instance later deletes the live host instead of leaving it pointing at a
//! dead port.

use docker_watcher::deployer::DeployOutcome;
use docker_watcher::proxy::{self, ProxyConfig};
use docker_watcher::store::*;

use crate::support::HEALTHY_IMAGE;
use crate::support::deploy::DeployHarness;
use crate::support::npm_fake::{self, FakeNpm};

async fn npm_harness() -> (DeployHarness, FakeNpm) {
    let npm = FakeNpm::start().await;
    let config = ProxyConfig {
        kind: ProxyKind::Npm,
        url: Some(npm.url()),
        username: Some(npm_fake::IDENTITY.into()),
        secret: Some(npm_fake::SECRET.into()),
        certificate: None,
        force_ssl: false,
        caddy_listen: Vec::new(),
    };
    let h = DeployHarness::with_proxy(proxy::connect(&config).unwrap()).await;
    h.store
        .update_settings(&SettingsUpdate {
            base_domain: Some("example.test".into()),
            ..Default::default()
        })
        .unwrap();
    (h, npm)
}

fn host_of(npm: &FakeNpm, domain: &str) -> Option<serde_json::Value> {
    npm.hosts()
        .into_iter()
        .find(|h| h["domain_names"][0] == domain)
}

#[tokio::test]
async fn a_restored_host_is_recorded_and_deleted_when_its_instance_retires() {
    let (h, npm) = npm_harness().await;
    h.push(HEALTHY_IMAGE, "v1").await;
    h.push(HEALTHY_IMAGE, "v2").await;
    let project = h.project(Some("/health"));
    let stage = h.stage(&project, "dev", 1);
    let (_, outcome) = h.deploy_now(&stage, "v1").await;
    let DeployOutcome::Success { instance_id: v1 } = outcome else {
        panic!("{outcome:?}")
    };
    let v1_domain = h.store.get_instance(v1).unwrap().subdomains[0].clone();
    let lost = host_of(&npm, &v1_domain).expect("v1's own host")["id"]
        .as_u64()
        .unwrap();

    // The host disappears from NPM; reconciliation puts it back under a new id.
    npm.delete_by_hand(lost);
    let report = h.deployer.reconcile().await;
    assert_eq!(
        report.restored_proxy_hosts,
        vec![v1_domain.clone()],
        "{report:?}"
    );
    assert!(report.problems.is_empty(), "{report:?}");
    let restored = host_of(&npm, &v1_domain).expect("restored")["id"]
        .as_u64()
        .unwrap();
    assert_ne!(restored, lost, "NPM never reuses ids");
    assert_eq!(
        h.store.get_instance(v1).unwrap().proxy_hosts,
        vec![format!("npm:{restored}")],
        "the instance records the host that exists"
    );

    // v2 replaces v1 (max_instances 1): v1's host goes with it.
    let (_, outcome) = h.deploy_now(&stage, "v2").await;
    assert!(
        matches!(outcome, DeployOutcome::Success { .. }),
        "{outcome:?}"
    );
    assert!(
        host_of(&npm, &v1_domain).is_none(),
        "no host is left pointing at v1's dead port: {:?}",
        npm.hosts()
    );
    let again = h.deployer.reconcile().await;
    assert!(again.restored_proxy_hosts.is_empty(), "{again:?}");
}
