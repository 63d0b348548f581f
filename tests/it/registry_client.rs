//! The registry client against a real docker-registry on 127.0.0.1: listing, digests,
//! auth with htpasswd, and the errors a person sees when something is wrong.

use std::collections::BTreeSet;
use std::sync::Arc;

use docker_watcher::registry::{self, Registry, RegistryConfig, RegistryError, RegistryKind};

use crate::support::free_port;
use crate::support::registry::{RegistryOptions, TestRegistry};
use crate::support::{HEALTHY_IMAGE, SLOW_IMAGE, unique_name};

fn client(registry: &TestRegistry, credentials: Option<(&str, &str)>) -> Arc<dyn Registry> {
    registry::connect(&RegistryConfig {
        kind: RegistryKind::Oci,
        base_url: registry.url(),
        username: credentials.map(|(user, _)| user.to_string()),
        secret: credentials.map(|(_, secret)| secret.to_string()),
        insecure: true,
    })
    .expect("client")
}

async fn with_auth() -> TestRegistry {
    TestRegistry::start_with(RegistryOptions {
        auth: Some(("ci".into(), "s3cret-pass".into())),
        ..Default::default()
    })
    .await
}

async fn tag_set(client: &dyn Registry, repository: &str) -> BTreeSet<String> {
    let tags = client.list_tags(repository).await.expect("list tags");
    tags.into_iter().map(|t| t.name).collect()
}

fn set(names: &[&str]) -> BTreeSet<String> {
    names.iter().map(|n| n.to_string()).collect()
}

#[tokio::test]
async fn lists_the_tags_of_pushed_images() {
    let registry = TestRegistry::start().await;
    let shop = unique_name("acme/shop");
    let other = unique_name("acme/other");
    for tag in ["dev-1", "v1.0.0", "v1.1.0"] {
        registry.push(HEALTHY_IMAGE, &shop, tag).await;
    }
    registry.push(HEALTHY_IMAGE, &other, "latest").await;
    let client = client(&registry, None);
    assert_eq!(
        tag_set(&*client, &shop).await,
        set(&["dev-1", "v1.0.0", "v1.1.0"])
    );
    assert_eq!(tag_set(&*client, &other).await, set(&["latest"]));
    let listing = client.list_tags(&shop).await.unwrap();
    assert!(
        listing
            .iter()
            .all(|t| t.created.is_none() && t.digest.is_none())
    );
}

#[tokio::test]
async fn lists_tags_with_htpasswd_credentials() {
    let registry = with_auth().await;
    let repository = unique_name("acme/private");
    registry.push(HEALTHY_IMAGE, &repository, "v2.0.0").await;
    registry.push(HEALTHY_IMAGE, &repository, "dev-7").await;
    let client = client(&registry, Some(("ci", "s3cret-pass")));
    assert_eq!(
        tag_set(&*client, &repository).await,
        set(&["dev-7", "v2.0.0"])
    );
    // The second listing goes out with Basic auth at once and still works.
    assert_eq!(
        tag_set(&*client, &repository).await,
        set(&["dev-7", "v2.0.0"])
    );
}

#[tokio::test]
async fn digest_matches_the_push_and_changes_when_the_tag_is_pushed_again() {
    let registry = with_auth().await;
    let repository = unique_name("acme/shop");
    let pushed = registry.push(HEALTHY_IMAGE, &repository, "latest").await;
    let client = client(&registry, Some(("ci", "s3cret-pass")));
    let resolved = client.resolve_digest(&repository, "latest").await.unwrap();
    assert_eq!(resolved, pushed);

    let pushed_again = registry.push(SLOW_IMAGE, &repository, "latest").await;
    assert_ne!(pushed_again, pushed, "the test needs two different images");
    let resolved_again = client.resolve_digest(&repository, "latest").await.unwrap();
    assert_eq!(resolved_again, pushed_again);
}

#[tokio::test]
async fn wrong_or_missing_credentials_are_unauthorized_with_a_clear_message() {
    let registry = with_auth().await;
    let repository = unique_name("acme/private");
    registry.push(HEALTHY_IMAGE, &repository, "v1.0.0").await;

    let wrong = client(&registry, Some(("ci", "not-the-pass")));
    let error = wrong.list_tags(&repository).await.unwrap_err();
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
    assert!(
        message.contains(&registry.url()),
        "names the registry: {message}"
    );
    assert!(!message.contains("not-the-pass"), "{message}");
    let error = wrong
        .resolve_digest(&repository, "v1.0.0")
        .await
        .unwrap_err();
    assert!(
        matches!(error, RegistryError::Unauthorized { .. }),
        "{error:?}"
    );

    let anonymous = client(&registry, None);
    let error = anonymous.list_tags(&repository).await.unwrap_err();
    assert!(
        matches!(
            error,
            RegistryError::Unauthorized {
                with_credentials: false,
                ..
            }
        ),
        "{error:?}"
    );
    assert!(
        error
            .to_string()
            .contains("credentials are required: set a username and token"),
        "{error}"
    );
}

