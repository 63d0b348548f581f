//! Every registry's webhook (issue 18) posted to the real daemon's receiver: the senders'
//! own sample payloads (testdata/webhooks, README there says where each comes from) with
//! their real headers, unsigned and then signed the way each sender can, the image and tag
//! read from the answer and the digest from the deploy it requests; the Event Grid
//! handshakes; a format nobody sends refused with a reason.
//!
//! Docker is pointed at a socket that does not exist, so the deploys these pushes request
//! fail at once instead of pulling the samples' images from the internet; the deploy rows
//! still carry what the webhook said.

use serde_json::{Value, json};

use docker_watcher::store::*;
use docker_watcher::webhook::signature_hex;

use std::sync::{Arc, Mutex};

use crate::support::app::{AppOptions, TestApp, spawn_app_with};
use crate::support::google_tokens::{google_claims, google_token, jwks, key_server};
use crate::support::unique_name;

const SIGNING_SECRET: &str = "s3cret-for-every-sender";
const JFROG_HOST: &str = "acme.jfrog.io/{repo_key}";

/// How a sender proves the signing secret.
#[derive(Clone, Copy, Debug)]
enum Proof {
    /// `Authorization: Bearer <secret>` (ACR, Event Grid delivery properties).
    Bearer,
    /// Harbor's auth header, the secret as the whole value.
    HarborAuthHeader,
    /// `X-JFrog-Event-Auth: <hex HMAC-SHA256>`.
    JFrogHmac,
    /// A Google OIDC token whose audience is the secret.
    GoogleToken,
    /// `X-Hub-Signature-256: sha256=<hex>` over the form-encoded body.
    GitHubHmac,
    /// `X-Gitea-Signature: <hex>` over the form-encoded body.
    GiteaHmac,
}

struct Case {
    file: &'static str,
    /// The body as sent: the file, or the file form-encoded.
    form: bool,
    headers: &'static [(&'static str, &'static str)],
    proof: Proof,
    image: &'static str,
    tag: &'static str,
    digest: Option<&'static str>,
}

