//! `health::wait_healthy` against real containers of the test images, probed through
//! their port published on 127.0.0.1.

use std::sync::Mutex;
use std::time::Duration;

use docker_watcher::docker::{ContainerId, ContainerSpec, Engine, RestartPolicy};
use docker_watcher::health::{
    Attempt, HealthError, HealthPolicy, HealthProbe, Reachability, http_probe, upstream,
    wait_healthy,
};

use crate::support::containers::{TestScope, engine};
use crate::support::{CRASH_IMAGE, HEALTHY_IMAGE, SLOW_IMAGE, UNHEALTHY_IMAGE, unique_name};

/// A budget that runs out in about two seconds: for containers that never get healthy.
fn short_policy() -> HealthPolicy {
    HealthPolicy {
        interval: Duration::from_millis(200),
        timeout: Duration::from_secs(2),
        retries: 3,
        start_period: Duration::from_secs(1),
    }
}

/// Creates and starts `spec`; returns its id.
async fn run(engine: &dyn Engine, spec: &ContainerSpec) -> ContainerId {
    let id = engine.create(spec).await.unwrap();
    engine.start(&id).await.unwrap();
    id
}

/// The HTTP probe of `/health` through the loopback port.
async fn health_probe(engine: &dyn Engine, id: &ContainerId) -> HealthProbe {
    let info = engine.inspect_container(id).await.unwrap();
    http_probe(&Reachability::Loopback, &info, 8080, "/health").unwrap()
}

/// Runs `wait_healthy`, keeping every attempt for assertions.
async fn wait(
    engine: &dyn Engine,
    id: &ContainerId,
    probe: &HealthProbe,
    policy: &HealthPolicy,
) -> (
    Result<docker_watcher::health::Healthy, HealthError>,
    Vec<Attempt>,
) {
    let attempts = Mutex::new(Vec::new());
    let result = wait_healthy(engine, id, probe, policy, |attempt| {
        attempts.lock().unwrap().push(attempt.clone())
    })
    .await;
    (result, attempts.into_inner().unwrap())
}

#[tokio::test]
async fn healthy_image_is_healthy_through_its_loopback_port() {
    let engine = engine();
    let scope = TestScope::new("health-ok");
    let id = run(engine.as_ref(), &scope.spec("app", HEALTHY_IMAGE)).await;
    let probe = health_probe(engine.as_ref(), &id).await;
    let HealthProbe::Http { url } = &probe else {
        panic!("{probe:?}")
    };
    assert!(
        url.starts_with("http://127.0.0.1:") && url.ends_with("/health"),
        "{url}"
    );

    let (result, attempts) = wait(engine.as_ref(), &id, &probe, &HealthPolicy::default()).await;
    let healthy = result.unwrap();
    assert_eq!(healthy.attempts as usize, attempts.len());
    assert_eq!(attempts.last().unwrap().outcome, Ok(()));
}

#[tokio::test]
async fn slow_image_becomes_healthy_within_the_budget() {
    let engine = engine();
    let scope = TestScope::new("health-slow");
    let mut spec = scope.spec("app", SLOW_IMAGE);
    spec.env = vec![("SLOW_SECONDS".into(), "3".into())];
    let id = run(engine.as_ref(), &spec).await;
    let probe = health_probe(engine.as_ref(), &id).await;

    let (result, attempts) = wait(engine.as_ref(), &id, &probe, &HealthPolicy::default()).await;
    let healthy = result.unwrap();
    assert!(healthy.attempts > 1, "healthy at once? {attempts:#?}");
    // The failures while it started did not count against the budget.
    let failures: Vec<&Attempt> = attempts.iter().filter(|a| a.outcome.is_err()).collect();
    assert!(!failures.is_empty());
    assert!(failures.iter().all(|a| !a.counted), "{failures:#?}");
    // It answered 404 while starting (before its server listens, docker-proxy may also
    // reset the first connections on a loaded machine).
    assert!(
        failures
            .iter()
            .any(|a| a.outcome.as_ref().unwrap_err().contains("404")),
        "{failures:#?}"
    );
}

#[tokio::test]
async fn crashing_container_fails_at_once_with_exit_code_and_logs() {
    let engine = engine();
    let scope = TestScope::new("health-crash");
    let id = run(engine.as_ref(), &scope.spec("app", CRASH_IMAGE)).await;
    // Its port may never be bound (it dies first): probe the port Docker would use.
    let probe = HealthProbe::Http {
        url: "http://127.0.0.1:9/health".into(),
    };

    let (result, attempts) = wait(engine.as_ref(), &id, &probe, &HealthPolicy::default()).await;
    match result.unwrap_err() {
        HealthError::ContainerExited {
            status,
            exit_code,
            logs,
            attempts: probes,
            ..
        } => {
            assert_eq!(status, "exited");
            assert_eq!(exit_code, Some(3));
            assert!(logs.contains("test app: crashing on purpose"), "{logs:?}");
            assert_eq!(probes as usize, attempts.len());
        }
        other => panic!("expected ContainerExited, got {other:?}"),
    }
    // It ended inside the 60 s start period: no failure ever counted.
    assert!(attempts.iter().all(|a| !a.counted), "{attempts:#?}");
}

