//! The daemon with Nginx Proxy Manager (the spec-following fake) configured through the
//! API, deploying a real image on the real Docker Engine: a token NPM stops accepting
//! (expired, or signed with keys NPM no longer has) is replaced by one new login instead of
//! rolling every deploy back, and the settings check reports on the client deploys use.

use serde_json::{Value, json};

use crate::support::app::{Api, TestApp, spawn_app};
use crate::support::npm_fake::{self, FakeNpm};
use crate::support::project_cli::create_project;
use crate::support::registry::TestRegistry;
use crate::support::{HEALTHY_IMAGE, require_docker, unique_name};

pub struct NpmSetup {
    pub app: TestApp,
    pub api: Api,
    pub npm: FakeNpm,
    /// Kept alive for the daemon's pulls.
    _registry: TestRegistry,
    pub project: Value,
    pub stage: Value,
}

/// A daemon routing through the fake NPM, a registry with `v1` and `v2` of the healthy
/// test image, and a project with stage `dev`, all made through the API.
pub async fn npm_setup() -> NpmSetup {
    require_docker();
    let npm = FakeNpm::start().await;
    let app = spawn_app().await;
    let registry = TestRegistry::start().await;
    let repository = unique_name("acme/shop");
    registry.push(HEALTHY_IMAGE, &repository, "v1").await;
    registry.push(HEALTHY_IMAGE, &repository, "v2").await;
    let api = app.api().await;
    let (status, body) = api
        .put(
            "/api/settings",
            json!({ "base_domain": "example.test", "proxy_kind": "npm", "proxy_url": npm.url(),
                    "proxy_username": npm_fake::IDENTITY, "proxy_secret": npm_fake::SECRET }),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    let (project, stages) =
        create_project(&api, &registry, &repository, &[("dev", json!({}))]).await;
    let stage = stages[0].clone();
    NpmSetup {
        app,
        api,
        npm,
        _registry: registry,
        project,
        stage,
    }
}

impl NpmSetup {
    /// Deploys `tag` to the stage through the API and waits for its final status.
    pub async fn deploy(&self, tag: &str) -> docker_watcher::store::Deploy {
        let (status, deploy) = self
            .api
            .post(
                &format!("/api/stages/{}/deploys", self.stage["id"]),
                json!({ "tag": tag }),
            )
            .await;
        assert_eq!(status, 202, "{deploy}");
        self.app.wait_final(deploy["id"].as_i64().unwrap()).await
    }
}

#[tokio::test]
async fn deploys_go_on_after_npm_expires_the_token() {
    let s = npm_setup().await;
    let first = s.deploy("v1").await;
    assert_eq!(first.status.as_str(), "success", "{:?}", first.error);
    let logins = s.npm.logins();

    s.npm.expire_tokens();
    let second = s.deploy("v2").await;

    assert_eq!(second.status.as_str(), "success", "{:?}", second.error);
    assert_eq!(s.npm.logins(), logins + 1, "exactly one new login");
}

#[tokio::test]
async fn deploys_go_on_after_npm_restarts_with_new_keys() {
    let s = npm_setup().await;
    let first = s.deploy("v1").await;
    assert_eq!(first.status.as_str(), "success", "{:?}", first.error);

    s.npm.rotate_keys();
    let second = s.deploy("v2").await;

    assert_eq!(second.status.as_str(), "success", "{:?}", second.error);
    let stage_domain = format!(
        "stage-dev-{}.example.test",
        s.project["name"].as_str().unwrap()
    );
    let stage_host = s
        .npm
        .hosts()
        .into_iter()
        .find(|h| h["domain_names"][0] == stage_domain)
        .expect("the stage's host");
    let (_, instances) = s
        .api
        .get(&format!("/api/stages/{}/instances", s.stage["id"]))
        .await;
    let live = instances
        .as_array()
        .unwrap()
        .iter()
        .find(|i| i["tag"] == "v2")
        .expect("v2 runs");
    assert!(
        live["upstream"]
            .as_str()
            .unwrap()
            .ends_with(&format!(":{}", stage_host["forward_port"])),
        "the stage's host points at v2: {stage_host} {live}"
    );
}

#[tokio::test]
async fn the_proxy_check_uses_and_reports_on_the_live_client() {
    let s = npm_setup().await;
    let first = s.deploy("v1").await;
    assert_eq!(first.status.as_str(), "success", "{:?}", first.error);
    let logins = s.npm.logins();

    s.npm.rotate_keys();
    let (status, check) = s.api.post("/api/settings/proxy/check", json!({})).await;

    assert_eq!(status, 200, "{check}");
    assert_eq!(check["ok"], true, "{check}");
    let message = check["message"].as_str().unwrap();
    assert!(
        message.contains("signed in again") && message.contains("500"),
        "the check says the live token was refused and renewed: {message}"
    );
    assert_eq!(s.npm.logins(), logins + 1);
    // The renewed token is the one deploys use: no further login.
    let second = s.deploy("v2").await;
    assert_eq!(second.status.as_str(), "success", "{:?}", second.error);
    assert_eq!(s.npm.logins(), logins + 1);
}
