//! Version policies: whether a stage takes a version automatically, given the version it
//! runs. Tags compare by semver where both are versions (a leading `v` allowed); a tag
//! that is not a version is judged only by `prerelease` never, and by the policy never
//! (there is nothing to compare), so `latest`-style stages keep working under any policy.

use crate::store::VersionPolicy;
use crate::tags::parse_version;

/// `Err(reason)` when `candidate` may not deploy on a stage that runs `running` under
/// `policy`; the reason is what the ignored push is recorded with.
pub fn check(
    policy: VersionPolicy,
    prerelease: bool,
    running: Option<&str>,
    candidate: &str,
) -> Result<(), String> {
    let Some(new) = parse_version(candidate) else {
        return Ok(());
    };
    if !prerelease && !new.pre.is_empty() {
        return Err(format!(
            "{candidate} is a prerelease and the stage takes no prereleases"
        ));
    }
    let Some((running, current)) = running.and_then(|r| parse_version(r).map(|v| (r, v))) else {
        return Ok(());
    };
    let lower = || {
        Err(format!(
            "{candidate} is lower than {running}, which the stage runs (policy {policy})"
        ))
    };
    match policy {
        VersionPolicy::Any => Ok(()),
        VersionPolicy::Forward if new < current => lower(),
        VersionPolicy::Forward => Ok(()),
        VersionPolicy::Patch if (new.major, new.minor) != (current.major, current.minor) => {
            Err(format!(
                "{candidate} leaves {}.{}, which the stage runs as {running} (policy patch)",
                current.major, current.minor
            ))
        }
        VersionPolicy::Minor if new.major != current.major => Err(format!(
            "{candidate} leaves major version {}, which the stage runs as {running} (policy minor)",
            current.major
        )),
        VersionPolicy::Patch | VersionPolicy::Minor if new < current => lower(),
        VersionPolicy::Patch | VersionPolicy::Minor => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use VersionPolicy::*;

    #[test]
    fn forward_refuses_a_lower_version_and_takes_a_higher_or_equal_one() {
        assert!(
            check(Forward, true, Some("1.3.0"), "1.2.9")
                .unwrap_err()
                .contains("lower than 1.3.0")
        );
        assert!(check(Forward, true, Some("v1.3.0"), "v1.4.0").is_ok());
        assert!(
            check(Forward, true, Some("1.3.0"), "1.3.0").is_ok(),
            "a re-push of the same version"
        );
        assert!(check(Any, true, Some("1.3.0"), "1.2.0").is_ok());
    }

    #[test]
    fn patch_and_minor_stay_within_the_running_line() {
        assert!(check(Patch, true, Some("1.3.2"), "1.3.5").is_ok());
        assert!(
            check(Patch, true, Some("1.3.2"), "1.4.0")
                .unwrap_err()
                .contains("leaves 1.3")
        );
        assert!(check(Patch, true, Some("1.3.2"), "1.3.1").is_err());
        assert!(check(Minor, true, Some("1.3.2"), "1.9.0").is_ok());
        assert!(
            check(Minor, true, Some("1.3.2"), "2.0.0")
                .unwrap_err()
                .contains("major version 1")
        );
    }

    #[test]
    fn prereleases_count_only_when_allowed() {
        assert!(
            check(Any, false, None, "1.3.0-rc.1")
                .unwrap_err()
                .contains("prerelease")
        );
        assert!(check(Forward, true, Some("1.2.0"), "1.3.0-rc.1").is_ok());
        // semver: a prerelease is lower than its release.
        assert!(check(Forward, true, Some("1.3.0"), "1.3.0-rc.1").is_err());
    }

    #[test]
    fn tags_that_are_not_versions_are_not_compared() {
        assert!(check(Forward, false, Some("1.3.0"), "latest").is_ok());
        assert!(check(Forward, true, Some("main-4f2a"), "1.0.0").is_ok());
        assert!(
            check(Patch, true, None, "0.1.0").is_ok(),
            "nothing runs yet"
        );
    }
}
