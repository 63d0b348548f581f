//! `/api/settings`: the installation-wide settings (domains, polling, proxy, health-check
//! defaults; secrets write-only), the webhook URL and its regeneration, and a check of the
//! proxy settings before (or after) saving them.

use std::time::Duration;

use axum::Json;
use axum::extract::State;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::error::{ApiError, FieldErrors};
use super::extract::{ApiJson, double_option, parse_json};
use super::{AppState, validate};
use crate::container_policy;
use crate::poller::parse_cron;
use crate::proxy::{self, ProxyConfig};
use crate::store::{ProxyKind, Reachability, Settings, SettingsUpdate, WebhookLimits};
use crate::subdomain::Subdomain;

#[derive(Serialize, ToSchema)]
pub struct SettingsView {
    /// Domain under which stages get subdomains; empty means no routing.
    pub base_domain: String,
    /// Uses `{project}` and `{stage}`.
    pub stage_subdomain_pattern: String,
    /// Uses `{project}`, `{stage}` and `{tag}`.
    pub instance_subdomain_pattern: String,
    pub poll_interval_secs: u64,
    /// A 5- or 6-field cron expression; when set it replaces the interval.
    pub poll_cron: Option<String>,
    pub has_webhook_secret: bool,
    /// Whether an HMAC secret for signed webhooks (Gitea, GitHub) is set.
    pub has_webhook_signing_secret: bool,
    pub auto_create_projects: bool,
    /// `none`, `npm`, `caddy` or `traefik`.
    pub proxy_kind: String,
    pub proxy_url: Option<String>,
    pub proxy_username: Option<String>,
    pub has_proxy_secret: bool,
    /// `null`, `new` (Let's Encrypt) or an existing certificate id (NPM).
    pub proxy_certificate: Option<String>,
    pub proxy_force_ssl: bool,
    /// Caddy: addresses docker-watcher's server listens on, comma-separated (`null` is `:80`).
    pub proxy_listen: Option<String>,
    /// `loopback` (published on 127.0.0.1) or `network` (by name on `reach_network`).
    pub reachability: String,
    pub reach_network: Option<String>,
    pub health_interval_ms: u64,
    pub health_timeout_ms: u64,
    pub health_retries: u32,
    pub health_start_period_ms: u64,
    /// Host folders deployed containers may bind-mount (and anything under them); empty
    /// means no bind mounts, only named volumes. Some paths are refused always.
    pub allowed_bind_paths: Vec<String>,
    /// Whether deployed containers may use `network: host` (or another container's
    /// network), which gets around the 127.0.0.1-only port publishing.
    pub allow_host_network: bool,
    #[serde(flatten)]
    pub limits: LimitsView,
}

/// What webhooks may cost and how long their traces are kept (see the README's webhook
/// section).
#[derive(Serialize, ToSchema)]
pub struct LimitsView {
    /// With a signing secret set, accept unsigned Docker Hub pushes anyway (Docker Hub
    /// cannot sign).
    pub allow_unsigned_dockerhub: bool,
    /// New projects auto-create may make per minute.
    pub auto_create_per_minute: u32,
    /// Webhook events are kept this many days…
    pub webhook_event_retention_days: u32,
    /// …and at most this many.
    pub webhook_event_max_count: u32,
    /// Logs of finished deploys are kept this many days…
    pub deploy_log_retention_days: u32,
    /// …and for at most this many newest deploys per stage.
    pub deploy_logs_per_stage: u32,
    /// Audit log entries are kept this many days.
    pub audit_retention_days: u32,
    /// With a signing secret set, accept unsigned Quay pushes anyway (Quay cannot sign).
    pub allow_unsigned_quay: bool,
    /// Where JFrog Artifactory's repository keys are pulled from, `{repo_key}` standing
    /// for the key: `acme.jfrog.io/{repo_key}`, `{repo_key}.jfrog.example.com` or
    /// `jfrog.example.com:5001`; `null`: the webhook's `jpd_origin` host with the key as
    /// the first path segment.
    pub jfrog_image_host: Option<String>,
}

