// Editing what the settings page holds, in a real browser against the real daemon: an
// existing notification target's events, template and URL (the stored URL, which carries
// a token, is never shown: the new one replaces it, an empty field keeps it; a local
// receiver on 127.0.0.1 sees where test sends go), a refused template explained, and the
// retention limits (the audit log's days refused out of range, then saved), and the
// webhook signing secret (set, never shown, proven by pushes, removed).

import { createHmac } from 'node:crypto';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Page } from 'playwright-core';
import { startSession, type Session } from './support/session';
import { seriousViolations } from './support/axe';

const OLD_SECRET = 'old-s3cret-token';

let s: Session;
let page: Page;
let receiver: Server;
const received: { path: string; body: Record<string, unknown> }[] = [];
let targetId = 0;

beforeAll(async () => {
  receiver = createServer((req, res) => {
    let text = '';
    req.on('data', (d) => (text += d));
    req.on('end', () => {
      received.push({ path: req.url ?? '', body: JSON.parse(text) });
      res.writeHead(204).end();
    });
  });
  await new Promise<void>((done) => receiver.listen(0, '127.0.0.1', done));
  s = await startSession();
  page = s.page;
  const created = await s.api<{ id: number }>('POST', '/api/notifications', {
    name: 'ops-hook',
    url: `http://127.0.0.1:${port()}/old?token=${OLD_SECRET}`,
    events: ['success', 'failure']
  });
  targetId = created.id;
});

afterAll(async () => {
  await s?.close();
  await new Promise((done) => receiver?.close(done));
});

const port = () => (receiver.address() as AddressInfo).port;
const item = () => page.getByRole('listitem').filter({ hasText: 'ops-hook' });
const editForm = () => page.getByRole('form', { name: 'Edit notification target ops-hook' });

/** Sends a test from the target's row and returns what the receiver got. */
async function sendTest(): Promise<{ path: string; body: Record<string, unknown> }> {
  const before = received.length;
  await item().getByRole('button', { name: 'Send test' }).click();
  await item().getByText('sent; the target accepted it').waitFor();
  await expect.poll(() => received.length).toBe(before + 1);
  return received[before];
}

