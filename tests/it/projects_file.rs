//! Projects as code against the real daemon: a file applied over `POST /api/apply`
//! (dry run, apply, apply again, change, prune, removed stage), exported and applied back,
//! refused whole with file, line and field when wrong, read-only in the API once applied,
//! applied while a real deploy runs, through the CLI (`apply`, `diff`, `export`), and kept
//! applied by managed mode (`serve --projects`: at start, on change, on SIGHUP).

use std::collections::BTreeMap;
use std::process::Command;
use std::time::{Duration, Instant};

use serde_json::{Value, json};

use crate::support::app::{Api, AppOptions, TestApp, spawn_app, spawn_app_with};
use crate::support::registry::TestRegistry;
use crate::support::{SLOW_IMAGE, require_docker, unique_name};

/// A file with every kind of resource; `{port}`, `{pattern}` and `{stages}` vary.
fn file(project: &str, port: u16, pattern: &str, with_prod: bool) -> String {
    let prod = if with_prod {
        "\n[[projects.stages]]\nname = \"prod\"\ntag_pattern = \"v*\"\nversion_range = \">=1.0\"\nauto_deploy = false\n"
    } else {
        ""
    };
    format!(
        r#"# what the team runs
[[registries]]
name = "{project}-reg"
kind = "oci"
base_url = "http://127.0.0.1:5999"
insecure = true
username = "deploy"
secret = {{ env = "REG_TOKEN" }}

[[notifications]]
name = "{project}-team"
kind = "webhook"
url = {{ env = "HOOK_URL" }}
on_success = false

[[projects]]
name = "{project}"
image = "127.0.0.1:5999/acme/{project}"
registry = "{project}-reg"
container_port = {port}
health_path = "/health"
env = [
  {{ name = "LOG_LEVEL", value = "info" }},
  {{ name = "DATABASE_URL", value = {{ env = "DB_URL" }}, secret = true }},
]

[[projects.stages]]
name = "dev"
tag_pattern = "{pattern}"
polling = false
{prod}"#
    )
}

fn secrets() -> Value {
    json!({ "env:REG_TOKEN": "reg-secret-1", "env:HOOK_URL": "http://127.0.0.1:9/hook",
            "env:DB_URL": "postgres://db/shop" })
}

async fn apply(api: &Api, content: &str, extra: Value) -> (u16, Value) {
    let mut body = json!({
        "files": [{ "name": "projects.toml", "content": content }],
        "secrets": secrets(),
    });
    for (k, v) in extra.as_object().unwrap() {
        body[k] = v.clone();
    }
    api.post("/api/apply", body).await
}

/// The plan as `action kind name` words, in order.
fn steps(answer: &Value) -> Vec<String> {
    answer["changes"]
        .as_array()
        .unwrap_or_else(|| panic!("no changes in {answer}"))
        .iter()
        .map(|c| {
            let name = match c["project"].as_str() {
                Some(p) => format!("{p}/{}", c["name"].as_str().unwrap()),
                None => c["name"].as_str().unwrap().to_string(),
            };
            format!(
                "{} {} {name}",
                c["action"].as_str().unwrap(),
                c["kind"].as_str().unwrap()
            )
        })
        .collect()
}

async fn project_named(api: &Api, name: &str) -> Option<Value> {
    let (_, projects) = api.get("/api/projects").await;
    projects
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["name"] == name)
        .cloned()
}

async fn stage_names(api: &Api, project_id: &Value) -> Vec<String> {
    let (_, stages) = api.get(&format!("/api/projects/{project_id}/stages")).await;
    stages
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["name"].as_str().unwrap().to_string())
        .collect()
}

