// The API's JSON shapes, as the UI reads them. Field names follow the daemon's entities
// (DESIGN.md); timestamps are RFC 3339 strings in UTC.

export type DeployStatus =
  | 'awaiting_approval'
  | 'scheduled'
  | 'pending'
  | 'pulling'
  | 'starting'
  | 'configuring_proxy'
  | 'health_checking'
  | 'success'
  | 'failed'
  | 'rolled_back'
  | 'superseded'
  | 'rejected'
  | 'expired';

export const FINAL_STATUSES: readonly DeployStatus[] = [
  'success',
  'failed',
  'rolled_back',
  'superseded',
  'rejected',
  'expired'
];

export type Trigger = 'webhook' | 'poll' | 'manual' | 'api' | 'promotion';
export type InstanceStatus = 'starting' | 'running' | 'stopping' | 'stopped' | 'failed' | 'removing';
export type LogLevel = 'debug' | 'info' | 'warn' | 'error';
export type RegistryKind = 'oci' | 'gitea' | 'dockerhub' | 'ghcr';
export type ProxyKind = 'none' | 'npm' | 'caddy' | 'traefik';
export type NotificationKind =
  | 'webhook'
  | 'slack'
  | 'discord'
  | 'ntfy'
  | 'telegram'
  | 'gotify'
  | 'email'
  | 'matrix'
  | 'pushover'
  | 'teams'
  | 'apprise';

export type NotificationEvent = 'success' | 'failure' | 'rollback' | 'approval_needed' | 'poll_error';

export interface User {
  id: number;
  username: string;
  created_at: string;
}

export interface LoginAnswer {
  token: string;
  csrf_token: string;
  expires_at: string;
  user: User;
}

export interface Me {
  user: User;
  auth: 'cookie' | 'session' | 'token';
  csrf_token?: string;
}

/** What a token may do: look (`read`), plus deploy/redeploy/roll back/poll (`deploy`), or everything (`admin`). */
export type TokenScope = 'read' | 'deploy' | 'admin';

export interface ApiTokenView {
  id: number;
  name: string;
  scope: TokenScope;
  created_at: string;
  last_used_at: string | null;
}

export interface CreatedToken {
  id: number;
  name: string;
  scope: TokenScope;
  created_at: string;
  token: string;
}

export interface Registry {
  id: number;
  name: string;
  kind: RegistryKind;
  base_url: string;
  username: string | null;
  has_secret: boolean;
  insecure: boolean;
  created_at: string;
  updated_at: string;
}

export interface RegistryInput {
  name: string;
  kind: RegistryKind;
  base_url: string;
  username: string | null;
  /** Write-only; left out keeps the stored one. */
  secret?: string | null;
  insecure: boolean;
}

export interface CheckAnswer {
  ok: boolean;
  message: string;
  endpoint?: string;
  signed_in?: boolean;
  tags?: number;
}

export interface EnvVar {
  name: string;
  /** Absent for secret values, which are write-only. */
  value?: string | null;
  secret: boolean;
}

export interface Project {
  id: number;
  name: string;
  image: string;
  registry_id: number | null;
  container_port: number;
  health_path: string | null;
  health_interval_ms: number | null;
  health_timeout_ms: number | null;
  health_retries: number | null;
  health_start_period_ms: number | null;
  env: EnvVar[];
  volumes: string[];
  network: string | null;
  memory_bytes: number | null;
  nano_cpus: number | null;
  auto_created: boolean;
  created_at: string;
  updated_at: string;
}

export interface ProjectInput {
  name: string;
  image: string;
  registry_id: number | null;
  container_port: number;
  health_path: string | null;
  /** Empty (null): the installation's default from the settings. */
  health_interval_ms?: number | null;
  health_timeout_ms?: number | null;
  health_retries?: number | null;
  health_start_period_ms?: number | null;
  env: EnvVar[];
  volumes: string[];
  network: string | null;
  /** Null: no limit. */
  memory_bytes?: number | null;
  /** CPUs in billionths (1000000000 is one CPU); null: no limit. */
  nano_cpus?: number | null;
}

export interface ProjectEvent {
  id: number;
  at: string;
  level: string;
  message: string;
}

