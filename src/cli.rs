//! The command line: `serve` runs the daemon, `rotate-key` re-seals every secret under
//! a new master key, `completions` prints a shell's completion script, and the other
//! subcommands are a client of a running daemon's REST API (see `client`).

use clap::{Args, Parser, Subcommand};

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
    /// and generates the webhook secret. Creates the `admin` account on first start with
    /// the password in DW_ADMIN_PASSWORD, or a generated one printed once in the log.
    /// Stops gracefully on Ctrl-C or SIGTERM.
    Serve,
    /// Generate a new master key and re-seal every stored secret with it, in one
    /// transaction. Stop the daemon first: it holds the data folder's lock.
    RotateKey,
    /// List projects (client of a running daemon).
    Projects {
        #[command(flatten)]
        server: ServerArgs,
    },
    /// List recent deploys, newest first (client).
    Deploys {
        /// Only this project (by name).
        #[arg(long)]
        project: Option<String>,
        /// Only this stage (by name; needs --project).
        #[arg(long, requires = "project")]
        stage: Option<String>,
        /// Only deploys with this status, e.g. `failed`.
        #[arg(long)]
        status: Option<String>,
        /// How many.
        #[arg(long, default_value_t = 20)]
        limit: u32,
        #[command(flatten)]
        server: ServerArgs,
    },
    /// Deploy a tag to a stage (client). With --follow, shows the deploy's log live and
    /// exits non-zero (3) unless the deploy succeeds.
    Deploy {
        /// Project name.
        project: String,
        /// Stage name.
        stage: String,
        /// The image tag to deploy.
        tag: String,
        /// Follow the log until the deploy ends.
        #[arg(long, short)]
        follow: bool,
        /// Start now even outside the stage's deploy windows (else it waits as
        /// `scheduled` for the next one).
        #[arg(long)]
        outside_window: bool,
        #[command(flatten)]
        server: ServerArgs,
    },
    /// Roll a stage back to the tag that was live before the current one (client).
    Rollback {
        /// Project name.
        project: String,
        /// Stage name.
        stage: String,
        /// Follow the log until the deploy ends.
        #[arg(long, short)]
        follow: bool,
        /// Start now even outside the stage's deploy windows (else it waits as
        /// `scheduled` for the next one).
        #[arg(long)]
        outside_window: bool,
        #[command(flatten)]
        server: ServerArgs,
    },
    /// Show a deploy's log (client); --follow streams it until the deploy ends.
    Logs {
        /// The deploy's id (see `deploys`).
        deploy_id: i64,
        #[arg(long, short)]
        follow: bool,
        #[command(flatten)]
        server: ServerArgs,
    },
    /// Manage API tokens (client).
    Token {
        #[command(subcommand)]
        command: TokenCommand,
        #[command(flatten)]
        server: ServerArgs,
    },
    /// Sign in (client): asks for the password (or reads one line from stdin with
    /// --password-stdin), makes an API token named after this host and saves it with the
    /// server's URL, readable only by you, in your config folder
    /// (~/.config/docker-watcher/credentials.json). Every client command then uses it
    /// unless --token or DW_TOKEN is given.
    Login {
        /// Base URL of the daemon.
        #[arg(long, env = "DW_SERVER", default_value = DEFAULT_SERVER)]
        server: String,
        #[arg(long, default_value = "admin")]
        username: String,
        /// Read the password from stdin instead of asking for it.
        #[arg(long)]
        password_stdin: bool,
    },
    /// Sign out (client): revoke the token `login` saved and forget it.
    Logout,
    /// Every stage of every project: the tag it serves, that instance's state and the
    /// last deploy (client).
    Status {
        #[command(flatten)]
        server: ServerArgs,
    },
    /// List instances (the containers of every stage), oldest first (client).
    Instances {
        /// Only this project (by name).
        #[arg(long)]
        project: Option<String>,
        /// Only this stage (by name; needs --project).
        #[arg(long, requires = "project")]
        stage: Option<String>,
        #[command(flatten)]
        server: ServerArgs,
    },
    /// Print a shell completion script, e.g.
    /// `docker-watcher completions bash > ~/.local/share/bash-completion/completions/docker-watcher`.
    Completions { shell: clap_complete::Shell },
    /// Check that the daemon configured here answers GET /healthz (exit 0) or not (exit 1):
    /// the container image's HEALTHCHECK.
    Healthcheck,
    /// Apply a projects file, or a folder of them (client, admin token): shows what will
    /// be created, changed and deleted, and applies it once you confirm. Secret
    /// references (`{ env = "NAME" }`, `{ file = "/path" }`) are read here and sent.
    Apply {
        /// The .toml file, or a folder of them.
        path: std::path::PathBuf,
        /// Apply without asking (for scripts and CI).
        #[arg(long, short)]
        yes: bool,
        /// Also delete registries, notification targets, projects and stages the file
        /// does not name.
        #[arg(long)]
        prune: bool,
        #[command(flatten)]
        server: ServerArgs,
    },
    /// Show what applying a projects file would change, and change nothing (client).
    /// Exit code 0: no changes; 2: changes; 1: the file has errors or the request failed.
    Diff {
        /// The .toml file, or a folder of them.
        path: std::path::PathBuf,
        /// Plan deleting what the file does not name, as `apply --prune` would.
        #[arg(long)]
        prune: bool,
        #[command(flatten)]
        server: ServerArgs,
    },
    /// Write today's registries, notification targets, projects with their stages and
    /// settings as a projects file (client); secrets become references to fill in.
    Export {
        /// Write here instead of standard output.
        #[arg(long, short)]
        output: Option<std::path::PathBuf>,
        #[command(flatten)]
        server: ServerArgs,
    },
    /// Promote what one stage runs to another stage of the project, by digest: the
    /// target runs byte for byte what the source runs (client). With --follow, shows the
    /// log live (through any wait for approval or a deploy window) and exits 3 unless it
    /// succeeds.
    Promote {
        /// Project name.
        project: String,
        /// The stage whose running version to promote.
        from: String,
        /// The stage to deploy it to.
        to: String,
        /// Start even outside the target stage's deploy windows.
        #[arg(long)]
        outside_window: bool,
        #[arg(long, short)]
        follow: bool,
        #[command(flatten)]
        server: ServerArgs,
    },
    /// Approve a deploy waiting for approval (client).
    Approve {
        /// The deploy's id (see `deploys --status awaiting_approval`).
        deploy_id: i64,
        #[command(flatten)]
        server: ServerArgs,
    },
    /// Reject a deploy waiting for approval; it never runs (client).
    Reject {
        /// The deploy's id.
        deploy_id: i64,
        #[command(flatten)]
        server: ServerArgs,
    },
}

