-- The whole data model of DESIGN.md. STRICT tables; statuses and kinds are checked here,
-- so a bad value cannot be written by any code path. Times are UTC text (RFC 3339).

CREATE TABLE registries (
    id            INTEGER PRIMARY KEY,
    name          TEXT NOT NULL UNIQUE,
    kind          TEXT NOT NULL CHECK (kind IN ('oci', 'gitea', 'dockerhub', 'ghcr')),
    base_url      TEXT NOT NULL,
    username      TEXT,
    secret_sealed TEXT,
    insecure      INTEGER NOT NULL DEFAULT 0 CHECK (insecure IN (0, 1)),
    created_at    TEXT NOT NULL,
    updated_at    TEXT NOT NULL
) STRICT;

CREATE TABLE projects (
    id                     INTEGER PRIMARY KEY,
    name                   TEXT NOT NULL UNIQUE,
    image                  TEXT NOT NULL UNIQUE,
    registry_id            INTEGER REFERENCES registries(id) ON DELETE SET NULL,
    container_port         INTEGER NOT NULL DEFAULT 0 CHECK (container_port BETWEEN 0 AND 65535),
    health_path            TEXT,
    health_interval_ms     INTEGER CHECK (health_interval_ms > 0),
    health_timeout_ms      INTEGER CHECK (health_timeout_ms > 0),
    health_retries         INTEGER CHECK (health_retries > 0),
    health_start_period_ms INTEGER CHECK (health_start_period_ms >= 0),
    env_json               TEXT NOT NULL DEFAULT '[]',
    volumes_json           TEXT NOT NULL DEFAULT '[]',
    network                TEXT,
    memory_bytes           INTEGER CHECK (memory_bytes > 0),
    nano_cpus              INTEGER CHECK (nano_cpus > 0),
    auto_created           INTEGER NOT NULL DEFAULT 0 CHECK (auto_created IN (0, 1)),
    created_at             TEXT NOT NULL,
    updated_at             TEXT NOT NULL
) STRICT;

CREATE TABLE project_events (
    id         INTEGER PRIMARY KEY,
    project_id INTEGER NOT NULL REFERENCES projects(id) ON DELETE CASCADE,
    at         TEXT NOT NULL,
    level      TEXT NOT NULL CHECK (level IN ('info', 'warn', 'error')),
    message    TEXT NOT NULL
) STRICT;
CREATE INDEX project_events_by_project ON project_events(project_id, id);

CREATE TABLE stages (
    id             INTEGER PRIMARY KEY,
    project_id     INTEGER NOT NULL REFERENCES projects(id) ON DELETE CASCADE,
    name           TEXT NOT NULL,
    tag_pattern    TEXT NOT NULL DEFAULT '*',
    version_range  TEXT,
    auto_deploy    INTEGER NOT NULL DEFAULT 1 CHECK (auto_deploy IN (0, 1)),
    max_instances  INTEGER NOT NULL DEFAULT 1 CHECK (max_instances BETWEEN 1 AND 100),
    polling        INTEGER NOT NULL DEFAULT 0 CHECK (polling IN (0, 1)),
    track_digest   INTEGER NOT NULL DEFAULT 0 CHECK (track_digest IN (0, 1)),
    env_json       TEXT NOT NULL DEFAULT '[]',
    container_port INTEGER CHECK (container_port BETWEEN 1 AND 65535),
    health_path    TEXT,
    created_at     TEXT NOT NULL,
    updated_at     TEXT NOT NULL,
    UNIQUE (project_id, name)
) STRICT;

CREATE TABLE deploys (
    id          INTEGER PRIMARY KEY,
    project_id  INTEGER NOT NULL REFERENCES projects(id) ON DELETE CASCADE,
    stage_id    INTEGER NOT NULL REFERENCES stages(id) ON DELETE CASCADE,
    tag         TEXT NOT NULL,
    digest      TEXT,
    trigger     TEXT NOT NULL CHECK (trigger IN ('webhook', 'poll', 'manual', 'api')),
    status      TEXT NOT NULL DEFAULT 'pending' CHECK (status IN (
                    'pending', 'pulling', 'starting', 'configuring_proxy', 'health_checking',
                    'success', 'failed', 'rolled_back', 'superseded')),
    failed_step TEXT,
    error       TEXT,
    instance_id INTEGER,
    detected_at TEXT,
    created_at  TEXT NOT NULL,
    started_at  TEXT,
    finished_at TEXT
) STRICT;
CREATE INDEX deploys_by_project ON deploys(project_id, id DESC);
CREATE INDEX deploys_by_stage ON deploys(stage_id, id DESC);
CREATE INDEX deploys_unfinished ON deploys(status)
    WHERE status NOT IN ('success', 'failed', 'rolled_back', 'superseded');

CREATE TABLE deploy_logs (
    id        INTEGER PRIMARY KEY,
    deploy_id INTEGER NOT NULL REFERENCES deploys(id) ON DELETE CASCADE,
    at        TEXT NOT NULL,
    level     TEXT NOT NULL CHECK (level IN ('debug', 'info', 'warn', 'error')),
    step      TEXT NOT NULL,
    message   TEXT NOT NULL
) STRICT;
CREATE INDEX deploy_logs_by_deploy ON deploy_logs(deploy_id, id);