#[tokio::test]
async fn apply_reapply_change_prune_and_export() {
    let app = spawn_app().await;
    let api = app.api().await;
    let name = unique_name("shop");
    let v1 = file(&name, 8080, "dev-*", true);

    // A dry run plans everything and creates nothing.
    let (status, plan) = apply(&api, &v1, json!({ "dry_run": true })).await;
    assert_eq!(status, 200, "{plan}");
    assert_eq!(
        steps(&plan),
        vec![
            format!("create registry {name}-reg"),
            format!("create notification {name}-team"),
            format!("create project {name}"),
            format!("create stage {name}/dev"),
            format!("create stage {name}/prod"),
        ]
    );
    assert_eq!(plan["applied"], false);
    assert!(
        project_named(&api, &name).await.is_none(),
        "a dry run changed something"
    );

    // Applied: everything exists as the file says, secrets from the references.
    let (status, done) = apply(&api, &v1, json!({})).await;
    assert_eq!(status, 200, "{done}");
    assert_eq!(done["applied"], true);
    let project = project_named(&api, &name).await.expect("project made");
    assert_eq!(project["container_port"], 8080);
    assert_eq!(project["image"], format!("127.0.0.1:5999/acme/{name}"));
    assert_eq!(stage_names(&api, &project["id"]).await, vec!["dev", "prod"]);
    let env = app
        .store()
        .project_env(project["id"].as_i64().unwrap())
        .unwrap();
    assert!(
        env.contains(&("DATABASE_URL".into(), "postgres://db/shop".into())),
        "{env:?}"
    );
    let (_, registries) = api.get("/api/registries").await;
    let registry = registries
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["name"] == format!("{name}-reg"))
        .unwrap()
        .clone();
    assert_eq!(project["registry_id"], registry["id"]);
    assert_eq!(
        app.store()
            .registry_secret(registry["id"].as_i64().unwrap())
            .unwrap()
            .as_deref(),
        Some("reg-secret-1")
    );
    let (_, targets) = api.get("/api/notifications").await;
    let target = targets
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["name"] == format!("{name}-team"))
        .unwrap()
        .clone();
    assert_eq!(target["on_success"], false);
    assert!(
        !api.seen()
            .iter()
            .any(|s| s.contains("reg-secret-1") || s.contains("postgres://db/shop")),
        "a secret came back in an answer"
    );

    // The same file again changes nothing.
    let (status, again) = apply(&api, &v1, json!({})).await;
    assert_eq!(status, 200, "{again}");
    assert_eq!(steps(&again), Vec::<String>::new());
    assert_eq!(again["applied"], false);
    let updated_before = project_named(&api, &name).await.unwrap()["updated_at"].clone();

    // A change: the port, the dev pattern, and a new registry secret; prod removed from
    // the file goes (it came from this file), a project made by hand stays.
    let by_hand = api
        .create(
            "/api/projects",
            json!({ "name": unique_name("byhand"), "image": "nginx", "container_port": 80 }),
        )
        .await;
    let v2 = file(&name, 9090, "feature-*", false);
    let mut changed_secrets = secrets();
    changed_secrets["env:REG_TOKEN"] = json!("reg-secret-2");
    let (status, changed) = apply(&api, &v2, json!({ "secrets": changed_secrets })).await;
    assert_eq!(status, 200, "{changed}");
    assert_eq!(
        steps(&changed),
        vec![
            format!("change registry {name}-reg"),
            format!("change project {name}"),
            format!("change stage {name}/dev"),
            format!("delete stage {name}/prod"),
        ]
    );
    let fields: Vec<&Value> = changed["changes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| &c["fields"])
        .collect();
    assert_eq!(fields[0], &json!(["secret"]));
    assert_eq!(fields[1], &json!(["container_port"]));
    assert_eq!(fields[2], &json!(["tag_pattern"]));
    let project = project_named(&api, &name).await.unwrap();
    assert_eq!(project["container_port"], 9090);
    assert_ne!(project["updated_at"], updated_before);
    assert_eq!(stage_names(&api, &project["id"]).await, vec!["dev"]);
    assert_eq!(
        app.store()
            .registry_secret(registry["id"].as_i64().unwrap())
            .unwrap()
            .as_deref(),
        Some("reg-secret-2")
    );
    assert!(
        project_named(&api, by_hand["name"].as_str().unwrap())
            .await
            .is_some(),
        "left alone without --prune"
    );

    // Prune deletes what the file does not name.
    let (status, pruned) = apply(
        &api,
        &v2,
        json!({ "secrets": changed_secrets, "prune": true, "dry_run": true }),
    )
    .await;
    assert_eq!(status, 200, "{pruned}");
    assert_eq!(
        steps(&pruned),
        vec![format!(
            "delete project {}",
            by_hand["name"].as_str().unwrap()
        )]
    );
    let (status, _) = apply(
        &api,
        &v2,
        json!({ "secrets": changed_secrets, "prune": true }),
    )
    .await;
    assert_eq!(status, 200);
    assert!(
        project_named(&api, by_hand["name"].as_str().unwrap())
            .await
            .is_none(),
        "pruned"
    );

    // Export: the same resources, secrets as references; applied back, nothing changes.
    let (status, export) = api.get("/api/export").await;
    assert_eq!(status, 200, "{export}");
    let content = export["content"].as_str().unwrap();
    assert!(content.contains(&format!("name = \"{name}\"")), "{content}");
    assert!(content.contains("container_port = 9090"), "{content}");
    assert!(
        content.contains(&format!("registry = \"{name}-reg\"")),
        "{content}"
    );
    assert!(
        !content.contains("reg-secret-2") && !content.contains("postgres://db/shop"),
        "{content}"
    );
    let references: Vec<String> = serde_json::from_value(export["references"].clone()).unwrap();
    let variable = |suffix: &str| {
        references
            .iter()
            .find(|r| r.ends_with(suffix))
            .unwrap_or_else(|| panic!("{suffix} in {references:?}"))
            .clone()
    };
    let mut values = BTreeMap::new();
    values.insert(
        format!("env:{}", variable("_DATABASE_URL")),
        "postgres://db/shop",
    );
    values.insert(format!("env:{}", variable("REG_SECRET")), "reg-secret-2");
    values.insert(
        format!("env:{}", variable("TEAM_URL")),
        "http://127.0.0.1:9/hook",
    );
    let (status, back) = api
        .post(
            "/api/apply",
            json!({ "files": [{ "name": "export.toml", "content": content }],
                                    "secrets": values, "dry_run": true }),
        )
        .await;
    assert_eq!(status, 200, "{back}\n{content}");
    assert_eq!(steps(&back), Vec::<String>::new(), "{content}");
}

