//! The in-process channel on which deploy progress is published as it happens: every log
//! entry and every status change. The API streams it (SSE); nothing waits for readers.
//!
//! A broadcast channel: a slow reader falls behind and is told it lagged (it can re-read
//! the log from the store), but never holds up a deploy.

use tokio::sync::broadcast;

use crate::store::{DeployLogEntry, DeployStatus};

/// How many events a reader may fall behind before it is told it lagged.
const CAPACITY: usize = 1024;

#[derive(Clone, Debug, PartialEq)]
pub enum DeployEvent {
    Log(DeployLogEntry),
    Status {
        deploy_id: i64,
        project_id: i64,
        stage_id: i64,
        tag: String,
        status: DeployStatus,
    },
}

impl DeployEvent {
    pub fn deploy_id(&self) -> i64 {
        match self {
            DeployEvent::Log(entry) => entry.deploy_id,
            DeployEvent::Status { deploy_id, .. } => *deploy_id,
        }
    }
}

/// Publisher side; clone freely.
#[derive(Clone)]
pub struct DeployEvents {
    sender: broadcast::Sender<DeployEvent>,
}

impl Default for DeployEvents {
    fn default() -> Self {
        DeployEvents {
            sender: broadcast::channel(CAPACITY).0,
        }
    }
}

impl DeployEvents {
    pub fn publish(&self, event: DeployEvent) {
        // No receiver is fine: nobody is watching.
        let _ = self.sender.send(event);
    }

    pub fn subscribe(&self) -> broadcast::Receiver<DeployEvent> {
        self.sender.subscribe()
    }
}
