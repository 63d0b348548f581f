//! How detection hands work to deployment: the webhook receiver and the poller ask for a
//! deploy through [`DeployTrigger`]; the deployer implements it. Neither side knows the
//! other, so each is tested alone.

use chrono::{DateTime, Utc};

use crate::store::{StoreError, Trigger};

/// A request to bring `tag` to a stage.
#[derive(Clone, Debug, PartialEq)]
pub struct DeployRequest {
    pub project_id: i64,
    pub stage_id: i64,
    pub tag: String,
    pub digest: Option<String>,
    pub trigger: Trigger,
    /// When the new tag was first noticed (for detection-to-serving time).
    pub detected_at: Option<DateTime<Utc>>,
}

/// Something that accepts deploy requests.
#[async_trait::async_trait]
pub trait DeployTrigger: Send + Sync {
    /// Records a pending deploy, queues it, and returns its id without waiting for it.
    async fn request_deploy(&self, request: DeployRequest) -> Result<i64, StoreError>;
}
