//! Settings: the single row of installation-wide configuration that the UI edits
//! (as opposed to `config`, which is how the daemon itself is started).

use std::time::Duration;

use rusqlite::Row;

use super::{SealedColumn, Store, StoreResult, json_column, now, parse_column, text_enum};

pub(super) const WEBHOOK_SECRET: SealedColumn = SealedColumn {
    table: "settings",
    column: "webhook_secret_sealed",
};
pub(super) const WEBHOOK_SIGNING_SECRET: SealedColumn = SealedColumn {
    table: "settings",
    column: "webhook_signing_secret_sealed",
};
pub(super) const PROXY_SECRET: SealedColumn = SealedColumn {
    table: "settings",
    column: "proxy_secret_sealed",
};

text_enum! {
    pub enum ProxyKind {
        None => "none",
        Npm => "npm",
        Caddy => "caddy",
        Traefik => "traefik",
    }
}

text_enum! {
    /// How the daemon reaches a container (health checks, proxy upstreams): through a
    /// port published on 127.0.0.1, or by container name on a shared Docker network.
    pub enum Reachability {
        Loopback => "loopback",
        Network => "network",
    }
}

/// Settings as read. Secrets show only whether they are set.
#[derive(Clone, Debug, PartialEq)]
pub struct Settings {
    pub base_domain: String,
    pub stage_subdomain_pattern: String,
    pub instance_subdomain_pattern: String,
    pub poll_interval: Duration,
    pub poll_cron: Option<String>,
    pub has_webhook_secret: bool,
    pub has_webhook_signing_secret: bool,
    pub auto_create_projects: bool,
    pub proxy_kind: ProxyKind,
    pub proxy_url: Option<String>,
    pub proxy_username: Option<String>,
    pub has_proxy_secret: bool,
    /// `None`, `new` (Let's Encrypt) or an existing certificate id.
    pub proxy_certificate: Option<String>,
    pub proxy_force_ssl: bool,
    /// Addresses docker-watcher's own server in Caddy listens on, comma-separated
    /// (`None` means `:80`).
    pub proxy_listen: Option<String>,
    pub reachability: Reachability,
    pub reach_network: Option<String>,
    pub health_interval: Duration,
    pub health_timeout: Duration,
    pub health_retries: u32,
    pub health_start_period: Duration,
    /// Host folders deployed containers may bind-mount (see `container_policy`).
    pub allowed_bind_paths: Vec<String>,
    /// Whether deployed containers may use `network: host`.
    pub allow_host_network: bool,
    /// Webhook signing, auto-create rate and retention; its own struct and columns.
    pub limits: WebhookLimits,
}

/// What webhooks may cost, and how long their traces are kept.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct WebhookLimits {
    /// With a signing secret set, still accept Docker Hub pushes (Docker Hub cannot sign).
    pub allow_unsigned_dockerhub: bool,
    /// New projects auto-create may make per minute; later unknown images are ignored.
    pub auto_create_per_minute: u32,
    /// Webhook events older than this many days are pruned…
    pub webhook_event_retention_days: u32,
    /// …and beyond this many, the oldest.
    pub webhook_event_max_count: u32,
    /// Logs of finished deploys older than this many days are pruned…
    pub deploy_log_retention_days: u32,
    /// …and of deploys beyond this many newest per stage.
    pub deploy_logs_per_stage: u32,
    /// Audit log entries older than this many days are pruned.
    pub audit_retention_days: u32,
    /// With a signing secret set, still accept Quay pushes (Quay cannot sign either).
    pub allow_unsigned_quay: bool,
    /// Where JFrog Artifactory's repository keys are pulled from, `{repo_key}` standing
    /// for the key (`acme.jfrog.io/{repo_key}`); `None`: the webhook's origin host and
    /// the key as the first path segment.
    pub jfrog_image_host: Option<String>,
}

