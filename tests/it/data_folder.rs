//! The data folder's permissions, as the binary leaves them under a permissive umask: the
//! folder 0700 and every file in it 0600, and a warning at start when they are wider.

use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use crate::support::free_port;

fn mode(path: &Path) -> u32 {
    std::fs::metadata(path)
        .unwrap_or_else(|e| panic!("{}: {e}", path.display()))
        .permissions()
        .mode()
        & 0o777
}

/// Runs `serve` under `umask 000` on `data`, waits until it answers, signs in once (a
/// write, so the WAL exists), calls `check` while it runs, stops it, and returns its log.
async fn run_once(data: &Path, check: impl FnOnce()) -> String {
    let port = free_port();
    let child = Command::new("sh")
        .args([
            "-c",
            "umask 000 && exec \"$0\" serve",
            env!("CARGO_BIN_EXE_docker-watcher"),
        ])
        .env("DW_LISTEN", format!("127.0.0.1:{port}"))
        .env("DW_DATA_DIR", data)
        .env("DW_ADMIN_PASSWORD", "a-long-enough-password")
        // Docker does not matter here; an unreachable one keeps the test quick.
        .env("DW_DOCKER_HOST", "unix:///nonexistent/docker.sock")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let base = format!("http://127.0.0.1:{port}");
    let deadline = Instant::now() + Duration::from_secs(20);
    while reqwest::get(format!("{base}/healthz")).await.is_err() {
        assert!(Instant::now() < deadline, "daemon did not answer /healthz");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let login = reqwest::Client::new()
        .post(format!("{base}/api/auth/login"))
        .json(&serde_json::json!({"username": "admin", "password": "a-long-enough-password"}))
        .send()
        .await
        .unwrap();
    assert_eq!(login.status(), 200);
    // Modes are read while the daemon runs: the WAL and shared-memory files exist now.
    check();
    let _ = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status();
    let output = child.wait_with_output().unwrap();
    String::from_utf8_lossy(&output.stderr).to_string()
}

#[tokio::test]
async fn the_data_folder_is_private_under_a_permissive_umask_and_wider_modes_are_warned_about() {
    let root = tempfile::tempdir().unwrap();
    let data = root.path().join("data");
    let log = run_once(&data, || {
        assert_eq!(mode(&data), 0o700, "data folder");
        let names: Vec<String> = std::fs::read_dir(&data)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().to_string())
            .collect();
        for expected in [
            "docker-watcher.db",
            "docker-watcher.db-wal",
            "docker-watcher.db-shm",
            "master.key",
            "docker-watcher.lock",
        ] {
            assert!(
                names.iter().any(|n| n == expected),
                "{expected} in {names:?}"
            );
        }
        for name in &names {
            assert_eq!(mode(&data.join(name)), 0o600, "{name}");
        }
    })
    .await;
    assert!(!log.contains("other users on this host"), "{log}");

    // Made wider by hand (or by an older version): the daemon still starts, and says so.
    std::fs::set_permissions(&data, std::fs::Permissions::from_mode(0o755)).unwrap();
    let database = data.join("docker-watcher.db");
    std::fs::set_permissions(&database, std::fs::Permissions::from_mode(0o644)).unwrap();
    let log = run_once(&data, || {}).await;
    assert!(
        log.contains(&format!("{} has mode 755", data.display())) && log.contains("chmod 700"),
        "{log}"
    );
    assert!(
        log.contains(&format!("{} has mode 644", database.display())) && log.contains("chmod 600"),
        "{log}"
    );
}
