//! The audit log: who did what. Every change through the API (with the resource before and
//! after), every sign-in and wrong password for a known user, every approval and
//! rejection, every deploy requested, started and finished is written here with its
//! actor — a user, a named API token, the webhook, the poller, the daemon itself, or an
//! anonymous caller's address. Entries older than the setting `audit_retention_days` are
//! pruned with the other retention limits (`crate::retention`).
//!
//! Invariant: writing the log never fails the action it records (a store error is logged).

use crate::store::{ActorKind, NewAuditEntry, Store};

/// Who did something.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Actor {
    pub kind: ActorKind,
    /// The username, the token's name, or `webhook`/`poller`/`system`.
    pub name: String,
}

impl Actor {
    pub fn user(name: impl Into<String>) -> Actor {
        Actor {
            kind: ActorKind::User,
            name: name.into(),
        }
    }

    pub fn token(name: impl Into<String>) -> Actor {
        Actor {
            kind: ActorKind::Token,
            name: name.into(),
        }
    }

    pub fn webhook() -> Actor {
        Actor {
            kind: ActorKind::Webhook,
            name: "webhook".into(),
        }
    }

    pub fn poller() -> Actor {
        Actor {
            kind: ActorKind::Poller,
            name: "poller".into(),
        }
    }

    /// Someone not signed in, known only by the address the request came from.
    pub fn anonymous(address: std::net::IpAddr) -> Actor {
        Actor {
            kind: ActorKind::Anonymous,
            name: address.to_string(),
        }
    }

    pub fn system() -> Actor {
        Actor {
            kind: ActorKind::System,
            name: "system".into(),
        }
    }

    /// One string per distinct approver: `user:admin`, `token:ci`.
    pub fn key(&self) -> String {
        format!("{}:{}", self.kind, self.name)
    }
}

impl std::fmt::Display for Actor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.kind {
            ActorKind::User | ActorKind::Token | ActorKind::Anonymous => {
                write!(f, "{} {}", self.kind, self.name)
            }
            _ => f.write_str(&self.name),
        }
    }
}

/// What an action was done to.
#[derive(Clone, Debug, Default)]
pub struct Target {
    pub kind: &'static str,
    pub id: Option<i64>,
    pub name: Option<String>,
    pub project_id: Option<i64>,
}

/// Writes one entry; a failure is logged, never returned.
pub fn record(
    store: &Store,
    actor: &Actor,
    action: &str,
    target: Target,
    detail: impl Into<String>,
) {
    record_change(store, actor, action, target, detail, None, None);
}

/// One entry, not written yet (for a store transaction that writes it with its change).
pub fn entry(
    actor: &Actor,
    action: &str,
    target: Target,
    detail: impl Into<String>,
) -> NewAuditEntry {
    NewAuditEntry {
        actor_kind: Some(actor.kind),
        actor: actor.name.clone(),
        action: action.to_string(),
        target_kind: target.kind.to_string(),
        target_id: target.id,
        target_name: target.name,
        project_id: target.project_id,
        detail: detail.into(),
        before: None,
        after: None,
    }
}

/// Writes one entry with the resource before and after a change.
pub fn record_change(
    store: &Store,
    actor: &Actor,
    action: &str,
    target: Target,
    detail: impl Into<String>,
    before: Option<serde_json::Value>,
    after: Option<serde_json::Value>,
) {
    let entry = NewAuditEntry {
        before,
        after,
        ..entry(actor, action, target, detail)
    };
    if let Err(e) = store.append_audit(&entry) {
        tracing::warn!(action, "cannot write the audit log: {e}");
    }
}
