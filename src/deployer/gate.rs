//! The deploy decision point: every request (push, poll, person, script, promotion) passes
//! here before the queue. A stage that needs approvals parks the deploy as
//! `awaiting_approval` until enough distinct users or tokens approve it (or one rejects it,
//! or it expires); a stage with deploy windows parks it as `scheduled` until a window opens,
//! unless a person chose to start it outside them. A newer request for the stage
//! supersedes the one waiting; the same push again (same tag and digest) keeps the waiting
//! deploy and its approvals.
//!
//! Parked deploys live in the store, not the queue, so they survive a restart;
//! [`Deployer::release_loop`] expires the overdue and releases the scheduled whose window
//! opened, once a second.

use chrono::Utc;

use crate::audit::{self, Actor, Target};
use crate::notify::Notification;
use crate::release::Windows;
use crate::store::{
    Admission, Decision, Deploy, DeployStatus, LogLevel, NewDeploy, Stage, StoreError, Trigger,
};

use super::ops::OpsError;
use super::{DeployRequest, Deployer};

/// How often parked deploys are looked at.
pub const TICK: std::time::Duration = std::time::Duration::from_secs(1);

impl Deployer {
    /// Records a request as a deploy and either queues it or parks it (see the module).
    pub(super) async fn admit(&self, request: DeployRequest) -> Result<i64, StoreError> {
        let store = &self.inner.store;
        let stage = store.get_stage(request.stage_id)?;
        let waiting = self.waiting_deploys(stage.id)?;
        let automatic = matches!(request.trigger, Trigger::Webhook | Trigger::Poll);
        if automatic
            && request.digest.is_some()
            && let Some(same) = waiting
                .iter()
                .find(|w| w.tag == request.tag && w.digest == request.digest)
        {
            self.inner.log(
                same.id,
                LogLevel::Info,
                "queue",
                &format!(
                    "{} announced {} again; still waiting",
                    request.trigger, request.tag
                ),
            );
            return Ok(same.id);
        }
        let origin = &request.origin;
        let actor = origin
            .actor
            .clone()
            .unwrap_or_else(|| detector(request.trigger));
        let mut requested = format!("{actor} requested {}", request.tag);
        if let Some((from, _)) = origin.promoted_from {
            let from = store.get_stage(from).map(|s| s.name).unwrap_or_default();
            requested = format!(
                "{actor} promoted {} ({}) from {from}",
                request.tag,
                request.digest.as_deref().unwrap_or("no digest")
            );
        }
        // Every row of the request in one store transaction (one commit, all or nothing):
        // the deploy, already parked where it waits, its log, its audit, the ones it replaces.
        let target = Target {
            kind: "deploy",
            id: None,
            name: Some(format!("{} {}", stage.name, request.tag)),
            project_id: Some(request.project_id),
        };
        let action = if origin.promoted_from.is_some() {
            "deploy.promote"
        } else {
            "deploy.request"
        };
        let mut log = vec![(LogLevel::Info, "queue", requested.clone())];
        let mut entries = vec![audit::entry(&actor, action, target.clone(), requested)];
        let now = Utc::now();
        let (status, approval_expires_at) = if stage.release.approvals_required > 0 {
            let expires =
                now + chrono::Duration::seconds(i64::from(stage.release.approval_timeout_secs));
            log.push((
                LogLevel::Info,
                "approval",
                format!(
                    "waiting for {} approval(s) until {}",
                    stage.release.approvals_required,
                    expires.format("%Y-%m-%d %H:%M:%S UTC")
                ),
            ));
            (DeployStatus::AwaitingApproval, Some(expires))
        } else if let Some(message) = held_by_windows(&stage, origin.outside_window, now) {
            log.push((LogLevel::Info, "window", message.clone()));
            entries.push(audit::entry(
                &Actor::system(),
                "deploy.schedule",
                target,
                message,
            ));
            (DeployStatus::Scheduled, None)
        } else {
            (DeployStatus::Pending, None)
        };
        let (promoted_from_stage_id, from_deploy) = origin.promoted_from.unzip();
        let admission = Admission {
            deploy: NewDeploy {
                project_id: request.project_id,
                stage_id: request.stage_id,
                tag: request.tag.clone(),
                digest: request.digest.clone(),
                trigger: request.trigger,
                detected_at: request.detected_at,
            },
            status,
            promoted_from_stage_id,
            promoted_from_deploy_id: from_deploy.flatten(),
            outside_window: origin.outside_window,
            approval_expires_at,
            log,
            audit: entries,
            supersedes: waiting.iter().map(|w| w.id).collect(),
        };
        // Written with the admissions that queued up meanwhile (see `admitter`); a pending
        // one is queued there too, after the queued requests it supersedes.
        let deploy = self.admitter.admit(admission, automatic).await?;
        if status != DeployStatus::Pending {
            self.inner.publish_status(&deploy, status);
        }
        if status == DeployStatus::AwaitingApproval {
            self.notify_approval_needed(&deploy, &stage);
        }
        Ok(deploy.id)
    }

