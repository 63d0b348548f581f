//! Push-to-serving: from the webhook that names a fresh tag until the stage's domain
//! answers from the new container through real Caddy; and the bare equivalent on the same
//! machine (`docker pull`, `docker run`, probing `/health` every 2 ms until it answers).

use std::time::{Duration, Instant};

use serde_json::json;

use super::daemon::{docker, run_ok};

/// Sends the webhook for `image` (a tag already in the registry) and waits until
/// `Host: domain` on Caddy's listener answers `/tag` with `tag`.
pub async fn push_to_serving(
    webhook_url: &str,
    caddy_listen: &str,
    domain: &str,
    image: &str,
    tag: &str,
) -> Duration {
    let client = reqwest::Client::builder()
        .pool_max_idle_per_host(0)
        .timeout(Duration::from_secs(5))
        .build()
        .expect("client");
    let started = Instant::now();
    let answer = client
        .post(webhook_url)
        .json(&json!({ "image": image }))
        .send()
        .await
        .expect("webhook");
    assert_eq!(answer.status().as_u16(), 202, "webhook for {image}");
    let url = format!("http://{caddy_listen}/tag");
    loop {
        if let Ok(response) = client.get(&url).header("host", domain).send().await
            && response.status().is_success()
            && response.text().await.is_ok_and(|body| body.trim() == tag)
        {
            return started.elapsed();
        }
        assert!(
            started.elapsed() < Duration::from_secs(120),
            "{domain} never served {tag}"
        );
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
}

/// `docker pull` + `docker run` + probing `/health` until it answers 200.
pub async fn bare(image: &str) -> Duration {
    let docker = docker();
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
    let id = id.trim().to_string();
    let port = run_ok(docker, &["port", &id, "8080/tcp"]);
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
    run_ok(docker, &["rm", "-f", &id]);
    run_ok(docker, &["rmi", image]);
    elapsed
}