/// Fields left out keep their value; `null` clears an optional one (and a secret).
#[derive(Deserialize, ToSchema, Default, Clone)]
#[serde(deny_unknown_fields)]
pub struct SettingsChanges {
    pub base_domain: Option<String>,
    pub stage_subdomain_pattern: Option<String>,
    pub instance_subdomain_pattern: Option<String>,
    pub poll_interval_secs: Option<u64>,
    #[serde(default, deserialize_with = "double_option")]
    #[schema(value_type = Option<String>)]
    pub poll_cron: Option<Option<String>>,
    /// Write-only.
    #[serde(default, deserialize_with = "double_option")]
    #[schema(value_type = Option<String>)]
    pub webhook_signing_secret: Option<Option<String>>,
    pub auto_create_projects: Option<bool>,
    pub allow_unsigned_dockerhub: Option<bool>,
    /// 1 to 10,000.
    pub auto_create_per_minute: Option<u32>,
    /// 1 to 3,650.
    pub webhook_event_retention_days: Option<u32>,
    /// 100 to 10,000,000.
    pub webhook_event_max_count: Option<u32>,
    /// 1 to 3,650.
    pub deploy_log_retention_days: Option<u32>,
    /// 1 to 100,000.
    pub deploy_logs_per_stage: Option<u32>,
    /// 1 to 3,650.
    pub audit_retention_days: Option<u32>,
    pub allow_unsigned_quay: Option<bool>,
    /// `null` or empty clears it.
    #[serde(default, deserialize_with = "double_option")]
    #[schema(value_type = Option<String>)]
    pub jfrog_image_host: Option<Option<String>>,
    pub proxy_kind: Option<String>,
    #[serde(default, deserialize_with = "double_option")]
    #[schema(value_type = Option<String>)]
    pub proxy_url: Option<Option<String>>,
    #[serde(default, deserialize_with = "double_option")]
    #[schema(value_type = Option<String>)]
    pub proxy_username: Option<Option<String>>,
    /// Write-only.
    #[serde(default, deserialize_with = "double_option")]
    #[schema(value_type = Option<String>)]
    pub proxy_secret: Option<Option<String>>,
    #[serde(default, deserialize_with = "double_option")]
    #[schema(value_type = Option<String>)]
    pub proxy_certificate: Option<Option<String>>,
    pub proxy_force_ssl: Option<bool>,
    #[serde(default, deserialize_with = "double_option")]
    #[schema(value_type = Option<String>)]
    pub proxy_listen: Option<Option<String>>,
    pub reachability: Option<String>,
    #[serde(default, deserialize_with = "double_option")]
    #[schema(value_type = Option<String>)]
    pub reach_network: Option<Option<String>>,
    pub health_interval_ms: Option<u64>,
    pub health_timeout_ms: Option<u64>,
    pub health_retries: Option<u32>,
    pub health_start_period_ms: Option<u64>,
    /// Absolute host paths; replaces the whole list.
    pub allowed_bind_paths: Option<Vec<String>>,
    pub allow_host_network: Option<bool>,
}

#[derive(Serialize, ToSchema)]
pub struct WebhookView {
    /// The full URL registries and CI post to. It contains the secret: treat it as one.
    pub url: String,
}

#[derive(Serialize, ToSchema)]
pub struct ProxyCheckAnswer {
    pub ok: bool,
    /// What was found (and what domains will look like), or what is wrong.
    pub message: String,
}

impl From<Settings> for SettingsView {
    fn from(s: Settings) -> SettingsView {
        SettingsView {
            base_domain: s.base_domain,
            stage_subdomain_pattern: s.stage_subdomain_pattern,
            instance_subdomain_pattern: s.instance_subdomain_pattern,
            poll_interval_secs: s.poll_interval.as_secs(),
            poll_cron: s.poll_cron,
            has_webhook_secret: s.has_webhook_secret,
            has_webhook_signing_secret: s.has_webhook_signing_secret,
            auto_create_projects: s.auto_create_projects,
            proxy_kind: s.proxy_kind.as_str().into(),
            proxy_url: s.proxy_url,
            proxy_username: s.proxy_username,
            has_proxy_secret: s.has_proxy_secret,
            proxy_certificate: s.proxy_certificate,
            proxy_force_ssl: s.proxy_force_ssl,
            proxy_listen: s.proxy_listen,
            reachability: s.reachability.as_str().into(),
            reach_network: s.reach_network,
            health_interval_ms: millis(s.health_interval),
            health_timeout_ms: millis(s.health_timeout),
            health_retries: s.health_retries,
            health_start_period_ms: millis(s.health_start_period),
            limits: LimitsView {
                allow_unsigned_dockerhub: s.limits.allow_unsigned_dockerhub,
                auto_create_per_minute: s.limits.auto_create_per_minute,
                webhook_event_retention_days: s.limits.webhook_event_retention_days,
                webhook_event_max_count: s.limits.webhook_event_max_count,
                deploy_log_retention_days: s.limits.deploy_log_retention_days,
                deploy_logs_per_stage: s.limits.deploy_logs_per_stage,
                audit_retention_days: s.limits.audit_retention_days,
                allow_unsigned_quay: s.limits.allow_unsigned_quay,
                jfrog_image_host: s.limits.jfrog_image_host,
            },
            allowed_bind_paths: s.allowed_bind_paths,
            allow_host_network: s.allow_host_network,
        }
    }
}

