//! The HTTP surface: `router(state)` builds every route, so handlers can be tested with
//! `oneshot` and the daemon serves the same router on a socket.
//!
//! Invariant: handlers are thin; they parse, call the store or a worker, and translate
//! the outcome. They never hold SQL or Docker types.

mod error;
mod health;

use std::sync::Arc;

use axum::Router;
use axum::routing::get;

use crate::docker::Engine;
use crate::store::Store;

pub use error::{ApiError, not_found};

/// What every handler may use. Cheap to clone.
#[derive(Clone)]
pub struct AppState {
    pub store: Store,
    pub engine: Arc<dyn Engine>,
}

pub fn router(state: AppState) -> Router {
    Router::new()
        .route("/healthz", get(health::healthz))
        .fallback(error::fallback)
        .with_state(state)
}