    /// Approves a deploy waiting for approval. Once enough distinct approvers agreed it
    /// goes on (to the queue, or to wait for a window). Approving twice counts once.
    pub async fn approve(&self, deploy_id: i64, actor: &Actor) -> Result<Deploy, OpsError> {
        let (deploy, stage) = self.awaiting(deploy_id)?;
        let store = &self.inner.store;
        store.record_decision(
            deploy_id,
            &actor.key(),
            Decision::Approve,
            deploy.digest.as_deref(),
        )?;
        let approvers = store.approvers(deploy_id)?;
        let needed = stage.release.approvals_required as usize;
        let message = format!(
            "approved by {actor} ({} of {needed})",
            approvers.len().min(needed)
        );
        self.inner
            .log(deploy_id, LogLevel::Info, "approval", &message);
        audit::record(
            store,
            actor,
            "deploy.approve",
            deploy_target(&deploy, &stage),
            message,
        );
        if approvers.len() >= needed
            && store.move_waiting_deploy(
                deploy_id,
                DeployStatus::AwaitingApproval,
                DeployStatus::Pending,
            )?
        {
            let deploy = store.get_deploy(deploy_id)?;
            self.inner.log(
                deploy_id,
                LogLevel::Info,
                "approval",
                &format!("approved by {}", approvers.join(", ")),
            );
            self.release(&deploy, &stage)?;
        }
        Ok(store.get_deploy(deploy_id)?)
    }

    /// Rejects a deploy waiting for approval: it never runs.
    pub async fn reject(&self, deploy_id: i64, actor: &Actor) -> Result<Deploy, OpsError> {
        let (deploy, stage) = self.awaiting(deploy_id)?;
        let store = &self.inner.store;
        store.record_decision(
            deploy_id,
            &actor.key(),
            Decision::Reject,
            deploy.digest.as_deref(),
        )?;
        let message = format!("rejected by {actor}");
        // Logged before the status changes: a log stream closes at the final status.
        self.inner
            .log(deploy_id, LogLevel::Info, "approval", &message);
        if store.move_waiting_deploy(
            deploy_id,
            DeployStatus::AwaitingApproval,
            DeployStatus::Rejected,
        )? {
            self.inner.publish_status(&deploy, DeployStatus::Rejected);
            audit::record(
                store,
                actor,
                "deploy.reject",
                deploy_target(&deploy, &stage),
                message,
            );
        }
        Ok(store.get_deploy(deploy_id)?)
    }

    /// Expires overdue approvals and releases scheduled deploys whose window is open; every
    /// [`TICK`] until `shutdown`.
    pub async fn release_loop(self, shutdown: tokio_util::sync::CancellationToken) {
        loop {
            tokio::select! {
                () = shutdown.cancelled() => return,
                () = tokio::time::sleep(TICK) => {}
            }
            if let Err(e) = self.tick(Utc::now()) {
                tracing::warn!("cannot look at waiting deploys: {e}");
            }
        }
    }

