// The views of issue #19 in a real browser against the real daemon, Docker Engine and
// registry: every project and stage field the API takes is edited in the forms and seen
// saved (a refused one explained beside its input first); a running container's output is
// followed live while the container prints, on the deploy page and in the instance row;
// after a few deploys the stage shows its chart and tag timeline and the dashboard its
// strip of outcomes. Each new view is checked with axe and photographed at desktop and
// phone sizes.

import { randomBytes } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Locator, Page } from 'playwright-core';
import { PHONE, DESKTOP } from './support/browser';
import { startSession, type RegistrySession } from './support/session';
import { DOCKER, run } from './support/processes';
import { seriousViolations } from './support/axe';

const suffix = randomBytes(4).toString('hex');
const projectName = `ui-${suffix}`;
const repository = `e2e/ui-${suffix}`;
const volume = `dw-e2e-${suffix}-data`;

let s: RegistrySession;
let page: Page;
let projectId = 0;
let stageId = 0;

beforeAll(async () => {
  s = await startSession({ registry: true, project: projectName });
  page = s.page;
  await s.registry.push('dw-test/app:healthy', repository, 'v1');
  await s.registry.push('dw-test/app:healthy', repository, 'v2');
  await s.registry.push('dw-test/app:crash', repository, 'v3');
});

afterAll(async () => {
  await s?.close();
  await run(DOCKER, ['volume', 'rm', '-f', volume]).catch(() => {});
});

async function deployAndWait(tag: string): Promise<{ id: number; status: string }> {
  const deploy = await s.api<{ id: number }>('POST', `/api/stages/${stageId}/deploys`, { tag });
  for (;;) {
    const d = await s.api<{ id: number; status: string; finished: boolean }>('GET', `/api/deploys/${deploy.id}`);
    if (d.finished) return d;
    await new Promise((r) => setTimeout(r, 250));
  }
}

/** Makes the container print `text` as its own process would (PID 1's stdout or stderr). */
async function printIn(container: string, text: string, fd = 1) {
  await run(DOCKER, ['exec', container, 'sh', '-c', `echo '${text}' > /proc/1/fd/${fd}`]);
}

async function checkAndShoot(name: string) {
  for (const [size, viewport] of [
    ['desktop', DESKTOP],
    ['phone', PHONE]
  ] as const) {
    await page.setViewportSize(viewport);
    expect(await seriousViolations(page), `axe on ${name} (${size})`).toEqual([]);
    await s.browser.screenshot(name, size);
    const overflow = await page.evaluate(() => document.documentElement.scrollWidth - window.innerWidth);
    expect(overflow, `${name} scrolls sideways at ${viewport.width} px`).toBeLessThanOrEqual(0);
  }
  await page.setViewportSize(DESKTOP);
}

async function openProject() {
  await page.goto(s.url(`/projects/${projectId}`));
  await page.getByRole('heading', { name: projectName, level: 1 }).waitFor();
}

async function value(locator: Locator): Promise<string> {
  return locator.inputValue();
}

