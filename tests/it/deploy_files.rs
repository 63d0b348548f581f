//! The files in `deploy/` as the tools that read them see them: the compose files through
//! Debian's `docker-compose` (1.29) `config`, the systemd unit through `systemd-analyze
//! verify` and `security`, and the example configuration through the daemon's own loader.

use std::path::{Path, PathBuf};
use std::process::Command;

use docker_watcher::config::{Config, ConfigFlags};
use docker_watcher::placement::Placement;

fn deploy_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("deploy")
}

/// `program args…` in `dir` with `env`; (success, stdout + stderr). A missing program is
/// a failure: `./dev services` installs them.
fn run(program: &str, args: &[&str], dir: &Path, env: &[(&str, &str)]) -> (bool, String) {
    let output = Command::new(program)
        .args(args)
        .current_dir(dir)
        .env_remove("DOCKER_GID")
        .env_remove("DW_PUBLIC_URL")
        .envs(env.iter().copied())
        .output()
        .unwrap_or_else(|e| panic!("cannot run {program} ({e}): run ./dev services to install it"));
    (
        output.status.success(),
        format!(
            "{}{}",
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        ),
    )
}

/// The compose files in a folder of their own, beside the password file they name.
fn compose_folder() -> tempfile::TempDir {
    let dir = tempfile::tempdir().expect("temp dir");
    for file in ["compose.yaml", "compose.caddy.yaml"] {
        std::fs::copy(deploy_dir().join(file), dir.path().join(file)).expect("copy");
    }
    std::fs::write(dir.path().join("admin_password.txt"), "pw\n").expect("password file");
    dir
}

#[test]
fn the_compose_files_pass_docker_compose_config() {
    let dir = compose_folder();
    let env = [
        ("DOCKER_GID", "998"),
        ("DW_PUBLIC_URL", "https://deploy.example.com"),
    ];
    for file in ["compose.yaml", "compose.caddy.yaml"] {
        let (ok, out) = run("docker-compose", &["-f", file, "config"], dir.path(), &env);
        assert!(ok, "docker-compose -f {file} config:\n{out}");
        for expected in [
            "/var/run/docker.sock:/var/run/docker.sock",
            "data:/data",
            "DW_ADMIN_PASSWORD_FILE: /run/secrets/dw_admin_password",
            "DW_NETWORK: web",
            "'998'",
            "admin_password.txt",
        ] {
            assert!(out.contains(expected), "{file} lacks {expected}:\n{out}");
        }
    }
    let (_, caddy) = run(
        "docker-compose",
        &["-f", "compose.caddy.yaml", "config"],
        dir.path(),
        &env,
    );
    assert!(caddy.contains("CADDY_ADMIN: 0.0.0.0:2019"), "{caddy}");
}

#[test]
fn the_compose_files_say_what_is_missing() {
    let dir = compose_folder();
    let (ok, out) = run(
        "docker-compose",
        &["-f", "compose.yaml", "config", "-q"],
        dir.path(),
        &[],
    );
    assert!(!ok, "DOCKER_GID is required:\n{out}");
    assert!(out.contains("stat -c %g /var/run/docker.sock"), "{out}");
    let (ok, out) = run(
        "docker-compose",
        &["-f", "compose.caddy.yaml", "config", "-q"],
        dir.path(),
        &[("DOCKER_GID", "998")],
    );
    assert!(!ok, "DW_PUBLIC_URL is required with Caddy:\n{out}");
    assert!(out.contains("set DW_PUBLIC_URL"), "{out}");
}

#[test]
fn the_systemd_unit_verifies_and_is_hardened() {
    let unit = std::fs::read_to_string(deploy_dir().join("docker-watcher.service")).expect("unit");
    for expected in [
        "Requires=docker.service",
        "After=docker.service",
        "SupplementaryGroups=docker",
        "StateDirectory=docker-watcher",
        "DW_DATA_DIR=/var/lib/docker-watcher",
        "ProtectSystem=strict",
        "NoNewPrivileges=yes",
    ] {
        assert!(unit.contains(expected), "the unit lacks {expected}");
    }
    // verify wants ExecStart to exist: point it at the binary this build made.
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("docker-watcher.service");
    std::fs::write(
        &path,
        unit.replace(
            "/usr/local/bin/docker-watcher",
            env!("CARGO_BIN_EXE_docker-watcher"),
        ),
    )
    .expect("write unit");
    let file = path.to_str().expect("path");
    let (ok, out) = run("systemd-analyze", &["verify", file], dir.path(), &[]);
    assert!(
        ok && out.trim().is_empty(),
        "systemd-analyze verify:\n{out}"
    );
    let (_, out) = run(
        "systemd-analyze",
        &["security", "--offline=yes", file],
        dir.path(),
        &[],
    );
    let exposure: f64 = out
        .lines()
        .find_map(|line| {
            line.split("Overall exposure level for docker-watcher.service:")
                .nth(1)
        })
        .and_then(|rest| rest.split_whitespace().next())
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("no exposure level in:\n{out}"));
    // systemd rates 0–10; below 2 it calls "OK". The socket needs no capability at all.
    assert!(exposure < 2.0, "exposure {exposure}:\n{out}");
}

#[test]
fn the_example_config_names_every_key_and_loads() {
    let example =
        std::fs::read_to_string(deploy_dir().join("config.example.toml")).expect("example");
    let keys = serde_json::to_value(Config::default()).expect("config as JSON");
    for key in keys.as_object().expect("object").keys() {
        assert!(
            example.contains(&format!("\n#{key} = ")),
            "config.example.toml does not show `{key}`"
        );
    }
    // Every commented-out line, switched on, is a configuration the daemon takes.
    let uncommented: String = example
        .lines()
        .map(|line| match line.strip_prefix('#') {
            Some(rest) if rest.contains(" = ") => rest,
            _ => line,
        })
        .collect::<Vec<_>>()
        .join("\n");
    let dir = tempfile::tempdir().expect("temp dir");
    let file = dir.path().join("config.toml");
    std::fs::write(&file, uncommented).expect("write");
    let config = Config::load_for(
        &ConfigFlags {
            config: Some(file),
            ..Default::default()
        },
        Placement::Host,
    )
    .unwrap_or_else(|e| panic!("the example does not load: {e}"));
    assert_eq!(config.network.as_deref(), Some("web"));
    assert_eq!(config.max_connections, Config::default().max_connections);
    assert_eq!(
        config.header_timeout_secs,
        Config::default().header_timeout_secs
    );
}
