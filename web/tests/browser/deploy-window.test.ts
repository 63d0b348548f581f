// Deploying a tag by hand on a stage whose deploy window is closed, in a real browser
// against the real daemon: without the box ticked the deploy waits as `scheduled`; with
// "Start now, outside the deploy windows" it starts at once (the API's outside_window).
// Nothing listens at the project's registry, so the started deploy fails at its pull and
// no container is made: what is checked is that it started. Redeploying from the stage's
// recent deploys asks the same question in the confirmation dialog.

import { randomBytes } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Page } from 'playwright-core';
import { startSession, type Session } from './support/session';
import { freePort } from './support/processes';

const projectName = `win-${randomBytes(4).toString('hex')}`;

let s: Session;
let page: Page;
let projectId = 0;

interface DeployView {
  id: number;
  status: string;
  outside_window?: boolean;
}

beforeAll(async () => {
  s = await startSession({ project: projectName });
  page = s.page;
  const project = await s.api<{ id: number }>('POST', '/api/projects', {
    name: projectName,
    image: `127.0.0.1:${await freePort()}/acme/${projectName}`,
    container_port: 8080
  });
  projectId = project.id;
  // Open for half an hour, two hours from now: closed for the whole test.
  const hour = String((new Date().getUTCHours() + 2) % 24).padStart(2, '0');
  await s.api('POST', `/api/projects/${projectId}/stages`, {
    name: 'prod',
    auto_deploy: false,
    deploy_windows: [`${hour}:00-${hour}:30`],
    window_timezone: 'UTC'
  });
});

afterAll(async () => {
  await s?.close();
});

/** Deploys `tag` to prod from the project page; the deploy the page went to. */
async function deployFromTheForm(tag: string, outside: boolean): Promise<DeployView> {
  await page.goto(s.url(`/projects/${projectId}`));
  const stage = page.locator('[data-stage=prod]');
  await stage.getByRole('button', { name: 'Deploy a tag' }).click();
  const form = page.getByRole('form', { name: 'Deploy a tag to prod' });
  await form.getByLabel('Tag to deploy to prod').fill(tag);
  const box = form.getByLabel('Start now, outside the deploy windows');
  if (outside) await box.check();
  else expect(await box.isChecked()).toBe(false);
  await form.getByRole('button', { name: 'Deploy', exact: true }).click();
  await page.waitForURL(/\/deploys\/\d+$/);
  const id = Number(new URL(page.url()).pathname.split('/').pop());
  return s.api<DeployView>('GET', `/api/deploys/${id}`);
}

describe('deploying outside the deploy windows', () => {
  it('signs in', async () => {
    await page.goto(s.url('/login'));
    await s.signIn();
  });

  it('waits for the window without the box', async () => {
    const deploy = await deployFromTheForm('v1', false);
    expect(deploy.status).toBe('scheduled');
    expect(deploy.outside_window ?? false).toBe(false);
  });

  it('starts at once with it', async () => {
    const deploy = await deployFromTheForm('v2', true);
    expect(deploy.outside_window).toBe(true);
    await expect
      .poll(async () => (await s.api<DeployView>('GET', `/api/deploys/${deploy.id}`)).status, { timeout: 60_000 })
      .toMatch(/^(pending|running|failed|rolled_back|success)$/);
    expect((await s.api<DeployView>('GET', `/api/deploys/${deploy.id}`)).status).not.toBe('scheduled');
  });

  it('redeploys from the recent deploys, waiting or starting now as asked', async () => {
    for (const outside of [false, true]) {
      await page.goto(s.url(`/projects/${projectId}`));
      const stage = page.locator('[data-stage=prod]');
      await stage.getByRole('button', { name: 'Redeploy v2' }).first().click();
      const dialog = page.getByRole('dialog', { name: 'Redeploy v2 to prod?' });
      const box = dialog.getByLabel('Start now, outside the deploy windows');
      expect(await box.isChecked()).toBe(false);
      if (outside) await box.check();
      await dialog.getByRole('button', { name: 'Redeploy' }).click();
      await page.waitForURL(/\/deploys\/\d+$/);
      const id = Number(new URL(page.url()).pathname.split('/').pop());
      const deploy = await s.api<DeployView>('GET', `/api/deploys/${id}`);
      expect(deploy.outside_window ?? false).toBe(outside);
      if (!outside) expect(deploy.status).toBe('scheduled');
      else expect(deploy.status).not.toBe('scheduled');
    }
  });
});
