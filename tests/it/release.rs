//! The release workflow end to end on the real parts (Docker, a real registry sending its
//! notifications, the daemon's HTTP API, the SQLite file): promotion by digest, approvals
//! by a user and a token, rejection, expiry, deploy windows, version policies, and the
//! audit log naming who did each.

use std::time::{Duration, Instant};

use serde_json::{Value, json};

use crate::support::app::{Api, TestApp, spawn_app};
use crate::support::project_cli::{Cli, create_project};
use crate::support::registry::{RegistryOptions, TestRegistry};
use crate::support::{HEALTHY_IMAGE, SLOW_IMAGE, require_docker, unique_name};

/// A daemon, a registry that notifies it, a project of the registry's repository with
/// the stages given (name, extra fields), all made over the API as admin.
struct Setup {
    app: TestApp,
    api: Api,
    registry: TestRegistry,
    repository: String,
    project: Value,
    stages: Vec<Value>,
}

async fn setup(stages: &[(&str, Value)]) -> Setup {
    require_docker();
    let app = spawn_app().await;
    let registry = TestRegistry::start_with(RegistryOptions {
        notify_url: Some(app.webhook_url()),
        ..Default::default()
    })
    .await;
    let repository = unique_name("acme/shop");
    let api = app.api().await;
    let (project, stages) = create_project(&api, &registry, &repository, stages).await;
    Setup {
        app,
        api,
        registry,
        repository,
        project,
        stages,
    }
}

