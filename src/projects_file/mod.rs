//! Projects as code: a TOML file (or a folder of them) that says which registries,
//! projects with their stages, notification targets and settings an installation has, in
//! the API's own words. This module reads such files (`parse`), compares them with what
//! exists (`plan`) and writes what exists as one (`export`); `api::apply` carries the
//! plan out through the API's own handlers, for `POST /api/apply` and `serve --projects`.
//!
//! Each resource's table is the JSON body the API's create handler takes (the file adds
//! `registry` by name instead of `registry_id`, and a project's `stages`), so a field the
//! API gains is a field the file has. Secrets are never written in a file: a value may be
//! `{ env = "NAME" }` or `{ file = "/run/secrets/x" }`, resolved when the file is applied
//! (by the CLI on the machine it runs on, by the daemon in managed mode).
//!
//! Invariant: knows no HTTP, SQL or Docker; it sees what exists as the API's JSON views.

mod export;
mod parse;
mod plan;

use std::collections::BTreeMap;
use std::path::Path;

use serde_json::{Map, Value};

pub use export::export;
pub use plan::{Action, Current, CurrentProject, Kind, Plan, Secrets, Step, plan};

use parse::{Node, ParsedFile, ToJson};

/// An error in a file: where, which field, and why (what the API's 422 would say).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct FileError {
    pub file: String,
    pub line: u32,
    /// `projects[shop].stages[dev].tag_pattern`; empty for the file as a whole.
    pub field: String,
    pub message: String,
}

impl std::fmt::Display for FileError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if self.field.is_empty() {
            write!(f, "{}:{}: {}", self.file, self.line, self.message)
        } else {
            write!(
                f,
                "{}:{}: {}: {}",
                self.file, self.line, self.field, self.message
            )
        }
    }
}

/// A secret written as a reference.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum SecretRef {
    Env(String),
    File(String),
}

impl SecretRef {
    /// The key a resolved value is sent under in `POST /api/apply`: `env:NAME`, `file:/path`.
    pub fn key(&self) -> String {
        match self {
            SecretRef::Env(name) => format!("env:{name}"),
            SecretRef::File(path) => format!("file:{path}"),
        }
    }

    fn missing(&self) -> String {
        match self {
            SecretRef::Env(name) => format!(
                "the environment variable {name} is not set where the file is applied; set it (the secret is read from it)"
            ),
            SecretRef::File(path) => format!(
                "the file {path} cannot be read where the file is applied; create it (the secret is read from it)"
            ),
        }
    }

    /// Reads the value here: the variable, or the file without its trailing newline.
    pub fn read_local(&self) -> Option<String> {
        match self {
            SecretRef::Env(name) => std::env::var(name).ok(),
            SecretRef::File(path) => std::fs::read_to_string(path)
                .ok()
                .map(|s| s.trim_end_matches(['\n', '\r']).to_string()),
        }
    }
}

/// A file's text and the name errors call it by.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize, utoipa::ToSchema)]
pub struct SourceFile {
    /// How errors and markers name it, e.g. `deploy/projects.toml`.
    pub name: String,
    pub content: String,
}

/// Reads a file, or every `*.toml` file of a folder in name order.
pub fn read_path(path: &Path) -> std::io::Result<Vec<SourceFile>> {
    let read = |p: &Path| {
        std::fs::read_to_string(p).map(|content| SourceFile {
            name: p.display().to_string(),
            content,
        })
    };
    if path.is_dir() {
        let mut paths: Vec<_> = std::fs::read_dir(path)?
            .filter_map(Result::ok)
            .map(|e| e.path())
            .filter(|p| p.extension().is_some_and(|e| e == "toml") && p.is_file())
            .collect();
        paths.sort();
        paths.iter().map(|p| read(p)).collect()
    } else {
        Ok(vec![read(path)?])
    }
}

/// Parsed files, before secrets are resolved.
pub struct Document {
    files: Vec<ParsedFile>,
}

