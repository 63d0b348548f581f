//! Start-up and shutdown of the daemon: lock the data folder, load the master key (and
//! finish a rotation a crash interrupted), open the store, connect to Docker, make sure
//! the webhook secret exists, then serve until told to stop.
//!
//! `start` returns a handle with the bound address, so tests run the real daemon in
//! process on port 0; `main` calls `run`, which adds the signal handling.

use std::fs::File;
use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;

use anyhow::{Context, bail};
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use crate::api::{self, AppState, LoginLimiter, WebConfig};
use crate::config::Config;
use crate::crypto::{KeyFile, MasterKey, Sealer};
use crate::deployer::{DeployEvents, Deployer};
use crate::docker::{BollardEngine, Engine};
use crate::google_keys::GoogleKeys;
use crate::intake::{EngineInspector, Intake};
use crate::notify::HttpNotifier;
use crate::poller::Poller;
use crate::proxy;
use crate::serve;
use crate::store::Store;

/// Name of the lock file that keeps two daemons (or a daemon and `rotate-key`) from
/// using one data folder at once.
pub const LOCK_FILE: &str = "docker-watcher.lock";

/// A running daemon.
pub struct Daemon {
    pub addr: SocketAddr,
    pub store: Store,
    pub deployer: Deployer,
    pub poller: Arc<Poller>,
    notifier: HttpNotifier,
    shutdown: CancellationToken,
    server: JoinHandle<std::io::Result<()>>,
    poll_loop: JoinHandle<()>,
    _lock: File,
}

/// How long shutdown waits for notifications still being sent.
const NOTIFY_DRAIN: std::time::Duration = std::time::Duration::from_secs(5);

impl Daemon {
    /// Stops accepting connections, lets running requests finish, and returns.
    /// Running deploys are finished before it returns: a deploy stopped half-way would
    /// leave a container the next start has to clean up.
    pub async fn shutdown(self) -> anyhow::Result<()> {
        self.shutdown.cancel();
        self.server.await.context("server task")??;
        let _ = self.poll_loop.await;
        if !self.deployer.is_idle() {
            tracing::info!("waiting for running deploys to finish");
        }
        self.deployer.drain().await;
        self.notifier.drain(NOTIFY_DRAIN).await;
        tracing::info!("stopped");
        Ok(())
    }

    /// Resolves when the server stops by itself (it should not).
    pub async fn wait(&mut self) -> anyhow::Result<()> {
        (&mut self.server).await.context("server task")??;
        Ok(())
    }
}

