//! What a deployed container may get (issue 12 §1), over HTTP against the real daemon:
//! host bind mounts and host networking refused with 422 naming the field unless an
//! admin allowed them, some paths refused always, and a project stored before the rules
//! (or after the settings were tightened) failing its deploy at `plan`.

use serde_json::{Value, json};

use docker_watcher::store::{NewProject, ProjectHealth};

use crate::support::app::{TestApp, spawn_app};

fn project(name: &str, volumes: &[&str], network: Option<&str>) -> Value {
    json!({ "name": name, "image": format!("example.com/{name}"), "container_port": 80,
        "volumes": volumes, "network": network })
}

#[tokio::test]
async fn host_paths_and_host_network_are_refused_naming_the_field() {
    let app = spawn_app().await;
    let api = app.api().await;
    let data_dir = app.data_dir.path().join("data");
    for (volume, says) in [
        ("/:/host", "refused always"),
        ("/var/run/docker.sock:/var/run/docker.sock", "Docker socket"),
        ("/run/docker.sock:/s", "Docker socket"),
        ("/etc:/x:ro", "refused always"),
        ("/proc/1/root:/x", "refused always"),
        ("/srv/app:/data", "allowed_bind_paths"),
        ("/srv/../etc:/data", ".."),
    ] {
        let (status, body) = api
            .post(
                "/api/projects",
                project("shop", &["data:/ok", volume], None),
            )
            .await;
        assert_eq!(status, 422, "{volume}: {body}");
        let reason = body["fields"]["volumes[1].source"]
            .as_str()
            .unwrap_or_default();
        assert!(reason.contains(says), "{volume}: {body}");
        assert!(
            body["fields"]["volumes[0].source"].is_null(),
            "named volumes are fine"
        );
    }
    let data = format!("{}:/x", data_dir.display());
    let (status, body) = api
        .post("/api/projects", project("shop", &[&data], None))
        .await;
    assert_eq!(status, 422, "{body}");
    assert!(
        body["fields"]["volumes[0].source"]
            .as_str()
            .unwrap()
            .contains("data folder")
    );
    for network in ["host", "container:abc"] {
        let (status, body) = api
            .post("/api/projects", project("shop", &[], Some(network)))
            .await;
        assert_eq!(status, 422, "{network}: {body}");
        assert!(
            body["fields"]["network"]
                .as_str()
                .unwrap()
                .contains("allow_host_network"),
            "{body}"
        );
    }
    let (_, list) = api.get("/api/projects").await;
    assert_eq!(list, json!([]), "nothing was made");

    // An update is checked the same way.
    let created = api
        .create(
            "/api/projects",
            project("shop", &["data:/var/lib/shop"], Some("backend")),
        )
        .await;
    let id = created["id"].as_i64().unwrap();
    let (status, body) = api
        .put(
            &format!("/api/projects/{id}"),
            json!({ "volumes": ["/:/host"] }),
        )
        .await;
    assert_eq!(status, 422, "{body}");
    assert!(body["fields"]["volumes[0].source"].is_string());
    let (status, body) = api
        .put(&format!("/api/projects/{id}"), json!({ "network": "host" }))
        .await;
    assert_eq!(status, 422, "{body}");
    let (_, stored) = api.get(&format!("/api/projects/{id}")).await;
    assert_eq!(stored["volumes"], json!(["data:/var/lib/shop"]));
    assert_eq!(stored["network"], "backend");
    app.shutdown().await;
}

#[tokio::test]
async fn an_admin_can_allow_host_folders_and_host_network_but_not_dangerous_ones() {
    let app = spawn_app().await;
    let api = app.api().await;
    let allowed = tempfile::tempdir().unwrap();
    let allowed_path = allowed.path().display().to_string();
    let (_, settings) = api.get("/api/settings").await;
    assert_eq!(
        settings["allowed_bind_paths"],
        json!([]),
        "empty by default"
    );
    assert_eq!(settings["allow_host_network"], false);

    for bad in ["/", "/var", "/etc/app", "relative", "/srv/../etc"] {
        let (status, body) = api
            .put(
                "/api/settings",
                json!({ "allowed_bind_paths": ["/srv", bad] }),
            )
            .await;
        assert_eq!(status, 422, "{bad}: {body}");
        assert!(
            body["fields"]["allowed_bind_paths[1]"].is_string(),
            "{body}"
        );
    }
    let (status, settings) = api
        .put(
            "/api/settings",
            json!({ "allowed_bind_paths": [allowed_path], "allow_host_network": true }),
        )
        .await;
    assert_eq!(status, 200, "{settings}");
    assert_eq!(settings["allowed_bind_paths"], json!([allowed_path]));

    let inside = format!("{allowed_path}/app:/data");
    let created = api
        .create("/api/projects", project("shop", &[&inside], Some("host")))
        .await;
    assert_eq!(created["network"], "host");
    // No prefix tricks: a sibling whose name starts the same is not under it.
    let sibling = format!("{allowed_path}2/app:/data");
    let (status, body) = api
        .post("/api/projects", project("other", &[&sibling], None))
        .await;
    assert_eq!(status, 422, "{body}");
    // A symlink inside the allowed folder that leads to /etc is followed.
    std::os::unix::fs::symlink("/etc", allowed.path().join("etc-link")).unwrap();
    let link = format!("{allowed_path}/etc-link:/data");
    let (status, body) = api
        .post("/api/projects", project("other", &[&link], None))
        .await;
    assert_eq!(status, 422, "{body}");
    assert!(
        body["fields"]["volumes[0].source"]
            .as_str()
            .unwrap()
            .contains("/etc")
    );
    app.shutdown().await;
}

