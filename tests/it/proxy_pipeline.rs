//! The proxy step of real deploys: through real Caddy, a stage's domain reaches the new
//! container, switches to the next one with no failed request, and stays on the old one
//! when a deploy rolls back; Traefik's labels land on the real container; reconciliation
//! removes hosts nobody uses.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use docker_watcher::deployer::DeployOutcome;
use docker_watcher::docker::ContainerId;
use docker_watcher::proxy::{self, HostSpec, ProxyConfig, Upstream};
use docker_watcher::store::*;
use docker_watcher::subdomain::Subdomain;

use crate::support::caddy::TestCaddy;
use crate::support::deploy::DeployHarness;
use crate::support::npm_fake::{self, FakeNpm};
use crate::support::{HEALTHY_IMAGE, UNHEALTHY_IMAGE};

const BASE_DOMAIN: &str = "example.test";

/// Longer than the test app's slow request (1 s), so those on their way to a retired
/// container finish.
const DRAIN: Duration = Duration::from_secs(2);
/// Clients requesting at once during a switch.
const REQUESTERS: usize = 6;

async fn caddy_harness() -> (DeployHarness, TestCaddy) {
    let caddy = TestCaddy::start().await;
    let settings = SettingsUpdate {
        base_domain: Some(BASE_DOMAIN.into()),
        proxy_kind: Some(ProxyKind::Caddy),
        proxy_url: Some(Some(caddy.admin_url())),
        proxy_listen: Some(Some(caddy.listen_addr())),
        ..Default::default()
    };
    // The harness's store is made inside; configure a throwaway store first only to build
    // the proxy config the same way the daemon does.
    let dir = tempfile::tempdir().unwrap();
    let scratch = Store::open(
        dir.path(),
        docker_watcher::crypto::Sealer::new(docker_watcher::crypto::MasterKey::generate()),
    )
    .unwrap();
    let config = ProxyConfig::from_settings(&scratch.update_settings(&settings).unwrap(), None);
    let harness = DeployHarness::with_proxy(proxy::connect(&config).unwrap()).await;
    harness.store.update_settings(&settings).unwrap();
    (harness, caddy)
}

