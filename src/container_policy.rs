//! What a deployed container may get from the host: which host folders it may bind-mount
//! and which network mode it may use. One set of rules, used by the API (a project is
//! refused with 422 naming the field) and by the deployer's plan step (a project stored
//! before the rules, or after the settings were tightened, does not deploy).
//!
//! The rules, and why:
//! - a named volume (`data:/var/lib/app`) is always fine: Docker keeps it in its own area;
//! - a bind mount of a host path (`/srv/app:/data`) is refused unless the path is under
//!   one of the settings' `allowed_bind_paths` (empty by default), because a container
//!   that can write `/` or `/etc` owns the host;
//! - some paths are refused even when allowed, and so are their parents: `/proc`, `/sys`,
//!   `/dev`, `/etc`, the Docker and containerd sockets and Docker's data root, and the
//!   daemon's own data folder (its master key and database);
//! - `network: host` (and `container:<id>`, which shares another container's network) get
//!   around the 127.0.0.1-only port publishing, so they need `allow_host_network`.
//!
//! Paths are compared component by component (`/data2` is not under `/data`), `..` is
//! refused outright (with symlinks it need not mean the parent), and a path that exists
//! is also checked after following its symlinks, so a link under an allowed folder that
//! points at `/` is refused too.

use std::path::{Component, Path, PathBuf};

use crate::store::Settings;

/// Refused always, with anything under them and every folder above them. `/` is above
/// all of them, so it is refused too.
pub const ALWAYS_REFUSED: &[(&str, &str)] = &[
    ("/proc", "the host's processes"),
    ("/sys", "the host's kernel settings"),
    ("/dev", "the host's devices"),
    ("/etc", "the host's configuration and passwords"),
    (
        "/var/run/docker.sock",
        "the Docker socket: control of every container and the host",
    ),
    (
        "/run/docker.sock",
        "the Docker socket: control of every container and the host",
    ),
    ("/var/lib/docker", "Docker's data, every container's files"),
    (
        "/run/containerd",
        "containerd's socket: control of every container",
    ),
    (
        "/var/run/containerd",
        "containerd's socket: control of every container",
    ),
];

/// Why one field of a project is refused: the field as the API names it, and the reason.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Refusal {
    pub field: String,
    pub reason: String,
}

/// The rules in force: from the settings and the daemon's data folder.
#[derive(Clone, Debug)]
pub struct ContainerPolicy {
    allowed_bind_paths: Vec<PathBuf>,
    allow_host_network: bool,
    data_dir: Option<PathBuf>,
}

impl ContainerPolicy {
    pub fn new(settings: &Settings, data_dir: Option<&Path>) -> ContainerPolicy {
        ContainerPolicy {
            allowed_bind_paths: settings
                .allowed_bind_paths
                .iter()
                .map(PathBuf::from)
                .collect(),
            allow_host_network: settings.allow_host_network,
            data_dir: data_dir.map(|d| std::fs::canonicalize(d).unwrap_or_else(|_| d.into())),
        }
    }

    /// Every refused field of a project's `volumes` and `network`, checked against the
    /// host's filesystem (symlinks followed where the path exists).
    pub fn check(&self, volumes: &[String], network: Option<&str>) -> Vec<Refusal> {
        self.check_with(volumes, network, &resolve_on_host)
    }

    /// [`Self::check`] with `resolve` saying where a path really leads (pure for tests).
    pub fn check_with(
        &self,
        volumes: &[String],
        network: Option<&str>,
        resolve: &dyn Fn(&Path) -> PathBuf,
    ) -> Vec<Refusal> {
        let mut refusals = Vec::new();
        for (i, volume) in volumes.iter().enumerate() {
            if let Err(reason) = self.check_volume(volume, resolve) {
                refusals.push(Refusal {
                    field: format!("volumes[{i}].source"),
                    reason,
                });
            }
        }
        if let Some(network) = network
            && let Err(reason) = self.check_network(network)
        {
            refusals.push(Refusal {
                field: "network".into(),
                reason,
            });
        }
        refusals
    }

