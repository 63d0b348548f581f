// The one place that speaks HTTP to the daemon. Every route the UI uses is named here,
// the CSRF header is added here, and every failure becomes an `ApiError` with the
// server's message and, for a validation failure, a reason per field.

import type {
  ApiTokenView,
  CheckAnswer,
  CreatedToken,
  TokenScope,
  AuditFilter,
  AuditPage,
  Deploy,
  DeployFilter,
  DeployPage,
  Instance,
  LogEntry,
  LoginAnswer,
  Managed,
  Me,
  NotificationInput,
  NotificationTarget,
  PreviewAnswer,
  PollState,
  Project,
  ProjectInput,
  Registry,
  RegistryInput,
  Settings,
  SettingsChanges,
  PollOutcome,
  ProjectEvent,
  WebhookEvent,
  Stage,
  StageInput,
  TagView,
  TestAnswer,
  WebhookUrl
} from './types';

/** A request that did not succeed: the HTTP status (0 when the server could not be
 * reached), the server's message, and for a 422 the reason per field. */
export class ApiError extends Error {
  readonly status: number;
  readonly fields: Record<string, string>;

  constructor(status: number, message: string, fields: Record<string, string> = {}) {
    super(message);
    this.name = 'ApiError';
    this.status = status;
    this.fields = fields;
  }

  /** The reason given for `field`, if the server named it. */
  field(name: string): string | undefined {
    return this.fields[name];
  }

  get unauthorized(): boolean {
    return this.status === 401;
  }
}

/** Reads the reason for `field` out of whatever a form's last submit threw. */
export function fieldError(error: unknown, field: string): string | undefined {
  return error instanceof ApiError ? error.field(field) : undefined;
}

/** The field reasons of a validation failure that a form does not show beside an input
 * (`shown` holds field names or prefixes such as `env[`). */
export function otherFieldErrors(error: unknown, shown: readonly string[]): [string, string][] {
  if (!(error instanceof ApiError)) return [];
  return Object.entries(error.fields).filter(
    ([field]) => !shown.some((s) => field === s || (s.endsWith('[') && field.startsWith(s)))
  );
}

/** A sentence for the person, whatever was thrown. */
export function errorMessage(error: unknown): string {
  if (error instanceof ApiError) {
    const fields = Object.entries(error.fields);
    if (fields.length > 0 && error.status === 422) {
      return 'Please correct the marked fields.';
    }
    return error.message;
  }
  if (error instanceof Error) return error.message;
  return String(error);
}

export interface ClientOptions {
  /** The fetch to use (tests pass their own). */
  fetch?: typeof fetch;
  /** Prefix of every path; empty when the UI is served by the daemon itself. */
  base?: string;
}

type Method = 'GET' | 'POST' | 'PUT' | 'DELETE';

interface RequestOptions {
  body?: unknown;
  /** False for the login itself, whose 401 means a wrong password, not an expired session. */
  sessionRequired?: boolean;
}

const UNSAFE: ReadonlySet<Method> = new Set(['POST', 'PUT', 'DELETE']);