#[utoipa::path(get, path = "/settings", tag = "settings",
    responses((status = 200, body = SettingsView)))]
pub async fn get(State(state): State<AppState>) -> Result<Json<SettingsView>, ApiError> {
    Ok(Json(state.store.settings()?.into()))
}

/// Change settings; the proxy is reconnected with the new ones (deploys under way keep
/// the old).
#[utoipa::path(put, path = "/settings", tag = "settings", request_body = SettingsChanges,
    responses((status = 200, body = SettingsView), (status = 422, body = super::error::ErrorBody)))]
pub async fn update(
    State(state): State<AppState>,
    ApiJson(body): ApiJson<SettingsChanges>,
) -> Result<Json<SettingsView>, ApiError> {
    let current = state.store.settings()?;
    let update = check(&current, &body, state.store.data_dir().as_deref())?;
    let updated = state.store.update_settings(&update)?;
    state.deployer.set_proxy(proxy::connect_saved(&state.store));
    if update.poll_interval.is_some() || update.poll_cron.is_some() {
        // The poller's current wait was computed from the old schedule.
        state.poller.wake();
    }
    Ok(Json(updated.into()))
}

/// The webhook URL to give registries and CI.
#[utoipa::path(get, path = "/settings/webhook", tag = "settings",
    responses((status = 200, body = WebhookView)))]
pub async fn webhook(State(state): State<AppState>) -> Result<Json<WebhookView>, ApiError> {
    let (secret, _) = state.store.ensure_webhook_secret()?;
    Ok(Json(WebhookView {
        url: format!("{}/api/webhook/{secret}", state.web.public_url),
    }))
}

/// A new webhook URL; the old one stops working at once.
#[utoipa::path(post, path = "/settings/webhook/regenerate", tag = "settings",
    responses((status = 200, body = WebhookView)))]
pub async fn regenerate_webhook(
    State(state): State<AppState>,
) -> Result<Json<WebhookView>, ApiError> {
    let secret = state.store.regenerate_webhook_secret()?;
    tracing::info!("webhook secret regenerated; the old URL no longer works");
    Ok(Json(WebhookView {
        url: format!("{}/api/webhook/{secret}", state.web.public_url),
    }))
}

/// Check the proxy settings: the saved ones, or the saved ones with the changes in the
/// body applied (nothing is saved), so a form can be tested before it is saved.
#[utoipa::path(post, path = "/settings/proxy/check", tag = "settings",
    request_body(content = Option<SettingsChanges>),
    responses((status = 200, body = ProxyCheckAnswer, description = "`ok` false carries the reason"),
        (status = 422, body = super::error::ErrorBody)))]
pub async fn check_proxy(
    State(state): State<AppState>,
    body: axum::body::Bytes,
) -> Result<Json<ProxyCheckAnswer>, ApiError> {
    // No body and a JSON `null` both mean "nothing to add".
    let changes: SettingsChanges = if body.is_empty() {
        SettingsChanges::default()
    } else {
        parse_json::<Option<SettingsChanges>>(&body)?.unwrap_or_default()
    };
    let current = state.store.settings()?;
    let update = check(&current, &changes, state.store.data_dir().as_deref())?;
    let saved_secret = state.store.proxy_secret()?;
    let secret = match &update.proxy_secret {
        Some(secret) => secret.clone(),
        None => saved_secret.clone(),
    };
    let saved = ProxyConfig::from_settings(&current, saved_secret);
    let merged = apply(current, &update);
    let asked = ProxyConfig::from_settings(&merged, secret.clone());
    // The saved proxy settings are checked through the client deploys use, so a token it
    // holds but NPM refuses shows (and is renewed) here; other values get a new client.
    let live = state.deployer.proxy();
    let result = if asked == saved && live.kind() == asked.kind {
        proxy::check_live(&merged, live.as_ref()).await
    } else {
        proxy::check_settings(&merged, secret).await
    };
    Ok(Json(match result {
        Ok(message) => ProxyCheckAnswer { ok: true, message },
        Err(e) => ProxyCheckAnswer {
            ok: false,
            message: e.to_string(),
        },
    }))
}