    /// One volume spec, `source:destination[:mode]`: a named volume, or a host path that
    /// is allowed and not refused.
    fn check_volume(&self, spec: &str, resolve: &dyn Fn(&Path) -> PathBuf) -> Result<(), String> {
        let source = spec.split(':').next().unwrap_or_default();
        if !source.starts_with('/') {
            return if is_volume_name(source) {
                Ok(())
            } else {
                Err(format!(
                    "{source:?} is neither a named volume (letters, digits, _ . -) nor an absolute host path"
                ))
            };
        }
        let path = normalise(source)?;
        let real = resolve(&path);
        for candidate in [&path, &real] {
            if let Some(reason) = self.refused_always(candidate, resolve) {
                return Err(reason);
            }
        }
        let allowed = self
            .allowed_bind_paths
            .iter()
            .filter_map(|a| normalise(&a.to_string_lossy()).ok())
            .any(|a| path.starts_with(&a) && real.starts_with(resolve(&a)));
        if allowed {
            Ok(())
        } else if self.allowed_bind_paths.is_empty() {
            Err(format!(
                "{source} is a host folder; bind mounts are off: use a named volume, or let an admin add the folder (or one above it) to the setting allowed_bind_paths"
            ))
        } else {
            Err(format!(
                "{source} is not under an allowed host folder ({}); use a named volume, or let an admin add it to the setting allowed_bind_paths",
                self.allowed_bind_paths
                    .iter()
                    .map(|p| p.display().to_string())
                    .collect::<Vec<_>>()
                    .join(", ")
            ))
        }
    }

    /// Why `path` may never be mounted (it is, is under or is above a refused path).
    fn refused_always(&self, path: &Path, resolve: &dyn Fn(&Path) -> PathBuf) -> Option<String> {
        let data_dir = self.data_dir.as_ref().map(|d| {
            (
                d.clone(),
                "docker-watcher's data folder: its master key and database",
            )
        });
        let fixed = ALWAYS_REFUSED
            .iter()
            .map(|(p, what)| (PathBuf::from(p), *what));
        for (refused, what) in fixed.chain(data_dir) {
            for refused in [refused.clone(), resolve(&refused)] {
                if path.starts_with(&refused) {
                    return Some(format!(
                        "{} is (under) {}, {what}; it is refused always",
                        path.display(),
                        refused.display()
                    ));
                }
                if refused.starts_with(path) {
                    return Some(format!(
                        "{} holds {}, {what}; it is refused always: mount a folder further down",
                        path.display(),
                        refused.display()
                    ));
                }
            }
        }
        None
    }

    fn check_network(&self, network: &str) -> Result<(), String> {
        let mode = network.trim().to_ascii_lowercase();
        let bypass = mode == "host" || mode.starts_with("container:") || mode.starts_with("ns:");
        if bypass && !self.allow_host_network {
            return Err(format!(
                "{network:?} would put the container on the host's (or another container's) network, around the 127.0.0.1-only port publishing; it needs the setting allow_host_network, which only an admin can turn on"
            ));
        }
        Ok(())
    }
}

/// Checks one entry of the setting `allowed_bind_paths`: an absolute path without `..`
/// that is not itself refused always (allowing `/` would allow everything).
pub fn check_allowed_path(path: &str, data_dir: Option<&Path>) -> Result<(), String> {
    let normal = normalise(path)?;
    let policy = ContainerPolicy {
        allowed_bind_paths: Vec::new(),
        allow_host_network: false,
        data_dir: data_dir.map(|d| std::fs::canonicalize(d).unwrap_or_else(|_| d.into())),
    };
    for candidate in [normal.clone(), resolve_on_host(&normal)] {
        if let Some(reason) = policy.refused_always(&candidate, &resolve_on_host) {
            return Err(reason);
        }
    }
    Ok(())
}

/// The deployer's check: the project's volumes and network under the settings in force
/// now, as one sentence for the deploy log.
pub fn check_project(
    settings: &Settings,
    data_dir: Option<&Path>,
    project: &crate::store::Project,
) -> Result<(), String> {
    let refusals = ContainerPolicy::new(settings, data_dir)
        .check(&project.volumes, project.network.as_deref());
    if refusals.is_empty() {
        return Ok(());
    }
    Err(format!(
        "project {} asks for what deployed containers may not get: {}",
        project.name,
        refusals
            .iter()
            .map(|r| format!("{}: {}", r.field, r.reason))
            .collect::<Vec<_>>()
            .join("; ")
    ))
}

