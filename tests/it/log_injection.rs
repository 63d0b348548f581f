//! Log injection (issue 12 §4), against the real binary with stderr on a pipe: a login
//! name with a newline and ESC is logged escaped on one line, and a log that is not a
//! terminal gets no colour codes.

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::json;

#[tokio::test]
async fn a_login_name_cannot_forge_log_lines_or_colour_the_log() {
    let dir = tempfile::tempdir().unwrap();
    let port = crate::support::free_port();
    let mut child = Command::new(env!("CARGO_BIN_EXE_docker-watcher"))
        .arg("serve")
        .env("DW_LISTEN", format!("127.0.0.1:{port}"))
        .env("DW_DATA_DIR", dir.path().join("data"))
        .env("DW_ADMIN_PASSWORD", "a-long-admin-password")
        .env_remove("NO_COLOR")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let log = Arc::new(Mutex::new(String::new()));
    let stderr = child.stderr.take().unwrap();
    let sink = log.clone();
    let reader = std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            let mut log = sink.lock().unwrap();
            log.push_str(&line);
            log.push('\n');
        }
    });
    let deadline = Instant::now() + Duration::from_secs(30);
    while !log.lock().unwrap().contains("listening on") {
        assert!(
            Instant::now() < deadline,
            "no start: {}",
            log.lock().unwrap()
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    let forged = "mallory\n2026-01-01T00:00:00.000000Z  INFO docker_watcher::api::auth: signed in username=admin\x1b[2J\x1b[31m";
    let response = reqwest::Client::new()
        .post(format!("http://127.0.0.1:{port}/api/auth/login"))
        .json(&json!({ "username": forged, "password": "wrong-password" }))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 401);
    let deadline = Instant::now() + Duration::from_secs(10);
    while !log.lock().unwrap().contains("failed login") {
        assert!(
            Instant::now() < deadline,
            "not logged: {}",
            log.lock().unwrap()
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    let _ = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status();
    assert!(child.wait().unwrap().success());
    reader.join().unwrap();
    let text = log.lock().unwrap().clone();
    assert!(
        !text.contains('\x1b'),
        "no ESC, no colours on a pipe:\n{text:?}"
    );
    let failed: Vec<&str> = text
        .lines()
        .filter(|l| l.contains("failed login"))
        .collect();
    assert_eq!(failed.len(), 1, "{text}");
    assert!(
        failed[0].contains("mallory\\n2026-01-01"),
        "escaped in place: {}",
        failed[0]
    );
    assert!(
        !text
            .lines()
            .any(|l| l.starts_with("2026-01-01T00:00:00.000000Z")),
        "no forged line:\n{text}"
    );
}