const CASES: &[Case] = &[
    Case {
        file: "harbor_push.json",
        form: false,
        headers: &[
            ("content-type", "application/json"),
            ("user-agent", "Go-http-client/1.1"),
        ],
        proof: Proof::HarborAuthHeader,
        image: "hub.harbor.com/test-webhook/debian",
        tag: "latest",
        digest: Some("sha256:8a9e9863dbb6e10edb5adfe917c00da84e1700fa76e7ed02476aa6e6fb8ee0d8"),
    },
    Case {
        file: "harbor_cloudevents_push_tagged.json",
        form: false,
        headers: &[
            ("content-type", "application/cloudevents+json"),
            ("user-agent", "Go-http-client/1.1"),
        ],
        proof: Proof::HarborAuthHeader,
        image: "localhost/harbor/alpine",
        tag: "3.8",
        digest: Some("sha256:2bb501e6173d9d006e56de5bce2720eb06396803300fe1687b58a7ff32bf4c14"),
    },
    Case {
        file: "acr_push.json",
        form: false,
        headers: &[("content-type", "application/json")],
        proof: Proof::Bearer,
        image: "myregistry.azurecr.io/hello-world",
        tag: "v1",
        digest: Some("sha256:80f0d5c8786bb9e621a45ece0db56d11cdc624ad20da9fe62e9d25490f331d7d"),
    },
    Case {
        file: "event_grid_acr_push.json",
        form: false,
        headers: &[
            ("content-type", "application/json"),
            ("aeg-event-type", "Notification"),
            ("aeg-subscription-name", "DOCKER-WATCHER"),
            ("aeg-delivery-count", "0"),
        ],
        proof: Proof::Bearer,
        image: "demo.azurecr.io/aci-helloworld",
        tag: "v1",
        digest: Some("sha256:213bbc182920ab41e18edc2001e06abcca6735d87782d9cef68abd83941cf0e5"),
    },
    Case {
        file: "event_grid_acr_push_cloudevents.json",
        form: false,
        headers: &[
            (
                "content-type",
                "application/cloudevents-batch+json; charset=utf-8",
            ),
            ("aeg-event-type", "Notification"),
        ],
        proof: Proof::Bearer,
        image: "demo.azurecr.io/aci-helloworld",
        tag: "v1",
        digest: Some("sha256:213bbc182920ab41e18edc2001e06abcca6735d87782d9cef68abd83941cf0e5"),
    },
    Case {
        file: "jfrog_docker_pushed.json",
        form: false,
        headers: &[
            ("content-type", "application/json"),
            ("user-agent", "JFrog Event/7.0"),
        ],
        proof: Proof::JFrogHmac,
        image: "acme.jfrog.io/docker-remote-cache/library/ubuntu",
        tag: "latest",
        digest: Some("sha256:35c4a2c15539c6c1e4e5fa4e554dac323ad0107d8eb5c582d6ff386b383b7dce"),
    },
    Case {
        file: "gcr_pubsub_push.json",
        form: false,
        headers: &[
            ("content-type", "application/json"),
            (
                "user-agent",
                "APIs-Google; (+https://developers.google.com/webmasters/APIs-Google.html)",
            ),
        ],
        proof: Proof::GoogleToken,
        image: "gcr.io/my-project/hello-world",
        tag: "1.1",
        digest: Some("sha256:6ec128e26cd5b1b5b8e1f8f3a6c8e0f1d2c3b4a5968778695a4b3c2d1e0f9a8b"),
    },
    Case {
        file: "artifact_registry_pubsub_push.json",
        form: false,
        headers: &[("content-type", "application/json")],
        proof: Proof::GoogleToken,
        image: "us-east1-docker.pkg.dev/my-project/my-repo/hello-world",
        tag: "1.1",
        digest: Some("sha256:6ec128e26cd5b1b5b8e1f8f3a6c8e0f1d2c3b4a5968778695a4b3c2d1e0f9a8b"),
    },
    Case {
        file: "github_registry_package_published.json",
        form: true,
        headers: &[
            ("content-type", "application/x-www-form-urlencoded"),
            ("user-agent", "GitHub-Hookshot/5f1e2d3"),
            ("x-github-event", "registry_package"),
            ("x-github-delivery", "0b1c2d3e-4f50-11ef-8a9b-0c1d2e3f4a5b"),
        ],
        proof: Proof::GitHubHmac,
        image: "ghcr.io/acme-org/shop",
        tag: "v1.4.0",
        digest: Some("sha256:3f1a9c0d2b8e7f6a5c4d3e2f1a0b9c8d7e6f5a4b3c2d1e0f9a8b7c6d5e4f3a2b"),
    },
    Case {
        file: "gitea_package_created.json",
        form: true,
        headers: &[
            ("content-type", "application/x-www-form-urlencoded"),
            ("x-gitea-event", "package"),
            ("x-gitea-event-type", "package"),
            ("x-github-event", "package"),
        ],
        proof: Proof::GiteaHmac,
        image: "git.example.com/acme/shop",
        tag: "dev-42",
        digest: None,
    },
];

fn fixture(file: &str) -> Vec<u8> {
    std::fs::read(format!(
        "{}/testdata/webhooks/{file}",
        env!("CARGO_MANIFEST_DIR")
    ))
    .unwrap()
}

fn body(case: &Case) -> Vec<u8> {
    let json = fixture(case.file);
    if !case.form {
        return json;
    }
    form_urlencoded::Serializer::new(String::new())
        .append_pair("payload", std::str::from_utf8(&json).unwrap())
        .finish()
        .into_bytes()
}

