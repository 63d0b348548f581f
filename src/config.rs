//! How the daemon is started: defaults < optional TOML file < `DW_*` environment < flags.
//!
//! One `Config` is read in `main` and passed down; nothing reads the environment later.
//! A bad value is an error that names the key and where the value came from.
//! The defaults depend on where the daemon runs ([`Placement`]): in a container it listens
//! on `0.0.0.0:8080` and keeps its data in `/data`. Secrets come from `NAME` or, Docker
//! secrets style, from the file `NAME_FILE` names (see [`SECRETS`]).
//! (Installation-wide settings that the UI edits live in the store, not here.)

use std::net::SocketAddr;
use std::path::PathBuf;

use figment::Figment;
use figment::providers::{Env, Format, Serialized, Toml};
use serde::{Deserialize, Serialize};

use crate::placement::Placement;

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
    /// In a container: the Docker network deployed containers join and are reached on by
    /// name (`DW_NETWORK`); the daemon joins it at start. `None` there means the one
    /// network the daemon's container is on (see `placement`).
    pub network: Option<String>,
    /// Where Google publishes the keys of the tokens on signed Pub/Sub pushes; fetched
    /// only when such a push arrives. Another URL suits an installation that mirrors it.
    pub google_keys_url: String,
    /// Password of the admin account made on first start (`DW_ADMIN_PASSWORD` or the file
    /// `DW_ADMIN_PASSWORD_FILE` names, never the config file or a flag, so it does not end
    /// up in shell history or a config backup); `None` generates one and logs it once.
    /// Ignored once the account exists.
    #[serde(skip)]
    pub admin_password: Option<Secret>,
    /// Host or container (`DW_IN_CONTAINER`, set by the image): chooses the defaults and
    /// how deployed containers are reached.
    #[serde(skip)]
    pub placement: Placement,
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
            network: None,
            google_keys_url: crate::google_keys::DEFAULT_KEYS_URL.into(),
            projects: None,
            admin_password: None,
            placement: Placement::Host,
        }
    }
}