/// Validates the changes against the current settings and builds the store update.
pub(super) fn check(
    current: &Settings,
    body: &SettingsChanges,
    data_dir: Option<&std::path::Path>,
) -> Result<SettingsUpdate, ApiError> {
    let mut errors = FieldErrors::new();
    for (i, path) in body.allowed_bind_paths.iter().flatten().enumerate() {
        errors.check(
            &format!("allowed_bind_paths[{i}]"),
            container_policy::check_allowed_path(path, data_dir),
        );
    }
    if let Some(domain) = &body.base_domain
        && !domain.is_empty()
    {
        errors.check("base_domain", Subdomain::parse(domain));
    }
    if let Some(pattern) = &body.stage_subdomain_pattern {
        errors.check(
            "stage_subdomain_pattern",
            Subdomain::check_stage_pattern(pattern),
        );
    }
    if let Some(pattern) = &body.instance_subdomain_pattern {
        errors.check(
            "instance_subdomain_pattern",
            Subdomain::check_instance_pattern(pattern),
        );
    }
    let poll_interval = body.poll_interval_secs.and_then(|secs| {
        errors
            .check("poll_interval_secs", validate::range(secs, 10, 86_400))
            .map(Duration::from_secs)
    });
    if let Some(Some(cron)) = &body.poll_cron {
        errors.check("poll_cron", parse_cron(cron));
    }
    let proxy_kind = body
        .proxy_kind
        .as_deref()
        .and_then(|k| errors.check("proxy_kind", k.parse::<ProxyKind>()));
    if let Some(Some(url)) = &body.proxy_url {
        errors.check("proxy_url", validate::http_url(url));
    }
    if let Some(Some(listen)) = &body.proxy_listen {
        for address in listen.split(',').map(str::trim).filter(|a| !a.is_empty()) {
            let port = address.rsplit_once(':').map(|(_, port)| port);
            if !port.is_some_and(|p| p.parse::<u16>().is_ok_and(|p| p > 0)) {
                errors.add(
                    "proxy_listen",
                    format!("{address:?} must be host:port or :port, e.g. :80 or 127.0.0.1:8081"),
                );
            }
        }
    }
    let reachability = body
        .reachability
        .as_deref()
        .and_then(|r| errors.check("reachability", r.parse::<Reachability>()));
    let network = match &body.reach_network {
        Some(network) => network.clone(),
        None => current.reach_network.clone(),
    };
    if reachability.unwrap_or(current.reachability) == Reachability::Network
        && network.as_deref().is_none_or(str::is_empty)
    {
        errors.add(
            "reach_network",
            "is required when reachability is `network`: name the Docker network the proxy shares",
        );
    }
    let ms = Duration::from_millis;
    let hour = Duration::from_secs(3600);
    let health_interval = body
        .health_interval_ms
        .and_then(|v| errors.check("health_interval_ms", validate::millis(v, ms(100), hour)));
    let health_timeout = body.health_timeout_ms.and_then(|v| {
        errors.check(
            "health_timeout_ms",
            validate::millis(v, ms(100), Duration::from_secs(300)),
        )
    });
    let health_retries = body.health_retries.and_then(|v| {
        errors
            .check("health_retries", validate::range(u64::from(v), 1, 100))
            .map(|_| v)
    });
    let health_start_period = body
        .health_start_period_ms
        .and_then(|v| errors.check("health_start_period_ms", validate::millis(v, ms(0), hour)));
    let limits = check_limits(&current.limits, body, &mut errors);
    errors.into_result()?;
    let empty_is_none = |v: &Option<Option<String>>| {
        v.clone()
            .map(|inner| inner.filter(|s| !s.trim().is_empty()))
    };
    Ok(SettingsUpdate {
        base_domain: body.base_domain.clone(),
        stage_subdomain_pattern: body.stage_subdomain_pattern.clone(),
        instance_subdomain_pattern: body.instance_subdomain_pattern.clone(),
        poll_interval,
        poll_cron: empty_is_none(&body.poll_cron),
        webhook_signing_secret: empty_is_none(&body.webhook_signing_secret),
        auto_create_projects: body.auto_create_projects,
        proxy_kind,
        proxy_url: empty_is_none(&body.proxy_url),
        proxy_username: empty_is_none(&body.proxy_username),
        proxy_secret: empty_is_none(&body.proxy_secret),
        proxy_certificate: empty_is_none(&body.proxy_certificate),
        proxy_force_ssl: body.proxy_force_ssl,
        proxy_listen: empty_is_none(&body.proxy_listen),
        reachability,
        reach_network: empty_is_none(&body.reach_network),
        health_interval,
        health_timeout,
        health_retries,
        health_start_period,
        limits,
        allowed_bind_paths: body.allowed_bind_paths.clone(),
        allow_host_network: body.allow_host_network,
    })
}

