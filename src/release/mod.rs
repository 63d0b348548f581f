//! The release workflow's rules, apart from who applies them: version policies
//! (`policy`), deploy windows (`window`), and what an automatic request (a push or a poll)
//! must pass before it becomes a deploy ([`admit_automatic`]). The deployer's gate
//! (`deployer::gate`) applies approvals and windows to every request; the audit log is
//! `crate::audit`.

pub mod policy;
pub mod window;

use crate::store::{InstanceStatus, Stage, Store, StoreError};

pub use window::{WindowError, Windows};

/// Whether a push or poll of `tag` may become a deploy on `stage`: `Ok(Err(reason))` when
/// not (the caller records the reason like any ignored push). A stage promoted from
/// another takes new versions only by promotion; the version policy compares with what
/// the stage runs.
pub fn admit_automatic(
    store: &Store,
    stage: &Stage,
    tag: &str,
) -> Result<Result<(), String>, StoreError> {
    if let Some(source) = stage.release.promote_from {
        let from = store
            .get_stage(source)
            .map(|s| s.name)
            .unwrap_or_else(|_| format!("stage {source}"));
        return Ok(Err(format!(
            "stage {} takes new versions only by promotion from {from}",
            stage.name
        )));
    }
    let running = running_tag(store, stage.id)?;
    Ok(policy::check(
        stage.release.policy,
        stage.release.prerelease,
        running.as_deref(),
        tag,
    ))
}

/// The tag of the stage's newest running instance.
pub fn running_tag(store: &Store, stage_id: i64) -> Result<Option<String>, StoreError> {
    Ok(store
        .list_instances(stage_id)?
        .into_iter()
        .filter(|i| i.status == InstanceStatus::Running)
        .max_by_key(|i| i.id)
        .map(|i| i.tag))
}
