//! Deploy benchmark: the time from a deploy request to `success` for a small image,
//! next to the bare equivalent on the same machine in the same run (`docker pull`,
//! `docker run`, then probing `/health` until it answers), and their ratio.
//!
//! Run with `./dev bench` (or `cargo bench --bench deploy`). Needs what `./dev services`
//! sets up: dockerd, Debian's docker-registry, the `dw-test/app:healthy` image. Everything
//! stays on 127.0.0.1. Prints figures; asserts nothing.

use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use docker_watcher::crypto::{MasterKey, Sealer};
use docker_watcher::deployer::{DeployEvents, Deployer};
use docker_watcher::docker::{BollardEngine, Engine, labels};
use docker_watcher::notify::NoNotifier;
use docker_watcher::proxy::NoProxy;
use docker_watcher::store::{NewProject, NewStage, SettingsUpdate, Store, Trigger};

const ROUNDS: usize = 5;
const SOURCE_IMAGE: &str = "dw-test/app:healthy";

fn main() {
    // `cargo bench` passes --bench; test runners that list or run every target
    // (`cargo test --all-targets`, nextest) do not, and must not start a benchmark.
    if !std::env::args().any(|a| a == "--bench") {
        return;
    }
    let runtime = tokio::runtime::Runtime::new().expect("tokio runtime");
    runtime.block_on(run());
}

async fn run() {
    let docker = docker_cli();
    let registry = Registry::start();
    let repository = format!("bench/app-{}", std::process::id());
    let tags: Vec<String> = (0..ROUNDS * 2).map(|i| format!("v{i}")).collect();
    for tag in &tags {
        registry.push(docker, &repository, tag);
    }

    let dir = tempfile::tempdir().expect("temp dir");
    let store = Store::open(dir.path(), Sealer::new(MasterKey::generate())).expect("store");
    // Probe often: the benchmark measures the pipeline, not a slow default interval.
    store
        .update_settings(&SettingsUpdate {
            health_interval: Some(Duration::from_millis(100)),
            ..Default::default()
        })
        .expect("settings");
    let engine: Arc<dyn Engine> = Arc::new(BollardEngine::connect(None).expect("docker"));
    let deployer = Deployer::new(
        store.clone(),
        engine.clone(),
        Arc::new(NoProxy),
        Arc::new(NoNotifier),
        DeployEvents::default(),
    )
    .expect("deployer");
    let project = store
        .create_project(&NewProject {
            name: "bench".into(),
            image: format!("127.0.0.1:{}/{repository}", registry.port),
            container_port: 8080,
            health_path: Some("/health".into()),
            ..Default::default()
        })
        .expect("project");
    let stage = store
        .create_stage(&NewStage {
            max_instances: 1,
            ..NewStage::defaults(project.id, "dev")
        })
        .expect("stage");

    let mut watcher = Vec::new();
    let mut bare = Vec::new();
    for round in 0..ROUNDS {
        // Alternate which goes first, so neither always meets a warmer machine.
        let (ours, theirs) = (&tags[round * 2], &tags[round * 2 + 1]);
        let image = |tag: &str| format!("127.0.0.1:{}/{repository}:{tag}", registry.port);
        if round % 2 == 0 {
            watcher.push(deploy_once(&deployer, &store, stage.id, ours).await);
            bare.push(bare_once(docker, &image(theirs)).await);
        } else {
            bare.push(bare_once(docker, &image(theirs)).await);
            watcher.push(deploy_once(&deployer, &store, stage.id, ours).await);
        }
    }

    let installation = store.installation_id().expect("installation id");
    for container in engine
        .list_containers(&[(labels::INSTALLATION, &installation)])
        .await
        .unwrap_or_default()
    {
        let _ = engine.remove(&container.id, true).await;
    }
    for tag in &tags {
        let _ = Command::new(docker)
            .args([
                "rmi",
                "-f",
                &format!("127.0.0.1:{}/{repository}:{tag}", registry.port),
            ])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status();
    }

    // Where the time of the last deploy went, step by step.
    let last = store
        .list_recent_deploys(1)
        .expect("deploys")
        .pop()
        .expect("a deploy");
    let logs = store.deploy_logs(last.id, 0).expect("logs");
    let start = last.created_at;
    let mut steps = String::new();
    for entry in &logs {
        let offset = (entry.at - start).num_milliseconds();
        steps.push_str(&format!(
            "    +{offset:>5} ms  {:<13} {}\n",
            entry.step,
            first_line(&entry.message)
        ));
    }

    let (w, b) = (median(&mut watcher), median(&mut bare));
    println!("deploy benchmark, {ROUNDS} rounds each, small busybox image from a local registry");
    println!(
        "  docker-watcher, request → success : median {:>7.1} ms  (all: {})",
        ms(w),
        list(&watcher)
    );
    println!(
        "  bare docker pull + run + probe    : median {:>7.1} ms  (all: {})",
        ms(b),
        list(&bare)
    );
    println!(
        "  ratio (docker-watcher / bare)     : {:.2}",
        w.as_secs_f64() / b.as_secs_f64()
    );
    println!("  the last deploy, step by step:\n{steps}");
}

