// Notification targets in a real browser against the real daemon: a refused target shows
// the reason, the template preview renders, a JSON webhook target (a local receiver on
// 127.0.0.1) gets a test send with the target's own title, and its delivery status shows.

import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Page } from 'playwright-core';
import { startSession, type Session } from './support/session';

let s: Session;
let page: Page;
let receiver: Server;
const received: { path: string; contentType: string; body: Record<string, unknown> }[] = [];

beforeAll(async () => {
  receiver = createServer((req, res) => {
    let text = '';
    req.on('data', (d) => (text += d));
    req.on('end', () => {
      received.push({ path: req.url ?? '', contentType: req.headers['content-type'] ?? '', body: JSON.parse(text) });
      res.writeHead(204).end();
    });
  });
  await new Promise<void>((done) => receiver.listen(0, '127.0.0.1', done));
  s = await startSession();
  page = s.page;
});

afterAll(async () => {
  await s?.close();
  await new Promise((done) => receiver?.close(done));
});


describe('notification targets', () => {
  it('signs in and opens the settings', async () => {
    await page.goto(s.url('/login'));
    await s.signIn();
    await page.getByRole('heading', { name: 'Dashboard' }).waitFor();
    await page.goto(s.url('/settings'));
    await page.getByRole('heading', { name: 'Notifications' }).waitFor();
  });

  it('refuses a Telegram URL without chats, saying why', async () => {
    await page.getByRole('button', { name: 'Add target' }).click();
    const form = page.getByRole('form', { name: 'New notification target' });
    await form.getByLabel('Name', { exact: true }).fill('ops-telegram');
    await form.getByLabel('Channel').selectOption('telegram');
    expect(await form.getByLabel('URL', { exact: true }).getAttribute('placeholder')).toContain('telegram://');
    await form.getByLabel('URL', { exact: true }).fill('telegram://123456:SECRET@telegram');
    await form.getByRole('button', { name: 'Add target' }).click();
    await form.getByRole('alert').filter({ hasText: 'chats' }).first().waitFor();
  });

  it('previews templates, and shows a template error', async () => {
    const form = page.getByRole('form', { name: 'New notification target' });
    await form.getByLabel('Title template').fill('{{ project }} went {{ event }}');
    await form.getByLabel('Body template').fill('{% if %}');
    await form.getByRole('button', { name: 'Preview' }).click();
    await form.getByRole('alert').filter({ hasText: 'template error' }).first().waitFor();
    await form.getByLabel('Body template').fill('step {{ failed_step }}: {{ reason }}');
    await form.getByRole('button', { name: 'Preview' }).click();
    const preview = form.getByRole('figure', { name: 'Preview' });
    await preview.getByText('shop went rollback').waitFor();
    expect(await preview.innerText()).toContain('step health_check: never became healthy');
  });

  it('adds a JSON webhook target and test-sends to it', async () => {
    const form = page.getByRole('form', { name: 'New notification target' });
    const port = (receiver.address() as AddressInfo).port;
    await form.getByLabel('Name', { exact: true }).fill('receiver');
    await form.getByLabel('Channel').selectOption('webhook');
    await form.getByLabel('URL', { exact: true }).fill(`http://127.0.0.1:${port}/hook`);
    await form.getByLabel('Poll errors', { exact: true }).check();
    await form.getByRole('button', { name: 'Add target' }).click();
    await form.waitFor({ state: 'detached' });
    const item = page.getByRole('listitem').filter({ hasText: 'receiver' });
    await item.getByText('Nothing sent yet').waitFor();
    expect(await item.getByRole('checkbox', { name: 'Poll errors' }).isChecked()).toBe(true);

    await item.getByRole('button', { name: 'Send test' }).click();
    await item.getByText('sent; the target accepted it').waitFor();
    await item.getByText(/Delivered; last at/).waitFor();
    expect(received).toHaveLength(1);
    expect(received[0].path).toBe('/hook');
    expect(received[0].contentType).toBe('application/json');
    expect(received[0].body.title).toBe('shop went success');
    expect(received[0].body.event).toBe('success');
    expect(received[0].body.tag).toBe('test-notification');
    await s.browser.screenshot('notifications', 'desktop');
  });

  it('switches an event off for a target', async () => {
    const item = page.getByRole('listitem').filter({ hasText: 'receiver' });
    await item.getByRole('checkbox', { name: 'Success' }).uncheck();
    await expect.poll(async () => {
      const res = await page.request.get(s.url('/api/notifications'));
      const targets = (await res.json()) as { name: string; events: string[] }[];
      return targets.find((t) => t.name === 'receiver')?.events;
    }).toEqual(['failure', 'rollback', 'approval_needed', 'poll_error']);
  });

  it('builds a Telegram URL from the channel form', async () => {
    await page.getByRole('button', { name: 'Add target' }).click();
    const form = page.getByRole('form', { name: 'New notification target' });
    await form.getByLabel('Name', { exact: true }).fill('ops-telegram');
    await form.getByLabel('Channel').selectOption('telegram');
    await form.getByLabel('Bot token').fill('123456:ABC-def');
    await form.getByLabel('Chat ids').fill('-1001234, @ops');
    expect(await form.getByLabel('URL', { exact: true }).inputValue()).toBe(
      'telegram://123456:ABC-def@telegram?chats=-1001234,%40ops'
    );
    await form.getByRole('button', { name: 'Add target' }).click();
    await form.waitFor({ state: 'detached' });
    const item = page.getByRole('listitem').filter({ hasText: 'ops-telegram' });
    await item.getByText('telegram', { exact: true }).waitFor();
    // The token is sealed: no answer shows it.
    const res = await page.request.get(s.url('/api/notifications'));
    expect(await res.text()).not.toContain('ABC-def');
  });
});
