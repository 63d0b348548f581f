//! Health checking before traffic moves: probe a freshly started container until it is
//! healthy, fails its budget, or dies.
//!
//! [`wait_healthy`] probes often during the start period (a fast container is noticed
//! within a fraction of a second) and ignores failures there; after it, `retries`
//! consecutive failures `interval` apart end the wait. Between probes it inspects the
//! container, so one that exits or restarts fails at once with its exit code and logs.
//! [`upstream`] says how a container is reached (a loopback port, or its name on a shared
//! network); the proxy reuses it.
//!
//! An image's own HEALTHCHECK is run by us ([`HealthProbe::Exec`], see [`by_exec`]): the
//! same command, user and timeout through `docker exec`, as often as any other probe,
//! while Docker's own status must not say unhealthy. Docker runs the first check only one
//! interval (commonly 30 s) after start, and before API 1.44 it has no start interval to
//! shorten that; waiting for its verdict would hold every such deploy for the interval.
//!
//! This module knows the [`Engine`] trait only; it knows nothing of deploys, the store or
//! the proxy, and decides nothing beyond "healthy or not".

use std::fmt;
use std::time::{Duration, Instant};

use tokio::io::AsyncReadExt;

use crate::docker::{
    ContainerId, ContainerInfo, ContainerStatus, DockerHealth, Engine, EngineError, HealthTest,
};

/// How long and how often to probe.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HealthPolicy {
    /// Time between probes after the start period.
    pub interval: Duration,
    /// How long one probe may take.
    pub timeout: Duration,
    /// Consecutive failures after the start period that end the wait.
    pub retries: u32,
    /// Time to start up: probes are frequent and failures do not count.
    pub start_period: Duration,
}

impl Default for HealthPolicy {
    /// 3 retries 5 s apart with a 10 s timeout (the seed's budget), after a 60 s start period.
    fn default() -> HealthPolicy {
        HealthPolicy {
            interval: Duration::from_secs(5),
            timeout: Duration::from_secs(10),
            retries: 3,
            start_period: Duration::from_secs(60),
        }
    }
}

impl HealthPolicy {
    /// About the longest a never-healthy container is probed (hung probes add up to
    /// `timeout` each).
    pub fn budget(&self) -> Duration {
        self.start_period + self.interval * self.retries
    }
}

/// What "healthy" means for a container.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HealthProbe {
    /// `GET url` answers 2xx or 3xx (redirects are not followed).
    Http { url: String },
    /// A TCP connection to `addr` (`host:port`) opens and is not closed at once.
    Tcp { addr: String },
    /// The container's own HEALTHCHECK reports healthy.
    DockerHealthcheck,
    /// The container's own health test, run by us through `docker exec`, exits 0 while
    /// Docker's own status is not unhealthy.
    Exec { test: HealthTest },
    /// The container keeps running, without restarts, for `duration`.
    StaysRunning { duration: Duration },
}

impl fmt::Display for HealthProbe {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            HealthProbe::Http { url } => write!(f, "GET {url}"),
            HealthProbe::Tcp { addr } => write!(f, "TCP connect to {addr}"),
            HealthProbe::DockerHealthcheck => f.write_str("the image's HEALTHCHECK"),
            HealthProbe::Exec { test } => write!(
                f,
                "exec health test `{}` (the image's HEALTHCHECK, run through docker exec from the start; Docker's own first run comes after {})",
                test.command.join(" "),
                seconds(test.interval)
            ),
            HealthProbe::StaysRunning { duration } => {
                write!(f, "running without restarts for {}", seconds(*duration))
            }
        }
    }
}

/// How docker-watcher (its health checker and proxy) reaches containers.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum Reachability {
    /// By the port published on 127.0.0.1: for a daemon running on the host.
    #[default]
    Loopback,
    /// By container name on a shared Docker network: for a daemon running in a
    /// container attached to `network`.
    Network { network: String },
}

/// Where a container's port is reached from docker-watcher: the same type the proxy
/// routes to.
pub use crate::proxy::Upstream;

impl Upstream {
    /// `http://host:port/path`.
    pub fn http_url(&self, path: &str) -> String {
        let slash = if path.starts_with('/') { "" } else { "/" };
        format!("http://{}{slash}{path}", self.address())
    }
}

