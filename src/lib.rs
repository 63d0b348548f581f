//! docker-watcher: a continuous-deployment daemon for one Docker host.
//!
//! Registries are watched (webhooks first, polling as the fallback); a new tag that
//! matches a project's stage is pulled, started, health-checked, routed through a
//! reverse proxy and kept, or rolled back. See ARCHITECTURE.md for the code map.

pub mod api;
pub mod audit;
pub mod cli;
pub mod client;
pub mod config;
pub mod container_policy;
pub mod crypto;
pub mod daemon;
pub mod deployer;
pub mod docker;
pub mod errors;
pub mod google_keys;
pub mod health;
pub mod healthcheck;
pub mod http_client;
pub mod image_ref;
pub mod intake;
pub mod logging;
pub mod managed_mode;
pub mod memory;
pub mod metrics;
pub mod notify;
pub mod placement;
pub mod poller;
pub mod projects_file;
pub mod proxy;
pub mod registry;
pub mod release;
pub mod retention;
pub mod serve;
pub mod store;
pub mod subdomain;
pub mod tags;
pub mod trigger;
pub mod webhook;
