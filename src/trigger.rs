//! How detection hands work to deployment: the webhook receiver and the poller ask for a
//! deploy through [`DeployTrigger`]; the deployer implements it. Neither side knows the
//! other, so each is tested alone.

use chrono::{DateTime, Utc};

use crate::audit::Actor;
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
    /// Who asked, and what the release workflow needs to know about the request.
    pub origin: RequestOrigin,
}

/// Who asked for a deploy and how: the audit log's actor (the trigger's detector when
/// `None`), where a promotion came from, and whether a person chose to start it outside
/// the stage's deploy windows.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct RequestOrigin {
    pub actor: Option<Actor>,
    /// The stage (and the deploy there) whose digest a promotion brings.
    pub promoted_from: Option<(i64, Option<i64>)>,
    pub outside_window: bool,
}

/// Something that accepts deploy requests.
#[async_trait::async_trait]
pub trait DeployTrigger: Send + Sync {
    /// Records a pending deploy, queues it, and returns its id without waiting for it.
    async fn request_deploy(&self, request: DeployRequest) -> Result<i64, StoreError>;
}
