// Resources a projects file manages are read-only in the UI: a file is applied over the
// API (as CI would), then the project page, its stage, the registries page and the
// settings page (and a notification target) show where each is written and offer no edit
// or delete (deploying and test sends stay);
// a project made by hand next to it keeps its edit controls.

import { randomBytes } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Page } from 'playwright-core';
import { startSession, type Session } from './support/session';

const suffix = randomBytes(4).toString('hex');
const managedName = `filed-${suffix}`;
const handName = `byhand-${suffix}`;
const registryName = `reg-${suffix}`;

const projectsFile = `[settings]
poll_interval_secs = 600

[[registries]]
name = "${registryName}"
kind = "oci"
base_url = "http://127.0.0.1:5999"
insecure = true

[[projects]]
name = "${managedName}"
image = "127.0.0.1:5999/acme/${managedName}"
registry = "${registryName}"
container_port = 8080

[[projects.stages]]
name = "dev"

[[notifications]]
name = "filed-hook-${suffix}"
url = { env = "HOOK_URL" }
`;

let s: Session;
let page: Page;

beforeAll(async () => {
  s = await startSession();
  page = s.page;
  const applied = await s.call('POST', '/api/apply', {
    files: [{ name: 'deploy/projects.toml', content: projectsFile }],
    secrets: { 'env:HOOK_URL': 'http://127.0.0.1:9/hook' }
  });
  expect(applied.status, JSON.stringify(applied.json)).toBe(200);
  const byHand = await s.call('POST', '/api/projects', { name: handName, image: 'nginx', container_port: 80 });
  expect(byHand.status).toBe(201);
});

afterAll(async () => {
  await s?.close();
});

describe('managed resources in the UI', () => {
  it('signs in', async () => {
    await page.goto(s.url('/login'));
    await s.signIn();
  });

  it('shows a managed project read-only, with where it is written', async () => {
    await page.goto(s.url('/projects'));
    await page.getByRole('link', { name: managedName }).click();
    await page.getByRole('heading', { name: managedName }).waitFor();
    const note = page.getByTestId('managed-note');
    await note.waitFor();
    expect(await note.innerText()).toContain('deploy/projects.toml, line 10');
    const header = page.locator('.spread').first();
    expect(await header.getByRole('button', { name: 'Edit' }).count()).toBe(0);
    expect(await header.getByRole('button', { name: 'Delete' }).count()).toBe(0);
    expect(await page.getByRole('button', { name: 'Add stage' }).count()).toBe(0);
    // The stage: deploying stays, editing and deleting do not.
    const stage = page.locator('[data-stage=dev]');
    await stage.getByRole('button', { name: 'Deploy a tag' }).waitFor();
    expect(await stage.getByRole('button', { name: 'Edit' }).count()).toBe(0);
    expect(await stage.getByRole('button', { name: 'Delete' }).count()).toBe(0);
    await s.browser.screenshot('project-managed', 'desktop');
  });

  it('keeps a project made by hand editable', async () => {
    await page.goto(s.url('/projects'));
    await page.getByRole('link', { name: handName }).click();
    await page.getByRole('heading', { name: handName }).waitFor();
    await page.getByRole('button', { name: 'Edit' }).first().waitFor();
    await page.getByRole('button', { name: 'Add stage' }).waitFor();
    expect(await page.getByTestId('managed-note').count()).toBe(0);
  });

  it('shows a managed registry and the settings read-only', async () => {
    await page.goto(s.url('/registries'));
    const card = page.locator(`[data-registry="${registryName}"]`);
    await card.getByTestId('managed-note').waitFor();
    expect(await card.getByRole('button', { name: 'Edit' }).count()).toBe(0);
    expect(await card.getByRole('button', { name: 'Delete' }).count()).toBe(0);

    await page.goto(s.url('/settings'));
    // The settings' note comes first; the notification target's is its own.
    await page.getByTestId('managed-note').first().waitFor();
    const fieldset = page.locator('fieldset.readonly');
    expect(await fieldset.getAttribute('disabled')).not.toBeNull();
    // A field inside can no longer be typed into.
    const inputs = fieldset.locator('input');
    expect(await inputs.count()).toBeGreaterThan(0);
    expect(await inputs.first().isDisabled()).toBe(true);

    // A managed notification target says where it is written and offers no edit.
    const target = page.getByRole('listitem').filter({ hasText: `filed-hook-${suffix}` });
    await target.getByTestId('managed-note').waitFor();
    expect(await target.getByRole('button', { name: 'Edit' }).count()).toBe(0);
    expect(await target.getByRole('button', { name: 'Delete' }).count()).toBe(0);
    expect(await target.getByRole('button', { name: 'Send test' }).count()).toBe(1);
  });
});