impl Default for WebhookLimits {
    /// The column defaults of migrations 003, 008 and 010.
    fn default() -> WebhookLimits {
        WebhookLimits {
            allow_unsigned_dockerhub: false,
            auto_create_per_minute: 10,
            webhook_event_retention_days: 30,
            webhook_event_max_count: 10_000,
            deploy_log_retention_days: 90,
            deploy_logs_per_stage: 50,
            audit_retention_days: 365,
            allow_unsigned_quay: false,
            jfrog_image_host: None,
        }
    }
}

/// Fields left `None` keep their value; `Some(None)` clears an optional one.
#[derive(Clone, Debug, Default)]
pub struct SettingsUpdate {
    pub base_domain: Option<String>,
    pub stage_subdomain_pattern: Option<String>,
    pub instance_subdomain_pattern: Option<String>,
    pub poll_interval: Option<Duration>,
    pub poll_cron: Option<Option<String>>,
    pub webhook_signing_secret: Option<Option<String>>,
    pub auto_create_projects: Option<bool>,
    pub proxy_kind: Option<ProxyKind>,
    pub proxy_url: Option<Option<String>>,
    pub proxy_username: Option<Option<String>>,
    pub proxy_secret: Option<Option<String>>,
    pub proxy_certificate: Option<Option<String>>,
    pub proxy_force_ssl: Option<bool>,
    pub proxy_listen: Option<Option<String>>,
    pub reachability: Option<Reachability>,
    pub reach_network: Option<Option<String>>,
    pub health_interval: Option<Duration>,
    pub health_timeout: Option<Duration>,
    pub health_retries: Option<u32>,
    pub health_start_period: Option<Duration>,
    /// Replaces all of them when set.
    pub limits: Option<WebhookLimits>,
    pub allowed_bind_paths: Option<Vec<String>>,
    pub allow_host_network: Option<bool>,
}

const COLUMNS: &str = "base_domain, stage_subdomain_pattern, instance_subdomain_pattern,
    poll_interval_secs, poll_cron, webhook_secret_sealed IS NOT NULL,
    webhook_signing_secret_sealed IS NOT NULL, auto_create_projects, proxy_kind, proxy_url,
    proxy_username, proxy_secret_sealed IS NOT NULL, proxy_certificate, proxy_force_ssl,
    reachability, reach_network, health_interval_ms, health_timeout_ms, health_retries,
    health_start_period_ms, proxy_listen, allowed_bind_paths_json, allow_host_network";

fn from_row(row: &Row<'_>) -> rusqlite::Result<Settings> {
    Ok(Settings {
        base_domain: row.get(0)?,
        stage_subdomain_pattern: row.get(1)?,
        instance_subdomain_pattern: row.get(2)?,
        poll_interval: Duration::from_secs(row.get::<_, i64>(3)?.max(0).unsigned_abs()),
        poll_cron: row.get(4)?,
        has_webhook_secret: row.get(5)?,
        has_webhook_signing_secret: row.get(6)?,
        auto_create_projects: row.get(7)?,
        proxy_kind: parse_column(row.get(8)?)?,
        proxy_url: row.get(9)?,
        proxy_username: row.get(10)?,
        has_proxy_secret: row.get(11)?,
        proxy_certificate: row.get(12)?,
        proxy_force_ssl: row.get(13)?,
        reachability: parse_column(row.get(14)?)?,
        reach_network: row.get(15)?,
        health_interval: super::from_millis(row.get(16)?),
        health_timeout: super::from_millis(row.get(17)?),
        health_retries: row.get(18)?,
        health_start_period: super::from_millis(row.get(19)?),
        proxy_listen: row.get(20)?,
        allowed_bind_paths: json_column(row.get(21)?)?,
        allow_host_network: row.get(22)?,
        limits: WebhookLimits::default(),
    })
}

const LIMIT_COLUMNS: &str = "allow_unsigned_dockerhub, auto_create_per_minute,
    webhook_event_retention_days, webhook_event_max_count, deploy_log_retention_days,
    deploy_logs_per_stage, allow_unsigned_quay, jfrog_image_host, audit_retention_days";

