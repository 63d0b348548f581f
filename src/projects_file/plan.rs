//! What applying a file would do: compare each resource the file names with what exists
//! (the API's views, and the secrets through `Secrets`), field by field, and list the
//! creates, changes and deletes in the order they can be carried out.
//!
//! A field the file leaves out takes the value a new resource would get (`DEFAULTS`),
//! so removing a line from the file undoes it; a field the API has and the table here
//! does not know yet is compared when the file sets it and otherwise left as it is.
//! Settings are one row, not a resource: only the keys the file writes are compared.

use std::collections::BTreeSet;

use serde::Serialize;
use serde_json::{Map, Value, json};

use super::{Desired, Entry};
use crate::image_ref::ImageRef;
use crate::notify::Destination;

/// The kinds of resource a file manages.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum Kind {
    Settings,
    Registry,
    Notification,
    Project,
    Stage,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum Action {
    Create,
    Change,
    Delete,
}

/// One thing applying does.
#[derive(Clone, Debug)]
pub struct Step {
    pub action: Action,
    pub kind: Kind,
    pub name: String,
    /// A stage's project.
    pub project: Option<String>,
    /// The existing resource (change, delete).
    pub id: Option<i64>,
    /// The fields a change sets (never their values: some are secrets).
    pub fields: Vec<String>,
    /// Create: the whole body; change: the changed fields. A project's registry is under
    /// `registry`, by name.
    pub body: Map<String, Value>,
    /// Where the resource is written (create, change).
    pub entry: Option<Entry>,
}

impl Step {
    /// `project shop`, `stage shop/dev`, `settings`.
    pub fn label(&self) -> String {
        match (self.kind, &self.project) {
            (Kind::Settings, _) => "settings".into(),
            (Kind::Stage, Some(project)) => format!("stage {project}/{}", self.name),
            (kind, _) => format!("{} {}", kind_word(kind), self.name),
        }
    }
}

fn kind_word(kind: Kind) -> &'static str {
    match kind {
        Kind::Settings => "settings",
        Kind::Registry => "registry",
        Kind::Notification => "notification",
        Kind::Project => "project",
        Kind::Stage => "stage",
    }
}

#[derive(Clone, Debug, Default)]
pub struct Plan {
    pub steps: Vec<Step>,
}

impl Plan {
    pub fn is_empty(&self) -> bool {
        self.steps.is_empty()
    }
}

/// What exists, as the API shows it.
#[derive(Clone, Debug, Default)]
pub struct Current {
    pub settings: Map<String, Value>,
    pub registries: Vec<Map<String, Value>>,
    pub notifications: Vec<Map<String, Value>>,
    pub projects: Vec<CurrentProject>,
    /// Resources applied from this origin before (kind, id).
    pub managed_here: BTreeSet<(Kind, i64)>,
}

#[derive(Clone, Debug, Default)]
pub struct CurrentProject {
    pub view: Map<String, Value>,
    pub stages: Vec<Map<String, Value>>,
}

/// The write-only values, to compare with what the file says.
pub trait Secrets {
    /// A secret field's stored value (`None` when none is stored).
    fn secret(&self, kind: Kind, id: i64, field: &str) -> Option<String>;
    /// A project's or stage's env vars with their values, secrets opened.
    fn env(&self, kind: Kind, id: i64) -> Vec<(String, String)>;
}

/// Write-only fields per kind: compared through `Secrets`, never through the view.
const SECRET_FIELDS: &[(Kind, &str)] = &[
    (Kind::Registry, "secret"),
    (Kind::Notification, "url"),
    (Kind::Settings, "webhook_signing_secret"),
    (Kind::Settings, "proxy_secret"),
];