/// Makes a project straight in the store (as one stored before the rules would be) with
/// a stage; returns the stage id.
fn stored_project(app: &TestApp, name: &str, volumes: Vec<String>, network: Option<&str>) -> i64 {
    let project = app
        .store()
        .create_project(&NewProject {
            name: name.into(),
            image: format!("example.com/{name}"),
            registry_id: None,
            container_port: 80,
            health_path: None,
            health: ProjectHealth::default(),
            env: Vec::new(),
            volumes,
            network: network.map(Into::into),
            memory_bytes: None,
            nano_cpus: None,
            auto_created: false,
        })
        .unwrap();
    app.store()
        .create_stage(&docker_watcher::store::NewStage::defaults(
            project.id, "prod",
        ))
        .unwrap()
        .id
}

async fn deploy_fails_at_plan(app: &TestApp, token: &str, stage_id: i64, says: &str) -> i64 {
    let ci = app.api_with_token(token);
    let (status, deploy) = ci
        .post(
            &format!("/api/stages/{stage_id}/deploys"),
            json!({ "tag": "1.0.0" }),
        )
        .await;
    assert_eq!(status, 202, "a deploy token deploys: {deploy}");
    let id = deploy["id"].as_i64().unwrap();
    let done = app.wait_final(id).await;
    assert_eq!(done.status.as_str(), "failed", "{done:?}");
    assert_eq!(done.failed_step.as_deref(), Some("plan"), "{done:?}");
    let error = done.error.unwrap_or_default();
    assert!(error.contains(says), "{error}");
    id
}

#[tokio::test]
async fn a_project_stored_before_the_rules_does_not_deploy() {
    let app = spawn_app().await;
    let admin = app.api().await;
    let ci = admin
        .create(
            "/api/auth/tokens",
            json!({ "name": "ci", "scope": "deploy" }),
        )
        .await;
    let token = ci["token"].as_str().unwrap();
    let root = stored_project(&app, "rooted", vec!["/:/host".into()], None);
    let id = deploy_fails_at_plan(&app, token, root, "volumes[0].source").await;
    let host = stored_project(&app, "hosted", Vec::new(), Some("host"));
    deploy_fails_at_plan(&app, token, host, "allow_host_network").await;
    // Redeploying is checked again; nothing was created on the way.
    let (status, again) = app
        .api_with_token(token)
        .post(&format!("/api/deploys/{id}/redeploy"), json!({}))
        .await;
    assert_eq!(status, 202, "{again}");
    let done = app.wait_final(again["id"].as_i64().unwrap()).await;
    assert_eq!(done.failed_step.as_deref(), Some("plan"));
    assert_eq!(app.store().list_instances(root).unwrap(), Vec::new());

    // Settings tightened after a project was accepted: its next deploy fails too.
    let allowed = tempfile::tempdir().unwrap();
    let path = allowed.path().display().to_string();
    let (status, _) = admin
        .put("/api/settings", json!({ "allowed_bind_paths": [path] }))
        .await;
    assert_eq!(status, 200);
    let created = admin
        .create(
            "/api/projects",
            project("files", &[&format!("{path}/x:/x")], None),
        )
        .await;
    let stage = admin
        .create(
            &format!("/api/projects/{}/stages", created["id"]),
            json!({ "name": "prod" }),
        )
        .await;
    let (status, _) = admin
        .put("/api/settings", json!({ "allowed_bind_paths": [] }))
        .await;
    assert_eq!(status, 200);
    deploy_fails_at_plan(
        &app,
        token,
        stage["id"].as_i64().unwrap(),
        "allowed_bind_paths",
    )
    .await;
    app.shutdown().await;
}