/// An absolute path with `.` and repeated slashes removed; `..` and relative paths are
/// refused.
fn normalise(path: &str) -> Result<PathBuf, String> {
    let path = Path::new(path);
    if !path.is_absolute() {
        return Err(format!("{} must be an absolute path", path.display()));
    }
    let mut normal = PathBuf::from("/");
    for component in path.components() {
        match component {
            Component::Normal(part) => normal.push(part),
            Component::ParentDir => {
                return Err(format!("{} must not contain ..", path.display()));
            }
            Component::RootDir | Component::CurDir | Component::Prefix(_) => {}
        }
    }
    Ok(normal)
}

/// Where `path` leads on this host: its longest existing ancestor with symlinks followed,
/// plus the rest (a folder Docker would create). Unreadable paths stay as they are.
fn resolve_on_host(path: &Path) -> PathBuf {
    let mut existing = path.to_path_buf();
    let mut rest = Vec::new();
    loop {
        if let Ok(real) = std::fs::canonicalize(&existing) {
            let mut real = real;
            for part in rest.iter().rev() {
                real.push(part);
            }
            return real;
        }
        match (
            existing.file_name().map(ToOwned::to_owned),
            existing.parent(),
        ) {
            (Some(name), Some(parent)) => {
                rest.push(name);
                existing = parent.to_path_buf();
            }
            _ => return path.to_path_buf(),
        }
    }
}

