//! The one integration test binary: black-box tests against real parts on 127.0.0.1.

mod support;

mod api;
mod api_deploy;
mod auth_scopes;
mod container_policy;
mod daemon;
mod deployer;
mod docker_engine;
mod health;
mod log_injection;
mod login_flood;
mod poller;
mod proxy_caddy;
mod proxy_npm;
mod proxy_pipeline;
mod registry_client;
mod registry_support;
mod store;
mod tidy;
mod webhook;
mod webhook_payloads;
