//! Instances, stages and projects over their whole life through the API, on the real
//! Docker Engine with Nginx Proxy Manager (the spec-following fake): an instance whose
//! container was removed by hand answers 409 with what to do, and deleting a stage or a
//! project takes its containers and proxy hosts with it.

use std::process::Command;

use serde_json::Value;

use crate::npm_daemon::{NpmSetup, npm_setup};
use crate::support::docker_cli;

async fn instances(s: &NpmSetup) -> Vec<Value> {
    let (status, list) = s
        .api
        .get(&format!("/api/stages/{}/instances", s.stage["id"]))
        .await;
    assert_eq!(status, 200, "{list}");
    list.as_array().unwrap().clone()
}

fn container_exists(id: &str) -> bool {
    Command::new(docker_cli())
        .args(["inspect", "--format", "{{.Id}}", id])
        .output()
        .unwrap()
        .status
        .success()
}

#[tokio::test]
async fn an_instance_whose_container_was_removed_by_hand_answers_409_and_is_marked() {
    let s = npm_setup().await;
    let deploy = s.deploy("v1").await;
    assert_eq!(deploy.status.as_str(), "success", "{:?}", deploy.error);
    let instance = instances(&s).await.remove(0);
    let container = instance["container_id"].as_str().unwrap();
    let removed = Command::new(docker_cli())
        .args(["rm", "-f", container])
        .output()
        .unwrap();
    assert!(removed.status.success());
    let path = format!("/api/instances/{}", instance["id"]);

    for action in ["stop", "start"] {
        let (status, answer) = s.api.post(&format!("{path}/{action}"), Value::Null).await;
        assert_eq!(status, 409, "{action}: {answer}");
        let error = answer["error"].as_str().unwrap();
        assert!(
            error.contains("remove the instance or redeploy"),
            "{action}: {error}"
        );
    }
    let (_, marked) = s.api.get(&path).await;
    assert_eq!(marked["status"], "failed", "{marked}");

    // What the answer suggests works: the instance goes, with its proxy host.
    let (status, answer) = s.api.delete(&path).await;
    assert_eq!(status, 204, "{answer}");
    let own_domain = instance["subdomains"][0].as_str().unwrap();
    assert!(
        !s.npm
            .hosts()
            .iter()
            .any(|h| h["domain_names"][0] == own_domain),
        "{:?}",
        s.npm.hosts()
    );
    assert!(!container_exists(container));
}

/// This daemon's containers on the engine, running or not.
fn containers_of(s: &NpmSetup) -> Vec<String> {
    let output = Command::new(docker_cli())
        .args([
            "ps",
            "-aq",
            "--filter",
            &format!(
                "label={}={}",
                docker_watcher::docker::labels::INSTALLATION,
                s.app.installation_id()
            ),
        ])
        .output()
        .unwrap();
    String::from_utf8_lossy(&output.stdout)
        .split_whitespace()
        .map(str::to_string)
        .collect()
}

#[tokio::test]
async fn deleting_a_stage_removes_its_containers_and_proxy_hosts() {
    let s = npm_setup().await;
    let deploy = s.deploy("v1").await;
    assert_eq!(deploy.status.as_str(), "success", "{:?}", deploy.error);
    assert_eq!(containers_of(&s).len(), 1);
    assert_eq!(s.npm.hosts().len(), 2, "instance and stage domain");

    let (status, answer) = s
        .api
        .delete(&format!("/api/stages/{}", s.stage["id"]))
        .await;

    assert_eq!(status, 204, "{answer}");
    assert_eq!(containers_of(&s), Vec::<String>::new());
    assert_eq!(s.npm.hosts(), Vec::<Value>::new(), "no host left routing");
    let (status, _) = s.api.get(&format!("/api/stages/{}", s.stage["id"])).await;
    assert_eq!(status, 404);
}

#[tokio::test]
async fn deleting_a_project_during_a_deploy_finishes_it_then_removes_everything() {
    let s = npm_setup().await;
    let deploy = s.deploy("v1").await;
    assert_eq!(deploy.status.as_str(), "success", "{:?}", deploy.error);
    let (status, running) = s
        .api
        .post(
            &format!("/api/stages/{}/deploys", s.stage["id"]),
            serde_json::json!({ "tag": "v2" }),
        )
        .await;
    assert_eq!(status, 202, "{running}");

    let (status, answer) = s
        .api
        .delete(&format!("/api/projects/{}", s.project["id"]))
        .await;

    assert_eq!(status, 204, "{answer}");
    assert_eq!(
        containers_of(&s),
        Vec::<String>::new(),
        "v1 and v2 are gone"
    );
    assert_eq!(s.npm.hosts(), Vec::<Value>::new(), "no host left routing");
    let (_, instances) = s.api.get("/api/instances").await;
    assert_eq!(instances, serde_json::json!([]));
}
