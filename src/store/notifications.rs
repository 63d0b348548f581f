//! Notification targets (where events are sent, with their filters, templates and last
//! delivery status) and the outbox of messages still to deliver. A target's URL carries
//! its credentials (bot tokens, passwords, webhook secrets), so it is sealed whole.

use chrono::{DateTime, Utc};
use rusqlite::{OptionalExtension, Row};

use super::{
    SealedColumn, Store, StoreResult, changed_or_not_found, now, one, parse_column, parse_time,
    text_enum, timestamp,
};

pub(super) const URL: SealedColumn = SealedColumn {
    table: "notification_targets",
    column: "url_sealed",
};

text_enum! {
    /// The service a target talks to.
    pub enum NotificationKind {
        Webhook => "webhook",
        Slack => "slack",
        Discord => "discord",
        Ntfy => "ntfy",
        Telegram => "telegram",
        Gotify => "gotify",
        Email => "email",
        Matrix => "matrix",
        Pushover => "pushover",
        Teams => "teams",
        Apprise => "apprise",
    }
}

text_enum! {
    /// What a target can be told about.
    pub enum EventKind {
        Success => "success",
        Failure => "failure",
        Rollback => "rollback",
        ApprovalNeeded => "approval_needed",
        PollError => "poll_error",
    }
}

/// A target as read; the URL is only available opened through [`Store::notification_url`].
#[derive(Clone, Debug, PartialEq)]
pub struct NotificationTarget {
    pub id: i64,
    pub name: String,
    pub kind: NotificationKind,
    pub filter: TargetFilter,
    pub templates: Templates,
    pub status: DeliveryStatus,
    pub created_at: DateTime<Utc>,
}

/// Which events a target wants. Empty `projects`/`stages` mean all.
#[derive(Clone, Debug, PartialEq)]
pub struct TargetFilter {
    pub events: Vec<EventKind>,
    pub projects: Vec<String>,
    pub stages: Vec<String>,
    /// Poll errors are sent when a stage's consecutive failures reach this number.
    pub poll_error_threshold: u32,
}

impl Default for TargetFilter {
    fn default() -> TargetFilter {
        TargetFilter {
            events: vec![
                EventKind::Success,
                EventKind::Failure,
                EventKind::Rollback,
                EventKind::ApprovalNeeded,
            ],
            projects: Vec::new(),
            stages: Vec::new(),
            poll_error_threshold: 3,
        }
    }
}

/// A target's own title and body templates; `None` uses the default.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Templates {
    pub title: Option<String>,
    pub body: Option<String>,
}

/// The last delivery attempt, as the UI shows it.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct DeliveryStatus {
    pub last_attempt_at: Option<DateTime<Utc>>,
    pub last_success_at: Option<DateTime<Utc>>,
    /// The error of the last attempt; `None` when it succeeded.
    pub last_error: Option<String>,
    /// Messages waiting in the outbox.
    pub pending: u32,
}

#[derive(Clone, Debug)]
pub struct NewNotificationTarget {
    pub name: String,
    pub kind: NotificationKind,
    pub url: String,
    pub filter: TargetFilter,
    pub templates: Templates,
}

/// Fields left `None` keep their value; templates are replaced together when given.
#[derive(Clone, Debug, Default)]
pub struct NotificationTargetUpdate {
    pub name: Option<String>,
    pub kind: Option<NotificationKind>,
    pub url: Option<String>,
    pub filter: Option<TargetFilter>,
    pub templates: Option<Templates>,
}

/// One message waiting for its target.
#[derive(Clone, Debug, PartialEq)]
pub struct OutboxEntry {
    pub id: i64,
    pub target_id: i64,
    pub payload_json: String,
    pub attempts: u32,
    pub next_attempt_at: DateTime<Utc>,
    pub created_at: DateTime<Utc>,
}

const COLUMNS: &str = "t.id, t.name, t.kind, t.events_json, t.projects_json, t.stages_json,
    t.poll_error_threshold, t.title_template, t.body_template, t.last_attempt_at,
    t.last_success_at, t.last_error, t.created_at,
    (SELECT COUNT(*) FROM notification_outbox o WHERE o.target_id = t.id)";

fn optional_time(text: Option<String>) -> rusqlite::Result<Option<DateTime<Utc>>> {
    text.as_deref().map(parse_time).transpose()
}

fn json_list<T: std::str::FromStr>(text: String) -> rusqlite::Result<Vec<T>> {
    let items: Vec<String> = serde_json::from_str(&text).map_err(|e| {
        rusqlite::Error::FromSqlConversionFailure(0, rusqlite::types::Type::Text, Box::new(e))
    })?;
    items.into_iter().map(parse_column).collect()
}

fn to_json(items: &[impl ToString]) -> String {
    serde_json::Value::from(items.iter().map(ToString::to_string).collect::<Vec<_>>()).to_string()
}

fn from_row(row: &Row<'_>) -> rusqlite::Result<NotificationTarget> {
    Ok(NotificationTarget {
        id: row.get(0)?,
        name: row.get(1)?,
        kind: parse_column(row.get(2)?)?,
        filter: TargetFilter {
            events: json_list(row.get(3)?)?,
            projects: json_list(row.get(4)?)?,
            stages: json_list(row.get(5)?)?,
            poll_error_threshold: row.get(6)?,
        },
        templates: Templates {
            title: row.get(7)?,
            body: row.get(8)?,
        },
        status: DeliveryStatus {
            last_attempt_at: optional_time(row.get(9)?)?,
            last_success_at: optional_time(row.get(10)?)?,
            last_error: row.get(11)?,
            pending: row.get(13)?,
        },
        created_at: parse_time(&row.get::<_, String>(12)?)?,
    })
}

