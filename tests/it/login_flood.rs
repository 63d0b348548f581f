//! A login flood (issue 12 §2): hundreds of concurrent wrong logins from distinct
//! addresses (all on loopback: 127.0.0.0/8 is ours) must not take the daemon's memory
//! or its answers. Password hashing is bounded; the rest get 429 with Retry-After.

use std::net::IpAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use serde_json::json;

use crate::support::app::{ADMIN_PASSWORD, spawn_app};

const LOGINS: usize = 300;

/// POSTs `body` over a plain socket bound to `source`, sending only once every client of
/// the flood has connected (`start`), so the logins arrive together however slowly a
/// loaded machine opens connections; returns the status and whether the answer has a
/// Retry-After header.
async fn raw_post(
    source: IpAddr,
    to: std::net::SocketAddr,
    path: &str,
    body: &str,
    start: &tokio::sync::Barrier,
) -> (u16, bool) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let socket = tokio::net::TcpSocket::new_v4().unwrap();
    socket.bind((source, 0).into()).unwrap();
    let mut stream = socket.connect(to).await.expect("connect");
    start.wait().await;
    let request = format!(
        "POST {path} HTTP/1.1\r\nHost: {to}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
    stream.write_all(request.as_bytes()).await.unwrap();
    let mut answer = Vec::new();
    stream
        .read_to_end(&mut answer)
        .await
        .expect("an answer, not a dropped connection");
    let text = String::from_utf8_lossy(&answer).to_ascii_lowercase();
    let status = text
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    (status, text.contains("\r\nretry-after:"))
}

/// This process's resident memory in KiB (the daemon runs in process).
fn rss_kib() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmRSS:"))
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|v| v.parse().ok())
        })
        .unwrap_or(0)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_login_flood_gets_429s_and_the_daemon_keeps_answering() {
    let app = spawn_app().await;
    let before = rss_kib();
    let finished = Arc::new(AtomicUsize::new(0));
    let start = Arc::new(tokio::sync::Barrier::new(LOGINS + 1));
    let mut flood = Vec::new();
    let address: std::net::SocketAddr = app.address.trim_start_matches("http://").parse().unwrap();
    for i in 0..LOGINS {
        // A distinct source address and username each, so neither limiter applies and
        // only the bound on hashing stands between the flood and the memory. Plain
        // sockets: 300 HTTP clients would weigh more than the daemon.
        let source: IpAddr = format!("127.0.{}.{}", 1 + i / 250, 1 + i % 250)
            .parse()
            .unwrap();
        let finished = finished.clone();
        let start = start.clone();
        flood.push(tokio::spawn(async move {
            let body = json!({ "username": format!("guess-{i}"), "password": "wrong-password" })
                .to_string();
            let answer = raw_post(source, address, "/api/auth/login", &body, &start).await;
            finished.fetch_add(1, Ordering::SeqCst);
            answer
        }));
    }
    start.wait().await;
    // While the flood is on, the daemon answers.
    let (status, _) = app.healthz().await;
    let done_by_then = finished.load(Ordering::SeqCst);
    assert_eq!(status, 200);
    assert!(done_by_then < LOGINS, "/healthz answered during the flood");

    let mut counts = std::collections::BTreeMap::new();
    for task in flood {
        let (status, retry_after) = task.await.unwrap();
        assert!(
            status == 401 || status == 429,
            "a wrong login is 401 or 429, got {status}"
        );
        if status == 429 {
            assert!(retry_after, "429 says when to come back");
        }
        *counts.entry(status).or_insert(0) += 1;
    }
    let refused = counts.get(&429).copied().unwrap_or(0);
    let hashed = counts.get(&401).copied().unwrap_or(0);
    eprintln!(
        "login flood: {LOGINS} logins, {hashed} hashed (401), {refused} refused (429); RSS {} MiB before, {} MiB after",
        before / 1024,
        rss_kib() / 1024
    );
    assert!(refused > LOGINS / 2, "most are refused: {counts:?}");
    assert!(hashed >= 1, "some were checked: {counts:?}");
    // The admin still signs in (from an address the flood did not use).
    let response = app
        .client
        .post(format!("{}/api/auth/login", app.address))
        .json(&json!({ "username": "admin", "password": ADMIN_PASSWORD }))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    app.shutdown().await;
}

#[tokio::test]
async fn guesses_of_one_username_from_many_addresses_are_limited() {
    let app = spawn_app().await;
    let mut statuses = Vec::new();
    for i in 0..12u8 {
        let client = reqwest::Client::builder()
            .local_address(IpAddr::from([127, 0, 3, i + 1]))
            .build()
            .unwrap();
        let response = client
            .post(format!("{}/api/auth/login", app.address))
            .json(&json!({ "username": "admin", "password": "wrong-password" }))
            .send()
            .await
            .unwrap();
        statuses.push(response.status().as_u16());
    }
    assert_eq!(&statuses[..10], &[401; 10], "{statuses:?}");
    assert_eq!(&statuses[10..], &[429, 429], "{statuses:?}");
    app.shutdown().await;
}

/// The current password on a password change is guessed no faster than a login.
#[tokio::test]
async fn current_password_guesses_are_limited_too() {
    let app = spawn_app().await;
    let api = app.api().await;
    let mut statuses = Vec::new();
    for _ in 0..12 {
        let (status, _) = api
            .put(
                "/api/auth/password",
                json!({ "current_password": "wrong-guess", "new_password": "a-new-password" }),
            )
            .await;
        statuses.push(status);
    }
    // One attempt went to the login of `api()`; nine wrong guesses are 422, then 429.
    assert_eq!(&statuses[..9], &[422; 9], "{statuses:?}");
    assert!(statuses[9..].iter().all(|s| *s == 429), "{statuses:?}");
    app.shutdown().await;
}
