//! The command-line client: everyday tasks over a running daemon's REST API (list
//! projects and deploys, deploy a tag and follow its log live, roll back, manage tokens),
//! signing in and out (`login`), the state of every stage (`overview`) and shell completions.
//!
//! It knows the API only as HTTP and JSON: its response types are its own, so the client
//! keeps working against a daemon of another version as long as the fields it reads stay.
//! Exit codes: 0 done, 1 the request failed, 3 a followed deploy did not succeed.

mod apply;
mod login;
mod overview;
mod sse;

use std::io::Write;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::{Context, bail};
use chrono::{DateTime, Local, Utc};
use futures_util::StreamExt;
use serde::Deserialize;
use serde::de::DeserializeOwned;
use serde_json::json;

use crate::cli::{Command, ServerArgs, TokenCommand};

pub use sse::{SseEvent, SseReader};

/// Exit code of a followed deploy that ended in anything but success.
pub const DEPLOY_FAILED: u8 = 3;

/// Runs a client subcommand; `serve` and `rotate-key` are not client commands.
pub fn run(command: Command) -> ExitCode {
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(e) => {
            eprintln!("docker-watcher: cannot start: {e}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(dispatch(command)) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("docker-watcher: {e:#}");
            ExitCode::FAILURE
        }
    }
}

async fn dispatch(command: Command) -> anyhow::Result<ExitCode> {
    match command {
        Command::Serve | Command::RotateKey | Command::Healthcheck => bail!("not a client command"),
        Command::Projects { server } => {
            let client = Client::new(&server)?;
            for p in client.projects().await? {
                println!(
                    "{:<6} {:<24} {:<6} {}",
                    p.id, p.name, p.container_port, p.image
                );
            }
            Ok(ExitCode::SUCCESS)
        }
        Command::Deploys {
            project,
            stage,
            status,
            limit,
            server,
        } => {
            let client = Client::new(&server)?;
            let projects = client.projects().await?;
            let mut query = vec![("limit", limit.to_string())];
            if let Some(name) = &project {
                let project = find_project(&projects, name)?;
                query.push(("project_id", project.id.to_string()));
                if let Some(stage) = &stage {
                    let stage = client.stage(project.id, stage).await?;
                    query.push(("stage_id", stage.id.to_string()));
                }
            }
            if let Some(status) = status {
                query.push(("status", status));
            }
            let page: DeployPage = client.get_query("/api/deploys", &query).await?;
            for d in page.deploys {
                let project = projects
                    .iter()
                    .find(|p| p.id == d.project_id)
                    .map_or("?", |p| p.name.as_str());
                println!(
                    "{:<6} {:<20} {:<12} {:<18} {:<8} {}",
                    d.id,
                    project,
                    d.status,
                    d.tag,
                    d.trigger,
                    d.created_at
                        .with_timezone(&Local)
                        .format("%Y-%m-%d %H:%M:%S")
                );
            }
            Ok(ExitCode::SUCCESS)
        }
        Command::Deploy {
            project,
            stage,
            tag,
            follow,
            outside_window,
            server,
        } => {
            let client = Client::new(&server)?;
            let project = find_project(&client.projects().await?, &project)?.clone();
            let stage = client.stage(project.id, &stage).await?;
            let deploy: Deploy = client
                .post(
                    &format!("/api/stages/{}/deploys", stage.id),
                    &json!({ "tag": tag, "outside_window": outside_window }),
                )
                .await?;
            eprintln!(
                "deploy {} {}: {}/{} ← {}",
                deploy.id, deploy.status, project.name, stage.name, deploy.tag
            );
            finish(&client, deploy.id, follow).await
        }
        Command::Rollback {
            project,
            stage,
            follow,
            outside_window,
            server,
        } => {
            let client = Client::new(&server)?;
            let project = find_project(&client.projects().await?, &project)?.clone();
            let stage = client.stage(project.id, &stage).await?;
            let deploy: Deploy = client
                .post(
                    &format!(
                        "/api/stages/{}/rollback?outside_window={outside_window}",
                        stage.id
                    ),
                    &json!({}),
                )
                .await?;
            eprintln!(
                "deploy {} {}: {}/{} back to {}",
                deploy.id, deploy.status, project.name, stage.name, deploy.tag
            );
            finish(&client, deploy.id, follow).await
        }
        Command::Logs {
            deploy_id,
            follow,
            server,
        } => {
            let client = Client::new(&server)?;
            if follow {
                return client.follow(deploy_id).await;
            }
            let entries: Vec<LogEntry> = client
                .get(&format!("/api/deploys/{deploy_id}/logs"))
                .await?;
            for entry in entries {
                print_entry(&entry);
            }
            Ok(ExitCode::SUCCESS)
        }
        Command::Login {
            server,
            username,
            password_stdin,
        } => {
            login::login(&server, &username, password_stdin).await?;
            Ok(ExitCode::SUCCESS)
        }
        Command::Logout => {
            login::logout().await?;
            Ok(ExitCode::SUCCESS)
        }
        Command::Status { server } => {
            overview::status(&Client::new(&server)?).await?;
            Ok(ExitCode::SUCCESS)
        }
        Command::Instances {
            project,
            stage,
            server,
        } => {
            let client = Client::new(&server)?;
            overview::instances(&client, project.as_deref(), stage.as_deref()).await?;
            Ok(ExitCode::SUCCESS)
        }
        Command::Completions { shell } => {
            use clap::CommandFactory;
            let mut command = crate::cli::Cli::command();
            // Into memory first: clap_complete panics when stdout closes early (`| head`).
            let mut script = Vec::new();
            clap_complete::generate(shell, &mut command, "docker-watcher", &mut script);
            let _ = std::io::stdout().write_all(&script);
            Ok(ExitCode::SUCCESS)
        }
        Command::Token { command, server } => {
            let client = Client::new(&server)?;
            match command {
                TokenCommand::Create { name, scope } => {
                    let created: CreatedToken = client
                        .post("/api/auth/tokens", &json!({ "name": name, "scope": scope }))
                        .await?;
                    eprintln!(
                        "token {} ({}, scope {}) created; it is shown only now:",
                        created.name, created.id, created.scope
                    );
                    println!("{}", created.token);
                }
                TokenCommand::List => {
                    let tokens: Vec<Token> = client.get("/api/auth/tokens").await?;
                    for t in tokens {
                        let used = t.last_used_at.map_or("never used".to_string(), |at| {
                            format!(
                                "last used {}",
                                at.with_timezone(&Local).format("%Y-%m-%d %H:%M")
                            )
                        });
                        println!("{:<6} {:<24} {:<7} {used}", t.id, t.name, t.scope);
                    }
                }
                TokenCommand::Revoke { id } => {
                    client.delete(&format!("/api/auth/tokens/{id}")).await?;
                    eprintln!("token {id} revoked");
                }
            }
            Ok(ExitCode::SUCCESS)
        }
        Command::Apply {
            path,
            yes,
            prune,
            server,
        } => apply::apply(&Client::new(&server)?, &path, prune, !yes).await,
        Command::Diff {
            path,
            prune,
            server,
        } => apply::diff(&Client::new(&server)?, &path, prune).await,
        Command::Export { output, server } => {
            apply::export(&Client::new(&server)?, output.as_deref()).await
        }
        Command::Promote {
            project,
            from,
            to,
            outside_window,
            follow,
            server,
        } => {
            let client = Client::new(&server)?;
            let project = find_project(&client.projects().await?, &project)?.clone();
            let from = client.stage(project.id, &from).await?;
            let to = client.stage(project.id, &to).await?;
            let deploy: Deploy = client
                .post(
                    &format!("/api/stages/{}/promote", to.id),
                    &json!({ "from_stage_id": from.id, "outside_window": outside_window }),
                )
                .await?;
            eprintln!(
                "deploy {} requested: {}/{} ← {} from {} ({})",
                deploy.id, project.name, to.name, deploy.tag, from.name, deploy.status
            );
            finish(&client, deploy.id, follow).await
        }
        Command::Approve { deploy_id, server } => decide(&server, deploy_id, "approve").await,
        Command::Reject { deploy_id, server } => decide(&server, deploy_id, "reject").await,
    }
}

/// Approves or rejects a deploy waiting for approval and prints where it is now.
async fn decide(server: &ServerArgs, deploy_id: i64, verb: &str) -> anyhow::Result<ExitCode> {
    let client = Client::new(server)?;
    let deploy: Deploy = client
        .post(&format!("/api/deploys/{deploy_id}/{verb}"), &json!({}))
        .await?;
    println!("deploy {} ({}): {}", deploy.id, deploy.tag, deploy.status);
    Ok(ExitCode::SUCCESS)
}

/// After queueing a deploy: follow it, or say how to.
async fn finish(client: &Client, deploy_id: i64, follow: bool) -> anyhow::Result<ExitCode> {
    if follow {
        client.follow(deploy_id).await
    } else {
        eprintln!("follow it with: docker-watcher logs --follow {deploy_id}");
        Ok(ExitCode::SUCCESS)
    }
}

/// A thin HTTP client for the daemon's API.
pub struct Client {
    http: reqwest::Client,
    base: String,
    token: String,
}

impl Client {
    /// A client with `--token`/`DW_TOKEN`, else with what `login` saved.
    pub fn new(server: &ServerArgs) -> anyhow::Result<Client> {
        let (base, token) = login::resolve(&server.server, server.token.as_deref())?;
        Ok(Client {
            http: http_client()?,
            base,
            token,
        })
    }

    async fn projects(&self) -> anyhow::Result<Vec<Project>> {
        self.get("/api/projects").await
    }

    async fn stage(&self, project_id: i64, name: &str) -> anyhow::Result<Stage> {
        let stages: Vec<Stage> = self
            .get(&format!("/api/projects/{project_id}/stages"))
            .await?;
        let names: Vec<String> = stages.iter().map(|s| s.name.clone()).collect();
        stages
            .into_iter()
            .find(|s| s.name == name)
            .with_context(|| format!("no stage {name}; the project has: {}", names.join(", ")))
    }

    async fn get<T: DeserializeOwned>(&self, path: &str) -> anyhow::Result<T> {
        self.get_query(path, &[]).await
    }

    async fn get_query<T: DeserializeOwned>(
        &self,
        path: &str,
        query: &[(&str, String)],
    ) -> anyhow::Result<T> {
        let request = self.http.get(self.url(path)).query(query);
        self.send(request).await
    }

    async fn post<T: DeserializeOwned>(
        &self,
        path: &str,
        body: &serde_json::Value,
    ) -> anyhow::Result<T> {
        self.send(self.http.post(self.url(path)).json(body)).await
    }

    async fn delete(&self, path: &str) -> anyhow::Result<()> {
        let response = self
            .http
            .delete(self.url(path))
            .bearer_auth(&self.token)
            .timeout(Duration::from_secs(60))
            .send()
            .await
            .with_context(|| format!("cannot reach {}", self.base))?;
        check(response).await.map(|_| ())
    }

    async fn send<T: DeserializeOwned>(
        &self,
        request: reqwest::RequestBuilder,
    ) -> anyhow::Result<T> {
        let response = request
            .bearer_auth(&self.token)
            .timeout(Duration::from_secs(60))
            .send()
            .await
            .with_context(|| format!("cannot reach {}", self.base))?;
        let response = check(response).await?;
        response
            .json()
            .await
            .context("the daemon's answer is not the JSON expected")
    }

    /// Prints a deploy's log as it happens until the deploy ends; the exit code says
    /// whether it succeeded.
    pub async fn follow(&self, deploy_id: i64) -> anyhow::Result<ExitCode> {
        let response = self
            .http
            .get(self.url(&format!("/api/deploys/{deploy_id}/logs/stream")))
            .bearer_auth(&self.token)
            .header("accept", "text/event-stream")
            .send()
            .await
            .with_context(|| format!("cannot reach {}", self.base))?;
        let response = check(response).await?;
        let mut reader = SseReader::default();
        let mut body = response.bytes_stream();
        while let Some(chunk) = body.next().await {
            let chunk = chunk.context("the log stream broke off")?;
            for event in reader.push(&chunk) {
                match event.event.as_str() {
                    "log" => {
                        if let Ok(entry) = serde_json::from_str::<LogEntry>(&event.data) {
                            print_entry(&entry);
                        }
                    }
                    "end" => {
                        let deploy: Deploy = serde_json::from_str(&event.data)
                            .context("cannot read the end of the log stream")?;
                        return Ok(report(&deploy));
                    }
                    _ => {}
                }
            }
        }
        bail!("the log stream ended before the deploy did; see `docker-watcher logs {deploy_id}`")
    }

    fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }
}

