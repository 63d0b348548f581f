//! `docker-watcher healthcheck`: GET `/healthz` on the address the daemon is configured
//! to listen on, exit 0 when it answers 200 and 1 otherwise. It is the image's
//! `HEALTHCHECK`: a `FROM scratch` image has no shell, curl or wget to do it.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::time::Duration;

use crate::config::Config;

/// How long the check waits for an answer; Docker's own timeout should be longer.
pub const TIMEOUT: Duration = Duration::from_secs(4);

/// Where to send the check for a daemon listening on `listen`: an "every interface"
/// address is reached on loopback of the same family.
pub fn target(listen: SocketAddr) -> SocketAddr {
    match listen.ip() {
        IpAddr::V4(ip) if ip.is_unspecified() => (Ipv4Addr::LOCALHOST, listen.port()).into(),
        IpAddr::V6(ip) if ip.is_unspecified() => (Ipv6Addr::LOCALHOST, listen.port()).into(),
        _ => listen,
    }
}

/// GET `http://addr/healthz`; Ok when it answers 200, else what went wrong.
pub async fn check(addr: SocketAddr) -> Result<(), String> {
    let url = format!("http://{addr}/healthz");
    // Never through an HTTP proxy the environment may name: this is the daemon next door.
    let client = crate::http_client::builder()
        .no_proxy()
        .timeout(TIMEOUT)
        .build()
        .map_err(|e| format!("cannot build an HTTP client: {e}"))?;
    let response = client
        .get(&url)
        .send()
        .await
        .map_err(|e| format!("GET {url}: {e}"))?;
    match response.status().as_u16() {
        200 => Ok(()),
        status => Err(format!(
            "GET {url} answered {status}: {}",
            response.text().await.unwrap_or_default()
        )),
    }
}

/// The subcommand: checks the daemon `config` describes and says so on stdout (Docker
/// keeps the output in `docker inspect`'s health log). True when healthy.
pub fn run(config: &Config) -> bool {
    let addr = target(config.listen);
    let result = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| format!("cannot start the runtime: {e}"))
        .and_then(|runtime| runtime.block_on(check(addr)));
    match result {
        Ok(()) => {
            println!("healthy: http://{addr}/healthz answered 200");
            true
        }
        Err(e) => {
            println!("unhealthy: {e}");
            false
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_interface_is_checked_on_loopback() {
        let at = |s: &str| target(s.parse().unwrap()).to_string();
        assert_eq!(at("0.0.0.0:8080"), "127.0.0.1:8080");
        assert_eq!(at("[::]:8080"), "[::1]:8080");
        assert_eq!(at("127.0.0.1:9000"), "127.0.0.1:9000");
        assert_eq!(at("192.168.1.5:8080"), "192.168.1.5:8080");
    }
}
