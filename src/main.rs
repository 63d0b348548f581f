//! The `docker-watcher` binary: parse the command line; for `serve` and `rotate-key`
//! read the configuration, set up logging and hand over to the library; the other
//! subcommands are the API client (`client`), which needs neither.

use std::process::ExitCode;

use clap::Parser;
use docker_watcher::cli::{Cli, Command};
use docker_watcher::config::{Config, ConfigFlags};
use docker_watcher::{client, daemon};

fn main() -> ExitCode {
    let cli = Cli::parse();
    match cli.command {
        Command::Serve => run_daemon(&cli.config, |config| {
            tokio::runtime::Runtime::new()
                .map_err(anyhow::Error::from)
                .and_then(|runtime| runtime.block_on(daemon::run(config)))
        }),
        Command::RotateKey => run_daemon(&cli.config, |config| {
            daemon::rotate_key(&config).map(|count| {
                println!("re-sealed {count} secrets under a new master key");
            })
        }),
        Command::Healthcheck => match Config::load(&cli.config) {
            Ok(config) if docker_watcher::healthcheck::run(&config) => ExitCode::SUCCESS,
            Ok(_) => ExitCode::FAILURE,
            Err(e) => {
                println!("unhealthy: {e}");
                ExitCode::FAILURE
            }
        },
        other => client::run(other),
    }
}

fn run_daemon(flags: &ConfigFlags, run: impl FnOnce(Config) -> anyhow::Result<()>) -> ExitCode {
    let config = match Config::load(flags) {
        Ok(config) => config,
        Err(e) => {
            eprintln!("docker-watcher: {e}");
            return ExitCode::from(2);
        }
    };
    docker_watcher::logging::init(&config);
    match run(config) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            tracing::error!("{e:#}");
            ExitCode::FAILURE
        }
    }
}