impl Document {
    /// Parses every file; the errors of all of them at once.
    pub fn parse(sources: &[SourceFile]) -> Result<Document, Vec<FileError>> {
        let mut files = Vec::new();
        let mut errors = Vec::new();
        if sources.is_empty() {
            errors.push(FileError {
                file: String::new(),
                line: 0,
                field: String::new(),
                message: "no file to apply: give a .toml file or a folder with some".into(),
            });
        }
        for source in sources {
            match ParsedFile::parse(&source.name, &source.content) {
                Ok(file) => files.push(file),
                Err(e) => errors.push(e),
            }
        }
        if errors.is_empty() {
            Ok(Document { files })
        } else {
            Err(errors)
        }
    }

    /// Every secret reference in the files, each once.
    pub fn references(&self) -> Vec<SecretRef> {
        let mut out = Vec::new();
        for file in &self.files {
            for (_, value) in &file.root {
                parse::references(value.get_ref(), &mut out);
            }
        }
        out.sort();
        out.dedup();
        out
    }

    /// The resources the files describe, with references resolved by `resolve`, and the
    /// errors found on the way (a reference without a value is `null` in its body, so
    /// the rest of the file can still be checked and every error named at once).
    pub fn desired(
        &self,
        resolve: &dyn Fn(&SecretRef) -> Option<String>,
    ) -> (Desired, Vec<FileError>) {
        let mut desired = Desired::default();
        let mut errors = Vec::new();
        for file in &self.files {
            read_file(file, resolve, &mut desired, &mut errors);
        }
        check_unique(&desired, &mut errors);
        (desired, errors)
    }
}

/// What the files ask for.
#[derive(Debug, Default, Clone)]
pub struct Desired {
    pub settings: Option<Entry>,
    pub registries: Vec<Entry>,
    pub notifications: Vec<Entry>,
    pub projects: Vec<ProjectEntry>,
}

/// One resource's table: its body in the API's words and where each field is written.
#[derive(Debug, Clone)]
pub struct Entry {
    pub name: String,
    pub file: String,
    pub line: u32,
    /// How errors name it: `projects[shop]`, `projects[shop].stages[dev]`, `settings`.
    pub label: String,
    pub body: Map<String, Value>,
    lines: BTreeMap<String, u32>,
}

impl Entry {
    /// A file error at `field` of this resource (an API field name such as `env[1].value`
    /// or `body`), at the line the field is written on, else the resource's.
    pub fn error(&self, field: &str, message: impl Into<String>) -> FileError {
        let mut path = field;
        let line = loop {
            if let Some(line) = self.lines.get(path) {
                break *line;
            }
            match path.rfind(['.', '[']) {
                Some(cut) => path = &path[..cut],
                None => break self.line,
            }
        };
        let field = if field.is_empty() || field == "body" || field == "." {
            self.label.clone()
        } else {
            format!("{}.{field}", self.label)
        };
        FileError {
            file: self.file.clone(),
            line,
            field,
            message: message.into(),
        }
    }
}

/// A project with the registry it names and its stages.
#[derive(Debug, Clone)]
pub struct ProjectEntry {
    pub entry: Entry,
    /// The `registry` key: a registry's name.
    pub registry: Option<String>,
    pub stages: Vec<Entry>,
}

const TOP_LEVEL: &[&str] = &["settings", "registries", "notifications", "projects"];

fn read_file(
    file: &ParsedFile,
    resolve: &dyn Fn(&SecretRef) -> Option<String>,
    desired: &mut Desired,
    errors: &mut Vec<FileError>,
) {
    for (key, value) in &file.root {
        let at = |message: String| FileError {
            file: file.name.clone(),
            line: file.line(key.span().start),
            field: key.get_ref().clone(),
            message,
        };
        match (key.get_ref().as_str(), value.get_ref()) {
            ("settings", Node::Table(entries)) => {
                let entry = entry(file, resolve, "settings", "settings", value, entries, errors);
                if let Some(first) = &desired.settings {
                    errors.push(at(format!(
                        "settings are already written in {} line {}; keep them in one file",
                        first.file, first.line
                    )));
                } else {
                    desired.settings = Some(entry);
                }
            }
            ("registries" | "notifications" | "projects", Node::Array(items)) => {
                for item in items {
                    let Node::Table(entries) = item.get_ref() else {
                        errors.push(at("must be a list of tables ([[…]])".into()));
                        continue;
                    };
                    let kind = key.get_ref().as_str();
                    let name = name_of(entries).unwrap_or_default();
                    let label = format!("{kind}[{name}]");
                    let mut e = entry(file, resolve, &name, &label, item, entries, errors);
                    if name.is_empty() {
                        errors.push(e.error("name", "is required"));
                    }
                    match kind {
                        "registries" => desired.registries.push(e),
                        "notifications" => desired.notifications.push(e),
                        _ => {
                            let project = project(file, resolve, &mut e, entries, errors);
                            desired.projects.push(project);
                        }
                    }
                }
            }
            (known, _) if TOP_LEVEL.contains(&known) => errors.push(at(if known == "settings" {
                "must be a table ([settings])".into()
            } else {
                format!("must be a list of tables ([[{known}]])")
            })),
            (other, _) => errors.push(at(format!(
                "unknown section {other:?}: a projects file has settings, registries, notifications and projects"
            ))),
        }
    }
}