describe('editing settings', () => {
  it('signs in and opens the settings', async () => {
    await page.goto(s.url('/login'));
    await s.signIn();
    await page.goto(s.url('/settings'));
    await page.getByRole('heading', { name: 'Notifications' }).waitFor();
  });

  it('opens a target for editing without ever showing its stored URL', async () => {
    await item().getByRole('button', { name: 'Edit' }).click();
    const form = editForm();
    await form.waitFor();
    expect(await form.getByLabel('Name', { exact: true }).inputValue()).toBe('ops-hook');
    expect(await form.getByLabel('New URL', { exact: true }).inputValue()).toBe('');
    expect(await form.getByLabel('Success', { exact: true }).isChecked()).toBe(true);
    expect(await form.getByLabel('Rollback', { exact: true }).isChecked()).toBe(false);
    expect(await page.content()).not.toContain(OLD_SECRET);
    expect(await seriousViolations(page), 'axe on the edit form').toEqual([]);
  });

  it('refuses a broken template with the reason, and changes nothing', async () => {
    const form = editForm();
    await form.getByLabel('Title template').fill('{% if %}');
    await form.getByRole('button', { name: 'Save target' }).click();
    await form.getByRole('alert').filter({ hasText: 'template' }).first().waitFor();
    const stored = await s.api<{ title_template: string | null }>('GET', `/api/notifications/${targetId}`);
    expect(stored.title_template).toBeNull();
  });

  it('saves new events, a template and a new URL, which the next test send uses', async () => {
    const form = editForm();
    await form.getByLabel('Title template').fill('{{ project }} edited: {{ event }}');
    await form.getByLabel('Success', { exact: true }).uncheck();
    await form.getByLabel('Rollback', { exact: true }).check();
    await form.getByLabel('New URL', { exact: true }).fill(`http://127.0.0.1:${port()}/new`);
    await form.getByRole('button', { name: 'Save target' }).click();
    await form.waitFor({ state: 'detached' });
    const stored = await s.api<{ events: string[]; title_template: string }>('GET', `/api/notifications/${targetId}`);
    expect(stored.events).toEqual(['failure', 'rollback']);
    expect(stored.title_template).toBe('{{ project }} edited: {{ event }}');
    expect(await item().getByRole('checkbox', { name: 'Success' }).isChecked()).toBe(false);
    const sent = await sendTest();
    expect(sent.path).toBe('/new');
    expect(sent.body.title).toBe('shop edited: success');
  });

  it('keeps the stored URL when the field is left empty', async () => {
    await item().getByRole('button', { name: 'Edit' }).click();
    const form = editForm();
    expect(await form.getByLabel('New URL', { exact: true }).inputValue()).toBe('');
    await form.getByLabel('Body template').fill('tag {{ tag }}');
    await form.getByRole('button', { name: 'Save target' }).click();
    await form.waitFor({ state: 'detached' });
    const sent = await sendTest();
    expect(sent.path).toBe('/new');
    expect(String(sent.body.message)).toContain('tag test-notification');
    const answers = await page.request.get(s.url('/api/notifications'));
    expect(await answers.text()).not.toContain('/new');
  });

  it('refuses an audit retention out of range beside the field, then saves one', async () => {
    const days = page.getByLabel('Audit log: days kept');
    await days.fill('0');
    const card = page.locator('section', { has: page.getByRole('heading', { name: 'How long records are kept' }) });
    await card.getByRole('button', { name: 'Save' }).click();
    await expect.poll(() => page.locator('#set-audit-retention-days-error').innerText()).toContain('3650');
    expect(await days.getAttribute('aria-invalid')).toBe('true');
    await days.fill('30');
    await card.getByRole('button', { name: 'Save' }).click();
    await card.getByText('Saved.').waitFor();
    await page.reload();
    await expect.poll(() => page.getByLabel('Audit log: days kept').inputValue()).toBe('30');
    const settings = await s.api<{ audit_retention_days: number }>('GET', '/api/settings');
    expect(settings.audit_retention_days).toBe(30);
    await s.browser.screenshot('settings-retention', 'desktop');
  });

  it('sets the webhook signing secret without ever showing it, and removes it', async () => {
    const secret = 'sign-me-0123456789';
    // A generic push, signed (X-Hub-Signature-256, as the README says for any CI) or not.
    const push = async (signWith?: string) => {
      const { url } = await s.api<{ url: string }>('GET', '/api/settings/webhook');
      const body = JSON.stringify({ image: '127.0.0.1:9/acme/unknown:v1' });
      const headers: Record<string, string> = { 'content-type': 'application/json' };
      if (signWith) headers['x-hub-signature-256'] = `sha256=${createHmac('sha256', signWith).update(body).digest('hex')}`;
      return (await fetch(url, { method: 'POST', headers, body })).status;
    };
    expect(await page.getByTestId('signing-state').innerText()).toContain('No signing secret');
    await page.getByLabel('Signing secret', { exact: true }).fill(secret);
    await page.getByRole('button', { name: 'Save secret' }).click();
    await page.getByText('Senders must now prove this secret.').waitFor();
    expect(await page.getByTestId('signing-state').innerText()).toContain('A signing secret is set');
    expect(await page.getByLabel('Replace the signing secret').inputValue()).toBe('');
    await page.reload();
    expect(await page.content()).not.toContain(secret);
    expect((await s.api<{ has_webhook_signing_secret: boolean }>('GET', '/api/settings')).has_webhook_signing_secret).toBe(true);
    expect(await push()).toBe(401);
    expect(await push('a-wrong-secret')).toBe(401);
    expect(await push(secret)).toBe(202);

    await page.getByRole('button', { name: 'Remove secret' }).click();
    await page.getByRole('dialog', { name: 'Remove the signing secret?' }).getByRole('button', { name: 'Remove' }).click();
    await page.getByTestId('signing-state').filter({ hasText: 'No signing secret' }).waitFor();
    expect((await s.api<{ has_webhook_signing_secret: boolean }>('GET', '/api/settings')).has_webhook_signing_secret).toBe(false);
    expect(await seriousViolations(page), 'axe on the settings page').toEqual([]);
  });
});