export interface Stage {
  id: number;
  project_id: number;
  name: string;
  tag_pattern: string;
  version_range: string | null;
  auto_deploy: boolean;
  max_instances: number;
  polling: boolean;
  track_digest: boolean;
  env: EnvVar[];
  container_port: number | null;
  health_path: string | null;
  // Release workflow.
  policy?: VersionPolicy;
  prerelease?: boolean;
  promote_from?: string | null;
  approvals_required?: number;
  approval_timeout?: number;
  deploy_windows?: string[];
  window_timezone?: string;
  /** Where the stage runs (issue 17). */
  target?: StageTarget;
  created_at: string;
  updated_at: string;
}

/** A stage's target: containers, or a Swarm service with its replicas and update pace. */
export interface StageTarget {
  kind: 'container' | 'swarm';
  replicas?: number;
  constraints?: string[];
  update_parallelism?: number;
  update_delay_ms?: number;
}

export interface StageInput {
  name: string;
  tag_pattern: string;
  version_range: string | null;
  auto_deploy: boolean;
  max_instances: number;
  polling: boolean;
  track_digest: boolean;
  /** Added to (and overriding) the project's variables; secret values are write-only. */
  env?: EnvVar[];
  /** Null: the project's. */
  container_port?: number | null;
  health_path?: string | null;
  // Release workflow (left out: the stage keeps its values).
  policy?: VersionPolicy;
  prerelease?: boolean;
  promote_from?: string | null;
  approvals_required?: number;
  approval_timeout?: number;
  deploy_windows?: string[];
  window_timezone?: string;
  target?: StageTarget;
}

export interface Instance {
  id: number;
  stage_id: number;
  deploy_id: number | null;
  tag: string;
  digest: string | null;
  container_id: string | null;
  container_name: string;
  upstream: string | null;
  subdomains: string[];
  proxy_hosts: string[];
  status: InstanceStatus;
  created_at: string;
  updated_at: string;
}

export interface Deploy {
  id: number;
  project_id: number;
  stage_id: number;
  tag: string;
  digest: string | null;
  trigger: Trigger;
  status: DeployStatus;
  /** Whether the status is final (success, failed, rolled back, superseded). */
  finished: boolean;
  failed_step: string | null;
  error: string | null;
  instance_id: number | null;
  detected_at: string | null;
  created_at: string;
  started_at: string | null;
  finished_at: string | null;
  // Release workflow: where a promotion came from; approvals of a waiting deploy.
  promoted_from_stage_id?: number | null;
  promoted_from_stage?: string | null;
  promoted_from_deploy_id?: number | null;
  approval_expires_at?: string | null;
  approved_by?: string[];
  approvals_required?: number;
  outside_window?: boolean;
}

/** One audit log entry: who did what. */
export interface AuditEntry {
  id: number;
  at: string;
  actor_kind: 'user' | 'token' | 'webhook' | 'poller' | 'system' | 'anonymous';
  actor: string;
  action: string;
  target_kind: string;
  target_id: number | null;
  target_name: string | null;
  project_id: number | null;
  detail: string;
  before: Record<string, unknown> | null;
  after: Record<string, unknown> | null;
}

export interface AuditPage {
  entries: AuditEntry[];
  next_before?: number | null;
}

export interface AuditFilter {
  actor?: string;
  action?: string;
  target_kind?: string;
  project_id?: number;
  before?: number;
  limit?: number;
}

export type VersionPolicy = 'any' | 'forward' | 'patch' | 'minor';

export interface DeployPage {
  deploys: Deploy[];
  /** Pass as `before` to get the next (older) page; absent on the last page. */
  next_before?: number | null;
}

export interface DeployFilter {
  project_id?: number;
  stage_id?: number;
  status?: DeployStatus;
  before?: number;
  limit?: number;
}

export interface LogEntry {
  id: number;
  deploy_id?: number;
  at: string;
  level: LogLevel;
  step: string;
  message: string;
}

export interface PollState {
  stage_id: number;
  /** False until the stage was polled once. */
  polled: boolean;
  seen_tags: Record<string, string | null>;
  baseline_at: string | null;
  last_polled_at: string | null;
  last_result: 'baseline' | 'no_change' | 'new_tag' | 'error' | null;
  last_error: string | null;
  last_new_tag: string | null;
  consecutive_failures: number;
}

