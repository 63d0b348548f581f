//! The Nginx Proxy Manager adapter against the spec-following fake (NPM cannot run here):
//! hosts made, kept, moved and deleted; hosts a person made left alone; tokens refreshed
//! and replaced; nginx refusing a config; bad credentials; the settings check.

use std::sync::Arc;

use docker_watcher::proxy::{
    HostId, HostSpec, Proxy, ProxyConfig, ProxyError, ProxyKind, Upstream, connect,
};
use docker_watcher::subdomain::Subdomain;

use crate::support::npm_fake::{self, FakeNpm};

fn config(npm: &FakeNpm) -> ProxyConfig {
    ProxyConfig {
        kind: ProxyKind::Npm,
        url: Some(npm.url()),
        username: Some(npm_fake::IDENTITY.into()),
        secret: Some(npm_fake::SECRET.into()),
        certificate: None,
        force_ssl: false,
        caddy_listen: Vec::new(),
    }
}

fn proxy(npm: &FakeNpm) -> Arc<dyn Proxy> {
    connect(&config(npm)).expect("connect to the fake NPM")
}

fn spec(domain: &str, host: &str, port: u16) -> HostSpec {
    HostSpec {
        domain: Subdomain::parse(domain).unwrap(),
        upstream: Upstream {
            host: host.into(),
            port,
        },
    }
}

fn number(id: &HostId) -> u64 {
    assert_eq!(id.kind(), ProxyKind::Npm);
    id.local().parse().unwrap()
}

#[tokio::test]
async fn creates_a_host_with_the_required_fields_and_our_mark() {
    let npm = FakeNpm::start().await;
    let proxy = proxy(&npm);

    let id = proxy
        .ensure_host(&spec("stage-dev-shop.example.test", "shop-1", 8080))
        .await
        .unwrap();

    let host = npm.host(number(&id)).expect("the host exists in NPM");
    assert_eq!(
        host["domain_names"],
        serde_json::json!(["stage-dev-shop.example.test"])
    );
    assert_eq!(host["forward_scheme"], "http");
    assert_eq!(host["forward_host"], "shop-1");
    assert_eq!(host["forward_port"], 8080);
    assert_eq!(host["allow_websocket_upgrade"], true);
    assert_eq!(host["block_exploits"], true);
    assert_eq!(host["certificate_id"], 0);
    assert_eq!(host["meta"]["docker_watcher"], true);
    assert_eq!(host["meta"]["nginx_online"], true);

    let listed = proxy.list_hosts().await.unwrap();
    assert_eq!(listed.len(), 1);
    assert_eq!(listed[0].id, id);
    assert_eq!(listed[0].domain, "stage-dev-shop.example.test");
    assert_eq!(listed[0].upstream.host, "shop-1");
    assert_eq!(listed[0].upstream.port, 8080);
}

#[tokio::test]
async fn ensuring_the_same_target_again_changes_nothing() {
    let npm = FakeNpm::start().await;
    let proxy = proxy(&npm);
    let wanted = spec("stage-dev-shop.example.test", "shop-1", 8080);

    let first = proxy.ensure_host(&wanted).await.unwrap();
    let writes = npm.host_writes();
    let before = npm.host(number(&first)).unwrap();
    let second = proxy.ensure_host(&wanted).await.unwrap();

    assert_eq!(first, second);
    assert_eq!(npm.host_writes(), writes, "no write for an unchanged host");
    assert_eq!(npm.host(number(&first)).unwrap(), before);
    assert_eq!(npm.hosts().len(), 1);
}

#[tokio::test]
async fn a_new_target_updates_the_host_in_place() {
    let npm = FakeNpm::start().await;
    let proxy = proxy(&npm);

    let first = proxy
        .ensure_host(&spec("stage-dev-shop.example.test", "shop-1", 8080))
        .await
        .unwrap();
    let second = proxy
        .ensure_host(&spec("stage-dev-shop.example.test", "shop-2", 9090))
        .await
        .unwrap();

    assert_eq!(first, second, "the same host, not a new one");
    let hosts = npm.hosts();
    assert_eq!(hosts.len(), 1);
    assert_eq!(hosts[0]["forward_host"], "shop-2");
    assert_eq!(hosts[0]["forward_port"], 9090);
    assert_eq!(
        hosts[0]["meta"]["docker_watcher"], true,
        "still ours after the update"
    );
    assert_eq!(hosts[0]["meta"]["nginx_online"], true);
}

