//! Registries: where images live, with their sealed credentials.

use chrono::{DateTime, Utc};
use rusqlite::Row;

use super::{
    SealedColumn, Store, StoreResult, changed_or_not_found, now, one, parse_column, parse_time,
};
use crate::registry::RegistryKind;

pub(super) const SECRET: SealedColumn = SealedColumn {
    table: "registries",
    column: "secret_sealed",
};

/// A stored registry. The secret is not here: ask [`Store::registry_secret`].
#[derive(Clone, Debug, PartialEq)]
pub struct Registry {
    pub id: i64,
    pub name: String,
    pub kind: RegistryKind,
    pub base_url: String,
    pub username: Option<String>,
    pub has_secret: bool,
    pub insecure: bool,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

pub struct NewRegistry {
    pub name: String,
    pub kind: RegistryKind,
    pub base_url: String,
    pub username: Option<String>,
    pub secret: Option<String>,
    pub insecure: bool,
}

/// Fields left `None` keep their value. `secret: Some(None)` clears the secret.
#[derive(Default)]
pub struct RegistryUpdate {
    pub name: Option<String>,
    pub kind: Option<RegistryKind>,
    pub base_url: Option<String>,
    pub username: Option<Option<String>>,
    pub secret: Option<Option<String>>,
    pub insecure: Option<bool>,
}

const COLUMNS: &str = "id, name, kind, base_url, username, secret_sealed IS NOT NULL, insecure, created_at, updated_at";

fn from_row(row: &Row<'_>) -> rusqlite::Result<Registry> {
    Ok(Registry {
        id: row.get(0)?,
        name: row.get(1)?,
        kind: parse_column(row.get(2)?)?,
        base_url: row.get(3)?,
        username: row.get(4)?,
        has_secret: row.get(5)?,
        insecure: row.get(6)?,
        created_at: parse_time(&row.get::<_, String>(7)?)?,
        updated_at: parse_time(&row.get::<_, String>(8)?)?,
    })
}

impl Store {
    pub fn create_registry(&self, new: &NewRegistry) -> StoreResult<Registry> {
        let id = {
            let mut conn = self.conn();
            let tx = conn.transaction()?;
            let at = now();
            tx.execute(
                "INSERT INTO registries (name, kind, base_url, username, insecure, created_at, updated_at)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?6)",
                (&new.name, new.kind.as_str(), &new.base_url, &new.username, new.insecure, &at),
            )?;
            let id = tx.last_insert_rowid();
            if let Some(secret) = &new.secret {
                tx.execute(
                    "UPDATE registries SET secret_sealed = ?1 WHERE id = ?2",
                    (self.seal(&SECRET.context(id), secret), id),
                )?;
            }
            tx.commit()?;
            id
        };
        self.get_registry(id)
    }

    pub fn get_registry(&self, id: i64) -> StoreResult<Registry> {
        one(
            &self.conn(),
            &format!("SELECT {COLUMNS} FROM registries WHERE id = ?1"),
            [id],
            from_row,
            "registry",
            id,
        )
    }

    pub fn list_registries(&self) -> StoreResult<Vec<Registry>> {
        let conn = self.conn();
        let mut statement =
            conn.prepare(&format!("SELECT {COLUMNS} FROM registries ORDER BY name"))?;
        let rows = statement.query_map([], from_row)?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    /// The registry's password or token, opened; `None` when it has none.
    pub fn registry_secret(&self, id: i64) -> StoreResult<Option<String>> {
        let sealed: Option<String> = one(
            &self.conn(),
            "SELECT secret_sealed FROM registries WHERE id = ?1",
            [id],
            |r| r.get(0),
            "registry",
            id,
        )?;
        sealed
            .map(|s| self.open_secret(&SECRET.context(id), &s))
            .transpose()
    }

    pub fn update_registry(&self, id: i64, update: &RegistryUpdate) -> StoreResult<Registry> {
        {
            let mut conn = self.conn();
            let tx = conn.transaction()?;
            let changed = tx.execute(
                "UPDATE registries SET
                    name = COALESCE(?2, name),
                    kind = COALESCE(?3, kind),
                    base_url = COALESCE(?4, base_url),
                    username = CASE WHEN ?5 THEN ?6 ELSE username END,
                    insecure = COALESCE(?7, insecure),
                    updated_at = ?8
                 WHERE id = ?1",
                (
                    id,
                    &update.name,
                    update.kind.map(RegistryKind::as_str),
                    &update.base_url,
                    update.username.is_some(),
                    update.username.clone().flatten(),
                    update.insecure,
                    now(),
                ),
            )?;
            changed_or_not_found(changed, "registry", id)?;
            if let Some(secret) = &update.secret {
                let sealed = secret.as_ref().map(|s| self.seal(&SECRET.context(id), s));
                tx.execute(
                    "UPDATE registries SET secret_sealed = ?1 WHERE id = ?2",
                    (sealed, id),
                )?;
            }
            tx.commit()?;
        }
        self.get_registry(id)
    }

    pub fn delete_registry(&self, id: i64) -> StoreResult<()> {
        let changed = self
            .conn()
            .execute("DELETE FROM registries WHERE id = ?1", [id])?;
        changed_or_not_found(changed, "registry", id)
    }
}