/// What a field left out of the file means: the value a new resource gets.
pub(super) fn defaults_of(kind: Kind) -> Map<String, Value> {
    let value = match kind {
        Kind::Settings => json!({}),
        Kind::Registry => {
            json!({ "base_url": "", "username": null, "secret": null, "insecure": false })
        }
        Kind::Notification => json!({
            "events": ["success", "failure", "rollback", "approval_needed"],
            "projects": [], "stages": [], "poll_error_threshold": 3,
            "title_template": null, "body_template": null,
        }),
        Kind::Project => json!({
            "registry": null, "health_path": null, "health_interval_ms": null,
            "health_timeout_ms": null, "health_retries": null, "health_start_period_ms": null,
            "env": [], "volumes": [], "network": null, "memory_bytes": null, "nano_cpus": null,
        }),
        Kind::Stage => json!({
            "tag_pattern": "*", "version_range": null, "auto_deploy": true, "max_instances": 1,
            "polling": false, "track_digest": false, "env": [], "container_port": null,
            "health_path": null, "policy": "any", "prerelease": true, "promote_from": null,
            "approvals_required": 0, "approval_timeout": 86400, "deploy_windows": [],
            "window_timezone": "UTC", "target": { "kind": "container" },
        }),
    };
    match value {
        Value::Object(map) => map,
        _ => Map::new(),
    }
}

/// The plan that makes `current` what `desired` says. Resources the file does not name
/// are deleted when `prune`, or when they were applied from this same origin before
/// (the file no longer has them); others are left alone.
pub fn plan(desired: &Desired, current: &Current, secrets: &dyn Secrets, prune: bool) -> Plan {
    let mut steps = Vec::new();
    let gone = |kind: Kind, id: i64| prune || current.managed_here.contains(&(kind, id));
    let registry_names: Vec<(i64, String)> = current
        .registries
        .iter()
        .filter_map(|r| Some((id_of(r)?, name_of(r)?)))
        .collect();
    let compare = Compare {
        secrets,
        registry_names: &registry_names,
    };

    if let Some(entry) = &desired.settings {
        let fields = compare.fields(Kind::Settings, 1, &entry.body, &current.settings);
        if !fields.is_empty() {
            steps.push(change(
                Kind::Settings,
                entry,
                1,
                None,
                fields_body(&entry.body, fields),
            ));
        }
    }
    for (kind, wanted, existing) in [
        (Kind::Registry, &desired.registries, &current.registries),
        (
            Kind::Notification,
            &desired.notifications,
            &current.notifications,
        ),
    ] {
        for entry in wanted {
            match existing
                .iter()
                .find(|r| name_of(r).as_deref() == Some(&entry.name))
            {
                None => steps.push(create(kind, entry, None, entry.body.clone())),
                Some(view) => {
                    let id = id_of(view).unwrap_or_default();
                    let full = with_defaults(kind, &entry.body);
                    let fields = compare.fields(kind, id, &full, view);
                    if !fields.is_empty() {
                        steps.push(change(kind, entry, id, None, fields_body(&full, fields)));
                    }
                }
            }
        }
    }
    let mut stage_deletes = Vec::new();
    for project in &desired.projects {
        let mut body = project.entry.body.clone();
        body.insert(
            "registry".into(),
            project.registry.clone().map_or(Value::Null, Value::String),
        );
        let existing = current
            .projects
            .iter()
            .find(|p| name_of(&p.view).as_deref() == Some(&project.entry.name));
        match existing {
            None => {
                if project.registry.is_none() {
                    body.remove("registry");
                }
                steps.push(create(Kind::Project, &project.entry, None, body));
            }
            Some(existing) => {
                let id = id_of(&existing.view).unwrap_or_default();
                let full = with_defaults(Kind::Project, &body);
                let fields = compare.fields(Kind::Project, id, &full, &existing.view);
                if !fields.is_empty() {
                    steps.push(change(
                        Kind::Project,
                        &project.entry,
                        id,
                        None,
                        fields_body(&full, fields),
                    ));
                }
            }
        }
        let project_name = Some(project.entry.name.clone());
        let current_stages = existing.map(|p| p.stages.as_slice()).unwrap_or_default();
        for stage in &project.stages {
            match current_stages
                .iter()
                .find(|s| name_of(s).as_deref() == Some(&stage.name))
            {
                None => steps.push(create(
                    Kind::Stage,
                    stage,
                    project_name.clone(),
                    stage.body.clone(),
                )),
                Some(view) => {
                    let id = id_of(view).unwrap_or_default();
                    let full = with_defaults(Kind::Stage, &stage.body);
                    let fields = compare.fields(Kind::Stage, id, &full, view);
                    if !fields.is_empty() {
                        steps.push(change(
                            Kind::Stage,
                            stage,
                            id,
                            project_name.clone(),
                            fields_body(&full, fields),
                        ));
                    }
                }
            }
        }
        for view in current_stages {
            let (Some(id), Some(name)) = (id_of(view), name_of(view)) else {
                continue;
            };
            if !project.stages.iter().any(|s| s.name == name) && gone(Kind::Stage, id) {
                stage_deletes.push(delete(Kind::Stage, id, name, project_name.clone()));
            }
        }
    }
    steps.extend(stage_deletes);
    for existing in &current.projects {
        let (Some(id), Some(name)) = (id_of(&existing.view), name_of(&existing.view)) else {
            continue;
        };
        if !desired.projects.iter().any(|p| p.entry.name == name) && gone(Kind::Project, id) {
            steps.push(delete(Kind::Project, id, name, None));
        }
    }
    for (kind, wanted, existing) in [
        (Kind::Registry, &desired.registries, &current.registries),
        (
            Kind::Notification,
            &desired.notifications,
            &current.notifications,
        ),
    ] {
        for view in existing {
            let (Some(id), Some(name)) = (id_of(view), name_of(view)) else {
                continue;
            };
            if !wanted.iter().any(|e| e.name == name) && gone(kind, id) {
                steps.push(delete(kind, id, name, None));
            }
        }
    }
    Plan { steps }
}

