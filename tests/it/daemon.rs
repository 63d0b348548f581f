//! The daemon as a user meets it: starts with no configuration, answers /healthz, keeps
//! its key private, survives a stopped Docker, and stops cleanly on a signal.

use std::os::unix::fs::PermissionsExt;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use crate::support::app::{AppOptions, spawn_app, spawn_app_with};
use crate::support::{free_port, require_docker};

#[tokio::test]
async fn healthz_reports_store_and_docker_version() {
    require_docker();
    let app = spawn_app().await;
    let (status, body) = app.healthz().await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["status"], "ok", "{body}");
    assert_eq!(body["store"]["ok"], true);
    assert_eq!(body["docker"]["ok"], true, "{body}");
    assert!(
        body["docker"]["version"]
            .as_str()
            .is_some_and(|v| !v.is_empty()),
        "{body}"
    );
    app.shutdown().await;
}

#[tokio::test]
async fn starts_and_says_so_when_docker_is_unreachable() {
    let app = spawn_app_with(AppOptions {
        docker_host: Some("unix:///nonexistent/docker.sock".into()),
        ..Default::default()
    })
    .await;
    let (status, body) = app.healthz().await;
    assert_eq!(status, 200, "the daemon itself is up: {body}");
    assert_eq!(body["status"], "degraded");
    assert_eq!(body["docker"]["ok"], false);
    assert!(
        body["docker"]["error"]
            .as_str()
            .unwrap()
            .contains("unreachable"),
        "{body}"
    );
    app.shutdown().await;
}

#[tokio::test]
async fn unknown_api_paths_answer_404_json_and_page_paths_the_web_ui() {
    let app = spawn_app().await;
    for path in ["/api/no/such/path", "/api", "/_app/immutable/missing.js"] {
        let response = app.get(path).await;
        assert_eq!(response.status(), 404, "{path}");
        assert_eq!(
            response.text().await.unwrap(),
            r#"{"error":"not found"}"#,
            "{path}"
        );
    }
    // The single-page app routes on the client: every page path gets its shell.
    let response = app.get("/projects/7").await;
    assert_eq!(response.status(), 200);
    assert_eq!(response.headers()["content-type"], "text/html");
    assert!(
        response.text().await.unwrap().contains("<!doctype html>"),
        "the UI's index.html"
    );
    app.shutdown().await;
}

#[tokio::test]
async fn first_start_generates_the_webhook_secret_once() {
    let app = spawn_app().await;
    let secret = app
        .store()
        .webhook_secret()
        .unwrap()
        .expect("generated on first start");
    assert_eq!(secret.len(), 36);
    app.shutdown().await;
}

#[tokio::test]
async fn a_second_daemon_on_the_same_data_folder_is_refused() {
    let app = spawn_app().await;
    let config = docker_watcher::config::Config {
        listen: "127.0.0.1:0".parse().unwrap(),
        data_dir: app.data_dir.path().join("data"),
        ..Default::default()
    };
    let err = docker_watcher::daemon::start(config)
        .await
        .err()
        .expect("refused");
    assert!(format!("{err:#}").contains("in use by another"), "{err:#}");
    app.shutdown().await;
}

/// The README's command, as a user runs it: no configuration, from an empty folder.
#[tokio::test]
async fn binary_serves_with_defaults_and_stops_cleanly_on_sigterm() {
    require_docker();
    let cwd = tempfile::tempdir().unwrap();
    let port = free_port();
    let mut child = Command::new(env!("CARGO_BIN_EXE_docker-watcher"))
        .arg("serve")
        // The default port may be taken on a shared machine; everything else is default.
        .env("DW_LISTEN", format!("127.0.0.1:{port}"))
        .current_dir(cwd.path())
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let url = format!("http://127.0.0.1:{port}/healthz");
    let deadline = Instant::now() + Duration::from_secs(20);
    let body: serde_json::Value = loop {
        if let Ok(response) = reqwest::get(&url).await {
            break response.json().await.unwrap();
        }
        assert!(Instant::now() < deadline, "daemon did not answer /healthz");
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert_eq!(body["docker"]["ok"], true, "{body}");

    let data = cwd.path().join("data");
    assert!(data.join(docker_watcher::store::DATABASE_FILE).exists());
    let key_mode = std::fs::metadata(data.join("master.key"))
        .unwrap()
        .permissions()
        .mode()
        & 0o777;
    assert_eq!(key_mode, 0o600);

    let _ = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status();
    let deadline = Instant::now() + Duration::from_secs(10);
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        assert!(Instant::now() < deadline, "daemon did not stop on SIGTERM");
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    let output = child.wait_with_output().unwrap();
    let log = String::from_utf8_lossy(&output.stderr);
    assert!(status.success(), "exit {status:?}; log:\n{log}");
    assert!(
        log.contains("/api/webhook/"),
        "the first start logs the webhook URL:\n{log}"
    );
    assert!(log.contains("stopped"), "{log}");
}

#[test]
fn refuses_a_key_file_readable_by_others() {
    let cwd = tempfile::tempdir().unwrap();
    let data = cwd.path().join("data");
    std::fs::create_dir_all(&data).unwrap();
    let key = docker_watcher::crypto::KeyFile::new(data.join("master.key"));
    key.load_or_create().unwrap();
    std::fs::set_permissions(key.path(), std::fs::Permissions::from_mode(0o644)).unwrap();
    let output = Command::new(env!("CARGO_BIN_EXE_docker-watcher"))
        .args(["serve", "--listen", "127.0.0.1:0"])
        .current_dir(cwd.path())
        .stdin(Stdio::null())
        .output()
        .unwrap();
    assert!(!output.status.success());
    let log = String::from_utf8_lossy(&output.stderr);
    assert!(log.contains("chmod 600"), "{log}");
}

#[test]
fn bad_configuration_is_an_error_naming_the_key() {
    let output = Command::new(env!("CARGO_BIN_EXE_docker-watcher"))
        .arg("serve")
        .env("DW_LOG_FORMAT", "yaml")
        .stdin(Stdio::null())
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(2));
    let message = String::from_utf8_lossy(&output.stderr);
    assert!(message.to_lowercase().contains("log_format"), "{message}");
}

/// A SIGTERM while the daemon is still starting (an orchestrator stopping it at once) ends
/// it gracefully: it used to kill it, since the handlers were installed only once the
/// start was over.
#[tokio::test]
async fn a_sigterm_while_starting_stops_the_daemon_gracefully() {
    use std::io::BufRead;
    require_docker();
    let cwd = tempfile::tempdir().unwrap();
    let mut child = Command::new(env!("CARGO_BIN_EXE_docker-watcher"))
        .arg("serve")
        .env("DW_LISTEN", format!("127.0.0.1:{}", free_port()))
        .current_dir(cwd.path())
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // The first log line is written while the data folder is set up, well before the
    // daemon serves.
    let mut stderr = std::io::BufReader::new(child.stderr.take().unwrap());
    let mut first = String::new();
    stderr.read_line(&mut first).unwrap();
    let _ = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status();
    let mut rest = String::new();
    std::io::Read::read_to_string(&mut stderr, &mut rest).unwrap();
    let status = child.wait().unwrap();
    assert!(status.success(), "exit {status:?}; log:\n{first}{rest}");
    assert!(rest.contains("stopped"), "{first}{rest}");
}
