//! (placeholder until the registry clients land: only the kind enum the store needs)

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum RegistryKind {
    Oci,
    Gitea,
    DockerHub,
    Ghcr,
}

impl RegistryKind {
    pub fn as_str(self) -> &'static str {
        match self {
            RegistryKind::Oci => "oci",
            RegistryKind::Gitea => "gitea",
            RegistryKind::DockerHub => "dockerhub",
            RegistryKind::Ghcr => "ghcr",
        }
    }
}

impl std::str::FromStr for RegistryKind {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "oci" => Ok(RegistryKind::Oci),
            "gitea" => Ok(RegistryKind::Gitea),
            "dockerhub" => Ok(RegistryKind::DockerHub),
            "ghcr" => Ok(RegistryKind::Ghcr),
            other => Err(format!("unknown registry kind {other:?}")),
        }
    }
}
