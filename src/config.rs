//! How the daemon is started: defaults < optional TOML file < `DW_*` environment < flags.
//!
//! One `Config` is read in `main` and passed down; nothing reads the environment later.
//! A bad value is an error that names the key and where the value came from.
//! (Installation-wide settings that the UI edits live in the store, not here.)

use std::net::SocketAddr;
use std::path::PathBuf;

use figment::Figment;
use figment::providers::{Env, Format, Serialized, Toml};
use serde::{Deserialize, Serialize};

/// Prefix of every environment variable the daemon reads.
pub const ENV_PREFIX: &str = "DW_";

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// Address the HTTP server listens on.
    pub listen: SocketAddr,
    /// Folder for the database and the key file.
    pub data_dir: PathBuf,
    /// Docker endpoint (`unix:///var/run/docker.sock`, `tcp://host:2375`); `None` means
    /// `DOCKER_HOST` or the local socket.
    pub docker_host: Option<String>,
    /// Master key file; `None` means `<data_dir>/master.key`.
    pub key_file: Option<PathBuf>,
    /// URL under which users and registries reach this daemon (for the webhook URL);
    /// `None` means `http://<listen>`.
    pub public_url: Option<String>,
    pub log_format: LogFormat,
    /// A tracing filter: `info`, `debug`, `docker_watcher=debug,tower_http=info`.
    pub log_level: String,
    /// Most connections open at once; more are answered 503 and closed. The last quarter
    /// is kept for signed-in users (see `serve`). Lowered to fit the open-files limit.
    pub max_connections: usize,
    /// Seconds a client has to send a request's headers, and that an idle keep-alive
    /// connection stays open.
    pub header_timeout_secs: u64,
    /// A projects file (or folder of them) to apply at start, whenever it changes and on
    /// SIGHUP; what it names becomes read-only in the UI and the API (managed mode).
    pub projects: Option<PathBuf>,
    /// Password of the admin account made on first start (`DW_ADMIN_PASSWORD` only, never
    /// a file or a flag, so it does not end up in shell history or a config backup);
    /// `None` generates one and logs it once. Ignored once the account exists.
    #[serde(skip)]
    pub admin_password: Option<Secret>,
}

/// A value kept out of `Debug` output and logs.
#[derive(Clone, Default, PartialEq, Eq)]
pub struct Secret(pub String);

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("<redacted>")
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    Text,
    Json,
}

impl Default for Config {
    fn default() -> Config {
        Config {
            listen: SocketAddr::from(([127, 0, 0, 1], 8080)),
            data_dir: PathBuf::from("./data"),
            docker_host: None,
            key_file: None,
            public_url: None,
            log_format: LogFormat::Text,
            log_level: "info".into(),
            max_connections: crate::serve::DEFAULT_MAX_CONNECTIONS,
            header_timeout_secs: crate::serve::DEFAULT_HEADER_TIMEOUT.as_secs(),
            projects: None,
            admin_password: None,
        }
    }
}

