//! Notification targets: where deploy outcomes are sent. URLs often carry tokens
//! (Slack, Discord, ntfy), so they are sealed whole.

use chrono::{DateTime, Utc};
use rusqlite::Row;

use super::{
    SealedColumn, Store, StoreResult, changed_or_not_found, now, one, parse_column, parse_time,
    text_enum,
};

pub(super) const URL: SealedColumn = SealedColumn {
    table: "notification_targets",
    column: "url_sealed",
};

text_enum! {
    /// The body format a target expects.
    pub enum NotificationKind {
        Webhook => "webhook",
        Slack => "slack",
        Discord => "discord",
        Ntfy => "ntfy",
    }
}

/// A target as read; the URL is only available opened through [`Store::notification_url`].
#[derive(Clone, Debug, PartialEq)]
pub struct NotificationTarget {
    pub id: i64,
    pub name: String,
    pub kind: NotificationKind,
    pub on_success: bool,
    pub on_failure: bool,
    pub on_rollback: bool,
    pub created_at: DateTime<Utc>,
}

#[derive(Clone, Debug)]
pub struct NewNotificationTarget {
    pub name: String,
    pub kind: NotificationKind,
    pub url: String,
    pub on_success: bool,
    pub on_failure: bool,
    pub on_rollback: bool,
}

/// Fields left `None` keep their value.
#[derive(Clone, Debug, Default)]
pub struct NotificationTargetUpdate {
    pub name: Option<String>,
    pub kind: Option<NotificationKind>,
    pub url: Option<String>,
    pub on_success: Option<bool>,
    pub on_failure: Option<bool>,
    pub on_rollback: Option<bool>,
}

fn from_row(row: &Row<'_>) -> rusqlite::Result<NotificationTarget> {
    Ok(NotificationTarget {
        id: row.get(0)?,
        name: row.get(1)?,
        kind: parse_column(row.get(2)?)?,
        on_success: row.get(3)?,
        on_failure: row.get(4)?,
        on_rollback: row.get(5)?,
        created_at: parse_time(&row.get::<_, String>(6)?)?,
    })
}

const COLUMNS: &str = "id, name, kind, on_success, on_failure, on_rollback, created_at";

impl Store {
    pub fn create_notification_target(
        &self,
        new: &NewNotificationTarget,
    ) -> StoreResult<NotificationTarget> {
        let id = {
            let mut conn = self.conn();
            let tx = conn.transaction()?;
            // The URL is sealed bound to the row id, so the row is made first.
            tx.execute(
                "INSERT INTO notification_targets (name, kind, url_sealed, on_success, on_failure, on_rollback, created_at)
                 VALUES (?1, ?2, '', ?3, ?4, ?5, ?6)",
                (&new.name, new.kind.as_str(), new.on_success, new.on_failure, new.on_rollback, now()),
            )?;
            let id = tx.last_insert_rowid();
            tx.execute(
                "UPDATE notification_targets SET url_sealed = ?1 WHERE id = ?2",
                (self.seal(&URL.context(id), &new.url), id),
            )?;
            tx.commit()?;
            id
        };
        self.get_notification_target(id)
    }

    pub fn get_notification_target(&self, id: i64) -> StoreResult<NotificationTarget> {
        one(
            &self.conn(),
            &format!("SELECT {COLUMNS} FROM notification_targets WHERE id = ?1"),
            [id],
            from_row,
            "notification target",
            id,
        )
    }

    pub fn list_notification_targets(&self) -> StoreResult<Vec<NotificationTarget>> {
        let conn = self.conn();
        let mut statement = conn.prepare(&format!(
            "SELECT {COLUMNS} FROM notification_targets ORDER BY name"
        ))?;
        let rows = statement.query_map([], from_row)?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    pub fn notification_url(&self, id: i64) -> StoreResult<String> {
        let sealed: String = one(
            &self.conn(),
            "SELECT url_sealed FROM notification_targets WHERE id = ?1",
            [id],
            |r| r.get(0),
            "notification target",
            id,
        )?;
        self.open_secret(&URL.context(id), &sealed)
    }

    pub fn update_notification_target(
        &self,
        id: i64,
        update: &NotificationTargetUpdate,
    ) -> StoreResult<NotificationTarget> {
        {
            let mut conn = self.conn();
            let tx = conn.transaction()?;
            let changed = tx.execute(
                "UPDATE notification_targets SET name = COALESCE(?2, name), kind = COALESCE(?3, kind),
                    on_success = COALESCE(?4, on_success), on_failure = COALESCE(?5, on_failure),
                    on_rollback = COALESCE(?6, on_rollback)
                 WHERE id = ?1",
                (
                    id,
                    &update.name,
                    update.kind.map(NotificationKind::as_str),
                    update.on_success,
                    update.on_failure,
                    update.on_rollback,
                ),
            )?;
            changed_or_not_found(changed, "notification target", id)?;
            if let Some(url) = &update.url {
                tx.execute(
                    "UPDATE notification_targets SET url_sealed = ?1 WHERE id = ?2",
                    (self.seal(&URL.context(id), url), id),
                )?;
            }
            tx.commit()?;
        }
        self.get_notification_target(id)
    }

    pub fn delete_notification_target(&self, id: i64) -> StoreResult<()> {
        let changed = self
            .conn()
            .execute("DELETE FROM notification_targets WHERE id = ?1", [id])?;
        changed_or_not_found(changed, "notification target", id)
    }
}
