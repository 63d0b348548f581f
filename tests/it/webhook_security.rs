//! The webhook under attack and under load (issue 12 §2–§4, issue 11 bug 4): bounded
//! events per request recorded in one go, pruning, the auto-create rate, every format
//! proving the signing secret (the Distribution header end to end with a real registry),
//! wrong secrets indistinguishable from unknown paths for every method and size, tag
//! patterns that used to panic, and racing pushes of new images.

use std::time::{Duration, Instant};

use serde_json::{Value, json};

use docker_watcher::store::*;
use docker_watcher::webhook::signature_hex;

use crate::support::app::{TestApp, spawn_app};
use crate::support::registry::{RegistryOptions, TestRegistry};
use crate::support::{HEALTHY_IMAGE, free_port, unique_name};

const DISTRIBUTION: (&str, &str) = (
    "content-type",
    "application/vnd.docker.distribution.events.v1+json",
);

/// A Distribution envelope of `n` events a registry would send for a deleted manifest:
/// each one is kept as an ignored event with its reason.
fn deletes(n: usize) -> Vec<u8> {
    let events: Vec<Value> = (0..n)
        .map(|i| {
            json!({
                "action": "delete",
                "target": { "repository": "acme/shop", "tag": format!("t{i}") },
                "request": { "host": "127.0.0.1:5999" }
            })
        })
        .collect();
    serde_json::to_vec(&json!({ "events": events })).unwrap()
}

fn set_limits(app: &TestApp, change: impl FnOnce(&mut WebhookLimits)) {
    let mut limits = app.store().settings().unwrap().limits;
    change(&mut limits);
    app.store()
        .update_settings(&SettingsUpdate {
            limits: Some(limits),
            ..Default::default()
        })
        .unwrap();
}

fn set_signing_secret(app: &TestApp, secret: &str) {
    app.store()
        .update_settings(&SettingsUpdate {
            webhook_signing_secret: Some(Some(secret.into())),
            ..Default::default()
        })
        .unwrap();
}

#[tokio::test]
async fn more_than_a_hundred_events_is_413_with_a_reason_and_records_nothing() {
    let app = spawn_app().await;
    // The attack of the report: ~524,000 tiny events in one 1 MiB envelope.
    let mut tiny = b"{\"events\":[".to_vec();
    tiny.extend(std::iter::repeat_n(b"0,".as_slice(), 523_000).flatten());
    tiny.extend_from_slice(b"0]}");
    assert!(tiny.len() <= 1024 * 1024);
    for body in [deletes(101), tiny] {
        let (status, answer) = app.post_webhook(&body, &[DISTRIBUTION]).await;
        assert_eq!(status, 413, "{answer}");
        let reason = answer["error"].as_str().expect("a JSON reason");
        assert!(reason.contains("more than the 100"), "{reason}");
    }
    let recorded = app.store().list_webhook_events(1000).unwrap();
    assert!(
        recorded
            .iter()
            .all(|e| e.outcome == WebhookOutcome::Rejected),
        "no event of those envelopes is recorded: {recorded:?}"
    );
    assert!(app.store().list_projects().unwrap().is_empty());
}

#[tokio::test]
async fn a_hundred_events_are_recorded_in_one_go_while_healthz_answers() {
    let app = spawn_app().await;
    let body = deletes(100);
    let senders: Vec<_> = (0..4)
        .map(|_| {
            let client = app.client.clone();
            let url = app.webhook_url();
            let body = body.clone();
            tokio::spawn(async move {
                let response = client
                    .post(url)
                    .header(DISTRIBUTION.0, DISTRIBUTION.1)
                    .body(body)
                    .send()
                    .await
                    .unwrap();
                let status = response.status().as_u16();
                (status, response.json::<Value>().await.unwrap())
            })
        })
        .collect();
    // While the four requests are handled, the daemon keeps answering.
    for _ in 0..5 {
        let (status, health) = app.healthz().await;
        assert_eq!(status, 200, "{health}");
    }
    for sender in senders {
        let (status, answer) = sender.await.unwrap();
        assert_eq!(status, 202, "{answer}");
        assert_eq!(answer["received"], 100);
        assert_eq!(answer["ignored"], 100);
        assert_eq!(answer["deployed"], 0);
        let listed = answer["events"].as_array().unwrap();
        assert_eq!(listed.len(), 10, "the answer lists only the first few");
        assert_eq!(answer["not_shown"], 90);
        assert_eq!(listed[0]["reason"], "action delete");
    }
    let events = app.store().list_webhook_events(1000).unwrap();
    assert_eq!(events.len(), 400);
    // One transaction per request: each request's hundred rows share one timestamp.
    let mut times: Vec<_> = events.iter().map(|e| e.received_at).collect();
    times.dedup();
    assert!(times.len() <= 4, "{} distinct times", times.len());
}

