//! The test registry itself works: it starts, accepts a push, and enforces auth.

use crate::support::registry::{RegistryOptions, TestRegistry};
use crate::support::{HEALTHY_IMAGE, unique_name};

#[tokio::test]
async fn pushed_image_is_listed_by_the_registry() {
    let registry = TestRegistry::start().await;
    let repository = unique_name("acme/shop");
    let digest = registry.push(HEALTHY_IMAGE, &repository, "dev-1").await;
    assert!(digest.starts_with("sha256:"), "digest {digest}");
    let tags: serde_json::Value =
        reqwest::get(format!("{}/v2/{repository}/tags/list", registry.url()))
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
    assert_eq!(tags["tags"], serde_json::json!(["dev-1"]));
}

#[tokio::test]
async fn registry_with_auth_rejects_anonymous_requests() {
    let registry = TestRegistry::start_with(RegistryOptions {
        auth: Some(("ci".into(), "s3cret".into())),
        ..Default::default()
    })
    .await;
    let repository = unique_name("acme/private");
    registry.push(HEALTHY_IMAGE, &repository, "v1.0.0").await;
    let url = format!("{}/v2/{repository}/tags/list", registry.url());
    let anonymous = reqwest::get(&url).await.unwrap();
    assert_eq!(anonymous.status(), 401);
    let authed = reqwest::Client::new()
        .get(&url)
        .basic_auth("ci", Some("s3cret"))
        .send()
        .await
        .unwrap();
    assert_eq!(authed.status(), 200);
}
