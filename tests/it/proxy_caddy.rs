//! The Caddy adapter against a real Caddy (admin API and listener on 127.0.0.1): requests
//! with a host's `Host` header reach its upstream, switch when the upstream changes, and
//! what others configured in Caddy stays as it was.

use std::sync::Arc;

use docker_watcher::proxy::{
    HostId, HostSpec, Proxy, ProxyConfig, ProxyError, ProxyKind, Upstream, connect,
};
use docker_watcher::subdomain::Subdomain;
use reqwest::Method;
use serde_json::json;

use crate::support::caddy::{TestCaddy, TestUpstream, get_with_host};
use crate::support::free_port;

fn proxy(caddy: &TestCaddy) -> Arc<dyn Proxy> {
    connect(&ProxyConfig {
        kind: ProxyKind::Caddy,
        url: Some(caddy.admin_url()),
        username: None,
        secret: None,
        certificate: None,
        force_ssl: false,
        caddy_listen: vec![caddy.listen_addr()],
    })
    .expect("connect to caddy")
}

fn spec(domain: &str, upstream: &TestUpstream) -> HostSpec {
    HostSpec {
        domain: Subdomain::parse(domain).unwrap(),
        upstream: Upstream {
            host: "127.0.0.1".into(),
            port: upstream.port(),
        },
    }
}

/// Another server in the same Caddy, as a person's own config would have, with one route.
async fn add_their_server(caddy: &TestCaddy, listen: &str, domain: &str, upstream: &TestUpstream) {
    let (status, body) = caddy
        .admin(
            Method::PUT,
            "/config/apps/http/servers/theirs",
            Some(json!({
                "listen": [listen],
                "automatic_https": {"disable": true},
                "routes": [{
                    "match": [{"host": [domain]}],
                    "handle": [{"handler": "reverse_proxy", "upstreams": [{"dial": upstream.addr.to_string()}]}],
                }],
            })),
        )
        .await;
    assert_eq!(status, 200, "{body}");
}

#[tokio::test]
async fn a_host_routes_requests_to_its_upstream() {
    let caddy = TestCaddy::start().await;
    let app = TestUpstream::start("app-a").await;
    let proxy = proxy(&caddy);

    let id = proxy
        .ensure_host(&spec("stage-dev-shop.example.test", &app))
        .await
        .unwrap();

    assert_eq!(id.as_str(), "caddy:dw-stage-dev-shop.example.test");
    assert_eq!(
        caddy.get("stage-dev-shop.example.test", "/id").await,
        (200, "app-a".to_string())
    );
    let (_, other) = caddy.get("other.example.test", "/id").await;
    assert_ne!(other, "app-a", "only the host's domain is routed");

    let hosts = proxy.list_hosts().await.unwrap();
    assert_eq!(hosts.len(), 1);
    assert_eq!(hosts[0].id, id);
    assert_eq!(hosts[0].domain, "stage-dev-shop.example.test");
    assert_eq!(hosts[0].upstream.port, app.port());
}

#[tokio::test]
async fn a_new_upstream_switches_the_route_in_place() {
    let caddy = TestCaddy::start().await;
    let old = TestUpstream::start("old").await;
    let new = TestUpstream::start("new").await;
    let proxy = proxy(&caddy);

    let first = proxy
        .ensure_host(&spec("stage-dev-shop.example.test", &old))
        .await
        .unwrap();
    assert_eq!(
        caddy.get("stage-dev-shop.example.test", "/id").await.1,
        "old"
    );
    let second = proxy
        .ensure_host(&spec("stage-dev-shop.example.test", &new))
        .await
        .unwrap();

    assert_eq!(first, second);
    assert_eq!(
        caddy.get("stage-dev-shop.example.test", "/id").await.1,
        "new"
    );
    let routes =
        caddy.config().await["apps"]["http"]["servers"]["docker_watcher"]["routes"].clone();
    assert_eq!(
        routes.as_array().unwrap().len(),
        1,
        "replaced, not added: {routes}"
    );

    // The same target again changes nothing: not even a rewrite of the same route.
    let before = caddy.config().await;
    let changes = caddy.admin_changes();
    proxy
        .ensure_host(&spec("stage-dev-shop.example.test", &new))
        .await
        .unwrap();
    assert_eq!(caddy.config().await, before);
    assert_eq!(caddy.admin_changes(), changes);
}