#[tokio::test]
async fn an_invalid_file_changes_nothing_and_says_where() {
    let app = spawn_app().await;
    let api = app.api().await;
    let name = unique_name("shop");
    let good = unique_name("good");
    // Line numbers matter: the errors must name them.
    let content = format!(
        r#"[[projects]]
name = "{good}"
image = "nginx"
container_port = 80

[[projects]]
name = "{name}"
image = "nginx"
container_port = 0
health_path = "health"
env = [{{ name = "TOKEN", value = {{ env = "NOT_SENT" }}, secret = true }}]

[[projects.stages]]
name = "dev"
tag_pattern = "v[1"
"#
    );
    let (status, body) = api
        .post(
            "/api/apply",
            json!({ "files": [{ "name": "deploy/projects.toml", "content": content }] }),
        )
        .await;
    assert_eq!(status, 422, "{body}");
    let fields = body["fields"].as_object().unwrap();
    let keys: Vec<&String> = fields.keys().collect();
    for wanted in [
        format!("deploy/projects.toml:11: projects[{name}].env[0].value"),
        format!("deploy/projects.toml:9: projects[{name}].container_port"),
        format!("deploy/projects.toml:10: projects[{name}].health_path"),
        format!("deploy/projects.toml:15: projects[{name}].stages[dev].tag_pattern"),
    ] {
        assert!(fields.contains_key(&wanted), "{wanted} missing in {keys:?}");
    }
    assert!(
        fields[&format!("deploy/projects.toml:11: projects[{name}].env[0].value")]
            .as_str()
            .unwrap()
            .contains("NOT_SENT")
    );
    assert!(
        project_named(&api, &good).await.is_none(),
        "the valid project was made from a wrong file"
    );

    // An unknown field and a TOML error are named the same way.
    let named_at = |file: &'static str, content: String, line: u32| {
        let api = api.clone();
        async move {
            let (status, body) = api
                .post(
                    "/api/apply",
                    json!({ "files": [{ "name": file, "content": content }] }),
                )
                .await;
            assert_eq!(status, 422, "{body}");
            let prefix = format!("{file}:{line}:");
            assert!(
                body["fields"]
                    .as_object()
                    .unwrap()
                    .keys()
                    .any(|k| k.starts_with(&prefix)),
                "{prefix} in {body}"
            );
        }
    };
    named_at(
        "a.toml",
        format!("[[projects]]\nname = \"{good}\"\nimage = \"nginx\"\ncontainer_port = 80\nimagee = \"x\"\n"),
        5,
    )
    .await;
    named_at("b.toml", "[[projects]]\nname = \"x\"\nimage = \n".into(), 3).await;
    let (_, projects) = api.get("/api/projects").await;
    assert_eq!(projects, json!([]));
}

