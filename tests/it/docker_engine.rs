//! `docker::Engine` on the real Docker Engine: pulls from a real local registry (with and
//! without auth), image inspection, the container lifecycle, labels, logs, networks.

use std::collections::BTreeMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use docker_watcher::docker::{
    BollardEngine, ContainerId, ContainerStatus, Engine, EngineError, PullProgress, RegistryAuth,
    RestartPolicy, labels,
};
use docker_watcher::health::{Reachability, upstream};

use crate::support::containers::{TestScope, docker_inspect, engine};
use crate::support::registry::{RegistryOptions, TestRegistry};
use crate::support::{CRASH_IMAGE, HEALTHY_IMAGE, TEST_LABEL, docker_cli, free_port, unique_name};

#[tokio::test]
async fn version_is_the_daemons() {
    let engine = engine();
    let version = engine.version().await.unwrap();
    let cli = std::process::Command::new(docker_cli())
        .args([
            "version",
            "--format",
            "{{.Server.APIVersion}} {{.Server.Version}}",
        ])
        .output()
        .unwrap();
    let expected = String::from_utf8_lossy(&cli.stdout).trim().to_string();
    assert_eq!(
        format!("{} {}", version.api_version, version.version),
        expected
    );
}

#[tokio::test]
async fn unreachable_daemon_is_reported_on_use_with_the_endpoint() {
    // Connecting must succeed, so the daemon can start while Docker is down.
    let engine = BollardEngine::connect(Some("unix:///nonexistent.sock")).unwrap();
    let error = engine.version().await.unwrap_err();
    assert!(
        matches!(error, EngineError::Unreachable { .. }),
        "{error:?}"
    );
    let message = error.to_string();
    assert!(
        message.contains("is dockerd running? DOCKER_HOST=unix:///nonexistent.sock"),
        "{message}"
    );
    // Every call says so, not just the first.
    let again = engine.list_containers(&[]).await.unwrap_err();
    assert!(
        matches!(again, EngineError::Unreachable { .. }),
        "{again:?}"
    );

    let tcp = format!("tcp://127.0.0.1:{}", free_port());
    let engine = BollardEngine::connect(Some(&tcp)).unwrap();
    let error = engine
        .inspect_container(&ContainerId::new("x"))
        .await
        .unwrap_err();
    assert!(
        matches!(error, EngineError::Unreachable { .. }),
        "{error:?}"
    );
    assert!(error.to_string().contains(&tcp), "{error}");
}

#[tokio::test]
async fn pull_reports_progress_and_the_image_inspects_as_built() {
    let engine = engine();
    let scope = TestScope::new("pull");
    let registry = TestRegistry::start().await;
    let repository = unique_name("acme/shop");
    let digest = registry.push(HEALTHY_IMAGE, &repository, "dev-1").await;
    let image = registry.image(&repository, "dev-1");
    scope.track_image(&image);

    let lines = Mutex::new(Vec::<PullProgress>::new());
    engine
        .pull(&image, None, &|progress| {
            lines.lock().unwrap().push(progress)
        })
        .await
        .unwrap();
    let lines: Vec<String> = lines
        .into_inner()
        .unwrap()
        .iter()
        .map(|p| p.to_string())
        .collect();
    assert!(
        lines
            .iter()
            .any(|line| line == &format!("Digest: {digest}")),
        "no digest line in {lines:#?}"
    );

    let info = engine.inspect_image(&image).await.unwrap();
    assert!(info.id.starts_with("sha256:"), "{info:?}");
    assert!(
        info.repo_digests
            .contains(&format!("{}/{repository}@{digest}", registry.host())),
        "{:?}",
        info.repo_digests
    );
    assert_eq!(info.exposed_ports, vec![8080]);
    assert_eq!(
        info.labels.get(labels::HEALTH_PATH).map(String::as_str),
        Some("/health")
    );
    assert_eq!(info.healthcheck, None);
    assert!(info.created.is_some(), "{info:?}");
}

#[tokio::test]
async fn pull_of_a_missing_tag_is_image_not_found_with_the_registrys_words() {
    let engine = engine();
    let registry = TestRegistry::start().await;
    let repository = unique_name("acme/shop");
    registry.push(HEALTHY_IMAGE, &repository, "dev-1").await;
    let image = registry.image(&repository, "no-such-tag");
    let error = engine.pull(&image, None, &|_| {}).await.unwrap_err();
    match &error {
        EngineError::ImageNotFound {
            image: named,
            message,
        } => {
            assert_eq!(named, &image);
            assert!(message.contains("manifest unknown"), "{message}");
        }
        other => panic!("expected ImageNotFound, got {other:?}"),
    }
}