#[tokio::test]
async fn deletes_our_host_and_a_missing_one_is_fine() {
    let npm = FakeNpm::start().await;
    let proxy = proxy(&npm);
    let id = proxy
        .ensure_host(&spec("stage-dev-shop.example.test", "shop-1", 8080))
        .await
        .unwrap();

    proxy.delete_host(&id).await.unwrap();
    assert!(npm.host(number(&id)).is_none());
    assert!(npm.was_deleted(number(&id)));
    assert!(proxy.list_hosts().await.unwrap().is_empty());

    // Deleted already (NPM deletes softly, the id answers 404 now), and never existed.
    proxy.delete_host(&id).await.unwrap();
    proxy
        .delete_host(&HostId::new(ProxyKind::Npm, "999"))
        .await
        .unwrap();

    // A new host never reuses the deleted id.
    let again = proxy
        .ensure_host(&spec("stage-dev-shop.example.test", "shop-1", 8080))
        .await
        .unwrap();
    assert_ne!(again, id);
}

#[tokio::test]
async fn a_hand_made_host_is_never_touched() {
    let npm = FakeNpm::start().await;
    let proxy = proxy(&npm);
    let theirs = npm.add_foreign_host("blog.example.test", "blog", 2368);
    let before = npm.host(theirs).unwrap();

    let error = proxy
        .ensure_host(&spec("blog.example.test", "shop-1", 8080))
        .await
        .unwrap_err();
    assert!(
        matches!(&error, ProxyError::DomainInUse { domain } if domain == "blog.example.test"),
        "{error:?}"
    );
    let error = proxy
        .delete_host(&HostId::new(ProxyKind::Npm, &theirs.to_string()))
        .await
        .unwrap_err();
    assert!(matches!(error, ProxyError::NotOwned { .. }), "{error:?}");

    assert_eq!(npm.host(theirs).unwrap(), before, "their host is unchanged");
    assert!(
        proxy.list_hosts().await.unwrap().is_empty(),
        "theirs is not listed as ours"
    );
    assert_eq!(npm.host_writes(), 0);
}

#[tokio::test]
async fn a_domain_npm_reports_in_use_is_domain_in_use() {
    let npm = FakeNpm::start().await;
    let proxy = proxy(&npm);
    // A redirection host holds the domain: not in the proxy-host list, so only NPM's
    // 400 "is already in use" tells.
    npm.hold_domain_elsewhere("old.example.test");

    let error = proxy
        .ensure_host(&spec("old.example.test", "shop-1", 8080))
        .await
        .unwrap_err();

    assert!(
        matches!(&error, ProxyError::DomainInUse { domain } if domain == "old.example.test"),
        "{error:?}"
    );
    assert_eq!(npm.requests("POST /api/nginx/proxy-hosts"), 1);
    assert!(npm.hosts().is_empty());
}

#[tokio::test]
async fn a_token_near_expiry_is_refreshed_not_replaced() {
    let npm = FakeNpm::start().await;
    // Shorter than the adapter's refresh margin: every use refreshes first.
    npm.set_token_lifetime(chrono::TimeDelta::minutes(2));
    let proxy = proxy(&npm);

    proxy
        .ensure_host(&spec("a.example.test", "a", 80))
        .await
        .unwrap();
    proxy.list_hosts().await.unwrap();

    assert_eq!(npm.logins(), 1);
    assert!(npm.refreshes() >= 1, "refreshed with GET /api/tokens");
}

#[tokio::test]
async fn an_expired_token_is_replaced_by_a_new_login() {
    let npm = FakeNpm::start().await;
    let proxy = proxy(&npm);
    proxy
        .ensure_host(&spec("a.example.test", "a", 80))
        .await
        .unwrap();
    assert_eq!(npm.logins(), 1);
    assert_eq!(
        proxy.list_hosts().await.unwrap().len(),
        1,
        "the cached token is used"
    );
    assert_eq!(npm.logins(), 1);

    npm.expire_tokens();
    // NPM answers 400 `Token has expired`; the adapter logs in again and retries.
    let hosts = proxy.list_hosts().await.unwrap();

    assert_eq!(hosts.len(), 1);
    assert_eq!(npm.logins(), 2);
}

#[tokio::test]
async fn an_expired_token_does_not_fail_a_write() {
    let npm = FakeNpm::start().await;
    let proxy = proxy(&npm);
    proxy.list_hosts().await.unwrap();

    npm.expire_tokens();
    let id = proxy
        .ensure_host(&spec("b.example.test", "b", 8080))
        .await
        .expect("a write with an expired token signs in again once");

    assert_eq!(npm.host(number(&id)).unwrap()["forward_host"], "b");
    assert_eq!(npm.logins(), 2, "one new login, not one per request");
}

