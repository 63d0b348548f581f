//! The performance benchmark (`./dev bench`): every figure of issue #20 in one run, each
//! as min/median/max, printed and written to `target/bench.json` for comparing commits.
//!
//! - push-to-serving through real Caddy vs bare `docker pull` + `docker run` + probe, for
//!   a project with a health path, an image with its own `HEALTHCHECK --interval=30s`, and
//!   a push arriving while the previous instance drains (back-to-back);
//! - webhook intake (50 keep-alive connections): req/s, p50/p99, for ignored pushes and
//!   pushes that start a deploy; webhook → deploy queued (one request at a time);
//! - idle RSS with 100 projects after logins and the webhook load; idle CPU;
//! - start → ready (spawn to `/healthz`), binary size;
//! - one poll cycle at 10,000 stages over 2,500 images (see `parts/poll.rs`).
//!
//! The daemon is the release binary (`DW_BENCH_BIN`, default target/release/docker-watcher)
//! as a child process; dockerd, docker-registry, caddy and the `dw-test/app` images are
//! what `./dev services` sets up. Everything stays on 127.0.0.1. Asserts nothing beyond
//! "it worked"; the figures are for people.
//! `DW_BENCH_KEEP=1` keeps the daemon's data folder (stopped gracefully) and prints its path.

#[path = "parts/daemon.rs"]
mod daemon;
#[path = "parts/deploys.rs"]
mod deploys;
#[path = "parts/load.rs"]
mod load;
#[path = "parts/poll.rs"]
mod poll;
#[path = "../tests/it/support/serve_child.rs"]
mod serve_child;
#[path = "parts/stats.rs"]
mod stats;

use std::path::PathBuf;
use std::time::Duration;

use reqwest::Method;
use serde_json::{Value, json};

use daemon::{Caddy, Daemon, Registry, docker, run_ok};
use stats::Report;

const HEALTHY_IMAGE: &str = "dw-test/app:healthy";
const HEALTHCHECK_IMAGE: &str = "dw-test/app:healthcheck";
const BASE_DOMAIN: &str = "bench.test";

fn main() {
    // `cargo bench` passes --bench; test runners that list or run every target
    // (`cargo test --all-targets`, nextest) do not, and must not start a benchmark.
    if !std::env::args().any(|a| a == "--bench") {
        return;
    }
    let runtime = tokio::runtime::Runtime::new().expect("tokio runtime");
    runtime.block_on(run());
}

