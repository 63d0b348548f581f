//! A stage's release rules in the API: the fields `policy`, `prerelease`, `promote_from`
//! (a stage name of the same project), `approvals_required`, `approval_timeout` (seconds),
//! `deploy_windows` and `window_timezone` of the stage requests and views, checked here
//! with reasons a form can show.

use crate::release::{WindowError, Windows};
use crate::store::{Stage, StageRelease, Store, VersionPolicy};

use super::error::{ApiError, FieldErrors};
use super::validate;

/// The release fields a request gave; `None` keeps the current value.
#[derive(Default)]
pub struct ReleaseChanges {
    pub policy: Option<String>,
    pub prerelease: Option<bool>,
    /// `Some(None)` clears it.
    pub promote_from: Option<Option<String>>,
    pub approvals_required: Option<u32>,
    pub approval_timeout: Option<u32>,
    pub deploy_windows: Option<Vec<String>>,
    pub window_timezone: Option<String>,
}

/// Most windows a stage may have.
pub const MAX_WINDOWS: usize = 20;

/// `current` with `changes` applied, or the reasons per field. `stage_id` is the stage's
/// own id (none yet on create), which it may not be promoted from.
pub fn apply(
    errors: &mut FieldErrors,
    store: &Store,
    project_id: i64,
    stage_id: Option<i64>,
    current: &StageRelease,
    changes: ReleaseChanges,
) -> Result<StageRelease, ApiError> {
    let mut release = current.clone();
    if let Some(policy) = changes.policy
        && let Some(p) = errors.check(
            "policy",
            policy
                .parse::<VersionPolicy>()
                .map_err(|_| "must be one of any, forward, patch, minor"),
        )
    {
        release.policy = p;
    }
    if let Some(prerelease) = changes.prerelease {
        release.prerelease = prerelease;
    }
    if let Some(n) = changes.approvals_required {
        errors.check("approvals_required", validate::range(u64::from(n), 0, 10));
        release.approvals_required = n;
    }
    if let Some(secs) = changes.approval_timeout {
        errors.check(
            "approval_timeout",
            validate::range(u64::from(secs), 1, 31_536_000),
        );
        release.approval_timeout_secs = secs;
    }
    if let Some(windows) = changes.deploy_windows {
        if windows.len() > MAX_WINDOWS {
            errors.add("deploy_windows", format!("at most {MAX_WINDOWS} windows"));
        }
        release.windows = windows.into_iter().map(|w| w.trim().to_string()).collect();
    }
    if let Some(tz) = changes.window_timezone {
        release.window_timezone = tz.trim().to_string();
    }
    match Windows::parse(&release.windows, &release.window_timezone) {
        Ok(_) => {}
        Err(e @ WindowError::Window { index, .. }) => {
            errors.add(format!("deploy_windows[{index}]"), e.to_string())
        }
        Err(e @ WindowError::TimeZone(_)) => errors.add("window_timezone", e.to_string()),
    }
    match changes.promote_from {
        None => {}
        Some(None) => release.promote_from = None,
        // "None" is said with null; an empty or padded name is a mistake to show, not to
        // guess at (the schema promises a stage name, and the form already sends null).
        Some(Some(name)) if name.is_empty() => errors.add(
            "promote_from",
            "give a stage name of this project, or null to promote from none",
        ),
        Some(Some(name)) => {
            let found = store
                .list_stages(project_id)?
                .into_iter()
                .find(|s| s.name == name);
            match found {
                Some(source) if Some(source.id) == stage_id => {
                    errors.add("promote_from", "a stage cannot be promoted from itself")
                }
                Some(source) => release.promote_from = Some(source.id),
                None => errors.add("promote_from", format!("no stage {name:?} in this project")),
            }
        }
    }
    Ok(release)
}

/// The name of the stage `stage` is promoted from, for its view.
pub fn promote_from_name(store: &Store, stage: &Stage) -> Option<String> {
    let id = stage.release.promote_from?;
    store.get_stage(id).ok().map(|s| s.name)
}