/// Why a container cannot be addressed the way [`Reachability`] says.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AddressError {
    #[error(
        "container {container} publishes no port on 127.0.0.1 for port {port}: it must be created with its port published on loopback"
    )]
    NotPublished { container: String, port: u16 },
    #[error(
        "container {container} is not on network {network}: set the project's network to {network} so docker-watcher can reach it"
    )]
    NotOnNetwork { container: String, network: String },
}

/// Where `container_port` of `container` is reached under `reachability`.
pub fn upstream(
    reachability: &Reachability,
    container: &ContainerInfo,
    container_port: u16,
) -> Result<Upstream, AddressError> {
    match reachability {
        Reachability::Loopback => container
            .loopback_ports
            .get(&container_port)
            .map(|&port| Upstream {
                host: "127.0.0.1".to_string(),
                port,
            })
            .ok_or_else(|| AddressError::NotPublished {
                container: container.name.clone(),
                port: container_port,
            }),
        Reachability::Network { network } => {
            if container.networks.iter().any(|joined| joined == network) {
                Ok(Upstream {
                    host: container.name.clone(),
                    port: container_port,
                })
            } else {
                Err(AddressError::NotOnNetwork {
                    container: container.name.clone(),
                    network: network.clone(),
                })
            }
        }
    }
}

/// The HTTP probe of `path` on `container_port` of `container`.
pub fn http_probe(
    reachability: &Reachability,
    container: &ContainerInfo,
    container_port: u16,
    path: &str,
) -> Result<HealthProbe, AddressError> {
    let upstream = upstream(reachability, container, container_port)?;
    Ok(HealthProbe::Http {
        url: upstream.http_url(path),
    })
}

/// `probe`, but the image's own HEALTHCHECK run through exec when `probe` waits for
/// Docker's verdict and the container has a test Docker would run.
pub fn by_exec(probe: HealthProbe, container: &ContainerInfo) -> HealthProbe {
    match (probe, &container.healthcheck) {
        (HealthProbe::DockerHealthcheck, Some(test)) => HealthProbe::Exec { test: test.clone() },
        (probe, _) => probe,
    }
}

/// The first Docker API version whose container create takes a health check's start
/// interval (Docker 25).
pub const START_INTERVAL_API: (u32, u32) = (1, 44);
/// How often Docker runs an image's HEALTHCHECK during the start period, where we may set it.
pub const START_INTERVAL: Duration = Duration::from_millis(100);

/// How an image's own HEALTHCHECK is waited for, chosen from the API version negotiated
/// with the engine (see [`healthcheck_way`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HealthcheckWay {
    /// The container is created with [`START_INTERVAL`] as its health start interval, so
    /// Docker's own verdict comes within a fraction of a second; that verdict is waited for.
    StartInterval,
    /// The engine has no start interval: the test is run by us through exec ([`by_exec`]).
    Exec,
}

/// [`HealthcheckWay::StartInterval`] from API [`START_INTERVAL_API`] on, else
/// [`HealthcheckWay::Exec`] (also for a version that does not read as `major.minor`).
pub fn healthcheck_way(negotiated_api: &str) -> HealthcheckWay {
    let parsed = negotiated_api
        .trim()
        .split_once('.')
        .and_then(|(major, minor)| Some((major.parse::<u32>().ok()?, minor.parse::<u32>().ok()?)));
    match parsed {
        Some(version) if version >= START_INTERVAL_API => HealthcheckWay::StartInterval,
        _ => HealthcheckWay::Exec,
    }
}

/// The deploy log's line about the choice.
pub fn healthcheck_way_note(way: HealthcheckWay, negotiated_api: &str) -> String {
    match way {
        HealthcheckWay::StartInterval => format!(
            "Docker API {negotiated_api} takes a health start interval: the container is created with {} ms, and Docker's own verdict is waited for",
            START_INTERVAL.as_millis()
        ),
        HealthcheckWay::Exec => format!(
            "Docker API {negotiated_api} has no health start interval (from {}.{}): the image's HEALTHCHECK is run through docker exec",
            START_INTERVAL_API.0, START_INTERVAL_API.1
        ),
    }
}

/// One probe, reported to the caller as it happens (for the deploy log).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Attempt {
    /// 1 for the first probe.
    pub number: u32,
    /// Since the wait began.
    pub elapsed: Duration,
    /// `Err` holds why the probe failed, readable by a person.
    pub outcome: Result<(), String>,
    /// Whether a failure counted against the budget (it does not in the start period).
    pub counted: bool,
    /// Consecutive counted failures so far, and how many end the wait.
    pub failures: u32,
    pub retries: u32,
}