#[tokio::test]
async fn unhealthy_image_fails_after_the_budget() {
    let engine = engine();
    let scope = TestScope::new("health-bad");
    let id = run(engine.as_ref(), &scope.spec("app", UNHEALTHY_IMAGE)).await;
    let probe = health_probe(engine.as_ref(), &id).await;
    let policy = short_policy();

    let (result, attempts) = wait(engine.as_ref(), &id, &probe, &policy).await;
    let error = result.unwrap_err();
    match &error {
        HealthError::Unhealthy {
            attempts: probes,
            last_error,
        } => {
            assert_eq!(*probes as usize, attempts.len());
            assert!(last_error.contains("404"), "{last_error}");
        }
        other => panic!("expected Unhealthy, got {other:?}"),
    }
    let counted: Vec<&Attempt> = attempts.iter().filter(|a| a.counted).collect();
    assert_eq!(counted.len(), 3, "{attempts:#?}");
    assert!(counted.iter().all(|a| a.elapsed >= policy.start_period));
    assert!(
        error.to_string().contains("did not become healthy"),
        "{error}"
    );
}

#[tokio::test]
async fn tcp_probe_passes_when_the_application_listens() {
    let engine = engine();
    let scope = TestScope::new("health-tcp");
    let id = run(engine.as_ref(), &scope.spec("app", HEALTHY_IMAGE)).await;
    let info = engine.inspect_container(&id).await.unwrap();
    let probe = HealthProbe::Tcp {
        addr: upstream(&Reachability::Loopback, &info, 8080)
            .unwrap()
            .address(),
    };
    let (result, _) = wait(engine.as_ref(), &id, &probe, &HealthPolicy::default()).await;
    result.unwrap();
}

#[tokio::test]
async fn tcp_probe_is_not_fooled_by_dockers_port_proxy() {
    let engine = engine();
    let scope = TestScope::new("health-tcp-none");
    // The application listens on 9999; 8080 is published but nobody listens there.
    let mut spec = scope.spec("app", HEALTHY_IMAGE);
    spec.env = vec![("PORT".into(), "9999".into())];
    let id = run(engine.as_ref(), &spec).await;
    let info = engine.inspect_container(&id).await.unwrap();
    let probe = HealthProbe::Tcp {
        addr: upstream(&Reachability::Loopback, &info, 8080)
            .unwrap()
            .address(),
    };
    let (result, _) = wait(engine.as_ref(), &id, &probe, &short_policy()).await;
    assert!(
        matches!(result, Err(HealthError::Unhealthy { .. })),
        "{result:?}"
    );
}

#[tokio::test]
async fn stays_running_passes_after_its_duration() {
    let engine = engine();
    let scope = TestScope::new("health-stays");
    let id = run(engine.as_ref(), &scope.spec("app", HEALTHY_IMAGE)).await;
    let probe = HealthProbe::StaysRunning {
        duration: Duration::from_secs(2),
    };
    // Shorter start period than the duration: staying up must not count as failing.
    let (result, attempts) = wait(engine.as_ref(), &id, &probe, &short_policy()).await;
    let healthy = result.unwrap();
    assert!(healthy.elapsed >= Duration::from_secs(2), "{healthy:?}");
    assert!(attempts.iter().all(|a| !a.counted), "{attempts:#?}");
}

#[tokio::test]
async fn a_container_restarted_by_docker_fails_at_once() {
    let engine = engine();
    let scope = TestScope::new("health-restart");
    let mut spec = scope.spec("app", CRASH_IMAGE);
    spec.restart_policy = RestartPolicy::OnFailure { max_retries: 50 };
    let id = run(engine.as_ref(), &spec).await;
    let probe = HealthProbe::StaysRunning {
        duration: Duration::from_secs(5),
    };
    let (result, attempts) = wait(engine.as_ref(), &id, &probe, &HealthPolicy::default()).await;
    match result.unwrap_err() {
        HealthError::ContainerExited { status, logs, .. } => {
            assert!(
                ["exited", "is restarting"].contains(&status.as_str())
                    || status.starts_with("was restarted by Docker"),
                "{status}"
            );
            assert!(logs.contains("crashing on purpose"), "{logs:?}");
        }
        other => panic!("expected ContainerExited, got {other:?}"),
    }
    assert!(attempts.iter().all(|a| !a.counted), "{attempts:#?}");
}

#[tokio::test]
async fn docker_healthcheck_probe_needs_a_healthcheck() {
    let engine = engine();
    let scope = TestScope::new("health-nohc");
    let id = run(engine.as_ref(), &scope.spec("app", HEALTHY_IMAGE)).await;
    let (result, attempts) = wait(
        engine.as_ref(),
        &id,
        &HealthProbe::DockerHealthcheck,
        &HealthPolicy::default(),
    )
    .await;
    let error = result.unwrap_err();
    assert!(matches!(error, HealthError::ProbeUnusable(_)), "{error:?}");
    assert!(error.to_string().contains("no HEALTHCHECK"), "{error}");
    assert!(attempts.is_empty());
}

#[tokio::test]
async fn a_missing_container_is_reported_gone() {
    let engine = engine();
    let id = ContainerId::new(unique_name("dw-missing"));
    let probe = HealthProbe::StaysRunning {
        duration: Duration::from_secs(1),
    };
    let (result, _) = wait(engine.as_ref(), &id, &probe, &short_policy()).await;
    assert!(
        matches!(result, Err(HealthError::ContainerGone { .. })),
        "{result:?}"
    );
}
