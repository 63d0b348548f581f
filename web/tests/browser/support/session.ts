// One browser test file's world: the real daemon (and a registry, when the file deploys),
// an API token for arranging what the test needs, and headless Chromium. `close()` ends
// them all, with every container the daemon ran for the file's project and every image
// it pulled from the registry.

import { expect } from 'vitest';
import type { Page } from 'playwright-core';
import { ADMIN_PASSWORD, startDaemon, type Daemon } from './daemon';
import { startRegistry, type Registry } from './registry';
import { launch, type Browser } from './browser';

export interface Session {
  daemon: Daemon;
  browser: Browser;
  page: Page;
  /** An admin session token, from one login through the API. */
  token: string;
  /** The daemon's URL for `path`. */
  url: (path: string) => string;
  /** The API with the token: the status and the parsed body (null when empty). */
  call: (method: string, path: string, body?: unknown) => Promise<{ status: number; json: any }>;
  /** Like `call`, failing the test unless the answer is 2xx; the body. */
  api: <T = any>(method: string, path: string, body?: unknown) => Promise<T>;
  /** Signs in as admin on the login page the browser shows, and waits to leave it. */
  signIn: () => Promise<void>;
  close: () => Promise<void>;
}

/** A session with a registry (`startSession({ registry: true })`). */
export type RegistrySession = Session & { registry: Registry };

export interface Options {
  /** Start a registry too. */
  registry?: boolean;
  /** The project whose containers `close()` removes. */
  project?: string;
}

export async function startSession(options: Options & { registry: true }): Promise<RegistrySession>;
export async function startSession(options?: Options): Promise<Session>;
export async function startSession(options: Options = {}): Promise<Session & { registry?: Registry }> {
  const [daemon, registry] = await Promise.all([
    startDaemon(),
    options.registry ? startRegistry() : Promise.resolve(undefined)
  ]);
  let token: string;
  let browser: Browser;
  try {
    const login = await fetch(`${daemon.url}/api/auth/login`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ username: 'admin', password: ADMIN_PASSWORD })
    });
    expect(login.status, 'the API login').toBe(200);
    token = ((await login.json()) as { token: string }).token;
    browser = await launch();
  } catch (e) {
    // No afterAll can reach what was started here: end it before failing.
    await daemon.stop();
    await registry?.stop();
    throw e;
  }
  const page = browser.page;
  page.setDefaultTimeout(30_000);
  const url = (path: string) => `${daemon.url}${path}`;
  const call = async (method: string, path: string, body?: unknown) => {
    const response = await fetch(url(path), {
      method,
      headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' },
      body: body === undefined ? undefined : JSON.stringify(body)
    });
    const text = await response.text();
    let json: any = null;
    try {
      json = text ? JSON.parse(text) : null;
    } catch {
      json = text;
    }
    return { status: response.status, json };
  };
  return {
    daemon,
    registry,
    browser,
    page,
    token,
    url,
    call,
    async api<T>(method: string, path: string, body?: unknown): Promise<T> {
      const { status, json } = await call(method, path, body);
      if (status < 200 || status > 299) throw new Error(`${method} ${path}: ${status} ${JSON.stringify(json)}`);
      return json as T;
    },
    async signIn() {
      await page.getByLabel('Username', { exact: true }).fill('admin');
      await page.getByLabel('Password', { exact: true }).fill(ADMIN_PASSWORD);
      await page.getByRole('button', { name: 'Sign in' }).click();
      await page.waitForURL((u) => !u.pathname.startsWith('/login'));
    },
    async close() {
      await browser.close().catch(() => {});
      if (options.project) {
        await daemon.removeContainers('dev.docker-watcher.project', options.project).catch((e) => console.error(e));
      }
      await registry?.removePulledImages();
      await daemon.stop();
      await registry?.stop();
    }
  };
}