impl fmt::Display for Attempt {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "probe {} after {}: ", self.number, seconds(self.elapsed))?;
        match &self.outcome {
            Ok(()) => f.write_str("healthy"),
            Err(reason) if self.counted => {
                write!(
                    f,
                    "{reason} (failure {} of {})",
                    self.failures, self.retries
                )
            }
            Err(reason) => write!(f, "{reason} (start period, not counted)"),
        }
    }
}

/// A container that passed its probe.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Healthy {
    pub attempts: u32,
    pub elapsed: Duration,
}

/// Why a container was not found healthy.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum HealthError {
    /// The container exited, restarted or could not start while being probed.
    #[error(
        "the container {status}{code}{oom} before it became healthy; its last log lines:\n{logs}",
        code = exit_code.map(|code| format!(" with exit code {code}")).unwrap_or_default(),
        oom = if *oom_killed { ", killed for lack of memory," } else { "" }
    )]
    ContainerExited {
        /// What was seen: `exited`, `is restarting`, `was restarted by Docker`, ….
        status: String,
        /// The exit code, when Docker still knows it (a restarted container is running
        /// again and reports none).
        exit_code: Option<i64>,
        oom_killed: bool,
        logs: String,
        attempts: u32,
    },
    /// The container was removed while being probed.
    #[error("the container {id} was removed while its health was being checked")]
    ContainerGone { id: String },
    /// The probe kept failing past the start period and the retries.
    #[error(
        "the container did not become healthy: {attempts} probes, the last failed with: {last_error}; check the health-check settings and the container's logs"
    )]
    Unhealthy { attempts: u32, last_error: String },
    /// The probe cannot work for this container (e.g. no HEALTHCHECK to wait for).
    #[error("cannot check health: {0}")]
    ProbeUnusable(String),
    /// Docker failed while the container was being watched.
    #[error("cannot check health: {0}")]
    Engine(EngineError),
}

/// Probes `container` with `probe` under `policy` until it is healthy or fails; calls
/// `on_attempt` after every probe.
pub async fn wait_healthy(
    engine: &dyn Engine,
    container: &ContainerId,
    probe: &HealthProbe,
    policy: &HealthPolicy,
    on_attempt: impl Fn(&Attempt) + Send + Sync,
) -> Result<Healthy, HealthError> {
    let started = Instant::now();
    let http = match probe {
        HealthProbe::Http { .. } => Some(http_client(policy.timeout)?),
        _ => None,
    };
    // A probe that needs time to pass (staying up for N s) must not fail before then.
    let grace = match probe {
        HealthProbe::StaysRunning { duration } => policy.start_period.max(*duration),
        _ => policy.start_period,
    };
    let retries = policy.retries.max(1);
    let mut fast_delay = FIRST_DELAY;
    let mut baseline_restarts = None;
    let mut attempts = 0;
    let mut failures = 0;
    loop {
        let info = inspect(engine, container).await?;
        let baseline = *baseline_restarts.get_or_insert(info.state.restart_count);
        if let Some(status) = stopped(&info, baseline) {
            return Err(exited(engine, container, &info, status, attempts).await);
        }

        if matches!(
            probe,
            HealthProbe::DockerHealthcheck | HealthProbe::Exec { .. }
        ) && info.state.health.is_none()
        {
            // Docker sets the status when it starts the container: none means none ever.
            return Err(HealthError::ProbeUnusable(NO_HEALTHCHECK.to_string()));
        }

        attempts += 1;
        let in_grace = started.elapsed() < grace;
        let outcome = match tokio::time::timeout(
            policy.timeout,
            run_probe(engine, probe, http.as_ref(), &info, started.elapsed()),
        )
        .await
        {
            Ok(outcome) => outcome,
            Err(_) => Err(format!(
                "{probe}: no answer within {}",
                seconds(policy.timeout)
            )),
        };
        let counted = outcome.is_err() && !in_grace;
        if counted {
            failures += 1;
        }
        let elapsed = started.elapsed();
        on_attempt(&Attempt {
            number: attempts,
            elapsed,
            outcome: outcome.clone(),
            counted,
            failures,
            retries,
        });
        match outcome {
            Ok(()) => return Ok(Healthy { attempts, elapsed }),
            Err(last_error) if counted && failures >= retries => {
                // A container that died during the last probe is reported as such.
                let info = inspect(engine, container).await?;
                if let Some(status) = stopped(&info, baseline) {
                    return Err(exited(engine, container, &info, status, attempts).await);
                }
                return Err(HealthError::Unhealthy {
                    attempts,
                    last_error,
                });
            }
            Err(_) => {}
        }

        let delay = if started.elapsed() < grace {
            let delay = fast_delay.min(policy.interval);
            fast_delay = (fast_delay * 5 / 4).min(MAX_FAST_DELAY);
            delay
        } else {
            policy.interval
        };
        tokio::time::sleep(delay).await;
    }
}