fn create(kind: Kind, entry: &Entry, project: Option<String>, body: Map<String, Value>) -> Step {
    Step {
        action: Action::Create,
        kind,
        name: entry.name.clone(),
        project,
        id: None,
        fields: body.keys().cloned().collect(),
        body,
        entry: Some(entry.clone()),
    }
}

fn change(
    kind: Kind,
    entry: &Entry,
    id: i64,
    project: Option<String>,
    body: Map<String, Value>,
) -> Step {
    Step {
        action: Action::Change,
        kind,
        name: entry.name.clone(),
        project,
        id: Some(id),
        fields: body.keys().cloned().collect(),
        body,
        entry: Some(entry.clone()),
    }
}

fn delete(kind: Kind, id: i64, name: String, project: Option<String>) -> Step {
    Step {
        action: Action::Delete,
        kind,
        name,
        project,
        id: Some(id),
        fields: Vec::new(),
        body: Map::new(),
        entry: None,
    }
}

/// A target URL as the API stores it (`Destination::to_url`), read with the target's
/// kind for plain http(s) URLs; one that does not parse stays as typed (and differs).
fn canonical_notification_url(url: &str, view: &Map<String, Value>) -> String {
    let kind = view
        .get("kind")
        .and_then(Value::as_str)
        .and_then(|k| k.parse().ok());
    Destination::parse(url, kind).map_or_else(|_| url.to_string(), |d| d.to_url())
}

fn with_defaults(kind: Kind, body: &Map<String, Value>) -> Map<String, Value> {
    let mut full = defaults_of(kind);
    for (k, v) in body {
        full.insert(k.clone(), v.clone());
    }
    full
}

fn fields_body(full: &Map<String, Value>, fields: Vec<String>) -> Map<String, Value> {
    fields
        .into_iter()
        .filter_map(|f| full.get(&f).map(|v| (f, v.clone())))
        .collect()
}

pub(super) fn id_of(view: &Map<String, Value>) -> Option<i64> {
    view.get("id").and_then(Value::as_i64)
}

pub(super) fn name_of(view: &Map<String, Value>) -> Option<String> {
    view.get("name").and_then(Value::as_str).map(str::to_string)
}

struct Compare<'a> {
    secrets: &'a dyn Secrets,
    registry_names: &'a [(i64, String)],
}