async fn deploy_once(deployer: &Deployer, store: &Store, stage_id: i64, tag: &str) -> Duration {
    let started = Instant::now();
    let id = deployer
        .deploy_tag(stage_id, tag, Trigger::Api)
        .await
        .expect("deploy request");
    loop {
        let deploy = store.get_deploy(id).expect("deploy");
        if deploy.status.is_final() {
            assert_eq!(deploy.status.as_str(), "success", "{:?}", deploy.error);
            return started.elapsed();
        }
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
}

async fn bare_once(docker: &str, image: &str) -> Duration {
    let started = Instant::now();
    run_ok(docker, &["pull", "-q", image]);
    let id = run_ok(
        docker,
        &[
            "run",
            "-d",
            "-p",
            "127.0.0.1::8080",
            "--label",
            "dev.docker-watcher.test=bench",
            image,
        ],
    );
    let id = id.trim();
    let port = run_ok(docker, &["port", id, "8080/tcp"]);
    let port = port
        .lines()
        .next()
        .and_then(|l| l.rsplit(':').next())
        .unwrap_or_default()
        .trim()
        .to_string();
    let url = format!("http://127.0.0.1:{port}/health");
    let client = reqwest::Client::new();
    loop {
        if let Ok(response) = client
            .get(&url)
            .timeout(Duration::from_secs(2))
            .send()
            .await
            && response.status().is_success()
        {
            break;
        }
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
    let elapsed = started.elapsed();
    run_ok(docker, &["rm", "-f", id]);
    elapsed
}

struct Registry {
    port: u16,
    child: Child,
    _dir: tempfile::TempDir,
}

impl Registry {
    fn start() -> Registry {
        let dir = tempfile::tempdir().expect("temp dir");
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .map(|a| a.port())
            .expect("free port");
        let config = dir.path().join("config.yml");
        std::fs::write(
            &config,
            format!(
                "version: 0.1\nlog:\n  level: warn\nstorage:\n  filesystem:\n    rootdirectory: {}\nhttp:\n  addr: 127.0.0.1:{port}\n",
                dir.path().join("storage").display()
            ),
        )
        .expect("registry config");
        let child = Command::new("docker-registry")
            .args(["serve", &config.display().to_string()])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("docker-registry (run ./dev services)");
        let deadline = Instant::now() + Duration::from_secs(15);
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(Instant::now() < deadline, "docker-registry did not start");
            std::thread::sleep(Duration::from_millis(50));
        }
        Registry {
            port,
            child,
            _dir: dir,
        }
    }

    fn push(&self, docker: &str, repository: &str, tag: &str) {
        let target = format!("127.0.0.1:{}/{repository}:{tag}", self.port);
        run_ok(docker, &["tag", SOURCE_IMAGE, &target]);
        run_ok(docker, &["push", &target]);
        // Remove the local tag so both contenders really pull.
        run_ok(docker, &["rmi", &target]);
    }
}

impl Drop for Registry {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn docker_cli() -> &'static str {
    if std::path::Path::new("/usr/bin/docker").exists() {
        "/usr/bin/docker"
    } else {
        "docker"
    }
}

fn run_ok(program: &str, args: &[&str]) -> String {
    let output = Command::new(program)
        .args(args)
        .stdin(Stdio::null())
        .output()
        .expect("run command");
    assert!(
        output.status.success(),
        "{program} {args:?}: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8_lossy(&output.stdout).to_string()
}

fn first_line(text: &str) -> &str {
    text.lines().next().unwrap_or_default()
}

fn median(values: &mut [Duration]) -> Duration {
    values.sort();
    values[values.len() / 2]
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

fn list(values: &[Duration]) -> String {
    values
        .iter()
        .map(|d| format!("{:.0}", ms(*d)))
        .collect::<Vec<_>>()
        .join(", ")
}
