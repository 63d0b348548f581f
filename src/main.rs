//! The `docker-watcher` binary: parse the command line, read the configuration, set up
//! logging, and hand over to the library.

use std::process::ExitCode;

use clap::Parser;
use docker_watcher::cli::{Cli, Command};
use docker_watcher::config::{Config, LogFormat};
use docker_watcher::daemon;

fn main() -> ExitCode {
    let cli = Cli::parse();
    let config = match Config::load(&cli.config) {
        Ok(config) => config,
        Err(e) => {
            eprintln!("docker-watcher: {e}");
            return ExitCode::from(2);
        }
    };
    init_logging(&config);
    let result = match cli.command {
        Command::Serve => tokio::runtime::Runtime::new()
            .map_err(anyhow::Error::from)
            .and_then(|runtime| runtime.block_on(daemon::run(config))),
        Command::RotateKey => daemon::rotate_key(&config).map(|count| {
            println!("re-sealed {count} secrets under a new master key");
        }),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            tracing::error!("{e:#}");
            ExitCode::FAILURE
        }
    }
}

fn init_logging(config: &Config) {
    let filter = tracing_subscriber::EnvFilter::new(&config.log_level);
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    match config.log_format {
        LogFormat::Text => builder.init(),
        LogFormat::Json => builder.json().init(),
    }
}
