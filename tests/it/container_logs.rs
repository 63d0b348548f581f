//! A running instance's container output over SSE (`GET /api/instances/{id}/logs`), on the
//! real Docker Engine: the backlog, then lines as the container writes them (to stdout and
//! stderr), the end when the container stops, and the bounds on `tail`.

use std::process::Command;

use serde_json::{Value, json};

use crate::api_deploy::{Setup, open_stream, read_events, setup};
use crate::support::docker_cli;

/// Makes the container print `text` on its stdout (fd 1) or stderr (fd 2), as its own
/// process would: Docker records whatever PID 1's outputs receive.
fn print_in(container: &str, fd: u8, text: &str) {
    let output = Command::new(docker_cli())
        .args([
            "exec",
            container,
            "sh",
            "-c",
            &format!("echo '{text}' > /proc/1/fd/{fd}"),
        ])
        .output()
        .unwrap();
    assert!(output.status.success(), "{output:?}");
}

async fn deployed_instance(s: &Setup) -> Value {
    let (status, deploy) = s
        .api
        .post(
            &format!("/api/stages/{}/deploys", s.stage["id"]),
            json!({ "tag": "v1" }),
        )
        .await;
    assert_eq!(status, 202, "{deploy}");
    let done = s.app.wait_final(deploy["id"].as_i64().unwrap()).await;
    assert_eq!(done.status.as_str(), "success", "{:?}", done.error);
    let (status, list) = s
        .api
        .get(&format!("/api/stages/{}/instances", s.stage["id"]))
        .await;
    assert_eq!(status, 200, "{list}");
    list[0].clone()
}

fn lines(events: &[docker_watcher::client::SseEvent]) -> Vec<Value> {
    events
        .iter()
        .filter(|e| e.event == "line")
        .map(|e| serde_json::from_str(&e.data).unwrap())
        .collect()
}

#[tokio::test]
async fn a_containers_output_streams_live_until_it_stops() {
    let s = setup().await;
    let instance = deployed_instance(&s).await;
    let container = instance["container_id"].as_str().unwrap().to_string();
    let path = format!("/api/instances/{}/logs", instance["id"]);
    print_in(&container, 1, "before the stream");

    // Without follow: the backlog, then `end`, and the stream closes.
    let (events, closed) = read_events(
        open_stream(&s.api, &format!("{path}?tail=50")).await,
        |_| false,
    )
    .await;
    assert!(closed);
    let backlog = lines(&events);
    assert!(
        backlog
            .iter()
            .any(|l| l["text"] == "before the stream" && l["stream"] == "stdout"),
        "{backlog:?}"
    );
    assert!(backlog.iter().all(|l| l["at"].is_string()), "{backlog:?}");
    let end: Value = serde_json::from_str(&events.last().unwrap().data).unwrap();
    assert_eq!(events.last().unwrap().event, "end");
    assert_eq!(end["reason"], "done", "{end}");

    // With follow: lines written after the backlog arrive as they are written, from
    // both outputs, and the stream ends when the container stops.
    let stream = open_stream(&s.api, &format!("{path}?tail=10&follow=true")).await;
    let api = s.api.clone();
    let instance_path = format!("/api/instances/{}", instance["id"]);
    let mut step = 0;
    let (events, closed) = read_events(stream, |event| {
        let text = serde_json::from_str::<Value>(&event.data).unwrap_or_default()["text"].clone();
        if step == 0 && text == "before the stream" {
            step = 1;
            print_in(&container, 1, "while following");
        } else if step == 1 && text == "while following" {
            step = 2;
            print_in(&container, 2, "on stderr");
        } else if step == 2 && text == "on stderr" {
            step = 3;
            let api = api.clone();
            let instance_path = instance_path.clone();
            tokio::spawn(async move {
                let (status, body) = api
                    .post(&format!("{instance_path}/stop"), Value::Null)
                    .await;
                assert_eq!(status, 200, "{body}");
            });
        }
        false
    })
    .await;
    assert!(closed, "the stream should close when the container stops");
    let followed = lines(&events);
    let texts: Vec<&str> = followed.iter().filter_map(|l| l["text"].as_str()).collect();
    let at = |t: &str| {
        texts
            .iter()
            .position(|x| *x == t)
            .unwrap_or_else(|| panic!("{t} not in {texts:?}"))
    };
    assert!(at("before the stream") < at("while following"));
    assert!(at("while following") < at("on stderr"));
    assert_eq!(followed[at("on stderr")]["stream"], "stderr");
    assert_eq!(events.last().unwrap().event, "end");

    s.app.shutdown().await;
}

#[tokio::test]
async fn container_logs_refuse_a_tail_out_of_bounds_and_unknown_instances() {
    let s = setup().await;
    let (status, body) = s.api.get("/api/instances/999999/logs").await;
    assert_eq!(status, 404, "{body}");
    let instance = deployed_instance(&s).await;
    let (status, body) = s
        .api
        .get(&format!("/api/instances/{}/logs?tail=5001", instance["id"]))
        .await;
    assert_eq!(status, 422, "{body}");
    assert!(
        body["fields"]["tail"]
            .as_str()
            .unwrap()
            .contains("between 0 and 5000"),
        "{body}"
    );
    let (status, body) = s
        .api
        .get(&format!("/api/instances/{}/logs?lines=5", instance["id"]))
        .await;
    assert_eq!(status, 422, "{body}");
    assert!(body["fields"]["lines"].is_string(), "{body}");

    // A container removed behind docker-watcher's back: 409, not an empty stream.
    let container = instance["container_id"].as_str().unwrap();
    let removed = Command::new(docker_cli())
        .args(["rm", "-f", container])
        .output()
        .unwrap();
    assert!(removed.status.success());
    let (status, body) = s
        .api
        .get(&format!("/api/instances/{}/logs", instance["id"]))
        .await;
    assert_eq!(status, 409, "{body}");
    s.app.shutdown().await;
}
