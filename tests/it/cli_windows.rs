//! `deploy` and `rollback` on the command line with `--outside-window`: on a stage whose
//! deploy window is closed, the real binary's request waits as `scheduled` without the
//! flag and deploys at once with it (the API's `outside_window`), on the real Docker
//! Engine and registry.

use serde_json::json;

use crate::api_deploy::setup;
use crate::support::HEALTHY_IMAGE;
use crate::support::project_cli::{Cli, describe};

/// The deploy id the CLI printed first on stderr ("deploy 7 scheduled: …").
fn deploy_id(output: &std::process::Output) -> i64 {
    let stderr = String::from_utf8_lossy(&output.stderr);
    stderr
        .split_whitespace()
        .nth(1)
        .and_then(|id| id.parse().ok())
        .unwrap_or_else(|| panic!("no deploy id in {stderr}"))
}

#[tokio::test]
async fn deploy_and_rollback_wait_for_the_window_unless_told_to_go_outside_it() {
    let s = setup().await;
    s.registry.push(HEALTHY_IMAGE, &s.repository, "v2").await;
    // Open for a minute, an hour from now: closed for the whole test.
    let later = docker_watcher::release::window::range_from(chrono::Utc::now(), 3600, 60);
    let (code, body) = s
        .api
        .put(
            &format!("/api/stages/{}", s.stage["id"]),
            json!({ "deploy_windows": [later], "window_timezone": "UTC" }),
        )
        .await;
    assert_eq!(code, 200, "{body}");
    let cli = Cli::with_new_token(&s.app, &s.api, "release", Some("deploy")).await;
    let project = s.project["name"].as_str().unwrap().to_string();
    let waits = cli.output(&["deploy", &project, "dev", "v1"]).await;
    assert!(waits.status.success(), "{}", describe(&waits));
    assert!(
        String::from_utf8_lossy(&waits.stderr).contains("scheduled"),
        "says it waits: {}",
        describe(&waits)
    );
    let waiting = deploy_id(&waits);
    let (_, deploy) = s.api.get(&format!("/api/deploys/{waiting}")).await;
    assert_eq!(deploy["status"], "scheduled", "{deploy}");

    for tag in ["v1", "v2"] {
        let now = cli
            .output(&[
                "deploy",
                &project,
                "dev",
                tag,
                "--outside-window",
                "--follow",
            ])
            .await;
        assert!(now.status.success(), "{}", describe(&now));
        let stdout = String::from_utf8_lossy(&now.stdout);
        assert!(stdout.contains(&format!("{tag} is live")), "{stdout}");
        let (_, deploy) = s
            .api
            .get(&format!("/api/deploys/{}", deploy_id(&now)))
            .await;
        assert_eq!(deploy["outside_window"], true, "{deploy}");
    }
    let (_, replaced) = s.api.get(&format!("/api/deploys/{waiting}")).await;
    assert_eq!(replaced["status"], "superseded", "{replaced}");

    let waits = cli.output(&["rollback", &project, "dev"]).await;
    assert!(waits.status.success(), "{}", describe(&waits));
    let stderr = String::from_utf8_lossy(&waits.stderr);
    assert!(
        stderr.contains("scheduled") && stderr.contains("back to v1"),
        "{stderr}"
    );

    let back = cli
        .output(&["rollback", &project, "dev", "--outside-window", "--follow"])
        .await;
    assert!(back.status.success(), "{}", describe(&back));
    let (_, instances) = s
        .api
        .get(&format!("/api/stages/{}/instances", s.stage["id"]))
        .await;
    let running: Vec<_> = instances
        .as_array()
        .unwrap()
        .iter()
        .filter(|i| i["status"] == "running")
        .collect();
    assert_eq!(running.len(), 1, "{instances}");
    assert_eq!(running[0]["tag"], "v1", "rolled back now: {instances}");
    s.app.shutdown().await;
}
