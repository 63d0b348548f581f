// The release workflow in a real browser against the real daemon, Docker Engine and
// registry: a stage is made to need one approval in its form, a deploy of it waits, shows
// up under "Waiting for approval" on the dashboard, is approved there and deploys; its
// page says who approved; the audit log page shows the approval and the stage change.

import { randomBytes } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Page } from 'playwright-core';
import { startSession, type RegistrySession } from './support/session';

const TEST_IMAGE = 'dw-test/app:healthy';
const suffix = randomBytes(4).toString('hex');
const projectName = `rel-${suffix}`;
const repository = `rel/app-${suffix}`;

let s: RegistrySession;
let page: Page;
let projectId = 0;

beforeAll(async () => {
  s = await startSession({ registry: true, project: projectName });
  page = s.page;
  await s.registry.push(TEST_IMAGE, repository, 'v1');
  const project = await s.api('POST', '/api/projects', {
    name: projectName,
    image: `${s.registry.host}/${repository}`,
    container_port: 8080,
    health_path: '/health'
  });
  projectId = project.id as number;
  await s.api('POST', `/api/projects/${projectId}/stages`, { name: 'prod', auto_deploy: false });
});

afterAll(async () => {
  await s?.close();
});

describe('approving a deploy in the browser', () => {
  it('signs in and makes the stage need one approval', async () => {
    await page.goto(s.url('/login'));
    await s.signIn();
    await page.getByRole('heading', { name: 'Dashboard' }).waitFor();
    await page.goto(s.url(`/projects/${projectId}`));
    const stage = page.locator('[data-stage=prod]');
    await stage.getByRole('button', { name: 'Edit' }).click();
    const form = page.getByRole('form', { name: 'Edit stage prod' });
    await form.getByLabel('Approvals required').fill('1');
    await form.getByLabel('Version policy').selectOption('forward');
    await form.getByRole('button', { name: 'Save stage' }).click();
    await form.waitFor({ state: 'detached' });
  });

  it('deploys a tag, which waits for approval', async () => {
    const stage = page.locator('[data-stage=prod]');
    await stage.getByRole('button', { name: 'Deploy a tag' }).click();
    const form = page.getByRole('form', { name: 'Deploy a tag to prod' });
    await form.getByLabel('Tag to deploy to prod').fill('v1');
    await form.getByRole('button', { name: 'Deploy', exact: true }).click();
    await page.waitForURL(/\/deploys\/\d+$/);
    await page.locator('[data-testid=deploy-status] [data-status=awaiting_approval]').waitFor();
    await page.getByTestId('approval').getByText('0 of 1 approvals').waitFor();
  });

  it('approves it from the dashboard, and it deploys', async () => {
    const deployPath = new URL(page.url()).pathname;
    const deployId = deployPath.split('/').pop();
    await page.getByRole('navigation').getByRole('link', { name: 'Dashboard' }).click();
    const waiting = page.getByTestId('waiting-deploys');
    await waiting.getByRole('heading', { name: 'Waiting for approval' }).waitFor();
    const row = waiting.locator(`[data-deploy="${deployId}"]`);
    await row.getByText(projectName).waitFor();
    await s.browser.screenshot('waiting-for-approval', 'desktop');
    await row.getByRole('button', { name: 'Approve' }).click();
    // Approved: it leaves the list (the list hides when nothing waits).
    await row.waitFor({ state: 'detached' });
    await page.goto(s.url(deployPath));
    await page.locator('[data-testid=deploy-status] [data-status=success]').waitFor({ timeout: 180_000 });
    expect(await page.getByRole('log', { name: 'Deploy log' }).innerText()).toContain('approved by user:admin');
  });

  it('shows the approval and the stage change in the audit log', async () => {
    await page.getByRole('navigation').getByRole('link', { name: 'Audit' }).click();
    const table = page.getByTestId('audit-table');
    await table.waitFor();
    const approve = table.locator('tr[data-action="deploy.approve"]');
    await approve.waitFor();
    expect(await approve.innerText()).toContain('admin');
    const update = table.locator('tr[data-action="stage.update"]');
    expect(await update.innerText()).toContain('approvals_required: 0 → 1');
    // The result is written just after the deploy's status: reload until it is there.
    const finish = table.locator('tr[data-action="deploy.finish"]');
    for (let i = 0; i < 50 && (await finish.count()) === 0; i++) {
      await page.waitForTimeout(200);
      await page.reload();
      await table.waitFor();
    }
    expect(await finish.innerText()).toContain('success');
    await s.browser.screenshot('audit', 'desktop');
  });
});