    /// One look at the parked deploys as of `now` (the loop's step; tests call it too).
    pub fn tick(&self, now: chrono::DateTime<Utc>) -> Result<(), StoreError> {
        let store = &self.inner.store;
        for deploy in store.list_waiting_deploys(DeployStatus::AwaitingApproval)? {
            if deploy.approval_expires_at.is_some_and(|at| at <= now) {
                self.expire(&deploy)?;
            }
        }
        for deploy in store.list_waiting_deploys(DeployStatus::Scheduled)? {
            let stage = store.get_stage(deploy.stage_id)?;
            let open = windows_of(&stage).is_none_or(|w| w.is_open(now));
            if open
                && store.move_waiting_deploy(
                    deploy.id,
                    DeployStatus::Scheduled,
                    DeployStatus::Pending,
                )?
            {
                self.inner.log(
                    deploy.id,
                    LogLevel::Info,
                    "window",
                    "the deploy window opened",
                );
                audit::record(
                    store,
                    &Actor::system(),
                    "deploy.window_opened",
                    deploy_target(&deploy, &stage),
                    "the deploy window opened",
                );
                self.enqueue(&deploy);
            }
        }
        Ok(())
    }

    fn expire(&self, deploy: &Deploy) -> Result<(), StoreError> {
        let store = &self.inner.store;
        let message = "no decision before the approval timeout; not deployed";
        self.inner
            .log(deploy.id, LogLevel::Warn, "approval", message);
        if store.move_waiting_deploy(
            deploy.id,
            DeployStatus::AwaitingApproval,
            DeployStatus::Expired,
        )? {
            self.inner.publish_status(deploy, DeployStatus::Expired);
            let stage = store.get_stage(deploy.stage_id)?;
            audit::record(
                store,
                &Actor::system(),
                "deploy.expire",
                deploy_target(deploy, &stage),
                message,
            );
        }
        Ok(())
    }

    /// The deploy and its stage, if it still waits for approval (else a 409 that says why).
    fn awaiting(&self, deploy_id: i64) -> Result<(Deploy, Stage), OpsError> {
        let deploy = self.inner.store.get_deploy(deploy_id)?;
        if deploy.status != DeployStatus::AwaitingApproval {
            return Err(OpsError::Conflict(format!(
                "deploy {deploy_id} is {}, not awaiting approval",
                deploy.status
            )));
        }
        if deploy
            .approval_expires_at
            .is_some_and(|at| at <= Utc::now())
        {
            self.expire(&deploy)?;
            return Err(OpsError::Conflict(format!(
                "deploy {deploy_id} expired before it was approved; ask for it again"
            )));
        }
        let stage = self.inner.store.get_stage(deploy.stage_id)?;
        Ok((deploy, stage))
    }

    /// A deploy that may go: queued when its stage's window is open (or it may start
    /// outside it), else parked as `scheduled`.
    fn release(&self, deploy: &Deploy, stage: &Stage) -> Result<(), StoreError> {
        let Some(message) = held_by_windows(stage, deploy.outside_window, Utc::now()) else {
            self.enqueue(deploy);
            return Ok(());
        };
        let store = &self.inner.store;
        store.move_waiting_deploy(deploy.id, DeployStatus::Pending, DeployStatus::Scheduled)?;
        self.inner
            .log(deploy.id, LogLevel::Info, "window", &message);
        self.inner.publish_status(deploy, DeployStatus::Scheduled);
        audit::record(
            store,
            &Actor::system(),
            "deploy.schedule",
            deploy_target(deploy, stage),
            message,
        );
        Ok(())
    }

    fn enqueue(&self, deploy: &Deploy) {
        self.inner.publish_status(deploy, DeployStatus::Pending);
        let automatic = matches!(deploy.trigger, Trigger::Webhook | Trigger::Poll);
        for superseded in self.queue.enqueue(deploy.stage_id, deploy.id, automatic) {
            self.inner.supersede(superseded, deploy.id);
        }
    }

    fn waiting_deploys(&self, stage_id: i64) -> Result<Vec<Deploy>, StoreError> {
        let mut waiting = self
            .inner
            .store
            .list_waiting_deploys(DeployStatus::AwaitingApproval)?;
        waiting.extend(
            self.inner
                .store
                .list_waiting_deploys(DeployStatus::Scheduled)?,
        );
        waiting.retain(|d| d.stage_id == stage_id);
        Ok(waiting)
    }

    /// Tells the notification targets a deploy waits for approval; the notifier adds the
    /// link to the deploy's page.
    fn notify_approval_needed(&self, deploy: &Deploy, stage: &Stage) {
        let project = self
            .inner
            .store
            .get_project(deploy.project_id)
            .map(|p| p.name)
            .unwrap_or_default();
        let mut notification =
            Notification::approval_needed(&project, &stage.name, &deploy.tag, deploy.id);
        notification.digest = deploy.digest.clone();
        self.inner.notifier.notify(notification);
    }
}