/// The headers that prove `secret` for this body.
fn proof(case: &Case, body: &[u8], secret: &str) -> (&'static str, String) {
    let hmac = signature_hex(secret.as_bytes(), body);
    match case.proof {
        Proof::Bearer => ("authorization", format!("Bearer {secret}")),
        Proof::HarborAuthHeader => ("authorization", secret.to_string()),
        Proof::JFrogHmac => ("x-jfrog-event-auth", hmac),
        Proof::GoogleToken => (
            "authorization",
            format!(
                "Bearer {}",
                google_token(1, "test-key-1", &google_claims(secret))
            ),
        ),
        Proof::GitHubHmac => ("x-hub-signature-256", format!("sha256={hmac}")),
        Proof::GiteaHmac => ("x-gitea-signature", hmac),
    }
}

/// The daemon, without Docker, fetching Google's token keys from a local server that
/// publishes test key 1.
async fn offline_app() -> TestApp {
    let (google_keys_url, _) = key_server(Arc::new(Mutex::new(jwks(1)))).await;
    let app = spawn_app_with(AppOptions {
        docker_host: Some("unix:///nonexistent/docker.sock".into()),
        google_keys_url: Some(google_keys_url),
        ..Default::default()
    })
    .await;
    let mut limits = app.store().settings().unwrap().limits;
    limits.jfrog_image_host = Some(JFROG_HOST.into());
    app.store()
        .update_settings(&SettingsUpdate {
            limits: Some(limits),
            auto_create_projects: Some(false),
            ..Default::default()
        })
        .unwrap();
    app
}

fn assert_error_mentions(answer: &Value, text: &str) {
    let error = answer["error"].as_str().unwrap_or_default();
    assert!(error.contains(text), "{text}: {answer}");
}

fn set_signing_secret(app: &TestApp) {
    app.store()
        .update_settings(&SettingsUpdate {
            webhook_signing_secret: Some(Some(SIGNING_SECRET.into())),
            ..Default::default()
        })
        .unwrap();
}

fn project_for(app: &TestApp, image: &str) -> Project {
    let project = app
        .store()
        .create_project(&NewProject {
            name: unique_name("sender"),
            image: image.into(),
            container_port: 8080,
            ..Default::default()
        })
        .unwrap();
    app.store()
        .create_stage(&NewStage {
            auto_deploy: true,
            ..NewStage::defaults(project.id, "dev")
        })
        .unwrap();
    project
}

/// Posts and checks that the answer names the image and tag and that the deploy it
/// requested carries the digest.
async fn post_and_check(app: &TestApp, case: &Case, body: &[u8], headers: &[(&str, &str)]) {
    let (status, answer) = app.post_webhook(body, headers).await;
    assert_eq!(status, 202, "{}: {answer}", case.file);
    let event = &answer["events"][0];
    assert_eq!(event["image"], case.image, "{}: {answer}", case.file);
    assert_eq!(event["tag"], case.tag, "{}", case.file);
    assert_eq!(event["outcome"], "deployed", "{}: {answer}", case.file);
    let deploy = app
        .store()
        .get_deploy(event["deploy_id"].as_i64().unwrap())
        .unwrap();
    assert_eq!(deploy.tag, case.tag, "{}", case.file);
    assert_eq!(deploy.digest.as_deref(), case.digest, "{}", case.file);
    assert_eq!(deploy.trigger, Trigger::Webhook);
}

