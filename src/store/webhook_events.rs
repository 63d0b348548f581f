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
        let ids = self.record_webhook_events(std::slice::from_ref(event))?;
        Ok(ids.first().copied().unwrap_or_default())
    }

    /// Records a request's events in one transaction (all or none), in order; returns
    /// their ids. Blocking: async callers run it with `spawn_blocking`.
    pub fn record_webhook_events(&self, events: &[NewWebhookEvent]) -> StoreResult<Vec<i64>> {
        let mut conn = self.conn();
        let tx = conn.transaction()?;
        let mut ids = Vec::with_capacity(events.len());
        {
            let mut insert = tx.prepare_cached(
                "INSERT INTO webhook_events (received_at, source, image, tag, outcome, detail, project_id, stage_id, deploy_id)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)",
            )?;
            let at = now();
            for event in events {
                insert.execute(rusqlite::params![
                    at,
                    event.source,
                    event.image,
                    event.tag,
                    event.outcome.unwrap_or(WebhookOutcome::Ignored).as_str(),
                    event.detail,
                    event.project_id,
                    event.stage_id,
                    event.deploy_id,
                ])?;
                ids.push(tx.last_insert_rowid());
            }
        }
        tx.commit()?;
        Ok(ids)
    }

    /// How many webhook events are stored.
    pub fn count_webhook_events(&self) -> StoreResult<i64> {
        Ok(self
            .conn()
            .query_row("SELECT COUNT(*) FROM webhook_events", [], |r| r.get(0))?)
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