/// The stage's windows, `None` when it has none (or they no longer parse: a stage saved
/// before today's rules is not held back forever; the reason is logged).
fn windows_of(stage: &Stage) -> Option<Windows> {
    if stage.release.windows.is_empty() {
        return None;
    }
    match Windows::parse(&stage.release.windows, &stage.release.window_timezone) {
        Ok(windows) => Some(windows),
        Err(e) => {
            tracing::warn!(stage_id = stage.id, "deploy windows ignored: {e}");
            None
        }
    }
}

/// Why a deploy that may go waits instead: the stage's windows are shut now (and a person
/// did not choose to deploy outside them). `None` when it may be queued.
fn held_by_windows(
    stage: &Stage,
    outside_window: bool,
    now: chrono::DateTime<Utc>,
) -> Option<String> {
    let windows = windows_of(stage)?;
    if outside_window || windows.is_open(now) {
        return None;
    }
    Some(match windows.next_open(now) {
        Some(at) => format!(
            "outside the deploy windows; waits until {}",
            at.format("%Y-%m-%d %H:%M:%S UTC")
        ),
        None => "outside the deploy windows; waits for the next one".to_string(),
    })
}

/// Who asked, when no person did: the detector behind the trigger.
fn detector(trigger: Trigger) -> Actor {
    match trigger {
        Trigger::Webhook => Actor::webhook(),
        Trigger::Poll => Actor::poller(),
        _ => Actor::system(),
    }
}

pub(super) fn deploy_target(deploy: &Deploy, stage: &Stage) -> Target {
    Target {
        kind: "deploy",
        id: Some(deploy.id),
        name: Some(format!("{} {}", stage.name, deploy.tag)),
        project_id: Some(deploy.project_id),
    }
}

#[cfg(test)]
mod tests {
    use std::sync::{Arc, Mutex};

    use super::super::fakes::Harness;
    use super::*;
    use crate::notify::{EventKind, Notifier};
    use crate::store::{StageRelease, StageUpdate};
    use crate::trigger::DeployTrigger;

    #[derive(Default)]
    struct Recording(Mutex<Vec<Notification>>);

    impl Notifier for Recording {
        fn notify(&self, notification: Notification) {
            self.0.lock().unwrap().push(notification);
        }
    }

    #[tokio::test]
    async fn a_deploy_needing_approval_waits_and_tells_the_targets_which_deploy() {
        let h = Harness::new();
        h.store
            .update_stage(
                h.stage.id,
                &StageUpdate {
                    release: Some(StageRelease {
                        approvals_required: 1,
                        ..Default::default()
                    }),
                    ..Default::default()
                },
            )
            .unwrap();
        let told = Arc::new(Recording::default());
        let deployer = Deployer::with_containers(
            h.store.clone(),
            h.containers.clone(),
            h.proxy.clone(),
            told.clone(),
            Default::default(),
        )
        .unwrap();
        let id = deployer
            .request_deploy(DeployRequest {
                project_id: h.project.id,
                stage_id: h.stage.id,
                tag: "v1".into(),
                digest: Some("sha256:aa".into()),
                trigger: Trigger::Webhook,
                detected_at: None,
                origin: Default::default(),
            })
            .await
            .unwrap();
        assert_eq!(
            h.store.get_deploy(id).unwrap().status,
            DeployStatus::AwaitingApproval
        );
        assert!(deployer.is_idle(), "nothing queued");
        let told = told.0.lock().unwrap();
        assert_eq!(told.len(), 1);
        assert_eq!(told[0].event, EventKind::ApprovalNeeded);
        assert_eq!(
            told[0].deploy_id,
            Some(id),
            "the notifier links to this deploy"
        );
        assert_eq!(told[0].digest.as_deref(), Some("sha256:aa"));
        assert_eq!(told[0].status, "awaiting_approval");
        assert_eq!(
            (
                told[0].project.as_str(),
                told[0].stage.as_str(),
                told[0].tag.as_str()
            ),
            ("shop", "dev", "v1")
        );
    }
}
