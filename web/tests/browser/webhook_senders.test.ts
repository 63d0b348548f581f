// The settings the registries' webhooks need (issue 18), set in a real browser against the
// real daemon: a JFrog image host that makes no image reference is refused with the reason
// beside the field; a good one and "accept unsigned Quay pushes" are saved, survive a
// reload, and the JFrog sample posted to the webhook URL shown on the page comes out as an
// image on that host. Auto-create is turned off first, so that the sample's image (on a
// host on the internet) is never pulled.

import { readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Page } from 'playwright-core';
import { startSession, type Session } from './support/session';

let s: Session;
let page: Page;

beforeAll(async () => {
  s = await startSession();
  page = s.page;
});

afterAll(async () => {
  await s?.close();
});


describe('webhook sender settings', () => {
  it('signs in', async () => {
    await page.goto(s.url('/settings'));
    await page.waitForURL(/\/login\?next=/);
    await s.signIn();
    await page.waitForURL(/\/settings$/);
  });

  it('refuses a JFrog image host that makes no image reference, with the reason', async () => {
    await page.getByLabel('JFrog image host').fill('https://Acme JFrog');
    await page.getByRole('button', { name: 'Save' }).first().click();
    const reason = page.locator('#set-jfrog-host-error');
    await expect.poll(() => reason.innerText()).toContain('registry host');
    expect(await page.getByLabel('JFrog image host').getAttribute('aria-invalid')).toBe('true');
  });

  it('saves the JFrog host and the Quay switch, and the webhook uses the host', async () => {
    await page.getByLabel('Create projects for unknown pushed images').uncheck();
    await page.getByLabel('JFrog image host').fill('acme.jfrog.io/{repo_key}');
    await page.getByLabel('Accept unsigned Quay pushes when a signing secret is set (Quay cannot sign)').check();
    await page.getByRole('button', { name: 'Save' }).first().click();
    await page.getByText('Saved.').first().waitFor();
    await page.reload();
    await expect.poll(() => page.getByLabel('JFrog image host').inputValue()).toBe('acme.jfrog.io/{repo_key}');
    expect(
      await page.getByLabel('Accept unsigned Quay pushes when a signing secret is set (Quay cannot sign)').isChecked()
    ).toBe(true);
    expect(await page.getByLabel('Create projects for unknown pushed images').isChecked()).toBe(false);

    await page.waitForFunction(() => {
      const input = document.getElementById('webhook-url') as HTMLInputElement | null;
      return input !== null && input.value !== '';
    });
    const webhook = await page.getByLabel('Webhook URL').inputValue();
    const sample = readFileSync(resolve(import.meta.dirname, '../../../testdata/webhooks/jfrog_docker_pushed.json'));
    const response = await fetch(webhook, {
      method: 'POST',
      headers: { 'Content-Type': 'application/json' },
      body: sample
    });
    const answer = await response.json();
    expect(response.status, JSON.stringify(answer)).toBe(202);
    expect(answer.format).toBe('jfrog');
    expect(answer.events[0].image).toBe('acme.jfrog.io/docker-remote-cache/library/ubuntu');
    expect(answer.events[0].tag).toBe('latest');
    expect(answer.events[0].outcome).toBe('ignored');
  });
});
