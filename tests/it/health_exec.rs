//! An image's own HEALTHCHECK run through `docker exec` on the real Docker Engine: the
//! engine's exec (exit code, output, the container's user), and deploys of images whose
//! HEALTHCHECK runs only every 30 s (`dw-test/app:healthcheck`), live as soon as the test
//! passes, and rolled back when it fails.

use docker_watcher::deployer::DeployOutcome;
use docker_watcher::docker::ContainerId;
use docker_watcher::store::{DeployStatus, InstanceStatus};

use crate::support::containers::{TestScope, docker_inspect, engine};
use crate::support::deploy::DeployHarness;
use crate::support::{HEALTHCHECK_IMAGE, HEALTHCHECK_UNHEALTHY_IMAGE, TEST_LABEL, docker_cli};

#[tokio::test]
async fn exec_reports_exit_code_and_output_and_runs_as_the_containers_user() {
    let engine = engine();
    let scope = TestScope::new("exec");
    let name = scope.name("app");
    let run = std::process::Command::new(docker_cli())
        .args(["run", "-d", "--name", &name, "--user", "1234", "--label"])
        .arg(format!("{TEST_LABEL}={}", scope.value))
        // The app cannot write its files as user 1234: the container only has to run.
        .args(["--entrypoint", "/bin/sleep", HEALTHCHECK_IMAGE, "300"])
        .output()
        .unwrap();
    assert!(
        run.status.success(),
        "{}",
        String::from_utf8_lossy(&run.stderr)
    );
    let id = ContainerId::new(name.clone());

    let info = engine.inspect_container(&id).await.unwrap();
    let test = info.healthcheck.expect("the image's HEALTHCHECK");
    assert_eq!(
        test.command,
        [
            "/bin/wget",
            "-q",
            "-O",
            "/dev/null",
            "http://127.0.0.1:8080/health"
        ]
    );
    assert_eq!(test.interval, std::time::Duration::from_secs(30));
    assert_eq!(test.timeout, std::time::Duration::from_secs(3));
    assert_eq!(
        test.user.as_deref(),
        Some("1234"),
        "Docker runs the test as the container's user"
    );

    let who = engine
        .exec(&id, &["id".into(), "-u".into()], test.user.as_deref())
        .await
        .unwrap();
    assert_eq!((who.exit_code, who.output.as_str()), (0, "1234"));
    let root = engine
        .exec(&id, &["id".into(), "-u".into()], Some("0"))
        .await
        .unwrap();
    assert_eq!(root.output, "0");
    let failing = engine
        .exec(
            &id,
            &["sh".into(), "-c".into(), "echo broken >&2; exit 3".into()],
            None,
        )
        .await
        .unwrap();
    assert_eq!((failing.exit_code, failing.output.as_str()), (3, "broken"));
    let missing = engine
        .exec(&id, &["/no/such/program".into()], None)
        .await
        .unwrap();
    assert_ne!(missing.exit_code, 0, "a test that cannot run fails");
}

/// Docker's own first check of this image comes 30 s after start: the deploy goes live on
/// the test run through exec, while Docker still says `starting`.
#[tokio::test]
async fn image_with_a_30_second_healthcheck_goes_live_on_its_test_run_by_exec() {
    let h = DeployHarness::new().await;
    h.push(HEALTHCHECK_IMAGE, "v1").await;
    let project = h.project(None);
    let stage = h.stage(&project, "dev", 1);

    let (deploy, outcome) = h.deploy_now(&stage, "v1").await;
    let logs = h.store.deploy_logs(deploy.id, 0).unwrap();
    let DeployOutcome::Success { instance_id } = outcome else {
        panic!("{outcome:?}: {logs:?}")
    };
    let waited = logs
        .iter()
        .find(|l| l.step == "health_check" && l.message.starts_with("waiting until healthy"))
        .expect("the health step says what it waits for");
    assert!(
        waited
            .message
            .contains("exec health test `/bin/wget -q -O /dev/null http://127.0.0.1:8080/health`"),
        "{}",
        waited.message
    );
    let instance = h.store.get_instance(instance_id).unwrap();
    assert_eq!(instance.status, InstanceStatus::Running);
    let container = instance.container_id.clone().unwrap();
    assert_eq!(
        docker_inspect("{{.State.Health.Status}}", &container),
        "starting",
        "live before Docker's own first health run"
    );
    assert_eq!(h.get_from(&instance, "/health").await.unwrap(), "ok");
}

#[tokio::test]
async fn image_whose_health_test_fails_is_rolled_back_with_the_tests_exit_code() {
    let h = DeployHarness::new().await;
    h.push(HEALTHCHECK_UNHEALTHY_IMAGE, "v1").await;
    let project = h.project(None);
    let stage = h.stage(&project, "dev", 1);

    let (deploy, outcome) = h.deploy_now(&stage, "v1").await;
    assert!(
        matches!(outcome, DeployOutcome::RolledBack { ref step, .. } if step == "health_check"),
        "{outcome:?}"
    );
    assert_eq!(deploy.status, DeployStatus::RolledBack);
    let error = deploy.error.unwrap_or_default();
    assert!(
        error.contains("did not become healthy") && error.contains("the health test exited with 1"),
        "{error}"
    );
    let failed = h.store.get_instance(deploy.instance_id.unwrap()).unwrap();
    assert!(
        !h.container_exists(failed.container_id.as_deref().unwrap())
            .await,
        "nothing left behind"
    );
}