impl Compare<'_> {
    /// The fields of `wanted` whose value differs from what exists.
    fn fields(
        &self,
        kind: Kind,
        id: i64,
        wanted: &Map<String, Value>,
        view: &Map<String, Value>,
    ) -> Vec<String> {
        wanted
            .iter()
            .filter(|(field, want)| self.differs(kind, id, field, want, view))
            .map(|(field, _)| field.clone())
            .collect()
    }

    fn differs(
        &self,
        kind: Kind,
        id: i64,
        field: &str,
        want: &Value,
        view: &Map<String, Value>,
    ) -> bool {
        if SECRET_FIELDS.contains(&(kind, field)) {
            let have = self
                .secrets
                .secret(kind, id, field)
                .filter(|s| !s.is_empty());
            let want = want.as_str().filter(|s| !s.is_empty());
            if (kind, field) == (Kind::Notification, "url") {
                // The store keeps a target's URL in its canonical form; the file's is as typed.
                let want = want.map(|url| canonical_notification_url(url, view));
                return have != want;
            }
            return have.as_deref() != want;
        }
        match (kind, field) {
            (Kind::Project | Kind::Stage, "env") => !self.same_env(kind, id, want, view.get("env")),
            (Kind::Project, "image") => {
                let want = want.as_str().map(|i| {
                    ImageRef::parse(i.trim()).map_or_else(|_| i.to_string(), |r| r.name())
                });
                want.as_deref() != view.get("image").and_then(Value::as_str)
            }
            (Kind::Project, "registry") => {
                let have = view
                    .get("registry_id")
                    .and_then(Value::as_i64)
                    .and_then(|id| {
                        self.registry_names
                            .iter()
                            .find(|(i, _)| *i == id)
                            .map(|(_, n)| n.as_str())
                    });
                want.as_str() != have
            }
            // The file may name only some of a target's fields: the rest take defaults.
            (Kind::Stage, "target") => {
                let mut full = json!({
                    "kind": "container", "replicas": 1, "constraints": [],
                    "update_parallelism": 1, "update_delay_ms": 0,
                });
                if let (Some(full), Some(want)) = (full.as_object_mut(), want.as_object()) {
                    full.extend(want.clone());
                }
                view.get("target")
                    .is_some_and(|have| !same_value(&full, have))
            }
            (_, "name") => false,
            // A field the view does not show cannot be compared; it is set on create.
            _ => view.get(field).is_some_and(|have| !same_value(want, have)),
        }
    }

    /// Env lists in order: name, secret flag and value (a secret's opened); a secret the
    /// file writes without a value keeps the stored one, as in the API.
    fn same_env(&self, kind: Kind, id: i64, want: &Value, have: Option<&Value>) -> bool {
        let (Some(want), Some(have)) = (want.as_array(), have.and_then(Value::as_array)) else {
            return false;
        };
        if want.len() != have.len() {
            return false;
        }
        let opened = self.secrets.env(kind, id);
        want.iter().zip(have).all(|(w, h)| {
            let name = w.get("name").and_then(Value::as_str);
            let secret = w.get("secret").and_then(Value::as_bool).unwrap_or(false);
            if name != h.get("name").and_then(Value::as_str)
                || secret != h.get("secret").and_then(Value::as_bool).unwrap_or(false)
            {
                return false;
            }
            match w.get("value").filter(|v| !v.is_null()) {
                None => secret,
                Some(value) if secret => {
                    let stored = opened.iter().find(|(n, _)| Some(n.as_str()) == name);
                    stored.map(|(_, v)| v.as_str()) == value.as_str()
                }
                Some(value) => h.get("value").is_some_and(|h| same_value(value, h)),
            }
        })
    }
}