/// A Docker volume name: a letter or digit, then letters, digits, `_`, `.` and `-`.
fn is_volume_name(name: &str) -> bool {
    let mut chars = name.chars();
    chars.next().is_some_and(|c| c.is_ascii_alphanumeric())
        && chars.all(|c| c.is_ascii_alphanumeric() || "_.-".contains(c))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn policy(allowed: &[&str], host_network: bool, data_dir: Option<&str>) -> ContainerPolicy {
        ContainerPolicy {
            allowed_bind_paths: allowed.iter().map(PathBuf::from).collect(),
            allow_host_network: host_network,
            data_dir: data_dir.map(PathBuf::from),
        }
    }

    fn lexical(path: &Path) -> PathBuf {
        path.to_path_buf()
    }

    fn refused(policy: &ContainerPolicy, volume: &str) -> Option<String> {
        policy
            .check_with(&[volume.to_string()], None, &lexical)
            .pop()
            .map(|r| {
                assert_eq!(r.field, "volumes[0].source");
                r.reason
            })
    }

    #[test]
    fn named_volumes_are_always_fine() {
        let p = policy(&[], false, None);
        assert_eq!(refused(&p, "data:/var/lib/app"), None);
        assert_eq!(refused(&p, "my_vol.1-x:/x:ro"), None);
        assert!(
            refused(&p, "../etc:/x").is_some(),
            "not a name, not absolute"
        );
        assert!(refused(&p, "~/x:/x").is_some());
        assert!(refused(&p, ".hidden:/x").is_some());
    }

    #[test]
    fn host_paths_need_an_allowed_folder() {
        let none = policy(&[], false, None);
        let reason = refused(&none, "/srv/app:/data").unwrap();
        assert!(reason.contains("allowed_bind_paths"), "{reason}");
        let p = policy(&["/srv", "/data"], false, None);
        assert_eq!(refused(&p, "/srv/app:/data"), None);
        assert_eq!(refused(&p, "/srv:/data:ro"), None, "the folder itself");
        assert_eq!(refused(&p, "//srv/./app/:/data"), None, "normalised");
        assert!(refused(&p, "/data2/x:/x").is_some(), "no prefix tricks");
        assert!(refused(&p, "/srvx:/x").is_some());
        assert!(refused(&p, "/srv/../etc:/x").unwrap().contains(".."));
        assert!(refused(&p, "/home/me:/x").is_some());
    }

    #[test]
    fn dangerous_paths_are_refused_even_when_allowed() {
        let p = policy(&["/"], false, Some("/var/lib/docker-watcher"));
        for source in [
            "/",
            "/var/run/docker.sock",
            "/run/docker.sock",
            "/proc",
            "/proc/1/root",
            "/sys/kernel",
            "/dev/sda",
            "/etc",
            "/etc/shadow",
            "/var/lib/docker-watcher",
            "/var/lib/docker-watcher/master.key",
            "/var",
            "/var/run",
            "/run",
            "/var/lib",
        ] {
            let reason = refused(&p, &format!("{source}:/x"));
            assert!(reason.is_some(), "{source} must be refused");
            assert!(reason.unwrap().contains("refused always"));
        }
        assert_eq!(
            refused(&p, "/srv/app:/x"),
            None,
            "others follow the allow list"
        );
        assert_eq!(
            refused(&p, "/var/lib/app:/x"),
            None,
            "a sibling of the data folder"
        );
    }

    #[test]
    fn symlinks_are_followed_to_where_they_lead() {
        let p = policy(&["/srv"], false, None);
        // /srv/root is a link to /, /srv/sock to the Docker socket.
        let resolve = |path: &Path| {
            if let Ok(rest) = path.strip_prefix("/srv/root") {
                Path::new("/").join(rest)
            } else if path == Path::new("/srv/sock") {
                PathBuf::from("/run/docker.sock")
            } else if let Ok(rest) = path.strip_prefix("/srv/elsewhere") {
                Path::new("/home").join(rest)
            } else {
                path.to_path_buf()
            }
        };
        let check = |v: &str| p.check_with(&[v.to_string()], None, &resolve);
        assert!(!check("/srv/root:/x").is_empty());
        assert!(!check("/srv/root/etc:/x").is_empty());
        assert!(!check("/srv/sock:/var/run/docker.sock").is_empty());
        assert!(
            !check("/srv/elsewhere/me:/x").is_empty(),
            "leads out of /srv"
        );
        assert!(check("/srv/app:/x").is_empty());
    }

    #[test]
    fn real_symlinks_on_this_host_are_followed() {
        let dir = tempfile::tempdir().unwrap();
        let allowed = dir.path().join("allowed");
        std::fs::create_dir(&allowed).unwrap();
        std::os::unix::fs::symlink("/etc", allowed.join("etc-link")).unwrap();
        let p = policy(&[allowed.to_str().unwrap()], false, None);
        let spec = |p: &Path| format!("{}:/x", p.display());
        assert!(p.check(&[spec(&allowed.join("app"))], None).is_empty());
        let refusals = p.check(&[spec(&allowed.join("etc-link/passwd"))], None);
        assert_eq!(refusals.len(), 1, "{refusals:?}");
        assert!(refusals[0].reason.contains("/etc"), "{refusals:?}");
    }

    #[test]
    fn host_network_needs_the_setting() {
        let strict = policy(&[], false, None);
        let open = policy(&[], true, None);
        for mode in ["host", "HOST", "container:abc", "ns:/proc/1/ns/net"] {
            let refusals = strict.check_with(&[], Some(mode), &lexical);
            assert_eq!(refusals.len(), 1, "{mode}");
            assert_eq!(refusals[0].field, "network");
            assert!(refusals[0].reason.contains("allow_host_network"));
            assert!(open.check_with(&[], Some(mode), &lexical).is_empty());
        }
        assert!(strict.check_with(&[], Some("backend"), &lexical).is_empty());
        assert!(strict.check_with(&[], Some("bridge"), &lexical).is_empty());
    }

    #[test]
    fn allowed_paths_themselves_are_checked() {
        assert!(check_allowed_path("/srv/apps", None).is_ok());
        assert!(check_allowed_path("/", None).is_err());
        assert!(
            check_allowed_path("/var", None).is_err(),
            "holds the socket"
        );
        assert!(check_allowed_path("/etc/app", None).is_err());
        assert!(check_allowed_path("srv", None).is_err());
        assert!(check_allowed_path("/srv/../etc", None).is_err());
        assert!(check_allowed_path("/srv/dw", Some(Path::new("/srv/dw/data"))).is_err());
    }
}