#[tokio::test]
async fn pruning_removes_old_rows_and_keeps_recent_ones() {
    let app = spawn_app().await;
    let store = app.store();
    let old: Vec<NewWebhookEvent> = (0..30)
        .map(|i| NewWebhookEvent {
            source: "generic".into(),
            detail: format!("old {i}"),
            ..Default::default()
        })
        .collect();
    store.record_webhook_events(&old).unwrap();
    tokio::time::sleep(Duration::from_millis(20)).await;
    let cutoff = chrono::Utc::now();
    tokio::time::sleep(Duration::from_millis(20)).await;
    let recent: Vec<NewWebhookEvent> = (0..150)
        .map(|i| NewWebhookEvent {
            source: "generic".into(),
            detail: format!("recent {i}"),
            ..Default::default()
        })
        .collect();
    store.record_webhook_events(&recent).unwrap();
    assert_eq!(store.prune_webhook_events(cutoff, 1_000).unwrap(), 30);
    let left = store.list_webhook_events(1000).unwrap();
    assert_eq!(left.len(), 150);
    assert!(left.iter().all(|e| e.detail.starts_with("recent")));
    // By count: the newest hundred stay.
    assert_eq!(store.prune_webhook_events(cutoff, 100).unwrap(), 50);
    let left = store.list_webhook_events(1000).unwrap();
    assert_eq!(left.len(), 100);
    assert_eq!(left[0].detail, "recent 149");
    assert_eq!(left[99].detail, "recent 50");

    // Deploy logs: the newest `keep` deploys of a stage keep theirs, and so does one still
    // running; older finished ones lose them (the deploy rows stay).
    let project = store
        .create_project(&NewProject {
            name: unique_name("pruned"),
            image: "127.0.0.1:5999/acme/pruned".into(),
            ..Default::default()
        })
        .unwrap();
    let stage = store
        .create_stage(&NewStage::defaults(project.id, "dev"))
        .unwrap();
    let mut deploys = Vec::new();
    for i in 0..5 {
        let deploy = store
            .create_deploy(&NewDeploy {
                project_id: project.id,
                stage_id: stage.id,
                tag: format!("v{i}"),
                digest: None,
                trigger: Trigger::Manual,
                detected_at: None,
            })
            .unwrap();
        store
            .append_deploy_log(deploy.id, LogLevel::Info, "pull", "pulling")
            .unwrap();
        if i != 0 {
            store
                .set_deploy_status(deploy.id, DeployStatus::Success)
                .unwrap();
        }
        deploys.push(deploy.id);
    }
    let far_past = chrono::Utc::now() - chrono::Duration::days(1);
    assert_eq!(store.prune_deploy_logs(far_past, 2).unwrap(), 2);
    let kept: Vec<bool> = deploys
        .iter()
        .map(|id| !store.deploy_logs(*id, 0).unwrap().is_empty())
        .collect();
    assert_eq!(
        kept,
        [true, false, false, true, true],
        "v0 is still running"
    );
    // By age: everything finished before now goes, the running one stays.
    let future = chrono::Utc::now() + chrono::Duration::seconds(1);
    assert_eq!(store.prune_deploy_logs(future, 100).unwrap(), 2);
    assert!(!store.deploy_logs(deploys[0], 0).unwrap().is_empty());
    assert_eq!(store.get_deploy(deploys[4]).unwrap().tag, "v4");

    // The background task uses the settings: with a small maximum it keeps that many.
    set_limits(&app, |l| l.webhook_event_max_count = 100);
    store.record_webhook_events(&recent).unwrap();
    let pruned = docker_watcher::retention::prune_once(store).unwrap();
    assert_eq!(pruned.webhook_events, 150);
    assert_eq!(store.count_webhook_events().unwrap(), 100);
}