fn name_of(entries: &[(toml::Spanned<String>, toml::Spanned<Node>)]) -> Option<String> {
    entries
        .iter()
        .find(|(k, _)| k.get_ref() == "name")
        .and_then(|(_, v)| match v.get_ref() {
            Node::Str(s) => Some(s.clone()),
            _ => None,
        })
}

fn entry(
    file: &ParsedFile,
    resolve: &dyn Fn(&SecretRef) -> Option<String>,
    name: &str,
    label: &str,
    node: &toml::Spanned<Node>,
    entries: &[(toml::Spanned<String>, toml::Spanned<Node>)],
    errors: &mut Vec<FileError>,
) -> Entry {
    let mut json = ToJson {
        file,
        resolve,
        lines: BTreeMap::new(),
        errors: Vec::new(),
    };
    let body = json.table("", entries);
    let mut entry = Entry {
        name: name.to_string(),
        file: file.name.clone(),
        line: file.line(node.span().start),
        label: label.to_string(),
        body,
        lines: json.lines,
    };
    // Reference errors carry the path inside the resource; name it from the file's top.
    for mut e in json.errors {
        e.field = format!("{label}.{}", e.field);
        errors.push(e);
    }
    // An array-of-tables entry's span starts at its first key; its header is the line before.
    if let Some(first) = entries.first() {
        entry.line = file.line(first.0.span().start).min(entry.line);
    }
    entry
}

fn project(
    file: &ParsedFile,
    resolve: &dyn Fn(&SecretRef) -> Option<String>,
    entry: &mut Entry,
    entries: &[(toml::Spanned<String>, toml::Spanned<Node>)],
    errors: &mut Vec<FileError>,
) -> ProjectEntry {
    let registry = match entry.body.remove("registry") {
        None => None,
        Some(Value::String(name)) => Some(name),
        Some(_) => {
            errors.push(entry.error("registry", "must be a registry's name"));
            None
        }
    };
    if entry.body.contains_key("registry_id") {
        errors.push(entry.error(
            "registry_id",
            "name the registry with `registry = \"name\"` instead (ids differ between installations)",
        ));
    }
    entry.body.remove("stages");
    let mut stages = Vec::new();
    if let Some((key, value)) = entries.iter().find(|(k, _)| k.get_ref() == "stages") {
        match value.get_ref() {
            Node::Array(items) => {
                for item in items {
                    let Node::Table(stage_entries) = item.get_ref() else {
                        errors.push(
                            entry.error("stages", "must be a list of tables ([[projects.stages]])"),
                        );
                        continue;
                    };
                    let name = name_of(stage_entries).unwrap_or_default();
                    let label = format!("{}.stages[{name}]", entry.label);
                    let stage =
                        self::entry(file, resolve, &name, &label, item, stage_entries, errors);
                    if name.is_empty() {
                        errors.push(stage.error("name", "is required"));
                    }
                    stages.push(stage);
                }
            }
            _ => errors.push(FileError {
                file: file.name.clone(),
                line: file.line(key.span().start),
                field: format!("{}.stages", entry.label),
                message: "must be a list of tables ([[projects.stages]])".into(),
            }),
        }
    }
    ProjectEntry {
        entry: entry.clone(),
        registry,
        stages,
    }
}