/// The first pause between probes in the start period; it grows by a quarter each time
/// (10 ms, 12 ms, 15 ms, … 1 s): a container up in 300 ms is seen within about 60 ms of
/// it, one up in 100 ms within about 25 ms. A probe is one inspect and one request.
const FIRST_DELAY: Duration = Duration::from_millis(10);
/// The longest pause between probes in the start period.
const MAX_FAST_DELAY: Duration = Duration::from_secs(1);
/// How many log lines a failure report carries.
const LOG_TAIL: usize = 20;
/// How long a TCP probe waits to see whether an accepted connection is closed at once.
const TCP_SETTLE: Duration = Duration::from_millis(300);
const NO_HEALTHCHECK: &str =
    "the container has no HEALTHCHECK: configure a health-check path or another probe";

fn http_client(timeout: Duration) -> Result<reqwest::Client, HealthError> {
    crate::http_client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .timeout(timeout)
        // A proxy from the environment must not stand between us and a local container.
        .no_proxy()
        .build()
        .map_err(|e| HealthError::ProbeUnusable(format!("cannot build an HTTP client: {e}")))
}

async fn inspect(
    engine: &dyn Engine,
    container: &ContainerId,
) -> Result<ContainerInfo, HealthError> {
    engine
        .inspect_container(container)
        .await
        .map_err(|error| match error {
            EngineError::ContainerNotFound { id } => HealthError::ContainerGone { id },
            other => HealthError::Engine(other),
        })
}

/// What went wrong with a container that can no longer become healthy, if anything.
fn stopped(info: &ContainerInfo, baseline_restarts: i64) -> Option<String> {
    let state = &info.state;
    if state.status.has_stopped() {
        Some(state.status.to_string())
    } else if state.status == ContainerStatus::Restarting {
        Some("is restarting".to_string())
    } else if state.restart_count > baseline_restarts {
        let restarts = state.restart_count - baseline_restarts;
        let plural = if restarts == 1 { "" } else { "s" };
        Some(format!(
            "was restarted by Docker ({restarts} restart{plural})"
        ))
    } else if !state.running && state.error.is_some() {
        Some("failed to start".to_string())
    } else {
        None
    }
}

async fn exited(
    engine: &dyn Engine,
    container: &ContainerId,
    info: &ContainerInfo,
    status: String,
    attempts: u32,
) -> HealthError {
    let mut logs = engine
        .logs(container, LOG_TAIL)
        .await
        .unwrap_or_else(|e| format!("(logs unavailable: {e})"));
    if let Some(error) = &info.state.error {
        logs = format!("{logs}\ndocker: {error}");
    }
    // Running again after a restart, it reports 0: that is not the code it died with.
    let exit_code = (!info.state.running).then_some(info.state.exit_code);
    HealthError::ContainerExited {
        status,
        exit_code,
        oom_killed: info.state.oom_killed,
        logs,
        attempts,
    }
}

/// One probe; `Err` says why it failed in words for the deploy log.
async fn run_probe(
    engine: &dyn Engine,
    probe: &HealthProbe,
    http: Option<&reqwest::Client>,
    info: &ContainerInfo,
    elapsed: Duration,
) -> Result<(), String> {
    match probe {
        HealthProbe::Http { url } => {
            let Some(client) = http else {
                return Err("no HTTP client".to_string());
            };
            let response = client
                .get(url)
                .send()
                .await
                .map_err(|e| format!("GET {url} failed: {}", root_cause(&e)))?;
            let status = response.status();
            if status.is_success() || status.is_redirection() {
                Ok(())
            } else {
                Err(format!("GET {url} answered {status}"))
            }
        }
        HealthProbe::Tcp { addr } => tcp_probe(addr).await,
        HealthProbe::DockerHealthcheck => match info.state.health {
            Some(DockerHealth::Healthy) => Ok(()),
            Some(health) => Err(format!("the HEALTHCHECK reports {health}")),
            None => Err(NO_HEALTHCHECK.to_string()),
        },
        HealthProbe::Exec { test } => exec_probe(engine, info, test).await,
        HealthProbe::StaysRunning { duration } => {
            if !info.state.running {
                Err(format!("the container is {}", info.state.status))
            } else if elapsed < *duration {
                Err(format!(
                    "running for {} of {}",
                    seconds(elapsed),
                    seconds(*duration)
                ))
            } else {
                Ok(())
            }
        }
    }
}

