//! A small HTTP/1.1 load generator (what `hey -c 50` does): `connections` keep-alive
//! connections send one prepared request each, back to back, until `total` have been
//! answered; every latency is kept. Raw sockets and a hand-written request keep the
//! generator's own cost small, as it shares the two cores with the daemon it measures.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use super::stats::quantile;

/// What one load run saw.
pub struct LoadResult {
    pub requests_per_second: f64,
    pub p50_ms: f64,
    pub p99_ms: f64,
    /// Answers by status code.
    pub statuses: std::collections::BTreeMap<u16, usize>,
}

/// POSTs `body` (JSON) to `path` on `addr` `total` times over `connections` connections.
pub async fn run(
    addr: &str,
    path: &str,
    body: &[u8],
    total: usize,
    connections: usize,
) -> LoadResult {
    let request = Arc::new(request_bytes(addr, path, body));
    let remaining = Arc::new(AtomicUsize::new(total));
    let started = Instant::now();
    let mut tasks = Vec::new();
    for _ in 0..connections {
        let (request, remaining, addr) = (request.clone(), remaining.clone(), addr.to_string());
        tasks.push(tokio::spawn(async move {
            let mut latencies = Vec::new();
            let mut statuses = Vec::new();
            let mut stream = connect(&addr).await;
            let mut buffer = Vec::with_capacity(4096);
            while take(&remaining) {
                let sent = Instant::now();
                let status = match exchange(&mut stream, &request, &mut buffer).await {
                    Some(status) => status,
                    None => {
                        // The server closed the connection: a new one, and count it as 0.
                        stream = connect(&addr).await;
                        0
                    }
                };
                latencies.push(sent.elapsed().as_secs_f64() * 1000.0);
                statuses.push(status);
            }
            (latencies, statuses)
        }));
    }
    let mut latencies = Vec::with_capacity(total);
    let mut statuses = std::collections::BTreeMap::new();
    for task in tasks {
        let (l, s) = task.await.expect("load task");
        latencies.extend(l);
        for status in s {
            *statuses.entry(status).or_insert(0) += 1;
        }
    }
    let elapsed = started.elapsed();
    latencies.sort_by(f64::total_cmp);
    LoadResult {
        requests_per_second: latencies.len() as f64 / elapsed.as_secs_f64(),
        p50_ms: quantile(&latencies, 0.50),
        p99_ms: quantile(&latencies, 0.99),
        statuses,
    }
}

/// The latency of `count` requests sent one at a time on one connection (no queueing
/// behind other requests): how long a single webhook takes to be answered.
pub async fn sequential(addr: &str, path: &str, bodies: &[Vec<u8>]) -> (Vec<f64>, Vec<u16>) {
    let mut stream = connect(addr).await;
    let mut buffer = Vec::with_capacity(4096);
    let mut latencies = Vec::new();
    let mut statuses = Vec::new();
    for body in bodies {
        let request = request_bytes(addr, path, body);
        let sent = Instant::now();
        let status = exchange(&mut stream, &request, &mut buffer)
            .await
            .unwrap_or(0);
        latencies.push(sent.elapsed().as_secs_f64() * 1000.0);
        statuses.push(status);
    }
    (latencies, statuses)
}

fn take(remaining: &AtomicUsize) -> bool {
    remaining
        .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |n| n.checked_sub(1))
        .is_ok()
}

async fn connect(addr: &str) -> TcpStream {
    for _ in 0..100 {
        if let Ok(stream) = TcpStream::connect(addr).await {
            let _ = stream.set_nodelay(true);
            return stream;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    panic!("cannot connect to {addr}");
}

fn request_bytes(addr: &str, path: &str, body: &[u8]) -> Vec<u8> {
    let mut request = format!(
        "POST {path} HTTP/1.1\r\nHost: {addr}\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n",
        body.len()
    )
    .into_bytes();
    request.extend_from_slice(body);
    request
}

/// Sends `request`, reads one whole response; its status, or `None` when the connection
/// closed.
async fn exchange(stream: &mut TcpStream, request: &[u8], buffer: &mut Vec<u8>) -> Option<u16> {
    stream.write_all(request).await.ok()?;
    buffer.clear();
    let mut chunk = [0u8; 4096];
    loop {
        let n = stream.read(&mut chunk).await.ok()?;
        if n == 0 {
            return None;
        }
        buffer.extend_from_slice(&chunk[..n]);
        let Some(end) = find(buffer, b"\r\n\r\n") else {
            continue;
        };
        let head = std::str::from_utf8(&buffer[..end]).ok()?;
        let status = head.split(' ').nth(1)?.parse().ok()?;
        let length: usize = head
            .lines()
            .find_map(|l| {
                let (name, value) = l.split_once(':')?;
                name.eq_ignore_ascii_case("content-length")
                    .then(|| value.trim().parse().ok())?
            })
            .unwrap_or(0);
        while buffer.len() < end + 4 + length {
            let n = stream.read(&mut chunk).await.ok()?;
            if n == 0 {
                return None;
            }
            buffer.extend_from_slice(&chunk[..n]);
        }
        return Some(status);
    }
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}
