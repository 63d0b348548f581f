//! The socket side of the HTTP server: accepts connections and serves the router on each
//! over HTTP/1.1, with limits a client that never signs in cannot get round.
//!
//! - **Header-read and idle timeout.** A client has `header_timeout` to send a request's
//!   headers; hyper starts the same clock again when a keep-alive connection goes idle, so
//!   a slowloris connection and an idle one are both closed after it.
//! - **A cap on connections.** At most `max_connections` are open at once (one permit of a
//!   semaphore each, held until the connection closes), so descriptors never run out. The
//!   cap is lowered at start to fit the open-files limit, whose soft value is first raised
//!   to the hard one. At the cap, a new connection takes the place of the oldest one that
//!   is idle (no request being answered) and has never been signed in; when there is none,
//!   the new one is answered 503 and closed. So idle connections can never lock out
//!   `/healthz` or a signed-in user.
//! - **Room kept for signed-in users.** Whether a connection belongs to a signed-in user is
//!   only known once it sends a request, so the check is per request: once three quarters
//!   of the cap are open, a request without credentials (no `Authorization` header and no
//!   session cookie) is answered 503 and its connection closed; `/healthz` stays open to
//!   monitors. Requests with credentials are served up to the cap, and the timeouts free
//!   the connections an attacker holds without sending anything.
//!
//! HTTP/1.1 only: the daemon sits behind a reverse proxy or is reached by browsers over
//! HTTP/1.1; cleartext HTTP/2 would need limits of its own and nothing uses it.

use std::collections::BTreeMap;
use std::convert::Infallible;
use std::io;
use std::sync::Arc;
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::Duration;

use axum::Router;
use axum::extract::ConnectInfo;
use axum::http::{HeaderValue, Request, Response, StatusCode, header};
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::server::graceful::GracefulShutdown;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::Semaphore;
use tokio_util::sync::CancellationToken;
use tower::ServiceExt;

/// Connections open at once unless the configuration says otherwise.
pub const DEFAULT_MAX_CONNECTIONS: usize = 2048;
/// Time to send a request's headers, and that an idle keep-alive connection stays open.
pub const DEFAULT_HEADER_TIMEOUT: Duration = Duration::from_secs(10);
/// Descriptors kept for what is not a client connection: the store, Docker, the proxy,
/// registries and notifications.
const RESERVED_FILES: u64 = 256;

/// How many connections the server keeps open, and for how long.
#[derive(Clone, Copy, Debug)]
pub struct Limits {
    pub max_connections: usize,
    pub header_timeout: Duration,
}

impl Limits {
    /// Connections open beyond which only requests with credentials (and `/healthz`) are
    /// served: three quarters of the cap.
    pub fn public_connections(&self) -> usize {
        self.max_connections - self.max_connections / 4
    }

    /// These limits with the cap lowered, when needed, so every connection has a file
    /// descriptor and `RESERVED_FILES` are left over.
    pub fn fitted_to(self, open_files: Option<u64>) -> Limits {
        let Some(open_files) = open_files else {
            return self;
        };
        let room = usize::try_from(open_files.saturating_sub(RESERVED_FILES)).unwrap_or(usize::MAX);
        if room < self.max_connections {
            tracing::warn!(
                max_connections = self.max_connections,
                open_files,
                "the open-files limit allows only {room} connections; raise `ulimit -n` to serve more"
            );
        }
        Limits {
            max_connections: self.max_connections.min(room).max(4),
            ..self
        }
    }
}

/// Raises the soft limit on open files to the hard one (a service manager's default soft
/// limit is often 1024) and returns the soft limit in force, if it can be read.
pub fn raise_open_files_limit() -> Option<u64> {
    match rlimit::increase_nofile_limit(u64::MAX) {
        Ok(limit) => Some(limit),
        Err(e) => {
            tracing::warn!("cannot raise the open-files limit: {e}");
            rlimit::getrlimit(rlimit::Resource::NOFILE)
                .ok()
                .map(|(soft, _)| soft)
        }
    }
}

