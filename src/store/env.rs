//! Env vars of projects and stages, kept as a JSON column: plain values as they are,
//! secret values sealed and bound to their owner row and name (`projects.env:7:DB_PASSWORD`).

use rusqlite::{Connection, OptionalExtension, Transaction};
use serde::{Deserialize, Serialize};

use super::projects::{EnvVar, StoredEnvVar};
use super::{StoreError, StoreResult};
use crate::crypto::Sealer;

/// The tables that carry an `env_json` column.
pub(super) const ENV_TABLES: [&str; 2] = ["projects", "stages"];

/// One env var in the JSON column: a plain value or a sealed one.
#[derive(Clone, Serialize, Deserialize)]
pub(super) struct EnvColumnEntry {
    name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    value: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    sealed: Option<String>,
}

pub(super) fn stored_var(entry: EnvColumnEntry) -> StoredEnvVar {
    StoredEnvVar {
        secret: entry.sealed.is_some(),
        value: entry.value,
        name: entry.name,
    }
}

/// Seals the secret vars of `vars` for `owner` (e.g. `projects.env:7`), keeping the sealed
/// value of a secret sent without one.
pub(super) fn seal_env(
    sealer: &Sealer,
    owner: &str,
    vars: &[EnvVar],
    previous: &[EnvColumnEntry],
) -> StoreResult<Vec<EnvColumnEntry>> {
    let mut seen = std::collections::HashSet::new();
    vars.iter()
        .map(|var| {
            if !seen.insert(var.name.as_str()) {
                return Err(StoreError::Invalid(format!(
                    "env var {} is given twice",
                    var.name
                )));
            }
            let context = format!("{owner}:{}", var.name);
            match (&var.value, var.secret) {
                (Some(value), true) => Ok(EnvColumnEntry {
                    name: var.name.clone(),
                    value: None,
                    sealed: Some(sealer.seal(&context, value)),
                }),
                (Some(value), false) => Ok(EnvColumnEntry {
                    name: var.name.clone(),
                    value: Some(value.clone()),
                    sealed: None,
                }),
                (None, true) => previous
                    .iter()
                    .find(|p| p.name == var.name && p.sealed.is_some())
                    .cloned()
                    .ok_or_else(|| {
                        StoreError::Invalid(format!("secret env var {} needs a value", var.name))
                    }),
                (None, false) => Err(StoreError::Invalid(format!(
                    "env var {} needs a value",
                    var.name
                ))),
            }
        })
        .collect()
}

/// Opens a JSON env column into name/value pairs for a container.
pub(super) fn open_env(
    sealer: &Sealer,
    owner: &str,
    entries: Vec<EnvColumnEntry>,
) -> StoreResult<Vec<(String, String)>> {
    entries
        .into_iter()
        .map(|entry| {
            let value = match (entry.value, entry.sealed) {
                (_, Some(sealed)) => sealer.open(&format!("{owner}:{}", entry.name), &sealed)?,
                (Some(value), None) => value,
                (None, None) => String::new(),
            };
            Ok((entry.name, value))
        })
        .collect()
}

/// Re-seals the env JSON of every row of `table` (rotation).
pub(super) fn reseal_env_table(
    tx: &Transaction,
    sealer: &Sealer,
    table: &str,
) -> StoreResult<usize> {
    let rows: Vec<(i64, String)> = tx
        .prepare(&format!("SELECT id, env_json FROM {table}"))?
        .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))?
        .collect::<Result<_, _>>()?;
    let mut count = 0;
    for (id, json) in rows {
        let mut entries: Vec<EnvColumnEntry> = serde_json::from_str(&json)?;
        let mut touched = false;
        for entry in &mut entries {
            if let Some(sealed) = &entry.sealed {
                let context = format!("{table}.env:{id}:{}", entry.name);
                let plaintext = sealer.open(&context, sealed)?;
                entry.sealed = Some(sealer.seal(&context, &plaintext));
                count += 1;
                touched = true;
            }
        }
        if touched {
            tx.execute(
                &format!("UPDATE {table} SET env_json = ?1 WHERE id = ?2"),
                (serde_json::to_string(&entries)?, id),
            )?;
        }
    }
    Ok(count)
}

/// The `env_json` to store for row `id` of `table` given the vars a caller sent: secret
/// values sealed, secrets sent without a value kept from the row's current column.
pub(super) fn env_json_for(
    tx: &Transaction,
    sealer: &Sealer,
    table: &str,
    id: i64,
    vars: &[EnvVar],
) -> StoreResult<String> {
    let previous: Option<String> = tx
        .query_row(
            &format!("SELECT env_json FROM {table} WHERE id = ?1"),
            [id],
            |r| r.get(0),
        )
        .optional()?;
    let previous: Vec<EnvColumnEntry> = match previous {
        Some(json) => serde_json::from_str(&json)?,
        None => Vec::new(),
    };
    let sealed = seal_env(sealer, &format!("{table}.env:{id}"), vars, &previous)?;
    Ok(serde_json::to_string(&sealed)?)
}

/// Row `id` of `table`'s env vars with secrets opened, for creating a container.
pub(super) fn read_env(
    conn: &Connection,
    sealer: &Sealer,
    table: &str,
    entity: &'static str,
    id: i64,
) -> StoreResult<Vec<(String, String)>> {
    let json: String = conn
        .query_row(
            &format!("SELECT env_json FROM {table} WHERE id = ?1"),
            [id],
            |r| r.get(0),
        )
        .optional()?
        .ok_or_else(|| StoreError::not_found(entity, id))?;
    open_env(
        sealer,
        &format!("{table}.env:{id}"),
        serde_json::from_str(&json)?,
    )
}