/// The retention and intake limits' ranges, by field: what `check_limits` enforces and
/// what the OpenAPI document states (`openapi::add_field_rules`).
pub const LIMIT_RANGES: &[(&str, u64, u64)] = &[
    ("auto_create_per_minute", 1, 10_000),
    ("webhook_event_retention_days", 1, 3650),
    ("webhook_event_max_count", 100, 10_000_000),
    ("deploy_log_retention_days", 1, 3650),
    ("deploy_logs_per_stage", 1, 100_000),
    ("audit_retention_days", 1, 3650),
];

fn limit_range(field: &str) -> (u64, u64) {
    LIMIT_RANGES
        .iter()
        .find(|(name, ..)| *name == field)
        .map(|(_, min, max)| (*min, *max))
        .expect("every limit has a range in LIMIT_RANGES")
}

/// The webhook limits after `body`'s changes, `None` when it changes none of them.
fn check_limits(
    current: &WebhookLimits,
    body: &SettingsChanges,
    errors: &mut FieldErrors,
) -> Option<WebhookLimits> {
    let mut limits = current.clone();
    let mut changed = false;
    if let Some(allow) = body.allow_unsigned_dockerhub {
        limits.allow_unsigned_dockerhub = allow;
        changed = true;
    }
    if let Some(allow) = body.allow_unsigned_quay {
        limits.allow_unsigned_quay = allow;
        changed = true;
    }
    if let Some(host) = &body.jfrog_image_host {
        let host = host.as_deref().map(str::trim).filter(|h| !h.is_empty());
        if errors
            .check("jfrog_image_host", check_jfrog_image_host(host))
            .is_some()
        {
            limits.jfrog_image_host = host.map(str::to_string);
            changed = true;
        }
    }
    for (field, value, target) in [
        (
            "auto_create_per_minute",
            body.auto_create_per_minute,
            &mut limits.auto_create_per_minute,
        ),
        (
            "webhook_event_retention_days",
            body.webhook_event_retention_days,
            &mut limits.webhook_event_retention_days,
        ),
        (
            "webhook_event_max_count",
            body.webhook_event_max_count,
            &mut limits.webhook_event_max_count,
        ),
        (
            "deploy_log_retention_days",
            body.deploy_log_retention_days,
            &mut limits.deploy_log_retention_days,
        ),
        (
            "deploy_logs_per_stage",
            body.deploy_logs_per_stage,
            &mut limits.deploy_logs_per_stage,
        ),
        (
            "audit_retention_days",
            body.audit_retention_days,
            &mut limits.audit_retention_days,
        ),
    ] {
        let (min, max) = limit_range(field);
        if let Some(value) = value
            && errors
                .check(field, validate::range(u64::from(value), min, max))
                .is_some()
        {
            *target = value;
            changed = true;
        }
    }
    changed.then_some(limits)
}

/// A JFrog image host must make image references of the keys it is given.
fn check_jfrog_image_host(host: Option<&str>) -> Result<(), String> {
    let Some(host) = host else { return Ok(()) };
    let example = crate::webhook::jfrog_image_for(Some(host), None, "docker-local", "app")
        .unwrap_or_default();
    if host.len() > 255 || crate::image_ref::ImageRef::parse(&format!("{example}:1")).is_err() {
        return Err(format!(
            "must be a registry host (and path) such as acme.jfrog.io/{} or {}.jfrog.example.com",
            crate::webhook::JFROG_REPO_KEY,
            crate::webhook::JFROG_REPO_KEY
        ));
    }
    Ok(())
}

/// The settings as they would be after `update` (for checking without saving).
fn apply(mut s: Settings, u: &SettingsUpdate) -> Settings {
    fn set<T: Clone>(target: &mut T, value: &Option<T>) {
        if let Some(value) = value {
            *target = value.clone();
        }
    }
    set(&mut s.base_domain, &u.base_domain);
    set(&mut s.stage_subdomain_pattern, &u.stage_subdomain_pattern);
    set(
        &mut s.instance_subdomain_pattern,
        &u.instance_subdomain_pattern,
    );
    set(&mut s.proxy_kind, &u.proxy_kind);
    set(&mut s.proxy_url, &u.proxy_url);
    set(&mut s.proxy_username, &u.proxy_username);
    set(&mut s.proxy_certificate, &u.proxy_certificate);
    set(&mut s.proxy_force_ssl, &u.proxy_force_ssl);
    set(&mut s.proxy_listen, &u.proxy_listen);
    set(&mut s.reachability, &u.reachability);
    set(&mut s.reach_network, &u.reach_network);
    if let Some(secret) = &u.proxy_secret {
        s.has_proxy_secret = secret.is_some();
    }
    s
}

fn millis(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}
