//! Where the daemon runs — on the host or in a container — and what follows from it: the
//! defaults it listens and keeps its data under, and how it reaches the containers it
//! deploys.
//!
//! On the host, containers are reached on their ports published on 127.0.0.1. In a
//! container that shares the host's network the same holds. In a container on a Docker
//! network, 127.0.0.1 is the container's own: deployed containers must be reached by name
//! on a network the daemon shares with them (and with the proxy). [`settle`] finds out at
//! start-up which case it is, joins the network it reaches containers on, records the
//! reachability in the settings and says in the log what it detected and what to set when
//! something is missing.

use std::collections::BTreeMap;

use crate::docker::{ContainerId, Engine, labels};
use crate::store::{Reachability, SettingsUpdate, Store};

/// Where this process runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Placement {
    #[default]
    Host,
    /// In a container, as its image declares with [`IN_CONTAINER_ENV`].
    Container,
}

/// Set to `1` (or `true`) by docker-watcher's image. Declared rather than guessed from
/// `/.dockerenv`: a binary run in a development container or a CI job's container is a
/// host install as far as reaching deployed containers goes.
pub const IN_CONTAINER_ENV: &str = "DW_IN_CONTAINER";

impl Placement {
    /// [`IN_CONTAINER_ENV`] says where this process runs.
    pub fn from_env() -> Placement {
        match std::env::var(IN_CONTAINER_ENV).as_deref() {
            Ok("1" | "true") => Placement::Container,
            _ => Placement::Host,
        }
    }
}

/// The id of the container this process runs in, from `/proc/self/mountinfo`: Docker
/// bind-mounts `/etc/hostname` (and `resolv.conf`, `hosts`) from
/// `…/containers/<id>/…`, whatever the hostname and the cgroup version.
pub fn own_container_id(mountinfo: &str) -> Option<String> {
    mountinfo.lines().find_map(|line| {
        let root = line.split_whitespace().nth(3)?;
        let rest = &root[root.find("/containers/")? + "/containers/".len()..];
        let id = rest.split('/').next()?;
        (id.len() == 64 && id.bytes().all(|b| b.is_ascii_hexdigit())).then(|| id.to_string())
    })
}

/// What the daemon found out about its place, for the log and the tests.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// On the host: containers are reached on 127.0.0.1.
    Host,
    /// In a container on the host's network: 127.0.0.1 is the host's.
    HostNetwork,
    /// In a container on `network` (joined now when `joined`): containers are reached by
    /// name there.
    Network { network: String, joined: bool },
    /// Something is missing; the message says what to set.
    Unresolved(String),
}

/// Finds out how deployed containers are reached from where the daemon runs, joins the
/// network it reaches them on, writes `reachability`/`reach_network` into the settings
/// when they must change, and logs what it detected. `wanted` is `DW_NETWORK`.
pub async fn settle(
    placement: Placement,
    wanted: Option<&str>,
    engine: &dyn Engine,
    store: &Store,
) -> Outcome {
    let outcome = decide(placement, wanted, engine, store).await;
    match &outcome {
        Outcome::Host => tracing::info!(
            "running on the host: deployed containers are reached on their ports published on 127.0.0.1"
        ),
        Outcome::HostNetwork => tracing::info!(
            "running in a container on the host's network: deployed containers are reached on their ports published on 127.0.0.1"
        ),
        Outcome::Network { network, joined } => tracing::info!(
            joined_now = joined,
            "running in a container on network {network}: deployed containers join {network} and are reached there by name (settings: reachability = network, reach_network = {network}); put your proxy on {network} too"
        ),
        Outcome::Unresolved(message) => tracing::error!("{message}"),
    }
    outcome
}