/// JSON equality where `2` and `2.0` are one number.
fn same_value(a: &Value, b: &Value) -> bool {
    match (a, b) {
        (Value::Number(x), Value::Number(y)) => x.as_f64() == y.as_f64(),
        (Value::Array(x), Value::Array(y)) => {
            x.len() == y.len() && x.iter().zip(y).all(|(a, b)| same_value(a, b))
        }
        (Value::Object(x), Value::Object(y)) => {
            x.len() == y.len()
                && x.iter()
                    .all(|(k, v)| y.get(k).is_some_and(|w| same_value(v, w)))
        }
        _ => a == b,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::projects_file::{Document, SourceFile};

    struct Stored;

    impl Secrets for Stored {
        fn secret(&self, _: Kind, _: i64, field: &str) -> Option<String> {
            (field == "secret").then(|| "old".to_string())
        }
        fn env(&self, _: Kind, _: i64) -> Vec<(String, String)> {
            vec![("S".into(), "same".into())]
        }
    }

    fn desired(content: &str) -> Desired {
        let sources = vec![SourceFile {
            name: "p.toml".into(),
            content: content.into(),
        }];
        let (desired, errors) = Document::parse(&sources)
            .unwrap()
            .desired(&|_| Some("same".into()));
        assert!(errors.is_empty(), "{errors:?}");
        desired
    }

    fn map(value: Value) -> Map<String, Value> {
        match value {
            Value::Object(map) => map,
            _ => unreachable!(),
        }
    }

    fn current() -> Current {
        Current {
            registries: vec![map(
                json!({ "id": 1, "name": "r", "kind": "oci", "base_url": "", "username": null, "has_secret": true, "insecure": false }),
            )],
            projects: vec![
                CurrentProject {
                    view: map(
                        json!({ "id": 1, "name": "shop", "image": "docker.io/library/nginx", "registry_id": 1,
                        "container_port": 80, "health_path": "/health", "health_interval_ms": null, "health_timeout_ms": null,
                        "health_retries": null, "health_start_period_ms": null, "volumes": [], "network": null,
                        "memory_bytes": null, "nano_cpus": null,
                        "env": [{ "name": "S", "value": null, "secret": true }] }),
                    ),
                    stages: vec![
                        map(
                            json!({ "id": 1, "name": "dev", "tag_pattern": "*", "version_range": null, "auto_deploy": true,
                            "max_instances": 1, "polling": false, "track_digest": false, "env": [], "container_port": null,
                            "health_path": null }),
                        ),
                        map(json!({ "id": 2, "name": "old", "tag_pattern": "*" })),
                    ],
                },
                CurrentProject {
                    view: map(json!({ "id": 2, "name": "other" })),
                    stages: vec![],
                },
            ],
            ..Current::default()
        }
    }

    fn words(plan: &Plan) -> Vec<String> {
        plan.steps
            .iter()
            .map(|s| format!("{:?} {} {}", s.action, s.label(), s.fields.join(",")))
            .collect()
    }

    const FILE: &str = r#"
[[registries]]
name = "r"
kind = "oci"
secret = { env = "X" }

[[projects]]
name = "shop"
image = "nginx"
registry = "r"
container_port = 80
env = [{ name = "S", value = { env = "S" }, secret = true }]

[[projects.stages]]
name = "dev"
"#;

    #[test]
    fn a_left_out_field_resets_and_secrets_compare_by_value() {
        let plan = plan(&desired(FILE), &current(), &Stored, false);
        // The registry's secret differs ("old" stored); health_path is not in the file,
        // so it goes back to none; the image compares normalised; the secret env var is
        // the same; "old" and "other" were never applied from here, so they stay.
        assert_eq!(
            words(&plan),
            vec![
                "Change registry r secret",
                "Change project shop health_path"
            ]
        );
        assert_eq!(plan.steps[1].body["health_path"], Value::Null);
    }

    #[test]
    fn a_stage_target_compares_with_its_defaults_filled_in() {
        let swarm = json!({ "kind": "swarm", "replicas": 2, "constraints": [],
            "update_parallelism": 1, "update_delay_ms": 0 });
        let mut current = current();
        current.projects[0].stages[0].insert("target".into(), swarm);
        let file = FILE.replace(
            "name = \"dev\"",
            "name = \"dev\"\ntarget = { kind = \"swarm\", replicas = 2 }",
        );
        let steps = words(&plan(&desired(&file), &current, &Stored, false));
        assert!(!steps.iter().any(|w| w.contains("stage")), "{steps:?}");
        let file = FILE.replace(
            "name = \"dev\"",
            "name = \"dev\"\ntarget = { kind = \"swarm\", replicas = 3 }",
        );
        let steps = words(&plan(&desired(&file), &current, &Stored, false));
        assert!(
            steps.contains(&"Change stage shop/dev target".to_string()),
            "{steps:?}"
        );
        // Left out of the file: back to containers.
        let steps = words(&plan(&desired(FILE), &current, &Stored, false));
        assert!(
            steps.contains(&"Change stage shop/dev target".to_string()),
            "{steps:?}"
        );
    }

    #[test]
    fn unnamed_resources_go_with_prune_or_when_this_origin_made_them() {
        let mut current = current();
        current.managed_here.insert((Kind::Stage, 2));
        let plan = plan(&desired(FILE), &current, &Stored, false);
        assert!(
            words(&plan).contains(&"Delete stage shop/old ".to_string()),
            "{:?}",
            words(&plan)
        );
        assert!(!words(&plan).iter().any(|w| w.contains("other")));
        let plan = super::plan(&desired(FILE), &current, &Stored, true);
        assert!(
            words(&plan).contains(&"Delete project other ".to_string()),
            "{:?}",
            words(&plan)
        );
    }
}
