//! The registry clients against local HTTP fakes, for what the real docker-registry here
//! cannot show: the Bearer token flow and its expiry, `Link` paging, registries that
//! page by `last=` or ignore `n`, a HEAD without `Docker-Content-Digest`, Docker Hub's
//! and GHCR's specifics, and Gitea's packages API. The fakes answer as the Docker
//! distribution spec, the Docker token spec and Gitea's API documentation describe,
//! headers included.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use reqwest::Url;
use serde_json::json;
use wiremock::matchers::{basic_auth, bearer_token, header, method, path, query_param};
use wiremock::{Mock, MockServer, Request, ResponseTemplate};

use super::auth::{AuthState, BasicAuth, Clock, Credentials};
use super::oci::OciClient;
use super::{Registry, RegistryConfig, RegistryError, RegistryKind, connect};

const API_VERSION: (&str, &str) = ("Docker-Distribution-Api-Version", "registry/2.0");

fn config(
    kind: RegistryKind,
    server: &MockServer,
    credentials: Option<(&str, &str)>,
) -> RegistryConfig {
    RegistryConfig {
        kind,
        base_url: server.uri(),
        username: credentials.map(|(u, _)| u.to_string()),
        secret: credentials.map(|(_, s)| s.to_string()),
        insecure: true,
    }
}

fn registry(
    kind: RegistryKind,
    server: &MockServer,
    credentials: Option<(&str, &str)>,
) -> Arc<dyn Registry> {
    connect(&config(kind, server, credentials)).unwrap()
}

/// The 401 a distribution registry sends when it wants a token for `scope`.
fn bearer_challenge(server: &MockServer, scope: &str) -> ResponseTemplate {
    ResponseTemplate::new(401)
        .insert_header(API_VERSION.0, API_VERSION.1)
        .insert_header(
            "WWW-Authenticate",
            format!(
                r#"Bearer realm="{}/token",service="fake-registry",scope="{scope}""#,
                server.uri()
            ),
        )
        .set_body_raw(
            json!({"errors": [{"code": "UNAUTHORIZED", "message": "authentication required",
                "detail": [{"Type": "repository", "Name": "acme/shop", "Action": "pull"}]}]})
            .to_string(),
            "application/json; charset=utf-8",
        )
}

/// A registry that serves anonymous users: `GET /v2/` answers 200.
async fn open_registry() -> MockServer {
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .and(path("/v2/"))
        .respond_with(
            ResponseTemplate::new(200)
                .insert_header(API_VERSION.0, API_VERSION.1)
                .set_body_raw("{}", "application/json; charset=utf-8"),
        )
        .mount(&server)
        .await;
    server
}

/// A registry that wants Bearer tokens from its `/token`: `GET /v2/` without a valid
/// token answers the challenge (no scope there, as on Docker Hub and GHCR).
async fn token_registry() -> MockServer {
    let server = MockServer::start().await;
    Mock::given(path("/v2/"))
        .respond_with(
            ResponseTemplate::new(401)
                .insert_header(API_VERSION.0, API_VERSION.1)
                .insert_header(
                    "WWW-Authenticate",
                    format!(
                        r#"Bearer realm="{}/token",service="fake-registry""#,
                        server.uri()
                    ),
                ),
        )
        .with_priority(10)
        .mount(&server)
        .await;
    server
}

fn tags_page(repository: &str, tags: &[String]) -> ResponseTemplate {
    ResponseTemplate::new(200)
        .insert_header(API_VERSION.0, API_VERSION.1)
        .set_body_raw(
            json!({"name": repository, "tags": tags}).to_string(),
            "application/json; charset=utf-8",
        )
}

fn names(range: std::ops::Range<usize>) -> Vec<String> {
    range.map(|i| format!("tag-{i:05}")).collect()
}

fn no_auth_header(request: &Request) -> bool {
    !request.headers.contains_key("authorization")
}

