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