describe('every field, live container output, deploy history', () => {
  it('signs in', async () => {
    await page.goto(s.url('/login'));
    await s.signIn();
    await page.getByRole('heading', { name: 'Dashboard' }).waitFor();
  });

  it('creates a project with health timings, limits, volume, network and env, a refused limit explained first', async () => {
    await page.goto(s.url('/projects'));
    await page.getByRole('button', { name: 'New project' }).click();
    const form = page.getByRole('form', { name: 'New project' });
    await form.getByLabel('Name', { exact: true }).fill(projectName);
    await form.getByLabel('Image', { exact: true }).fill(`${s.registry.host}/${repository}`);
    await form.getByLabel('Container port').fill('8080');
    await form.getByLabel('Health-check path').fill('/health');
    await form.getByLabel('Check interval (ms)').fill('200');
    await form.getByLabel('Check timeout (ms)').fill('2000');
    await form.getByLabel('Retries').fill('3');
    await form.getByLabel('Start period (ms)').fill('2000');
    await form.getByLabel('Memory limit (MiB)').fill('1');
    await form.getByLabel('CPU limit (CPUs)').fill('0.5');
    await form.getByLabel('Docker network').fill(`dw-e2e-${suffix}-net`);
    await form.getByLabel('Volumes').fill(`${volume}:/data`);
    await form.getByRole('button', { name: 'Add variable' }).click();
    await form.getByLabel('Name of variable 1').fill('GREETING');
    await form.getByLabel('Value of variable 1').fill('hello');
    await form.getByRole('button', { name: 'Add variable' }).click();
    await form.getByLabel('Name of variable 2').fill('API_KEY');
    await form.getByLabel('Value of variable 2').fill('s3cret-value');
    await form.locator('.env-row').nth(1).getByLabel('secret').check();
    await form.getByRole('button', { name: 'Create project' }).click();

    // 1 MiB is below Docker's minimum: the reason stands beside the memory input.
    const memoryError = form.locator('#new-project-memory-error');
    await memoryError.filter({ hasText: '6 MiB' }).waitFor();
    expect(await form.getByLabel('Memory limit (MiB)').getAttribute('aria-invalid')).toBe('true');
    await checkAndShoot('project-form-fields');
    await form.getByLabel('Memory limit (MiB)').fill('64');
    await form.getByRole('button', { name: 'Create project' }).click();
    await page.waitForURL(/\/projects\/\d+$/);
    projectId = Number(new URL(page.url()).pathname.split('/').pop());

    // Saved: the API has every field, and the form opens with them after a reload.
    const saved = await s.api<Record<string, unknown>>('GET', `/api/projects/${projectId}`);
    expect(saved).toMatchObject({
      health_interval_ms: 200,
      health_timeout_ms: 2000,
      health_retries: 3,
      health_start_period_ms: 2000,
      memory_bytes: 64 * 1024 * 1024,
      nano_cpus: 500_000_000,
      network: `dw-e2e-${suffix}-net`,
      volumes: [`${volume}:/data`],
      env: [
        { name: 'GREETING', value: 'hello', secret: false },
        { name: 'API_KEY', secret: true }
      ]
    });
    expect(JSON.stringify(saved)).not.toContain('s3cret-value');
    await page.reload();
    await page.getByRole('button', { name: 'Edit', exact: true }).first().click();
    const edit = page.getByRole('form', { name: 'Edit project' });
    expect(await value(edit.getByLabel('Check interval (ms)'))).toBe('200');
    expect(await value(edit.getByLabel('Start period (ms)'))).toBe('2000');
    expect(await value(edit.getByLabel('Memory limit (MiB)'))).toBe('64');
    expect(await value(edit.getByLabel('CPU limit (CPUs)'))).toBe('0.5');
    expect(await value(edit.getByLabel('Value of variable 1'))).toBe('hello');
    // A secret is write-only: it comes back empty, and saving with it empty keeps it.
    expect(await value(edit.getByLabel('Value of variable 2'))).toBe('');
    // The network and volume were for the form; cleared, the deploys below need neither.
    await edit.getByLabel('Docker network').fill('');
    await edit.getByLabel('Volumes').fill('');
    await edit.getByRole('button', { name: 'Save project' }).click();
    await edit.waitFor({ state: 'detached' });
    const after = await s.api<Record<string, unknown>>('GET', `/api/projects/${projectId}`);
    expect(after).toMatchObject({ network: null, volumes: [], memory_bytes: 64 * 1024 * 1024 });
    expect((after.env as unknown[]).length).toBe(2);
  });

  it("edits a stage's env, container port and health path overrides", async () => {
    await openProject();
    await page.getByRole('button', { name: 'Add stage' }).click();
    const form = page.getByRole('form', { name: 'New stage' });
    await form.getByLabel('Stage name').fill('dev');
    await form.getByLabel('Tag pattern').fill('v*');
    await form.getByLabel('Deploy new tags automatically').uncheck();
    await form.getByLabel('Container port').fill('70000');
    await form.getByRole('button', { name: 'Add stage' }).click();
    await form.locator('[id$="-port-error"]').filter({ hasText: /\S/ }).waitFor();
    await form.getByLabel('Container port').fill('8080');
    await form.getByLabel('Health-check path').fill('/health');
    await form.getByRole('button', { name: 'Add variable' }).click();
    await form.getByLabel('Name of variable 1').fill('STAGE_NAME');
    await form.getByLabel('Value of variable 1').fill('dev');
    await form.getByRole('button', { name: 'Add stage' }).click();
    const panel = page.locator('[data-stage=dev]');
    await panel.getByRole('heading', { name: /dev/ }).waitFor();
    const stages = await s.api<{ id: number; container_port: number; health_path: string; env: unknown[] }[]>(
      'GET',
      `/api/projects/${projectId}/stages`
    );
    stageId = stages[0].id;
    expect(stages[0]).toMatchObject({
      container_port: 8080,
      health_path: '/health',
      env: [{ name: 'STAGE_NAME', value: 'dev', secret: false }]
    });
    await page.reload();
    await panel.getByRole('button', { name: 'Edit', exact: true }).click();
    const edit = page.getByRole('form', { name: 'Edit stage dev' });
    expect(await value(edit.getByLabel('Container port'))).toBe('8080');
    expect(await value(edit.getByLabel('Health-check path'))).toBe('/health');
    expect(await value(edit.getByLabel('Value of variable 1'))).toBe('dev');
    await checkAndShoot('stage-form-fields');
    await edit.getByRole('button', { name: 'Cancel' }).click();
  });

  it('follows the container output live on the deploy page and in the instance row', async () => {
    const deploy = await deployAndWait('v1');
    expect(deploy.status).toBe('success');
    const [instance] = await s.api<{ id: number; container_id: string; container_name: string }[]>(
      'GET',
      `/api/stages/${stageId}/instances`
    );
    // The env of project and stage reached the container.
    const env = await run(DOCKER, ['inspect', '--format', '{{json .Config.Env}}', instance.container_id]);
    for (const needle of ['GREETING=hello', 'API_KEY=s3cret-value', 'STAGE_NAME=dev']) expect(env).toContain(needle);

    await page.goto(s.url(`/deploys/${deploy.id}`));
    const output = page.getByRole('log', { name: 'Output of the deployed container' });
    await page.getByText('● following live').waitFor();
    await printIn(instance.container_id, `first line ${suffix}`);
    await output.getByText(`first line ${suffix}`).waitFor();
    await printIn(instance.container_id, `an error ${suffix}`, 2);
    await output.locator('.stderr', { hasText: `an error ${suffix}` }).waitFor();
    await checkAndShoot('deploy-container-output');

    await openProject();
    const row = page.locator(`[data-instance="${instance.container_name}"]`);
    await row.getByRole('button', { name: /^Logs/ }).click();
    const rowLog = row.getByRole('log', { name: `Output of ${instance.container_name}` });
    // The backlog first, then what the container prints now.
    await rowLog.getByText(`first line ${suffix}`).waitFor();
    await row.getByText('● following live').waitFor();
    await printIn(instance.container_id, `while watching ${suffix}`);
    await rowLog.getByText(`while watching ${suffix}`).waitFor();
    await checkAndShoot('instance-logs');
    // The container stops: the stream says so.
    await s.api('POST', `/api/instances/${instance.id}/stop`);
    await row.getByText('ended: the container stopped').waitFor();
    await s.api('POST', `/api/instances/${instance.id}/start`);
  });

  it('shows the chart, the tag timeline and the dashboard strip after a few deploys', async () => {
    expect((await deployAndWait('v2')).status).toBe('success');
    const crashed = await deployAndWait('v3');
    expect(['failed', 'rolled_back']).toContain(crashed.status);
    const back = await deployAndWait('v1');
    expect(back.status).toBe('success');
    // A push through the webhook: its deploy has a detection time, so a push-to-serving dot.
    await s.api('PUT', `/api/stages/${stageId}`, { auto_deploy: true });
    const { url: hook } = await s.api<{ url: string }>('GET', '/api/settings/webhook');
    const pushed = await fetch(hook, {
      method: 'POST',
      headers: { 'Content-Type': 'application/json' },
      body: JSON.stringify({ image: `${s.registry.host}/${repository}:v2` })
    });
    expect(pushed.status).toBeLessThan(300);
    for (;;) {
      const { deploys } = await s.api<{ deploys: { id: number; finished: boolean; status: string }[] }>(
        'GET',
        `/api/deploys?stage_id=${stageId}&limit=1`
      );
      if (deploys[0].id > back.id && deploys[0].finished) {
        expect(deploys[0].status).toBe('success');
        break;
      }
      await new Promise((r) => setTimeout(r, 250));
    }

    await openProject();
    const panel = page.locator('[data-stage=dev]');
    const chart = panel.locator('[data-testid=deploy-chart]');
    await chart.waitFor();
    const outcomes = await chart.locator('rect[data-outcome]').evaluateAll((rects) =>
      rects.map((r) => r.getAttribute('data-outcome'))
    );
    expect(outcomes).toEqual(['success', 'success', crashed.status, 'success', 'success']);
    // A push-to-serving dot only for the deploy a push started, on its bar.
    const dots = chart.locator('circle');
    expect(await dots.count()).toBe(1);
    expect(await dots.locator('title').textContent()).toMatch(new RegExp(`^#${back.id + 1} v2: serving .* after the push$`));
    const timeline = panel.getByRole('list', { name: 'Tags served by stage dev, oldest first' });
    expect((await timeline.locator('li .tag').allInnerTexts()).map((t) => t.trim())).toEqual(['v1', 'v2', 'v1', 'v2']);
    expect(await timeline.locator('li.current .tag').innerText()).toBe('v2');
    await checkAndShoot('deploy-history');

    await page.goto(s.url('/'));
    const strip = page.locator(`[data-project="${projectName}"] [data-stage=dev] [data-testid=outcome-strip]`);
    await strip.waitFor();
    const cells = await strip.locator('a[data-outcome]').evaluateAll((links) =>
      links.map((a) => a.getAttribute('data-outcome'))
    );
    expect(cells).toEqual(['success', 'success', crashed.status, 'success', 'success']);
    await checkAndShoot('dashboard-strip');
  });

  it('has an axe check that does find a serious violation when there is one', async () => {
    // The same check the pages pass, on a page given a field without a label.
    await page.evaluate(() => document.querySelector('main')?.append(document.createElement('input')));
    const found = await seriousViolations(page);
    expect(found.some((v) => v.startsWith('label '))).toBe(true);
  });
});