#[tokio::test]
async fn what_others_configured_is_left_alone() {
    let caddy = TestCaddy::start().await;
    let theirs = TestUpstream::start("theirs").await;
    let ours = TestUpstream::start("ours").await;
    let their_listen = format!("127.0.0.1:{}", free_port());
    add_their_server(&caddy, &their_listen, "blog.example.test", &theirs).await;
    let their_server = caddy.config().await["apps"]["http"]["servers"]["theirs"].clone();
    let proxy = proxy(&caddy);

    let id = proxy
        .ensure_host(&spec("shop.example.test", &ours))
        .await
        .unwrap();
    // Someone adds a catch-all route to our server; our next route must still win for its
    // own host, and theirs must survive our changes.
    let (status, body) = caddy
        .admin(
            Method::POST,
            "/config/apps/http/servers/docker_watcher/routes",
            Some(json!({"@id": "their-catch-all", "handle": [{"handler": "static_response", "body": "catch-all"}]})),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    let second = proxy
        .ensure_host(&spec("api.example.test", &ours))
        .await
        .unwrap();
    proxy.delete_host(&id).await.unwrap();

    assert_eq!(
        caddy.config().await["apps"]["http"]["servers"]["theirs"],
        their_server
    );
    assert_eq!(
        get_with_host(&their_listen, "blog.example.test", "/id")
            .await
            .1,
        "theirs"
    );
    assert_eq!(caddy.get("api.example.test", "/id").await.1, "ours");
    assert_eq!(caddy.get("shop.example.test", "/id").await.1, "catch-all");
    let (status, _) = caddy.admin(Method::GET, "/id/their-catch-all", None).await;
    assert_eq!(status, 200, "their route is still there");
    let hosts = proxy.list_hosts().await.unwrap();
    assert_eq!(
        hosts.iter().map(|h| h.id.clone()).collect::<Vec<_>>(),
        vec![second]
    );

    // A domain their routes serve is theirs.
    let error = proxy
        .ensure_host(&spec("blog.example.test", &ours))
        .await
        .unwrap_err();
    assert!(
        matches!(&error, ProxyError::DomainInUse { domain } if domain == "blog.example.test"),
        "{error:?}"
    );
    // And an id without our prefix is never deleted.
    let error = proxy
        .delete_host(&HostId::new(ProxyKind::Caddy, "their-catch-all"))
        .await
        .unwrap_err();
    assert!(matches!(error, ProxyError::NotOwned { .. }), "{error:?}");
    assert_eq!(
        caddy
            .admin(Method::GET, "/id/their-catch-all", None)
            .await
            .0,
        200
    );
}

#[tokio::test]
async fn delete_removes_only_that_host() {
    let caddy = TestCaddy::start().await;
    let a = TestUpstream::start("a").await;
    let b = TestUpstream::start("b").await;
    let proxy = proxy(&caddy);
    let first = proxy
        .ensure_host(&spec("a.example.test", &a))
        .await
        .unwrap();
    proxy
        .ensure_host(&spec("b.example.test", &b))
        .await
        .unwrap();

    proxy.delete_host(&first).await.unwrap();

    assert_ne!(caddy.get("a.example.test", "/id").await.1, "a");
    assert_eq!(caddy.get("b.example.test", "/id").await.1, "b");
    let hosts = proxy.list_hosts().await.unwrap();
    assert_eq!(hosts.len(), 1);
    assert_eq!(hosts[0].domain, "b.example.test");
    // Gone already: not an error.
    proxy.delete_host(&first).await.unwrap();
}

#[tokio::test]
async fn check_reports_and_finds_a_taken_listener() {
    let caddy = TestCaddy::start().await;
    let app = TestUpstream::start("app").await;
    let proxy = proxy(&caddy);

    let report = proxy.check().await.unwrap();
    assert!(report.contains("will add its server"), "{report}");
    proxy
        .ensure_host(&spec("a.example.test", &app))
        .await
        .unwrap();
    let report = proxy.check().await.unwrap();
    assert!(report.contains("with 1 routes of ours"), "{report}");

    // Another server on the address docker-watcher wants.
    let other = TestCaddy::start().await;
    add_their_server(&other, &other.listen_addr(), "blog.example.test", &app).await;
    let clashing = self::proxy(&other);
    let error = clashing.check().await.unwrap_err();
    assert!(matches!(error, ProxyError::Invalid(_)), "{error:?}");
    assert!(
        error.to_string().contains("\"theirs\" already listens on"),
        "{error}"
    );
    let error = clashing
        .ensure_host(&spec("a.example.test", &app))
        .await
        .unwrap_err();
    assert!(
        error.to_string().contains("another Caddy listen address"),
        "{error}"
    );
}

#[tokio::test]
async fn an_unreachable_admin_api_says_so() {
    let proxy = connect(&ProxyConfig {
        kind: ProxyKind::Caddy,
        url: Some(format!("http://127.0.0.1:{}", free_port())),
        username: None,
        secret: None,
        certificate: None,
        force_ssl: false,
        caddy_listen: Vec::new(),
    })
    .unwrap();

    let error = proxy.check().await.unwrap_err();

    assert!(matches!(error, ProxyError::Unreachable { .. }), "{error:?}");
    assert!(error.to_string().contains("check the proxy URL"), "{error}");
}

/// Caddy restarts its admin endpoint after every config change and resets connections
/// that reach it meanwhile. Two daemons' worth of writers (two clients, so the adapter's
/// own write lock does not order them) changing routes at once meet such resets; every
/// write must still land.
#[tokio::test]
async fn concurrent_writes_survive_caddy_restarting_its_admin_endpoint() {
    let caddy = TestCaddy::start().await;
    let app = TestUpstream::start("busy").await;
    let (first, second) = (proxy(&caddy), proxy(&caddy));
    let write_many = |proxy: Arc<dyn Proxy>, side: &'static str| {
        let spec_for = |i: usize| spec(&format!("{side}-{i}.busy.test"), &app);
        let specs: Vec<HostSpec> = (0..25).map(spec_for).collect();
        async move {
            let mut failures = Vec::new();
            for spec in &specs {
                if let Err(e) = proxy.ensure_host(spec).await {
                    failures.push(format!("{}: {e}", spec.domain.as_str()));
                }
            }
            failures
        }
    };
    let (a, b) = tokio::join!(write_many(first, "a"), write_many(second.clone(), "b"));
    assert!(a.is_empty() && b.is_empty(), "writes failed: {a:?} {b:?}");
    let hosts = second.list_hosts().await.unwrap();
    assert_eq!(hosts.len(), 50, "{hosts:?}");
}