#[tokio::test]
async fn pull_with_credentials_works_and_wrong_or_missing_ones_are_unauthorized() {
    let engine = engine();
    let scope = TestScope::new("pull-auth");
    // `?`, `~` and `>` make the standard and URL-safe base64 alphabets differ in the
    // X-Registry-Auth header; dockerd only decodes the URL-safe one.
    let password = "p?ss~w>rd??~~";
    let registry = TestRegistry::start_with(RegistryOptions {
        auth: Some(("ci".into(), password.into())),
        ..Default::default()
    })
    .await;
    let repository = unique_name("acme/private");
    registry.push(HEALTHY_IMAGE, &repository, "v1.0.0").await;
    let image = registry.image(&repository, "v1.0.0");
    scope.track_image(&image);

    let right = RegistryAuth {
        username: "ci".into(),
        password: password.into(),
    };
    engine.pull(&image, Some(&right), &|_| {}).await.unwrap();
    engine.inspect_image(&image).await.unwrap();

    let wrong = RegistryAuth {
        username: "ci".into(),
        password: "not-the-password".into(),
    };
    let error = engine
        .pull(&image, Some(&wrong), &|_| {})
        .await
        .unwrap_err();
    assert!(
        matches!(error, EngineError::Unauthorized { .. }),
        "{error:?}"
    );
    assert!(!error.to_string().contains("not-the-password"), "{error}");
    assert!(
        error.to_string().contains("check the registry credentials"),
        "{error}"
    );

    let error = engine.pull(&image, None, &|_| {}).await.unwrap_err();
    assert!(
        matches!(error, EngineError::Unauthorized { .. }),
        "{error:?}"
    );
}

#[tokio::test]
async fn inspect_of_an_image_not_present_is_image_not_found() {
    let engine = engine();
    let image = format!("{}:absent", unique_name("dw-test/nothing"));
    let error = engine.inspect_image(&image).await.unwrap_err();
    assert!(
        matches!(error, EngineError::ImageNotFound { .. }),
        "{error:?}"
    );
}

#[tokio::test]
async fn container_lifecycle_create_start_inspect_stop_remove() {
    let engine = engine();
    let scope = TestScope::new("lifecycle");
    let mut spec = scope.spec("app", HEALTHY_IMAGE);
    spec.labels
        .insert(labels::MANAGED.into(), labels::MANAGED_VALUE.into());
    spec.labels.insert(labels::TAG.into(), "dev-1".into());
    spec.env = vec![("DW_TAG".into(), "dev-1".into())];

    let id = engine.create(&spec).await.unwrap();
    let created = engine.inspect_container(&id).await.unwrap();
    assert_eq!(created.id, id);
    assert_eq!(created.name, spec.name);
    assert_eq!(created.image, HEALTHY_IMAGE);
    assert_eq!(created.state.status, ContainerStatus::Created);
    assert!(!created.state.running);
    assert_eq!(created.loopback_port, None);

    engine.start(&id).await.unwrap();
    engine.start(&id).await.unwrap(); // already running: still Ok
    let running = engine.inspect_container(&id).await.unwrap();
    assert_eq!(running.state.status, ContainerStatus::Running);
    assert!(running.state.running);
    assert!(running.state.started_at.is_some());
    assert_eq!(running.state.health, None);
    assert_eq!(running.labels.get(TEST_LABEL), Some(&scope.value));
    assert_eq!(
        running.labels.get(labels::TAG).map(String::as_str),
        Some("dev-1")
    );
    // Docker merges the image's labels in.
    assert_eq!(
        running.labels.get(labels::HEALTH_PATH).map(String::as_str),
        Some("/health")
    );
    let port = running.loopback_port.expect("a port on 127.0.0.1");
    assert_eq!(running.loopback_ports.get(&8080), Some(&port));
    let bindings = docker_inspect("{{json .HostConfig.PortBindings}}", id.as_str());
    assert!(bindings.contains("\"HostIp\":\"127.0.0.1\""), "{bindings}");
    // The env reached the application: it answers /tag with $DW_TAG.
    assert_eq!(
        get_text(&format!("http://127.0.0.1:{port}/tag")).await,
        "dev-1"
    );

    engine.stop(&id, Duration::from_secs(5)).await.unwrap();
    let stopped = engine.inspect_container(&id).await.unwrap();
    assert_eq!(stopped.state.status, ContainerStatus::Exited);
    assert!(!stopped.state.running);
    engine.stop(&id, Duration::from_secs(5)).await.unwrap(); // already stopped: Ok

    // Stopped containers are listed too.
    let listed = engine
        .list_containers(&[(TEST_LABEL, &scope.value)])
        .await
        .unwrap();
    assert_eq!(listed.len(), 1, "{listed:?}");
    assert_eq!(listed[0].id, id);
    assert_eq!(listed[0].name, spec.name);
    assert_eq!(listed[0].state, ContainerStatus::Exited);
    assert_eq!(listed[0].image, HEALTHY_IMAGE);
    assert_eq!(
        listed[0].labels.get(labels::TAG).map(String::as_str),
        Some("dev-1")
    );

    engine.remove(&id, false).await.unwrap();
    let error = engine.inspect_container(&id).await.unwrap_err();
    assert!(
        matches!(error, EngineError::ContainerNotFound { .. }),
        "{error:?}"
    );
    engine.remove(&id, true).await.unwrap(); // gone already: still Ok
    let listed = engine
        .list_containers(&[(TEST_LABEL, &scope.value)])
        .await
        .unwrap();
    assert!(listed.is_empty(), "{listed:?}");
}

