//! The one integration test binary: black-box tests against real parts on 127.0.0.1.

mod support;

mod api;
mod api_deploy;
mod api_headers;
mod auth_scopes;
mod container_policy;
mod daemon;
mod data_folder;
mod deployer;
mod docker_engine;
mod faults_docker;
mod faults_kill;
mod faults_proxy;
mod faults_registry;
mod faults_setup;
mod faults_tags;
mod health;
mod lifecycle_api;
mod npm_daemon;
mod log_injection;
mod login_flood;
mod poller;
mod poller_wake;
mod proxy_caddy;
mod proxy_npm;
mod proxy_pipeline;
mod reconcile_npm;
mod registry_client;
mod registry_support;
mod server_limits;
mod store;
mod tidy;
mod webhook;
mod webhook_payloads;
mod webhook_security;
