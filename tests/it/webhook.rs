//! The webhook endpoint end to end: a real registry's notifications start exactly one
//! deploy; every format is read, matched and answered; wrong secrets, bad signatures,
//! malformed, oversized and unsupported bodies are refused and change nothing.

use std::time::{Duration, Instant};

use docker_watcher::store::*;
use docker_watcher::webhook::{ParseOptions, parse_payload, signature_hex};

use crate::support::app::{TestApp, spawn_app};
use crate::support::registry::{RegistryOptions, TestRegistry};
use crate::support::{HEALTHY_IMAGE, free_port, unique_name};

fn project(app: &TestApp, image: &str, auto_deploy: bool) -> (Project, Stage) {
    let project = app
        .store()
        .create_project(&NewProject {
            name: unique_name("shop"),
            image: image.into(),
            container_port: 8080,
            health_path: Some("/health".into()),
            ..Default::default()
        })
        .unwrap();
    let stage = app
        .store()
        .create_stage(&NewStage {
            auto_deploy,
            ..NewStage::defaults(project.id, "dev")
        })
        .unwrap();
    (project, stage)
}

#[tokio::test]
async fn a_push_to_a_real_registry_requests_exactly_one_deploy() {
    let app = spawn_app().await;
    let registry = TestRegistry::start_with(RegistryOptions {
        notify_url: Some(app.webhook_url()),
        ..Default::default()
    })
    .await;
    let repository = unique_name("acme/shop");
    let (project, stage) = project(&app, &format!("{}/{repository}", registry.host()), true);
    let prod = app
        .store()
        .create_stage(&NewStage {
            tag_pattern: "v*".into(),
            ..NewStage::defaults(project.id, "prod")
        })
        .unwrap();

    registry
        .push_keeping_local_tag(HEALTHY_IMAGE, &repository, "dev-1")
        .await;
    let deadline = Instant::now() + Duration::from_secs(20);
    let deploys = loop {
        let deploys = app.store().list_deploys_by_project(project.id, 10).unwrap();
        if !deploys.is_empty() || Instant::now() > deadline {
            break deploys;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert_eq!(deploys.len(), 1, "{deploys:?}");
    let deploy = app.wait_final(deploys[0].id).await;
    assert_eq!(
        (deploy.stage_id, deploy.tag.as_str(), deploy.trigger),
        (stage.id, "dev-1", Trigger::Webhook)
    );
    assert_eq!(deploy.status, DeployStatus::Success, "{:?}", deploy.error);
    assert_ne!(deploy.stage_id, prod.id, "dev-1 does not match v*");
    // Give the registry time to send anything else it would, then count again.
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert_eq!(
        app.store()
            .list_deploys_by_project(project.id, 10)
            .unwrap()
            .len(),
        1,
        "exactly once"
    );
    let events = app.store().list_webhook_events(50).unwrap();
    assert!(
        events
            .iter()
            .any(|e| e.outcome == WebhookOutcome::Deployed && e.deploy_id == Some(deploy.id))
    );
}

/// Every documented format, with its headers, matched to a project of the same image.
#[tokio::test]
async fn every_format_is_read_and_matched() {
    let app = spawn_app().await;
    let signing_secret = "s3cret-hmac";
    app.store()
        .update_settings(&SettingsUpdate {
            webhook_signing_secret: Some(Some(signing_secret.into())),
            // Docker Hub cannot sign.
            limits: Some(WebhookLimits {
                allow_unsigned_dockerhub: true,
                ..Default::default()
            }),
            ..Default::default()
        })
        .unwrap();
    let cases: [(&str, Vec<(&str, String)>); 5] = [
        ("generic.json", vec![]),
        (
            "distribution_push.json",
            vec![(
                "content-type",
                "application/vnd.docker.distribution.events.v1+json".into(),
            )],
        ),
        (
            "gitea_package_created.json",
            vec![("x-gitea-event", "package".into())],
        ),
        (
            "github_registry_package_published.json",
            vec![("x-github-event", "registry_package".into())],
        ),
        ("docker_hub_push.json", vec![]),
    ];
    for (file, mut headers) in cases {
        let body = std::fs::read(format!(
            "{}/testdata/webhooks/{file}",
            env!("CARGO_MANIFEST_DIR")
        ))
        .unwrap();
        let signature = signature_hex(signing_secret.as_bytes(), &body);
        match file {
            f if f.starts_with("gitea") => headers.push(("x-gitea-signature", signature)),
            f if f.starts_with("github") || f.starts_with("generic") => {
                headers.push(("x-hub-signature-256", format!("sha256={signature}")))
            }
            f if f.starts_with("distribution") => {
                headers.push(("authorization", format!("Bearer {signing_secret}")))
            }
            _ => {}
        }
        let header_map: axum::http::HeaderMap = headers
            .iter()
            .map(|(k, v)| (k.parse().unwrap(), v.parse().unwrap()))
            .collect();
        let parsed = parse_payload(&header_map, &body, &ParseOptions::default()).unwrap();
        let push = parsed
            .pushes()
            .next()
            .expect("a push in every sample")
            .clone();
        // Stages that do not auto-deploy: matched, recorded, and no pull from the internet.
        let (project, _) = project(&app, &push.image.name(), false);
        let headers: Vec<(&str, &str)> = headers.iter().map(|(k, v)| (*k, v.as_str())).collect();
        let (status, answer) = app.post_webhook(&body, &headers).await;
        assert_eq!(status, 202, "{file}: {answer}");
        let matched = answer["events"]
            .as_array()
            .unwrap()
            .iter()
            .find(|e| e["project"] == project.name)
            .unwrap_or_else(|| panic!("{file}: {answer}"));
        assert_eq!(matched["stage"], "dev", "{file}");
        assert_eq!(matched["tag"], push.tag.as_str(), "{file}");
        assert_eq!(matched["outcome"], "ignored");
        assert!(
            matched["reason"]
                .as_str()
                .unwrap()
                .contains("does not deploy automatically")
        );
    }
}

#[tokio::test]
async fn a_bad_signature_is_rejected_and_changes_nothing() {
    let app = spawn_app().await;
    app.store()
        .update_settings(&SettingsUpdate {
            webhook_signing_secret: Some(Some("right".into())),
            ..Default::default()
        })
        .unwrap();
    let body = std::fs::read(format!(
        "{}/testdata/webhooks/gitea_package_created.json",
        env!("CARGO_MANIFEST_DIR")
    ))
    .unwrap();
    let wrong = signature_hex(b"wrong", &body);
    let (status, _) = app
        .post_webhook(
            &body,
            &[("x-gitea-event", "package"), ("x-gitea-signature", &wrong)],
        )
        .await;
    assert_eq!(status, 401);
    let (status, _) = app
        .post_webhook(&body, &[("x-gitea-event", "package")])
        .await;
    assert_eq!(status, 401, "a missing signature too");
    assert!(
        app.store().list_projects().unwrap().is_empty(),
        "no auto-created project"
    );
    assert!(app.store().list_recent_deploys(10).unwrap().is_empty());
}

#[tokio::test]
async fn wrong_or_regenerated_secrets_answer_like_an_unknown_path() {
    let app = spawn_app().await;
    let unknown = app
        .client
        .post(format!("{}/api/no-such-thing", app.address))
        .send()
        .await
        .unwrap();
    let unknown_status = unknown.status();
    let unknown_body = unknown.text().await.unwrap();
    let body = br#"{"image":"127.0.0.1:5999/acme/shop:v1"}"#;
    for url in [
        format!("{}/api/webhook/not-the-secret", app.address),
        format!("{}/api/webhook/", app.address),
    ] {
        let response = app
            .client
            .post(&url)
            .header("content-type", "application/json")
            .body(body.to_vec())
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), unknown_status);
        assert_eq!(response.text().await.unwrap(), unknown_body);
    }
    let old_url = app.webhook_url();
    app.store().regenerate_webhook_secret().unwrap();
    let (status, answer) = app.post_webhook_to(&old_url, body, &[]).await;
    assert_eq!(
        status, 404,
        "the old secret stops working at once: {answer}"
    );
    app.store()
        .update_settings(&SettingsUpdate {
            auto_create_projects: Some(false),
            ..Default::default()
        })
        .unwrap();
    let (status, answer) = app.post_webhook(body, &[]).await;
    assert_eq!(status, 202, "{answer}");
    assert_eq!(answer["events"][0]["outcome"], "ignored");
    assert!(
        app.store().list_projects().unwrap().is_empty(),
        "auto-create is off"
    );
}