#[tokio::test]
async fn managed_resources_are_read_only_in_the_api() {
    let app = spawn_app().await;
    let api = app.api().await;
    let name = unique_name("shop");
    let (status, body) = apply(
        &api,
        &file(&name, 8080, "*", false),
        json!({ "origin": "deploy/projects.toml" }),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    let project = project_named(&api, &name).await.unwrap();
    let id = &project["id"];
    let (_, stages) = api.get(&format!("/api/projects/{id}/stages")).await;
    let stage_id = &stages[0]["id"];

    for (method, path, body) in [
        (
            "PUT",
            format!("/api/projects/{id}"),
            Some(json!({ "container_port": 1 })),
        ),
        ("DELETE", format!("/api/projects/{id}"), None),
        (
            "POST",
            format!("/api/projects/{id}/stages"),
            Some(json!({ "name": "extra" })),
        ),
        (
            "PUT",
            format!("/api/stages/{stage_id}"),
            Some(json!({ "tag_pattern": "x" })),
        ),
        ("DELETE", format!("/api/stages/{stage_id}"), None),
    ] {
        let (status, answer) = api.call(method, &path, body).await;
        assert_eq!(status, 409, "{method} {path}: {answer}");
        let message = answer["error"].as_str().unwrap();
        assert!(
            message.contains("deploy/projects.toml") && message.contains("change it there"),
            "{message}"
        );
    }
    let after = project_named(&api, &name).await.unwrap();
    assert_eq!(after["container_port"], 8080);

    // What is not from a file stays editable; the markers say where each resource is written.
    let other = api
        .create(
            "/api/projects",
            json!({ "name": unique_name("free"), "image": "nginx", "container_port": 80 }),
        )
        .await;
    let (status, _) = api
        .put(
            &format!("/api/projects/{}", other["id"]),
            json!({ "container_port": 81 }),
        )
        .await;
    assert_eq!(status, 200);
    let (status, managed) = api.get("/api/managed").await;
    assert_eq!(status, 200);
    let marker = managed
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m["kind"] == "project" && m["id"] == *id)
        .expect("project marker")
        .clone();
    assert_eq!(marker["origin"], "deploy/projects.toml");
    assert_eq!(marker["file"], "projects.toml");
    assert_eq!(marker["line"], 16, "the [[projects]] header: {marker}");
    assert!(
        !managed
            .as_array()
            .unwrap()
            .iter()
            .any(|m| m["kind"] == "project" && m["id"] == other["id"])
    );
}

/// A real deploy runs while the file changes its project, and is not interrupted; then
/// the file drops the stage and its instance is retired like a deleted stage's.
#[tokio::test]
async fn apply_while_a_deploy_runs_then_a_removed_stage_is_retired() {
    require_docker();
    let app = spawn_app().await;
    let api = app.api().await;
    let registry = TestRegistry::start().await;
    let repository = unique_name("acme/slow");
    registry.push(SLOW_IMAGE, &repository, "v1").await;
    let name = unique_name("slow");
    let content = |log_level: &str, with_stage: bool| {
        let stage = if with_stage {
            "[[projects.stages]]\nname = \"dev\"\n"
        } else {
            ""
        };
        format!(
            "[[projects]]\nname = \"{name}\"\nimage = \"{}/{repository}\"\ncontainer_port = 8080\nhealth_path = \"/health\"\nhealth_start_period_ms = 60000\nenv = [{{ name = \"LOG_LEVEL\", value = \"{log_level}\" }}, {{ name = \"SLOW_SECONDS\", value = \"8\" }}]\n\n{stage}",
            registry.host()
        )
    };
    let post = |text: String| {
        let api = api.clone();
        async move {
            api.post(
                "/api/apply",
                json!({ "files": [{ "name": "p.toml", "content": text }] }),
            )
            .await
        }
    };
    let (status, body) = post(content("info", true)).await;
    assert_eq!(status, 200, "{body}");
    let project = project_named(&api, &name).await.unwrap();
    let (_, stages) = api
        .get(&format!("/api/projects/{}/stages", project["id"]))
        .await;
    let stage_id = stages[0]["id"].clone();

    let (status, deploy) = api
        .post(
            &format!("/api/stages/{stage_id}/deploys"),
            json!({ "tag": "v1" }),
        )
        .await;
    assert_eq!(status, 202, "{deploy}");
    let deploy_id = deploy["id"].as_i64().unwrap();
    wait_until("the deploy to wait for health", || {
        let status = app.store().get_deploy(deploy_id).unwrap().status;
        status.as_str() == "health_checking"
    })
    .await;
    let (status, body) = post(content("debug", true)).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(steps(&body), vec![format!("change project {name}")]);
    assert!(
        !app.store().get_deploy(deploy_id).unwrap().status.is_final(),
        "the apply waited for the deploy instead of running beside it"
    );
    let finished = app.wait_final(deploy_id).await;
    assert_eq!(finished.status.as_str(), "success", "{:?}", finished.error);
    let instances = app
        .store()
        .list_instances(stage_id.as_i64().unwrap())
        .unwrap();
    let container = instances[0].container_id.clone().expect("container");

    let (status, body) = post(content("debug", false)).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(steps(&body), vec![format!("delete stage {name}/dev")]);
    assert_eq!(
        stage_names(&api, &project["id"]).await,
        Vec::<String>::new()
    );
    let inspect = Command::new(crate::support::docker_cli())
        .args(["inspect", container.as_str()])
        .output()
        .unwrap();
    assert!(
        !inspect.status.success(),
        "the removed stage's container is still there"
    );
}