#[tokio::test]
async fn every_senders_sample_is_read_unsigned_and_then_only_when_signed() {
    let app = offline_app().await;
    let mut images: Vec<&str> = CASES.iter().map(|c| c.image).collect();
    images.dedup();
    for image in images {
        project_for(&app, image);
    }
    // Without a signing secret, the URL secret is enough.
    for case in CASES {
        post_and_check(&app, case, &body(case), case.headers).await;
    }
    set_signing_secret(&app);
    for case in CASES {
        let body = body(case);
        let (status, answer) = app.post_webhook(&body, case.headers).await;
        assert_eq!(status, 401, "{} unsigned: {answer}", case.file);
        let (name, wrong) = proof(case, &body, "not-the-secret");
        let mut headers = case.headers.to_vec();
        headers.push((name, &wrong));
        let (status, answer) = app.post_webhook(&body, &headers).await;
        assert_eq!(
            status, 401,
            "{} signed with another secret: {answer}",
            case.file
        );
        let (name, right) = proof(case, &body, SIGNING_SECRET);
        let mut headers = case.headers.to_vec();
        headers.push((name, &right));
        post_and_check(&app, case, &body, &headers).await;
    }
    app.shutdown().await;
}

#[tokio::test]
async fn quay_pushes_every_tag_and_needs_its_setting_when_a_signing_secret_is_set() {
    let app = offline_app().await;
    project_for(&app, "quay.io/devtable/simple");
    let body = fixture("quay_repo_push_test_notification.json");
    let (status, answer) = app.post_webhook(&body, &[]).await;
    assert_eq!(status, 202, "{answer}");
    assert_eq!(answer["received"], 2);
    let pushed: Vec<(&str, &str)> = answer["events"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| (e["image"].as_str().unwrap(), e["tag"].as_str().unwrap()))
        .collect();
    assert_eq!(
        pushed,
        [
            ("quay.io/devtable/simple", "latest"),
            ("quay.io/devtable/simple", "foo")
        ]
    );

    set_signing_secret(&app);
    let (status, answer) = app.post_webhook(&body, &[]).await;
    assert_eq!(status, 401, "{answer}");
    assert_error_mentions(&answer, "allow_unsigned_quay");
    let api = app.api().await;
    let (status, settings) = api
        .put("/api/settings", json!({ "allow_unsigned_quay": true }))
        .await;
    assert_eq!(status, 200, "{settings}");
    assert_eq!(settings["allow_unsigned_quay"], true);
    let (status, answer) = app.post_webhook(&body, &[]).await;
    assert_eq!(status, 202, "{answer}");
    assert_eq!(answer["received"], 2, "{answer}");
    assert_eq!(answer["events"][0]["image"], "quay.io/devtable/simple");
    // The documented sample, another repository, is read too (no project has it).
    let (status, answer) = app.post_webhook(&fixture("quay_repo_push.json"), &[]).await;
    assert_eq!(status, 202, "{answer}");
    assert_eq!(answer["events"][0]["image"], "quay.io/dgangaia/test");
    assert_eq!(answer["events"][0]["tag"], "latest");
    app.shutdown().await;
}

#[tokio::test]
async fn event_grid_handshakes_are_answered_and_change_nothing() {
    let app = offline_app().await;
    // A signing secret is set: the handshake is answered anyway (Event Grid may not send
    // its delivery headers with it), and it records nothing.
    set_signing_secret(&app);
    let (status, answer) = app
        .post_webhook(
            &fixture("event_grid_subscription_validation.json"),
            &[("aeg-event-type", "SubscriptionValidation")],
        )
        .await;
    assert_eq!(status, 200, "{answer}");
    assert_eq!(
        answer,
        json!({ "validationResponse": "512d38b6-c7b8-40c8-89fe-f46f9e9622b6" })
    );
    assert!(app.store().list_webhook_events(10).unwrap().is_empty());

    // The CloudEvents schema's abuse-protection handshake.
    let response = app
        .client
        .request(reqwest::Method::OPTIONS, app.webhook_url())
        .header("WebHook-Request-Origin", "eventgrid.azure.net")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    assert_eq!(
        response.headers()["webhook-allowed-origin"],
        "eventgrid.azure.net"
    );
    // With a wrong URL secret it is the unknown-path 404 like everything else.
    let wrong = app
        .client
        .request(
            reqwest::Method::OPTIONS,
            format!("{}/api/webhook/not-the-secret", app.address),
        )
        .header("WebHook-Request-Origin", "eventgrid.azure.net")
        .send()
        .await
        .unwrap();
    assert_eq!(wrong.status(), 404);
    assert!(wrong.headers().get("webhook-allowed-origin").is_none());
    app.shutdown().await;
}

