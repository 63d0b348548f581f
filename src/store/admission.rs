//! A deploy request's writes, all or nothing: the deploy (already in the status it starts
//! in), its first log lines, its audit entries, and the waiting deploys it supersedes.
//!
//! Admissions are written in batches ([`Store::admit_deploys`]): one transaction for all
//! the requests that queued up meanwhile, a savepoint for each, so a failing admission
//! takes back only its own rows. Commits (writing the changed pages to the WAL) were most
//! of a deploy-starting webhook's cost; under load, many admissions now share one.
//!
//! Durability is the store's: WAL with `synchronous=NORMAL`, so a committed admission
//! survives a crash of the daemon (not necessarily a power cut of the host).

use chrono::{DateTime, Utc};

use super::deploys::{self, Deploy, DeployLogEntry, DeployStatus, LogLevel, NewDeploy, Placement};
use super::release::{self, NewAuditEntry};
use super::{Store, StoreResult};

/// Everything a new deploy is recorded with.
#[derive(Clone, Debug)]
pub struct Admission {
    pub deploy: NewDeploy,
    /// `pending` (the queue's next), `awaiting_approval` or `scheduled`.
    pub status: DeployStatus,
    pub promoted_from_stage_id: Option<i64>,
    pub promoted_from_deploy_id: Option<i64>,
    pub outside_window: bool,
    pub approval_expires_at: Option<DateTime<Utc>>,
    /// Its first log lines: level, step, message.
    pub log: Vec<(LogLevel, &'static str, String)>,
    /// Audit entries about it; each one's target id becomes the new deploy's.
    pub audit: Vec<NewAuditEntry>,
    /// Waiting deploys it replaces (marked `superseded`, with a log line saying by which).
    pub supersedes: Vec<i64>,
}

/// What an admission wrote, for the caller to publish.
#[derive(Clone, Debug)]
pub struct Admitted {
    pub deploy: Deploy,
    pub log: Vec<DeployLogEntry>,
    pub superseded: Vec<Superseded>,
}

/// A deploy marked superseded, and the log line that says by which.
#[derive(Clone, Debug)]
pub struct Superseded {
    pub deploy: Deploy,
    pub log: DeployLogEntry,
}

impl Store {
    /// Opens one transaction for a batch of admissions and hands `batch` the means to
    /// write them ([`Admissions::admit`]); commits when `batch` returns. An admission that
    /// fails leaves nothing of itself; an error here (the commit failing) leaves nothing of
    /// any of them.
    pub fn admit_deploys<R>(
        &self,
        batch: impl FnOnce(&mut Admissions<'_, '_>) -> R,
    ) -> StoreResult<R> {
        let mut conn = self.conn();
        let mut tx = conn.transaction()?;
        let result = batch(&mut Admissions { tx: &mut tx });
        tx.commit()?;
        Ok(result)
    }