async fn requests_to(server: &MockServer, wanted: &str) -> usize {
    let requests = server.received_requests().await.unwrap_or_default();
    requests.iter().filter(|r| r.url.path() == wanted).count()
}

fn tag_names(tags: &[super::TagInfo]) -> Vec<String> {
    tags.iter().map(|t| t.name.clone()).collect()
}

#[tokio::test]
async fn bearer_token_is_fetched_once_and_reused_until_it_expires() {
    let server = token_registry().await;
    let scope = "repository:acme/shop:pull";
    let issued = Arc::new(AtomicUsize::new(0));
    let counter = issued.clone();
    Mock::given(method("GET"))
        .and(path("/token"))
        .and(query_param("service", "fake-registry"))
        .and(query_param("scope", scope))
        .and(basic_auth("ci", "s3cret"))
        .respond_with(move |_: &Request| {
            let n = counter.fetch_add(1, Ordering::SeqCst) + 1;
            ResponseTemplate::new(200).set_body_json(json!({
                "token": format!("tok-{n}"), "access_token": format!("tok-{n}"),
                "expires_in": 300, "issued_at": "2026-01-01T00:00:00Z"
            }))
        })
        .mount(&server)
        .await;
    for token in ["tok-1", "tok-2"] {
        Mock::given(method("GET"))
            .and(path("/v2/acme/shop/tags/list"))
            .and(bearer_token(token))
            .respond_with(tags_page("acme/shop", &names(0..3)))
            .mount(&server)
            .await;
    }
    Mock::given(path("/v2/acme/shop/tags/list"))
        .and(no_auth_header)
        .respond_with(bearer_challenge(&server, scope))
        .mount(&server)
        .await;

    let clock = Clock::manual();
    let endpoint = Url::parse(&server.uri()).unwrap();
    let credentials =
        Credentials::from_config(&config(RegistryKind::Oci, &server, Some(("ci", "s3cret"))))
            .unwrap()
            .basic();
    let client = OciClient::new(endpoint, credentials, false)
        .unwrap()
        .with_auth_state(AuthState::with_clock(clock.clone()));

    for _ in 0..3 {
        assert_eq!(
            tag_names(&client.list_tags("acme/shop").await.unwrap()),
            names(0..3)
        );
    }
    assert_eq!(
        issued.load(Ordering::SeqCst),
        1,
        "one token for three listings"
    );
    // The challenge was learnt from `/v2/` once; each listing went out once.
    assert_eq!(requests_to(&server, "/v2/").await, 1);
    assert_eq!(requests_to(&server, "/v2/acme/shop/tags/list").await, 3);

    clock.advance(Duration::from_secs(299));
    client.list_tags("acme/shop").await.unwrap();
    assert_eq!(
        issued.load(Ordering::SeqCst),
        1,
        "still valid one second before expiry"
    );

    clock.advance(Duration::from_secs(1));
    client.list_tags("acme/shop").await.unwrap();
    assert_eq!(
        issued.load(Ordering::SeqCst),
        2,
        "expired token is replaced"
    );
    // The new token is fetched up front: no second challenge.
    assert_eq!(requests_to(&server, "/v2/acme/shop/tags/list").await, 5);
    assert_eq!(requests_to(&server, "/v2/").await, 1);
}

#[tokio::test]
async fn token_endpoint_refusing_the_credentials_is_unauthorized_without_the_secret() {
    let server = token_registry().await;
    Mock::given(path("/v2/acme/shop/tags/list"))
        .respond_with(bearer_challenge(&server, "repository:acme/shop:pull"))
        .mount(&server)
        .await;
    Mock::given(path("/token"))
        .respond_with(
            ResponseTemplate::new(401)
                .set_body_json(json!({"details": "incorrect username or password"})),
        )
        .mount(&server)
        .await;
    let error = registry(RegistryKind::Oci, &server, Some(("ci", "wrong-s3cret")))
        .list_tags("acme/shop")
        .await
        .unwrap_err();
    assert!(
        matches!(
            error,
            RegistryError::Unauthorized {
                with_credentials: true,
                ..
            }
        ),
        "{error:?}"
    );
    let message = error.to_string();
    assert!(
        message.contains("check the username and token"),
        "{message}"
    );
    assert!(!message.contains("wrong-s3cret"), "{message}");
}