#[tokio::test]
async fn a_token_signed_with_old_keys_is_replaced_by_a_new_login() {
    let npm = FakeNpm::start().await;
    let proxy = proxy(&npm);
    let id = proxy
        .ensure_host(&spec("c.example.test", "c", 80))
        .await
        .unwrap();

    // NPM restarted with new keys: the cached token answers 500 `Internal Error`.
    npm.rotate_keys();
    proxy
        .ensure_host(&spec("c.example.test", "c", 81))
        .await
        .expect("the adapter signs in again and updates the host");
    proxy.delete_host(&id).await.unwrap();

    assert!(npm.was_deleted(number(&id)));
    assert_eq!(npm.logins(), 2);
}

#[tokio::test]
async fn a_missing_host_is_not_mistaken_for_a_dead_token() {
    let npm = FakeNpm::start().await;
    let proxy = proxy(&npm);
    proxy.list_hosts().await.unwrap();

    proxy
        .delete_host(&HostId::new(ProxyKind::Npm, "41"))
        .await
        .unwrap();

    assert_eq!(
        npm.logins(),
        1,
        "a 404 with a working token needs no new login"
    );
}

#[tokio::test]
async fn nginx_refusing_the_config_fails_with_its_reason() {
    let npm = FakeNpm::start().await;
    let proxy = proxy(&npm);
    let reason =
        "nginx: [emerg] host not found in upstream \"shop-1\" in /data/nginx/proxy_host/1.conf:20";

    npm.reject_next_config(reason);
    let error = proxy
        .ensure_host(&spec("stage-dev-shop.example.test", "shop-1", 8080))
        .await
        .unwrap_err();

    let ProxyError::NginxRejected {
        id,
        domain,
        nginx_err,
    } = &error
    else {
        panic!("expected NginxRejected, got {error:?}");
    };
    assert_eq!(nginx_err, reason);
    assert_eq!(domain, "stage-dev-shop.example.test");
    assert!(
        error.to_string().contains("host not found in upstream"),
        "{error}"
    );
    // The host exists (NPM answered 201) and is ours, so the caller can delete it.
    assert_eq!(
        npm.host(number(id)).unwrap()["meta"]["docker_watcher"],
        true
    );

    // Ensuring it again rewrites the refused host even though its fields are right, and
    // nginx (no longer refusing) takes it.
    let writes = npm.host_writes();
    let fixed = proxy
        .ensure_host(&spec("stage-dev-shop.example.test", "shop-1", 8080))
        .await
        .unwrap();
    assert_eq!(&fixed, id);
    assert_eq!(npm.host_writes(), writes + 1);
    assert_eq!(npm.host(number(id)).unwrap()["meta"]["nginx_online"], true);

    // An update nginx refuses fails the same way.
    npm.reject_next_config("nginx: [emerg] invalid port");
    let error = proxy
        .ensure_host(&spec("stage-dev-shop.example.test", "shop-3", 8080))
        .await
        .unwrap_err();
    assert!(
        matches!(&error, ProxyError::NginxRejected { nginx_err, .. } if nginx_err == "nginx: [emerg] invalid port"),
        "{error:?}"
    );
}

#[tokio::test]
async fn bad_credentials_are_unauthorized_and_never_echoed() {
    let npm = FakeNpm::start().await;
    let wrong = "not-the-password-xyz";
    let proxy = connect(&ProxyConfig {
        secret: Some(wrong.into()),
        ..config(&npm)
    })
    .unwrap();

    let error = proxy
        .ensure_host(&spec("a.example.test", "a", 80))
        .await
        .unwrap_err();
    assert!(
        matches!(error, ProxyError::Unauthorized { .. }),
        "{error:?}"
    );
    assert!(
        error
            .to_string()
            .contains("check the proxy username and password"),
        "{error}"
    );

    let error = proxy.check().await.unwrap_err();
    assert!(
        matches!(error, ProxyError::Unauthorized { .. }),
        "{error:?}"
    );
    let text = format!("{error} {error:?}");
    assert!(!text.contains(wrong), "{text}");
    assert!(npm.failed_logins() >= 2);
    assert!(npm.hosts().is_empty());
}

#[tokio::test]
async fn check_reports_what_it_found() {
    let npm = FakeNpm::start().await;
    npm.add_foreign_host("blog.example.test", "blog", 2368);
    let proxy = proxy(&npm);
    proxy
        .ensure_host(&spec("a.example.test", "a", 80))
        .await
        .unwrap();

    let report = proxy.check().await.unwrap();

    assert!(report.contains("2.15.1"), "{report}");
    assert!(report.contains(npm_fake::IDENTITY), "{report}");
    assert!(
        report.contains("2 proxy hosts, 1 of them made by docker-watcher"),
        "{report}"
    );
}