/// Starts the daemon on `config.listen` and returns once it accepts connections.
pub async fn start(config: Config) -> anyhow::Result<Daemon> {
    create_data_dir(&config.data_dir)?;
    let lock = lock_data_dir(&config.data_dir)?;
    // Docker's answer (and the API version negotiated with it) comes back while the store
    // opens and migrates: start-up waits for the slower of the two, not for both.
    let engine: Arc<dyn Engine> = Arc::new(
        BollardEngine::connect(config.docker_host.as_deref()).context("invalid Docker endpoint")?,
    );
    let version = tokio::spawn({
        let engine = engine.clone();
        async move { engine.version().await }
    });
    let (sealer, rotation_pending) = load_sealer(&config)?;
    let mut store = Store::open(&config.data_dir, sealer.clone())
        .with_context(|| format!("cannot open the store in {}", config.data_dir.display()))?;
    let store_had_users = store.count_users()? > 0;
    if rotation_pending {
        tracing::warn!("finishing a key rotation that was interrupted");
        complete_rotation(&config, &mut store, sealer)?;
    }

    match version.await.context("docker version task")? {
        Ok(v) => tracing::info!(version = %v.version, api = %v.api_version, "connected to docker"),
        Err(e) => tracing::warn!("docker is unreachable, will keep trying: {e}"),
    }
    crate::placement::settle(
        config.placement,
        config.network.as_deref(),
        engine.as_ref(),
        &store,
    )
    .await;

    crate::metrics::install();
    match api::ensure_admin(&store, config.admin_password.as_ref().map(|p| p.0.as_str()))
        .context("cannot create the admin account")?
    {
        Some(password) => tracing::warn!(
            "created the admin account; sign in as `{}` with password {password} (shown once: \
             change it in the UI or with PUT /api/auth/password, or set DW_ADMIN_PASSWORD \
             before the first start)",
            api::auth::ADMIN_USERNAME
        ),
        None if config.admin_password.is_some() && !store_had_users => tracing::info!(
            "created the admin account `{}` with the password from DW_ADMIN_PASSWORD",
            api::auth::ADMIN_USERNAME
        ),
        None => {}
    }

    if config.public_url.is_none() && config.listen.ip().is_unspecified() {
        tracing::warn!(
            "DW_PUBLIC_URL is not set, so the webhook URL below names {}, which registries cannot reach: set DW_PUBLIC_URL to the address they reach docker-watcher under (e.g. https://deploy.example.com)",
            config.public_url()
        );
    }
    let (secret, generated) = store.ensure_webhook_secret()?;
    if generated {
        // Shown once, like a generated password: the registry needs the full URL.
        tracing::info!(
            "webhook URL (point your registry here; shown once, also in the UI): {}/api/webhook/{secret}",
            config.public_url()
        );
    } else {
        tracing::info!(
            "webhook URL: {}/api/webhook/<secret> (see Settings in the UI)",
            config.public_url()
        );
    }

    let notifier = HttpNotifier::new(store.clone(), Some(config.public_url()));
    let deployer = Deployer::new(
        store.clone(),
        engine.clone(),
        proxy::connect_saved(&store),
        Arc::new(notifier.clone()),
        DeployEvents::default(),
    )?;
    let report = deployer.reconcile().await;
    if !report.interrupted_deploys.is_empty() || !report.removed_containers.is_empty() {
        tracing::warn!(
            interrupted_deploys = ?report.interrupted_deploys,
            removed_containers = ?report.removed_containers,
            "cleaned up after an unclean stop"
        );
    }
    let poller = Arc::new(
        Poller::new(store.clone(), Arc::new(deployer.clone()))
            .with_notifier(Arc::new(notifier.clone())),
    );
    let intake = Intake::new(
        store.clone(),
        Arc::new(deployer.clone()),
        Arc::new(EngineInspector {
            engine: engine.clone(),
        }),
    );
    let shutdown = CancellationToken::new();
    let state = AppState {
        store: store.clone(),
        engine,
        deployer: deployer.clone(),
        intake,
        poller: poller.clone(),
        notifier: notifier.clone(),
        web: Arc::new(WebConfig::new(config.public_url())),
        login_limiter: Arc::new(LoginLimiter::default()),
        google_keys: Arc::new(GoogleKeys::new(config.google_keys_url.clone())),
        shutdown: shutdown.clone(),
    };
    if let Some(path) = &config.projects {
        crate::managed_mode::start(state.clone(), path.clone(), shutdown.clone()).await;
    }
    let listener = tokio::net::TcpListener::bind(config.listen)
        .await
        .with_context(|| format!("cannot listen on {}", config.listen))?;
    let addr = listener.local_addr()?;
    let poll_loop = tokio::spawn(poller.clone().run(shutdown.clone()));
    tokio::spawn(crate::retention::run(store.clone(), shutdown.clone()));
    tokio::spawn(notifier.clone().run(shutdown.clone()));
    tokio::spawn(deployer.clone().heal_loop(shutdown.clone()));
    tokio::spawn(deployer.clone().release_loop(shutdown.clone()));
    tokio::spawn(crate::memory::release_freed_periodically(shutdown.clone()));
    let limits = serve::Limits {
        max_connections: config.max_connections,
        header_timeout: std::time::Duration::from_secs(config.header_timeout_secs),
    }
    .fitted_to(serve::raise_open_files_limit());
    let server = tokio::spawn(serve::serve(
        listener,
        api::router(state),
        limits,
        shutdown.clone(),
    ));
    tracing::info!(
        max_connections = limits.max_connections,
        "listening on http://{addr}"
    );
    Ok(Daemon {
        addr,
        store,
        deployer,
        poller,
        notifier,
        shutdown,
        server,
        poll_loop,
        _lock: lock,
    })
}

/// Runs until SIGINT or SIGTERM, then shuts down gracefully.
pub async fn run(config: Config) -> anyhow::Result<()> {
    // Before anything starts: the server answers /healthz before `start` returns, and a
    // SIGTERM then (an orchestrator stopping a daemon as soon as it is healthy) killed it
    // without a graceful shutdown while no handler was installed yet.
    let stop = shutdown_signal()?;
    let mut daemon = start(config).await?;
    tokio::select! {
        result = daemon.wait() => return result,
        () = stop => tracing::info!("shutting down"),
    }
    daemon.shutdown().await
}

/// Re-seals every secret under a fresh key. Safe to re-run after a crash: the new key is
/// written to `<key>.next` first, the store is re-sealed in one transaction, and only
/// then does `.next` replace the key file.
pub fn rotate_key(config: &Config) -> anyhow::Result<usize> {
    if !config.data_dir.exists() {
        bail!(
            "no data folder at {}: nothing to rotate",
            config.data_dir.display()
        );
    }
    let _lock = lock_data_dir(&config.data_dir)?;
    let key_file = KeyFile::new(config.key_file());
    if !key_file.path().exists() {
        bail!(
            "no key file at {}: nothing to rotate (start the daemon once first)",
            key_file.path().display()
        );
    }
    if key_file.load_next()?.is_none() {
        key_file.write_next(&MasterKey::generate())?;
    }
    let (sealer, _) = load_sealer(config)?;
    let mut store = Store::open(&config.data_dir, sealer.clone())?;
    complete_rotation(config, &mut store, sealer)
}