#[tokio::test]
async fn operations_on_a_missing_container_say_container_not_found() {
    let engine = engine();
    let id = ContainerId::new(unique_name("dw-missing"));
    for error in [
        engine.start(&id).await.unwrap_err(),
        engine.stop(&id, Duration::from_secs(1)).await.unwrap_err(),
        engine.inspect_container(&id).await.unwrap_err(),
        engine.logs(&id, 10).await.unwrap_err(),
    ] {
        assert!(
            matches!(error, EngineError::ContainerNotFound { .. }),
            "{error:?}"
        );
    }
}

#[tokio::test]
async fn force_remove_takes_a_running_container_down() {
    let engine = engine();
    let scope = TestScope::new("force");
    let id = engine
        .create(&scope.spec("app", HEALTHY_IMAGE))
        .await
        .unwrap();
    engine.start(&id).await.unwrap();
    engine.remove(&id, true).await.unwrap();
    let error = engine.inspect_container(&id).await.unwrap_err();
    assert!(
        matches!(error, EngineError::ContainerNotFound { .. }),
        "{error:?}"
    );
}

#[tokio::test]
async fn a_taken_name_is_a_name_conflict() {
    let engine = engine();
    let scope = TestScope::new("conflict");
    let spec = scope.spec("app", HEALTHY_IMAGE);
    engine.create(&spec).await.unwrap();
    let error = engine.create(&spec).await.unwrap_err();
    assert_eq!(
        error,
        EngineError::NameConflict {
            name: spec.name.clone()
        }
    );
}

#[tokio::test]
async fn create_from_an_image_not_present_is_image_not_found() {
    let engine = engine();
    let scope = TestScope::new("noimage");
    let spec = scope.spec("app", &format!("{}:absent", unique_name("dw-test/nothing")));
    let error = engine.create(&spec).await.unwrap_err();
    assert!(
        matches!(error, EngineError::ImageNotFound { .. }),
        "{error:?}"
    );
}

#[tokio::test]
async fn limits_restart_policy_volumes_and_init_reach_the_container() {
    let engine = engine();
    let scope = TestScope::new("limits");
    let data = tempfile::tempdir().unwrap();
    let mut spec = scope.spec("app", HEALTHY_IMAGE);
    spec.memory_bytes = Some(64 * 1024 * 1024);
    spec.nano_cpus = Some(500_000_000);
    spec.restart_policy = RestartPolicy::OnFailure { max_retries: 4 };
    spec.volumes = vec![format!("{}:/data:ro", data.path().display())];
    spec.init = true; // created only, never started: the TERM trap does not matter
    let id = engine.create(&spec).await.unwrap();
    let host = docker_inspect(
        "{{.HostConfig.Memory}} {{.HostConfig.NanoCpus}} {{.HostConfig.RestartPolicy.Name}} {{.HostConfig.RestartPolicy.MaximumRetryCount}} {{.HostConfig.Init}} {{json .HostConfig.Binds}}",
        id.as_str(),
    );
    assert_eq!(
        host,
        format!(
            "67108864 500000000 on-failure 4 true [\"{}:/data:ro\"]",
            data.path().display()
        )
    );

    let mut spec = scope.spec("unless", HEALTHY_IMAGE);
    spec.restart_policy = RestartPolicy::UnlessStopped;
    let id = engine.create(&spec).await.unwrap();
    assert_eq!(
        docker_inspect(
            "{{.HostConfig.RestartPolicy.Name}} {{.HostConfig.Init}}",
            id.as_str()
        ),
        "unless-stopped false"
    );
}

#[tokio::test]
async fn logs_hold_stdout_and_stderr_of_a_crashed_container() {
    let engine = engine();
    let scope = TestScope::new("logs");
    let id = engine
        .create(&scope.spec("app", CRASH_IMAGE))
        .await
        .unwrap();
    engine.start(&id).await.unwrap();
    let exited = wait_until_stopped(engine.as_ref(), &id).await;
    assert_eq!(exited.state.exit_code, 3);
    let logs = engine.logs(&id, 10).await.unwrap();
    assert!(logs.contains("test app: crashing on purpose"), "{logs:?}");
}

