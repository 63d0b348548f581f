//! `apply`, `diff` and `export`: a projects file over `POST /api/apply` and
//! `GET /api/export`. The file is read here and its secret references resolved from this
//! machine's environment and files; the daemon plans, checks and applies. Exit codes:
//! `diff` 0 no changes, 2 changes; both 1 when the file has errors (each printed as
//! `file:line: field: reason`) or the request fails.

use std::collections::BTreeMap;
use std::io::{BufRead, IsTerminal, Write};
use std::path::Path;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::{Context, bail};
use serde::Deserialize;
use serde_json::json;

use super::{Client, ErrorBody, check};
use crate::projects_file::{Document, read_path};

/// Exit code of `diff` when applying would change something.
pub const HAS_CHANGES: u8 = 2;

pub async fn diff(client: &Client, path: &Path, prune: bool) -> anyhow::Result<ExitCode> {
    let Some(plan) = request(client, path, prune, true).await? else {
        return Ok(ExitCode::FAILURE);
    };
    print_plan(&plan);
    Ok(if plan.changes.is_empty() {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(HAS_CHANGES)
    })
}

pub async fn apply(
    client: &Client,
    path: &Path,
    prune: bool,
    ask: bool,
) -> anyhow::Result<ExitCode> {
    let Some(plan) = request(client, path, prune, true).await? else {
        return Ok(ExitCode::FAILURE);
    };
    print_plan(&plan);
    if plan.changes.is_empty() {
        // Applied anyway: it marks what the file names as managed.
        request(client, path, prune, false).await?;
        return Ok(ExitCode::SUCCESS);
    }
    if ask && !confirm(plan.changes.len())? {
        eprintln!("nothing was changed");
        return Ok(ExitCode::FAILURE);
    }
    let Some(done) = request(client, path, prune, false).await? else {
        return Ok(ExitCode::FAILURE);
    };
    eprintln!("applied {} change(s)", done.changes.len());
    Ok(ExitCode::SUCCESS)
}

pub async fn export(client: &Client, output: Option<&Path>) -> anyhow::Result<ExitCode> {
    let export: Export = client.get("/api/export").await?;
    match output {
        Some(path) => std::fs::write(path, &export.content)
            .with_context(|| format!("cannot write {}", path.display()))?,
        None => print!("{}", export.content),
    }
    if !export.references.is_empty() {
        eprintln!(
            "secrets are references: set {} where you apply the file",
            export.references.join(", ")
        );
    }
    Ok(ExitCode::SUCCESS)
}

/// Sends the file; `None` when it has errors (printed).
async fn request(
    client: &Client,
    path: &Path,
    prune: bool,
    dry_run: bool,
) -> anyhow::Result<Option<Answer>> {
    let files = read_path(path).with_context(|| format!("cannot read {}", path.display()))?;
    let document = match Document::parse(&files) {
        Ok(document) => document,
        Err(errors) => {
            for e in errors {
                eprintln!("{e}");
            }
            return Ok(None);
        }
    };
    // References without a value here are not sent; the daemon names each with its line.
    let secrets: BTreeMap<String, String> = document
        .references()
        .into_iter()
        .filter_map(|r| Some((r.key(), r.read_local()?)))
        .collect();
    let response = client
        .http
        .post(client.url("/api/apply"))
        .bearer_auth(&client.token)
        // Deleting a stage waits for its running deploy.
        .timeout(Duration::from_secs(600))
        .json(&json!({
            "files": files,
            "secrets": secrets,
            "dry_run": dry_run,
            "prune": prune,
            "origin": path.display().to_string(),
        }))
        .send()
        .await
        .with_context(|| format!("cannot reach {}", client.base))?;
    if response.status() == reqwest::StatusCode::UNPROCESSABLE_ENTITY {
        let body: ErrorBody = response
            .json()
            .await
            .context("the daemon's answer is not the JSON expected")?;
        let mut errors: Vec<(String, u64, String, String)> = body
            .fields
            .unwrap_or_default()
            .into_iter()
            .map(|(key, reason)| {
                // `file:line: field`, sorted by file and line as numbers.
                let mut parts = key.splitn(3, ':');
                let file = parts.next().unwrap_or_default().to_string();
                let line = parts.next().and_then(|l| l.parse().ok()).unwrap_or(0);
                let field = parts.next().unwrap_or_default().trim().to_string();
                (file, line, field, reason)
            })
            .collect();
        errors.sort();
        for (file, line, field, reason) in errors {
            if field.is_empty() {
                eprintln!("{file}:{line}: {reason}");
            } else {
                eprintln!("{file}:{line}: {field}: {reason}");
            }
        }
        eprintln!("the file has errors; nothing was changed");
        return Ok(None);
    }
    let response = check(response).await?;
    Ok(Some(
        response
            .json()
            .await
            .context("the daemon's answer is not the JSON expected")?,
    ))
}

fn print_plan(plan: &Answer) {
    if plan.changes.is_empty() {
        println!("no changes");
        return;
    }
    for c in &plan.changes {
        let (sign, word) = match c.action.as_str() {
            "create" => ('+', "create"),
            "delete" => ('-', "delete"),
            _ => ('~', "change"),
        };
        let name = match &c.project {
            Some(project) => format!("{project}/{}", c.name),
            None => c.name.clone(),
        };
        let fields = if c.action == "change" && !c.fields.is_empty() {
            format!(" ({})", c.fields.join(", "))
        } else {
            String::new()
        };
        println!("{sign} {word} {} {name}{fields}", c.kind);
    }
}

fn confirm(count: usize) -> anyhow::Result<bool> {
    if !std::io::stdin().is_terminal() {
        bail!("not applied: confirm by passing --yes (standard input is not a terminal)");
    }
    eprint!("apply these {count} change(s)? [y/N] ");
    std::io::stderr().flush()?;
    let mut line = String::new();
    std::io::stdin().lock().read_line(&mut line)?;
    Ok(matches!(line.trim(), "y" | "Y" | "yes"))
}

#[derive(Deserialize)]
struct Answer {
    changes: Vec<Change>,
}

#[derive(Deserialize)]
struct Change {
    action: String,
    kind: String,
    name: String,
    project: Option<String>,
    fields: Vec<String>,
}

#[derive(Deserialize)]
struct Export {
    content: String,
    references: Vec<String>,
}
