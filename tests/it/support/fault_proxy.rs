//! A loopback TCP proxy that injects faults between docker-watcher (or the Docker Engine)
//! and a real service: a registry, the NPM fake, Caddy's admin API.
//!
//! It forwards bytes both ways untouched until a test switches its [`Fault`]. The fault
//! is looked up each time the client sends a chunk (every HTTP request on a kept-alive
//! connection starts with one), so switching takes effect on the next request, also on
//! pooled connections. A fault may be limited to requests whose first chunk contains a
//! pattern (`/containers/create`, say). It counts the requests it faulted, so a test can
//! prove the fault was really met. The target is a TCP address or a Unix socket (the
//! Docker Engine's, so a daemon given `DW_DOCKER_HOST=tcp://…` meets slow Docker calls).

use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

/// What the proxy does to the next request.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Fault {
    /// Forward untouched.
    Pass,
    /// Forward, after holding the request back this long (a slow link or a busy server).
    Delay(Duration),
    /// Answer `500 Internal Server Error` and close, without asking the service.
    Status500,
    /// Close the connection with a TCP reset, without an answer.
    Reset,
    /// Take the request and say nothing for this long, then close (a server that hangs).
    Stall(Duration),
}

/// The fault now in force, and the pattern a request must contain to meet it.
#[derive(Clone)]
struct Rule {
    fault: Fault,
    pattern: Option<Vec<u8>>,
}

/// Where the proxy forwards to.
#[derive(Clone)]
enum Target {
    Tcp(SocketAddr),
    Unix(std::path::PathBuf),
}

trait Stream: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send {}
impl<T: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send> Stream for T {}

pub struct FaultProxy {
    addr: SocketAddr,
    rule: Arc<Mutex<Rule>>,
    faulted: Arc<AtomicUsize>,
    task: tokio::task::JoinHandle<()>,
}

impl FaultProxy {
    /// Starts forwarding a free 127.0.0.1 port to `target` (`127.0.0.1:PORT`).
    pub async fn start(target: &str) -> FaultProxy {
        Self::start_to(Target::Tcp(
            target.parse().expect("fault proxy target is ip:port"),
        ))
        .await
    }

    /// Forwards to the local Docker Engine's Unix socket; give the daemon
    /// `DW_DOCKER_HOST=` [`FaultProxy::docker_host`].
    pub async fn docker() -> FaultProxy {
        Self::start_to(Target::Unix("/var/run/docker.sock".into())).await
    }

    /// `tcp://127.0.0.1:PORT`, a Docker endpoint through this proxy.
    pub fn docker_host(&self) -> String {
        format!("tcp://{}", self.addr)
    }

    async fn start_to(target: Target) -> FaultProxy {
        let listener = TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind the fault proxy");
        let addr = listener.local_addr().expect("fault proxy address");
        let rule = Arc::new(Mutex::new(Rule {
            fault: Fault::Pass,
            pattern: None,
        }));
        let faulted = Arc::new(AtomicUsize::new(0));
        let (r, n) = (rule.clone(), faulted.clone());
        let task = tokio::spawn(async move {
            while let Ok((client, _)) = listener.accept().await {
                tokio::spawn(serve(client, target.clone(), r.clone(), n.clone()));
            }
        });
        FaultProxy {
            addr,
            rule,
            faulted,
            task,
        }
    }

    /// `127.0.0.1:PORT` of the proxy (the registry part of an image reference).
    pub fn host(&self) -> String {
        self.addr.to_string()
    }

    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Every request from now on meets `fault`.
    pub fn set(&self, fault: Fault) {
        *self.rule.lock().unwrap() = Rule {
            fault,
            pattern: None,
        };
    }

    /// Requests whose first chunk contains `pattern` meet `fault`; the rest pass.
    pub fn set_for(&self, pattern: &str, fault: Fault) {
        *self.rule.lock().unwrap() = Rule {
            fault,
            pattern: Some(pattern.as_bytes().to_vec()),
        };
    }

    /// How many requests met a fault other than `Pass` so far.
    pub fn faulted(&self) -> usize {
        self.faulted.load(Ordering::SeqCst)
    }
}

impl Drop for FaultProxy {
    fn drop(&mut self) {
        self.task.abort();
        // Images the Docker Engine pulled through this proxy carry its address.
        super::remove_images_with_prefix(&format!("{}/", self.host()));
    }
}

async fn connect(target: &Target) -> std::io::Result<Box<dyn Stream>> {
    Ok(match target {
        Target::Tcp(addr) => Box::new(TcpStream::connect(addr).await?),
        Target::Unix(path) => Box::new(tokio::net::UnixStream::connect(path).await?),
    })
}

async fn serve(
    mut client: TcpStream,
    target: Target,
    rule: Arc<Mutex<Rule>>,
    faulted: Arc<AtomicUsize>,
) {
    let Ok(server) = connect(&target).await else {
        return;
    };
    let (mut client_read, mut client_write) = client.split();
    let (mut server_read, mut server_write) = tokio::io::split(server);
    let upstream = async {
        let mut buf = vec![0u8; 64 * 1024];
        loop {
            let n = match client_read.read(&mut buf).await {
                Ok(0) | Err(_) => return Fault::Pass,
                Ok(n) => n,
            };
            let now = {
                let rule = rule.lock().unwrap();
                let applies = rule
                    .pattern
                    .as_ref()
                    .is_none_or(|p| buf[..n].windows(p.len()).any(|w| w == p.as_slice()));
                if applies { rule.fault } else { Fault::Pass }
            };
            if now != Fault::Pass {
                faulted.fetch_add(1, Ordering::SeqCst);
            }
            match now {
                Fault::Pass => {}
                Fault::Delay(d) => tokio::time::sleep(d).await,
                // The others end the connection (after their answer, below).
                other => return other,
            }
            if server_write.write_all(&buf[..n]).await.is_err() {
                return Fault::Pass;
            }
        }
    };
    let downstream = async {
        let _ = tokio::io::copy(&mut server_read, &mut client_write).await;
    };
    // Whichever half ends first ends the connection; a fault may answer first.
    let met = tokio::select! {
        met = upstream => met,
        _ = downstream => return,
    };
    drop((server_read, server_write));
    match met {
        Fault::Status500 => {
            let _ = client
                .write_all(
                    b"HTTP/1.1 500 Internal Server Error\r\ncontent-type: text/plain\r\n\
                      content-length: 21\r\nconnection: close\r\n\r\nInternal Server Error",
                )
                .await;
            let _ = client.shutdown().await;
        }
        Fault::Reset => {
            // SO_LINGER 0 makes close send RST instead of FIN. (Deprecated because a
            // non-zero linger blocks the thread on drop; zero never does.)
            #[allow(deprecated)]
            let _ = client.set_linger(Some(Duration::ZERO));
        }
        Fault::Stall(d) => tokio::time::sleep(d).await,
        Fault::Pass | Fault::Delay(_) => {}
    }
}
