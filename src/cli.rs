//! The command line: `serve` runs the daemon, `rotate-key` re-seals every secret under
//! a new master key. (Client subcommands over the REST API come with the API.)

use clap::{Parser, Subcommand};

use crate::config::ConfigFlags;

/// Continuous deployment for one Docker host: watches registries for new image tags,
/// deploys them stage by stage behind a reverse proxy, health-checks them and rolls back
/// what fails.
#[derive(Debug, Parser)]
#[command(name = "docker-watcher", version, about, long_about = None)]
pub struct Cli {
    #[command(flatten)]
    pub config: ConfigFlags,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the daemon: open the store, connect to Docker, serve the API and /healthz.
    ///
    /// Creates the data folder, the database and a 0600 master key file on first start,
    /// and generates the webhook secret. Stops gracefully on Ctrl-C or SIGTERM.
    Serve,
    /// Generate a new master key and re-seal every stored secret with it, in one
    /// transaction. Stop the daemon first: it holds the data folder's lock.
    RotateKey,
}
