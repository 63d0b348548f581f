//! What the OpenAPI document refuses, the API refuses too: a value outside a field's
//! stated pattern, length or range gets a 422 naming the field, and nothing changes. (The
//! document is what generated clients and schemathesis check against; a value the
//! document calls invalid but the API quietly trims or takes is a contract broken.)

use serde_json::{Value, json};

use crate::support::app::{Api, spawn_app};

/// Makes the project `shop` and gives the path of its stages.
async fn stages_of_a_project(api: &Api) -> String {
    let project = api
        .create(
            "/api/projects",
            json!({ "name": "shop", "image": "registry.example.test/acme/shop", "container_port": 8080 }),
        )
        .await;
    format!("/api/projects/{}/stages", project["id"])
}

#[tokio::test]
async fn values_outside_the_documented_patterns_and_lengths_are_refused() {
    let app = spawn_app().await;
    let api = app.api().await;
    let stages = stages_of_a_project(&api).await;

    // (path, body, field): each body breaks the field's documented rule.
    let cases: Vec<(&str, Value, &str)> = vec![
        // health_path: `^/[!-~]*$`, at most 2048.
        (
            &stages,
            json!({ "name": "a", "health_path": "/santé" }),
            "health_path",
        ),
        (
            &stages,
            json!({ "name": "a", "health_path": format!("/{}", "h".repeat(2048)) }),
            "health_path",
        ),
        // An environment variable's name: at most 255.
        (
            "/api/projects",
            json!({ "name": "env", "image": "acme/env", "container_port": 80,
                    "env": [{ "name": "V".repeat(256), "value": "x" }] }),
            "env[0].name",
        ),
        // A notification URL: a scheme and no spaces, at most 2048.
        (
            "/api/notifications",
            json!({ "name": "hook", "url": " https://hooks.example.test/x" }),
            "url",
        ),
        (
            "/api/notifications",
            json!({ "name": "hook", "url": "https://hooks.example.test/x\u{1f}" }),
            "url",
        ),
        (
            "/api/notifications",
            json!({ "name": "hook", "url": format!("https://hooks.example.test/{}", "x".repeat(2048)) }),
            "url",
        ),
    ];
    for (path, body, field) in &cases {
        let (status, answer) = api.post(path, body.clone()).await;
        assert_eq!(status, 422, "{path} {body}: {answer}");
        assert!(
            answer["fields"][field].is_string(),
            "{field} not named: {answer}"
        );
    }
    assert_eq!(api.get(&stages).await.1, json!([]), "no stage was made");
    assert_eq!(api.get("/api/notifications").await.1, json!([]));
    let (_, projects) = api.get("/api/projects").await;
    assert_eq!(projects.as_array().map(Vec::len), Some(1), "{projects}");
    app.shutdown().await;
}

/// The fields of a schema the document gives a range, with their ends.
fn documented_ranges(spec: &Value, schema: &str) -> Vec<(String, i64, i64)> {
    spec["components"]["schemas"][schema]["properties"]
        .as_object()
        .unwrap_or_else(|| panic!("{schema} in the document"))
        .iter()
        .filter_map(|(field, s)| {
            Some((
                field.clone(),
                s["minimum"].as_i64()?,
                s["maximum"].as_i64()?,
            ))
        })
        .collect()
}

/// One past either end of each documented range (where the type can carry it).
fn just_outside(min: i64, max: i64) -> impl Iterator<Item = i64> {
    [min - 1, max + 1].into_iter().filter(|v| *v >= 0)
}

/// Every range the document states for a new project or stage holds at both ends: one
/// past either end is a 422 naming the field, and nothing is created.
#[tokio::test]
async fn every_documented_project_and_stage_range_is_the_range_the_api_enforces() {
    let app = spawn_app().await;
    let api = app.api().await;
    let (_, spec) = api.get("/api/openapi.json").await;
    let stages = stages_of_a_project(&api).await;
    let bases = [
        (
            "NewProjectBody",
            "/api/projects".to_string(),
            json!({ "name": "other", "image": "registry.example.test/acme/other", "container_port": 80 }),
        ),
        ("NewStageBody", stages.clone(), json!({ "name": "dev" })),
    ];
    for (schema, path, base) in &bases {
        let ranges = documented_ranges(&spec, schema);
        assert!(ranges.len() >= 4, "{schema}: {ranges:?}");
        for (field, min, max) in ranges {
            for value in just_outside(min, max) {
                let mut body = base.clone();
                body[&field] = json!(value);
                let (status, answer) = api.post(path, body).await;
                assert_eq!(status, 422, "{schema}.{field} = {value}: {answer}");
                assert!(answer["fields"][&field].is_string(), "{field}: {answer}");
            }
        }
    }
    assert_eq!(api.get(&stages).await.1, json!([]), "no stage was made");
    let (_, projects) = api.get("/api/projects").await;
    assert_eq!(projects.as_array().map(Vec::len), Some(1), "{projects}");
    app.shutdown().await;
}

/// Every range the document states for a setting holds at both ends: one past either end
/// is a 422 naming the field, and the settings stay as they were.
#[tokio::test]
async fn every_documented_settings_range_is_the_range_the_api_enforces() {
    let app = spawn_app().await;
    let api = app.api().await;
    let (_, spec) = api.get("/api/openapi.json").await;
    let (_, before) = api.get("/api/settings").await;
    let ranges = documented_ranges(&spec, "SettingsChanges");
    for (field, min, max) in &ranges {
        for value in just_outside(*min, *max) {
            let (status, answer) = api.put("/api/settings", json!({ field: value })).await;
            assert_eq!(status, 422, "{field} = {value}: {answer}");
            assert!(answer["fields"][field].is_string(), "{field}: {answer}");
        }
    }
    let checked: Vec<&str> = ranges.iter().map(|(field, ..)| field.as_str()).collect();
    for field in [
        "audit_retention_days",
        "deploy_logs_per_stage",
        "webhook_event_max_count",
        "poll_interval_secs",
    ] {
        assert!(
            checked.contains(&field),
            "{field} has no documented range: {checked:?}"
        );
    }
    assert_eq!(api.get("/api/settings").await.1, before);
    app.shutdown().await;
}