#[tokio::test]
async fn check_finds_a_missing_certificate_and_a_wrong_url() {
    let npm = FakeNpm::start().await;
    let missing = connect(&ProxyConfig {
        certificate: Some("77".into()),
        ..config(&npm)
    })
    .unwrap();
    let error = missing.check().await.unwrap_err();
    assert!(matches!(error, ProxyError::Invalid(_)), "{error:?}");
    assert!(error.to_string().contains("no certificate 77"), "{error}");

    let certificate = npm.add_certificate("*.example.test");
    let present = connect(&ProxyConfig {
        certificate: Some(certificate.to_string()),
        ..config(&npm)
    })
    .unwrap();
    present.check().await.unwrap();

    let nothing_there = connect(&ProxyConfig {
        url: Some(format!("http://127.0.0.1:{}", crate::support::free_port())),
        ..config(&npm)
    })
    .unwrap();
    let error = nothing_there.check().await.unwrap_err();
    assert!(matches!(error, ProxyError::Unreachable { .. }), "{error:?}");
    assert!(error.to_string().contains("check the proxy URL"), "{error}");
}

#[tokio::test]
async fn an_existing_certificate_and_forced_ssl_are_applied_once() {
    let npm = FakeNpm::start().await;
    let certificate = npm.add_certificate("*.example.test");
    let proxy = connect(&ProxyConfig {
        certificate: Some(certificate.to_string()),
        force_ssl: true,
        ..config(&npm)
    })
    .unwrap();
    let wanted = spec("a.example.test", "a", 80);

    let id = proxy.ensure_host(&wanted).await.unwrap();
    let host = npm.host(number(&id)).unwrap();
    assert_eq!(host["certificate_id"], certificate);
    assert_eq!(host["ssl_forced"], true);

    let writes = npm.host_writes();
    proxy.ensure_host(&wanted).await.unwrap();
    assert_eq!(npm.host_writes(), writes);
}

#[tokio::test]
async fn a_new_lets_encrypt_certificate_is_ordered_once() {
    let npm = FakeNpm::start().await;
    let proxy = connect(&ProxyConfig {
        certificate: Some("new".into()),
        force_ssl: true,
        ..config(&npm)
    })
    .unwrap();
    let wanted = spec("a.example.test", "a", 80);

    let id = proxy.ensure_host(&wanted).await.unwrap();
    let first_certificate = npm.host(number(&id)).unwrap()["certificate_id"].clone();
    assert!(first_certificate.as_u64().unwrap() > 0);

    // Moving the host keeps the certificate NPM made; no second one is ordered.
    proxy
        .ensure_host(&spec("a.example.test", "b", 80))
        .await
        .unwrap();
    let host = npm.host(number(&id)).unwrap();
    assert_eq!(host["certificate_id"], first_certificate);
    assert_eq!(host["forward_host"], "b");
    assert_eq!(host["ssl_forced"], true);
}

/// The fake itself must hold the adapter to the spec, or the tests above prove little.
#[tokio::test]
async fn the_fake_enforces_the_spec() {
    let npm = FakeNpm::start().await;
    let http = reqwest::Client::new();
    let token: serde_json::Value = http
        .post(format!("{}/api/tokens", npm.url()))
        .json(&serde_json::json!({"identity": npm_fake::IDENTITY, "secret": npm_fake::SECRET}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let token = token["token"].as_str().unwrap().to_string();
    let post = |body: serde_json::Value| {
        let request = http
            .post(format!("{}/api/nginx/proxy-hosts", npm.url()))
            .bearer_auth(&token)
            .json(&body);
        async move {
            let response = request.send().await.unwrap();
            let status = response.status().as_u16();
            (status, response.json::<serde_json::Value>().await.unwrap())
        }
    };

    let (status, body) = post(serde_json::json!({"domain_names": ["x.test"], "forward_scheme": "http", "forward_host": "x"})).await;
    assert_eq!(status, 400);
    assert_eq!(body["error"]["code"], 400);
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("forward_port")
    );

    let (status, _) = post(serde_json::json!({"domain_names": ["x.test"], "forward_scheme": "http", "forward_host": "x", "forward_port": 80, "owner": "me"})).await;
    assert_eq!(status, 400, "unknown properties are refused");

    let (status, _) = post(serde_json::json!({"domain_names": ["x.test"], "forward_scheme": "http", "forward_host": "x", "forward_port": 80})).await;
    assert_eq!(status, 201);
    let (status, body) = post(serde_json::json!({"domain_names": ["x.test"], "forward_scheme": "http", "forward_host": "y", "forward_port": 80})).await;
    assert_eq!(status, 400);
    assert_eq!(body["error"]["message"], "x.test is already in use");

    let missing_token = http
        .get(format!("{}/api/nginx/proxy-hosts", npm.url()))
        .send()
        .await
        .unwrap();
    assert_eq!(missing_token.status().as_u16(), 404);
}