export function createClient(options: ClientOptions = {}) {
  const base = options.base ?? '';
  let csrfToken: string | null = null;
  let onUnauthorized: (() => void) | null = null;

  async function request<T>(method: Method, path: string, opts: RequestOptions = {}): Promise<T> {
    const doFetch = options.fetch ?? globalThis.fetch.bind(globalThis);
    const headers: Record<string, string> = { Accept: 'application/json' };
    if (opts.body !== undefined) headers['Content-Type'] = 'application/json';
    if (UNSAFE.has(method) && csrfToken) headers['X-CSRF-Token'] = csrfToken;
    let response: Response;
    try {
      response = await doFetch(base + path, {
        method,
        headers,
        credentials: 'same-origin',
        body: opts.body === undefined ? undefined : JSON.stringify(opts.body)
      });
    } catch {
      throw new ApiError(0, 'cannot reach docker-watcher: check that it is running and try again');
    }
    if (response.status === 401 && opts.sessionRequired !== false) {
      csrfToken = null;
      onUnauthorized?.();
    }
    if (!response.ok) throw await readError(response);
    if (response.status === 204) return undefined as T;
    const text = await response.text();
    if (text === '') return undefined as T;
    try {
      return JSON.parse(text) as T;
    } catch {
      throw new ApiError(response.status, 'the server sent an answer that is not JSON');
    }
  }

  const get = <T>(path: string) => request<T>('GET', path);
  const post = <T>(path: string, body?: unknown) => request<T>('POST', path, { body });
  const put = <T>(path: string, body: unknown) => request<T>('PUT', path, { body });
  const del = (path: string) => request<void>('DELETE', path);

  return {
    /** Called on any 401 outside the login: the session expired or never was. */
    setUnauthorizedHandler(handler: (() => void) | null) {
      onUnauthorized = handler;
    },
    setCsrfToken(token: string | null) {
      csrfToken = token;
    },
    get csrfToken() {
      return csrfToken;
    },

    auth: {
      async login(username: string, password: string): Promise<LoginAnswer> {
        const answer = await request<LoginAnswer>('POST', '/api/auth/login', {
          body: { username, password },
          sessionRequired: false
        });
        csrfToken = answer.csrf_token;
        return answer;
      },
      async logout(): Promise<void> {
        try {
          await request<void>('POST', '/api/auth/logout', { sessionRequired: false });
        } finally {
          csrfToken = null;
        }
      },
      /** Who is signed in; also picks up the session's CSRF token after a reload. */
      async me(): Promise<Me> {
        const me = await get<Me>('/api/auth/me');
        if (me.csrf_token) csrfToken = me.csrf_token;
        return me;
      },
      changePassword: (current_password: string, new_password: string) =>
        put<void>('/api/auth/password', { current_password, new_password }),
      tokens: () => get<ApiTokenView[]>('/api/auth/tokens'),
      createToken: (name: string, scope: TokenScope = 'deploy') =>
        post<CreatedToken>('/api/auth/tokens', { name, scope }),
      revokeToken: (id: number) => del(`/api/auth/tokens/${id}`)
    },

    registries: {
      list: () => get<Registry[]>('/api/registries'),
      get: (id: number) => get<Registry>(`/api/registries/${id}`),
      create: (input: RegistryInput) => post<Registry>('/api/registries', input),
      update: (id: number, input: Partial<RegistryInput>) =>
        put<Registry>(`/api/registries/${id}`, input),
      remove: (id: number) => del(`/api/registries/${id}`),
      check: (id: number, repository?: string) =>
        post<CheckAnswer>(`/api/registries/${id}/check`, repository ? { repository } : {})
    },

    projects: {
      list: () => get<Project[]>('/api/projects'),
      get: (id: number) => get<Project>(`/api/projects/${id}`),
      create: (input: ProjectInput) => post<Project>('/api/projects', input),
      update: (id: number, input: Partial<ProjectInput>) =>
        put<Project>(`/api/projects/${id}`, input),
      remove: (id: number) => del(`/api/projects/${id}`),
      /** The registry's tags, newest first, with the stages each would go to. */
      tags: (id: number, stageId?: number) =>
        get<TagView[]>(`/api/projects/${id}/tags${query({ stage_id: stageId })}`),
      /** Polls the project's polling stages now. */
      poll: (id: number) => post<PollOutcome[]>(`/api/projects/${id}/poll`),
      events: (id: number) => get<ProjectEvent[]>(`/api/projects/${id}/events`)
    },

    stages: {
      list: (projectId: number) => get<Stage[]>(`/api/projects/${projectId}/stages`),
      create: (projectId: number, input: StageInput) =>
        post<Stage>(`/api/projects/${projectId}/stages`, input),
      get: (id: number) => get<Stage>(`/api/stages/${id}`),
      update: (id: number, input: Partial<StageInput>) => put<Stage>(`/api/stages/${id}`, input),
      remove: (id: number) => del(`/api/stages/${id}`),
      pollState: (id: number) => get<PollState>(`/api/stages/${id}/poll-state`),
      instances: (id: number) => get<Instance[]>(`/api/stages/${id}/instances`),
      deploy: (id: number, tag: string, outsideWindow = false) =>
        post<Deploy>(`/api/stages/${id}/deploys`, outsideWindow ? { tag, outside_window: true } : { tag }),
      rollback: (id: number, outsideWindow = false) =>
        post<Deploy>(`/api/stages/${id}/rollback${outsideWindow ? '?outside_window=true' : ''}`),
      /** Deploys here exactly what `fromStageId` runs (by digest). */
      promote: (id: number, fromStageId: number, outsideWindow = false) =>
        post<Deploy>(`/api/stages/${id}/promote`, {
          from_stage_id: fromStageId,
          outside_window: outsideWindow
        })
    },

    instances: {
      /** Every instance of every stage, oldest first. */
      all: () => get<Instance[]>('/api/instances'),
      stop: (id: number) => post<Instance>(`/api/instances/${id}/stop`),
      start: (id: number) => post<Instance>(`/api/instances/${id}/start`),
      remove: (id: number) => del(`/api/instances/${id}`),
      /** The container's output over SSE: the last `tail` lines, then (with `follow`) new ones. */
      logsUrl: (id: number, tail: number, follow: boolean) =>
        `${base}/api/instances/${id}/logs${query({ tail, follow })}`
    },

    deploys: {
      list: (filter: DeployFilter = {}) => get<DeployPage>(`/api/deploys${query(filter)}`),
      get: (id: number) => get<Deploy>(`/api/deploys/${id}`),
      logs: (id: number, after?: number) =>
        get<LogEntry[]>(`/api/deploys/${id}/logs${query({ after })}`),
      redeploy: (id: number, outsideWindow = false) =>
        post<Deploy>(`/api/deploys/${id}/redeploy${outsideWindow ? '?outside_window=true' : ''}`),
      /** Deploys waiting for approval or a deploy window, oldest first. */
      waiting: () => get<Deploy[]>('/api/deploys/waiting'),
      approve: (id: number) => post<Deploy>(`/api/deploys/${id}/approve`),
      reject: (id: number) => post<Deploy>(`/api/deploys/${id}/reject`),
      logStreamUrl: (id: number) => `${base}/api/deploys/${id}/logs/stream`
    },

    events: {
      url: () => `${base}/api/events`
    },

    audit: {
      list: (filter: AuditFilter = {}) => get<AuditPage>(`/api/audit${query(filter)}`)
    },

    settings: {
      get: () => get<Settings>('/api/settings'),
      update: (changes: SettingsChanges) => put<Settings>('/api/settings', changes),
      webhook: () => get<WebhookUrl>('/api/settings/webhook'),
      regenerateWebhook: () => post<WebhookUrl>('/api/settings/webhook/regenerate'),
      /** Checks the saved proxy settings with `changes` applied (nothing is saved). */
      checkProxy: (changes: SettingsChanges = {}) =>
        post<TestAnswer>('/api/settings/proxy/check', changes),
      webhookEvents: (limit = 20) => get<WebhookEvent[]>(`/api/webhook-events${query({ limit })}`)
    },

    notifications: {
      list: () => get<NotificationTarget[]>('/api/notifications'),
      create: (input: NotificationInput) => post<NotificationTarget>('/api/notifications', input),
      update: (id: number, input: Partial<NotificationInput>) =>
        put<NotificationTarget>(`/api/notifications/${id}`, input),
      remove: (id: number) => del(`/api/notifications/${id}`),
      test: (id: number) => post<TestAnswer>(`/api/notifications/${id}/test`),
      preview: (input: { title_template?: string; body_template?: string; event?: string }) =>
        post<PreviewAnswer>('/api/notifications/preview', input)
    },

    /** Which resources a projects file manages (read-only in the UI). */
    managed: {
      list: () => get<Managed[]>('/api/managed')
    }
  };
}

export type Client = ReturnType<typeof createClient>;

/** The client the pages use. */
export const api = createClient();

/** `?a=1&b=x` from the defined values of `params`, or an empty string. */
export function query(params: object): string {
  const search = new URLSearchParams();
  for (const [key, value] of Object.entries(params)) {
    if (value !== undefined && value !== null && value !== '') search.set(key, String(value));
  }
  const text = search.toString();
  return text ? `?${text}` : '';
}

async function readError(response: Response): Promise<ApiError> {
  let message = `${response.status} ${response.statusText}`.trim();
  let fields: Record<string, string> = {};
  try {
    const body = (await response.json()) as { error?: unknown; fields?: unknown };
    if (typeof body.error === 'string' && body.error !== '') message = body.error;
    if (body.fields && typeof body.fields === 'object') {
      fields = Object.fromEntries(
        Object.entries(body.fields as Record<string, unknown>).map(([k, v]) => [k, String(v)])
      );
    }
  } catch {
    // Not JSON (a proxy in front, say): the status line is all there is.
  }
  return new ApiError(response.status, message, fields);
}
