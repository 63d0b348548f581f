//! Image clean-up after a successful deploy: the images this installation pulled for a
//! project (its deploys' tags) go, except those its instances use and each stage's
//! rollback target (the tag live before the current one). Removal is never forced, so
//! Docker refuses an image any container still uses, ours or not; that one stays.

use std::collections::BTreeSet;

use crate::docker::EngineError;
use crate::store::{Deploy, DeployFilter, DeployStatus, Instance, InstanceStatus, Stage};

use super::{Inner, rules};

/// How many of a project's recent deploys are looked at for tags it pulled.
const HISTORY: u32 = 500;

/// Removes the project's images no instance and no rollback needs. Returns the images
/// removed and the problems met (logged by the caller).
pub(super) async fn clean_up(inner: &Inner, project_id: i64) -> (Vec<String>, Vec<String>) {
    let store = &inner.store;
    let read = (|| {
        let project = store.get_project(project_id)?;
        let deploys = store.list_deploys(&DeployFilter {
            project_id: Some(project_id),
            limit: HISTORY,
            ..Default::default()
        })?;
        let stages = store.list_stages(project_id)?;
        let mut instances = Vec::new();
        for stage in &stages {
            instances.extend(store.list_instances(stage.id)?);
        }
        Ok::<_, crate::store::StoreError>((project, deploys, stages, instances))
    })();
    let (project, deploys, stages, instances) = match read {
        Ok(read) => read,
        Err(e) => {
            return (
                Vec::new(),
                vec![format!("cannot read what images are in use: {e}")],
            );
        }
    };
    let (mut removed, mut problems) = (Vec::new(), Vec::new());
    for tag in unneeded_tags(&deploys, &stages, &instances) {
        let image = rules::image(&project, &tag);
        match inner.engine.inspect_image(&image).await {
            Ok(_) => {}
            Err(EngineError::ImageNotFound { .. }) => continue,
            Err(e) => {
                problems.push(format!("cannot inspect {image}: {e}"));
                continue;
            }
        }
        match inner.engine.remove_image(&image).await {
            Ok(()) => removed.push(image),
            Err(EngineError::ImageInUse { .. }) => {
                tracing::debug!(%image, "image kept: a container uses it");
            }
            Err(e) => problems.push(format!("cannot remove image {image}: {e}")),
        }
    }
    (removed, problems)
}

/// Tags the project pulled (any finished deploy that got past the queue) that neither an
/// instance (starting, running, stopping, stopped), a deploy under way, nor a stage's
/// rollback target needs.
pub(super) fn unneeded_tags(
    deploys: &[Deploy],
    stages: &[Stage],
    instances: &[Instance],
) -> BTreeSet<String> {
    let mut keep: BTreeSet<&str> = instances
        .iter()
        .filter(|i| i.status != InstanceStatus::Failed)
        .map(|i| i.tag.as_str())
        .collect();
    // A deploy under way (on any stage of the project) may be pulling its tag right now.
    keep.extend(
        deploys
            .iter()
            .filter(|d| !d.status.is_final())
            .map(|d| d.tag.as_str()),
    );
    for stage in stages {
        if let Some(tag) = rollback_target(deploys, stage.id) {
            keep.insert(tag);
        }
    }
    deploys
        .iter()
        .filter(|d| {
            !(d.status.is_waiting()
                || matches!(
                    d.status,
                    DeployStatus::Pending
                        | DeployStatus::Superseded
                        | DeployStatus::Rejected
                        | DeployStatus::Expired
                ))
        })
        .map(|d| d.tag.as_str())
        .filter(|tag| !keep.contains(tag))
        .map(str::to_string)
        .collect()
}

/// The tag a stage rolls back to: the newest successful deploy's tag that differs from
/// the current one (`deploys` newest first, as the store lists them).
fn rollback_target(deploys: &[Deploy], stage_id: i64) -> Option<&str> {
    let mut successes = deploys
        .iter()
        .filter(|d| d.stage_id == stage_id && d.status == DeployStatus::Success);
    let current = successes.next()?;
    successes
        .find(|d| d.tag != current.tag)
        .map(|d| d.tag.as_str())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::Trigger;

    fn deploy(id: i64, stage_id: i64, tag: &str, status: DeployStatus) -> Deploy {
        Deploy {
            id,
            project_id: 1,
            stage_id,
            tag: tag.into(),
            digest: None,
            trigger: Trigger::Manual,
            status,
            failed_step: None,
            error: None,
            instance_id: None,
            detected_at: None,
            created_at: chrono::Utc::now(),
            started_at: None,
            finished_at: None,
            promoted_from_stage_id: None,
            promoted_from_deploy_id: None,
            approval_expires_at: None,
            outside_window: false,
        }
    }

    #[test]
    fn running_tags_and_each_stages_rollback_target_are_kept() {
        use DeployStatus::*;
        // Newest first, like the store.
        let deploys = vec![
            deploy(10, 2, "p3", Pulling),
            deploy(9, 1, "v5", Success),
            deploy(8, 2, "p2", Success),
            deploy(7, 1, "v4", RolledBack),
            deploy(6, 1, "v5", Success),
            deploy(5, 1, "v3", Success),
            deploy(4, 2, "p1", Success),
            deploy(3, 1, "v2", Success),
            deploy(2, 1, "v1", Superseded),
            deploy(1, 1, "v0", Failed),
        ];
        let stages = vec![
            super::super::fakes::stage(1, 1),
            super::super::fakes::stage(2, 1),
        ];
        let running = |tag: &str, stage_id: i64, status: InstanceStatus| Instance {
            id: 0,
            stage_id,
            deploy_id: None,
            tag: tag.into(),
            digest: None,
            container_id: None,
            container_name: String::new(),
            upstream: None,
            subdomains: Vec::new(),
            proxy_hosts: Vec::new(),
            status,
            created_at: chrono::Utc::now(),
            updated_at: chrono::Utc::now(),
        };
        let instances = vec![
            running("v5", 1, InstanceStatus::Running),
            running("p2", 2, InstanceStatus::Running),
            running("v0", 1, InstanceStatus::Failed),
        ];
        let unneeded: Vec<String> = unneeded_tags(&deploys, &stages, &instances)
            .into_iter()
            .collect();
        // v3 is stage 1's rollback target, p1 stage 2's; p3 is being pulled; v1 was
        // never pulled.
        assert_eq!(unneeded, vec!["v0", "v2", "v4"]);
    }
}
