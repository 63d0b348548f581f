//! The daemon under test as a child process (the release binary), with a small API client,
//! and the helpers around it: a local docker-registry, a throwaway Caddy, the docker CLI.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::{Value, json};

use crate::serve_child::{Serve, wait_ready};

pub const PASSWORD: &str = "bench-admin-password";

pub struct Daemon {
    pub binary: PathBuf,
    pub dir: tempfile::TempDir,
    pub port: u16,
    child: Option<Child>,
    pub token: String,
    /// CPU time the daemon used from spawn until `/healthz` answered, last start, in ms.
    pub start_cpu_ms: f64,
    client: reqwest::Client,
}

impl Daemon {
    /// Starts the daemon on a fresh data folder and signs in once; also how long it took
    /// from spawn to `/healthz` answering.
    pub async fn start(binary: &Path) -> (Daemon, Duration) {
        let mut daemon = Daemon {
            binary: binary.to_path_buf(),
            dir: tempfile::tempdir().expect("temp dir"),
            port: 0,
            child: None,
            token: String::new(),
            start_cpu_ms: 0.0,
            client: reqwest::Client::new(),
        };
        let ready = daemon.spawn().await;
        daemon.token = daemon.login().await;
        (daemon, ready)
    }

    pub fn address(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    pub fn pid(&self) -> u32 {
        self.child.as_ref().expect("running").id()
    }

    /// Stops it (SIGTERM, as systemd would) and starts it again on the same data folder;
    /// how long from spawn to ready.
    pub async fn restart(&mut self) -> Duration {
        self.stop().await;
        self.spawn().await
    }

    /// Stops it gracefully (SIGTERM) and keeps its data folder, its log and its last memory
    /// map (`smaps`) for a look afterwards (`DW_BENCH_KEEP`); the folder's path.
    pub async fn stop_and_keep(mut self) -> PathBuf {
        // Where its memory is, mapping by mapping, as it was idle.
        let _ = std::fs::copy(
            format!("/proc/{}/smaps", self.pid()),
            self.dir.path().join("smaps"),
        );
        self.stop().await;
        let dir = std::mem::replace(&mut self.dir, tempfile::tempdir().expect("temp dir"));
        dir.keep()
    }

    /// SIGTERM, as systemd would, then a kill if it has not stopped within 20 s.
    async fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = Command::new("kill")
                .args(["-TERM", &child.id().to_string()])
                .status();
            let deadline = Instant::now() + Duration::from_secs(20);
            while child.try_wait().ok().flatten().is_none() && Instant::now() < deadline {
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// One password login; the session token.
    pub async fn login(&self) -> String {
        let login: Value = self
            .client
            .post(format!("http://{}/api/auth/login", self.address()))
            .json(&json!({ "username": "admin", "password": PASSWORD }))
            .send()
            .await
            .expect("login")
            .json()
            .await
            .expect("login JSON");
        login["token"].as_str().expect("token").to_string()
    }

    pub async fn call(&self, method: reqwest::Method, path: &str, body: Option<Value>) -> Value {
        let mut request = self
            .client
            .request(method.clone(), format!("http://{}{path}", self.address()))
            .bearer_auth(&self.token);
        if let Some(body) = body {
            request = request.json(&body);
        }
        let response = request.send().await.expect("API request");
        let status = response.status();
        let text = response.text().await.unwrap_or_default();
        assert!(status.is_success(), "{method} {path}: {status} {text}");
        serde_json::from_str(&text).unwrap_or(Value::Null)
    }

    /// The daemon's resident memory, from /proc.
    pub fn rss_mib(&self) -> f64 {
        let status =
            std::fs::read_to_string(format!("/proc/{}/status", self.pid())).expect("daemon status");
        status
            .lines()
            .find_map(|l| l.strip_prefix("VmRSS:"))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<f64>().ok())
            .map(|kb| kb / 1024.0)
            .expect("VmRSS")
    }

    /// The resident set split as `/proc/<pid>/smaps_rollup` does, in MiB: (all, anonymous,
    /// file-backed). File-backed pages are mostly the binary's code: clean, shared with the
    /// page cache, dropped first under memory pressure; anonymous ones are the heap, stacks
    /// and relocated data.
    pub fn rss_split_mib(&self) -> (f64, f64, f64) {
        let rollup = std::fs::read_to_string(format!("/proc/{}/smaps_rollup", self.pid()))
            .expect("daemon smaps_rollup");
        let field = |name: &str| {
            rollup
                .lines()
                .find_map(|l| l.strip_prefix(name))
                .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<f64>().ok())
                .map_or(0.0, |kb| kb / 1024.0)
        };
        let (rss, anonymous) = (field("Rss:"), field("Anonymous:"));
        (rss, anonymous, rss - anonymous)
    }

    /// CPU time of the daemon's threads so far (their `schedstat`, nanosecond resolution,
    /// unlike the 10 ms ticks of `stat`), in ms; threads that ended are not counted.
    pub fn thread_cpu_ms(&self) -> f64 {
        let tasks = std::fs::read_dir(format!("/proc/{}/task", self.pid())).expect("daemon tasks");
        tasks
            .filter_map(|task| {
                let path = task.ok()?.path().join("schedstat");
                let text = std::fs::read_to_string(path).ok()?;
                text.split_whitespace().next()?.parse::<f64>().ok()
            })
            .sum::<f64>()
            / 1e6
    }

