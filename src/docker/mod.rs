//! (placeholder until the Docker adapter lands: just what `serve` needs)

#[derive(Debug, thiserror::Error)]
pub enum EngineError {
    #[error("docker engine unreachable: {0}")]
    Unreachable(String),
}

pub struct EngineVersion {
    pub version: String,
    pub api_version: String,
}

#[async_trait::async_trait]
pub trait Engine: Send + Sync {
    async fn version(&self) -> Result<EngineVersion, EngineError>;
}

pub struct BollardEngine;

impl BollardEngine {
    pub fn connect(_endpoint: Option<&str>) -> Result<BollardEngine, EngineError> {
        Ok(BollardEngine)
    }
}

#[async_trait::async_trait]
impl Engine for BollardEngine {
    async fn version(&self) -> Result<EngineVersion, EngineError> {
        Err(EngineError::Unreachable("not built yet".into()))
    }
}