#[tokio::test]
async fn unknown_repository_and_tag_are_not_found() {
    let registry = TestRegistry::start().await;
    let repository = unique_name("acme/shop");
    registry.push(HEALTHY_IMAGE, &repository, "v1.0.0").await;
    let client = client(&registry, None);

    let error = client.list_tags("acme/never-pushed").await.unwrap_err();
    assert!(matches!(error, RegistryError::NotFound { .. }), "{error:?}");
    assert!(
        error.to_string().contains("repository acme/never-pushed"),
        "{error}"
    );

    let error = client
        .resolve_digest(&repository, "v9.9.9")
        .await
        .unwrap_err();
    assert!(matches!(error, RegistryError::NotFound { .. }), "{error:?}");
    assert!(error.to_string().contains("tag v9.9.9"), "{error}");
}

#[tokio::test]
async fn check_reports_access_and_the_repository() {
    let registry = with_auth().await;
    let repository = unique_name("acme/shop");
    registry.push(HEALTHY_IMAGE, &repository, "dev-1").await;
    registry.push(HEALTHY_IMAGE, &repository, "dev-2").await;

    let report = client(&registry, Some(("ci", "s3cret-pass")))
        .check(Some(&repository))
        .await
        .unwrap();
    assert!(report.signed_in);
    assert_eq!(report.repository, Some((repository.clone(), 2)));
    assert!(
        report.to_string().contains("credentials accepted"),
        "{report}"
    );

    let error = client(&registry, Some(("ci", "wrong")))
        .check(None)
        .await
        .unwrap_err();
    assert!(
        error.to_string().contains("check the username and token"),
        "{error}"
    );

    let error = client(&registry, Some(("ci", "s3cret-pass")))
        .check(Some("acme/never-pushed"))
        .await
        .unwrap_err();
    assert!(matches!(error, RegistryError::NotFound { .. }), "{error:?}");
}

#[tokio::test]
async fn check_of_an_open_registry_says_access_is_anonymous() {
    let registry = TestRegistry::start().await;
    // Credentials the registry never asks for are not reported as accepted.
    let report = client(&registry, Some(("ci", "anything")))
        .check(None)
        .await
        .unwrap();
    assert!(!report.signed_in, "{report}");
    assert!(report.to_string().contains("anonymous access"), "{report}");
}

#[tokio::test]
async fn a_closed_port_is_unreachable() {
    let port = free_port();
    let client = registry::connect(&RegistryConfig {
        kind: RegistryKind::Oci,
        base_url: format!("http://127.0.0.1:{port}"),
        username: None,
        secret: None,
        insecure: true,
    })
    .unwrap();
    let error = client.check(None).await.unwrap_err();
    assert!(
        matches!(error, RegistryError::Unreachable { .. }),
        "{error:?}"
    );
    let message = error.to_string();
    assert!(message.contains("connection refused"), "{message}");
    assert!(message.contains(&format!("127.0.0.1:{port}")), "{message}");
    let error = client.list_tags("acme/shop").await.unwrap_err();
    assert!(
        matches!(error, RegistryError::Unreachable { .. }),
        "{error:?}"
    );
}

#[tokio::test]
async fn a_plain_http_registry_without_the_insecure_flag_says_so() {
    let registry = TestRegistry::start().await;
    // A bare host means https unless the registry is marked insecure.
    let client = registry::connect(&RegistryConfig {
        kind: RegistryKind::Oci,
        base_url: registry.host(),
        username: None,
        secret: None,
        insecure: false,
    })
    .unwrap();
    let error = client.check(None).await.unwrap_err();
    assert!(
        matches!(
            error,
            RegistryError::Tls {
                plain_http: true,
                ..
            }
        ),
        "{error:?}"
    );
    assert!(
        error.to_string().contains("mark the registry insecure"),
        "{error}"
    );

    let refused = registry::connect(&RegistryConfig {
        kind: RegistryKind::Oci,
        base_url: registry.url(),
        username: None,
        secret: None,
        insecure: false,
    })
    .err()
    .expect("http:// without insecure is refused");
    assert!(
        matches!(refused, RegistryError::Config { .. }),
        "{refused:?}"
    );
    assert!(
        refused.to_string().contains("mark the registry insecure"),
        "{refused}"
    );
}