    /// Marks deploy `id` superseded by deploy `by`, with its log line, in one transaction.
    pub fn supersede_deploy(&self, id: i64, by: i64) -> StoreResult<Superseded> {
        let mut conn = self.conn();
        let tx = conn.transaction()?;
        let superseded = supersede(&tx, id, by)?;
        tx.commit()?;
        Ok(superseded)
    }
}

/// A batch's open transaction (see [`Store::admit_deploys`]).
pub struct Admissions<'t, 'c> {
    tx: &'t mut rusqlite::Transaction<'c>,
}

impl Admissions<'_, '_> {
    /// Writes one admission inside the batch; on any error nothing of it stays.
    pub fn admit(&mut self, admission: &Admission) -> StoreResult<Admitted> {
        let savepoint = self.tx.savepoint()?;
        let admitted = write(&savepoint, admission)?;
        savepoint.commit()?;
        Ok(admitted)
    }
}

/// Everything of one admission; the caller's savepoint makes it all or nothing.
fn write(conn: &rusqlite::Connection, admission: &Admission) -> StoreResult<Admitted> {
    let id = deploys::insert(
        conn,
        &admission.deploy,
        &Placement {
            status: admission.status,
            promoted_from_stage_id: admission.promoted_from_stage_id,
            promoted_from_deploy_id: admission.promoted_from_deploy_id,
            outside_window: admission.outside_window,
            approval_expires_at: admission.approval_expires_at,
        },
    )?;
    let log = admission
        .log
        .iter()
        .map(|(level, step, message)| deploys::append_log(conn, id, *level, step, message))
        .collect::<StoreResult<Vec<_>>>()?;
    for entry in &admission.audit {
        release::append_audit(
            conn,
            &NewAuditEntry {
                target_id: Some(id),
                ..entry.clone()
            },
        )?;
    }
    let superseded = admission
        .supersedes
        .iter()
        .map(|older| supersede(conn, *older, id))
        .collect::<StoreResult<Vec<_>>>()?;
    Ok(Admitted {
        deploy: deploys::get(conn, id)?,
        log,
        superseded,
    })
}

fn supersede(conn: &rusqlite::Connection, id: i64, by: i64) -> StoreResult<Superseded> {
    // Logged before the status changes: a log stream closes at the final status.
    let log = deploys::append_log(
        conn,
        id,
        LogLevel::Info,
        "queue",
        &format!("superseded by deploy {by}"),
    )?;
    deploys::set_status(conn, id, DeployStatus::Superseded)?;
    Ok(Superseded {
        deploy: deploys::get(conn, id)?,
        log,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::crypto::Sealer;
    use crate::store::test_support::{Shop, shop};
    use crate::store::{AuditFilter, DeployFilter, Trigger};

    fn request(project_id: i64, stage_id: i64, tag: &str, supersedes: Vec<i64>) -> Admission {
        Admission {
            deploy: NewDeploy {
                project_id,
                stage_id,
                tag: tag.into(),
                digest: Some("sha256:aa".into()),
                trigger: Trigger::Webhook,
                detected_at: None,
            },
            status: DeployStatus::Scheduled,
            promoted_from_stage_id: None,
            promoted_from_deploy_id: None,
            outside_window: false,
            approval_expires_at: None,
            log: vec![(LogLevel::Info, "queue", format!("webhook requested {tag}"))],
            audit: vec![NewAuditEntry {
                actor_kind: None,
                actor: "webhook".into(),
                action: "deploy.request".into(),
                target_kind: "deploy".into(),
                target_id: None,
                target_name: Some(format!("dev {tag}")),
                project_id: Some(project_id),
                detail: format!("webhook requested {tag}"),
                before: None,
                after: None,
            }],
            supersedes,
        }
    }

    fn deploys(store: &Store) -> Vec<Deploy> {
        store
            .list_deploys(&DeployFilter {
                limit: 100,
                ..Default::default()
            })
            .unwrap()
    }

    /// One admission in a batch of its own.
    fn admit(store: &Store, admission: &Admission) -> StoreResult<Admitted> {
        store.admit_deploys(|batch| batch.admit(admission))?
    }

    fn log_messages(store: &Store, deploy_id: i64) -> Vec<String> {
        store
            .deploy_logs(deploy_id, 0)
            .unwrap()
            .into_iter()
            .map(|l| l.message)
            .collect()
    }

    fn audit_count(store: &Store) -> usize {
        store
            .list_audit(&AuditFilter {
                limit: 100,
                ..Default::default()
            })
            .unwrap()
            .len()
    }

    #[test]
    fn an_admission_writes_the_deploy_its_log_its_audit_and_supersedes_the_waiting_one() {
        let Shop {
            store,
            project_id: project,
            stage_id: stage,
            ..
        } = shop("dev");
        let first = admit(&store, &request(project, stage, "v1", vec![])).unwrap();
        let second = admit(
            &store,
            &request(project, stage, "v2", vec![first.deploy.id]),
        )
        .unwrap();
        assert_eq!(second.deploy.status, DeployStatus::Scheduled);
        assert_eq!(second.deploy.tag, "v2");
        let old = store.get_deploy(first.deploy.id).unwrap();
        assert_eq!(old.status, DeployStatus::Superseded);
        assert!(old.finished_at.is_some());
        assert_eq!(
            log_messages(&store, first.deploy.id),
            vec![
                "webhook requested v1".to_string(),
                format!("superseded by deploy {}", second.deploy.id)
            ]
        );
        assert_eq!(
            log_messages(&store, second.deploy.id),
            vec!["webhook requested v2"]
        );
        assert_eq!(second.log[0].message, "webhook requested v2");
        assert_eq!(second.superseded[0].deploy, old);
        let audit = store
            .list_audit(&AuditFilter {
                limit: 10,
                ..Default::default()
            })
            .unwrap();
        assert_eq!(audit[0].target_id, Some(second.deploy.id));
        assert_eq!(audit[0].action, "deploy.request");
    }

    /// The waiting deploy to supersede second is gone (a deploy id that does not exist):
    /// the transaction fails after the new deploy, its log, its audit entry and the first
    /// supersession were written, and none of them may stay.
    #[test]
    fn a_failure_inside_the_admission_leaves_nothing_half_written() {
        let Shop {
            dir,
            key,
            store,
            project_id: project,
            stage_id: stage,
        } = shop("dev");
        let waiting = admit(&store, &request(project, stage, "v1", vec![]))
            .unwrap()
            .deploy;
        let audits = audit_count(&store);
        let error = admit(
            &store,
            &request(project, stage, "v2", vec![waiting.id, 9_999]),
        )
        .unwrap_err();
        assert!(error.to_string().contains("does not exist"), "{error}");
        drop(store);
        // Read back from the file, as the next start of the daemon would.
        let store = Store::open(dir.path(), Sealer::new(key)).unwrap();
        assert_eq!(deploys(&store), vec![waiting.clone()], "no v2 deploy row");
        assert_eq!(
            store.get_deploy(waiting.id).unwrap().status,
            DeployStatus::Scheduled,
            "the waiting deploy is not superseded"
        );
        assert_eq!(store.deploy_logs(waiting.id, 0).unwrap().len(), 1);
        assert_eq!(audit_count(&store), audits, "no audit entry");
    }

    /// Three admissions in one batch, the middle one failing half-way: the first and the
    /// last are committed (the last superseding the first), the middle leaves nothing.
    #[test]
    fn a_failing_admission_in_a_batch_takes_back_only_its_own_rows() {
        let Shop {
            dir,
            key,
            store,
            project_id: project,
            stage_id: stage,
        } = shop("dev");
        let audits = audit_count(&store);
        let (first, middle, last) = store
            .admit_deploys(|batch| {
                let first = batch.admit(&request(project, stage, "v1", vec![])).unwrap();
                let middle =
                    batch.admit(&request(project, stage, "v2", vec![first.deploy.id, 9_999]));
                let last = batch
                    .admit(&request(project, stage, "v3", vec![first.deploy.id]))
                    .unwrap();
                (first, middle, last)
            })
            .unwrap();
        assert!(middle.is_err(), "{middle:?}");
        drop(store);
        let store = Store::open(dir.path(), Sealer::new(key)).unwrap();
        let tags: Vec<(String, DeployStatus)> = deploys(&store)
            .into_iter()
            .map(|d| (d.tag, d.status))
            .collect();
        assert_eq!(
            tags,
            vec![
                ("v3".to_string(), DeployStatus::Scheduled),
                ("v1".to_string(), DeployStatus::Superseded)
            ]
        );
        assert_eq!(last.superseded[0].deploy.id, first.deploy.id);
        assert_eq!(
            log_messages(&store, first.deploy.id),
            vec![
                "webhook requested v1".to_string(),
                format!("superseded by deploy {}", last.deploy.id)
            ],
            "one supersession line: the middle one's was taken back"
        );
        assert_eq!(audit_count(&store), audits + 2, "no audit entry of v2");
    }
}