/// The container's health test through exec, bounded by its own timeout. Docker's own
/// status must not be unhealthy: its verdict stands when it has one.
async fn exec_probe(
    engine: &dyn Engine,
    info: &ContainerInfo,
    test: &HealthTest,
) -> Result<(), String> {
    if info.state.health == Some(DockerHealth::Unhealthy) {
        return Err("Docker's own run of the HEALTHCHECK reports unhealthy".to_string());
    }
    let run = engine.exec(&info.id, &test.command, test.user.as_deref());
    match tokio::time::timeout(test.timeout, run).await {
        Err(_) => Err(format!(
            "the health test did not finish within its timeout of {}",
            seconds(test.timeout)
        )),
        Ok(Err(e)) => Err(format!("cannot run the health test: {e}")),
        Ok(Ok(output)) if output.exit_code == 0 => Ok(()),
        Ok(Ok(output)) => {
            let said = output.output.lines().last().unwrap_or_default();
            let said = if said.is_empty() {
                String::new()
            } else {
                format!(": {said}")
            };
            Err(format!(
                "the health test exited with {}{said}",
                output.exit_code
            ))
        }
    }
}

/// Connects, then waits a moment: Docker's port proxy accepts on the published port
/// before the application listens and closes the connection when it finds nobody, so
/// an accepted connection alone proves nothing. Open (or talking) after the moment is up.
async fn tcp_probe(addr: &str) -> Result<(), String> {
    let mut stream = tokio::net::TcpStream::connect(addr)
        .await
        .map_err(|e| format!("TCP connect to {addr} failed: {e}"))?;
    let mut byte = [0u8; 1];
    match tokio::time::timeout(TCP_SETTLE, stream.read(&mut byte)).await {
        Err(_) | Ok(Ok(1..)) => Ok(()),
        Ok(Ok(0)) => Err(format!(
            "TCP connection to {addr} was closed at once: nothing listens in the container"
        )),
        Ok(Err(e)) => Err(format!("TCP connection to {addr} failed: {e}")),
    }
}

