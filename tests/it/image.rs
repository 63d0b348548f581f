//! The container image (`./dev image`, `DW_TEST_IMAGE`) in the real Docker Engine, run
//! the way the README says: the Docker socket mounted, a named volume on /data, the
//! image's non-root user given the socket's group, the admin password from a file.
//!
//! On the host's network every request of the test stays on 127.0.0.1: it starts healthy
//! by its own HEALTHCHECK, a webhook makes it deploy a sibling container from a per-test
//! registry, it health-checks that on its 127.0.0.1 port and routes it through Caddy on
//! the host, and a restart of its container keeps all of it. On Docker's default bridge
//! it listens on 0.0.0.0:8080 (reached through a port published on 127.0.0.1) and says
//! what to set to reach containers; with `DW_NETWORK` it joins that network.
//!
//! `./dev test` builds the image first and runs these with the nextest profile `image`;
//! without the image they fail, never pass unrun.

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use serde_json::{Value, json};

use docker_watcher::docker::labels;

use crate::support::app::Api;
use crate::support::caddy::TestCaddy;
use crate::support::containers::TestScope;
use crate::support::project_cli::create_named_project;
use crate::support::registry::TestRegistry;
use crate::support::{
    HEALTHY_IMAGE, TEST_LABEL, docker_cli, free_port, remove_containers_labelled,
    remove_images_with_prefix, require_docker, unique_name,
};

const PASSWORD: &str = "image-test-admin-password";
const BASE_DOMAIN: &str = "image.test";

#[tokio::test]
async fn the_image_deploys_routes_and_survives_a_restart_on_the_host_network() {
    let image = image_under_test();
    let registry = TestRegistry::start().await;
    let caddy = TestCaddy::start().await;
    let project = unique_name("img");
    // Dropped in reverse: docker-watcher's container first, then what it deployed and pulled.
    let _pulled = Cleanup::images(format!("{}/", registry.host()));
    let _deployed = Cleanup::containers(labels::PROJECT, &project);
    let env = Environment::new("img");

    let port = free_port();
    let public_url = format!("http://localhost:{port}");
    let (dw, started) = env
        .start(
            &["--network", "host"],
            &[
                &format!("DW_LISTEN=127.0.0.1:{port}"),
                &format!("DW_PUBLIC_URL={public_url}"),
            ],
            &image,
        )
        .await;
    let logs = container_logs(&dw);
    assert!(
        logs.contains("running in a container on the host's network"),
        "the start says what it detected:\n{logs}"
    );
    let address = format!("http://127.0.0.1:{port}");
    let api = login(&address).await;

    // The webhook URL is made from DW_PUBLIC_URL, not from the listen address.
    let (status, webhook) = api.get("/api/settings/webhook").await;
    assert_eq!(status, 200, "{webhook}");
    let webhook_url = webhook["url"].as_str().expect("webhook url").to_string();
    assert!(
        webhook_url.starts_with(&format!("{public_url}/api/webhook/")),
        "{webhook_url}"
    );

    let (status, body) = api
        .put(
            "/api/settings",
            json!({ "base_domain": BASE_DOMAIN, "proxy_kind": "caddy",
                    "proxy_url": caddy.admin_url(), "proxy_listen": caddy.listen_addr(),
                    "health_interval_ms": 200, "health_timeout_ms": 2000,
                    "health_retries": 3, "health_start_period_ms": 5000 }),
        )
        .await;
    assert_eq!(status, 200, "settings: {body}");
    let repository = unique_name("image/app");
    let (created, stages) = create_named_project(
        &api,
        &project,
        &registry,
        &repository,
        &[("dev", json!({ "tag_pattern": "v*", "auto_deploy": true }))],
    )
    .await;
    let stage = &stages[0];

    registry.push(HEALTHY_IMAGE, &repository, "v1").await;
    let response = reqwest::Client::new()
        .post(&webhook_url)
        .json(&json!({ "image": registry.image(&repository, "v1") }))
        .send()
        .await
        .expect("webhook");
    assert!(response.status().is_success(), "{response:?}");
    let instance = deployed_instance(&api, &created, stage).await;
    let container_id = instance["container_id"]
        .as_str()
        .expect("container")
        .to_string();
    assert!(
        instance["upstream"]
            .as_str()
            .is_some_and(|u| u.starts_with("127.0.0.1:")),
        "reached on its 127.0.0.1 port: {instance}"
    );
    let stage_domain = format!("stage-dev-{project}.{BASE_DOMAIN}");
    assert_serves(&caddy, &stage_domain, &container_id).await;

    // A restart of docker-watcher's container: same volume, same instance, no orphan.
    docker(&["restart", &dw]);
    wait_healthy(&dw, Some(started)).await;
    let api = login(&address).await;
    let after = only_running_instance(&api, stage).await;
    assert_eq!(after["id"], instance["id"], "{after}");
    assert_eq!(after["container_id"], instance["container_id"], "{after}");
    let (_, deploys) = api
        .get(&format!("/api/deploys?project_id={}", created["id"]))
        .await;
    assert_eq!(
        deploys["deploys"].as_array().map(Vec::len),
        Some(1),
        "{deploys}"
    );
    let installation = container_label(&container_id, labels::INSTALLATION);
    let ours = containers_labelled(labels::INSTALLATION, &installation);
    assert_eq!(
        ours,
        vec![container_id.clone()],
        "exactly the deployed container"
    );
    assert_eq!(
        volumes_of(&dw),
        vec![(env.volume.clone(), "/data".to_string())]
    );
    assert_serves(&caddy, &stage_domain, &container_id).await;
    docker(&["stop", "-t", "10", &dw]);
    assert!(
        container_logs(&dw).contains("stopped"),
        "a graceful stop:\n{}",
        container_logs(&dw)
    );
}

