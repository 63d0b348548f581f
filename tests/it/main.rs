//! The one integration test binary: black-box tests against real parts on 127.0.0.1.

mod support;

mod api;
mod api_deploy;
mod daemon;
mod deployer;
mod docker_engine;
mod domains_api;
mod health;
mod lifecycle_api;
mod npm_daemon;
mod poller;
mod poller_wake;
mod proxy_caddy;
mod proxy_npm;
mod proxy_pipeline;
mod reconcile_npm;
mod registry_client;
mod registry_support;
mod store;
mod tidy;
mod webhook;
mod webhook_payloads;
