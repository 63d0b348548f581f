//! Received webhook events, so a user can see why a push did or did not deploy.

use chrono::{DateTime, Utc};
use rusqlite::Row;

use super::{Store, StoreResult, now, parse_column, parse_time, text_enum};

text_enum! {
    pub enum WebhookOutcome {
        Deployed => "deployed",
        Ignored => "ignored",
        Rejected => "rejected",
        Error => "error",
    }
}

#[derive(Clone, Debug, PartialEq)]
pub struct WebhookEvent {
    pub id: i64,
    pub received_at: DateTime<Utc>,
    pub source: String,
    pub image: Option<String>,
    pub tag: Option<String>,
    pub outcome: WebhookOutcome,
    pub detail: String,
    pub project_id: Option<i64>,
    pub stage_id: Option<i64>,
    pub deploy_id: Option<i64>,
}

#[derive(Clone, Debug, Default)]
pub struct NewWebhookEvent {
    pub source: String,
    pub image: Option<String>,
    pub tag: Option<String>,
    pub outcome: Option<WebhookOutcome>,
    pub detail: String,
    pub project_id: Option<i64>,
    pub stage_id: Option<i64>,
    pub deploy_id: Option<i64>,
}

fn from_row(row: &Row<'_>) -> rusqlite::Result<WebhookEvent> {
    Ok(WebhookEvent {
        id: row.get(0)?,
        received_at: parse_time(&row.get::<_, String>(1)?)?,
        source: row.get(2)?,
        image: row.get(3)?,
        tag: row.get(4)?,
        outcome: parse_column(row.get(5)?)?,
        detail: row.get(6)?,
        project_id: row.get(7)?,
        stage_id: row.get(8)?,
        deploy_id: row.get(9)?,
    })
}

impl Store {
    pub fn record_webhook_event(&self, event: &NewWebhookEvent) -> StoreResult<i64> {
        let conn = self.conn();
        conn.execute(
            "INSERT INTO webhook_events (received_at, source, image, tag, outcome, detail, project_id, stage_id, deploy_id)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)",
            rusqlite::params![
                now(),
                event.source,
                event.image,
                event.tag,
                event.outcome.unwrap_or(WebhookOutcome::Ignored).as_str(),
                event.detail,
                event.project_id,
                event.stage_id,
                event.deploy_id,
            ],
        )?;
        Ok(conn.last_insert_rowid())
    }

    /// Newest first.
    pub fn list_webhook_events(&self, limit: u32) -> StoreResult<Vec<WebhookEvent>> {
        let conn = self.conn();
        let mut statement = conn.prepare(
            "SELECT id, received_at, source, image, tag, outcome, detail, project_id, stage_id, deploy_id
             FROM webhook_events ORDER BY id DESC LIMIT ?1",
        )?;
        let rows = statement.query_map([limit.max(1)], from_row)?;
        Ok(rows.collect::<Result<_, _>>()?)
    }
}
