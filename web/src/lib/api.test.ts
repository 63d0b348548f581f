import { describe, expect, it, vi } from 'vitest';
import { ApiError, createClient, errorMessage, fieldError, otherFieldErrors, query } from './api';

/** A fetch that records each call and answers with the given responses in turn. */
function fakeFetch(...answers: (Response | Error)[]) {
  const calls: { url: string; init: RequestInit }[] = [];
  const fn = vi.fn(async (url: RequestInfo | URL, init?: RequestInit) => {
    calls.push({ url: String(url), init: init ?? {} });
    const next = answers.shift();
    if (!next) throw new Error('no answer left');
    if (next instanceof Error) throw next;
    return next;
  });
  return { fetch: fn as unknown as typeof fetch, calls };
}

const json = (status: number, body: unknown) =>
  new Response(JSON.stringify(body), { status, headers: { 'Content-Type': 'application/json' } });

const header = (init: RequestInit, name: string) => (init.headers as Record<string, string>)[name];

describe('api client', () => {
  it('sends the CSRF token from login on state-changing requests only', async () => {
    const { fetch, calls } = fakeFetch(
      json(200, { token: 't', csrf_token: 'csrf-1', expires_at: '', user: { id: 1, username: 'admin', created_at: '' } }),
      json(200, []),
      json(201, { id: 3 })
    );
    const client = createClient({ fetch });
    await client.auth.login('admin', 'pw');
    await client.projects.list();
    await client.registries.create({ name: 'r', kind: 'oci', base_url: 'http://x', username: null, insecure: true });
    expect(header(calls[0].init, 'X-CSRF-Token')).toBeUndefined();
    expect(header(calls[1].init, 'X-CSRF-Token')).toBeUndefined();
    expect(calls[1].init.method).toBe('GET');
    expect(header(calls[2].init, 'X-CSRF-Token')).toBe('csrf-1');
    expect(header(calls[2].init, 'Content-Type')).toBe('application/json');
    expect(JSON.parse(String(calls[2].init.body))).toMatchObject({ name: 'r', kind: 'oci' });
    expect(calls[2].init.credentials).toBe('same-origin');
  });

  it('picks up the CSRF token from /api/auth/me after a reload', async () => {
    const { fetch, calls } = fakeFetch(
      json(200, { user: { id: 1, username: 'admin', created_at: '' }, auth: 'cookie', csrf_token: 'from-me' }),
      new Response(null, { status: 204 })
    );
    const client = createClient({ fetch });
    await client.auth.me();
    await client.instances.remove(4);
    expect(calls[1].url).toBe('/api/instances/4');
    expect(calls[1].init.method).toBe('DELETE');
    expect(header(calls[1].init, 'X-CSRF-Token')).toBe('from-me');
  });

  it('turns a 422 into an ApiError with a reason per field', async () => {
    const { fetch } = fakeFetch(
      json(422, { error: 'validation failed', fields: { name: 'is already taken', 'env[0].name': 'must be upper case' } })
    );
    const client = createClient({ fetch });
    const error = await client.projects
      .create({ name: 'x', image: 'y', registry_id: null, container_port: 80, health_path: null, env: [], volumes: [], network: null })
      .catch((e) => e);
    expect(error).toBeInstanceOf(ApiError);
    expect(error.status).toBe(422);
    expect(error.message).toBe('validation failed');
    expect(fieldError(error, 'name')).toBe('is already taken');
    expect(fieldError(error, 'image')).toBeUndefined();
    expect(otherFieldErrors(error, ['name'])).toEqual([['env[0].name', 'must be upper case']]);
    expect(otherFieldErrors(error, ['name', 'env['])).toEqual([]);
    expect(errorMessage(error)).toBe('Please correct the marked fields.');
  });

  it('calls the unauthorized handler on a 401, and forgets the CSRF token', async () => {
    const { fetch, calls } = fakeFetch(
      json(200, { token: 't', csrf_token: 'c', expires_at: '', user: { id: 1, username: 'admin', created_at: '' } }),
      json(401, { error: 'sign in first' }),
      json(200, {})
    );
    const client = createClient({ fetch });
    const onUnauthorized = vi.fn();
    client.setUnauthorizedHandler(onUnauthorized);
    await client.auth.login('admin', 'pw');
    const error = await client.deploys.get(1).catch((e) => e);
    expect(error.unauthorized).toBe(true);
    expect(error.message).toBe('sign in first');
    expect(onUnauthorized).toHaveBeenCalledTimes(1);
    expect(client.csrfToken).toBeNull();
    await client.settings.regenerateWebhook();
    expect(header(calls[2].init, 'X-CSRF-Token')).toBeUndefined();
  });

  it('does not treat a wrong password as an expired session', async () => {
    const { fetch } = fakeFetch(json(401, { error: 'wrong username or password' }));
    const client = createClient({ fetch });
    const onUnauthorized = vi.fn();
    client.setUnauthorizedHandler(onUnauthorized);
    const error = await client.auth.login('admin', 'nope').catch((e) => e);
    expect(errorMessage(error)).toBe('wrong username or password');
    expect(onUnauthorized).not.toHaveBeenCalled();
  });

  it('says the server cannot be reached when fetch itself fails', async () => {
    const { fetch } = fakeFetch(new TypeError('Failed to fetch'));
    const error = await createClient({ fetch }).projects.list().catch((e) => e);
    expect(error).toBeInstanceOf(ApiError);
    expect(error.status).toBe(0);
    expect(error.message).toMatch(/cannot reach docker-watcher/);
  });

  it('keeps the status line when an error body is not JSON', async () => {
    const { fetch } = fakeFetch(new Response('<html>bad gateway</html>', { status: 502, statusText: 'Bad Gateway' }));
    const error = await createClient({ fetch }).projects.tags(1).catch((e) => e);
    expect(error.status).toBe(502);
    expect(error.message).toBe('502 Bad Gateway');
  });

  it('reads 204 and empty bodies as nothing', async () => {
    const { fetch } = fakeFetch(new Response(null, { status: 204 }), new Response('', { status: 200 }));
    const client = createClient({ fetch });
    await expect(client.projects.remove(1)).resolves.toBeUndefined();
    await expect(client.auth.logout()).resolves.toBeUndefined();
  });

  it('builds the deploy list query from the filters that are set', async () => {
    const { fetch, calls } = fakeFetch(json(200, { deploys: [], next_before: null }));
    await createClient({ fetch }).deploys.list({ project_id: 2, status: 'failed', before: undefined, limit: 25 });
    expect(calls[0].url).toBe('/api/deploys?project_id=2&status=failed&limit=25');
  });

  it('prefixes every path and stream URL with the base', async () => {
    const { fetch, calls } = fakeFetch(json(200, []));
    const client = createClient({ fetch, base: 'http://127.0.0.1:9' });
    await client.projects.tags(5, 7);
    expect(calls[0].url).toBe('http://127.0.0.1:9/api/projects/5/tags?stage_id=7');
    expect(client.deploys.logStreamUrl(3)).toBe('http://127.0.0.1:9/api/deploys/3/logs/stream');
    expect(client.events.url()).toBe('http://127.0.0.1:9/api/events');
  });
});

describe('query', () => {
  it('leaves out undefined, null and empty values', () => {
    expect(query({ a: 1, b: undefined, c: null, d: '', e: 'x y' })).toBe('?a=1&e=x+y');
    expect(query({})).toBe('');
  });
});
