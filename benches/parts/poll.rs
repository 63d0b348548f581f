//! One poll cycle at scale: `stages` polling stages, four per image, over `stages / 4`
//! repositories in a real docker-registry, through the library's `Poller` on a real
//! SQLite store. The repositories are made with the registry's HTTP API (two blobs
//! uploaded once, mounted into every other repository, one manifest each), which is far
//! quicker than `docker push` and gives the registry the same content.

use std::sync::Arc;
use std::time::Instant;

use futures_util::StreamExt;
use serde_json::json;
use sha2::{Digest, Sha256};

use docker_watcher::crypto::{MasterKey, Sealer};
use docker_watcher::poller::Poller;
use docker_watcher::store::{NewProject, NewStage, Store, StoreError};
use docker_watcher::trigger::{DeployRequest, DeployTrigger};

use super::daemon::Registry;

/// Times `CYCLES` poll cycles after the first (which only records what exists); ms each.
pub async fn run(registry: &Registry, stages: usize) -> Vec<f64> {
    const CYCLES: usize = 3;
    let images = stages.div_ceil(4);
    let base = format!("http://127.0.0.1:{}", registry.port);
    let prefix = format!("poll{}", std::process::id());
    let made = Instant::now();
    fill_registry(&base, &prefix, images).await;
    println!(
        "  ({images} repositories made in {:.1} s)",
        made.elapsed().as_secs_f64()
    );

    let dir = tempfile::tempdir().expect("temp dir");
    let store = Store::open(dir.path(), Sealer::new(MasterKey::generate())).expect("store");
    for i in 0..images {
        let project = store
            .create_project(&NewProject {
                name: format!("p{i}"),
                image: format!("127.0.0.1:{}/{prefix}/app{i}", registry.port),
                container_port: 8080,
                ..Default::default()
            })
            .expect("project");
        for s in 0..4.min(stages - i * 4) {
            store
                .create_stage(&NewStage {
                    polling: true,
                    ..NewStage::defaults(project.id, &format!("s{s}"))
                })
                .expect("stage");
        }
    }
    let poller = Poller::new(store, Arc::new(NoDeploys));
    let first = poller.poll_once().await;
    assert_eq!(
        first.images_listed, images,
        "the first cycle lists every image"
    );
    let mut cycles = Vec::new();
    for _ in 0..CYCLES {
        let started = Instant::now();
        let outcome = poller.poll_once().await;
        cycles.push(started.elapsed().as_secs_f64() * 1000.0);
        assert_eq!(outcome.stages.len(), stages, "every stage polled");
        assert!(
            outcome.stages.iter().all(|s| s.error.is_none()),
            "no stage failed"
        );
    }
    cycles
}

struct NoDeploys;

#[async_trait::async_trait]
impl DeployTrigger for NoDeploys {
    async fn request_deploy(&self, _request: DeployRequest) -> Result<i64, StoreError> {
        Err(StoreError::Invalid("the benchmark deploys nothing".into()))
    }
}

async fn fill_registry(base: &str, prefix: &str, images: usize) {
    let client = reqwest::Client::new();
    let config = json!({ "architecture": "amd64", "os": "linux", "rootfs": { "type": "layers", "diff_ids": [] } })
        .to_string()
        .into_bytes();
    let layer = b"not really a layer".to_vec();
    let (config_digest, layer_digest) = (digest(&config), digest(&layer));
    let first = format!("{prefix}/app0");
    for blob in [&config, &layer] {
        let started = client
            .post(format!("{base}/v2/{first}/blobs/uploads/"))
            .send()
            .await
            .expect("start upload");
        let location = started.headers()["location"]
            .to_str()
            .expect("location")
            .to_string();
        let location = if location.starts_with("http") {
            location
        } else {
            format!("{base}{location}")
        };
        let separator = if location.contains('?') { '&' } else { '?' };
        let put = client
            .put(format!("{location}{separator}digest={}", digest(blob)))
            .header("content-type", "application/octet-stream")
            .body(blob.clone())
            .send()
            .await
            .expect("upload");
        assert!(put.status().is_success(), "upload: {}", put.status());
    }
    let manifest = json!({
        "schemaVersion": 2,
        "mediaType": "application/vnd.docker.distribution.manifest.v2+json",
        "config": { "mediaType": "application/vnd.docker.container.image.v1+json",
                    "size": config.len(), "digest": config_digest },
        "layers": [{ "mediaType": "application/vnd.docker.image.rootfs.diff.tar.gzip",
                     "size": layer.len(), "digest": layer_digest }],
    })
    .to_string();
    futures_util::stream::iter(0..images)
        .map(|i| {
            let (client, manifest, first) = (client.clone(), manifest.clone(), first.clone());
            let (config_digest, layer_digest) = (config_digest.clone(), layer_digest.clone());
            async move {
                let repo = format!("{prefix}/app{i}");
                if i > 0 {
                    for d in [&config_digest, &layer_digest] {
                        let mounted = client
                            .post(format!(
                                "{base}/v2/{repo}/blobs/uploads/?mount={d}&from={first}"
                            ))
                            .send()
                            .await
                            .expect("mount");
                        assert_eq!(mounted.status().as_u16(), 201, "mount into {repo}");
                    }
                }
                let put = client
                    .put(format!("{base}/v2/{repo}/manifests/v1.0.{i}"))
                    .header(
                        "content-type",
                        "application/vnd.docker.distribution.manifest.v2+json",
                    )
                    .body(manifest)
                    .send()
                    .await
                    .expect("manifest");
                assert!(
                    put.status().is_success(),
                    "manifest for {repo}: {}",
                    put.status()
                );
            }
        })
        .buffer_unordered(16)
        .collect::<Vec<()>>()
        .await;
}

fn digest(bytes: &[u8]) -> String {
    format!("sha256:{}", hex::encode(Sha256::digest(bytes)))
}