export interface PollOutcome {
  stage_id: number;
  result: string;
  new_tag: string | null;
  deploy_id: number | null;
  error: string | null;
}

/** A deploy's status change, as `/api/events` and the log stream send it. */
export interface StatusEvent {
  deploy_id: number;
  project_id: number;
  stage_id: number;
  tag: string;
  status: DeployStatus;
  finished: boolean;
}

export type Reachability = 'loopback' | 'network';

export interface Settings {
  base_domain: string;
  stage_subdomain_pattern: string;
  instance_subdomain_pattern: string;
  poll_interval_secs: number;
  poll_cron: string | null;
  has_webhook_secret: boolean;
  has_webhook_signing_secret: boolean;
  auto_create_projects: boolean;
  proxy_kind: ProxyKind;
  proxy_url: string | null;
  proxy_username: string | null;
  has_proxy_secret: boolean;
  proxy_certificate: string | null;
  proxy_force_ssl: boolean;
  /** Caddy: the addresses docker-watcher's server listens on, comma-separated. */
  proxy_listen: string | null;
  reachability: Reachability;
  reach_network: string | null;
  health_interval_ms: number;
  health_timeout_ms: number;
  health_retries: number;
  health_start_period_ms: number;
  /** With a signing secret set, still accept Docker Hub pushes (which cannot be signed). */
  allow_unsigned_dockerhub: boolean;
  auto_create_per_minute: number;
  webhook_event_retention_days: number;
  webhook_event_max_count: number;
  deploy_log_retention_days: number;
  deploy_logs_per_stage: number;
  /** Audit log entries older than this many days are pruned. */
  audit_retention_days: number;
  /** With a signing secret set, still accept Quay pushes (which cannot be signed). */
  allow_unsigned_quay: boolean;
  /** Where JFrog repository keys are pulled from (`{repo_key}` stands for the key); null: the webhook's origin host. */
  jfrog_image_host: string | null;
  /** Host folders deployed containers may bind-mount; empty: none. */
  allowed_bind_paths: string[];
  /** Whether deployed containers may use `network: host`. */
  allow_host_network: boolean;
}

/** What `PUT /api/settings` takes: any subset; `null` clears an optional value. */
export type SettingsChanges = Partial<
  Omit<Settings, 'has_webhook_secret' | 'has_webhook_signing_secret' | 'has_proxy_secret'>
> & {
  proxy_secret?: string | null;
  webhook_signing_secret?: string | null;
};

export interface WebhookUrl {
  url: string;
}

export interface NotificationTarget {
  id: number;
  name: string;
  kind: NotificationKind;
  has_url: boolean;
  events: NotificationEvent[];
  projects: string[];
  stages: string[];
  poll_error_threshold: number;
  title_template: string | null;
  body_template: string | null;
  delivery: {
    last_attempt_at: string | null;
    last_success_at: string | null;
    last_error: string | null;
    pending: number;
  };
  created_at: string;
}

export interface NotificationInput {
  name: string;
  /** For a plain http(s) URL: which webhook format. */
  kind?: NotificationKind;
  /** Write-only; left out keeps the stored one. */
  url?: string;
  events?: NotificationEvent[];
  projects?: string[];
  stages?: string[];
  poll_error_threshold?: number;
  title_template?: string;
  body_template?: string;
}

export interface PreviewAnswer {
  title: string;
  body: string;
}

export interface TestAnswer {
  ok: boolean;
  message: string;
}

export interface TagView {
  name: string;
  created_at: string | null;
  /** Stages whose pattern takes this tag. */
  stages: string[];
}

export interface WebhookEvent {
  id: number;
  received_at: string;
  source: string;
  image: string | null;
  tag: string | null;
  outcome: string;
  detail: string;
  project_id: number | null;
  stage_id: number | null;
  deploy_id: number | null;
}

/** A resource a projects file manages (`GET /api/managed`): read-only here. */
export interface Managed {
  kind: 'registry' | 'project' | 'stage' | 'notification' | 'settings';
  id: number;
  /** The file or folder that was applied. */
  origin: string;
  /** The file the resource is written in, and the line. */
  file: string;
  line: number;
  applied_at: string;
}