#[tokio::test]
async fn on_the_default_bridge_it_listens_everywhere_and_says_what_to_set() {
    let image = image_under_test();
    let env = Environment::new("imgbr");
    // Healthy by its own HEALTHCHECK, which reads the same default (0.0.0.0:8080).
    let (dw, _) = env.start(&["-p", "127.0.0.1::8080"], &[], &image).await;
    let published = published_port(&dw);
    let health: Value = reqwest::get(format!("http://127.0.0.1:{published}/healthz"))
        .await
        .expect("healthz through the published port")
        .json()
        .await
        .expect("healthz JSON");
    assert_eq!(health["status"], "ok", "{health}");
    assert_eq!(health["docker"]["ok"], true, "reaches the socket: {health}");
    let logs = container_logs(&dw);
    assert!(
        logs.contains("listening on http://0.0.0.0:8080"),
        "container default listen address:\n{logs}"
    );
    assert!(
        logs.contains("DW_NETWORK"),
        "says what to set on the default bridge:\n{logs}"
    );
    assert!(
        logs.contains("DW_PUBLIC_URL is not set"),
        "says the webhook URL needs DW_PUBLIC_URL:\n{logs}"
    );
    assert_eq!(container_user(&dw), "10001:10001", "not root");
    assert!(
        !logs.contains("may read it"),
        "the image's /data is the user's and 0700:\n{logs}"
    );
}