impl Config {
    /// The defaults where the daemon runs: on the host 127.0.0.1:8080 and `./data`; in a
    /// container every interface (the container's own network is the fence; publish the
    /// port to choose who reaches it) and `/data`, the image's volume.
    pub fn defaults_for(placement: Placement) -> Config {
        match placement {
            Placement::Host => Config::default(),
            Placement::Container => Config {
                listen: SocketAddr::from(([0, 0, 0, 0], 8080)),
                data_dir: PathBuf::from("/data"),
                placement: Placement::Container,
                ..Config::default()
            },
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
    /// Address to listen on [default: 127.0.0.1:8080, in a container 0.0.0.0:8080] [env: DW_LISTEN]
    #[arg(long, global = true, value_name = "ADDR")]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub listen: Option<String>,
    /// Folder for the database and key file [default: ./data, in a container /data] [env: DW_DATA_DIR]
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
    /// Layers defaults (for where the daemon runs), the TOML file (from `--config` or
    /// `DW_CONFIG`), the `DW_*` environment variables and the flags, then checks what serde
    /// cannot, then reads the [`SECRETS`].
    pub fn load(flags: &ConfigFlags) -> Result<Config, ConfigError> {
        Config::load_for(flags, Placement::from_env())
    }

    /// [`Config::load`] with the defaults of `placement`.
    pub fn load_for(flags: &ConfigFlags, placement: Placement) -> Result<Config, ConfigError> {
        let file = flags
            .config
            .clone()
            .or_else(|| std::env::var_os("DW_CONFIG").map(PathBuf::from));
        let mut figment = Figment::from(Serialized::defaults(Config::defaults_for(placement)));
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
        // configuration of the daemon, and secrets are read apart (below) so they can
        // never come from the config file.
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
        config.placement = placement;
        for (name, field) in SECRETS {
            *field(&mut config) = secret_from_env(name)?;
        }
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
        if !(self.google_keys_url.starts_with("https://")
            || self.google_keys_url.starts_with("http://"))
        {
            return Err(ConfigError(format!(
                "google_keys_url {:?} must start with https:// (or http://)",
                self.google_keys_url
            )));
        }
        if self.data_dir.as_os_str().is_empty() {
            return Err(ConfigError("data_dir must not be empty".into()));
        }
        if self.network.as_deref().is_some_and(str::is_empty) {
            return Err(ConfigError(
                "network must not be empty: name a Docker network or leave it unset".into(),
            ));
        }
        Ok(())
    }
}

/// The variable holding the first admin password.
pub const ADMIN_PASSWORD_ENV: &str = "DW_ADMIN_PASSWORD";

/// A secret of the configuration: its variable, and the field it fills.
type SecretSetting = (&'static str, fn(&mut Config) -> &mut Option<Secret>);

/// Every secret setting, read only from the environment by [`secret_from_env`]: as
/// `NAME`, or from the file `NAME_FILE` names. A new secret setting is one more line here.
pub const SECRETS: &[SecretSetting] = &[(ADMIN_PASSWORD_ENV, |c| &mut c.admin_password)];

/// A secret from the variable `name`, or from the file the variable `<name>_FILE` names
/// (a Docker or systemd secret): both set is an error, one trailing newline of the file
/// is dropped, and an unreadable or empty file is an error naming the variable. An empty
/// `name` counts as unset.
pub fn secret_from_env(name: &str) -> Result<Option<Secret>, ConfigError> {
    let file_var = format!("{name}_FILE");
    let direct = std::env::var_os(name).filter(|v| !v.is_empty());
    let file = std::env::var_os(&file_var).filter(|v| !v.is_empty());
    match (direct, file) {
        (Some(_), Some(_)) => Err(ConfigError(format!(
            "{name} and {file_var} are both set: keep one (the file is the safer place)"
        ))),
        (Some(value), None) => value
            .into_string()
            .map(|v| Some(Secret(v)))
            .map_err(|_| ConfigError(format!("{name} is not valid UTF-8: set it to text"))),
        (None, Some(path)) => {
            let path = PathBuf::from(path);
            let text = std::fs::read_to_string(&path).map_err(|e| {
                ConfigError(format!(
                    "cannot read {file_var} ({}): {e}; mount the secret there or unset {file_var}",
                    path.display()
                ))
            })?;
            let value = text
                .strip_suffix('\n')
                .map(|v| v.strip_suffix('\r').unwrap_or(v))
                .unwrap_or(&text);
            if value.is_empty() {
                return Err(ConfigError(format!(
                    "{file_var} names {}, which is empty: write the secret into it",
                    path.display()
                )));
            }
            Ok(Some(Secret(value.to_string())))
        }
        (None, None) => Ok(None),
    }
}

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
    "network",
    "projects",
    "google_keys_url",
];

#[cfg(test)]
// figment's Jail closures return its own (large) error type; that is its API, not ours.
#[allow(clippy::result_large_err)]
mod tests {
    use super::*;
    use figment::Jail;

    fn load(flags: ConfigFlags) -> Result<Config, String> {
        Config::load_for(&flags, Placement::Host).map_err(|e| e.to_string())
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
    fn in_a_container_it_listens_everywhere_and_keeps_data_in_slash_data() {
        Jail::expect_with(|jail| {
            let config = Config::load_for(&ConfigFlags::default(), Placement::Container)
                .map_err(|e| e.to_string())?;
            assert_eq!(config.listen.to_string(), "0.0.0.0:8080");
            assert_eq!(config.data_dir, PathBuf::from("/data"));
            assert_eq!(config.key_file(), PathBuf::from("/data/master.key"));
            // The environment still wins over the container's defaults.
            jail.set_env("DW_LISTEN", "127.0.0.1:9999");
            jail.set_env("DW_NETWORK", "web");
            let config = Config::load_for(&ConfigFlags::default(), Placement::Container)
                .map_err(|e| e.to_string())?;
            assert_eq!(config.listen.to_string(), "127.0.0.1:9999");
            assert_eq!(config.network.as_deref(), Some("web"));
            Ok(())
        });
    }

    #[test]
    fn every_secret_comes_from_its_variable_or_its_file() {
        for (name, field) in SECRETS {
            let file_var = format!("{name}_FILE");
            Jail::expect_with(|jail| {
                jail.set_env(name, "from-env");
                let mut config = load(ConfigFlags::default())?;
                assert_eq!(
                    field(&mut config).as_ref().map(|s| s.0.as_str()),
                    Some("from-env")
                );
                Ok(())
            });
            Jail::expect_with(|jail| {
                // One trailing newline is what `echo pw > file` leaves; only that one goes.
                jail.create_file("secret", "from file \n\n")?;
                jail.set_env(&file_var, "secret");
                let mut config = load(ConfigFlags::default())?;
                assert_eq!(
                    field(&mut config).as_ref().map(|s| s.0.as_str()),
                    Some("from file \n")
                );
                jail.create_file("crlf", "pw\r\n")?;
                jail.set_env(&file_var, "crlf");
                let mut config = load(ConfigFlags::default())?;
                assert_eq!(
                    field(&mut config).as_ref().map(|s| s.0.as_str()),
                    Some("pw")
                );
                Ok(())
            });
            Jail::expect_with(|jail| {
                jail.create_file("secret", "pw")?;
                jail.set_env(name, "pw");
                jail.set_env(&file_var, "secret");
                let err = load(ConfigFlags::default()).unwrap_err();
                assert!(err.contains(name) && err.contains(&file_var), "{err}");
                assert!(err.contains("both set"), "{err}");
                Ok(())
            });
            Jail::expect_with(|jail| {
                jail.set_env(&file_var, "/nonexistent/secret");
                let err = load(ConfigFlags::default()).unwrap_err();
                assert!(err.contains(&file_var), "{err}");
                assert!(err.contains("/nonexistent/secret"), "{err}");
                assert!(err.contains("cannot read"), "{err}");
                jail.create_file("empty", "\n")?;
                jail.set_env(&file_var, "empty");
                let err = load(ConfigFlags::default()).unwrap_err();
                assert!(err.contains("empty"), "{err}");
                Ok(())
            });
            Jail::expect_with(|_jail| {
                let mut config = load(ConfigFlags::default())?;
                assert_eq!(field(&mut config).as_ref(), None);
                Ok(())
            });
        }
    }

    #[test]
    fn a_secret_never_comes_from_the_config_file() {
        Jail::expect_with(|jail| {
            jail.create_file("dw.toml", "admin_password = \"pw\"\n")?;
            let err = load(ConfigFlags {
                config: Some("dw.toml".into()),
                ..Default::default()
            })
            .unwrap_err();
            assert!(err.contains("admin_password"), "{err}");
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