/// Values given as command-line flags; `None` leaves the lower layers in charge.
#[derive(Clone, Debug, Default, Serialize, clap::Args)]
pub struct ConfigFlags {
    /// TOML configuration file [env: DW_CONFIG]
    #[arg(long, global = true, value_name = "FILE")]
    #[serde(skip)]
    pub config: Option<PathBuf>,
    /// Address to listen on [default: 127.0.0.1:8080] [env: DW_LISTEN]
    #[arg(long, global = true, value_name = "ADDR")]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub listen: Option<String>,
    /// Folder for the database and key file [default: ./data] [env: DW_DATA_DIR]
    #[arg(long, global = true, value_name = "DIR")]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub data_dir: Option<PathBuf>,
    /// Docker endpoint [default: $DOCKER_HOST or the local socket] [env: DW_DOCKER_HOST]
    #[arg(long, global = true, value_name = "URL")]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub docker_host: Option<String>,
    /// Master key file [default: <data-dir>/master.key] [env: DW_KEY_FILE]
    #[arg(long, global = true, value_name = "FILE")]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub key_file: Option<PathBuf>,
    /// Public base URL of this daemon, used in the webhook URL [env: DW_PUBLIC_URL]
    #[arg(long, global = true, value_name = "URL")]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub public_url: Option<String>,
    /// Log format [default: text] [env: DW_LOG_FORMAT]
    #[arg(long, global = true, value_enum)]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub log_format: Option<LogFormat>,
    /// Log filter, e.g. `info` or `docker_watcher=debug` [default: info] [env: DW_LOG_LEVEL]
    #[arg(long, global = true, value_name = "FILTER")]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub log_level: Option<String>,
    /// Projects file or folder to apply and keep applied (managed mode) [env: DW_PROJECTS]
    #[arg(long, global = true, value_name = "FILE")]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub projects: Option<PathBuf>,
}

/// A configuration value that could not be used, naming the key and its source.
#[derive(Debug, thiserror::Error)]
#[error("configuration: {0}")]
pub struct ConfigError(String);

impl Config {
    /// Layers defaults, the TOML file (from `--config` or `DW_CONFIG`), the `DW_*`
    /// environment variables and the flags, then checks what serde cannot.
    pub fn load(flags: &ConfigFlags) -> Result<Config, ConfigError> {
        let file = flags
            .config
            .clone()
            .or_else(|| std::env::var_os("DW_CONFIG").map(PathBuf::from));
        let mut figment = Figment::from(Serialized::defaults(Config::default()));
        if let Some(file) = &file {
            if !file.exists() {
                return Err(ConfigError(format!(
                    "config file {} does not exist",
                    file.display()
                )));
            }
            figment = figment.merge(Toml::file_exact(file));
        }
        // Only the keys we know: the CLI client's DW_SERVER and DW_TOKEN are not
        // configuration of the daemon, and the admin password is read apart (below) so
        // it can never come from a file.
        figment = figment
            .merge(Env::prefixed(ENV_PREFIX).only(ENV_KEYS))
            .merge(Serialized::globals(flags));
        let mut config: Config = figment.extract().map_err(|e| {
            ConfigError(
                e.into_iter()
                    .map(|e| e.to_string())
                    .collect::<Vec<_>>()
                    .join("; "),
            )
        })?;
        config.validate()?;
        config.admin_password = std::env::var(ADMIN_PASSWORD_ENV)
            .ok()
            .filter(|p| !p.is_empty())
            .map(Secret);
        Ok(config)
    }

    /// The key file in use.
    pub fn key_file(&self) -> PathBuf {
        self.key_file
            .clone()
            .unwrap_or_else(|| self.data_dir.join("master.key"))
    }

    /// Base URL for links shown to people and registries (no trailing slash).
    pub fn public_url(&self) -> String {
        match &self.public_url {
            Some(url) => url.trim_end_matches('/').to_string(),
            None => format!("http://{}", self.listen),
        }
    }

    fn validate(&self) -> Result<(), ConfigError> {
        if let Err(e) = tracing_subscriber::EnvFilter::try_new(&self.log_level) {
            return Err(ConfigError(format!(
                "log_level {:?} is not a valid filter ({e}); try `info` or `docker_watcher=debug`",
                self.log_level
            )));
        }
        if let Some(url) = &self.public_url
            && !(url.starts_with("http://") || url.starts_with("https://"))
        {
            return Err(ConfigError(format!(
                "public_url {url:?} must start with http:// or https://"
            )));
        }
        if self.max_connections < 4 || self.header_timeout_secs == 0 {
            return Err(ConfigError(
                "max_connections must be at least 4 and header_timeout_secs at least 1".into(),
            ));
        }
        if self.data_dir.as_os_str().is_empty() {
            return Err(ConfigError("data_dir must not be empty".into()));
        }
        Ok(())
    }
}

