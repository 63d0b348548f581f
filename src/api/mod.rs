//! The HTTP surface: `router(state)` builds every route, so handlers can be tested with
//! `oneshot` and the daemon serves the same router on a socket.
//!
//! Invariant: handlers are thin; they parse, call the store or a worker, and translate
//! the outcome. They never hold SQL or Docker types.

mod error;
mod health;
mod ui;
mod webhook;

use std::sync::Arc;

use axum::Router;
use axum::extract::DefaultBodyLimit;
use axum::routing::{get, post};

use crate::deployer::Deployer;
use crate::docker::Engine;
use crate::intake::Intake;
use crate::poller::Poller;
use crate::store::Store;

pub use error::{ApiError, not_found};

/// What every handler may use. Cheap to clone.
#[derive(Clone)]
pub struct AppState {
    pub store: Store,
    pub engine: Arc<dyn Engine>,
    pub deployer: Deployer,
    pub intake: Intake,
    pub poller: Arc<Poller>,
}

pub fn router(state: AppState) -> Router {
    Router::new()
        .route("/healthz", get(health::healthz))
        .route(
            "/api/webhook/{secret}",
            post(webhook::receive).layer(DefaultBodyLimit::max(webhook::BODY_LIMIT)),
        )
        .fallback(ui::serve)
        .with_state(state)
}
