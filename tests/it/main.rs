//! The one integration test binary: black-box tests against real parts on 127.0.0.1.

mod support;

mod daemon;
mod proxy_caddy;
mod proxy_npm;
mod registry_support;
mod store;
mod tidy;
