//! `status` (the dashboard in a terminal: every stage with the tag it serves, that
//! instance's state — a swarm stage's service: running tasks of its replicas — and the
//! last deploy) and `instances` (every container, one a line).

use std::collections::BTreeMap;

use chrono::{DateTime, Local, Utc};
use serde::Deserialize;

use super::{Client, Deploy, DeployPage, Project, find_project};

#[derive(Deserialize)]
struct StageRow {
    id: i64,
    name: String,
    #[serde(default)]
    target: Option<TargetRow>,
}

#[derive(Deserialize)]
struct TargetRow {
    kind: String,
}

/// A swarm stage's service, as `GET /api/stages/{id}/service` shows it.
#[derive(Deserialize)]
struct ServiceRow {
    exists: bool,
    image: Option<String>,
    replicas: u64,
    tasks: Vec<TaskRow>,
}

#[derive(Deserialize)]
struct TaskRow {
    state: String,
    desired_state: String,
}

#[derive(Deserialize)]
struct Instance {
    id: i64,
    stage_id: i64,
    tag: String,
    status: String,
    container_id: Option<String>,
    upstream: Option<String>,
    created_at: DateTime<Utc>,
}

/// `docker-watcher status`.
pub async fn status(client: &Client) -> anyhow::Result<()> {
    let mut projects = client.projects().await?;
    projects.sort_by(|a, b| a.name.cmp(&b.name));
    let instances: Vec<Instance> = client.get("/api/instances").await?;
    println!(
        "{:<20} {:<12} {:<18} {:<9} LAST DEPLOY",
        "PROJECT", "STAGE", "TAG", "HEALTH"
    );
    for project in &projects {
        let mut stages: Vec<StageRow> = client
            .get(&format!("/api/projects/{}/stages", project.id))
            .await?;
        stages.sort_by(|a, b| a.name.cmp(&b.name));
        if stages.is_empty() {
            println!("{:<20} (no stages)", project.name);
        }
        for stage in stages {
            let page: DeployPage = client
                .get_query(
                    "/api/deploys",
                    &[("stage_id", stage.id.to_string()), ("limit", "1".into())],
                )
                .await?;
            let (tag, health) = if stage.target.as_ref().is_some_and(|t| t.kind == "swarm") {
                let service: anyhow::Result<ServiceRow> = client
                    .get(&format!("/api/stages/{}/service", stage.id))
                    .await;
                service_health(service)
            } else {
                serving(&instances, stage.id)
            };
            println!(
                "{:<20} {:<12} {:<18} {:<9} {}",
                project.name,
                stage.name,
                tag,
                health,
                page.deploys.first().map_or("never".into(), last_deploy)
            );
        }
    }
    Ok(())
}

/// `docker-watcher instances`.
pub async fn instances(
    client: &Client,
    project: Option<&str>,
    stage: Option<&str>,
) -> anyhow::Result<()> {
    let projects = client.projects().await?;
    // Stage id → "project/stage", for every stage of the projects asked about.
    let mut names = BTreeMap::new();
    let chosen: Vec<&Project> = match project {
        Some(name) => vec![find_project(&projects, name)?],
        None => projects.iter().collect(),
    };
    for p in chosen {
        let stages: Vec<StageRow> = client
            .get(&format!("/api/projects/{}/stages", p.id))
            .await?;
        for s in stages {
            if stage.is_none_or(|wanted| wanted == s.name) {
                names.insert(s.id, format!("{}/{}", p.name, s.name));
            }
        }
    }
    let instances: Vec<Instance> = client.get("/api/instances").await?;
    println!(
        "{:<6} {:<28} {:<18} {:<9} {:<13} {:<22} CREATED",
        "ID", "STAGE", "TAG", "STATUS", "CONTAINER", "UPSTREAM"
    );
    for i in instances.iter().filter(|i| names.contains_key(&i.stage_id)) {
        println!(
            "{:<6} {:<28} {:<18} {:<9} {:<13} {:<22} {}",
            i.id,
            names[&i.stage_id],
            i.tag,
            i.status,
            i.container_id
                .as_deref()
                .map_or("-", |c| c.get(..12).unwrap_or(c)),
            i.upstream.as_deref().unwrap_or("-"),
            i.created_at.with_timezone(&Local).format("%Y-%m-%d %H:%M")
        );
    }
    Ok(())
}

/// The tag the stage serves and its instance's state: the newest running instance, else
/// the newest at all (as the dashboard shows it).
fn serving(instances: &[Instance], stage_id: i64) -> (String, String) {
    let mut own: Vec<&Instance> = instances
        .iter()
        .filter(|i| i.stage_id == stage_id)
        .collect();
    own.sort_by_key(|i| std::cmp::Reverse(i.id));
    let shown = own.iter().find(|i| i.status == "running").or(own.first());
    match shown {
        Some(i) => (i.tag.clone(), i.status.clone()),
        None => ("-".into(), "none".into()),
    }
}

/// A swarm stage's tag (from its service's image) and `running/replicas` of its tasks.
fn service_health(service: anyhow::Result<ServiceRow>) -> (String, String) {
    match service {
        Ok(s) if s.exists => {
            let tag = s
                .image
                .as_deref()
                .map(|i| i.split('@').next().unwrap_or(i))
                .and_then(|i| i.rsplit_once(':'))
                .filter(|(_, tag)| !tag.contains('/'))
                .map_or("-".to_string(), |(_, tag)| tag.to_string());
            let up = s
                .tasks
                .iter()
                .filter(|t| t.state == "running" && t.desired_state == "running")
                .count();
            (tag, format!("{up}/{} up", s.replicas))
        }
        Ok(_) => ("-".into(), "no service".into()),
        Err(_) => ("-".into(), "unknown".into()),
    }
}

fn last_deploy(d: &Deploy) -> String {
    format!(
        "{} {} {} ({})",
        d.id,
        d.tag,
        d.status,
        d.created_at.with_timezone(&Local).format("%Y-%m-%d %H:%M")
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_swarm_stage_shows_its_image_tag_and_running_tasks() {
        let task = |state: &str| TaskRow {
            state: state.into(),
            desired_state: "running".into(),
        };
        let service = ServiceRow {
            exists: true,
            image: Some("127.0.0.1:5000/shop:v2@sha256:abc".into()),
            replicas: 3,
            tasks: vec![task("running"), task("running"), task("starting")],
        };
        assert_eq!(
            service_health(Ok(service)),
            ("v2".to_string(), "2/3 up".to_string())
        );
        let none = ServiceRow {
            exists: false,
            image: None,
            replicas: 0,
            tasks: Vec::new(),
        };
        assert_eq!(service_health(Ok(none)).1, "no service");
    }
}
