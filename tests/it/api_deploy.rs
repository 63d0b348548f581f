//! Real deploys through the API: a test image pushed to a per-test registry, project and
//! stage made over HTTP, the deploy's log followed over SSE to its end, the dashboard's
//! event stream, instance operations, metrics, and the CLI deploying with its log live.

use std::time::Duration;

use docker_watcher::client::{SseEvent, SseReader};
use futures_util::StreamExt;
use serde_json::{Value, json};

use crate::support::app::{Api, TestApp, spawn_app};
use crate::support::project_cli::{Cli, create_project};
use crate::support::registry::TestRegistry;
use crate::support::{CRASH_IMAGE, HEALTHY_IMAGE, require_docker, unique_name};

/// A daemon (whose containers go when it is dropped) with fast health checks, a registry holding `dw-test/app:healthy` as `v1`,
/// and a project with stage `dev`, all made through the API.
pub(crate) struct Setup {
    pub(crate) app: TestApp,
    pub(crate) api: Api,
    pub(crate) registry: TestRegistry,
    pub(crate) repository: String,
    pub(crate) project: Value,
    pub(crate) stage: Value,
}

pub(crate) async fn setup() -> Setup {
    require_docker();
    let app = spawn_app().await;
    let registry = TestRegistry::start().await;
    let repository = unique_name("acme/shop");
    registry.push(HEALTHY_IMAGE, &repository, "v1").await;
    let api = app.api().await;
    let (status, body) = api
        .put(
            "/api/settings",
            json!({ "health_interval_ms": 200, "health_timeout_ms": 2000, "health_retries": 3,
                    "health_start_period_ms": 2000 }),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    let (project, stages) =
        create_project(&api, &registry, &repository, &[("dev", json!({}))]).await;
    let stage = stages[0].clone();
    Setup {
        app,
        api,
        registry,
        repository,
        project,
        stage,
    }
}

/// Opens an SSE stream with the bearer token.
pub(crate) async fn open_stream(api: &Api, path: &str) -> reqwest::Response {
    let response = api
        .client
        .get(format!("{}{path}", api.address))
        .bearer_auth(api.token.as_ref().unwrap())
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200, "{path}");
    assert!(
        response.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/event-stream")
    );
    response
}

/// Reads events until `stop` says so or the stream closes (bounded, so a bug cannot hang
/// the suite; a deploy of the test image takes seconds).
pub(crate) async fn read_events(
    response: reqwest::Response,
    mut stop: impl FnMut(&SseEvent) -> bool,
) -> (Vec<SseEvent>, bool) {
    let mut reader = SseReader::default();
    let mut body = response.bytes_stream();
    let mut events = Vec::new();
    let read = async {
        while let Some(chunk) = body.next().await {
            for event in reader.push(&chunk.unwrap()) {
                let done = stop(&event);
                events.push(event);
                if done {
                    return false;
                }
            }
        }
        true
    };
    let closed = tokio::time::timeout(Duration::from_secs(120), read)
        .await
        .expect("the stream went quiet for two minutes");
    (events, closed)
}