fn http_client() -> anyhow::Result<reqwest::Client> {
    crate::http_client::builder()
        .connect_timeout(Duration::from_secs(10))
        .user_agent(concat!("docker-watcher-cli/", env!("CARGO_PKG_VERSION")))
        .build()
        .context("cannot build the HTTP client")
}

/// Passes a success through; turns an error answer into its message.
async fn check(response: reqwest::Response) -> anyhow::Result<reqwest::Response> {
    let status = response.status();
    if status.is_success() {
        return Ok(response);
    }
    let text = response.text().await.unwrap_or_default();
    let message = match serde_json::from_str::<ErrorBody>(&text) {
        Ok(body) => match body.fields {
            Some(fields) if !fields.is_empty() => format!(
                "{}: {}",
                body.error,
                fields
                    .iter()
                    .map(|(field, reason)| format!("{field} {reason}"))
                    .collect::<Vec<_>>()
                    .join("; ")
            ),
            _ => body.error,
        },
        Err(_) => text,
    };
    if status == reqwest::StatusCode::UNAUTHORIZED {
        bail!("{message} (check --token / DW_TOKEN, or sign in again with `docker-watcher login`)");
    }
    bail!("{} {message}", status.as_u16())
}

fn find_project<'a>(projects: &'a [Project], name: &str) -> anyhow::Result<&'a Project> {
    projects.iter().find(|p| p.name == name).with_context(|| {
        format!(
            "no project {name}; there are: {}",
            projects
                .iter()
                .map(|p| p.name.as_str())
                .collect::<Vec<_>>()
                .join(", ")
        )
    })
}