/// Two resources of a kind with one name (in one file or two) are an error at the second.
fn check_unique(desired: &Desired, errors: &mut Vec<FileError>) {
    fn each<'a>(entries: impl Iterator<Item = &'a Entry>, errors: &mut Vec<FileError>) {
        let mut seen: Vec<&Entry> = Vec::new();
        for e in entries {
            if e.name.is_empty() {
                continue;
            }
            if let Some(first) = seen.iter().find(|s| s.name == e.name) {
                errors.push(e.error(
                    "name",
                    format!(
                        "{} is already written in {} line {}; names are unique",
                        e.name, first.file, first.line
                    ),
                ));
            } else {
                seen.push(e);
            }
        }
    }
    each(desired.registries.iter(), errors);
    each(desired.notifications.iter(), errors);
    each(desired.projects.iter().map(|p| &p.entry), errors);
    for p in &desired.projects {
        each(p.stages.iter(), errors);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn source(content: &str) -> Vec<SourceFile> {
        vec![SourceFile {
            name: "p.toml".into(),
            content: content.into(),
        }]
    }

    const FILE: &str = r#"[[registries]]
name = "ghcr"
kind = "ghcr"
secret = { env = "TOKEN" }

[[projects]]
name = "shop"
image = "nginx"
registry = "ghcr"
container_port = 80
env = [
  { name = "A", value = "1" },
  { name = "S", value = { file = "/run/secrets/s" }, secret = true },
]

  [[projects.stages]]
  name = "dev"
  tag_pattern = "dev-*"
"#;

    fn resolve(r: &SecretRef) -> Option<String> {
        match r {
            SecretRef::Env(name) if name == "TOKEN" => Some("t0k3n".into()),
            SecretRef::File(path) if path == "/run/secrets/s" => Some("s3cret".into()),
            _ => None,
        }
    }

    #[test]
    fn tables_become_api_bodies_with_references_resolved() {
        let document = Document::parse(&source(FILE)).unwrap();
        assert_eq!(
            document.references(),
            vec![
                SecretRef::Env("TOKEN".into()),
                SecretRef::File("/run/secrets/s".into())
            ]
        );
        let (desired, errors) = document.desired(&resolve);
        assert_eq!(errors, vec![]);
        assert_eq!(desired.registries[0].body["secret"], json!("t0k3n"));
        let project = &desired.projects[0];
        assert_eq!(project.registry.as_deref(), Some("ghcr"));
        assert!(!project.entry.body.contains_key("registry"));
        assert!(!project.entry.body.contains_key("stages"));
        assert_eq!(
            project.entry.body["env"][1],
            json!({ "name": "S", "value": "s3cret", "secret": true })
        );
        assert_eq!(project.stages[0].label, "projects[shop].stages[dev]");
    }

    #[test]
    fn errors_name_the_line_of_the_field() {
        let document = Document::parse(&source(FILE)).unwrap();
        let (desired, errors) = document.desired(&|_| None);
        let lines: Vec<(u32, &str)> = errors.iter().map(|e| (e.line, e.field.as_str())).collect();
        assert_eq!(
            lines,
            vec![
                (4, "registries[ghcr].secret"),
                (13, "projects[shop].env[1].value")
            ]
        );
        let project = &desired.projects[0].entry;
        assert_eq!(project.line, 6);
        assert_eq!(project.error("container_port", "x").line, 10);
        assert_eq!(project.error("env[0].value", "x").line, 12);
        // A field the file does not write is named at the resource.
        assert_eq!(project.error("health_path", "x").line, 6);
        let stage = &desired.projects[0].stages[0];
        assert_eq!(stage.error("tag_pattern", "x").line, 18);
    }

    #[test]
    fn structure_errors_are_named() {
        let errors = Document::parse(&source("[[projects]]\nname = \"a\"\nimage = \n"))
            .err()
            .unwrap();
        assert_eq!(errors[0].line, 3);
        let document = Document::parse(&source(
            "[project]\nname = \"a\"\n\n[[registries]]\nname = \"r\"\n\n[[registries]]\nname = \"r\"\n",
        ))
        .unwrap();
        let (_, errors) = document.desired(&|_| None);
        let messages: Vec<String> = errors.iter().map(ToString::to_string).collect();
        assert!(
            messages[0].starts_with("p.toml:1: project: unknown section"),
            "{messages:?}"
        );
        assert!(
            messages[1]
                .starts_with("p.toml:8: registries[r].name: r is already written in p.toml line 4"),
            "{messages:?}"
        );
    }
}