    /// User plus system CPU time so far, in seconds (`stat`: 10 ms ticks, but threads that
    /// ended are counted, unlike in [`Daemon::thread_cpu_ms`]).
    pub fn cpu_seconds(&self) -> f64 {
        let stat =
            std::fs::read_to_string(format!("/proc/{}/stat", self.pid())).expect("daemon stat");
        let after = stat.rsplit_once(')').map(|(_, rest)| rest).unwrap_or("");
        let fields: Vec<&str> = after.split_whitespace().collect();
        let ticks: f64 =
            fields[11].parse::<f64>().unwrap_or(0.0) + fields[12].parse::<f64>().unwrap_or(0.0);
        ticks / 100.0
    }

    async fn spawn(&mut self) -> Duration {
        self.port = free_port();
        let data_dir = self.dir.path().join("data");
        let log = self.dir.path().join("daemon.log");
        let started = Instant::now();
        let mut child = Serve {
            binary: &self.binary,
            port: self.port,
            data_dir: &data_dir,
            admin_password: PASSWORD,
            log: &log,
            // The default log level (info), as users run it.
            log_level: None,
            docker_host: None,
        }
        .spawn();
        // Polled often: the time to ready is one of the measurements.
        let ready = wait_ready(
            &mut child,
            self.port,
            Duration::from_millis(2),
            Duration::from_secs(30),
        )
        .await;
        let elapsed = started.elapsed();
        self.child = Some(child);
        if let Err(reason) = ready {
            panic!(
                "the daemon did not come up ({reason}); log in {}",
                self.dir.path().display()
            );
        }
        self.start_cpu_ms = self.thread_cpu_ms();
        elapsed
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// Debian's docker-registry on a free port, storage in a temp folder.
pub struct Registry {
    pub port: u16,
    child: Child,
    _dir: tempfile::TempDir,
}

impl Registry {
    pub fn start() -> Registry {
        let dir = tempfile::tempdir().expect("temp dir");
        let port = free_port();
        let config = dir.path().join("config.yml");
        std::fs::write(
            &config,
            format!(
                "version: 0.1\nlog:\n  level: warn\nstorage:\n  filesystem:\n    rootdirectory: {}\nhttp:\n  addr: 127.0.0.1:{port}\n",
                dir.path().join("storage").display()
            ),
        )
        .expect("registry config");
        let child = Command::new("docker-registry")
            .args(["serve", &config.display().to_string()])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("docker-registry (run ./dev services)");
        wait_port(port);
        Registry {
            port,
            child,
            _dir: dir,
        }
    }

    pub fn image(&self, repository: &str, tag: &str) -> String {
        format!("127.0.0.1:{}/{repository}:{tag}", self.port)
    }

    /// Pushes `source` as `repository:tag`, then drops the local tag so a deploy pulls.
    pub fn push(&self, source: &str, repository: &str, tag: &str) {
        let target = self.image(repository, tag);
        run_ok(docker(), &["tag", source, &target]);
        run_ok(docker(), &["push", "-q", &target]);
        run_ok(docker(), &["rmi", &target]);
    }
}

impl Drop for Registry {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Debian's caddy with only its admin API; docker-watcher adds its server.
pub struct Caddy {
    pub admin_port: u16,
    pub listen_port: u16,
    child: Child,
    _dir: tempfile::TempDir,
}

impl Caddy {
    pub fn start() -> Caddy {
        let dir = tempfile::tempdir().expect("temp dir");
        let (admin_port, listen_port) = (free_port(), free_port());
        let config = dir.path().join("caddy.json");
        std::fs::write(
            &config,
            json!({ "admin": { "listen": format!("127.0.0.1:{admin_port}"),
                               "config": { "persist": false } } })
            .to_string(),
        )
        .expect("caddy config");
        let child = Command::new("caddy")
            .arg("run")
            .arg("--config")
            .arg(&config)
            .env("HOME", dir.path())
            .env("XDG_DATA_HOME", dir.path().join("data"))
            .env("XDG_CONFIG_HOME", dir.path().join("config"))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("caddy (Debian's caddy package)");
        wait_port(admin_port);
        Caddy {
            admin_port,
            listen_port,
            child,
            _dir: dir,
        }
    }
}

impl Drop for Caddy {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("free port")
}

fn wait_port(port: u16) {
    let deadline = Instant::now() + Duration::from_secs(15);
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(Instant::now() < deadline, "nothing listens on {port}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

pub fn docker() -> &'static str {
    if Path::new("/usr/bin/docker").exists() {
        "/usr/bin/docker"
    } else {
        "docker"
    }
}

pub fn run_ok(program: &str, args: &[&str]) -> String {
    let output = Command::new(program)
        .args(args)
        .stdin(Stdio::null())
        .output()
        .expect("run command");
    assert!(
        output.status.success(),
        "{program} {args:?}: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8_lossy(&output.stdout).to_string()
}