/// The daemon's address when neither `--server` nor `DW_SERVER` nor a login says another.
pub const DEFAULT_SERVER: &str = "http://127.0.0.1:8080";

#[derive(Debug, Subcommand)]
pub enum TokenCommand {
    /// Create a named token and print it (shown once).
    Create {
        /// Lowercase letters, digits and dashes, e.g. `ci`.
        name: String,
        /// What the token may do: `read` (look only), `deploy` (read, plus deploy,
        /// redeploy, roll back, poll now: what CI needs) or `admin` (everything).
        #[arg(long, default_value = "deploy", value_parser = ["read", "deploy", "admin"])]
        scope: String,
    },
    /// List tokens (names and last use, never values).
    List,
    /// Revoke a token by id.
    Revoke {
        /// The token's id (see `token list`).
        id: i64,
    },
}

/// Where the daemon is and how to sign in to it.
#[derive(Debug, Clone, Args)]
pub struct ServerArgs {
    /// Base URL of the daemon.
    #[arg(long, env = "DW_SERVER", default_value = DEFAULT_SERVER)]
    pub server: String,
    /// An API token (made in the UI under Settings → API tokens). Without one, the token
    /// `docker-watcher login` saved is used.
    #[arg(long, env = "DW_TOKEN", hide_env_values = true)]
    pub token: Option<String>,
}