#[tokio::test]
async fn malformed_oversized_and_unsupported_bodies_get_a_reason() {
    let app = spawn_app().await;
    let (status, answer) = app.post_webhook(b"{not json", &[]).await;
    assert_eq!(status, 400, "{answer}");
    assert!(
        answer["error"]
            .as_str()
            .unwrap()
            .contains("invalid webhook payload")
    );
    let (status, answer) = app.post_webhook(br#"{"image":"Acme/Shop:v1"}"#, &[]).await;
    assert_eq!(status, 400);
    assert!(
        answer["error"].as_str().unwrap().contains("lowercase"),
        "{answer}"
    );
    let (status, _) = app
        .post_webhook(b"image=acme/shop:v1", &[("content-type", "text/plain")])
        .await;
    assert_eq!(status, 415);
    let huge = format!(
        r#"{{"image":"127.0.0.1:5999/acme/shop:v1","pad":"{}"}}"#,
        "x".repeat(2 * 1024 * 1024)
    );
    let (status, _) = app.post_webhook(huge.as_bytes(), &[]).await;
    assert_eq!(status, 413);
    assert!(app.store().list_projects().unwrap().is_empty());
    assert!(app.store().list_recent_deploys(10).unwrap().is_empty());
}

#[tokio::test]
async fn unknown_images_create_a_project_from_what_the_image_says() {
    let app = spawn_app().await;
    let registry = TestRegistry::start().await;
    let repository = unique_name("acme/web-shop");
    registry.push(HEALTHY_IMAGE, &repository, "v1").await;
    let body = format!(r#"{{"image":"{}/{repository}:v1"}}"#, registry.host());
    let (status, answer) = app.post_webhook(body.as_bytes(), &[]).await;
    assert_eq!(status, 202, "{answer}");
    let event = &answer["events"][0];
    assert_eq!(event["project_created"], true);
    assert_eq!(event["outcome"], "deployed");
    let project = app.store().list_projects().unwrap().remove(0);
    assert!(project.name.starts_with("web-shop-"), "{}", project.name);
    assert_eq!(project.container_port, 8080, "from EXPOSE");
    assert_eq!(
        project.health_path.as_deref(),
        Some("/health"),
        "from the image's label"
    );
    assert!(project.auto_created);
    let stages = app.store().list_stages(project.id).unwrap();
    assert_eq!(stages.len(), 1);
    assert_eq!(
        (
            stages[0].name.as_str(),
            stages[0].tag_pattern.as_str(),
            stages[0].auto_deploy,
            stages[0].max_instances
        ),
        ("dev", "*", true, 1)
    );
    let deploy = app.wait_final(event["deploy_id"].as_i64().unwrap()).await;
    assert_eq!(deploy.status, DeployStatus::Success, "{:?}", deploy.error);

    // An image that cannot be inspected: the project is still made, with port 0 and a note.
    let body = format!(r#"{{"image":"127.0.0.1:{}/acme/ghost:v1"}}"#, free_port());
    let (status, answer) = app.post_webhook(body.as_bytes(), &[]).await;
    assert_eq!(status, 202, "{answer}");
    let ghost = app.store().get_project_by_name("ghost").unwrap();
    assert_eq!(ghost.container_port, 0);
    assert_eq!(ghost.health_path, None);
    let events = app.store().list_project_events(ghost.id).unwrap();
    assert!(
        events[0].message.contains("without inspecting"),
        "{events:?}"
    );
}
