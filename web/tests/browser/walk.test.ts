// A new user's path through the UI, in a real browser, against the real daemon with a
// real Docker Engine and registry: sign in, add a registry and test it, create a project
// (after a refused one) and a stage, deploy a tag and watch its log to success, see the
// instance on the dashboard, deploy a second tag and roll back, regenerate the webhook
// URL, and come back to the login page when the session is gone. Screenshots of every
// main page at desktop and phone sizes go to test-artifacts/screenshots/, each page
// checked with axe-core first (no serious or critical violations).

import { randomBytes } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Page } from 'playwright-core';
import { ADMIN_PASSWORD } from './support/daemon';
import { PHONE, DESKTOP } from './support/browser';
import { startSession, type RegistrySession } from './support/session';
import { seriousViolations } from './support/axe';

const TEST_IMAGE = 'dw-test/app:healthy';
const suffix = randomBytes(4).toString('hex');
const projectName = `e2e-${suffix}`;
const repository = `e2e/app-${suffix}`;
const registryName = `local-${suffix}`;

let s: RegistrySession;
let page: Page;

beforeAll(async () => {
  s = await startSession({ registry: true, project: projectName });
  page = s.page;
  await s.registry.push(TEST_IMAGE, repository, 'v1');
  await s.registry.push(TEST_IMAGE, repository, 'v2');
  // Every page the walk takes a picture of is checked with axe first.
  const screenshot = s.browser.screenshot;
  s.browser.screenshot = async (name, size) => {
    expect(await seriousViolations(page), `axe on ${name} (${size})`).toEqual([]);
    return screenshot(name, size);
  };
});

afterAll(async () => {
  await s?.close();
});

/** Waits for the deploy page to show a final status and says which (with the log if not success). */
async function finalStatus(): Promise<string> {
  const badge = page.locator(
    '[data-testid=deploy-status] [data-status=success], [data-testid=deploy-status] [data-status=failed], [data-testid=deploy-status] [data-status=rolled_back]'
  );
  try {
    await badge.waitFor({ timeout: 180_000 });
  } catch (e) {
    // A deploy that never ends is the hardest failure to read afterwards: keep what the
    // page and the daemon said.
    console.error(
      'no final status; page log:\n',
      await page.getByRole('log', { name: 'Deploy log' }).innerText().catch(() => '(no log on the page)'),
      '\n--- daemon log ---\n',
      s.daemon.log().slice(-20000)
    );
    throw e;
  }
  const status = (await badge.getAttribute('data-status')) ?? '';
  if (status !== 'success') {
    console.error(await page.getByRole('log', { name: 'Deploy log' }).innerText(), '\n--- daemon log ---\n', s.daemon.log().slice(-4000));
  }
  return status;
}

async function deployTag(tag: string): Promise<string> {
  await page.goto(s.url('/projects'));
  await page.getByRole('link', { name: projectName }).click();
  const stage = page.locator('[data-stage=dev]');
  await stage.getByRole('button', { name: 'Deploy a tag' }).click();
  const form = page.getByRole('form', { name: 'Deploy a tag to dev' });
  // The registry's tags are offered to pick from.
  await form.getByRole('button', { name: tag, exact: true }).waitFor();
  await form.getByRole('button', { name: tag, exact: true }).click();
  await expectValue(form.getByLabel('Tag to deploy to dev'), tag);
  await form.getByRole('button', { name: 'Deploy', exact: true }).click();
  await page.waitForURL(/\/deploys\/\d+$/);
  return page.url();
}

async function expectValue(locator: ReturnType<Page['locator']>, value: string) {
  expect(await locator.inputValue()).toBe(value);
}

async function currentTagOnDashboard(): Promise<string> {
  await page.goto(s.url('/'));
  const cell = page.locator(`[data-project="${projectName}"] [data-stage=dev] [data-testid=current-tag]`);
  await cell.waitFor();
  return (await cell.innerText()).trim();
}

