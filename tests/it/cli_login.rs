//! The command line signs in like `gh auth login`: `login` asks for the password on a
//! real pseudo-terminal, saves a token named after the host (0600) in the config folder,
//! and `status`, `deploy --follow` and `instances` then work without `--token`; `logout`
//! revokes the token and forgets it.

use std::os::unix::fs::PermissionsExt;
use std::path::Path;

use rexpect::process::WaitStatus;
use serde_json::Value;

use crate::api_deploy::setup;
use crate::support::app::ADMIN_PASSWORD;
use crate::support::project_cli::describe as text;

const BIN: &str = env!("CARGO_BIN_EXE_docker-watcher");

/// The CLI with `config` as its config folder and no token or server in the environment.
fn cli(config: &Path, args: &[&str]) -> std::process::Command {
    let mut command = std::process::Command::new(BIN);
    command
        .args(args)
        .env("XDG_CONFIG_HOME", config)
        .env("HOME", config)
        .env_remove("DW_TOKEN")
        .env_remove("DW_SERVER");
    command
}

/// Runs the CLI off the async runtime (the daemon under test runs on it).
async fn run(config: &Path, args: &[&str]) -> std::process::Output {
    let mut command = cli(config, args);
    tokio::task::spawn_blocking(move || command.output().unwrap())
        .await
        .unwrap()
}

/// `login` on a pseudo-terminal: waits for the password prompt, types the password
/// (which the terminal must not echo) and returns what was printed and the exit status.
async fn login_on_a_terminal(config: &Path, server: &str, password: &str) -> (String, WaitStatus) {
    let command = cli(config, &["login", "--server", server]);
    let password = password.to_string();
    tokio::task::spawn_blocking(move || {
        let mut session = rexpect::session::spawn_command(command, Some(60_000)).unwrap();
        let prompt = session.exp_string("Password for admin at").unwrap();
        session.exp_string(": ").unwrap();
        session.send_line(&password).unwrap();
        let rest = session.exp_eof().unwrap();
        let status = session.process().wait().unwrap();
        (format!("{prompt}{rest}"), status)
    })
    .await
    .unwrap()
}

#[tokio::test]
async fn login_on_a_terminal_then_status_deploy_and_logout_use_the_saved_token() {
    let s = setup().await;
    let config = tempfile::tempdir().unwrap();
    let project = s.project["name"].as_str().unwrap().to_string();

    // A wrong password: refused, nothing saved.
    let (printed, status) = login_on_a_terminal(config.path(), &s.app.address, "wrong").await;
    assert!(
        matches!(status, WaitStatus::Exited(_, 1)),
        "{status:?}: {printed}"
    );
    assert!(printed.contains("wrong username or password"), "{printed}");
    let saved = config.path().join("docker-watcher/credentials.json");
    assert!(!saved.exists());

    let (printed, status) =
        login_on_a_terminal(config.path(), &s.app.address, ADMIN_PASSWORD).await;
    assert!(
        matches!(status, WaitStatus::Exited(_, 0)),
        "{status:?}: {printed}"
    );
    assert!(
        !printed.contains(ADMIN_PASSWORD),
        "the password was echoed: {printed}"
    );
    assert!(printed.contains("signed in to"), "{printed}");
    let mode = std::fs::metadata(&saved).unwrap().permissions().mode();
    assert_eq!(mode & 0o777, 0o600, "{mode:o}");
    let credentials: Value =
        serde_json::from_str(&std::fs::read_to_string(&saved).unwrap()).unwrap();
    assert_eq!(credentials["server"], s.app.address.trim_end_matches('/'));
    let (_, tokens) = s.api.get("/api/auth/tokens").await;
    let name = credentials["token_name"].as_str().unwrap();
    assert!(name.starts_with("cli-"), "{name}");
    let token = tokens
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["name"] == name)
        .unwrap_or_else(|| panic!("{name} not in {tokens}"));
    assert_eq!(token["scope"], "admin");

    // No --token, no DW_TOKEN, no --server: the saved login is used.
    let output = run(config.path(), &["status"]).await;
    assert!(output.status.success(), "{}", text(&output));
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        stdout.contains(&project) && stdout.contains("never"),
        "{}",
        text(&output)
    );

    let output = run(
        config.path(),
        &["deploy", &project, "dev", "v1", "--follow"],
    )
    .await;
    assert!(output.status.success(), "{}", text(&output));
    assert!(
        String::from_utf8_lossy(&output.stdout).contains("v1 is live"),
        "{}",
        text(&output)
    );

    let output = run(config.path(), &["status"]).await;
    let stdout = String::from_utf8_lossy(&output.stdout);
    let row = stdout
        .lines()
        .find(|l| l.starts_with(&project))
        .unwrap_or_else(|| panic!("{}", text(&output)));
    for needle in ["dev", "v1", "running", "success"] {
        assert!(row.contains(needle), "{needle} not in {row}");
    }
    let output = run(config.path(), &["instances", "--project", &project]).await;
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        stdout
            .lines()
            .any(|l| l.contains(&format!("{project}/dev")) && l.contains("running")),
        "{}",
        text(&output)
    );

    // A --server other than the one signed in to is not sent the saved token.
    let output = run(config.path(), &["status", "--server", "http://127.0.0.1:9"]).await;
    assert!(!output.status.success());
    assert!(
        String::from_utf8_lossy(&output.stderr).contains("not http://127.0.0.1:9"),
        "{}",
        text(&output)
    );

    let output = run(config.path(), &["logout"]).await;
    assert!(output.status.success(), "{}", text(&output));
    assert!(!saved.exists());
    let (_, tokens) = s.api.get("/api/auth/tokens").await;
    assert!(
        !tokens.as_array().unwrap().iter().any(|t| t["name"] == name),
        "{tokens}"
    );
    let output = run(config.path(), &["status"]).await;
    assert!(!output.status.success());
    assert!(
        String::from_utf8_lossy(&output.stderr).contains("not signed in"),
        "{}",
        text(&output)
    );
    s.app.shutdown().await;
}

#[tokio::test]
async fn login_reads_the_password_from_stdin_when_asked() {
    let s = setup().await;
    let config = tempfile::tempdir().unwrap();
    let address = s.app.address.clone();
    let path = config.path().to_path_buf();
    let output = tokio::task::spawn_blocking(move || {
        use std::io::Write;
        let mut child = cli(&path, &["login", "--server", &address, "--password-stdin"])
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        writeln!(child.stdin.take().unwrap(), "{ADMIN_PASSWORD}").unwrap();
        child.wait_with_output().unwrap()
    })
    .await
    .unwrap();
    assert!(output.status.success(), "{}", text(&output));
    let output = run(config.path(), &["instances"]).await;
    assert!(output.status.success(), "{}", text(&output));
    s.app.shutdown().await;
}

#[test]
fn completions_are_printed_for_bash_zsh_and_fish() {
    for (shell, marker) in [
        ("bash", "complete -F"),
        ("zsh", "#compdef docker-watcher"),
        ("fish", "complete -c docker-watcher"),
    ] {
        let output = std::process::Command::new(BIN)
            .args(["completions", shell])
            .output()
            .unwrap();
        assert!(output.status.success());
        let script = String::from_utf8_lossy(&output.stdout);
        assert!(script.contains(marker), "{shell}: {script}");
        assert!(
            script.contains("login") && script.contains("status"),
            "{shell}"
        );
    }
}
