// A stage's target in a real browser against the real daemon and Docker Engine (outside
// any swarm, as in the normal test run): the stage form offers "a Docker Swarm service"
// with its replicas; saving it on an engine that is not a swarm manager shows the daemon's
// reason at the Target field and keeps the stage as it was; choosing containers again saves.

import { randomBytes } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Page } from 'playwright-core';
import { ADMIN_PASSWORD, startDaemon, type Daemon } from './support/daemon';
import { launch, type Browser } from './support/browser';

const projectName = `swarm-${randomBytes(4).toString('hex')}`;

let daemon: Daemon | undefined;
let browser: Browser | undefined;
let page: Page;
let projectId = 0;
let token = '';

async function api(path: string, body?: unknown): Promise<Record<string, unknown>> {
  const response = await fetch(`${daemon!.url}${path}`, {
    method: body === undefined ? 'GET' : 'POST',
    headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' },
    body: body === undefined ? undefined : JSON.stringify(body)
  });
  expect(response.ok, `${path}: ${response.status}`).toBe(true);
  return (await response.json()) as Record<string, unknown>;
}

beforeAll(async () => {
  daemon = await startDaemon();
  const login = await fetch(`${daemon.url}/api/auth/login`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ username: 'admin', password: ADMIN_PASSWORD })
  });
  token = ((await login.json()) as { token: string }).token;
  const project = await api('/api/projects', {
    name: projectName,
    image: '127.0.0.1:5999/swarm/app',
    container_port: 8080
  });
  projectId = project.id as number;
  await api(`/api/projects/${projectId}/stages`, { name: 'prod', auto_deploy: false });
  browser = await launch();
  page = browser.page;
  page.setDefaultTimeout(30_000);
});

afterAll(async () => {
  await browser?.close().catch(() => {});
  await daemon?.stop();
});

const url = (path: string) => `${daemon!.url}${path}`;

describe('a stage as a Swarm service in the browser', () => {
  it('signs in and opens the stage form', async () => {
    await page.goto(url('/login'));
    await page.getByLabel('Username', { exact: true }).fill('admin');
    await page.getByLabel('Password', { exact: true }).fill(ADMIN_PASSWORD);
    await page.getByRole('button', { name: 'Sign in' }).click();
    await page.getByRole('heading', { name: 'Dashboard' }).waitFor();
    await page.goto(url(`/projects/${projectId}`));
    await page.locator('[data-stage=prod]').getByRole('button', { name: 'Edit' }).click();
  });

  it('refuses a swarm target on an engine that is not a manager, saying what to do', async () => {
    const form = page.getByRole('form', { name: 'Edit stage prod' });
    await form.getByLabel('Target').selectOption('swarm');
    await form.getByLabel('Replicas').fill('3');
    await form.getByRole('button', { name: 'Save stage' }).click();
    const reason = form.getByText(/not part of a swarm/).first();
    await reason.waitFor();
    expect(await reason.innerText()).toContain('docker swarm init');
    const stage = await api(`/api/stages/${(await stageId())}`);
    expect((stage.target as { kind: string }).kind).toBe('container');
  });

  it('saves the container target again', async () => {
    const form = page.getByRole('form', { name: 'Edit stage prod' });
    await form.getByLabel('Target').selectOption('container');
    await form.getByRole('button', { name: 'Save stage' }).click();
    await form.waitFor({ state: 'detached' });
    await page.locator('[data-stage=prod]').getByText('max 1 instance').waitFor();
  });
});

async function stageId(): Promise<number> {
  const response = await fetch(url(`/api/projects/${projectId}/stages`), {
    headers: { authorization: `Bearer ${token}` }
  });
  const stages = (await response.json()) as { id: number; name: string }[];
  return stages.find((s) => s.name === 'prod')!.id;
}
