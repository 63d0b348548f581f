//! The server's connection limits against raw TCP clients on 127.0.0.1: slowloris
//! connections are closed after the header timeout, idle connections at the cap make room
//! for new ones, and a cap full of signed-in connections refuses the next one with a 503.

use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::support::app::{AppOptions, TestApp, spawn_app_with};

/// A bound on how long a test waits for the daemon to act, far above the timeouts set.
const PATIENCE: Duration = Duration::from_secs(20);

async fn connect(app: &TestApp) -> TcpStream {
    let addr = app.address.trim_start_matches("http://");
    TcpStream::connect(addr).await.expect("connect")
}

/// Sends one request and reads its answer (keep-alive: the connection stays open).
async fn request(stream: &mut TcpStream, path: &str, token: Option<&str>) -> (u16, String) {
    let auth = token
        .map(|t| format!("Authorization: Bearer {t}\r\n"))
        .unwrap_or_default();
    let request = format!("GET {path} HTTP/1.1\r\nHost: localhost\r\n{auth}\r\n");
    stream.write_all(request.as_bytes()).await.expect("write");
    read_answer(stream).await
}

/// Reads one answer with a Content-Length body.
async fn read_answer(stream: &mut TcpStream) -> (u16, String) {
    let mut buf = Vec::new();
    let mut chunk = [0u8; 4096];
    loop {
        if let Some(end) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            let head = String::from_utf8_lossy(&buf[..end]).to_string();
            let length: usize = head
                .lines()
                .find_map(|l| {
                    l.to_ascii_lowercase()
                        .strip_prefix("content-length:")
                        .map(|v| v.trim().parse().unwrap())
                })
                .unwrap_or(0);
            if buf.len() >= end + 4 + length {
                let status = head.split(' ').nth(1).unwrap().parse().unwrap();
                let body = String::from_utf8_lossy(&buf[end + 4..end + 4 + length]).to_string();
                return (status, body);
            }
        }
        let n = tokio::time::timeout(PATIENCE, stream.read(&mut chunk))
            .await
            .expect("an answer in time")
            .expect("read");
        assert!(
            n > 0,
            "closed before answering: {:?}",
            String::from_utf8_lossy(&buf)
        );
        buf.extend_from_slice(&chunk[..n]);
    }
}

/// Whether the daemon closed the connection (EOF or reset) before `PATIENCE` ran out.
async fn closed_by_daemon(stream: &mut TcpStream) -> bool {
    let mut chunk = [0u8; 1024];
    loop {
        match tokio::time::timeout(PATIENCE, stream.read(&mut chunk)).await {
            Err(_) => return false,
            Ok(Ok(0)) | Ok(Err(_)) => return true,
            Ok(Ok(_)) => {}
        }
    }
}

#[tokio::test]
async fn slowloris_connections_are_closed_after_the_header_timeout() {
    let app = spawn_app_with(AppOptions {
        header_timeout_secs: Some(1),
        ..Default::default()
    })
    .await;
    let mut tasks = Vec::new();
    for _ in 0..20 {
        let mut stream = connect(&app).await;
        tasks.push(tokio::spawn(async move {
            stream
                .write_all(b"GET /healthz HTTP/1.1\r\nHost: localhost\r\n")
                .await
                .unwrap();
            // One more header line every 200 ms, never the blank line that ends them.
            let (mut reader, mut writer) = stream.into_split();
            let trickle = tokio::spawn(async move {
                for i in 0.. {
                    tokio::time::sleep(Duration::from_millis(200)).await;
                    if writer
                        .write_all(format!("X-{i}: a\r\n").as_bytes())
                        .await
                        .is_err()
                    {
                        return;
                    }
                }
            });
            let mut chunk = [0u8; 1024];
            let closed = loop {
                match tokio::time::timeout(PATIENCE, reader.read(&mut chunk)).await {
                    Err(_) => break false,
                    Ok(Ok(0)) | Ok(Err(_)) => break true,
                    Ok(Ok(_)) => {}
                }
            };
            trickle.abort();
            closed
        }));
    }
    for task in tasks {
        assert!(task.await.unwrap(), "a slowloris connection stayed open");
    }
    let (status, _) = app.healthz().await;
    assert_eq!(status, 200);
    app.shutdown().await;
}

#[tokio::test]
async fn an_idle_keep_alive_connection_is_closed_after_the_timeout() {
    let app = spawn_app_with(AppOptions {
        header_timeout_secs: Some(1),
        ..Default::default()
    })
    .await;
    let mut stream = connect(&app).await;
    let (status, _) = request(&mut stream, "/healthz", None).await;
    assert_eq!(status, 200);
    assert!(
        closed_by_daemon(&mut stream).await,
        "the idle connection stayed open"
    );
    app.shutdown().await;
}

#[tokio::test]
async fn with_the_cap_full_of_idle_connections_healthz_and_signed_in_users_still_get_answers() {
    let app = spawn_app_with(AppOptions {
        max_connections: Some(40),
        header_timeout_secs: Some(60),
        ..Default::default()
    })
    .await;
    let token = app.login().await.token;
    // Five times the cap of connections that send nothing.
    let mut idle = Vec::new();
    for _ in 0..200 {
        idle.push(connect(&app).await);
    }
    for _ in 0..3 {
        let mut stream = connect(&app).await;
        let (status, body) = request(&mut stream, "/healthz", None).await;
        assert_eq!(status, 200, "{body}");
        let mut stream = connect(&app).await;
        let (status, body) = request(&mut stream, "/api/auth/me", Some(&token)).await;
        assert_eq!(status, 200, "{body}");
    }
    drop(idle);
    app.shutdown().await;
}