// Multi-threaded: the CLI runs as a blocking child process while the daemon serves it.
#[tokio::test(flavor = "multi_thread")]
async fn cli_apply_diff_and_export() {
    let app = spawn_app().await;
    let api = app.api().await;
    let (_, token) = api
        .post(
            "/api/auth/tokens",
            json!({ "name": "ci", "scope": "admin" }),
        )
        .await;
    let token = token["token"].as_str().unwrap().to_string();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("projects.toml");
    let name = unique_name("cli");
    std::fs::write(&path, file(&name, 8080, "*", false)).unwrap();
    let cli = |args: &[&str], reg_token: Option<&str>| {
        let mut command = Command::new(env!("CARGO_BIN_EXE_docker-watcher"));
        command
            .args(args)
            .env("DW_SERVER", &app.address)
            .env("DW_TOKEN", &token)
            .env("HOOK_URL", "http://127.0.0.1:9/hook")
            .env("DB_URL", "postgres://db")
            .env_remove("REG_TOKEN");
        if let Some(value) = reg_token {
            command.env("REG_TOKEN", value);
        }
        command.output().unwrap()
    };
    let path_arg = path.to_str().unwrap();

    // A reference with nothing behind it: exit 1, the line named, nothing changed.
    let out = cli(&["diff", path_arg], None);
    assert_eq!(out.status.code(), Some(1), "{out:?}");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains(&format!("{path_arg}:8: registries[{name}-reg].secret"))
            && stderr.contains("REG_TOKEN"),
        "{stderr}"
    );

    let out = cli(&["diff", path_arg], Some("t1"));
    assert_eq!(out.status.code(), Some(2), "{out:?}");
    assert!(String::from_utf8_lossy(&out.stdout).contains(&format!("+ create project {name}")));
    assert!(project_named(&api, &name).await.is_none());

    // Without --yes and no terminal to ask on, nothing is applied.
    let out = cli(&["apply", path_arg], Some("t1"));
    assert_eq!(out.status.code(), Some(1), "{out:?}");
    assert!(project_named(&api, &name).await.is_none());
    let out = cli(&["apply", "--yes", path_arg], Some("t1"));
    assert_eq!(out.status.code(), Some(0), "{out:?}");
    assert!(project_named(&api, &name).await.is_some());
    let out = cli(&["diff", path_arg], Some("t1"));
    assert_eq!(out.status.code(), Some(0), "{out:?}");
    assert!(String::from_utf8_lossy(&out.stdout).contains("no changes"));
    let out = cli(&["diff", path_arg], Some("t2"));
    assert_eq!(out.status.code(), Some(2), "{out:?}");
    assert!(
        String::from_utf8_lossy(&out.stdout)
            .contains(&format!("~ change registry {name}-reg (secret)")),
        "{out:?}"
    );

    let exported = dir.path().join("export.toml");
    let out = cli(&["export", "--output", exported.to_str().unwrap()], None);
    assert_eq!(out.status.code(), Some(0), "{out:?}");
    let text = std::fs::read_to_string(&exported).unwrap();
    assert!(text.contains(&format!("name = \"{name}\"")), "{text}");
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("REGISTRY_"),
        "{out:?}"
    );
}