fn print_entry(entry: &LogEntry) {
    let mut out = std::io::stdout().lock();
    let _ = writeln!(
        out,
        "{} {:<5} {:<14} {}",
        entry.at.with_timezone(&Local).format("%H:%M:%S"),
        entry.level,
        entry.step,
        entry.message
    );
    let _ = out.flush();
}

fn report(deploy: &Deploy) -> ExitCode {
    if deploy.status == "success" {
        eprintln!("deploy {} succeeded: {} is live", deploy.id, deploy.tag);
        return ExitCode::SUCCESS;
    }
    let reason = match (&deploy.failed_step, &deploy.error) {
        (Some(step), Some(error)) => format!(" at {step}: {error}"),
        (None, Some(error)) => format!(": {error}"),
        _ => String::new(),
    };
    eprintln!("deploy {} {}{reason}", deploy.id, deploy.status);
    ExitCode::from(DEPLOY_FAILED)
}

// The fields the client reads; the rest of each answer is ignored.

#[derive(Deserialize, Clone)]
struct Project {
    id: i64,
    name: String,
    image: String,
    container_port: u16,
}

#[derive(Deserialize)]
struct Stage {
    id: i64,
    name: String,
}

#[derive(Deserialize)]
struct Deploy {
    id: i64,
    project_id: i64,
    tag: String,
    trigger: String,
    status: String,
    failed_step: Option<String>,
    error: Option<String>,
    created_at: DateTime<Utc>,
}

#[derive(Deserialize)]
struct DeployPage {
    deploys: Vec<Deploy>,
}

#[derive(Deserialize)]
struct LogEntry {
    at: DateTime<Utc>,
    level: String,
    step: String,
    message: String,
}

#[derive(Deserialize)]
struct Token {
    id: i64,
    name: String,
    scope: String,
    last_used_at: Option<DateTime<Utc>>,
}

#[derive(Deserialize)]
struct CreatedToken {
    id: i64,
    name: String,
    scope: String,
    token: String,
}

#[derive(Deserialize)]
struct ErrorBody {
    error: String,
    fields: Option<std::collections::BTreeMap<String, String>>,
}