#[tokio::test]
async fn a_token_without_pull_rights_is_forbidden() {
    let server = token_registry().await;
    let denied = ResponseTemplate::new(401).insert_header(
        "WWW-Authenticate",
        format!(
            r#"Bearer realm="{}/token",service="fake-registry",scope="repository:acme/secret:pull",error="insufficient_scope""#,
            server.uri()
        ),
    );
    Mock::given(path("/v2/acme/secret/tags/list"))
        .respond_with(denied)
        .mount(&server)
        .await;
    Mock::given(path("/token"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({"token": "scoped-down"})))
        .mount(&server)
        .await;
    let error = registry(RegistryKind::Oci, &server, Some(("ci", "s3cret")))
        .list_tags("acme/secret")
        .await
        .unwrap_err();
    assert!(
        matches!(error, RegistryError::Forbidden { .. }),
        "{error:?}"
    );
    assert!(
        error.to_string().contains("repository acme/secret"),
        "{error}"
    );
}

#[tokio::test]
async fn follows_link_headers_until_the_last_page() {
    let server = open_registry().await;
    let base = "/v2/acme/shop/tags/list";
    Mock::given(path(base))
        .and(query_param("n", "1000"))
        .respond_with(tags_page("acme/shop", &names(0..2)).insert_header(
            "Link",
            format!(r#"<{base}?last=tag-00001&n=2>; rel="next""#),
        ))
        .mount(&server)
        .await;
    Mock::given(path(base))
        .and(query_param("last", "tag-00001"))
        .respond_with(tags_page("acme/shop", &names(2..4)).insert_header(
            "Link",
            format!(r#"<{base}?last=tag-00003&n=2>; rel="next""#),
        ))
        .mount(&server)
        .await;
    Mock::given(path(base))
        .and(query_param("last", "tag-00003"))
        .respond_with(tags_page("acme/shop", &names(4..5)))
        .mount(&server)
        .await;
    let tags = registry(RegistryKind::Oci, &server, None)
        .list_tags("acme/shop")
        .await
        .unwrap();
    assert_eq!(tag_names(&tags), names(0..5));
    assert_eq!(requests_to(&server, base).await, 3);
}

#[tokio::test]
async fn a_link_on_every_page_ends_at_the_empty_page() {
    // Gitea's OCI API sends `Link` on every non-empty page.
    let server = open_registry().await;
    let base = "/v2/acme/shop/tags/list";
    Mock::given(path(base))
        .and(query_param("n", "1000"))
        .respond_with(tags_page("acme/shop", &names(0..2)).insert_header(
            "Link",
            format!(r#"<{base}?n=1000&last=tag-00001>; rel="next""#),
        ))
        .mount(&server)
        .await;
    Mock::given(path(base))
        .and(query_param("last", "tag-00001"))
        .respond_with(tags_page("acme/shop", &[]))
        .with_priority(1)
        .mount(&server)
        .await;
    let tags = registry(RegistryKind::Oci, &server, None)
        .list_tags("acme/shop")
        .await
        .unwrap();
    assert_eq!(tag_names(&tags), names(0..2));
    assert_eq!(requests_to(&server, base).await, 2);
}

#[tokio::test]
async fn a_full_page_without_link_is_continued_with_last() {
    let server = open_registry().await;
    let base = "/v2/acme/shop/tags/list";
    Mock::given(path(base))
        .and(query_param("last", "tag-00999"))
        .respond_with(tags_page("acme/shop", &names(1000..1500)))
        .with_priority(1)
        .mount(&server)
        .await;
    Mock::given(path(base))
        .and(query_param("n", "1000"))
        .respond_with(tags_page("acme/shop", &names(0..1000)))
        .mount(&server)
        .await;
    let tags = registry(RegistryKind::Oci, &server, None)
        .list_tags("acme/shop")
        .await
        .unwrap();
    assert_eq!(tag_names(&tags), names(0..1500));
    assert_eq!(requests_to(&server, base).await, 2);
}

#[tokio::test]
async fn a_registry_that_ignores_n_is_listed_in_one_request() {
    // docker-registry 2.8: everything at once, no `Link`.
    let server = open_registry().await;
    let base = "/v2/acme/shop/tags/list";
    Mock::given(path(base))
        .respond_with(tags_page("acme/shop", &names(0..2500)))
        .mount(&server)
        .await;
    let tags = registry(RegistryKind::Oci, &server, None)
        .list_tags("acme/shop")
        .await
        .unwrap();
    assert_eq!(tags.len(), 2500);
    assert_eq!(requests_to(&server, base).await, 1);
}

#[tokio::test]
async fn a_registry_that_ignores_n_and_last_with_exactly_a_full_page_stops() {
    // docker-registry 2.8 ignores `last` too: the page after a full one repeats it.
    let server = open_registry().await;
    let base = "/v2/acme/shop/tags/list";
    Mock::given(path(base))
        .respond_with(tags_page("acme/shop", &names(0..1000)))
        .mount(&server)
        .await;
    let tags = registry(RegistryKind::Oci, &server, None)
        .list_tags("acme/shop")
        .await
        .unwrap();
    assert_eq!(tag_names(&tags), names(0..1000));
    assert_eq!(requests_to(&server, base).await, 2);
}

#[tokio::test]
async fn a_link_to_another_host_is_not_followed() {
    let server = open_registry().await;
    Mock::given(path("/v2/acme/shop/tags/list"))
        .respond_with(tags_page("acme/shop", &names(0..2)).insert_header(
            "Link",
            r#"<http://127.0.0.2:9/v2/acme/shop/tags/list?last=x>; rel="next""#,
        ))
        .mount(&server)
        .await;
    let error = registry(RegistryKind::Oci, &server, Some(("ci", "s3cret")))
        .list_tags("acme/shop")
        .await
        .unwrap_err();
    assert!(matches!(error, RegistryError::Protocol { .. }), "{error:?}");
    assert!(error.to_string().contains("another host"), "{error}");
}

#[tokio::test]
async fn digest_comes_from_head_with_every_manifest_type_accepted() {
    let server = open_registry().await;
    let digest = "sha256:6c3c624b58dbbcd3c0dd82b4c53f04194d1247c6eebdaab7c610cf7d66709b3b";
    Mock::given(method("HEAD"))
        .and(path("/v2/acme/shop/manifests/v1.2.0"))
        .and(|r: &Request| {
            let accept = r
                .headers
                .get("accept")
                .and_then(|v| v.to_str().ok())
                .unwrap_or("");
            [
                "application/vnd.oci.image.index.v1+json",
                "application/vnd.oci.image.manifest.v1+json",
                "application/vnd.docker.distribution.manifest.list.v2+json",
                "application/vnd.docker.distribution.manifest.v2+json",
            ]
            .iter()
            .all(|t| accept.contains(t))
        })
        .respond_with(
            ResponseTemplate::new(200)
                .insert_header(API_VERSION.0, API_VERSION.1)
                .insert_header(
                    "Content-Type",
                    "application/vnd.docker.distribution.manifest.v2+json",
                )
                .insert_header("Docker-Content-Digest", digest)
                .insert_header("Etag", format!("\"{digest}\"")),
        )
        .mount(&server)
        .await;
    let resolved = registry(RegistryKind::Oci, &server, None)
        .resolve_digest("acme/shop", "v1.2.0")
        .await
        .unwrap();
    assert_eq!(resolved, digest);
    let requests = server.received_requests().await.unwrap();
    assert!(
        requests
            .iter()
            .filter(|r| r.url.path().contains("/manifests/"))
            .all(|r| r.method.as_str() == "HEAD"),
        "no GET when HEAD gives the digest"
    );
}

#[tokio::test]
async fn without_a_digest_header_the_manifest_is_hashed() {
    let server = open_registry().await;
    let manifest = r#"{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","config":{"mediaType":"application/vnd.oci.image.config.v1+json","digest":"sha256:aa","size":2},"layers":[]}"#;
    let manifest_path = "/v2/acme/shop/manifests/latest";
    Mock::given(method("HEAD"))
        .and(path(manifest_path))
        .respond_with(
            ResponseTemplate::new(200)
                .insert_header("Content-Type", "application/vnd.oci.image.manifest.v1+json"),
        )
        .mount(&server)
        .await;
    Mock::given(method("GET"))
        .and(path(manifest_path))
        .respond_with(
            ResponseTemplate::new(200)
                .set_body_raw(manifest, "application/vnd.oci.image.manifest.v1+json"),
        )
        .mount(&server)
        .await;
    let resolved = registry(RegistryKind::Oci, &server, None)
        .resolve_digest("acme/shop", "latest")
        .await
        .unwrap();
    use sha2::Digest;
    assert_eq!(
        resolved,
        format!("sha256:{}", hex::encode(sha2::Sha256::digest(manifest)))
    );
}

#[tokio::test]
async fn missing_tag_is_not_found_and_rate_limit_says_when_to_retry() {
    let server = open_registry().await;
    Mock::given(path("/v2/acme/shop/manifests/gone"))
        .respond_with(ResponseTemplate::new(404).insert_header(API_VERSION.0, API_VERSION.1))
        .mount(&server)
        .await;
    Mock::given(path("/v2/acme/busy/tags/list"))
        .respond_with(
            ResponseTemplate::new(429)
                .insert_header("Retry-After", "30")
                .set_body_json(
                    json!({"errors": [{"code": "TOOMANYREQUESTS", "message": "slow down"}]}),
                ),
        )
        .mount(&server)
        .await;
    let client = registry(RegistryKind::Oci, &server, None);
    let missing = client
        .resolve_digest("acme/shop", "gone")
        .await
        .unwrap_err();
    assert!(
        matches!(missing, RegistryError::NotFound { .. }),
        "{missing:?}"
    );
    assert!(
        missing.to_string().contains("tag gone of acme/shop"),
        "{missing}"
    );
    let busy = client.list_tags("acme/busy").await.unwrap_err();
    assert_eq!(
        busy,
        RegistryError::RateLimited {
            registry: server.uri(),
            retry_after: Some(Duration::from_secs(30))
        }
    );
}

#[tokio::test]
async fn docker_hub_single_names_live_under_library() {
    // A Docker Hub mirror on 127.0.0.1 stands in for registry-1.docker.io.
    let server = open_registry().await;
    Mock::given(path("/v2/library/nginx/tags/list"))
        .respond_with(tags_page("library/nginx", &["1.27".to_string()]))
        .mount(&server)
        .await;
    Mock::given(path("/v2/acme/shop/tags/list"))
        .respond_with(tags_page("acme/shop", &["dev".to_string()]))
        .mount(&server)
        .await;
    let hub = registry(RegistryKind::DockerHub, &server, None);
    assert_eq!(tag_names(&hub.list_tags("nginx").await.unwrap()), ["1.27"]);
    assert_eq!(
        tag_names(&hub.list_tags("acme/shop").await.unwrap()),
        ["dev"]
    );
}

#[tokio::test]
async fn ghcr_public_images_use_an_anonymous_token() {
    let server = token_registry().await;
    let scope = "repository:acme/shop:pull";
    Mock::given(path("/token"))
        .and(no_auth_header)
        .and(query_param("scope", scope))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({"token": "anon"})))
        .mount(&server)
        .await;
    Mock::given(path("/v2/acme/shop/tags/list"))
        .and(bearer_token("anon"))
        .respond_with(tags_page("acme/shop", &["v1.0.0".to_string()]))
        .mount(&server)
        .await;
    Mock::given(path("/v2/acme/shop/tags/list"))
        .respond_with(bearer_challenge(&server, scope))
        .with_priority(10)
        .mount(&server)
        .await;
    let ghcr = registry(RegistryKind::Ghcr, &server, None);
    assert_eq!(
        tag_names(&ghcr.list_tags("acme/shop").await.unwrap()),
        ["v1.0.0"]
    );
}

#[tokio::test]
async fn check_with_a_bearer_registry_validates_the_credentials() {
    let server = MockServer::start().await;
    Mock::given(path("/v2/"))
        .and(bearer_token("general"))
        .respond_with(ResponseTemplate::new(200).insert_header(API_VERSION.0, API_VERSION.1))
        .mount(&server)
        .await;
    Mock::given(path("/v2/"))
        .respond_with(
            ResponseTemplate::new(401)
                .insert_header(API_VERSION.0, API_VERSION.1)
                .insert_header(
                    "WWW-Authenticate",
                    format!(
                        r#"Bearer realm="{}/token",service="fake-registry""#,
                        server.uri()
                    ),
                ),
        )
        .with_priority(10)
        .mount(&server)
        .await;
    Mock::given(path("/token"))
        .and(basic_auth("ci", "s3cret"))
        .and(wiremock::matchers::query_param_is_missing("scope"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({"token": "general"})))
        .mount(&server)
        .await;
    Mock::given(path("/token"))
        .respond_with(ResponseTemplate::new(401))
        .with_priority(10)
        .mount(&server)
        .await;
    let report = registry(RegistryKind::Oci, &server, Some(("ci", "s3cret")))
        .check(None)
        .await
        .unwrap();
    assert!(report.signed_in, "{report}");
    assert_eq!(report.repository, None);
    let refused = registry(RegistryKind::Oci, &server, Some(("ci", "nope")))
        .check(None)
        .await
        .unwrap_err();
    assert!(
        matches!(
            refused,
            RegistryError::Unauthorized {
                with_credentials: true,
                ..
            }
        ),
        "{refused:?}"
    );
}

#[tokio::test]
async fn check_against_a_web_page_says_the_url_is_wrong() {
    let server = MockServer::start().await;
    Mock::given(path("/v2/"))
        .respond_with(ResponseTemplate::new(404).set_body_raw("<html>not here</html>", "text/html"))
        .mount(&server)
        .await;
    let error = registry(RegistryKind::Oci, &server, None)
        .check(None)
        .await
        .unwrap_err();
    assert!(
        error
            .to_string()
            .contains("check that the URL points at the registry"),
        "{error}"
    );
}

/// One entry of Gitea's `GET /api/v1/packages/{owner}`, as its API documents it.
fn gitea_package(name: &str, version: &str, created_at: &str) -> serde_json::Value {
    json!({
        "id": 1, "type": "container", "name": name, "version": version,
        "owner": {"id": 2, "login": "acme", "full_name": "", "email": "acme@noreply.example"},
        "creator": {"id": 3, "login": "ci"},
        "html_url": format!("http://gitea.example/acme/-/packages/container/{name}/{version}"),
        "created_at": created_at,
    })
}

fn gitea_page(entries: Vec<serde_json::Value>, total: Option<usize>) -> ResponseTemplate {
    let mut response = ResponseTemplate::new(200).set_body_json(entries);
    if let Some(total) = total {
        response = response
            .insert_header("X-Total-Count", total.to_string())
            .insert_header("Access-Control-Expose-Headers", "X-Total-Count, Link");
    }
    response
}

#[tokio::test]
async fn gitea_lists_the_exact_package_over_pages_with_creation_times() {
    let server = MockServer::start().await;
    let mut first: Vec<serde_json::Value> = (0..45)
        .map(|i| gitea_package("shop", &format!("dev-{i:02}"), "2026-03-01T10:00:00+01:00"))
        .collect();
    // `q` matches parts of names; digest-named versions appear for multi-arch pushes.
    first.extend(
        (0..4).map(|i| gitea_package("shop-admin", &format!("v{i}"), "2026-03-01T10:00:00Z")),
    );
    first.push(gitea_package(
        "shop",
        "sha256:0a1b2c",
        "2026-03-01T10:00:00Z",
    ));
    let second = vec![
        gitea_package("shop", "v1.0.0", "2026-03-02T08:30:00Z"),
        gitea_package("shop", "latest", "2026-03-02T08:30:00Z"),
    ];
    for (page, entries) in [("1", first), ("2", second)] {
        Mock::given(method("GET"))
            .and(path("/api/v1/packages/acme"))
            .and(query_param("type", "container"))
            .and(query_param("q", "shop"))
            .and(query_param("page", page))
            .and(query_param("limit", "50"))
            .and(header("authorization", "token gitea-pat"))
            .respond_with(gitea_page(entries, Some(52)))
            .mount(&server)
            .await;
    }
    let tags = registry(RegistryKind::Gitea, &server, Some(("ci", "gitea-pat")))
        .list_tags("acme/shop")
        .await
        .unwrap();
    assert_eq!(tags.len(), 47, "{:?}", tag_names(&tags));
    let names = tag_names(&tags);
    assert!(names.iter().all(|n| !n.starts_with("sha256:")), "{names:?}");
    assert!(
        !names.contains(&"v0".to_string()),
        "versions of shop-admin leaked in: {names:?}"
    );
    assert!(names.contains(&"latest".to_string()) && names.contains(&"dev-44".to_string()));
    let dev = tags.iter().find(|t| t.name == "dev-00").unwrap();
    assert_eq!(
        dev.created.unwrap().to_rfc3339(),
        "2026-03-01T09:00:00+00:00"
    );
    let release = tags.iter().find(|t| t.name == "v1.0.0").unwrap();
    assert_eq!(
        release.created.unwrap().to_rfc3339(),
        "2026-03-02T08:30:00+00:00"
    );
    assert_eq!(requests_to(&server, "/api/v1/packages/acme").await, 2);
}

#[tokio::test]
async fn gitea_without_total_count_stops_at_a_short_page() {
    let server = MockServer::start().await;
    let full: Vec<_> = (0..50)
        .map(|i| gitea_package("shop", &format!("dev-{i:02}"), "2026-03-01T10:00:00Z"))
        .collect();
    Mock::given(path("/api/v1/packages/acme"))
        .and(query_param("page", "1"))
        .respond_with(gitea_page(full, None))
        .mount(&server)
        .await;
    Mock::given(path("/api/v1/packages/acme"))
        .and(query_param("page", "2"))
        .respond_with(gitea_page(
            vec![gitea_package("shop", "dev-50", "2026-03-01T10:00:00Z")],
            None,
        ))
        .mount(&server)
        .await;
    let tags = registry(RegistryKind::Gitea, &server, None)
        .list_tags("acme/shop")
        .await
        .unwrap();
    assert_eq!(tags.len(), 51);
    assert_eq!(requests_to(&server, "/api/v1/packages/acme").await, 2);
    let requests = server.received_requests().await.unwrap();
    assert!(
        requests.iter().all(no_auth_header),
        "no token configured, none sent"
    );
}

#[tokio::test]
async fn gitea_unknown_package_and_bad_token() {
    let server = MockServer::start().await;
    Mock::given(path("/api/v1/packages/acme"))
        .and(header("authorization", "token good"))
        .respond_with(gitea_page(
            vec![gitea_package("shop-admin", "v1", "2026-03-01T10:00:00Z")],
            Some(1),
        ))
        .mount(&server)
        .await;
    Mock::given(path("/api/v1/packages/acme"))
        .respond_with(ResponseTemplate::new(401).set_body_json(json!({"message": "invalid username, password or token", "url": "http://gitea.example/api/swagger"})))
        .with_priority(10)
        .mount(&server)
        .await;
    let missing = registry(RegistryKind::Gitea, &server, Some(("ci", "good")))
        .list_tags("acme/shop")
        .await
        .unwrap_err();
    assert!(
        matches!(missing, RegistryError::NotFound { .. }),
        "{missing:?}"
    );
    let refused = registry(RegistryKind::Gitea, &server, Some(("ci", "bad")))
        .list_tags("acme/shop")
        .await
        .unwrap_err();
    assert!(
        refused.to_string().contains("check the username and token"),
        "{refused}"
    );
    let not_owner_image = registry(RegistryKind::Gitea, &server, None)
        .list_tags("shop")
        .await
        .unwrap_err();
    assert!(
        not_owner_image.to_string().contains("owner/image"),
        "{not_owner_image}"
    );
}

#[tokio::test]
async fn gitea_digests_come_from_its_oci_api_with_a_token_from_v2_token() {
    let server = MockServer::start().await;
    let digest = "sha256:1111111111111111111111111111111111111111111111111111111111111111";
    Mock::given(method("HEAD"))
        .and(path("/v2/acme/shop/manifests/dev-1"))
        .and(bearer_token("gitea-registry-token"))
        .respond_with(ResponseTemplate::new(200).insert_header("Docker-Content-Digest", digest))
        .mount(&server)
        .await;
    Mock::given(path("/v2/acme/shop/manifests/dev-1"))
        .respond_with(
            ResponseTemplate::new(401)
                .insert_header(API_VERSION.0, API_VERSION.1)
                .insert_header(
                    "WWW-Authenticate",
                    format!(
                        r#"Bearer realm="{}/v2/token",service="container_registry",scope="*""#,
                        server.uri()
                    ),
                ),
        )
        .with_priority(10)
        .mount(&server)
        .await;
    Mock::given(path("/v2/"))
        .respond_with(
            ResponseTemplate::new(401)
                .insert_header(API_VERSION.0, API_VERSION.1)
                .insert_header(
                    "WWW-Authenticate",
                    format!(
                        r#"Bearer realm="{}/v2/token",service="container_registry",scope="*""#,
                        server.uri()
                    ),
                ),
        )
        .mount(&server)
        .await;
    Mock::given(path("/v2/token"))
        .and(basic_auth("ci", "gitea-pat"))
        .and(query_param("service", "container_registry"))
        .respond_with(
            ResponseTemplate::new(200).set_body_json(json!({"token": "gitea-registry-token"})),
        )
        .mount(&server)
        .await;
    let resolved = registry(RegistryKind::Gitea, &server, Some(("ci", "gitea-pat")))
        .resolve_digest("acme/shop", "dev-1")
        .await
        .unwrap();
    assert_eq!(resolved, digest);
}

#[test]
fn basic_auth_is_only_built_from_a_username_and_secret() {
    let config = RegistryConfig {
        kind: RegistryKind::Gitea,
        base_url: "https://gitea.example".into(),
        username: None,
        secret: Some("pat".into()),
        insecure: false,
    };
    let credentials = Credentials::from_config(&config).unwrap();
    assert_eq!(credentials.secret(), Some("pat"));
    let basic: Option<BasicAuth> = credentials.basic();
    assert!(basic.is_none());
    let oci = RegistryConfig {
        kind: RegistryKind::Oci,
        ..config
    };
    let error = Credentials::from_config(&oci).unwrap_err();
    assert!(error.to_string().contains("without a username"), "{error}");
}