fn limits_from_row(row: &Row<'_>) -> rusqlite::Result<WebhookLimits> {
    Ok(WebhookLimits {
        allow_unsigned_dockerhub: row.get(0)?,
        auto_create_per_minute: row.get(1)?,
        webhook_event_retention_days: row.get(2)?,
        webhook_event_max_count: row.get(3)?,
        deploy_log_retention_days: row.get(4)?,
        deploy_logs_per_stage: row.get(5)?,
        allow_unsigned_quay: row.get(6)?,
        jfrog_image_host: row.get(7)?,
        audit_retention_days: row.get(8)?,
    })
}

fn millis(d: Duration) -> i64 {
    i64::try_from(d.as_millis()).unwrap_or(i64::MAX)
}

impl Store {
    pub fn settings(&self) -> StoreResult<Settings> {
        let conn = self.conn();
        let mut settings = conn.query_row(
            &format!("SELECT {COLUMNS} FROM settings WHERE id = 1"),
            [],
            from_row,
        )?;
        settings.limits = conn.query_row(
            &format!("SELECT {LIMIT_COLUMNS} FROM settings WHERE id = 1"),
            [],
            limits_from_row,
        )?;
        Ok(settings)
    }

    pub fn update_settings(&self, update: &SettingsUpdate) -> StoreResult<Settings> {
        let current = self.settings()?;
        {
            let mut conn = self.conn();
            let tx = conn.transaction()?;
            tx.execute(
                "UPDATE settings SET base_domain = ?1, stage_subdomain_pattern = ?2,
                    instance_subdomain_pattern = ?3, poll_interval_secs = ?4, poll_cron = ?5,
                    auto_create_projects = ?6, proxy_kind = ?7, proxy_url = ?8, proxy_username = ?9,
                    proxy_certificate = ?10, proxy_force_ssl = ?11, reachability = ?12,
                    reach_network = ?13, health_interval_ms = ?14, health_timeout_ms = ?15,
                    health_retries = ?16, health_start_period_ms = ?17, updated_at = ?18,
                    proxy_listen = ?19, allowed_bind_paths_json = ?20, allow_host_network = ?21
                 WHERE id = 1",
                rusqlite::params![
                    update.base_domain.as_ref().unwrap_or(&current.base_domain),
                    update
                        .stage_subdomain_pattern
                        .as_ref()
                        .unwrap_or(&current.stage_subdomain_pattern),
                    update
                        .instance_subdomain_pattern
                        .as_ref()
                        .unwrap_or(&current.instance_subdomain_pattern),
                    i64::try_from(
                        update
                            .poll_interval
                            .unwrap_or(current.poll_interval)
                            .as_secs()
                    )
                    .unwrap_or(i64::MAX),
                    update.poll_cron.clone().unwrap_or(current.poll_cron),
                    update
                        .auto_create_projects
                        .unwrap_or(current.auto_create_projects),
                    update.proxy_kind.unwrap_or(current.proxy_kind).as_str(),
                    update.proxy_url.clone().unwrap_or(current.proxy_url),
                    update
                        .proxy_username
                        .clone()
                        .unwrap_or(current.proxy_username),
                    update
                        .proxy_certificate
                        .clone()
                        .unwrap_or(current.proxy_certificate),
                    update.proxy_force_ssl.unwrap_or(current.proxy_force_ssl),
                    update.reachability.unwrap_or(current.reachability).as_str(),
                    update
                        .reach_network
                        .clone()
                        .unwrap_or(current.reach_network),
                    millis(update.health_interval.unwrap_or(current.health_interval)),
                    millis(update.health_timeout.unwrap_or(current.health_timeout)),
                    update.health_retries.unwrap_or(current.health_retries),
                    millis(
                        update
                            .health_start_period
                            .unwrap_or(current.health_start_period)
                    ),
                    now(),
                    update.proxy_listen.clone().unwrap_or(current.proxy_listen),
                    serde_json::to_string(
                        update
                            .allowed_bind_paths
                            .as_ref()
                            .unwrap_or(&current.allowed_bind_paths)
                    )?,
                    update
                        .allow_host_network
                        .unwrap_or(current.allow_host_network),
                ],
            )?;
            if let Some(limits) = &update.limits {
                tx.execute(
                    "UPDATE settings SET allow_unsigned_dockerhub = ?1, auto_create_per_minute = ?2,
                        webhook_event_retention_days = ?3, webhook_event_max_count = ?4,
                        deploy_log_retention_days = ?5, deploy_logs_per_stage = ?6,
                        allow_unsigned_quay = ?7, jfrog_image_host = ?8, audit_retention_days = ?9
                     WHERE id = 1",
                    rusqlite::params![
                        limits.allow_unsigned_dockerhub,
                        limits.auto_create_per_minute,
                        limits.webhook_event_retention_days,
                        limits.webhook_event_max_count,
                        limits.deploy_log_retention_days,
                        limits.deploy_logs_per_stage,
                        limits.allow_unsigned_quay,
                        limits.jfrog_image_host,
                        limits.audit_retention_days,
                    ],
                )?;
            }
            for (column, value) in [
                (&WEBHOOK_SIGNING_SECRET, &update.webhook_signing_secret),
                (&PROXY_SECRET, &update.proxy_secret),
            ] {
                if let Some(value) = value {
                    let sealed = value.as_ref().map(|v| self.seal(&column.context(1), v));
                    tx.execute(
                        &format!("UPDATE settings SET {} = ?1 WHERE id = 1", column.column),
                        [sealed],
                    )?;
                }
            }
            tx.commit()?;
        }
        self.settings()
    }