#[tokio::test]
async fn managed_mode_applies_at_start_on_change_and_on_sighup() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("projects.toml");
    let name = unique_name("managed");
    let text = |port: u16, pattern: &str| {
        format!(
            "[[projects]]\nname = \"{name}\"\nimage = \"nginx\"\ncontainer_port = {port}\n\n[[projects.stages]]\nname = \"dev\"\ntag_pattern = \"{pattern}\"\n"
        )
    };
    std::fs::write(&path, text(80, "*")).unwrap();
    let app: TestApp = spawn_app_with(AppOptions {
        projects: Some(path.clone()),
        ..AppOptions::default()
    })
    .await;
    let api = app.api().await;
    let project = project_named(&api, &name).await.expect("applied at start");
    assert_eq!(project["container_port"], 80);
    let (status, _) = api
        .put(
            &format!("/api/projects/{}", project["id"]),
            json!({ "container_port": 81 }),
        )
        .await;
    assert_eq!(status, 409, "managed");

    std::fs::write(&path, text(8080, "*")).unwrap();
    wait_until_async("the changed file to be applied", || async {
        project_named(&api, &name).await.unwrap()["container_port"] == 8080
    })
    .await;

    // A wrong file changes nothing.
    std::fs::write(&path, text(0, "*")).unwrap();
    tokio::time::sleep(docker_watcher::managed_mode::CHECK_EVERY * 2).await;
    assert_eq!(
        project_named(&api, &name).await.unwrap()["container_port"],
        8080
    );

    // SIGHUP applies the file as it is, even unchanged: a stage edited behind the daemon's
    // back is set back.
    std::fs::write(&path, text(8080, "*")).unwrap();
    wait_until_async("the fixed file to be applied", || async {
        project_named(&api, &name).await.unwrap()["container_port"] == 8080
    })
    .await;
    tokio::time::sleep(docker_watcher::managed_mode::CHECK_EVERY * 2).await;
    let stage = app
        .store()
        .list_stages(project["id"].as_i64().unwrap())
        .unwrap()
        .remove(0);
    app.store()
        .update_stage(
            stage.id,
            &docker_watcher::store::StageUpdate {
                tag_pattern: Some("edited-*".into()),
                ..Default::default()
            },
        )
        .unwrap();
    // SAFETY: a signal to this process; the daemon's SIGHUP handler is installed.
    unsafe { libc::kill(libc::getpid(), libc::SIGHUP) };
    wait_until("SIGHUP to apply the file again", || {
        app.store().get_stage(stage.id).unwrap().tag_pattern == "*"
    })
    .await;
}

async fn wait_until(what: &str, mut done: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(60);
    while !done() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

async fn wait_until_async<F: std::future::Future<Output = bool>>(
    what: &str,
    mut done: impl FnMut() -> F,
) {
    let deadline = Instant::now() + Duration::from_secs(60);
    while !done().await {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// The README's example and deploy/projects.toml pass every check the API makes.
#[tokio::test]
async fn the_documented_examples_apply() {
    let app = spawn_app().await;
    let api = app.api().await;
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
    let readme = std::fs::read_to_string(root.join("README.md")).unwrap();
    let example = readme
        .split("<!-- projects-file-example -->\n```toml\n")
        .nth(1)
        .and_then(|rest| rest.split("```\n<!-- /projects-file-example -->").next())
        .expect("the README's example block");
    let deploy = std::fs::read_to_string(root.join("deploy/projects.toml")).unwrap();
    for (name, content) in [
        ("README.md", example),
        ("deploy/projects.toml", deploy.as_str()),
    ] {
        let sources = vec![docker_watcher::projects_file::SourceFile {
            name: name.into(),
            content: content.into(),
        }];
        let document = docker_watcher::projects_file::Document::parse(&sources).unwrap();
        let secrets: BTreeMap<String, String> = document
            .references()
            .into_iter()
            .map(|r| {
                (
                    r.key(),
                    "https://hooks.example.com/T000/B000/secret".to_string(),
                )
            })
            .collect();
        assert!(!secrets.is_empty(), "{name} shows a secret reference");
        let (status, body) = api
            .post(
                "/api/apply",
                json!({ "files": sources, "secrets": secrets, "dry_run": true }),
            )
            .await;
        assert_eq!(status, 200, "{name}: {body}");
        assert!(
            steps(&body).iter().any(|s| s.starts_with("create stage")),
            "{name}: {body}"
        );
    }
}
