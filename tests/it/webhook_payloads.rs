//! The payload parser against what a real Docker Distribution registry sends: a tiny
//! receiver captures the registry's notifications for a real `docker push`, and the
//! parser must find exactly the one tagged manifest push in them.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::HeaderMap;
use axum::routing::post;
use docker_watcher::webhook::{
    IgnoreReason, ParseOptions, ParsedPayload, SourceFormat, parse_payload,
};

use crate::support::registry::{RegistryOptions, TestRegistry};
use crate::support::{HEALTHY_IMAGE, unique_name};

type Captured = Arc<Mutex<Vec<(HeaderMap, Bytes)>>>;

/// Stores every request it receives and answers 200, as a webhook receiver would.
struct Receiver {
    url: String,
    captured: Captured,
    server: tokio::task::JoinHandle<()>,
}

impl Receiver {
    async fn start() -> Receiver {
        let captured = Captured::default();
        let app = Router::new()
            .route(
                "/notify",
                post(
                    |State(captured): State<Captured>, headers: HeaderMap, body: Bytes| async move {
                        captured.lock().unwrap().push((headers, body));
                    },
                ),
            )
            .with_state(captured.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let server = tokio::spawn(async move {
            axum::serve(listener, app).await.unwrap();
        });
        Receiver {
            url: format!("http://127.0.0.1:{port}/notify"),
            captured,
            server,
        }
    }

    /// Every request so far, parsed (a request that does not parse fails the test).
    fn parsed(&self) -> Vec<ParsedPayload> {
        self.captured
            .lock()
            .unwrap()
            .iter()
            .map(|(headers, body)| {
                parse_payload(headers, body, &ParseOptions::default()).unwrap_or_else(|e| {
                    panic!(
                        "registry notification did not parse: {e}\nheaders: {headers:?}\nbody: {}",
                        String::from_utf8_lossy(body)
                    )
                })
            })
            .collect()
    }
}

impl Drop for Receiver {
    fn drop(&mut self) {
        self.server.abort();
    }
}

#[tokio::test]
async fn real_registry_push_notification_parses_to_one_tagged_push() {
    let receiver = Receiver::start().await;
    let registry = TestRegistry::start_with(RegistryOptions {
        notify_url: Some(receiver.url.clone()),
        ..Default::default()
    })
    .await;
    let repository = unique_name("acme/shop");
    let digest = registry.push(HEALTHY_IMAGE, &repository, "dev-1").await;

    // Notifications are sent after the push returns; wait, bounded, for the manifest's.
    let deadline = Instant::now() + Duration::from_secs(15);
    let payloads = loop {
        let payloads = receiver.parsed();
        if payloads.iter().any(|p| p.pushes().next().is_some()) {
            break payloads;
        }
        if Instant::now() > deadline {
            panic!(
                "no tagged manifest push arrived within 15 s; received {} requests: {payloads:#?}\nregistry log:\n{}",
                payloads.len(),
                registry.log()
            );
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    };

    assert!(
        payloads
            .iter()
            .all(|p| p.format == SourceFormat::Distribution),
        "{payloads:#?}"
    );
    let pushes: Vec<_> = payloads.iter().flat_map(|p| p.pushes()).collect();
    assert_eq!(pushes.len(), 1, "{payloads:#?}");
    let push = pushes[0];
    assert_eq!(
        push.image.to_string(),
        format!("{}/{repository}:dev-1", registry.host())
    );
    assert_eq!(push.image.registry(), registry.host());
    assert_eq!(push.image.repository(), repository);
    assert_eq!(push.tag.as_str(), "dev-1");
    assert_eq!(push.digest.as_deref(), Some(digest.as_str()));

    // The image's layer and config blobs were pushed before the manifest and announced
    // too: each is ignored as a layer push.
    let layer_pushes = payloads
        .iter()
        .flat_map(|p| p.ignored())
        .filter(|i| i.reason == IgnoreReason::LayerPush)
        .count();
    assert!(
        layer_pushes >= 1,
        "no layer push was ignored: {payloads:#?}"
    );
}