    /// A random id made when the database was created. Containers carry it as a label, so
    /// two installations on one Docker host (or parallel tests) never touch each other's.
    pub fn installation_id(&self) -> StoreResult<String> {
        Ok(self.conn().query_row(
            "SELECT installation_id FROM settings WHERE id = 1",
            [],
            |r| r.get(0),
        )?)
    }

    /// The webhook URL secret; generated (a random UUID) the first time it is asked for.
    /// Returns the secret and whether it was generated now.
    pub fn ensure_webhook_secret(&self) -> StoreResult<(String, bool)> {
        if let Some(secret) = self.sealed_setting(&WEBHOOK_SECRET)? {
            return Ok((secret, false));
        }
        Ok((self.regenerate_webhook_secret()?, true))
    }

    /// Replaces the webhook secret with a new random UUID; the old one stops working at once.
    pub fn regenerate_webhook_secret(&self) -> StoreResult<String> {
        let secret = uuid::Uuid::new_v4().to_string();
        self.conn().execute(
            "UPDATE settings SET webhook_secret_sealed = ?1, updated_at = ?2 WHERE id = 1",
            (self.seal(&WEBHOOK_SECRET.context(1), &secret), now()),
        )?;
        Ok(secret)
    }

    pub fn webhook_secret(&self) -> StoreResult<Option<String>> {
        self.sealed_setting(&WEBHOOK_SECRET)
    }

    /// The HMAC secret registries sign their webhooks with (Gitea, GitHub), if set.
    pub fn webhook_signing_secret(&self) -> StoreResult<Option<String>> {
        self.sealed_setting(&WEBHOOK_SIGNING_SECRET)
    }

    pub fn proxy_secret(&self) -> StoreResult<Option<String>> {
        self.sealed_setting(&PROXY_SECRET)
    }

    pub(super) fn ensure_settings_row(&self) -> StoreResult<()> {
        self.conn().execute(
            "INSERT OR IGNORE INTO settings (id, installation_id, updated_at) VALUES (1, ?1, ?2)",
            (uuid::Uuid::new_v4().to_string(), now()),
        )?;
        Ok(())
    }

    fn sealed_setting(&self, column: &SealedColumn) -> StoreResult<Option<String>> {
        let sealed: Option<String> = self.conn().query_row(
            &format!("SELECT {} FROM settings WHERE id = 1", column.column),
            [],
            |r| r.get(0),
        )?;
        sealed
            .map(|s| self.open_secret(&column.context(1), &s))
            .transpose()
    }
}
