//! What exists, written as a projects file: every view's fields but ids, times and
//! `has_*` flags, fields at their default left out, and each stored secret as an
//! `{ env = "…" }` reference to fill in (its value is never read here).

use std::fmt::Write;

use serde_json::{Map, Value};

use super::plan::{Current, Kind, id_of, name_of};

/// Fields a view shows that are not part of what a file says.
const NOT_WRITTEN: &[&str] = &[
    "id",
    "project_id",
    "created_at",
    "updated_at",
    "auto_created",
    "registry_id",
    "delivery",
];

/// The file for `current`, and the environment variables its references name.
pub fn export(current: &Current) -> (String, Vec<String>) {
    let mut out = String::from(
        "# docker-watcher projects file (written by `docker-watcher export`).\n\
         # Secrets are references: set each variable named below where you apply the file\n\
         # (or change a reference to { file = \"/run/secrets/…\" }).\n",
    );
    let mut refs = Vec::new();

    let mut settings = written(&current.settings, Kind::Settings);
    for (flag, field, variable) in [
        ("has_proxy_secret", "proxy_secret", "DW_PROXY_SECRET"),
        (
            "has_webhook_signing_secret",
            "webhook_signing_secret",
            "DW_WEBHOOK_SIGNING_SECRET",
        ),
    ] {
        if current.settings.get(flag) == Some(&Value::Bool(true)) {
            settings.push((field.into(), reference(variable, &mut refs)));
        }
    }
    section(&mut out, "[settings]", &settings);

    for r in &current.registries {
        let mut fields = written(r, Kind::Registry);
        if r.get("has_secret") == Some(&Value::Bool(true)) {
            let variable = variable(&["registry", &name_of(r).unwrap_or_default(), "secret"]);
            fields.push(("secret".into(), reference(&variable, &mut refs)));
        }
        section(&mut out, "[[registries]]", &fields);
    }
    for n in &current.notifications {
        let mut fields = written(n, Kind::Notification);
        let variable = variable(&["notify", &name_of(n).unwrap_or_default(), "url"]);
        fields.push(("url".into(), reference(&variable, &mut refs)));
        section(&mut out, "[[notifications]]", &fields);
    }
    for p in &current.projects {
        let project = name_of(&p.view).unwrap_or_default();
        let mut fields = written(&p.view, Kind::Project);
        let registry = p
            .view
            .get("registry_id")
            .and_then(Value::as_i64)
            .and_then(|id| {
                current
                    .registries
                    .iter()
                    .find(|r| id_of(r) == Some(id))
                    .and_then(name_of)
            });
        if let Some(registry) = registry {
            fields.insert(
                2.min(fields.len()),
                ("registry".into(), Value::String(registry)),
            );
        }
        env_references(&mut fields, &[&project], &mut refs);
        section(&mut out, "[[projects]]", &fields);
        for s in &p.stages {
            let mut fields = written(s, Kind::Stage);
            let stage = name_of(s).unwrap_or_default();
            env_references(&mut fields, &[&project, &stage], &mut refs);
            section(&mut out, "[[projects.stages]]", &fields);
        }
    }
    (out, refs)
}

/// The view's fields a file writes, in the view's order, defaults left out.
fn written(view: &Map<String, Value>, kind: Kind) -> Vec<(String, Value)> {
    let defaults = super::plan::defaults_of(kind);
    // A project's stages are written as their own tables; a notification target's
    // `stages` is its filter, written like any field.
    let nested = |k: &str| kind == Kind::Project && k == "stages";
    view.iter()
        .filter(|(k, v)| {
            !(NOT_WRITTEN.contains(&k.as_str())
                || nested(k)
                || k.starts_with("has_")
                || v.is_null()
                || defaults.get(*k) == Some(*v))
        })
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect()
}

/// A secret env var's value becomes a reference; others are written as they are.
fn env_references(fields: &mut [(String, Value)], owner: &[&str], refs: &mut Vec<String>) {
    for (key, value) in fields.iter_mut() {
        let (true, Value::Array(vars)) = (key == "env", value) else {
            continue;
        };
        for var in vars.iter_mut() {
            let Value::Object(var) = var else { continue };
            let secret = var.get("secret") == Some(&Value::Bool(true));
            if secret {
                let name = var.get("name").and_then(Value::as_str).unwrap_or_default();
                let mut parts = owner.to_vec();
                parts.push(name);
                var.insert("value".into(), reference(&variable(&parts), refs));
            } else {
                var.remove("secret");
            }
        }
    }
}

fn reference(variable: &str, refs: &mut Vec<String>) -> Value {
    refs.push(variable.to_string());
    let mut map = Map::new();
    map.insert("env".into(), Value::String(variable.into()));
    Value::Object(map)
}

/// `SHOP_DEV_DATABASE_URL` from `shop`, `dev`, `DATABASE_URL`.
fn variable(parts: &[&str]) -> String {
    parts
        .iter()
        .map(|p| {
            p.chars()
                .map(|c| {
                    if c.is_ascii_alphanumeric() {
                        c.to_ascii_uppercase()
                    } else {
                        '_'
                    }
                })
                .collect::<String>()
        })
        .collect::<Vec<_>>()
        .join("_")
}

fn section(out: &mut String, header: &str, fields: &[(String, Value)]) {
    if header == "[settings]" && fields.is_empty() {
        return;
    }
    let _ = write!(out, "\n{header}\n");
    for (key, value) in fields {
        let _ = writeln!(out, "{} = {}", toml_key(key), toml_value(value));
    }
}

fn toml_key(key: &str) -> String {
    if !key.is_empty()
        && key
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
    {
        key.to_string()
    } else {
        toml::Value::String(key.into()).to_string()
    }
}

/// A value on one line: arrays and tables inline (nulls, which TOML lacks, left out).
fn toml_value(value: &Value) -> String {
    match value {
        Value::Null => "\"\"".into(),
        Value::Bool(b) => b.to_string(),
        Value::Number(n) => n.to_string(),
        Value::String(s) => toml::Value::String(s.clone()).to_string(),
        Value::Array(items) => {
            let items: Vec<String> = items.iter().map(toml_value).collect();
            if items.iter().map(String::len).sum::<usize>() > 60 {
                format!("[\n  {},\n]", items.join(",\n  "))
            } else {
                format!("[{}]", items.join(", "))
            }
        }
        Value::Object(map) => {
            let fields: Vec<String> = map
                .iter()
                .filter(|(_, v)| !v.is_null())
                .map(|(k, v)| format!("{} = {}", toml_key(k), toml_value(v)))
                .collect();
            format!("{{ {} }}", fields.join(", "))
        }
    }
}
