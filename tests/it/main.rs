//! The one integration test binary: black-box tests against real parts on 127.0.0.1.

mod support;

mod docker_engine;
mod health;
mod registry_support;
