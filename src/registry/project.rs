//! Which registry a project's image is listed from, and the repository path inside it:
//! the project's configured registry, else the image's own host, anonymously. The poller
//! and the API's tag picker both list through [`for_project`].

use crate::image_ref::ImageRef;
use crate::store::{Project, Store, StoreError};

use super::{RegistryConfig, RegistryKind};

/// The registry and repository for `project`. The image is parsed by [`ImageRef`], the
/// one parser of image references (Docker Hub's `library/` added for single names).
pub fn for_project(
    store: &Store,
    project: &Project,
) -> Result<(RegistryConfig, String), StoreError> {
    let (host, repository) = match ImageRef::parse(&project.image) {
        Ok(image) => (image.registry().to_string(), image.repository().to_string()),
        // Stored images were checked when saved; one that no longer parses is listed
        // as it stands and the registry says what is wrong.
        Err(_) => ("docker.io".to_string(), project.image.clone()),
    };
    let config = match project.registry_id {
        Some(id) => {
            let stored = store.get_registry(id)?;
            RegistryConfig {
                kind: stored.kind,
                base_url: stored.base_url,
                username: stored.username,
                secret: store.registry_secret(id)?,
                insecure: stored.insecure,
            }
        }
        None => implicit_registry(&host),
    };
    Ok((config, repository))
}

/// A registry nobody configured: anonymous, by host; plain HTTP only on loopback, as
/// Docker itself allows.
fn implicit_registry(host: &str) -> RegistryConfig {
    let kind = match host {
        "docker.io" | "index.docker.io" | "registry-1.docker.io" => RegistryKind::DockerHub,
        "ghcr.io" => RegistryKind::Ghcr,
        _ => RegistryKind::Oci,
    };
    let name = host.rsplit_once(':').map_or(host, |(h, _)| h);
    let loopback = name == "localhost" || name.starts_with("127.") || name == "[::1]";
    RegistryConfig {
        kind,
        base_url: if loopback {
            format!("http://{host}")
        } else {
            host.to_string()
        },
        username: None,
        secret: None,
        insecure: loopback,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn listed_from(image: &str) -> (String, String) {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(
            dir.path(),
            crate::crypto::Sealer::new(crate::crypto::MasterKey::generate()),
        )
        .unwrap();
        let project = Project {
            image: image.into(),
            ..store
                .create_project(&crate::store::NewProject {
                    name: "p".into(),
                    image: "nginx".into(),
                    container_port: 80,
                    ..Default::default()
                })
                .unwrap()
        };
        let (config, repository) = for_project(&store, &project).unwrap();
        (config.base_url, repository)
    }

    #[test]
    fn image_hosts_are_split_the_way_docker_does() {
        assert_eq!(
            listed_from("127.0.0.1:5000/acme/shop"),
            ("http://127.0.0.1:5000".into(), "acme/shop".into())
        );
        assert_eq!(
            listed_from("ghcr.io/acme/shop"),
            ("ghcr.io".into(), "acme/shop".into())
        );
        assert_eq!(
            listed_from("docker.io/acme/shop"),
            ("docker.io".into(), "acme/shop".into())
        );
        assert_eq!(
            listed_from("docker.io/library/nginx"),
            ("docker.io".into(), "library/nginx".into())
        );
    }

    #[test]
    fn only_loopback_registries_get_plain_http_implicitly() {
        assert!(implicit_registry("127.0.0.1:5000").insecure);
        assert!(!implicit_registry("registry.example.com").insecure);
        assert_eq!(implicit_registry("ghcr.io").kind, RegistryKind::Ghcr);
    }
}