/// The variable holding the first admin password.
pub const ADMIN_PASSWORD_ENV: &str = "DW_ADMIN_PASSWORD";

/// The `DW_*` variables that configure the daemon, without the prefix.
const ENV_KEYS: &[&str] = &[
    "listen",
    "max_connections",
    "header_timeout_secs",
    "data_dir",
    "docker_host",
    "key_file",
    "public_url",
    "log_format",
    "log_level",
    "projects",
];

#[cfg(test)]
// figment's Jail closures return its own (large) error type; that is its API, not ours.
#[allow(clippy::result_large_err)]
mod tests {
    use super::*;
    use figment::Jail;

    fn load(flags: ConfigFlags) -> Result<Config, String> {
        Config::load(&flags).map_err(|e| e.to_string())
    }

    #[test]
    fn defaults_need_no_configuration() {
        Jail::expect_with(|_jail| {
            let config = load(ConfigFlags::default()).map_err(|e| e.to_string())?;
            assert_eq!(config.listen.to_string(), "127.0.0.1:8080");
            assert_eq!(config.data_dir, PathBuf::from("./data"));
            assert_eq!(config.key_file(), PathBuf::from("./data/master.key"));
            assert_eq!(config.log_format, LogFormat::Text);
            Ok(())
        });
    }

    #[test]
    fn file_then_env_then_flags_win_in_that_order() {
        Jail::expect_with(|jail| {
            jail.create_file(
                "dw.toml",
                "listen = \"127.0.0.1:9000\"\ndata_dir = \"/tmp/from-file\"\nlog_level = \"debug\"\n",
            )?;
            jail.set_env("DW_CONFIG", "dw.toml");
            jail.set_env("DW_DATA_DIR", "/tmp/from-env");
            jail.set_env("DW_LOG_FORMAT", "json");
            let config = load(ConfigFlags {
                log_format: Some(LogFormat::Text),
                ..Default::default()
            })
            .map_err(|e| e.to_string())?;
            assert_eq!(
                config.listen.to_string(),
                "127.0.0.1:9000",
                "file beats default"
            );
            assert_eq!(
                config.data_dir,
                PathBuf::from("/tmp/from-env"),
                "env beats file"
            );
            assert_eq!(config.log_format, LogFormat::Text, "flag beats env");
            assert_eq!(config.log_level, "debug");
            Ok(())
        });
    }

    #[test]
    fn bad_value_names_the_key_and_its_source() {
        Jail::expect_with(|jail| {
            jail.set_env("DW_LISTEN", "not-an-address");
            let err = load(ConfigFlags::default()).unwrap_err();
            assert!(err.to_lowercase().contains("\"listen\""), "{err}");
            assert!(err.contains("DW_"), "{err}");
            Ok(())
        });
        Jail::expect_with(|jail| {
            jail.create_file("dw.toml", "log_format = \"yaml\"\n")?;
            let err = load(ConfigFlags {
                config: Some("dw.toml".into()),
                ..Default::default()
            })
            .unwrap_err();
            assert!(err.contains("log_format"), "{err}");
            assert!(err.contains("dw.toml"), "{err}");
            Ok(())
        });
        Jail::expect_with(|_jail| {
            let err = load(ConfigFlags {
                log_level: Some("docker_watcher=loud".into()),
                ..Default::default()
            })
            .unwrap_err();
            assert!(err.contains("log_level"), "{err}");
            Ok(())
        });
    }

    #[test]
    fn unknown_key_in_file_is_an_error() {
        Jail::expect_with(|jail| {
            jail.create_file("dw.toml", "listn = \"127.0.0.1:1\"\n")?;
            let err = load(ConfigFlags {
                config: Some("dw.toml".into()),
                ..Default::default()
            })
            .unwrap_err();
            assert!(err.contains("listn"), "{err}");
            Ok(())
        });
    }
}