describe('a new user in the browser', () => {
  it('signs in', async () => {
    await page.goto(s.url('/'));
    await page.waitForURL(/\/login\?next=/);
    // A first visit is no expired session.
    expect(await page.getByText('Your session has ended').count()).toBe(0);
    await s.browser.screenshot('login', 'desktop');
    await page.getByLabel('Username', { exact: true }).fill('admin');
    await page.getByLabel('Password', { exact: true }).fill('wrong-password');
    await page.getByRole('button', { name: 'Sign in' }).click();
    await page.getByRole('alert').filter({ hasText: 'wrong username or password' }).waitFor();
    await page.getByLabel('Password', { exact: true }).fill(ADMIN_PASSWORD);
    await page.getByRole('button', { name: 'Sign in' }).click();
    await page.getByRole('heading', { name: 'Dashboard' }).waitFor();
    expect(new URL(page.url()).pathname).toBe('/');
    await page.getByText('● live').waitFor();
  });

  it('adds a registry and tests the connection', async () => {
    await page.getByRole('navigation').getByRole('link', { name: 'Registries' }).click();
    await page.getByRole('button', { name: 'Add registry' }).click();
    const form = page.getByRole('form', { name: 'New registry' });
    await form.getByLabel('Name', { exact: true }).fill(registryName);
    await form.getByLabel('Kind').selectOption('oci');
    await form.getByLabel('Base URL').fill(s.registry.url);
    await form.getByLabel('Plain HTTP (insecure)').check();
    await form.getByRole('button', { name: 'Add registry' }).click();
    const card = page.locator(`[data-registry="${registryName}"]`);
    // Saving runs a first check; then test again with the repository to list.
    await card.locator('[data-testid=check-result] .notice.ok').waitFor();
    await card.getByLabel('Repository to list (optional)').fill(repository);
    await card.getByRole('button', { name: 'Test connection' }).click();
    const result = card.locator('[data-testid=check-result] .notice');
    await result.filter({ hasText: '2' }).waitFor();
    expect(await result.getAttribute('class')).toContain('ok');
    await s.browser.screenshot('registries', 'desktop');
  });

  it('creates a project, with the refused field explained beside it first', async () => {
    await page.getByRole('navigation').getByRole('link', { name: 'Projects' }).click();
    await page.getByRole('button', { name: 'New project' }).click();
    const form = page.getByRole('form', { name: 'New project' });
    await form.getByLabel('Name', { exact: true }).fill('Not A DNS Name');
    await form.getByLabel('Image', { exact: true }).fill(`${s.registry.host}/${repository}`);
    await form.getByLabel('Registry', { exact: true }).selectOption({ label: `${registryName} — ${s.registry.url}` });
    await form.getByLabel('Container port').fill('8080');
    await form.getByLabel('Health-check path').fill('/health');
    await form.getByRole('button', { name: 'Create project' }).click();
    const nameError = form.locator('#new-project-name-error');
    await nameError.filter({ hasText: /\S/ }).waitFor();
    expect(await form.getByLabel('Name', { exact: true }).getAttribute('aria-invalid')).toBe('true');
    expect(await form.locator('#new-project-image-error').innerText()).toBe('');
    await s.browser.screenshot('project-form-error', 'desktop');
    await form.getByLabel('Name', { exact: true }).fill(projectName);
    await form.getByRole('button', { name: 'Create project' }).click();
    await page.waitForURL(/\/projects\/\d+$/);
    await page.getByRole('heading', { name: projectName, level: 1 }).waitFor();
  });

  it('adds a stage', async () => {
    await page.getByRole('button', { name: 'Add stage' }).click();
    const form = page.getByRole('form', { name: 'New stage' });
    await form.getByLabel('Stage name').fill('dev');
    await form.getByLabel('Tag pattern').fill('v*');
    await form.getByLabel('Max instances').fill('1');
    await form.getByLabel('Deploy new tags automatically').uncheck();
    await form.getByRole('button', { name: 'Add stage' }).click();
    await page.locator('[data-stage=dev]').getByRole('heading', { name: /dev/ }).waitFor();
    expect(await page.locator('[data-stage=dev]').innerText()).toContain('Manual deploys only');
  });

  it('deploys a tag and follows its log to success', async () => {
    await deployTag('v1');
    // The log streams into its fixed-height area; the stream ends with the deploy.
    const log = page.getByRole('log', { name: 'Deploy log' });
    await log.locator('.line').first().waitFor();
    expect(await finalStatus()).toBe('success');
    await page.locator('[data-testid=stream-state][data-phase=ended]').waitFor();
    const text = await log.innerText();
    expect(text).toContain('pull');
    expect(text).toContain('health_check');
    expect(text).toContain('done');
    const box = await log.boundingBox();
    expect(box?.height).toBeGreaterThan(200);
    expect(await page.locator('.steps li.step-failed').count()).toBe(0);
    await s.browser.screenshot('deploy', 'desktop');
  });

  it('shows the running instance on the dashboard', async () => {
    expect(await currentTagOnDashboard()).toBe('v1');
    const row = page.locator(`[data-project="${projectName}"] [data-stage=dev]`);
    await row.locator('[data-instance] [data-status=running]').waitFor();
    await row.locator('.deploy-link [data-status=success]').waitFor();
    await s.browser.screenshot('dashboard', 'desktop');
  });

  it('deploys a second tag, then rolls back to the first', async () => {
    await deployTag('v2');
    expect(await finalStatus()).toBe('success');
    expect(await currentTagOnDashboard()).toBe('v2');

    await page.goto(s.url('/projects'));
    await page.getByRole('link', { name: projectName }).click();
    await page.locator('[data-stage=dev]').getByRole('button', { name: 'Roll back' }).click();
    const dialog = page.getByRole('dialog', { name: 'Roll back dev?' });
    await dialog.waitFor();
    await s.browser.screenshot('confirm-rollback', 'desktop');
    await dialog.getByRole('button', { name: 'Roll back' }).click();
    await page.waitForURL(/\/deploys\/\d+$/);
    expect(await finalStatus()).toBe('success');
    expect(await page.locator('dl.facts').innerText()).toContain('v1');
    expect(await currentTagOnDashboard()).toBe('v1');
    await page.goto(s.url('/projects'));
    await page.getByRole('link', { name: projectName }).waitFor();
    await s.browser.screenshot('projects', 'desktop');
    await page.getByRole('link', { name: projectName }).click();
    await page.locator('[data-stage=dev] [data-instance]').first().waitFor();
    await s.browser.screenshot('project', 'desktop');
  });

  it('lists the deploys, filtered', async () => {
    await page.getByRole('navigation').getByRole('link', { name: 'Deploys' }).click();
    await page.locator('tr[data-deploy]').nth(2).waitFor();
    expect(await page.locator('tr[data-deploy]').count()).toBe(3);
    await page.getByLabel('Status', { exact: true }).selectOption('failed');
    await page.getByText('No deploys match these filters.').waitFor();
    await page.getByLabel('Status', { exact: true }).selectOption('success');
    await page.locator('tr[data-deploy]').nth(2).waitFor();
    expect(page.url()).toContain('status=success');
    await s.browser.screenshot('deploys', 'desktop');
  });

  it('regenerates the webhook URL after a warning', async () => {
    await page.getByRole('navigation').getByRole('link', { name: 'Settings' }).click();
    const input = page.getByLabel('Webhook URL');
    await page.waitForFunction(() => {
      const input = document.getElementById('webhook-url') as HTMLInputElement | null;
      return input !== null && input.value !== '';
    });
    const before = await input.inputValue();
    expect(before).toMatch(new RegExp(`^${s.daemon.url}/api/webhook/.+`));
    await page.getByRole('button', { name: 'Regenerate URL' }).click();
    const dialog = page.getByRole('dialog', { name: 'Regenerate the webhook URL?' });
    expect(await dialog.innerText()).toContain('stops working');
    await dialog.getByRole('button', { name: 'Regenerate' }).click();
    await page.getByText('the old one no longer works').waitFor();
    const after = await input.inputValue();
    expect(after).not.toBe(before);
    expect(after).toMatch(new RegExp(`^${s.daemon.url}/api/webhook/.+`));
    // The old URL is now just an unknown path.
    const old = await fetch(before, {
      method: 'POST',
      headers: { 'Content-Type': 'application/json' },
      body: JSON.stringify({ image: `${s.registry.host}/${repository}:v1` })
    });
    expect(old.status).toBe(404);
    await s.browser.screenshot('settings', 'desktop');
  });

  it('has every main page usable at phone width', async () => {
    await page.setViewportSize(PHONE);
    const pages: [string, string][] = [
      ['dashboard', '/'],
      ['projects', '/projects'],
      ['deploys', '/deploys'],
      ['registries', '/registries'],
      ['settings', '/settings']
    ];
    for (const [name, path] of pages) {
      await page.goto(s.url(path));
      await page.getByRole('heading', { level: 1 }).waitFor();
      await page.locator('text=Loading…').waitFor({ state: 'detached' });
      await s.browser.screenshot(name, 'phone');
      const overflow = await page.evaluate(() => document.documentElement.scrollWidth - window.innerWidth);
      expect(overflow, `${path} scrolls sideways at 375 px`).toBeLessThanOrEqual(0);
    }
    await page.getByRole('link', { name: 'Deploys' }).click();
    await page.locator('tr[data-deploy] a').first().click();
    await finalStatus();
    await s.browser.screenshot('deploy', 'phone');
    await page.goto(s.url('/projects'));
    await page.getByRole('link', { name: projectName }).click();
    await page.locator('[data-stage=dev] [data-instance]').first().waitFor();
    await s.browser.screenshot('project', 'phone');
    expect(await page.evaluate(() => document.documentElement.scrollWidth - window.innerWidth)).toBeLessThanOrEqual(0);
    await page.setViewportSize(DESKTOP);
  });

  it('returns to the login page when the session has ended', async () => {
    await page.goto(s.url('/projects'));
    await page.getByRole('heading', { name: 'Projects' }).waitFor();
    await s.browser.context.clearCookies();
    await page.getByRole('navigation').getByRole('link', { name: 'Deploys' }).click();
    await page.waitForURL(/\/login\?next=%2Fdeploys&expired=1$/);
    await page.getByText('Your session has ended').waitFor();
    await page.setViewportSize(PHONE);
    await s.browser.screenshot('login', 'phone');
    await page.setViewportSize(DESKTOP);
    await page.getByLabel('Password', { exact: true }).fill(ADMIN_PASSWORD);
    await page.getByRole('button', { name: 'Sign in' }).click();
    await page.waitForURL(/\/deploys$/);
    await page.getByRole('heading', { name: 'Deploys' }).waitFor();
  });
});