impl Setup {
    /// Waits (bounded) for the deploy's status to be `status`.
    async fn wait_status(&self, id: i64, status: &str) -> Value {
        let deadline = Instant::now() + Duration::from_secs(90);
        loop {
            let (code, deploy) = self.api.get(&format!("/api/deploys/{id}")).await;
            assert_eq!(code, 200, "{deploy}");
            if deploy["status"] == status {
                return deploy;
            }
            assert!(
                deploy["finished"] != true && Instant::now() < deadline,
                "deploy {id} is {} (wanted {status}): {deploy}",
                deploy["status"]
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// The newest deploy of the stage, once there is one newer than `after` (bounded).
    async fn next_deploy(&self, stage: &Value, after: i64) -> Value {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let (_, page) = self
                .api
                .get(&format!("/api/deploys?stage_id={}&limit=1", stage["id"]))
                .await;
            if let Some(d) = page["deploys"].as_array().and_then(|d| d.first())
                && d["id"].as_i64().unwrap() > after
            {
                return d.clone();
            }
            assert!(
                Instant::now() < deadline,
                "no new deploy on {}",
                stage["name"]
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    async fn audit(&self, query: &str) -> Vec<Value> {
        let (code, page) = self.api.get(&format!("/api/audit?{query}")).await;
        assert_eq!(code, 200, "{page}");
        page["entries"].as_array().unwrap().clone()
    }

    /// The audit entry `action` of deploy `id`, once it is written (bounded).
    async fn audit_entry(&self, action: &str, id: i64) -> Value {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let entries = self
                .audit(&format!(
                    "action={action}&target_kind=deploy&target_id={id}"
                ))
                .await;
            if let Some(entry) = entries.first() {
                return entry.clone();
            }
            assert!(Instant::now() < deadline, "no {action} for deploy {id}");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    async fn token(&self, name: &str, scope: &str) -> Api {
        let created = self
            .api
            .create("/api/auth/tokens", json!({ "name": name, "scope": scope }))
            .await;
        self.app.api_with_token(created["token"].as_str().unwrap())
    }
}

/// The image id a container runs, as Docker reports it.
fn image_id(container: &str) -> String {
    let out = std::process::Command::new(crate::support::docker_cli())
        .args(["inspect", "-f", "{{.Image}}", container])
        .output()
        .expect("docker inspect");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

fn has(entries: &[Value], action: &str, actor: &str) -> bool {
    entries
        .iter()
        .any(|e| e["action"] == action && e["actor"] == actor)
}

#[tokio::test]
async fn promotion_deploys_the_digest_dev_runs_even_after_the_tag_was_pushed_again() {
    let s = setup(&[
        ("dev", json!({ "tag_pattern": "v*" })),
        (
            "prod",
            json!({ "promote_from": "dev", "tag_pattern": "release-*" }),
        ),
    ])
    .await;
    let (dev, prod) = (&s.stages[0], &s.stages[1]);
    assert_eq!(prod["promote_from"], "dev");
    let first = s
        .registry
        .push_keeping_local_tag(HEALTHY_IMAGE, &s.repository, "v1")
        .await;
    let deploy = s.next_deploy(dev, 0).await;
    let deploy = s
        .wait_status(deploy["id"].as_i64().unwrap(), "success")
        .await;
    assert_eq!(deploy["digest"], first.as_str());

    // Dev stops following pushes; then v1 is pushed again with other content.
    let (code, body) = s
        .api
        .put(
            &format!("/api/stages/{}", dev["id"]),
            json!({ "auto_deploy": false }),
        )
        .await;
    assert_eq!(code, 200, "{body}");
    let second = s.registry.push(SLOW_IMAGE, &s.repository, "v1").await;
    assert_ne!(first, second);

    let (code, promoted) = s
        .api
        .post(
            &format!("/api/stages/{}/promote", prod["id"]),
            json!({ "from_stage_id": dev["id"] }),
        )
        .await;
    assert_eq!(code, 202, "{promoted}");
    assert_eq!(promoted["trigger"], "promotion");
    assert_eq!(promoted["promoted_from_stage"], "dev");
    assert_eq!(promoted["promoted_from_deploy_id"], deploy["id"]);
    let id = promoted["id"].as_i64().unwrap();
    let done = s.wait_status(id, "success").await;
    assert_eq!(
        done["digest"],
        first.as_str(),
        "prod runs what dev ran, not what v1 is now"
    );
    let (_, log) = s.api.get(&format!("/api/deploys/{id}/logs")).await;
    assert!(
        log.to_string().contains(&format!("@{first}")),
        "pulled by digest: {log}"
    );
    // The very same image: both containers run one image id.
    let image_of = |stage: &Value| {
        let instances = s
            .app
            .store()
            .list_instances(stage["id"].as_i64().unwrap())
            .unwrap();
        let running = instances
            .iter()
            .find(|i| i.status == docker_watcher::store::InstanceStatus::Running)
            .unwrap_or_else(|| panic!("{instances:?}"));
        image_id(running.container_id.as_deref().unwrap())
    };
    assert_eq!(image_of(dev), image_of(prod));

    // A push of a release tag does not deploy on prod: it takes versions by promotion only.
    s.registry
        .push_keeping_local_tag(HEALTHY_IMAGE, &s.repository, "release-2")
        .await;
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let (_, events) = s.api.get("/api/webhook-events?limit=50").await;
        if events.to_string().contains("only by promotion from dev") {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "release-2 never recorded: {events}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let (_, page) = s
        .api
        .get(&format!("/api/deploys?stage_id={}", prod["id"]))
        .await;
    assert_eq!(page["deploys"].as_array().unwrap().len(), 1, "{page}");

    let audit = s.audit("action=deploy.").await;
    assert!(has(&audit, "deploy.promote", "admin"), "{audit:?}");
    assert!(has(&audit, "deploy.request", "webhook"), "{audit:?}");
    // The result is written just after the deploy's final status.
    let finish = s.audit_entry("deploy.finish", id).await;
    assert!(
        finish["detail"].as_str().unwrap().starts_with("success"),
        "{finish}"
    );
    assert_eq!(
        s.audit("action=stage.update").await[0]["after"]["auto_deploy"],
        false
    );
    let _ = &s.project;
}

#[tokio::test]
async fn two_approvals_by_a_user_and_a_token_let_a_deploy_run_and_a_rejection_stops_one() {
    let s = setup(&[("prod", json!({ "approvals_required": 2 }))]).await;
    let prod = &s.stages[0];
    let ci = s.token("ci", "deploy").await;
    let reader = s.token("viewer", "read").await;
    s.registry
        .push_keeping_local_tag(HEALTHY_IMAGE, &s.repository, "v1")
        .await;
    let waiting = s.next_deploy(prod, 0).await;
    let id = waiting["id"].as_i64().unwrap();
    let waiting = s.wait_status(id, "awaiting_approval").await;
    assert_eq!(waiting["approvals_required"], 2);
    let (_, list) = s.api.get("/api/deploys/waiting").await;
    assert!(
        list.as_array().unwrap().iter().any(|d| d["id"] == id),
        "{list}"
    );

    // A read token may not approve.
    assert_eq!(
        reader
            .post(&format!("/api/deploys/{id}/approve"), json!({}))
            .await
            .0,
        403
    );
    let (code, once) = s
        .api
        .post(&format!("/api/deploys/{id}/approve"), json!({}))
        .await;
    assert_eq!(code, 200, "{once}");
    assert_eq!(once["status"], "awaiting_approval");
    // The same user approving again still counts once.
    let (_, twice) = s
        .api
        .post(&format!("/api/deploys/{id}/approve"), json!({}))
        .await;
    assert_eq!(twice["status"], "awaiting_approval", "{twice}");
    assert_eq!(twice["approved_by"], json!(["user:admin"]));
    tokio::time::sleep(Duration::from_secs(1)).await;
    assert_eq!(
        s.api.get(&format!("/api/deploys/{id}")).await.1["status"],
        "awaiting_approval",
        "one approver is not two"
    );
    let (code, done) = ci
        .post(&format!("/api/deploys/{id}/approve"), json!({}))
        .await;
    assert_eq!(code, 200, "{done}");
    let deploy = s.wait_status(id, "success").await;
    assert!(deploy["instance_id"].is_i64());

    // The next push waits too, and a rejection ends it without a deploy.
    s.registry
        .push_keeping_local_tag(SLOW_IMAGE, &s.repository, "v2")
        .await;
    let next = s.next_deploy(prod, id).await;
    let first_v2 = next["id"].as_i64().unwrap();
    s.wait_status(first_v2, "awaiting_approval").await;
    let (_, approved) = s
        .api
        .post(&format!("/api/deploys/{first_v2}/approve"), json!({}))
        .await;
    assert_eq!(approved["approved_by"], json!(["user:admin"]));
    // v2 pushed again with other content: the approvals were for other bytes, so they
    // start over on a new deploy, and the old request is superseded.
    s.registry
        .push_keeping_local_tag(HEALTHY_IMAGE, &s.repository, "v2")
        .await;
    let next = s.next_deploy(prod, first_v2).await;
    let next_id = next["id"].as_i64().unwrap();
    let fresh = s.wait_status(next_id, "awaiting_approval").await;
    assert_eq!(fresh["approved_by"], json!([]), "{fresh}");
    assert_eq!(
        s.api.get(&format!("/api/deploys/{first_v2}")).await.1["status"],
        "superseded"
    );
    let (code, rejected) = ci
        .post(&format!("/api/deploys/{next_id}/reject"), json!({}))
        .await;
    assert_eq!(code, 200, "{rejected}");
    assert_eq!(rejected["status"], "rejected");
    assert!(rejected["started_at"].is_null() && rejected["instance_id"].is_null());
    let (code, late) = s
        .api
        .post(&format!("/api/deploys/{next_id}/approve"), json!({}))
        .await;
    assert_eq!(code, 409, "{late}");
    let instances = s
        .app
        .store()
        .list_instances(prod["id"].as_i64().unwrap())
        .unwrap();
    assert!(instances.iter().all(|i| i.tag != "v2"), "{instances:?}");

    let audit = s.audit(&format!("target_kind=deploy&target_id={id}")).await;
    assert!(has(&audit, "deploy.approve", "admin"), "{audit:?}");
    assert!(has(&audit, "deploy.approve", "ci"), "{audit:?}");
    assert!(
        audit
            .iter()
            .any(|e| e["action"] == "deploy.approve" && e["actor_kind"] == "token")
    );
    assert!(has(&audit, "deploy.start", "system"));
    assert!(has(
        &s.audit(&format!("target_id={next_id}")).await,
        "deploy.reject",
        "ci"
    ));
}

#[tokio::test]
async fn a_deploy_nobody_approves_in_time_expires_and_is_recorded() {
    let s = setup(&[(
        "prod",
        json!({ "approvals_required": 1, "approval_timeout": 1 }),
    )])
    .await;
    let prod = &s.stages[0];
    s.registry
        .push_keeping_local_tag(HEALTHY_IMAGE, &s.repository, "v1")
        .await;
    let id = s.next_deploy(prod, 0).await["id"].as_i64().unwrap();
    let expired = s.wait_status(id, "expired").await;
    assert!(expired["finished"] == true && expired["instance_id"].is_null());
    assert_eq!(
        s.api
            .post(&format!("/api/deploys/{id}/approve"), json!({}))
            .await
            .0,
        409
    );
    let audit = s.audit(&format!("target_id={id}")).await;
    assert!(has(&audit, "deploy.expire", "system"), "{audit:?}");
}

#[tokio::test]
async fn a_push_outside_the_deploy_window_waits_and_deploys_when_it_opens() {
    let s = setup(&[("prod", json!({}))]).await;
    let prod = &s.stages[0];
    // A window that opens 8 s from now (to the second), set once the daemon is up.
    let now = chrono::Utc::now();
    let opens = now + chrono::Duration::seconds(8);
    let window = docker_watcher::release::window::range_from(now, 8, 600);
    let (code, body) = s
        .api
        .put(
            &format!("/api/stages/{}", prod["id"]),
            json!({ "deploy_windows": [window], "window_timezone": "UTC" }),
        )
        .await;
    assert_eq!(code, 200, "{body}");
    s.registry
        .push_keeping_local_tag(HEALTHY_IMAGE, &s.repository, "v1")
        .await;
    let id = s.next_deploy(prod, 0).await["id"].as_i64().unwrap();
    let scheduled = s.wait_status(id, "scheduled").await;
    assert!(scheduled["started_at"].is_null());
    let done = s.wait_status(id, "success").await;
    let started: chrono::DateTime<chrono::Utc> =
        done["started_at"].as_str().unwrap().parse().unwrap();
    // Whole seconds: the window is written to the second.
    assert!(
        started >= opens - chrono::Duration::seconds(1),
        "started {started}, window opened {opens}"
    );
    let audit = s.audit(&format!("target_id={id}")).await;
    assert!(has(&audit, "deploy.schedule", "system"), "{audit:?}");
    assert!(has(&audit, "deploy.window_opened", "system"), "{audit:?}");

    // With the window closed again, a manual deploy waits unless it says to go outside.
    let later = docker_watcher::release::window::range_from(chrono::Utc::now(), 3600, 60);
    let (code, body) = s
        .api
        .put(
            &format!("/api/stages/{}", prod["id"]),
            json!({ "deploy_windows": [later] }),
        )
        .await;
    assert_eq!(code, 200, "{body}");
    let path = format!("/api/stages/{}/deploys", prod["id"]);
    let (_, waits) = s.api.post(&path, json!({ "tag": "v1" })).await;
    assert_eq!(waits["status"], "scheduled", "{waits}");
    let (code, now) = s
        .api
        .post(&path, json!({ "tag": "v1", "outside_window": true }))
        .await;
    assert_eq!(code, 202, "{now}");
    assert_eq!(now["outside_window"], true);
    s.wait_status(now["id"].as_i64().unwrap(), "success").await;
    let (_, superseded) = s.api.get(&format!("/api/deploys/{}", waits["id"])).await;
    assert_eq!(
        superseded["status"], "superseded",
        "the newer request replaced it"
    );

    // A bad window is a 422 naming it, and nothing changes.
    let (code, body) = s
        .api
        .put(
            &format!("/api/stages/{}", prod["id"]),
            json!({ "deploy_windows": ["0 2-6 * * *"] }),
        )
        .await;
    assert_eq!(code, 422, "{body}");
    assert!(body.to_string().contains("deploy_windows[0]"), "{body}");
}

#[tokio::test]
async fn forward_ignores_a_lower_version_and_the_change_is_audited() {
    let s = setup(&[("prod", json!({}))]).await;
    let prod = &s.stages[0];
    let (code, changed) = s
        .api
        .put(
            &format!("/api/stages/{}", prod["id"]),
            json!({ "policy": "forward" }),
        )
        .await;
    assert_eq!(code, 200, "{changed}");
    s.registry
        .push_keeping_local_tag(HEALTHY_IMAGE, &s.repository, "1.3.0")
        .await;
    let first = s.next_deploy(prod, 0).await;
    s.wait_status(first["id"].as_i64().unwrap(), "success")
        .await;
    s.registry
        .push_keeping_local_tag(SLOW_IMAGE, &s.repository, "1.2.9")
        .await;
    let deadline = Instant::now() + Duration::from_secs(20);
    let reason = loop {
        let (_, events) = s.api.get("/api/webhook-events?limit=50").await;
        let found = events
            .as_array()
            .or(events["events"].as_array())
            .into_iter()
            .flatten()
            .find(|e| e["tag"] == "1.2.9")
            .cloned();
        if let Some(e) = found {
            break e;
        }
        assert!(
            Instant::now() < deadline,
            "1.2.9 was never recorded: {events}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    assert_eq!(reason["outcome"], "ignored", "{reason}");
    assert!(
        reason["detail"]
            .as_str()
            .unwrap()
            .contains("1.2.9 is lower than 1.3.0"),
        "{reason}"
    );
    let (_, page) = s
        .api
        .get(&format!("/api/deploys?stage_id={}", prod["id"]))
        .await;
    assert_eq!(
        page["deploys"].as_array().unwrap().len(),
        1,
        "no deploy of 1.2.9: {page}"
    );

    let audit = s
        .audit(&format!("target_kind=stage&target_id={}", prod["id"]))
        .await;
    let update = audit
        .iter()
        .find(|e| e["action"] == "stage.update")
        .unwrap_or_else(|| {
            panic!(
                "{audit:?} {:?}",
                futures_util::FutureExt::now_or_never(s.audit("limit=50"))
            )
        });
    assert_eq!(update["actor"], "admin");
    assert_eq!(update["before"]["policy"], "any");
    assert_eq!(update["after"]["policy"], "forward");
    assert!(has(
        &s.audit("action=stage.create").await,
        "stage.create",
        "admin"
    ));
}

#[tokio::test]
async fn the_cli_promotes_with_follow_through_an_approval_given_with_approve() {
    let s = setup(&[
        ("dev", json!({ "tag_pattern": "v*" })),
        (
            "prod",
            json!({ "promote_from": "dev", "approvals_required": 1 }),
        ),
    ])
    .await;
    s.registry
        .push_keeping_local_tag(HEALTHY_IMAGE, &s.repository, "v1")
        .await;
    let dev = s.next_deploy(&s.stages[0], 0).await;
    s.wait_status(dev["id"].as_i64().unwrap(), "success").await;
    let cli = Cli::with_new_token(&s.app, &s.api, "release-cli", Some("deploy")).await;
    let project = s.project["name"].as_str().unwrap().to_string();
    let promote = cli
        .command(&["promote", &project, "dev", "prod", "--follow"])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let waiting = s.next_deploy(&s.stages[1], 0).await;
    let id = waiting["id"].as_i64().unwrap();
    s.wait_status(id, "awaiting_approval").await;
    let approved = cli.output(&["approve", &id.to_string()]).await;
    let said = String::from_utf8_lossy(&approved.stdout);
    assert!(
        approved.status.success(),
        "{said} {}",
        String::from_utf8_lossy(&approved.stderr)
    );
    assert!(said.contains(&format!("deploy {id} (v1)")), "{said}");
    let output = promote.wait_with_output().await.unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        output.status.success(),
        "stdout:\n{stdout}\nstderr:\n{stderr}"
    );
    assert!(stderr.contains("from dev"), "{stderr}");
    assert!(stdout.contains("approved by token:release-cli"), "{stdout}");
    assert!(has(
        &s.audit(&format!("target_id={id}")).await,
        "deploy.approve",
        "release-cli"
    ));
}
