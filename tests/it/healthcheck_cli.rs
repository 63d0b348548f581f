//! `docker-watcher healthcheck` (the image's HEALTHCHECK) against a real daemon: exit 0
//! when the configured listen address answers `/healthz`, 1 when nothing does; and the
//! admin password from `DW_ADMIN_PASSWORD_FILE` signs in to a daemon run as a process.

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::json;

use crate::support::app::spawn_app;
use crate::support::free_port;

/// `healthcheck` with `DW_LISTEN=listen`; its exit code and stdout.
fn healthcheck(listen: &str) -> (Option<i32>, String) {
    let output = Command::new(env!("CARGO_BIN_EXE_docker-watcher"))
        .arg("healthcheck")
        .env("DW_LISTEN", listen)
        // An HTTP proxy in the environment must not be asked: it is the daemon next door.
        .env("HTTP_PROXY", "http://127.0.0.1:9")
        .env("http_proxy", "http://127.0.0.1:9")
        .stdin(Stdio::null())
        .output()
        .expect("run docker-watcher healthcheck");
    (
        output.status.code(),
        String::from_utf8_lossy(&output.stdout).to_string(),
    )
}

#[tokio::test]
async fn healthcheck_exits_0_for_a_running_daemon_and_1_for_none() {
    let app = spawn_app().await;
    let listen = app.address.trim_start_matches("http://").to_string();
    let check = listen.clone();
    let (code, out) = tokio::task::spawn_blocking(move || healthcheck(&check))
        .await
        .expect("healthcheck");
    assert_eq!(code, Some(0), "{out}");
    assert!(out.contains("healthy"), "{out}");

    // Every interface is checked through loopback.
    let port = listen.rsplit(':').next().expect("port").to_string();
    let (code, out) = tokio::task::spawn_blocking(move || healthcheck(&format!("0.0.0.0:{port}")))
        .await
        .expect("healthcheck");
    assert_eq!(code, Some(0), "{out}");

    let nobody = format!("127.0.0.1:{}", free_port());
    let (code, out) = tokio::task::spawn_blocking(move || healthcheck(&nobody))
        .await
        .expect("healthcheck");
    assert_eq!(code, Some(1), "{out}");
    assert!(out.starts_with("unhealthy"), "{out}");
}

#[tokio::test]
async fn the_admin_password_comes_from_its_file() {
    let dir = tempfile::tempdir().expect("temp dir");
    let file = dir.path().join("admin_password");
    std::fs::write(&file, "password-from-a-file\n").expect("write");
    let port = free_port();
    let mut child = Command::new(env!("CARGO_BIN_EXE_docker-watcher"))
        .arg("serve")
        .env("DW_LISTEN", format!("127.0.0.1:{port}"))
        .env("DW_DATA_DIR", dir.path().join("data"))
        .env("DW_ADMIN_PASSWORD_FILE", &file)
        .env_remove("DW_ADMIN_PASSWORD")
        .env("DW_DOCKER_HOST", "unix:///nonexistent/docker.sock")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("start the daemon");
    let client = reqwest::Client::new();
    let deadline = Instant::now() + Duration::from_secs(30);
    let status = loop {
        let login = client
            .post(format!("http://127.0.0.1:{port}/api/auth/login"))
            .json(&json!({ "username": "admin", "password": "password-from-a-file" }))
            .send()
            .await;
        match login {
            Ok(response) => break response.status().as_u16(),
            Err(_) if Instant::now() < deadline => {
                tokio::time::sleep(Duration::from_millis(100)).await
            }
            Err(e) => panic!("the daemon did not start: {e}"),
        }
    };
    let _ = child.kill();
    let _ = child.wait();
    assert_eq!(
        status, 200,
        "signs in with the file's password, its newline dropped"
    );
}

#[test]
fn both_the_variable_and_its_file_stop_the_daemon_with_a_reason() {
    let dir = tempfile::tempdir().expect("temp dir");
    let file = dir.path().join("admin_password");
    std::fs::write(&file, "pw").expect("write");
    let output = Command::new(env!("CARGO_BIN_EXE_docker-watcher"))
        .arg("serve")
        .env("DW_LISTEN", format!("127.0.0.1:{}", free_port()))
        .env("DW_DATA_DIR", dir.path().join("data"))
        .env("DW_ADMIN_PASSWORD", "pw")
        .env("DW_ADMIN_PASSWORD_FILE", &file)
        .stdin(Stdio::null())
        .output()
        .expect("run the daemon");
    assert_eq!(output.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("DW_ADMIN_PASSWORD and DW_ADMIN_PASSWORD_FILE are both set"),
        "{stderr}"
    );
    assert!(!dir.path().join("data").exists(), "nothing was created");
}