/// Waits (at most 5 s) until Caddy accepts connections on its listener. The first route
/// creates docker-watcher's server there, and under load Caddy may start accepting a
/// moment after its admin API has answered.
async fn wait_listening(caddy: &TestCaddy) {
    let deadline = std::time::Instant::now() + Duration::from_secs(5);
    while tokio::net::TcpStream::connect(caddy.listen_addr())
        .await
        .is_err()
    {
        assert!(
            std::time::Instant::now() < deadline,
            "caddy never listened on {}",
            caddy.listen_addr()
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// GET through Caddy's listener with `Host: domain`; the status and the trimmed body.
async fn through(caddy: &TestCaddy, domain: &str, path: &str) -> (u16, String) {
    let (status, body) = caddy.get(domain, path).await;
    (status, body.trim().to_string())
}

fn stage_domain(project: &Project) -> String {
    Subdomain::for_stage("stage-{stage}-{project}", BASE_DOMAIN, &project.name, "dev")
        .unwrap()
        .to_string()
}

async fn short_id(h: &DeployHarness, instance_id: i64) -> String {
    let instance = h.store.get_instance(instance_id).unwrap();
    instance.container_id.unwrap()[..12].to_string()
}

#[tokio::test]
async fn traffic_moves_to_a_healthy_container_without_a_failed_request() {
    let (h, caddy) = caddy_harness().await;
    for (image, tag) in [
        (HEALTHY_IMAGE, "v1"),
        (HEALTHY_IMAGE, "v2"),
        (UNHEALTHY_IMAGE, "v3"),
    ] {
        h.push(image, tag).await;
    }
    let project = h.project(Some("/health"));
    let stage = h.stage(&project, "dev", 1);
    let domain = stage_domain(&project);

    let (_, first) = h.deploy_now(&stage, "v1").await;
    let DeployOutcome::Success { instance_id: v1 } = first else {
        panic!("{first:?}")
    };
    wait_listening(&caddy).await;
    assert_eq!(
        through(&caddy, &domain, "/id").await,
        (200, short_id(&h, v1).await)
    );
    let v1_instance = h.store.get_instance(v1).unwrap();
    assert_eq!(v1_instance.subdomains.len(), 2);
    let tag_domain = &v1_instance.subdomains[0];
    assert!(
        tag_domain.starts_with(&format!("stage-dev-{}-v1", project.name)),
        "{tag_domain}"
    );
    assert_eq!(
        through(&caddy, tag_domain, "/tag").await,
        (200, "v1".to_string())
    );

    // Keep requesting the stage's domain, from several clients at once so requests are
    // always on their way to v1, while v2 replaces it. v1 must serve those to their end:
    // it is stopped only after the drain.
    h.deployer.set_drain(DRAIN);
    let running = Arc::new(AtomicBool::new(true));
    let requesters: Vec<_> = (0..REQUESTERS)
        .map(|_| {
            let (running, addr, domain) = (running.clone(), caddy.listen_addr(), domain.clone());
            tokio::spawn(async move {
                let mut answers = Vec::new();
                while running.load(Ordering::Relaxed) {
                    // The test app answers this one after a second: requests are always
                    // in flight when the switch comes.
                    let (status, body) =
                        crate::support::caddy::get_with_host(&addr, &domain, "/cgi-bin/slow").await;
                    answers.push((status, body.trim().to_string()));
                }
                answers
            })
        })
        .collect();
    let (_, second) = h.deploy_now(&stage, "v2").await;
    // Past the moment v1 would be stopped without a drain, and until it is stopped with one.
    tokio::time::sleep(Duration::from_millis(1500)).await;
    h.deployer.settle().await;
    running.store(false, Ordering::Relaxed);
    let mut answers = Vec::new();
    for requester in requesters {
        let seen = requester.await.unwrap();
        assert_eq!(seen.last().map(|(_, tag)| tag.as_str()), Some("v2"));
        answers.extend(seen);
    }
    let DeployOutcome::Success { instance_id: v2 } = second else {
        panic!("{second:?}")
    };
    assert!(
        answers.len() >= 2 * REQUESTERS,
        "the requesters ran during the switch: {}",
        answers.len()
    );
    let failed: Vec<_> = answers
        .iter()
        .filter(|(status, _)| *status != 200)
        .collect();
    assert!(
        failed.is_empty(),
        "failed requests during the switch: {failed:?}"
    );
    assert!(
        answers.iter().any(|(_, tag)| tag == "v1"),
        "v1 served first"
    );
    assert!(answers.iter().any(|(_, tag)| tag == "v2"), "then v2");
    assert_eq!(
        through(&caddy, &domain, "/id").await,
        (200, short_id(&h, v2).await)
    );
    // v1 was retired with its own host (Caddy answers an unrouted host with an empty 200).
    assert_eq!(
        through(&caddy, tag_domain, "/tag").await,
        (200, String::new())
    );

    // A deploy that never gets healthy leaves the stage on v2.
    let (third, outcome) = h.deploy_now(&stage, "v3").await;
    assert!(
        matches!(outcome, DeployOutcome::RolledBack { .. }),
        "{outcome:?}"
    );
    assert_eq!(third.status, DeployStatus::RolledBack);
    assert_eq!(
        through(&caddy, &domain, "/tag").await,
        (200, "v2".to_string())
    );
    let hosts = proxy::connect(&ProxyConfig::from_settings(
        &h.store.settings().unwrap(),
        None,
    ))
    .unwrap()
    .list_hosts()
    .await
    .unwrap();
    let mut domains: Vec<String> = hosts.into_iter().map(|h| h.domain).collect();
    domains.sort();
    let mut expected = h.store.get_instance(v2).unwrap().subdomains;
    expected.sort();
    assert_eq!(domains, expected, "only v2's hosts remain");
}

#[tokio::test]
async fn reconciliation_removes_hosts_no_instance_uses() {
    let (h, caddy) = caddy_harness().await;
    h.push(HEALTHY_IMAGE, "v1").await;
    let project = h.project(Some("/health"));
    let stage = h.stage(&project, "dev", 1);
    let (_, outcome) = h.deploy_now(&stage, "v1").await;
    assert!(matches!(outcome, DeployOutcome::Success { .. }));
    wait_listening(&caddy).await;
    let proxy = proxy::connect(&ProxyConfig::from_settings(
        &h.store.settings().unwrap(),
        None,
    ))
    .unwrap();
    // A host of ours left by an instance the store forgot (e.g. deleted by hand).
    proxy
        .ensure_host(&HostSpec {
            domain: Subdomain::parse(&format!("stage-dev-gone.{BASE_DOMAIN}")).unwrap(),
            upstream: Upstream {
                host: "127.0.0.1".into(),
                port: 9,
            },
        })
        .await
        .unwrap();
    let report = h.deployer.reconcile().await;
    assert_eq!(
        report.removed_proxy_hosts,
        vec![format!("stage-dev-gone.{BASE_DOMAIN}")],
        "{report:?}"
    );
    assert_eq!(
        through(&caddy, &stage_domain(&project), "/health").await,
        (200, "ok".to_string())
    );
}

#[tokio::test]
async fn traefik_labels_are_on_the_created_container() {
    let harness = DeployHarness::with_proxy(
        proxy::connect(&ProxyConfig {
            kind: ProxyKind::Traefik,
            url: None,
            username: None,
            secret: None,
            certificate: None,
            force_ssl: false,
            caddy_listen: Vec::new(),
        })
        .unwrap(),
    )
    .await;
    harness
        .store
        .update_settings(&SettingsUpdate {
            base_domain: Some(BASE_DOMAIN.into()),
            proxy_kind: Some(ProxyKind::Traefik),
            ..Default::default()
        })
        .unwrap();
    harness.push(HEALTHY_IMAGE, "v1").await;
    let project = harness.project(Some("/health"));
    let stage = harness.stage(&project, "dev", 1);
    let (_, outcome) = harness.deploy_now(&stage, "v1").await;
    let DeployOutcome::Success { instance_id } = outcome else {
        panic!("{outcome:?}")
    };
    let instance = harness.store.get_instance(instance_id).unwrap();
    let info = harness
        .engine
        .inspect_container(&ContainerId::new(instance.container_id.unwrap()))
        .await
        .unwrap();
    assert_eq!(
        info.labels.get("traefik.enable").map(String::as_str),
        Some("true")
    );
    let rule = info
        .labels
        .iter()
        .find(|(k, _)| k.starts_with("traefik.http.routers.") && k.ends_with(".rule"))
        .map(|(_, v)| v.clone())
        .expect("a router rule");
    assert!(
        rule.contains(&format!("Host(`{}`)", stage_domain(&project))),
        "{rule}"
    );
    assert!(
        rule.contains(&format!("Host(`{}`)", instance.subdomains[0])),
        "{rule}"
    );
    assert!(
        info.labels
            .iter()
            .any(|(k, v)| k.ends_with(".loadbalancer.server.port") && v == "8080")
    );
}

#[tokio::test]
async fn a_failed_proxy_step_rolls_back_and_the_stage_stays_on_the_old_instance() {
    let npm = FakeNpm::start().await;
    let h = npm_harness(&npm).await;
    h.push(HEALTHY_IMAGE, "v1").await;
    h.push(HEALTHY_IMAGE, "v2").await;
    let project = h.project(Some("/health"));
    let stage = h.stage(&project, "dev", 1);
    let (_, first) = h.deploy_now(&stage, "v1").await;
    let DeployOutcome::Success { instance_id: v1 } = first else {
        panic!("{first:?}")
    };
    let v1_port = h
        .store
        .get_instance(v1)
        .unwrap()
        .upstream
        .unwrap()
        .rsplit(':')
        .next()
        .unwrap()
        .to_string();
    let stage_host = |npm: &FakeNpm| {
        npm.hosts()
            .into_iter()
            .find(|host| host["domain_names"][0] == stage_domain(&project))
            .expect("the stage's proxy host")
    };
    assert_eq!(stage_host(&npm)["forward_port"].to_string(), v1_port);

    npm.reject_next_config("nginx: [emerg] host not found in upstream");
    let (deploy, outcome) = h.deploy_now(&stage, "v2").await;
    assert!(
        matches!(outcome, DeployOutcome::RolledBack { ref step, .. } if step == "proxy"),
        "{outcome:?}"
    );
    assert!(deploy.error.unwrap().contains("host not found in upstream"));
    assert_eq!(
        stage_host(&npm)["forward_port"].to_string(),
        v1_port,
        "traffic never left v1"
    );
    let domains: Vec<String> = npm
        .hosts()
        .iter()
        .map(|h| h["domain_names"][0].as_str().unwrap().to_string())
        .collect();
    assert_eq!(
        domains.len(),
        2,
        "v2's own host was removed again: {domains:?}"
    );
    assert_eq!(h.containers().await.len(), 1, "only v1's container");
    assert_eq!(
        h.store.get_instance(v1).unwrap().status,
        InstanceStatus::Running
    );
}

/// A harness whose proxy is the fake Nginx Proxy Manager.
async fn npm_harness(npm: &FakeNpm) -> DeployHarness {
    let settings = SettingsUpdate {
        base_domain: Some(BASE_DOMAIN.into()),
        proxy_kind: Some(ProxyKind::Npm),
        proxy_url: Some(Some(npm.url())),
        proxy_username: Some(Some(npm_fake::IDENTITY.into())),
        ..Default::default()
    };
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
    h.store.update_settings(&settings).unwrap();
    h
}

/// The fake NPM's host for `domain`, if any.
fn npm_host(npm: &FakeNpm, domain: &str) -> Option<serde_json::Value> {
    npm.hosts()
        .into_iter()
        .find(|host| host["domain_names"][0] == domain)
}

fn port_of(h: &DeployHarness, instance_id: i64) -> u16 {
    h.store
        .get_instance(instance_id)
        .unwrap()
        .upstream
        .unwrap()
        .rsplit(':')
        .next()
        .unwrap()
        .parse()
        .unwrap()
}

#[tokio::test]
async fn redeploying_the_serving_tag_keeps_both_domains_routed_through_caddy() {
    let (h, caddy) = caddy_harness().await;
    h.push(HEALTHY_IMAGE, "v1").await;
    let project = h.project(Some("/health"));
    let stage = h.stage(&project, "dev", 1);
    let (_, first) = h.deploy_now(&stage, "v1").await;
    let DeployOutcome::Success { instance_id: old } = first else {
        panic!("{first:?}")
    };
    wait_listening(&caddy).await;
    let tag_domain = h.store.get_instance(old).unwrap().subdomains[0].clone();

    let (_, again) = h.deploy_now(&stage, "v1").await;
    let DeployOutcome::Success { instance_id: new } = again else {
        panic!("{again:?}")
    };
    assert_ne!(old, new);
    let new_id = short_id(&h, new).await;
    assert_eq!(
        through(&caddy, &tag_domain, "/id").await,
        (200, new_id.clone()),
        "the tag's domain still routes, to the new container"
    );
    assert_eq!(
        through(&caddy, &stage_domain(&project), "/id").await,
        (200, new_id)
    );
}

#[tokio::test]
async fn a_failed_redeploy_of_the_serving_tag_leaves_its_routes_through_caddy() {
    let (h, caddy) = caddy_harness().await;
    h.push(HEALTHY_IMAGE, "v1").await;
    let project = h.project(Some("/health"));
    let stage = h.stage(&project, "dev", 1);
    let (_, first) = h.deploy_now(&stage, "v1").await;
    let DeployOutcome::Success { instance_id: live } = first else {
        panic!("{first:?}")
    };
    wait_listening(&caddy).await;
    let tag_domain = h.store.get_instance(live).unwrap().subdomains[0].clone();
    let live_id = short_id(&h, live).await;

    // The same tag now holds an image that never gets healthy.
    h.push(UNHEALTHY_IMAGE, "v1").await;
    let (_, again) = h.deploy_now(&stage, "v1").await;
    assert!(
        matches!(again, DeployOutcome::RolledBack { .. }),
        "{again:?}"
    );
    assert_eq!(
        through(&caddy, &tag_domain, "/id").await,
        (200, live_id.clone())
    );
    assert_eq!(
        through(&caddy, &stage_domain(&project), "/id").await,
        (200, live_id)
    );
    assert_eq!(
        h.store.get_instance(live).unwrap().status,
        InstanceStatus::Running
    );
}

#[tokio::test]
async fn redeploying_the_serving_tag_keeps_both_npm_hosts() {
    let npm = FakeNpm::start().await;
    let h = npm_harness(&npm).await;
    h.push(HEALTHY_IMAGE, "v1").await;
    let project = h.project(Some("/health"));
    let stage = h.stage(&project, "dev", 1);
    let (_, first) = h.deploy_now(&stage, "v1").await;
    let DeployOutcome::Success { instance_id: old } = first else {
        panic!("{first:?}")
    };
    let tag_domain = h.store.get_instance(old).unwrap().subdomains[0].clone();

    let (_, again) = h.deploy_now(&stage, "v1").await;
    let DeployOutcome::Success { instance_id: new } = again else {
        panic!("{again:?}")
    };
    let new_port = port_of(&h, new);
    for domain in [tag_domain.as_str(), stage_domain(&project).as_str()] {
        let host = npm_host(&npm, domain)
            .unwrap_or_else(|| panic!("{domain} has no host: {:?}", npm.hosts()));
        assert_eq!(host["forward_port"], new_port, "{domain}");
    }
}

#[tokio::test]
async fn a_redeploy_of_the_serving_tag_failing_on_npm_restores_the_live_host() {
    let npm = FakeNpm::start().await;
    let h = npm_harness(&npm).await;
    h.push(HEALTHY_IMAGE, "v1").await;
    let project = h.project(Some("/health"));
    let stage = h.stage(&project, "dev", 1);
    let (_, first) = h.deploy_now(&stage, "v1").await;
    let DeployOutcome::Success { instance_id: live } = first else {
        panic!("{first:?}")
    };
    let tag_domain = h.store.get_instance(live).unwrap().subdomains[0].clone();
    let live_port = port_of(&h, live);

    // nginx refuses the tag host's update: the deploy rolls back.
    npm.reject_next_config("nginx: [emerg] host not found in upstream");
    let (_, again) = h.deploy_now(&stage, "v1").await;
    assert!(
        matches!(again, DeployOutcome::RolledBack { ref step, .. } if step == "proxy"),
        "{again:?}"
    );
    for domain in [tag_domain.as_str(), stage_domain(&project).as_str()] {
        let host = npm_host(&npm, domain)
            .unwrap_or_else(|| panic!("{domain} lost its host: {:?}", npm.hosts()));
        assert_eq!(host["forward_port"], live_port, "{domain}");
    }
    assert_eq!(
        h.store.get_instance(live).unwrap().status,
        InstanceStatus::Running
    );
}