CREATE TABLE instances (
    id               INTEGER PRIMARY KEY,
    stage_id         INTEGER NOT NULL REFERENCES stages(id) ON DELETE CASCADE,
    deploy_id        INTEGER REFERENCES deploys(id) ON DELETE SET NULL,
    tag              TEXT NOT NULL,
    digest           TEXT,
    container_id     TEXT,
    container_name   TEXT NOT NULL UNIQUE,
    upstream         TEXT,
    subdomains_json  TEXT NOT NULL DEFAULT '[]',
    proxy_hosts_json TEXT NOT NULL DEFAULT '[]',
    status           TEXT NOT NULL CHECK (status IN ('starting', 'running', 'stopped', 'failed', 'removing')),
    created_at       TEXT NOT NULL,
    updated_at       TEXT NOT NULL
) STRICT;
CREATE INDEX instances_by_stage ON instances(stage_id, id);

CREATE TABLE poll_state (
    stage_id             INTEGER PRIMARY KEY REFERENCES stages(id) ON DELETE CASCADE,
    seen_json            TEXT NOT NULL DEFAULT '{}',
    baseline_at          TEXT,
    last_polled_at       TEXT,
    last_result          TEXT CHECK (last_result IN ('baseline', 'no_change', 'new_tag', 'error')),
    last_error           TEXT,
    last_new_tag         TEXT,
    consecutive_failures INTEGER NOT NULL DEFAULT 0
) STRICT;

CREATE TABLE settings (
    id                            INTEGER PRIMARY KEY CHECK (id = 1),
    installation_id               TEXT NOT NULL,
    base_domain                   TEXT NOT NULL DEFAULT 'localhost',
    stage_subdomain_pattern       TEXT NOT NULL DEFAULT 'stage-{stage}-{project}',
    instance_subdomain_pattern    TEXT NOT NULL DEFAULT 'stage-{stage}-{project}-{tag}',
    poll_interval_secs            INTEGER NOT NULL DEFAULT 300 CHECK (poll_interval_secs BETWEEN 10 AND 86400),
    poll_cron                     TEXT,
    webhook_secret_sealed         TEXT,
    webhook_signing_secret_sealed TEXT,
    auto_create_projects          INTEGER NOT NULL DEFAULT 1 CHECK (auto_create_projects IN (0, 1)),
    proxy_kind                    TEXT NOT NULL DEFAULT 'none' CHECK (proxy_kind IN ('none', 'npm', 'caddy', 'traefik')),
    proxy_url                     TEXT,
    proxy_username                TEXT,
    proxy_secret_sealed           TEXT,
    proxy_certificate             TEXT,
    proxy_force_ssl               INTEGER NOT NULL DEFAULT 0 CHECK (proxy_force_ssl IN (0, 1)),
    proxy_listen                  TEXT,
    reachability                  TEXT NOT NULL DEFAULT 'loopback' CHECK (reachability IN ('loopback', 'network')),
    reach_network                 TEXT,
    health_interval_ms            INTEGER NOT NULL DEFAULT 5000 CHECK (health_interval_ms > 0),
    health_timeout_ms             INTEGER NOT NULL DEFAULT 10000 CHECK (health_timeout_ms > 0),
    health_retries                INTEGER NOT NULL DEFAULT 3 CHECK (health_retries > 0),
    health_start_period_ms        INTEGER NOT NULL DEFAULT 60000 CHECK (health_start_period_ms >= 0),
    updated_at                    TEXT NOT NULL
) STRICT;

CREATE TABLE notification_targets (
    id          INTEGER PRIMARY KEY,
    name        TEXT NOT NULL UNIQUE,
    kind        TEXT NOT NULL CHECK (kind IN ('webhook', 'slack', 'discord', 'ntfy')),
    url_sealed  TEXT NOT NULL,
    on_success  INTEGER NOT NULL DEFAULT 1 CHECK (on_success IN (0, 1)),
    on_failure  INTEGER NOT NULL DEFAULT 1 CHECK (on_failure IN (0, 1)),
    on_rollback INTEGER NOT NULL DEFAULT 1 CHECK (on_rollback IN (0, 1)),
    created_at  TEXT NOT NULL
) STRICT;

CREATE TABLE webhook_events (
    id          INTEGER PRIMARY KEY,
    received_at TEXT NOT NULL,
    source      TEXT NOT NULL,
    image       TEXT,
    tag         TEXT,
    outcome     TEXT NOT NULL CHECK (outcome IN ('deployed', 'ignored', 'rejected', 'error')),
    detail      TEXT NOT NULL,
    project_id  INTEGER REFERENCES projects(id) ON DELETE SET NULL,
    stage_id    INTEGER REFERENCES stages(id) ON DELETE SET NULL,
    deploy_id   INTEGER REFERENCES deploys(id) ON DELETE SET NULL
) STRICT;
CREATE INDEX webhook_events_recent ON webhook_events(id DESC);

CREATE TABLE users (
    id            INTEGER PRIMARY KEY,
    username      TEXT NOT NULL UNIQUE,
    password_hash TEXT NOT NULL,
    created_at    TEXT NOT NULL,
    updated_at    TEXT NOT NULL
) STRICT;

CREATE TABLE api_tokens (
    id           INTEGER PRIMARY KEY,
    user_id      INTEGER NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    name         TEXT NOT NULL,
    token_hash   TEXT NOT NULL UNIQUE,
    created_at   TEXT NOT NULL,
    last_used_at TEXT,
    UNIQUE (user_id, name)
) STRICT;

CREATE TABLE sessions (
    id_hash    TEXT PRIMARY KEY,
    user_id    INTEGER NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    csrf_token TEXT NOT NULL,
    created_at TEXT NOT NULL,
    expires_at TEXT NOT NULL
) STRICT;