/// The sealer for the key file, and whether a rotation was interrupted (a `<key>.next`
/// exists): then the sealer seals with the new key and still opens the old one.
fn load_sealer(config: &Config) -> anyhow::Result<(Sealer, bool)> {
    let key_file = KeyFile::new(config.key_file());
    let (key, created) = key_file.load_or_create()?;
    if created {
        tracing::info!(path = %key_file.path().display(), "created master key file (mode 0600); back it up: without it the stored secrets cannot be read");
    }
    Ok(match key_file.load_next()? {
        Some(next) => (Sealer::with_previous(next, key), true),
        None => (Sealer::new(key), false),
    })
}

/// Re-seals everything under the sealer's current key, then makes `.next` the key file.
/// The transaction makes the store all-old or all-new, so this is safe to repeat.
fn complete_rotation(config: &Config, store: &mut Store, sealer: Sealer) -> anyhow::Result<usize> {
    let count = store.reseal_all(sealer)?;
    KeyFile::new(config.key_file()).promote_next()?;
    Ok(count)
}

/// The data folder holds the database and usually the key: only its owner may enter,
/// and only its owner may read the files in it, whatever the umask.
fn create_data_dir(data_dir: &Path) -> anyhow::Result<()> {
    use std::os::unix::fs::DirBuilderExt;
    if !data_dir.exists() {
        std::fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(data_dir)
            .with_context(|| format!("cannot create data folder {}", data_dir.display()))?;
        // `mode` is masked by the umask; the folder itself must be exactly 0700.
        set_mode(data_dir, 0o700)?;
    }
    // SQLite gives the WAL and shared-memory files the database file's mode, so creating
    // the database file 0600 before SQLite does keeps all three private.
    let database = data_dir.join(crate::store::DATABASE_FILE);
    if !database.exists() {
        private_file(&database)?;
    }
    warn_if_open_to_others(data_dir);
    Ok(())
}

/// Warns about the data folder or a file in it that group or others may use: they could
/// read the database (tokens, sealed secrets) or the key. Not refused, so an upgrade from
/// a version that made them wider still starts; the message says how to fix it.
fn warn_if_open_to_others(data_dir: &Path) {
    use std::os::unix::fs::PermissionsExt;
    let database = crate::store::DATABASE_FILE;
    let mut paths = vec![data_dir.to_path_buf()];
    for name in [
        database.to_string(),
        format!("{database}-wal"),
        format!("{database}-shm"),
        LOCK_FILE.to_string(),
    ] {
        paths.push(data_dir.join(name));
    }
    for path in paths {
        let Ok(metadata) = std::fs::metadata(&path) else {
            continue;
        };
        let mode = metadata.permissions().mode() & 0o777;
        if mode & 0o077 != 0 {
            let wanted = if metadata.is_dir() { "700" } else { "600" };
            tracing::warn!(
                "{} has mode {mode:o}, so other users on this host may read it; run `chmod {wanted} {}`",
                path.display(),
                path.display()
            );
        }
    }
}

/// Creates (or opens) `path` readable and writable by its owner only.
fn private_file(path: &Path) -> anyhow::Result<File> {
    use std::os::unix::fs::OpenOptionsExt;
    let file = std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .mode(0o600)
        .open(path)
        .with_context(|| format!("cannot create {}", path.display()))?;
    Ok(file)
}

fn set_mode(path: &Path, mode: u32) -> anyhow::Result<()> {
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode))
        .with_context(|| format!("cannot set the mode of {}", path.display()))
}

fn lock_data_dir(data_dir: &Path) -> anyhow::Result<File> {
    let path = data_dir.join(LOCK_FILE);
    let file = private_file(&path)?;
    match file.try_lock() {
        Ok(()) => Ok(file),
        Err(std::fs::TryLockError::WouldBlock) => bail!(
            "data folder {} is in use by another docker-watcher process; stop it first",
            data_dir.display()
        ),
        Err(std::fs::TryLockError::Error(e)) => {
            Err(e).with_context(|| format!("cannot lock {}", path.display()))
        }
    }
}

/// Waits for SIGINT or SIGTERM. The handlers are installed when this is called, not when
/// the future is first polled, so a signal arriving while the daemon starts is caught.
fn shutdown_signal() -> anyhow::Result<impl std::future::Future<Output = ()>> {
    use tokio::signal::unix::{SignalKind, signal};
    let mut interrupt = signal(SignalKind::interrupt()).context("cannot handle SIGINT")?;
    let mut terminate = signal(SignalKind::terminate()).context("cannot handle SIGTERM")?;
    Ok(async move {
        tokio::select! {
            _ = interrupt.recv() => {},
            _ = terminate.recv() => {},
        }
    })
}
