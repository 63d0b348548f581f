//! A throwaway Docker Distribution registry (Debian's `docker-registry`) per test, on a
//! free 127.0.0.1 port, optionally with htpasswd auth and notifications to a URL, plus
//! `push` to put a locally built test image into it under any name and tag.

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use super::{docker_cli, free_port, require_docker};

/// How a test wants its registry.
#[derive(Default, Clone)]
pub struct RegistryOptions {
    /// Username and password; the registry then demands Basic auth.
    pub auth: Option<(String, String)>,
    /// URL the registry posts its push/pull notifications to.
    pub notify_url: Option<String>,
    /// Headers every notification carries (the endpoint's `headers:`), e.g.
    /// `Authorization: Bearer <signing secret>`.
    pub notify_headers: Vec<(String, String)>,
}

pub struct TestRegistry {
    pub port: u16,
    pub auth: Option<(String, String)>,
    child: Child,
    dir: tempfile::TempDir,
}

impl TestRegistry {
    pub async fn start() -> TestRegistry {
        Self::start_with(RegistryOptions::default()).await
    }

    pub async fn start_with(options: RegistryOptions) -> TestRegistry {
        require_docker();
        let dir = tempfile::tempdir().expect("temp dir for registry");
        let port = free_port();
        let storage = dir.path().join("storage");
        std::fs::create_dir_all(&storage).expect("registry storage dir");
        let mut config = format!(
            "version: 0.1\nlog:\n  level: warn\n  accesslog:\n    disabled: false\nstorage:\n  filesystem:\n    rootdirectory: {}\n  delete:\n    enabled: true\nhttp:\n  addr: 127.0.0.1:{port}\n",
            storage.display()
        );
        if let Some((user, password)) = &options.auth {
            let hash = bcrypt::hash(password, 5).expect("bcrypt");
            let htpasswd = dir.path().join("htpasswd");
            std::fs::write(&htpasswd, format!("{user}:{hash}\n")).expect("write htpasswd");
            config.push_str(&format!(
                "auth:\n  htpasswd:\n    realm: test-registry\n    path: {}\n",
                htpasswd.display()
            ));
        }
        if let Some(url) = &options.notify_url {
            config.push_str(&format!(
                "notifications:\n  endpoints:\n    - name: docker-watcher\n      url: {url}\n      timeout: 30s\n      threshold: 3\n      backoff: 1s\n"
            ));
            if !options.notify_headers.is_empty() {
                config.push_str("      headers:\n");
                for (name, value) in &options.notify_headers {
                    // JSON strings are valid YAML scalars, whatever the value holds.
                    config.push_str(&format!(
                        "        {name}: [{}]\n",
                        serde_json::Value::String(value.clone())
                    ));
                }
            }
        }
        let config_path = dir.path().join("config.yml");
        std::fs::write(&config_path, config).expect("write registry config");
        let log = std::fs::File::create(dir.path().join("registry.log")).expect("registry log");
        let child = Command::new("docker-registry")
            .arg("serve")
            .arg(&config_path)
            .stdin(Stdio::null())
            .stdout(log.try_clone().expect("log fd"))
            .stderr(log)
            .spawn()
            .expect("start docker-registry (run ./dev services to install it)");
        let registry = TestRegistry {
            port,
            auth: options.auth,
            child,
            dir,
        };
        registry.wait_ready().await;
        registry
    }

    /// `127.0.0.1:PORT`, the registry part of an image reference.
    pub fn host(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// Full reference of `repository:tag` in this registry.
    pub fn image(&self, repository: &str, tag: &str) -> String {
        format!("{}/{repository}:{tag}", self.host())
    }

    /// Pushes the local image `source` (e.g. `dw-test/app:healthy`) as
    /// `repository:tag` and returns the manifest digest the registry stored.
    /// The local tag is removed again, so a later pull really goes to the registry.
    pub async fn push(&self, source: &str, repository: &str, tag: &str) -> String {
        self.push_with(source, repository, tag, true).await
    }

    /// Like [`TestRegistry::push`], but keeps the local tag: for a registry whose
    /// notifications start a deploy, which may pull that tag while `push` would untag it.
    pub async fn push_keeping_local_tag(
        &self,
        source: &str,
        repository: &str,
        tag: &str,
    ) -> String {
        self.push_with(source, repository, tag, false).await
    }

    async fn push_with(&self, source: &str, repository: &str, tag: &str, untag: bool) -> String {
        let target = self.image(repository, tag);
        let docker_config = self.dir.path().join("docker-config");
        std::fs::create_dir_all(&docker_config).expect("docker config dir");
        let source = source.to_string();
        let auth = self.auth.clone();
        let host = self.host();
        tokio::task::spawn_blocking(move || {
            run_docker(&docker_config, &["tag", &source, &target]);
            if let Some((user, password)) = &auth {
                run_docker(
                    &docker_config,
                    &["login", "-u", user, "-p", password, &host],
                );
            }
            let output = run_docker(&docker_config, &["push", &target]);
            if untag {
                run_docker(&docker_config, &["rmi", &target]);
            }
            output
                .split_whitespace()
                .find(|word| word.starts_with("sha256:"))
                .map(str::to_string)
                .unwrap_or_else(|| panic!("no digest in docker push output:\n{output}"))
        })
        .await
        .expect("push task")
    }

    /// The registry's own log, for assertion messages.
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("registry.log")).unwrap_or_default()
    }

    /// How many requests whose request line contains `needle` (e.g.
    /// `GET /v2/acme/shop/tags/list`) the registry has answered so far.
    pub fn count_requests(&self, needle: &str) -> usize {
        self.log()
            .lines()
            .filter(|line| line.contains(needle))
            .count()
    }

    pub fn storage_dir(&self) -> PathBuf {
        self.dir.path().join("storage")
    }

    async fn wait_ready(&self) {
        let deadline = Instant::now() + Duration::from_secs(15);
        let client = reqwest::Client::new();
        while Instant::now() < deadline {
            if let Ok(response) = client.get(format!("{}/v2/", self.url())).send().await {
                // 200 without auth, 401 with it: either way it is serving.
                if response.status().is_success() || response.status().as_u16() == 401 {
                    return;
                }
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        panic!("docker-registry did not start; its log:\n{}", self.log());
    }
}

impl Drop for TestRegistry {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        // Images pulled from this registry (by the deployer under test) go with it.
        let prefix = format!("{}/", self.host());
        if let Ok(output) = Command::new(docker_cli())
            .args(["images", "--format", "{{.Repository}}:{{.Tag}}"])
            .output()
        {
            let ours: Vec<String> = String::from_utf8_lossy(&output.stdout)
                .lines()
                .filter(|image| image.starts_with(&prefix))
                .map(str::to_string)
                .collect();
            if !ours.is_empty() {
                // -f: untag even while a container of this test still uses the image.
                let _ = Command::new(docker_cli())
                    .args(["rmi", "-f"])
                    .args(&ours)
                    .stdout(Stdio::null())
                    .stderr(Stdio::null())
                    .status();
            }
        }
    }
}

fn run_docker(config_dir: &std::path::Path, args: &[&str]) -> String {
    let output = Command::new(docker_cli())
        .env("DOCKER_CONFIG", config_dir)
        .args(args)
        .stdin(Stdio::null())
        .output()
        .expect("run docker CLI");
    let stdout = String::from_utf8_lossy(&output.stdout).to_string();
    if !output.status.success() {
        panic!(
            "docker {} failed: {}{}",
            args.first().unwrap_or(&""),
            stdout,
            String::from_utf8_lossy(&output.stderr)
        );
    }
    stdout
}