#[tokio::test]
async fn a_deploy_log_streams_live_to_its_end() {
    let s = setup().await;
    let dashboard = open_stream(&s.api, "/api/events").await;
    let (status, deploy) = s
        .api
        .post(
            &format!("/api/stages/{}/deploys", s.stage["id"]),
            json!({ "tag": "v1" }),
        )
        .await;
    assert_eq!(status, 202, "{deploy}");
    assert_eq!(deploy["trigger"], "api");
    let id = deploy["id"].as_i64().unwrap();

    let stream = open_stream(&s.api, &format!("/api/deploys/{id}/logs/stream")).await;
    let (events, closed) = read_events(stream, |_| false).await;
    assert!(closed, "the server closes the stream after `end`");
    let end = events.last().expect("events");
    assert_eq!(end.event, "end", "{events:?}");
    let finished: Value = serde_json::from_str(&end.data).unwrap();
    assert_eq!(finished["status"], "success", "{finished}");
    assert_eq!(finished["finished"], true);

    let logs: Vec<Value> = events
        .iter()
        .filter(|e| e.event == "log")
        .map(|e| serde_json::from_str(&e.data).unwrap())
        .collect();
    let ids: Vec<i64> = logs.iter().map(|l| l["id"].as_i64().unwrap()).collect();
    assert!(
        ids.windows(2).all(|w| w[0] < w[1]),
        "in order, no repeats: {ids:?}"
    );
    let steps: Vec<&str> = logs.iter().map(|l| l["step"].as_str().unwrap()).collect();
    for step in ["queue", "pull", "health_check", "done"] {
        assert!(steps.contains(&step), "{step} missing from {steps:?}");
    }
    let statuses: Vec<String> = events
        .iter()
        .filter(|e| e.event == "status")
        .map(|e| {
            serde_json::from_str::<Value>(&e.data).unwrap()["status"]
                .as_str()
                .unwrap()
                .to_string()
        })
        .collect();
    assert_eq!(
        statuses.last().map(String::as_str),
        Some("success"),
        "{statuses:?}"
    );

    // The stream and the JSON log agree, and a late reader gets it all, then `end`.
    let (_, stored) = s.api.get(&format!("/api/deploys/{id}/logs")).await;
    let stored_ids: Vec<i64> = stored
        .as_array()
        .unwrap()
        .iter()
        .map(|l| l["id"].as_i64().unwrap())
        .collect();
    assert_eq!(stored_ids, ids);
    let late = open_stream(&s.api, &format!("/api/deploys/{id}/logs/stream")).await;
    let (late_events, closed) = read_events(late, |_| false).await;
    assert!(closed);
    let late_ids: Vec<i64> = late_events
        .iter()
        .filter(|e| e.event == "log")
        .map(|e| e.id.as_ref().unwrap().parse().unwrap())
        .collect();
    assert_eq!(late_ids, ids);
    assert_eq!(late_events.last().unwrap().event, "end");

    // The dashboard saw the same deploy go through to success.
    let (seen, _) = read_events(dashboard, |e| {
        e.event == "status"
            && e.data.contains("\"success\"")
            && e.data.contains(&format!("\"deploy_id\":{id}"))
    })
    .await;
    assert!(
        seen.iter().any(|e| e.data.contains("\"pending\"")),
        "{seen:?}"
    );

    // The instance it made, and the hands-on operations on it.
    let (_, instances) = s
        .api
        .get(&format!("/api/stages/{}/instances", s.stage["id"]))
        .await;
    assert_eq!(instances.as_array().unwrap().len(), 1, "{instances}");
    assert_eq!(instances[0]["status"], "running");
    assert_eq!(instances[0]["tag"], "v1");
    let instance = instances[0]["id"].as_i64().unwrap();
    let (status, stopped) = s
        .api
        .post(&format!("/api/instances/{instance}/stop"), json!({}))
        .await;
    assert_eq!(status, 200, "{stopped}");
    assert_eq!(stopped["status"], "stopped");
    let (status, started) = s
        .api
        .post(&format!("/api/instances/{instance}/start"), json!({}))
        .await;
    assert_eq!(status, 200, "{started}");
    assert_eq!(started["status"], "running");

    // Metrics count it.
    let (_, metrics) = s.api.get("/metrics").await;
    let metrics = metrics.as_str().unwrap();
    assert!(
        metrics.contains("docker_watcher_deploys_total{outcome=\"success\"}"),
        "{metrics}"
    );
    assert!(
        metrics.contains("docker_watcher_deploy_duration_seconds"),
        "{metrics}"
    );
    assert!(
        metrics.contains("docker_watcher_running_instances"),
        "{metrics}"
    );

    // Filters find it.
    let (_, page) = s
        .api
        .get(&format!(
            "/api/deploys?project_id={}&status=success",
            s.project["id"]
        ))
        .await;
    assert_eq!(page["deploys"][0]["id"], id, "{page}");
    let (_, tags) = s
        .api
        .get(&format!("/api/projects/{}/tags", s.project["id"]))
        .await;
    assert_eq!(tags[0]["name"], "v1", "{tags}");
    assert_eq!(tags[0]["stages"], json!(["dev"]));

    assert_eq!(
        s.api.delete(&format!("/api/instances/{instance}")).await.0,
        204
    );
    let _ = (&s.registry, &s.repository);
    s.app.shutdown().await;
}

#[tokio::test]
async fn the_cli_deploys_a_tag_and_shows_its_log_live() {
    let s = setup().await;
    s.registry.push(CRASH_IMAGE, &s.repository, "v2").await;
    let cli = Cli::with_new_token(&s.app, &s.api, "cli", None).await;
    let project = s.project["name"].as_str().unwrap().to_string();

    let output = cli
        .output(&["deploy", &project, "dev", "v1", "--follow"])
        .await;
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        output.status.success(),
        "stdout:\n{stdout}\nstderr:\n{stderr}"
    );
    for needle in ["pull", "health_check", "v1 is live"] {
        assert!(stdout.contains(needle), "{needle} not in:\n{stdout}");
    }
    assert!(stderr.contains("succeeded"), "{stderr}");

    let output = cli
        .output(&["deploy", &project, "dev", "v2", "--follow"])
        .await;
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(
        output.status.code(),
        Some(3),
        "a failed deploy exits 3: {stderr}"
    );
    assert!(
        stderr.contains("rolled_back") || stderr.contains("failed"),
        "{stderr}"
    );

    let output = cli.output(&["deploys", "--project", &project]).await;
    let listing = String::from_utf8_lossy(&output.stdout);
    assert!(output.status.success());
    assert_eq!(listing.lines().count(), 2, "{listing}");
    assert!(
        listing
            .lines()
            .any(|l| l.contains("success") && l.contains("v1")),
        "{listing}"
    );

    let output = cli.output(&["projects"]).await;
    assert!(String::from_utf8_lossy(&output.stdout).contains(&project));

    let output = cli.output(&["deploy", &project, "nope", "v1"]).await;
    assert_eq!(output.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&output.stderr).contains("no stage nope"));
    let output = cli
        .command(&["projects"])
        .env("DW_TOKEN", "dw_wrong")
        .output()
        .await
        .unwrap();
    assert_eq!(output.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&output.stderr).contains("DW_TOKEN"));
    s.app.shutdown().await;
}
