//! What the API deploy tests and the release-workflow tests both set up: a project of the
//! test image's repository (port 8080, `/health`) with its stages made over the API, and
//! the command-line client run as its real binary against that daemon with a token.

use serde_json::{Value, json};

use super::app::{Api, TestApp};
use super::registry::TestRegistry;
use super::unique_name;

/// Creates a project (a unique name) of `repository` in `registry`, serving the test
/// image's port and health path, and one stage per `(name, extra fields)`.
pub async fn create_project(
    api: &Api,
    registry: &TestRegistry,
    repository: &str,
    stages: &[(&str, Value)],
) -> (Value, Vec<Value>) {
    create_named_project(api, &unique_name("shop"), registry, repository, stages).await
}

/// [`create_project`] with the project's name given (to find its containers by label).
pub async fn create_named_project(
    api: &Api,
    name: &str,
    registry: &TestRegistry,
    repository: &str,
    stages: &[(&str, Value)],
) -> (Value, Vec<Value>) {
    let project = api
        .create(
            "/api/projects",
            json!({ "name": name, "image": format!("{}/{repository}", registry.host()),
                    "container_port": 8080, "health_path": "/health" }),
        )
        .await;
    let mut made = Vec::new();
    for (name, extra) in stages {
        let mut body = json!({ "name": name });
        if let Some(extra) = extra.as_object() {
            body.as_object_mut().unwrap().extend(extra.clone());
        }
        made.push(
            api.create(&format!("/api/projects/{}/stages", project["id"]), body)
                .await,
        );
    }
    (project, made)
}

/// The `docker-watcher` binary as a client of one daemon, signed in with one token.
pub struct Cli {
    pub server: String,
    pub token: String,
}

impl Cli {
    /// Makes an API token `name` (with `scope`, or the default) and a client using it.
    pub async fn with_new_token(app: &TestApp, api: &Api, name: &str, scope: Option<&str>) -> Cli {
        let mut body = json!({ "name": name });
        if let Some(scope) = scope {
            body["scope"] = json!(scope);
        }
        let created = api.create("/api/auth/tokens", body).await;
        Cli {
            server: app.address.clone(),
            token: created["token"].as_str().unwrap().to_string(),
        }
    }

    /// The command with `DW_SERVER` and `DW_TOKEN` set and stdin closed; a tokio command,
    /// because the daemon under test runs on the test's runtime and must not be blocked.
    pub fn command(&self, args: &[&str]) -> tokio::process::Command {
        let mut command = tokio::process::Command::new(env!("CARGO_BIN_EXE_docker-watcher"));
        command
            .args(args)
            .env("DW_SERVER", &self.server)
            .env("DW_TOKEN", &self.token)
            .stdin(std::process::Stdio::null());
        command
    }

    /// Runs the command to its end.
    pub async fn output(&self, args: &[&str]) -> std::process::Output {
        self.command(args)
            .output()
            .await
            .expect("run docker-watcher")
    }
}

/// An output as text for assertion messages: status, stdout and stderr.
pub fn describe(output: &std::process::Output) -> String {
    format!(
        "status {:?}\nstdout:\n{}\nstderr:\n{}",
        output.status,
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    )
}