#[tokio::test]
async fn unknown_formats_and_bad_jfrog_hosts_are_refused_with_a_reason() {
    let app = offline_app().await;
    let (status, answer) = app
        .post_webhook(br#"{"kind": "push", "what": "acme/shop:v1"}"#, &[])
        .await;
    assert_eq!(status, 400, "{answer}");
    assert_error_mentions(&answer, "no known webhook format");
    // A form without a GitHub or Gitea event header is still not accepted.
    let (status, _) = app
        .post_webhook(
            b"payload=%7B%7D",
            &[("content-type", "application/x-www-form-urlencoded")],
        )
        .await;
    assert_eq!(status, 415);

    let api = app.api().await;
    let (status, body) = api
        .put(
            "/api/settings",
            json!({ "jfrog_image_host": "https://Acme JFrog" }),
        )
        .await;
    assert_eq!(status, 422, "{body}");
    assert!(body.to_string().contains("jfrog_image_host"), "{body}");
    let (_, settings) = api.get("/api/settings").await;
    assert_eq!(settings["jfrog_image_host"], JFROG_HOST, "nothing changed");
    let (status, settings) = api
        .put("/api/settings", json!({ "jfrog_image_host": null }))
        .await;
    assert_eq!(status, 200, "{settings}");
    assert_eq!(settings["jfrog_image_host"], Value::Null);
    // Without it, the documented sample (whose origin is a placeholder) says what to set.
    let (status, answer) = app
        .post_webhook(&fixture("jfrog_docker_pushed.json"), &[])
        .await;
    assert_eq!(status, 400, "{answer}");
    assert_error_mentions(&answer, "jfrog_image_host");
    app.shutdown().await;
}

/// Pub/Sub pushes with a signing secret: only a token Google's published key signed, for
/// the secret as audience and not expired, gets in; the rest are 401 with the reason and
/// request no deploy.
#[tokio::test]
async fn a_pubsub_token_google_did_not_sign_is_refused_and_requests_nothing() {
    use crate::support::google_tokens::{GOOGLE_ISSUER, google_claims_with};
    let app = offline_app().await;
    let case = CASES
        .iter()
        .find(|c| c.file == "gcr_pubsub_push.json")
        .unwrap();
    let project = project_for(&app, case.image);
    set_signing_secret(&app);
    let body = body(case);
    let refused = [
        // Right claims, signed with a key Google does not publish, under its key's id.
        (
            google_token(2, "test-key-1", &google_claims(SIGNING_SECRET)),
            "signature does not verify",
        ),
        (
            google_token(2, "test-key-2", &google_claims(SIGNING_SECRET)),
            "a key Google does not publish",
        ),
        (
            google_token(
                1,
                "test-key-1",
                &google_claims_with(SIGNING_SECRET, GOOGLE_ISSUER, 1_550_185_935),
            ),
            "expired",
        ),
    ];
    for (token, reason) in refused {
        let authorization = format!("Bearer {token}");
        let mut headers = case.headers.to_vec();
        headers.push(("authorization", &authorization));
        let (status, answer) = app.post_webhook(&body, &headers).await;
        assert_eq!(status, 401, "{reason}: {answer}");
        assert_error_mentions(&answer, reason);
    }
    assert!(
        app.store()
            .list_deploys_by_project(project.id, 10)
            .unwrap()
            .is_empty(),
        "a refused push requests no deploy"
    );
    let (name, right) = proof(case, &body, SIGNING_SECRET);
    let mut headers = case.headers.to_vec();
    headers.push((name, &right));
    post_and_check(&app, case, &body, &headers).await;
}