#[tokio::test]
async fn beyond_the_cap_a_connection_is_refused_and_anonymous_requests_yield_to_signed_in_ones() {
    let app = spawn_app_with(AppOptions {
        max_connections: Some(20),
        header_timeout_secs: Some(60),
        ..Default::default()
    })
    .await;
    let token = app.login().await.token;
    // Signed-in connections up to three quarters of the cap: still room for everyone.
    let mut held = Vec::new();
    for _ in 0..15 {
        let mut stream = connect(&app).await;
        let (status, body) = request(&mut stream, "/api/auth/me", Some(&token)).await;
        assert_eq!(status, 200, "{body}");
        held.push(stream);
    }
    // Above it, a request without credentials is turned away; one with them is served,
    // and so is /healthz.
    let mut anonymous = connect(&app).await;
    let (status, body) = request(&mut anonymous, "/api/projects", None).await;
    assert_eq!(status, 503, "{body}");
    assert!(body.contains("busy"), "{body}");
    assert!(closed_by_daemon(&mut anonymous).await);
    let mut monitor = connect(&app).await;
    let (status, _) = request(&mut monitor, "/healthz", None).await;
    assert_eq!(status, 200);
    drop(monitor);
    while held.len() < 20 {
        let mut stream = connect(&app).await;
        let (status, body) = request(&mut stream, "/api/auth/me", Some(&token)).await;
        assert_eq!(status, 200, "{body}");
        held.push(stream);
    }
    // The cap is full of signed-in connections: nothing to evict, the next is refused.
    let mut extra = connect(&app).await;
    let (status, body) = read_answer(&mut extra).await;
    assert_eq!(status, 503, "{body}");
    assert!(closed_by_daemon(&mut extra).await);
    // A signed-in connection closing makes room again.
    held.pop();
    let mut again = connect(&app).await;
    let mut answered = false;
    for _ in 0..50 {
        // The daemon notices the closed connection a moment later.
        let (status, _) = request(&mut again, "/api/auth/me", Some(&token)).await;
        if status == 200 {
            answered = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
        again = connect(&app).await;
    }
    assert!(answered, "no room after a connection closed");
    app.shutdown().await;
}

/// Opens `/api/events` with `token`; the answer is returned with its stream still open.
async fn open_events(app: &TestApp, token: &str) -> reqwest::Response {
    app.client
        .get(format!("{}/api/events", app.address))
        .bearer_auth(token)
        .send()
        .await
        .expect("events request")
}

#[tokio::test]
async fn event_streams_are_capped_per_sign_in_and_in_total_with_a_reason() {
    use docker_watcher::api::{STREAMS_PER_CALLER, STREAMS_TOTAL};
    let app = spawn_app_with(AppOptions::default()).await;
    let api = app.api().await;
    let mut tokens = Vec::new();
    for i in 0..=STREAMS_TOTAL / STREAMS_PER_CALLER {
        let created = api
            .create(
                "/api/auth/tokens",
                serde_json::json!({ "name": format!("t{i}") }),
            )
            .await;
        tokens.push(created["token"].as_str().unwrap().to_string());
    }
    let mut open = Vec::new();
    for _ in 0..STREAMS_PER_CALLER {
        let response = open_events(&app, &tokens[0]).await;
        assert_eq!(response.status(), 200);
        open.push(response);
    }
    let refused = open_events(&app, &tokens[0]).await;
    assert_eq!(refused.status(), 429);
    assert!(refused.headers().contains_key("retry-after"));
    let body: serde_json::Value = refused.json().await.unwrap();
    assert!(
        body["error"]
            .as_str()
            .unwrap()
            .contains("this sign-in already has"),
        "{body}"
    );
    // Another token still gets its own.
    let other = open_events(&app, &tokens[1]).await;
    assert_eq!(other.status(), 200);
    drop(other);
    // A closed stream gives its place back (the daemon notices the closed connection).
    open.pop();
    let mut reopened = None;
    for _ in 0..100 {
        let response = open_events(&app, &tokens[0]).await;
        if response.status() == 200 {
            reopened = Some(response);
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    open.push(reopened.expect("a place after a stream closed"));
    // Fill every place, one token after another, until the total is reached.
    let mut n = STREAMS_PER_CALLER;
    'fill: for token in &tokens[1..] {
        for _ in 0..STREAMS_PER_CALLER {
            if n == STREAMS_TOTAL {
                break 'fill;
            }
            let mut response = open_events(&app, token).await;
            for _ in 0..100 {
                if response.status() == 200 {
                    break;
                }
                // `other` above may not have been given back yet.
                tokio::time::sleep(Duration::from_millis(50)).await;
                response = open_events(&app, token).await;
            }
            assert_eq!(response.status(), 200);
            open.push(response);
            n += 1;
        }
    }
    let last = tokens.last().unwrap();
    let refused = open_events(&app, last).await;
    assert_eq!(refused.status(), 429);
    let body: serde_json::Value = refused.json().await.unwrap();
    assert!(
        body["error"]
            .as_str()
            .unwrap()
            .contains("event streams are open"),
        "{body}"
    );
    drop(open);
    app.shutdown().await;
}

/// nextest runs each test in its own process, so lowering this process's limit touches no
/// other test; `start` raises it back.
#[tokio::test]
async fn start_raises_the_soft_open_files_limit_to_the_hard_one() {
    use rlimit::Resource;
    let (_, hard) = rlimit::getrlimit(Resource::NOFILE).unwrap();
    assert!(
        hard > 512,
        "the hard limit ({hard}) leaves nothing to raise"
    );
    rlimit::setrlimit(Resource::NOFILE, 512, hard).unwrap();
    let app = spawn_app_with(AppOptions::default()).await;
    let (soft, _) = rlimit::getrlimit(Resource::NOFILE).unwrap();
    assert_eq!(soft, hard);
    app.shutdown().await;
}