#[tokio::test]
async fn the_limits_are_settings_checked_by_the_api() {
    let app = spawn_app().await;
    let api = app.api().await;
    let (status, settings) = api.get("/api/settings").await;
    assert_eq!(status, 200);
    assert_eq!(settings["webhook_event_retention_days"], 30);
    assert_eq!(settings["webhook_event_max_count"], 10_000);
    assert_eq!(settings["deploy_log_retention_days"], 90);
    assert_eq!(settings["deploy_logs_per_stage"], 50);
    assert_eq!(settings["auto_create_per_minute"], 10);
    assert_eq!(settings["allow_unsigned_dockerhub"], false);
    let (status, answer) = api
        .put(
            "/api/settings",
            json!({ "auto_create_per_minute": 0, "webhook_event_max_count": 5 }),
        )
        .await;
    assert_eq!(status, 422, "{answer}");
    assert!(answer["fields"]["auto_create_per_minute"].is_string());
    assert!(answer["fields"]["webhook_event_max_count"].is_string());
    assert_eq!(
        app.store().settings().unwrap().limits,
        WebhookLimits::default()
    );
    let (status, answer) = api
        .put(
            "/api/settings",
            json!({ "auto_create_per_minute": 3, "allow_unsigned_dockerhub": true }),
        )
        .await;
    assert_eq!(status, 200, "{answer}");
    assert_eq!(answer["auto_create_per_minute"], 3);
    assert_eq!(answer["allow_unsigned_dockerhub"], true);
    assert_eq!(answer["deploy_logs_per_stage"], 50, "the others are kept");
}