fn rounds(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

async fn run() {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    let binary = std::env::var_os("DW_BENCH_BIN")
        .map(PathBuf::from)
        .unwrap_or_else(|| root.join("target/release/docker-watcher"));
    let only = std::env::var("DW_BENCH_ONLY").unwrap_or_default();
    let wants = |part: &str| only.is_empty() || only.split(',').any(|p| p == part);
    let mut report = Report::default();
    println!("docker-watcher benchmark ({})", binary.display());

    let registry = Registry::start();
    let caddy = Caddy::start();
    let (mut daemon, first_ready) = Daemon::start(&binary).await;
    let started = std::time::Instant::now();
    let first_cpu_ms = daemon.start_cpu_ms;
    let prefix = format!("b{}", std::process::id());

    daemon
        .call(
            Method::PUT,
            "/api/settings",
            Some(json!({
                "base_domain": BASE_DOMAIN,
                "proxy_kind": "caddy",
                "proxy_url": format!("http://127.0.0.1:{}", caddy.admin_port),
                "proxy_listen": format!("127.0.0.1:{}", caddy.listen_port),
                // An unknown image must stay ignored (with auto-create on, the first
                // "ignored" push made a project and every later one started a deploy).
                "auto_create_projects": false,
            })),
        )
        .await;
    let webhook = daemon
        .call(Method::GET, "/api/settings/webhook", None)
        .await;
    let secret = webhook["url"]
        .as_str()
        .and_then(|u| u.rsplit('/').next())
        .expect("webhook url")
        .to_string();
    let webhook_path = format!("/api/webhook/{secret}");
    let webhook_url = format!("http://{}{webhook_path}", daemon.address());
    let caddy_listen = format!("127.0.0.1:{}", caddy.listen_port);

    // The projects: one with a health path, one whose image has its own HEALTHCHECK and
    // no health path, one for deploy-starting webhook load, and fillers up to 100.
    let hp = create_project(&daemon, &format!("{prefix}-hp"), &registry, Some("/health")).await;
    let hc = create_project(&daemon, &format!("{prefix}-hc"), &registry, None).await;
    let load_project = create_project(&daemon, &format!("{prefix}-load"), &registry, None).await;
    for i in 0..97 {
        create_project(&daemon, &format!("{prefix}-f{i}"), &registry, None).await;
    }
    let domain = |project: &str| format!("stage-dev-{project}.{BASE_DOMAIN}");

    if wants("deploy") {
        let n = rounds("DW_BENCH_ROUNDS", 5);
        println!("push-to-serving through Caddy vs bare pull+run+probe ({n} rounds)");
        let repo = format!("bench/{prefix}-hp");
        for i in 0..n {
            registry.push(HEALTHY_IMAGE, &repo, &format!("v{i}"));
            registry.push(HEALTHY_IMAGE, &repo, &format!("bare{i}"));
        }
        // One deploy first, so every measured one replaces a running instance.
        registry.push(HEALTHY_IMAGE, &repo, "warm");
        deploys::push_to_serving(
            &webhook_url,
            &caddy_listen,
            &domain(&hp),
            &registry.image(&repo, "warm"),
            "warm",
        )
        .await;
        let (mut ours, mut bare, mut ratio) = (Vec::new(), Vec::new(), Vec::new());
        for i in 0..n {
            let tag = format!("v{i}");
            let (stage_domain, image) = (domain(&hp), registry.image(&repo, &tag));
            let deploy = || {
                deploys::push_to_serving(&webhook_url, &caddy_listen, &stage_domain, &image, &tag)
            };
            let bare_image = registry.image(&repo, &format!("bare{i}"));
            // Alternate which goes first, so neither always meets a warmer machine.
            let (o, b) = if i % 2 == 0 {
                let o = deploy().await;
                // Let the replaced instance's background stop pass before the bare run.
                tokio::time::sleep(Duration::from_secs(7)).await;
                (o, deploys::bare(&bare_image).await)
            } else {
                let b = deploys::bare(&bare_image).await;
                (deploy().await, b)
            };
            tokio::time::sleep(Duration::from_secs(7)).await;
            ours.push(ms(o));
            bare.push(ms(b));
            ratio.push(o.as_secs_f64() / b.as_secs_f64());
        }
        report.add("health path: push-to-serving", "ms", &ours);
        report.add("health path: bare pull+run+probe", "ms", &bare);
        report.add("health path: ratio", "x", &ratio);
    }

    if wants("healthcheck") {
        let n = rounds("DW_BENCH_HC_ROUNDS", 3);
        println!("image with HEALTHCHECK --interval=30s, no health path ({n} rounds)");
        let repo = format!("bench/{prefix}-hc");
        let (mut ours, mut bare, mut ratio) = (Vec::new(), Vec::new(), Vec::new());
        for i in 0..n {
            let tag = format!("v{i}");
            registry.push(HEALTHCHECK_IMAGE, &repo, &tag);
            registry.push(HEALTHCHECK_IMAGE, &repo, &format!("bare{i}"));
            let b = deploys::bare(&registry.image(&repo, &format!("bare{i}"))).await;
            let o = deploys::push_to_serving(
                &webhook_url,
                &caddy_listen,
                &domain(&hc),
                &registry.image(&repo, &tag),
                &tag,
            )
            .await;
            tokio::time::sleep(Duration::from_secs(7)).await;
            ours.push(ms(o));
            bare.push(ms(b));
            ratio.push(o.as_secs_f64() / b.as_secs_f64());
        }
        report.add("HEALTHCHECK 30s: push-to-serving", "ms", &ours);
        report.add("HEALTHCHECK 30s: bare pull+run+probe", "ms", &bare);
        report.add("HEALTHCHECK 30s: ratio", "x", &ratio);
    }

    if wants("backtoback") {
        let n = rounds("DW_BENCH_B2B_ROUNDS", 3);
        println!("a push 3 s after the previous one went live (it still drains) ({n} rounds)");
        let repo = format!("bench/{prefix}-hp");
        let (mut ours, mut bare, mut ratio) = (Vec::new(), Vec::new(), Vec::new());
        for i in 0..n {
            let (first, second, bare_tag) = (format!("a{i}"), format!("b{i}"), format!("bb{i}"));
            for tag in [&first, &second, &bare_tag] {
                registry.push(HEALTHY_IMAGE, &repo, tag);
            }
            let b = deploys::bare(&registry.image(&repo, &bare_tag)).await;
            deploys::push_to_serving(
                &webhook_url,
                &caddy_listen,
                &domain(&hp),
                &registry.image(&repo, &first),
                &first,
            )
            .await;
            tokio::time::sleep(Duration::from_secs(3)).await;
            let o = deploys::push_to_serving(
                &webhook_url,
                &caddy_listen,
                &domain(&hp),
                &registry.image(&repo, &second),
                &second,
            )
            .await;
            tokio::time::sleep(Duration::from_secs(7)).await;
            ours.push(ms(o));
            bare.push(ms(b));
            ratio.push(o.as_secs_f64() / b.as_secs_f64());
        }
        report.add("back-to-back: push-to-serving", "ms", &ours);
        report.add("back-to-back: bare pull+run+probe", "ms", &bare);
        report.add("back-to-back: ratio", "x", &ratio);
    }

    if wants("webhook") {
        let n = rounds("DW_BENCH_LOAD_RUNS", 3);
        let total = rounds("DW_BENCH_LOAD_REQUESTS", 20_000);
        println!("webhook intake, {total} requests over 50 connections ({n} runs each)");
        let ignored =
            json!({ "image": registry.image(&format!("bench/{prefix}-nobody"), "v1") }).to_string();
        let starting =
            json!({ "image": registry.image(&format!("bench/{prefix}-load"), "load-1") })
                .to_string();
        for (label, body) in [("ignored", &ignored), ("deploy-starting", &starting)] {
            let (mut rps, mut p50, mut p99, mut cpu) =
                (Vec::new(), Vec::new(), Vec::new(), Vec::new());
            for _ in 0..n {
                // The daemon's own CPU time per request hardly depends on what else runs
                // on the machine, unlike req/s: the figure to compare commits by.
                let cpu_before = daemon.cpu_seconds();
                let result =
                    load::run(&daemon.address(), &webhook_path, body.as_bytes(), total, 50).await;
                cpu.push((daemon.cpu_seconds() - cpu_before) / total as f64 * 1e6);
                assert_eq!(
                    result.statuses.keys().collect::<Vec<_>>(),
                    vec![&202],
                    "{label}: {:?}",
                    result.statuses
                );
                rps.push(result.requests_per_second);
                p50.push(result.p50_ms);
                p99.push(result.p99_ms);
            }
            report.add(&format!("webhook {label}: req/s"), "req/s", &rps);
            report.add(&format!("webhook {label}: p50"), "ms", &p50);
            report.add(&format!("webhook {label}: p99"), "ms", &p99);
            report.add(&format!("webhook {label}: CPU per request"), "µs", &cpu);
        }
        // One request at a time: how long until the deploy is queued and answered.
        let (mut p50, mut p99, mut cpu) = (Vec::new(), Vec::new(), Vec::new());
        for run in 0..n {
            let bodies: Vec<Vec<u8>> = (0..300)
                .map(|i| json!({ "image": registry.image(&format!("bench/{prefix}-load"), &format!("q{run}-{i}")) }).to_string().into_bytes())
                .collect();
            let cpu_before = daemon.cpu_seconds();
            let (mut latencies, statuses) =
                load::sequential(&daemon.address(), &webhook_path, &bodies).await;
            cpu.push((daemon.cpu_seconds() - cpu_before) / bodies.len() as f64 * 1e6);
            assert!(statuses.iter().all(|s| *s == 202), "{statuses:?}");
            latencies.sort_by(f64::total_cmp);
            p50.push(stats::quantile(&latencies, 0.5));
            p99.push(stats::quantile(&latencies, 0.99));
        }
        report.add("webhook → deploy queued: p50", "ms", &p50);
        report.add("webhook → deploy queued: p99", "ms", &p99);
        report.add("webhook → deploy queued: CPU per request", "µs", &cpu);
        let _ = load_project;
    }

    if wants("memory") {
        println!("the daemon idle, with 100 projects, after logins and the load above");
        // The UI's sign-ins (the daemon allows five a minute).
        for _ in 0..3 {
            daemon.login().await;
        }
        tokio::time::sleep(Duration::from_secs(8)).await;
        // Retention's first pass (30 s after the start) prunes what the load above wrote:
        // work, not idleness, so the window starts after it.
        let first_prune = Duration::from_secs(40);
        if let Some(left) = first_prune.checked_sub(started.elapsed()) {
            tokio::time::sleep(left).await;
        }
        let (mut rss, mut anonymous, mut file) = (Vec::new(), Vec::new(), Vec::new());
        let cpu_before = daemon.cpu_seconds();
        // Ten seconds: the daemon's periodic work (parked deploys every second, a memory
        // trim check every five) is in the window a few times; one 10 ms tick is 0.1 %.
        for _ in 0..10 {
            rss.push(daemon.rss_mib());
            let (_, a, f) = daemon.rss_split_mib();
            anonymous.push(a);
            file.push(f);
            tokio::time::sleep(Duration::from_secs(1)).await;
        }
        let cpu = (daemon.cpu_seconds() - cpu_before) / 10.0 * 100.0;
        report.add("idle RSS after logins and load", "MiB", &rss);
        report.add("  of it anonymous (heap, stacks, data)", "MiB", &anonymous);
        report.add("  of it file-backed (the binary's code)", "MiB", &file);
        report.add_one("idle CPU", "%", cpu);
    }

    if wants("start") {
        let n = rounds("DW_BENCH_START_RUNS", 5);
        println!("start → ready ({n} restarts on the same data folder, 100 projects)");
        let mut ready = vec![ms(first_ready)];
        let mut cpu = vec![first_cpu_ms];
        for _ in 0..n {
            ready.push(ms(daemon.restart().await));
            cpu.push(daemon.start_cpu_ms);
        }
        report.add("start → ready (first start, then restarts)", "ms", &ready);
        // What the machine's load does not change much: the CPU it took to get there.
        report.add("  CPU used until ready", "ms", &cpu);
        let size = std::fs::metadata(&binary).map(|m| m.len()).unwrap_or(0);
        report.add_one("binary size", "MB", size as f64 / 1e6);
    }

    cleanup(&prefix);
    if std::env::var_os("DW_BENCH_KEEP").is_some() {
        println!(
            "data folder kept in {}",
            daemon.stop_and_keep().await.display()
        );
    }

    if wants("poll") {
        let stages = rounds("DW_BENCH_POLL_STAGES", 10_000);
        println!("poll cycle: {stages} stages over {} images", stages / 4);
        let cycles = poll::run(&registry, stages).await;
        report.add(&format!("poll cycle at {stages} stages"), "ms", &cycles);
    }

    let commit = run_ok(
        "git",
        &[
            "-C",
            root.to_str().unwrap_or("."),
            "rev-parse",
            "--short",
            "HEAD",
        ],
    );
    let json = report.to_json(json!({
        "commit": commit.trim(),
        "binary": binary.display().to_string(),
        "cores": std::thread::available_parallelism().map(|n| n.get()).unwrap_or(0),
        "unix_time": std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or(0),
    }));
    let out = root.join("target/bench.json");
    std::fs::write(
        &out,
        serde_json::to_string_pretty(&json).unwrap_or_default(),
    )
    .expect("write bench.json");
    println!("figures written to {}", out.display());
}

async fn create_project(
    daemon: &Daemon,
    name: &str,
    registry: &Registry,
    health_path: Option<&str>,
) -> String {
    let mut body = json!({
        "name": name,
        "image": format!("127.0.0.1:{}/bench/{name}", registry.port),
        "container_port": 8080,
    });
    if let Some(path) = health_path {
        body["health_path"] = Value::from(path);
    }
    let project = daemon.call(Method::POST, "/api/projects", Some(body)).await;
    daemon
        .call(
            Method::POST,
            &format!("/api/projects/{}/stages", project["id"]),
            Some(json!({ "name": "dev", "auto_deploy": true, "max_instances": 1 })),
        )
        .await;
    name.to_string()
}

/// Removes the containers the benchmark's projects left (by their project label).
fn cleanup(prefix: &str) {
    let ids = run_ok(
        docker(),
        &[
            "ps",
            "-aq",
            "--filter",
            "label=dev.docker-watcher.managed=true",
            "--format",
            "{{.ID}} {{.Label \"dev.docker-watcher.project\"}}",
        ],
    );
    for line in ids.lines() {
        if let Some((id, project)) = line.split_once(' ')
            && project.starts_with(&format!("{prefix}-"))
        {
            let _ = std::process::Command::new(docker())
                .args(["rm", "-f", id])
                .output();
        }
    }
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}
