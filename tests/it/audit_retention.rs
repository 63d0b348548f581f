//! The audit log is pruned by age like webhook events and deploy logs, by the setting
//! `audit_retention_days` (a year unless changed), checked by the API: the entries are
//! written into the daemon's real SQLite file and aged there, as if the days had passed.

use chrono::{SecondsFormat, Utc};
use serde_json::json;

use docker_watcher::store::{AuditFilter, DATABASE_FILE, NewAuditEntry};

use crate::support::app::{TestApp, spawn_app};

/// Writes an audit entry `action` and ages it by `days_ago` in the database file.
fn entry_aged(app: &TestApp, action: &str, days_ago: i64) {
    let id = app
        .store()
        .append_audit(&NewAuditEntry {
            actor: "test".into(),
            action: action.into(),
            target_kind: "test".into(),
            detail: format!("{days_ago} days old"),
            ..Default::default()
        })
        .unwrap();
    let at = (Utc::now() - chrono::Duration::days(days_ago))
        .to_rfc3339_opts(SecondsFormat::Millis, true);
    let file = app.data_dir.path().join("data").join(DATABASE_FILE);
    let raw = rusqlite::Connection::open(file).unwrap();
    raw.busy_timeout(std::time::Duration::from_secs(5)).unwrap();
    let changed = raw
        .execute("UPDATE audit_log SET at = ?1 WHERE id = ?2", (&at, id))
        .unwrap();
    assert_eq!(changed, 1);
}

/// The test's entries still in the log, oldest first.
fn left(app: &TestApp) -> Vec<String> {
    let mut actions: Vec<String> = app
        .store()
        .list_audit(&AuditFilter {
            actor: Some("test".into()),
            limit: 100,
            ..Default::default()
        })
        .unwrap()
        .into_iter()
        .map(|e| e.action)
        .collect();
    actions.reverse();
    actions
}

#[tokio::test]
async fn old_audit_entries_go_by_the_setting_and_recent_ones_stay() {
    let app = spawn_app().await;
    let api = app.api().await;
    let (status, settings) = api.get("/api/settings").await;
    assert_eq!(status, 200, "{settings}");
    assert_eq!(settings["audit_retention_days"], 365, "a year by default");

    entry_aged(&app, "test.400_days", 400);
    entry_aged(&app, "test.40_days", 40);
    entry_aged(&app, "test.2_days", 2);
    entry_aged(&app, "test.today", 0);

    let pruned = docker_watcher::retention::prune_once(app.store()).unwrap();
    assert_eq!(pruned.audit_entries, 1, "only the entry older than a year");
    assert_eq!(left(&app), ["test.40_days", "test.2_days", "test.today"]);

    let (status, answer) = api
        .put("/api/settings", json!({ "audit_retention_days": 30 }))
        .await;
    assert_eq!(status, 200, "{answer}");
    assert_eq!(answer["audit_retention_days"], 30);
    let pruned = docker_watcher::retention::prune_once(app.store()).unwrap();
    assert_eq!(pruned.audit_entries, 1, "the 40-day-old entry");
    assert_eq!(left(&app), ["test.2_days", "test.today"]);
    app.shutdown().await;
}

#[tokio::test]
async fn the_api_refuses_an_audit_retention_out_of_range_and_changes_nothing() {
    let app = spawn_app().await;
    let api = app.api().await;
    for days in [json!(0), json!(3651), json!(-1), json!("a year")] {
        let (status, answer) = api
            .put("/api/settings", json!({ "audit_retention_days": days }))
            .await;
        assert!((400..500).contains(&status), "{days}: {status} {answer}");
        assert!(
            answer.to_string().contains("audit_retention_days"),
            "the reason names the field: {answer}"
        );
    }
    let (status, answer) = api
        .put("/api/settings", json!({ "audit_retention_days": 0 }))
        .await;
    assert_eq!(status, 422, "{answer}");
    assert!(
        answer["fields"]["audit_retention_days"]
            .as_str()
            .is_some_and(|r| r.contains("3650") || r.contains("3,650")),
        "says the range: {answer}"
    );
    assert_eq!(
        app.store().settings().unwrap().limits.audit_retention_days,
        365
    );
    app.shutdown().await;
}