#[tokio::test]
async fn auto_create_makes_at_most_the_limit_per_minute() {
    let app = spawn_app().await;
    set_limits(&app, |l| l.auto_create_per_minute = 2);
    // No registry listens there: inspection fails fast and the project is made anyway.
    let host = format!("127.0.0.1:{}", free_port());
    let mut answers = Vec::new();
    for name in ["alpha", "beta", "gamma"] {
        let repository = unique_name(&format!("acme/{name}"));
        let body = format!(r#"{{"image":"{host}/{repository}:v1"}}"#);
        let (status, answer) = app.post_webhook(body.as_bytes(), &[]).await;
        assert_eq!(status, 202, "{answer}");
        answers.push(answer);
    }
    assert_eq!(app.store().list_projects().unwrap().len(), 2);
    let third = &answers[2]["events"][0];
    assert_eq!(third["outcome"], "ignored", "{third}");
    assert!(
        third["reason"]
            .as_str()
            .unwrap()
            .contains("auto_create_per_minute"),
        "{third}"
    );
    let recorded = app.store().list_webhook_events(10).unwrap();
    assert_eq!(recorded[0].outcome, WebhookOutcome::Ignored);
    assert!(recorded[0].detail.contains("auto_create_per_minute"));
}

#[tokio::test]
async fn racing_pushes_of_new_images_all_land_in_one_project_per_image() {
    let app = spawn_app().await;
    set_limits(&app, |l| l.auto_create_per_minute = 1000);
    // Stages made by auto-create deploy; nothing listens on this registry port, so those
    // deploys fail at the pull without touching the engine's containers.
    let host = format!("127.0.0.1:{}", free_port());
    let images: Vec<String> = (0..20)
        .map(|i| format!("{host}/{}", unique_name(&format!("storm/app{i}"))))
        .collect();
    let mut pushes = Vec::new();
    for image in &images {
        for tag in ["v1", "v2", "v3"] {
            let client = app.client.clone();
            let url = app.webhook_url();
            let body = format!(r#"{{"image":"{image}:{tag}"}}"#);
            pushes.push(tokio::spawn(async move {
                let response = client
                    .post(url)
                    .header("content-type", "application/json")
                    .body(body)
                    .send()
                    .await
                    .unwrap();
                (response.status().as_u16(), response.text().await.unwrap())
            }));
        }
    }
    for push in pushes {
        let (status, answer) = push.await.unwrap();
        assert_eq!(status, 202, "{answer}");
    }
    let projects = app.store().list_projects().unwrap();
    assert_eq!(projects.len(), images.len(), "{projects:?}");
    for image in &images {
        let project = app
            .store()
            .find_project_by_image(image)
            .unwrap()
            .unwrap_or_else(|| panic!("a project for {image}"));
        assert_eq!(app.store().list_stages(project.id).unwrap().len(), 1);
    }
    // Every push found its stage: none was left without one by the race.
    let events = app.store().list_webhook_events(100).unwrap();
    assert_eq!(events.len(), 60);
    assert!(
        events.iter().all(|e| e.stage_id.is_some()),
        "{:?}",
        events.iter().map(|e| &e.detail).collect::<Vec<_>>()
    );
}

/// Header name and value pairs.
type Headers = Vec<(String, String)>;

/// A body per format, and the headers that sign it with `secret`.
fn signed_cases(secret: &str) -> Vec<(&'static str, Vec<u8>, Headers, Headers)> {
    let read = |file: &str| {
        std::fs::read(format!(
            "{}/testdata/webhooks/{file}",
            env!("CARGO_MANIFEST_DIR")
        ))
        .unwrap()
    };
    let hmac = |body: &[u8]| signature_hex(secret.as_bytes(), body);
    let own = |pairs: &[(&str, &str)]| -> Vec<(String, String)> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    };
    let generic = read("generic.json");
    let gitea = read("gitea_package_created.json");
    let github = read("github_registry_package_published.json");
    vec![
        (
            "generic",
            generic.clone(),
            vec![],
            own(&[("x-hub-signature-256", &format!("sha256={}", hmac(&generic)))]),
        ),
        (
            "gitea",
            gitea.clone(),
            own(&[("x-gitea-event", "package")]),
            own(&[("x-gitea-signature", &hmac(&gitea))]),
        ),
        (
            "github",
            github.clone(),
            own(&[("x-github-event", "registry_package")]),
            own(&[("x-hub-signature-256", &format!("sha256={}", hmac(&github)))]),
        ),
        (
            "distribution",
            read("distribution_push.json"),
            own(&[DISTRIBUTION]),
            own(&[("authorization", &format!("Bearer {secret}"))]),
        ),
    ]
}

#[tokio::test]
async fn with_a_signing_secret_every_format_must_prove_it() {
    let app = spawn_app().await;
    let secret = "sign-me-please";
    set_signing_secret(&app, secret);
    // Nothing here may pull from the internet (ghcr.io, Docker Hub): a push that gets in
    // is recorded as ignored, one that does not as rejected.
    app.store()
        .update_settings(&SettingsUpdate {
            auto_create_projects: Some(false),
            ..Default::default()
        })
        .unwrap();
    let newest = || app.store().list_webhook_events(1).unwrap().remove(0);
    let as_refs = |pairs: &[(String, String)]| -> Vec<(String, String)> { pairs.to_vec() };
    for (format, body, announce, signature) in signed_cases(secret) {
        let unsigned = as_refs(&announce);
        let headers: Vec<(&str, &str)> = unsigned
            .iter()
            .map(|(k, v)| (k.as_str(), v.as_str()))
            .collect();
        let (status, answer) = app.post_webhook(&body, &headers).await;
        assert_eq!(status, 401, "{format} unsigned: {answer}");
        assert_eq!(newest().outcome, WebhookOutcome::Rejected, "{format}");
        let mut signed = as_refs(&announce);
        signed.extend(signature);
        let headers: Vec<(&str, &str)> = signed
            .iter()
            .map(|(k, v)| (k.as_str(), v.as_str()))
            .collect();
        let (status, answer) = app.post_webhook(&body, &headers).await;
        assert_eq!(status, 202, "{format} signed: {answer}");
        assert_eq!(newest().outcome, WebhookOutcome::Ignored, "{format}");
    }
    // Distribution with a wrong bearer.
    let body = std::fs::read(format!(
        "{}/testdata/webhooks/distribution_push.json",
        env!("CARGO_MANIFEST_DIR")
    ))
    .unwrap();
    let (status, _) = app
        .post_webhook(&body, &[DISTRIBUTION, ("authorization", "Bearer nope")])
        .await;
    assert_eq!(status, 401);

    // Docker Hub cannot sign: refused until the setting allows it.
    let hub = std::fs::read(format!(
        "{}/testdata/webhooks/docker_hub_push.json",
        env!("CARGO_MANIFEST_DIR")
    ))
    .unwrap();
    let (status, answer) = app.post_webhook(&hub, &[]).await;
    assert_eq!(status, 401, "{answer}");
    assert!(
        answer["error"]
            .as_str()
            .unwrap()
            .contains("allow_unsigned_dockerhub")
    );
    assert_eq!(newest().outcome, WebhookOutcome::Rejected);
    set_limits(&app, |l| l.allow_unsigned_dockerhub = true);
    let (status, answer) = app.post_webhook(&hub, &[]).await;
    assert_eq!(status, 202, "{answer}");
    assert_eq!(newest().outcome, WebhookOutcome::Ignored);
    assert!(app.store().list_projects().unwrap().is_empty());
}

#[tokio::test]
async fn a_registry_sending_the_bearer_header_deploys_and_one_without_it_is_refused() {
    let app = spawn_app().await;
    let secret = "registry-header-secret";
    set_signing_secret(&app, secret);
    let signed = TestRegistry::start_with(RegistryOptions {
        notify_url: Some(app.webhook_url()),
        notify_headers: vec![("Authorization".into(), format!("Bearer {secret}"))],
        ..Default::default()
    })
    .await;
    let unsigned = TestRegistry::start_with(RegistryOptions {
        notify_url: Some(app.webhook_url()),
        ..Default::default()
    })
    .await;
    let repository = unique_name("acme/signed");
    let make = |registry: &TestRegistry| {
        let project = app
            .store()
            .create_project(&NewProject {
                name: unique_name("signed"),
                image: format!("{}/{repository}", registry.host()),
                container_port: 8080,
                health_path: Some("/health".into()),
                ..Default::default()
            })
            .unwrap();
        app.store()
            .create_stage(&NewStage::defaults(project.id, "dev"))
            .unwrap();
        project
    };
    let signed_project = make(&signed);
    let unsigned_project = make(&unsigned);
    unsigned.push(HEALTHY_IMAGE, &repository, "v1").await;
    signed
        .push_keeping_local_tag(HEALTHY_IMAGE, &repository, "v1")
        .await;
    let deadline = Instant::now() + Duration::from_secs(30);
    let deploys = loop {
        let deploys = app
            .store()
            .list_deploys_by_project(signed_project.id, 10)
            .unwrap();
        if !deploys.is_empty() || Instant::now() > deadline {
            break deploys;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert_eq!(deploys.len(), 1, "the signed registry's push deploys");
    let deploy = app.wait_final(deploys[0].id).await;
    assert_eq!(deploy.status, DeployStatus::Success, "{:?}", deploy.error);
    // The unsigned registry's notifications (sent and retried meanwhile) were refused.
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let refused = app
            .store()
            .list_webhook_events(200)
            .unwrap()
            .into_iter()
            .any(|e| e.outcome == WebhookOutcome::Rejected && e.detail.contains("Authorization"));
        if refused {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "no refused notification recorded"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(
        app.store()
            .list_deploys_by_project(unsigned_project.id, 10)
            .unwrap()
            .is_empty()
    );
}

/// Status, headers (without the per-request id and date) and body, for comparing answers.
async fn fingerprint(response: reqwest::Response) -> (u16, Vec<(String, String)>, Vec<u8>) {
    let status = response.status().as_u16();
    let mut headers: Vec<(String, String)> = response
        .headers()
        .iter()
        .filter(|(name, _)| *name != "x-request-id" && *name != "date")
        .map(|(name, value)| {
            (
                name.to_string(),
                String::from_utf8_lossy(value.as_bytes()).to_string(),
            )
        })
        .collect();
    headers.sort();
    let body = response
        .bytes()
        .await
        .map(|b| b.to_vec())
        .unwrap_or_default();
    (status, headers, body)
}

#[tokio::test]
async fn a_wrong_secret_answers_like_an_unknown_path_for_every_method_and_size() {
    let app = spawn_app().await;
    let big = vec![b'x'; 2 * 1024 * 1024];
    let small = br#"{"image":"127.0.0.1:5999/acme/shop:v1"}"#.to_vec();
    let methods = ["GET", "POST", "PUT", "DELETE", "PATCH", "HEAD", "OPTIONS"];
    for method in methods {
        for body in [&small, &big] {
            let send = |path: String| {
                // A fresh connection each time, so one answer cannot affect the next.
                let client = reqwest::Client::builder()
                    .pool_max_idle_per_host(0)
                    .build()
                    .unwrap();
                let request = client
                    .request(
                        reqwest::Method::from_bytes(method.as_bytes()).unwrap(),
                        format!("{}{path}", app.address),
                    )
                    .header("content-type", "application/json")
                    .body(body.clone());
                async move { request.send().await }
            };
            let unknown = fingerprint(send("/api/no-such-thing".into()).await.unwrap()).await;
            assert_eq!(unknown.0, 404);
            for path in ["/api/webhook/not-the-secret", "/api/webhook/%FF%FE"] {
                let wrong = fingerprint(send(path.into()).await.unwrap()).await;
                assert_eq!(wrong, unknown, "{method} {path} with {} bytes", body.len());
            }
        }
    }
    assert!(app.store().list_webhook_events(10).unwrap().is_empty());

    // With the right secret: other methods are 405 and a large body 413, both as JSON.
    let response = app.client.get(app.webhook_url()).send().await.unwrap();
    assert_eq!(response.status(), 405);
    assert_eq!(response.headers()["allow"], "POST");
    let answer: Value = response.json().await.unwrap();
    assert!(answer["error"].as_str().unwrap().contains("POST"));
    let response = app
        .client
        .post(app.webhook_url())
        .header("content-type", "application/json")
        .body(big.clone())
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 413);
    assert!(
        response.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("application/json")
    );
    let answer: Value = response.json().await.unwrap();
    assert!(answer["error"].as_str().unwrap().contains("larger than"));
}

#[tokio::test]
async fn tag_patterns_that_panicked_globset_are_refused_and_stored_ones_are_skipped() {
    let app = spawn_app().await;
    let api = app.api().await;
    let project = api
        .create(
            "/api/projects",
            json!({ "name": unique_name("globs"), "image": "127.0.0.1:5999/acme/globs", "container_port": 8080 }),
        )
        .await;
    let stages = format!("/api/projects/{}/stages", project["id"]);
    let nested = format!("{}a{}", "{".repeat(125), "}".repeat(125));
    for pattern in [nested.clone(), "?".repeat(240_000)] {
        let (status, answer) = api
            .post(&stages, json!({ "name": "dev", "tag_pattern": pattern }))
            .await;
        assert_eq!(status, 422, "{answer}");
        assert!(answer["fields"]["tag_pattern"].is_string(), "{answer}");
    }
    let (status, health) = app.healthz().await;
    assert_eq!(status, 200, "the daemon is still up: {health}");

    // A pattern stored before today's limits: its stage is skipped, the next one matches.
    let project_id = project["id"].as_i64().unwrap();
    app.store()
        .create_stage(&NewStage {
            tag_pattern: nested,
            auto_deploy: false,
            ..NewStage::defaults(project_id, "a-old")
        })
        .unwrap();
    app.store()
        .create_stage(&NewStage {
            auto_deploy: false,
            ..NewStage::defaults(project_id, "b-new")
        })
        .unwrap();
    let (status, answer) = app
        .post_webhook(br#"{"image":"127.0.0.1:5999/acme/globs:v1"}"#, &[])
        .await;
    assert_eq!(status, 202, "{answer}");
    assert_eq!(answer["events"][0]["stage"], "b-new", "{answer}");
}