/// Serves `router` on `listener` until `stop` is cancelled, then waits for the open
/// connections to finish their requests.
pub async fn serve(
    listener: TcpListener,
    router: Router,
    limits: Limits,
    stop: CancellationToken,
) -> io::Result<()> {
    let connections = Arc::new(Semaphore::new(limits.max_connections));
    let open = Arc::new(OpenConnections::default());
    let graceful = GracefulShutdown::new();
    let mut builder = http1::Builder::new();
    builder
        .timer(TokioTimer::new())
        .header_read_timeout(limits.header_timeout)
        .keep_alive(true);
    loop {
        let (stream, remote) = tokio::select! {
            () = stop.cancelled() => break,
            accepted = listener.accept() => match accepted {
                Ok(accepted) => accepted,
                Err(e) => {
                    // Out of descriptors, or a connection reset before it was taken:
                    // wait a moment rather than spin, and keep serving.
                    tracing::warn!("cannot accept a connection: {e}");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
        };
        let permit = match connections.clone().try_acquire_owned() {
            Ok(permit) => permit,
            Err(_) if open.evict_one() => {
                // The evicted connection's task gives its permit back as it ends.
                match tokio::time::timeout(EVICTION_WAIT, connections.clone().acquire_owned()).await
                {
                    Ok(Ok(permit)) => permit,
                    _ => {
                        refuse(&stream);
                        continue;
                    }
                }
            }
            Err(_) => {
                refuse(&stream);
                continue;
            }
        };
        let _ = stream.set_nodelay(true);
        let state = open.add();
        let gate = Gate {
            connections: connections.clone(),
            max: limits.max_connections,
            public: limits.public_connections(),
        };
        let router = router.clone();
        let service_state = state.clone();
        let service = hyper::service::service_fn(move |request: Request<Incoming>| {
            let router = router.clone();
            let state = service_state.clone();
            let turned_away = gate.turns_away(&request);
            let credentials = has_credentials(&request);
            async move {
                if turned_away {
                    return Ok::<_, Infallible>(busy());
                }
                state.in_flight.fetch_add(1, Ordering::SeqCst);
                let mut request = request;
                request.extensions_mut().insert(ConnectInfo(remote));
                let response = router.oneshot(request).await;
                if let Ok(response) = &response
                    && credentials
                    && response.status() != StatusCode::UNAUTHORIZED
                {
                    state.signed_in.store(true, Ordering::SeqCst);
                }
                state.in_flight.fetch_sub(1, Ordering::SeqCst);
                response
            }
        });
        let connection = graceful.watch(builder.serve_connection(TokioIo::new(stream), service));
        let open = open.clone();
        tokio::spawn(async move {
            tokio::select! {
                result = connection => if let Err(e) = result {
                    tracing::debug!(%remote, "connection closed: {e}");
                },
                () = state.evicted.cancelled() => {
                    tracing::debug!(%remote, "closed an idle connection to make room");
                }
            }
            open.remove(state.id);
            drop(permit);
        });
    }
    drop(listener);
    graceful.shutdown().await;
    Ok(())
}

/// How long a new connection waits for an evicted one to give its place up.
const EVICTION_WAIT: Duration = Duration::from_millis(500);

/// The open connections, oldest first, for choosing one to close at the cap.
#[derive(Default)]
struct OpenConnections {
    next_id: AtomicUsize,
    by_age: Mutex<BTreeMap<usize, Arc<ConnectionState>>>,
}

/// What the server knows about one connection.
struct ConnectionState {
    id: usize,
    /// Requests being answered (their handler has not returned yet).
    in_flight: AtomicUsize,
    /// A request with credentials was answered with anything but 401.
    signed_in: AtomicBool,
    /// Cancelled to close the connection.
    evicted: CancellationToken,
}

impl OpenConnections {
    fn add(&self) -> Arc<ConnectionState> {
        let id = self.next_id.fetch_add(1, Ordering::SeqCst);
        let state = Arc::new(ConnectionState {
            id,
            in_flight: AtomicUsize::new(0),
            signed_in: AtomicBool::new(false),
            evicted: CancellationToken::new(),
        });
        self.lock().insert(id, state.clone());
        state
    }

    fn remove(&self, id: usize) {
        self.lock().remove(&id);
    }

    /// Closes the oldest connection that is idle and was never signed in; false when
    /// there is none.
    fn evict_one(&self) -> bool {
        let by_age = self.lock();
        let victim = by_age.values().find(|c| {
            !c.evicted.is_cancelled()
                && c.in_flight.load(Ordering::SeqCst) == 0
                && !c.signed_in.load(Ordering::SeqCst)
        });
        match victim {
            Some(victim) => {
                victim.evicted.cancel();
                true
            }
            None => false,
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, BTreeMap<usize, Arc<ConnectionState>>> {
        // A panic while holding the lock leaves the map consistent: keep using it.
        self.by_age.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// Decides, per request, whether a connection above the public share may be served.
#[derive(Clone)]
struct Gate {
    connections: Arc<Semaphore>,
    max: usize,
    public: usize,
}

impl Gate {
    fn turns_away<B>(&self, request: &Request<B>) -> bool {
        let open = self.max - self.connections.available_permits();
        open > self.public && !has_credentials(request) && request.uri().path() != "/healthz"
    }
}

/// Whether a request carries a bearer token or a session cookie (valid or not: checking
/// them is the router's job; this only keeps anonymous traffic out of the reserve).
fn has_credentials<B>(request: &Request<B>) -> bool {
    let headers = request.headers();
    headers.contains_key(header::AUTHORIZATION)
        || headers
            .get_all(header::COOKIE)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .any(|v| {
                v.split(';').any(|c| {
                    c.trim()
                        .strip_prefix(crate::api::auth::SESSION_COOKIE)
                        .is_some_and(|rest| rest.starts_with('='))
                })
            })
}

const BUSY_BODY: &str = r#"{"error":"the server is busy; try again in a few seconds"}"#;

/// The answer to a request turned away: 503, and the connection closes after it.
fn busy() -> Response<axum::body::Body> {
    let mut response = Response::new(axum::body::Body::from(BUSY_BODY));
    *response.status_mut() = StatusCode::SERVICE_UNAVAILABLE;
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    headers.insert(header::RETRY_AFTER, HeaderValue::from_static("5"));
    headers.insert(header::CONNECTION, HeaderValue::from_static("close"));
    response
}

/// A connection beyond the cap: the same 503, written without waiting (a fresh socket's
/// send buffer is empty) and without reading the request, then closed.
fn refuse(stream: &TcpStream) {
    let answer = format!(
        "HTTP/1.1 503 Service Unavailable\r\ncontent-type: application/json\r\n\
         retry-after: 5\r\nconnection: close\r\ncontent-length: {}\r\n\r\n{BUSY_BODY}",
        BUSY_BODY.len()
    );
    let _ = stream.try_write(answer.as_bytes());
    tracing::debug!("refused a connection: the connection cap is reached");
}
