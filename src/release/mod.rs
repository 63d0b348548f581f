//! The release workflow's rules, apart from who applies them: version policies
//! (`policy`), deploy windows (`window`), and what an automatic request (a push or a poll)
//! must pass before it becomes a deploy ([`admit_automatic`]). The deployer's gate
//! (`deployer::gate`) applies approvals and windows to every request; the audit log is
//! `crate::audit`.

pub mod policy;
pub mod window;

use crate::store::{
    DeployFilter, DeployStatus, InstanceStatus, Stage, Store, StoreError, VersionPolicy,
};

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
    // Policy `any` (the default) compares with nothing: what runs is not looked up on
    // every push.
    let running = match stage.release.policy {
        VersionPolicy::Any => None,
        _ => running_tag(store, stage.id)?,
    };
    Ok(policy::check(
        stage.release.policy,
        stage.release.prerelease,
        running.as_deref(),
        tag,
    ))
}

/// The tag the stage runs now (see [`running`]).
pub fn running_tag(store: &Store, stage_id: i64) -> Result<Option<String>, StoreError> {
    Ok(running(store, stage_id)?.map(|r| r.tag))
}

/// What a stage runs now, as promotion and the version policy need it.
#[derive(Clone, Debug, PartialEq)]
pub struct Running {
    pub tag: String,
    /// The image digest, when it was pulled from a registry.
    pub digest: Option<String>,
    /// The deploy that put it there.
    pub deploy_id: Option<i64>,
}

/// A container stage runs its newest running instance. A swarm stage has no instances:
/// it runs what its last successful deploy put on the service (Swarm reports success only
/// once every replica runs that spec; a failed or rolled-back update leaves the one
/// before, which is the previous success).
pub fn running(store: &Store, stage_id: i64) -> Result<Option<Running>, StoreError> {
    if store.stage_target(stage_id)?.swarm().is_some() {
        return Ok(store
            .list_deploys(&DeployFilter {
                stage_id: Some(stage_id),
                status: Some(DeployStatus::Success),
                limit: 1,
                ..Default::default()
            })?
            .into_iter()
            .next()
            .map(|d| Running {
                tag: d.tag,
                digest: d.digest,
                deploy_id: Some(d.id),
            }));
    }
    Ok(store
        .list_instances(stage_id)?
        .into_iter()
        .filter(|i| i.status == InstanceStatus::Running)
        .max_by_key(|i| i.id)
        .map(|i| Running {
            tag: i.tag,
            digest: i.digest,
            deploy_id: i.deploy_id,
        }))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::test_support::shop;
    use crate::store::{StageTarget, SwarmTarget};

    #[test]
    fn a_swarm_stage_runs_its_last_successful_deploy_and_the_policy_compares_with_it() {
        let shop = shop("prod");
        let store = &shop.store;
        let mut stage = store.get_stage(shop.stage_id).unwrap();
        store
            .set_stage_target(stage.id, &StageTarget::Swarm(SwarmTarget::default()))
            .unwrap();
        let deploy = |tag: &str, status: DeployStatus| {
            let d = shop.deploy(tag);
            store.set_deploy_status(d.id, status).unwrap();
            d.id
        };
        assert_eq!(running(store, stage.id).unwrap(), None);
        let live = deploy("1.2.0", DeployStatus::Success);
        // Swarm rolled this one back: the service still runs 1.2.0.
        deploy("1.3.0", DeployStatus::RolledBack);
        assert_eq!(
            running(store, stage.id).unwrap(),
            Some(Running {
                tag: "1.2.0".into(),
                digest: Some("sha256:1.2.0".into()),
                deploy_id: Some(live),
            })
        );
        stage.release.policy = VersionPolicy::Patch;
        assert!(admit_automatic(store, &stage, "1.2.1").unwrap().is_ok());
        assert!(
            admit_automatic(store, &stage, "2.0.0").unwrap().is_err(),
            "the patch policy compares with what the service runs"
        );
    }
}