/// The innermost error: reqwest's outer layers repeat the URL and say little more.
fn root_cause(error: &(dyn std::error::Error + 'static)) -> String {
    let mut cause = error;
    while let Some(source) = cause.source() {
        cause = source;
    }
    cause.to_string()
}

/// `2.5 s`.
fn seconds(duration: Duration) -> String {
    format!("{:.1} s", duration.as_secs_f64())
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use super::*;
    use crate::docker::ContainerState;

    fn container(loopback: &[(u16, u16)], networks: &[&str]) -> ContainerInfo {
        ContainerInfo {
            id: ContainerId::new("abc"),
            name: "dw-shop-dev-1".into(),
            image: "img".into(),
            image_id: "sha256:1".into(),
            labels: BTreeMap::new(),
            state: ContainerState {
                status: ContainerStatus::Running,
                running: true,
                exit_code: 0,
                restart_count: 0,
                started_at: None,
                health: None,
                oom_killed: false,
                error: None,
            },
            loopback_port: loopback.first().map(|&(_, host)| host),
            loopback_ports: loopback.iter().copied().collect(),
            networks: networks.iter().map(|n| n.to_string()).collect(),
            healthcheck: None,
        }
    }

    #[test]
    fn loopback_reaches_the_published_port() {
        let info = container(&[(8080, 49153)], &["bridge"]);
        let probe = http_probe(&Reachability::Loopback, &info, 8080, "/health").unwrap();
        assert_eq!(
            probe,
            HealthProbe::Http {
                url: "http://127.0.0.1:49153/health".into()
            }
        );
    }

    #[test]
    fn loopback_without_a_published_port_says_so() {
        let info = container(&[(8080, 49153)], &["bridge"]);
        let error = upstream(&Reachability::Loopback, &info, 9090).unwrap_err();
        assert!(
            error
                .to_string()
                .contains("publishes no port on 127.0.0.1 for port 9090"),
            "{error}"
        );
    }

    #[test]
    fn network_reaches_the_container_by_name() {
        let info = container(&[], &["web"]);
        let reach = Reachability::Network {
            network: "web".into(),
        };
        let up = upstream(&reach, &info, 8080).unwrap();
        assert_eq!(up.http_url("health"), "http://dw-shop-dev-1:8080/health");
        assert_eq!(up.address(), "dw-shop-dev-1:8080");
        let elsewhere = Reachability::Network {
            network: "other".into(),
        };
        assert!(matches!(
            upstream(&elsewhere, &info, 8080),
            Err(AddressError::NotOnNetwork { .. })
        ));
    }

    #[test]
    fn the_start_interval_is_set_from_api_1_44_and_exec_is_used_before() {
        use super::{HealthcheckWay::*, healthcheck_way};
        // Debian 12's Docker 20.10 negotiates 1.41; Docker 25 speaks 1.44.
        for (api, way) in [
            ("1.41", Exec),
            ("1.43", Exec),
            ("1.44", StartInterval),
            ("1.47", StartInterval),
            ("1.100", StartInterval),
            ("2.0", StartInterval),
            ("0.99", Exec),
            ("", Exec),
            ("1", Exec),
            ("1.x", Exec),
        ] {
            assert_eq!(healthcheck_way(api), way, "API {api:?}");
        }
        assert!(super::healthcheck_way_note(Exec, "1.41").contains("docker exec"));
        assert!(super::healthcheck_way_note(StartInterval, "1.44").contains("100 ms"));
    }

    #[test]
    fn only_a_wait_for_dockers_verdict_runs_the_test_by_exec() {
        let mut info = container(&[(8080, 49153)], &[]);
        assert_eq!(
            by_exec(HealthProbe::DockerHealthcheck, &info),
            HealthProbe::DockerHealthcheck,
            "no runnable test: Docker's verdict is all there is"
        );
        let test = HealthTest {
            command: vec!["wget".into(), "-q".into(), "http://127.0.0.1:8080/".into()],
            interval: Duration::from_secs(30),
            timeout: Duration::from_secs(3),
            start_period: Duration::ZERO,
            retries: 3,
            user: None,
        };
        info.healthcheck = Some(test.clone());
        let probe = by_exec(HealthProbe::DockerHealthcheck, &info);
        assert_eq!(probe, HealthProbe::Exec { test });
        assert!(
            probe
                .to_string()
                .starts_with("exec health test `wget -q http://127.0.0.1:8080/`"),
            "{probe}"
        );
        let http = HealthProbe::Http {
            url: "http://127.0.0.1:49153/health".into(),
        };
        assert_eq!(by_exec(http.clone(), &info), http, "a health path wins");
    }

    #[test]
    fn a_restart_or_exit_stops_the_wait() {
        let mut info = container(&[], &[]);
        assert_eq!(stopped(&info, 0), None);
        info.state.restart_count = 1;
        assert_eq!(
            stopped(&info, 0).as_deref(),
            Some("was restarted by Docker (1 restart)")
        );
        info.state.status = ContainerStatus::Exited;
        info.state.running = false;
        assert_eq!(stopped(&info, 1).as_deref(), Some("exited"));
    }

    #[test]
    fn attempt_lines_say_whether_a_failure_counted() {
        let mut attempt = Attempt {
            number: 2,
            elapsed: Duration::from_millis(1250),
            outcome: Err("GET x answered 404 Not Found".into()),
            counted: false,
            failures: 0,
            retries: 3,
        };
        assert_eq!(
            attempt.to_string(),
            "probe 2 after 1.2 s: GET x answered 404 Not Found (start period, not counted)"
        );
        attempt.counted = true;
        attempt.failures = 1;
        assert!(
            attempt.to_string().ends_with("(failure 1 of 3)"),
            "{attempt}"
        );
    }

    /// The deployer runs the wait inside spawned tasks.
    #[allow(dead_code)]
    fn wait_healthy_is_send(engine: &dyn Engine, id: &ContainerId) {
        fn assert_send<T: Send>(_: T) {}
        let policy = HealthPolicy::default();
        let probe = HealthProbe::DockerHealthcheck;
        assert_send(wait_healthy(engine, id, &probe, &policy, |_| {}));
    }

    #[test]
    fn default_budget_is_the_seeds_after_the_start_period() {
        let policy = HealthPolicy::default();
        assert_eq!(policy.retries, 3);
        assert_eq!(policy.interval, Duration::from_secs(5));
        assert_eq!(policy.timeout, Duration::from_secs(10));
        assert_eq!(policy.budget(), Duration::from_secs(75));
    }
}