#[tokio::test]
async fn logs_keep_only_the_last_lines() {
    let engine = engine();
    let scope = TestScope::new("tail");
    let mut spec = scope.spec("app", HEALTHY_IMAGE);
    spec.env = vec![("MODE".into(), "no-such-mode".into())];
    let id = engine.create(&spec).await.unwrap();
    engine.start(&id).await.unwrap();
    let exited = wait_until_stopped(engine.as_ref(), &id).await;
    assert_eq!(exited.state.exit_code, 2);
    let logs = engine.logs(&id, 1).await.unwrap();
    assert_eq!(logs, "test app: unknown MODE 'no-such-mode'");
}

#[tokio::test]
async fn list_filters_on_every_label_given() {
    let engine = engine();
    let scope = TestScope::new("list");
    for instance in ["a", "b"] {
        let mut spec = scope.spec(instance, HEALTHY_IMAGE);
        spec.labels.insert(labels::INSTANCE.into(), instance.into());
        engine.create(&spec).await.unwrap();
    }
    let all = engine
        .list_containers(&[(TEST_LABEL, &scope.value)])
        .await
        .unwrap();
    assert_eq!(all.len(), 2, "{all:?}");
    let only_b = engine
        .list_containers(&[(TEST_LABEL, &scope.value), (labels::INSTANCE, "b")])
        .await
        .unwrap();
    assert_eq!(only_b.len(), 1, "{only_b:?}");
    assert_eq!(only_b[0].name, scope.name("b"));
    assert_eq!(only_b[0].state, ContainerStatus::Created);
}

#[tokio::test]
async fn networks_are_ensured_once_joined_at_create_and_connected_later() {
    let engine = engine();
    let scope = TestScope::new("net");
    let first = scope.name("front");
    let second = scope.name("back");
    let labels: BTreeMap<String, String> = scope.labels();
    engine.ensure_network(&first, &labels).await.unwrap();
    engine.ensure_network(&first, &labels).await.unwrap();
    engine.ensure_network(&second, &labels).await.unwrap();
    let listed = std::process::Command::new(docker_cli())
        .args([
            "network",
            "ls",
            "-q",
            "--filter",
            &format!("label={TEST_LABEL}={}", scope.value),
        ])
        .output()
        .unwrap();
    assert_eq!(String::from_utf8_lossy(&listed.stdout).lines().count(), 2);

    let mut spec = scope.spec("app", HEALTHY_IMAGE);
    spec.network = Some(first.clone());
    let id = engine.create(&spec).await.unwrap();
    engine.start(&id).await.unwrap();
    let info = engine.inspect_container(&id).await.unwrap();
    // Set at create, the network replaces the default bridge.
    assert_eq!(info.networks, vec![first.clone()]);
    // And the port is still published on loopback.
    assert!(info.loopback_port.is_some(), "{info:?}");

    engine.connect_network(&id, &second).await.unwrap();
    engine.connect_network(&id, &second).await.unwrap(); // already attached: Ok
    let info = engine.inspect_container(&id).await.unwrap();
    let mut expected = vec![first.clone(), second.clone()];
    expected.sort();
    assert_eq!(info.networks, expected);

    let reach = Reachability::Network {
        network: second.clone(),
    };
    let up = upstream(&reach, &info, 8080).unwrap();
    assert_eq!((up.host.as_str(), up.port), (spec.name.as_str(), 8080));

    engine.remove(&id, true).await.unwrap();
    engine.remove_network(&second).await.unwrap();
    engine.remove_network(&second).await.unwrap(); // gone already: Ok
}

/// Polls until the container has stopped; panics after 30 s (a hung container is a bug).
async fn wait_until_stopped(
    engine: &dyn Engine,
    id: &ContainerId,
) -> docker_watcher::docker::ContainerInfo {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let info = engine.inspect_container(id).await.unwrap();
        if info.state.status.has_stopped() {
            return info;
        }
        assert!(
            Instant::now() < deadline,
            "container never stopped: {info:?}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// GETs `url` until the container's server answers (it needs a moment after start).
async fn get_text(url: &str) -> String {
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        match reqwest::get(url).await {
            Ok(response) if response.status().is_success() => {
                return response.text().await.unwrap().trim().to_string();
            }
            other if Instant::now() > deadline => panic!("GET {url}: {other:?}"),
            _ => tokio::time::sleep(Duration::from_millis(100)).await,
        }
    }
}