async fn decide(
    placement: Placement,
    wanted: Option<&str>,
    engine: &dyn Engine,
    store: &Store,
) -> Outcome {
    let settings = match store.settings() {
        Ok(settings) => settings,
        Err(e) => return Outcome::Unresolved(format!("cannot read the settings: {e}")),
    };
    let reach_network = (settings.reachability == Reachability::Network)
        .then(|| settings.reach_network.clone())
        .flatten();
    if placement == Placement::Host {
        if let Some(network) = wanted.or(reach_network.as_deref()) {
            return Outcome::Unresolved(format!(
                "docker-watcher runs on the host, where container names on network {network} do not resolve: set reachability to loopback in the settings and unset DW_NETWORK (reach by name is for a daemon in a container)"
            ));
        }
        return Outcome::Host;
    }

    let mountinfo = std::fs::read_to_string("/proc/self/mountinfo").unwrap_or_default();
    let Some(id) = own_container_id(&mountinfo) else {
        return Outcome::Unresolved(
            "docker-watcher runs in a container but cannot tell which (no Docker container id in /proc/self/mountinfo): run it with Docker, or on the host's network, or set reachability and reach_network in the settings yourself".into(),
        );
    };
    let me = match engine
        .inspect_container(&ContainerId::new(id.clone()))
        .await
    {
        Ok(me) => me,
        Err(e) => {
            return Outcome::Unresolved(format!(
                "docker-watcher runs in container {short} but cannot inspect it ({e}): mount the Docker socket (-v /var/run/docker.sock:/var/run/docker.sock) and give the user its group (--group-add $(stat -c %g /var/run/docker.sock))",
                short = &id[..12]
            ));
        }
    };
    if me.networks.iter().any(|n| n == "host") {
        if let Some(network) = wanted.or(reach_network.as_deref()) {
            return Outcome::Unresolved(format!(
                "docker-watcher runs on the host's network, where container names on network {network} do not resolve: set reachability to loopback in the settings and unset DW_NETWORK"
            ));
        }
        return Outcome::HostNetwork;
    }

    let user_networks: Vec<&String> = me
        .networks
        .iter()
        .filter(|n| !matches!(n.as_str(), "bridge" | "none"))
        .collect();
    let network = match (wanted, &reach_network, user_networks.as_slice()) {
        (Some(wanted), _, _) => wanted.to_string(),
        (None, Some(saved), _) => saved.clone(),
        (None, None, [only]) => (*only).clone(),
        (None, None, []) => {
            return Outcome::Unresolved(format!(
                "docker-watcher runs in a container on {} only, where containers cannot reach each other by name: put it on a network of its own (docker network create web; --network web) or set DW_NETWORK=web (it joins it), or run it on the host's network (--network host)",
                if me.networks.is_empty() {
                    "no network".to_string()
                } else {
                    me.networks.join(", ")
                }
            ));
        }
        (None, None, several) => {
            return Outcome::Unresolved(format!(
                "docker-watcher runs on networks {}: set DW_NETWORK to the one your proxy shares, so deployed containers join it",
                several
                    .iter()
                    .map(|n| n.as_str())
                    .collect::<Vec<_>>()
                    .join(", ")
            ));
        }
    };

    let joined = !me.networks.contains(&network);
    if joined {
        let labels = BTreeMap::from([(
            labels::MANAGED.to_string(),
            labels::MANAGED_VALUE.to_string(),
        )]);
        if let Err(e) = engine.ensure_network(&network, &labels).await {
            return Outcome::Unresolved(format!("cannot create network {network}: {e}"));
        }
        if let Err(e) = engine.connect_network(&me.id, &network).await {
            return Outcome::Unresolved(format!(
                "cannot join network {network}: {e}; attach the container yourself (docker network connect {network} {})",
                me.name
            ));
        }
    }
    if reach_network.as_deref() != Some(network.as_str()) {
        let update = SettingsUpdate {
            reachability: Some(Reachability::Network),
            reach_network: Some(Some(network.clone())),
            ..Default::default()
        };
        if let Err(e) = store.update_settings(&update) {
            return Outcome::Unresolved(format!(
                "cannot save reachability = network on {network} in the settings: {e}"
            ));
        }
    }
    Outcome::Network { network, joined }
}

#[cfg(test)]
mod tests {
    use super::*;

    const ID: &str = "3f4e1a9c0b7d2e8f6a5c4b3d2e1f0a9b8c7d6e5f4a3b2c1d0e9f8a7b6c5d4e3f";

    #[test]
    fn the_container_id_comes_from_the_hostname_mount() {
        let mountinfo = format!(
            "1021 1002 0:95 / / rw,relatime master:1 - overlay overlay rw,lowerdir=/var/lib/docker/overlay2/l/X\n\
             1030 1021 254:1 /var/lib/docker/containers/{ID}/resolv.conf /etc/resolv.conf rw,relatime - ext4 /dev/vda1 rw\n\
             1031 1021 254:1 /var/lib/docker/containers/{ID}/hostname /etc/hostname rw,relatime - ext4 /dev/vda1 rw\n"
        );
        assert_eq!(own_container_id(&mountinfo).as_deref(), Some(ID));
    }

    #[test]
    fn no_container_id_on_the_host() {
        let mountinfo = "22 1 254:1 / / rw,relatime shared:1 - ext4 /dev/vda1 rw\n\
                         23 22 0:21 / /proc rw,nosuid - proc proc rw\n";
        assert_eq!(own_container_id(mountinfo), None);
        // A path that mentions containers/ but no 64-hex id is not one.
        let odd = "30 22 254:1 /srv/containers/app/hostname /etc/hostname rw - ext4 /dev/vda1 rw\n";
        assert_eq!(own_container_id(odd), None);
    }
}