fn outbox_from_row(row: &Row<'_>) -> rusqlite::Result<OutboxEntry> {
    Ok(OutboxEntry {
        id: row.get(0)?,
        target_id: row.get(1)?,
        payload_json: row.get(2)?,
        attempts: row.get(3)?,
        next_attempt_at: parse_time(&row.get::<_, String>(4)?)?,
        created_at: parse_time(&row.get::<_, String>(5)?)?,
    })
}

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
                "INSERT INTO notification_targets (name, kind, url_sealed, events_json, projects_json,
                    stages_json, poll_error_threshold, title_template, body_template, created_at)
                 VALUES (?1, ?2, '', ?3, ?4, ?5, ?6, ?7, ?8, ?9)",
                (
                    &new.name,
                    new.kind.as_str(),
                    to_json(&new.filter.events),
                    to_json(&new.filter.projects),
                    to_json(&new.filter.stages),
                    new.filter.poll_error_threshold,
                    &new.templates.title,
                    &new.templates.body,
                    now(),
                ),
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
            &format!("SELECT {COLUMNS} FROM notification_targets t WHERE t.id = ?1"),
            [id],
            from_row,
            "notification target",
            id,
        )
    }

    pub fn list_notification_targets(&self) -> StoreResult<Vec<NotificationTarget>> {
        let conn = self.conn();
        let mut statement = conn.prepare(&format!(
            "SELECT {COLUMNS} FROM notification_targets t ORDER BY t.name"
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
            let filter = update.filter.as_ref();
            let changed = tx.execute(
                "UPDATE notification_targets SET name = COALESCE(?2, name), kind = COALESCE(?3, kind),
                    events_json = COALESCE(?4, events_json), projects_json = COALESCE(?5, projects_json),
                    stages_json = COALESCE(?6, stages_json),
                    poll_error_threshold = COALESCE(?7, poll_error_threshold)
                 WHERE id = ?1",
                (
                    id,
                    &update.name,
                    update.kind.map(NotificationKind::as_str),
                    filter.map(|f| to_json(&f.events)),
                    filter.map(|f| to_json(&f.projects)),
                    filter.map(|f| to_json(&f.stages)),
                    filter.map(|f| f.poll_error_threshold),
                ),
            )?;
            changed_or_not_found(changed, "notification target", id)?;
            if let Some(templates) = &update.templates {
                tx.execute(
                    "UPDATE notification_targets SET title_template = ?2, body_template = ?3 WHERE id = ?1",
                    (id, &templates.title, &templates.body),
                )?;
            }
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

    /// Records how the last delivery to a target went (`error` `None`: it succeeded).
    pub fn record_notification_delivery(&self, id: i64, error: Option<&str>) -> StoreResult<()> {
        let at = now();
        self.conn().execute(
            "UPDATE notification_targets SET last_attempt_at = ?2, last_error = ?3,
                last_success_at = CASE WHEN ?3 IS NULL THEN ?2 ELSE last_success_at END
             WHERE id = ?1",
            (id, &at, error),
        )?;
        Ok(())
    }

    /// Queues one message for one target, due at once.
    pub fn enqueue_notification(&self, target_id: i64, payload_json: &str) -> StoreResult<i64> {
        let conn = self.conn();
        let at = now();
        conn.execute(
            "INSERT INTO notification_outbox (target_id, payload_json, next_attempt_at, created_at)
             VALUES (?1, ?2, ?3, ?3)",
            (target_id, payload_json, &at),
        )?;
        Ok(conn.last_insert_rowid())
    }

    /// Messages due at `at`, oldest first.
    pub fn due_notifications(
        &self,
        at: DateTime<Utc>,
        limit: u32,
    ) -> StoreResult<Vec<OutboxEntry>> {
        let conn = self.conn();
        let mut statement = conn.prepare(
            "SELECT id, target_id, payload_json, attempts, next_attempt_at, created_at
             FROM notification_outbox WHERE next_attempt_at <= ?1 ORDER BY id LIMIT ?2",
        )?;
        let rows = statement.query_map((timestamp(at), limit), outbox_from_row)?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    /// When the next queued message is due, if any.
    pub fn next_notification_due(&self) -> StoreResult<Option<DateTime<Utc>>> {
        let next: Option<String> = self
            .conn()
            .query_row(
                "SELECT MIN(next_attempt_at) FROM notification_outbox",
                [],
                |r| r.get(0),
            )
            .optional()?
            .flatten();
        Ok(optional_time(next)?)
    }

    /// A failed attempt: counted, with the error, and tried again at `next_attempt_at`.
    pub fn retry_notification_later(
        &self,
        id: i64,
        next_attempt_at: DateTime<Utc>,
        error: &str,
    ) -> StoreResult<()> {
        self.conn().execute(
            "UPDATE notification_outbox SET attempts = attempts + 1, next_attempt_at = ?2,
                last_error = ?3 WHERE id = ?1",
            (id, timestamp(next_attempt_at), error),
        )?;
        Ok(())
    }

    /// Removes a message from the outbox (delivered, or given up on).
    pub fn remove_notification(&self, id: i64) -> StoreResult<()> {
        self.conn()
            .execute("DELETE FROM notification_outbox WHERE id = ?1", [id])?;
        Ok(())
    }

    /// Every message still queued (for tests and the UI's counts).
    pub fn pending_notifications(&self) -> StoreResult<Vec<OutboxEntry>> {
        let conn = self.conn();
        let mut statement = conn.prepare(
            "SELECT id, target_id, payload_json, attempts, next_attempt_at, created_at
             FROM notification_outbox ORDER BY id",
        )?;
        let rows = statement.query_map([], outbox_from_row)?;
        Ok(rows.collect::<Result<_, _>>()?)
    }
}