#[tokio::test]
async fn with_dw_network_it_joins_that_network_and_reaches_containers_there() {
    let image = image_under_test();
    // The daemon creates the network; it goes after the containers (dropped before it).
    let network = unique_name("imgnet-net");
    let _network = Cleanup::network(&network);
    let registry = TestRegistry::start().await;
    let project = unique_name("imgnet");
    let _pulled = Cleanup::images(format!("{}/", registry.host()));
    let _deployed = Cleanup::containers(labels::PROJECT, &project);
    let env = Environment::new("imgnet");
    let (dw, _) = env
        .start(
            &["-p", "127.0.0.1::8080"],
            &[&format!("DW_NETWORK={network}")],
            &image,
        )
        .await;
    let networks = networks_of(&dw);
    assert!(
        networks.split_whitespace().any(|n| n == network),
        "joined {network}: {networks}"
    );
    let api = login(&format!("http://127.0.0.1:{}", published_port(&dw))).await;
    let (_, settings) = api.get("/api/settings").await;
    assert_eq!(settings["reachability"], "network", "{settings}");
    assert_eq!(settings["reach_network"], network.as_str(), "{settings}");
    let logs = container_logs(&dw);
    assert!(
        logs.contains(&format!("running in a container on network {network}")),
        "{logs}"
    );

    // A deploy: the sibling joins the network and docker-watcher health-checks it there
    // by name (from its container; the test itself only talks to 127.0.0.1).
    let repository = unique_name("image/net");
    registry.push(HEALTHY_IMAGE, &repository, "v1").await;
    let (status, body) = api
        .put(
            "/api/settings",
            json!({ "health_interval_ms": 200, "health_timeout_ms": 2000,
                    "health_retries": 3, "health_start_period_ms": 5000 }),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    let (created, stages) = create_named_project(
        &api,
        &project,
        &registry,
        &repository,
        &[("dev", json!({}))],
    )
    .await;
    let stage = &stages[0];
    let (status, body) = api
        .post(
            &format!("/api/stages/{}/deploys", stage["id"]),
            json!({ "tag": "v1" }),
        )
        .await;
    assert_eq!(status, 202, "{body}");
    let instance = deployed_instance(&api, &created, stage).await;
    let name = instance["container_name"].as_str().expect("name");
    assert_eq!(
        instance["upstream"],
        format!("{name}:8080"),
        "by name: {instance}"
    );
    let sibling_networks = networks_of(name);
    assert_eq!(
        sibling_networks.trim(),
        network,
        "the sibling is on {network} only"
    );
}

/// The image to test: `DW_TEST_IMAGE`, else `docker-watcher:latest`. Missing is a
/// failure under CI and anywhere else: build it with `./dev image`.
fn image_under_test() -> String {
    require_docker();
    let image = std::env::var("DW_TEST_IMAGE").unwrap_or_else(|_| "docker-watcher:latest".into());
    let found = Command::new(docker_cli())
        .args(["image", "inspect", &image])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    assert!(
        found,
        "the image {image} is missing (CI={}): build it with `./dev image` (./dev test does)",
        std::env::var("CI").unwrap_or_default()
    );
    image
}

/// What every run of the image gets: the test label, the socket and its group, a volume
/// of its own on /data, and the admin password as a file (DW_ADMIN_PASSWORD_FILE).
struct Environment {
    // Dropped in order: the containers (scope), then the volume, then the password file.
    scope: TestScope,
    _volume: Cleanup,
    volume: String,
    secret: tempfile::TempDir,
}

impl Environment {
    fn new(prefix: &str) -> Environment {
        require_docker();
        let scope = TestScope::new(prefix);
        let volume = scope.name("data");
        docker(&[
            "volume",
            "create",
            "--label",
            &format!("{TEST_LABEL}={}", scope.value),
            &volume,
        ]);
        let secret = tempfile::tempdir().expect("temp dir");
        let file = secret.path().join("admin_password");
        // As `echo … > file` writes it: the trailing newline is not part of the password.
        std::fs::write(&file, format!("{PASSWORD}\n")).expect("password file");
        // The image's user (10001) reads it through the bind mount.
        std::fs::set_permissions(&file, std::os::unix::fs::PermissionsExt::from_mode(0o644))
            .expect("chmod");
        Environment {
            _volume: Cleanup::volume(&volume),
            scope,
            volume,
            secret,
        }
    }

    /// Runs `image` as this environment's docker-watcher container (see [`Self::run`])
    /// and waits until its own HEALTHCHECK passes; its name and when it started.
    async fn start(&self, options: &[&str], env: &[&str], image: &str) -> (String, DateTime<Utc>) {
        let name = self.scope.name("dw");
        let mut all = vec!["--name", name.as_str()];
        all.extend_from_slice(options);
        self.run(&all, env, image);
        let started = wait_healthy(&name, None).await;
        (name, started)
    }

    /// `docker run -d` of `image` with `options`, this environment and `env` (`NAME=value`).
    fn run(&self, options: &[&str], env: &[&str], image: &str) {
        let socket_group = std::fs::metadata("/var/run/docker.sock")
            .map(|m| std::os::unix::fs::MetadataExt::gid(&m))
            .expect("the Docker socket");
        let mut args: Vec<String> = vec!["run".into(), "-d".into()];
        args.extend(options.iter().map(|o| o.to_string()));
        args.extend([
            "--label".into(),
            format!("{TEST_LABEL}={}", self.scope.value),
            "-v".into(),
            "/var/run/docker.sock:/var/run/docker.sock".into(),
            "--group-add".into(),
            socket_group.to_string(),
            "-v".into(),
            format!("{}:/data", self.volume),
            "-v".into(),
            format!(
                "{}:/run/secrets/admin_password:ro",
                self.secret.path().join("admin_password").display()
            ),
            "-e".into(),
            "DW_ADMIN_PASSWORD_FILE=/run/secrets/admin_password".into(),
        ]);
        for variable in env {
            args.extend(["-e".to_string(), variable.to_string()]);
        }
        args.push(image.to_string());
        docker(&args);
    }
}

/// `docker args…`, which must succeed; its trimmed stdout.
fn docker<S: AsRef<str>>(args: &[S]) -> String {
    let args: Vec<&str> = args.iter().map(AsRef::as_ref).collect();
    let output = Command::new(docker_cli())
        .args(&args)
        .stdin(Stdio::null())
        .output()
        .expect("run docker");
    assert!(
        output.status.success(),
        "docker {}: {}",
        args.join(" "),
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8_lossy(&output.stdout).trim().to_string()
}

fn inspect(container: &str) -> Value {
    let text = docker(&["inspect", container]);
    let all: Value = serde_json::from_str(&text).expect("docker inspect JSON");
    all[0].clone()
}

fn time(value: &Value) -> DateTime<Utc> {
    value
        .as_str()
        .and_then(|t| DateTime::parse_from_rfc3339(t).ok())
        .map(|t| t.with_timezone(&Utc))
        .unwrap_or_else(|| panic!("not a time: {value}"))
}

/// Waits (bounded) until the image's own HEALTHCHECK has passed in the container's
/// current run (started after `previous_start`, when given); returns that start.
async fn wait_healthy(container: &str, previous_start: Option<DateTime<Utc>>) -> DateTime<Utc> {
    let deadline = Instant::now() + Duration::from_secs(90);
    loop {
        let state = inspect(container)["State"].clone();
        assert_eq!(
            state["Running"],
            true,
            "{container} stopped: {state}\n{}",
            container_logs(container)
        );
        let started = time(&state["StartedAt"]);
        let passed = state["Health"]["Log"]
            .as_array()
            .and_then(|log| log.last())
            .is_some_and(|last| last["ExitCode"] == 0 && time(&last["Start"]) > started);
        if previous_start.is_none_or(|p| started > p)
            && state["Health"]["Status"] == "healthy"
            && passed
        {
            return started;
        }
        assert!(
            Instant::now() < deadline,
            "{container} not healthy: {}\n{}",
            state["Health"],
            container_logs(container)
        );
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}

fn container_logs(container: &str) -> String {
    let output = Command::new(docker_cli())
        .args(["logs", container])
        .output()
        .expect("docker logs");
    format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    )
}

fn container_user(container: &str) -> String {
    inspect(container)["Config"]["User"]
        .as_str()
        .unwrap_or_default()
        .to_string()
}

fn container_label(container: &str, label: &str) -> String {
    inspect(container)["Config"]["Labels"][label]
        .as_str()
        .unwrap_or_else(|| panic!("{container} has no label {label}"))
        .to_string()
}

fn published_port(container: &str) -> u16 {
    inspect(container)["NetworkSettings"]["Ports"]["8080/tcp"][0]["HostPort"]
        .as_str()
        .and_then(|p| p.parse().ok())
        .unwrap_or_else(|| panic!("{container} publishes no port for 8080"))
}

/// The full ids of every container (running or not) with `label=value`.
fn containers_labelled(label: &str, value: &str) -> Vec<String> {
    let ids = docker(&[
        "ps",
        "-aq",
        "--no-trunc",
        "--filter",
        &format!("label={label}={value}"),
    ]);
    ids.split_whitespace().map(str::to_string).collect()
}

/// (volume name, mount point) of every volume mounted in `container`.
fn volumes_of(container: &str) -> Vec<(String, String)> {
    inspect(container)["Mounts"]
        .as_array()
        .expect("mounts")
        .iter()
        .filter(|m| m["Type"] == "volume")
        .map(|m| {
            (
                m["Name"].as_str().unwrap_or_default().to_string(),
                m["Destination"].as_str().unwrap_or_default().to_string(),
            )
        })
        .collect()
}

/// Signs in as admin with the password from the file; an API client with the token.
async fn login(address: &str) -> Api {
    let client = reqwest::Client::new();
    let response = client
        .post(format!("{address}/api/auth/login"))
        .json(&json!({ "username": "admin", "password": PASSWORD }))
        .send()
        .await
        .expect("login");
    assert_eq!(
        response.status(),
        200,
        "login with the password from the file"
    );
    let body: Value = response.json().await.expect("login JSON");
    Api {
        address: address.to_string(),
        client,
        token: body["token"].as_str().map(str::to_string),
        seen: Default::default(),
    }
}

async fn wait_deploy_final(api: &Api, project_id: i64) -> Value {
    let deadline = Instant::now() + Duration::from_secs(90);
    loop {
        let (status, deploys) = api
            .get(&format!("/api/deploys?project_id={project_id}"))
            .await;
        assert_eq!(status, 200, "{deploys}");
        if let Some(deploy) = deploys["deploys"].as_array().and_then(|d| d.first())
            && deploy["finished"] == true
        {
            return deploy.clone();
        }
        assert!(Instant::now() < deadline, "no final deploy: {deploys}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// The networks a container is on, space-separated.
fn networks_of(container: &str) -> String {
    docker(&[
        "inspect",
        "--format",
        "{{range $name, $_ := .NetworkSettings.Networks}}{{$name}} {{end}}",
        container,
    ])
}

/// Waits for the project's deploy to end, which must be a success; the stage's instance.
async fn deployed_instance(api: &Api, project: &Value, stage: &Value) -> Value {
    let deploy = wait_deploy_final(api, project["id"].as_i64().expect("id")).await;
    assert_eq!(deploy["status"], "success", "{deploy}");
    only_running_instance(api, stage).await
}

async fn only_running_instance(api: &Api, stage: &Value) -> Value {
    let (status, instances) = api
        .get(&format!("/api/stages/{}/instances", stage["id"]))
        .await;
    assert_eq!(status, 200, "{instances}");
    let running: Vec<&Value> = instances
        .as_array()
        .expect("instances")
        .iter()
        .filter(|i| i["status"] == "running")
        .collect();
    assert_eq!(running.len(), 1, "{instances}");
    running[0].clone()
}

/// The stage's domain, through Caddy's listener on 127.0.0.1, answers from the container
/// (`/id` is its short id).
async fn assert_serves(caddy: &TestCaddy, domain: &str, container_id: &str) {
    let (status, body) = caddy.get(domain, "/id").await;
    assert_eq!(status, 200, "{domain} through Caddy: {body}");
    assert_eq!(
        body.trim(),
        &container_id[..12],
        "{domain} is served by the deployed container"
    );
}

/// Removes what a test made that a [`TestScope`] does not cover, when dropped.
enum Cleanup {
    Containers(String, String),
    Images(String),
    Volume(String),
    Network(String),
}

impl Cleanup {
    fn containers(label: &str, value: &str) -> Cleanup {
        Cleanup::Containers(label.into(), value.into())
    }
    fn images(prefix: String) -> Cleanup {
        Cleanup::Images(prefix)
    }
    fn volume(name: &str) -> Cleanup {
        Cleanup::Volume(name.into())
    }
    fn network(name: &str) -> Cleanup {
        Cleanup::Network(name.into())
    }
}

impl Drop for Cleanup {
    fn drop(&mut self) {
        let quiet = |args: &[&str]| {
            let _ = Command::new(docker_cli())
                .args(args)
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .status();
        };
        match self {
            Cleanup::Containers(label, value) => remove_containers_labelled(label, value),
            Cleanup::Images(prefix) => remove_images_with_prefix(prefix),
            Cleanup::Volume(name) => quiet(&["volume", "rm", "-f", name]),
            Cleanup::Network(name) => quiet(&["network", "rm", name]),
        }
    }
}
