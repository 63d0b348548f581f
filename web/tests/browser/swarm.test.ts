// A stage's target in a real browser against the real daemon and Docker Engine (outside
// any swarm, as in the normal test run): the stage form offers "a Docker Swarm service"
// with its replicas; saving it on an engine that is not a swarm manager shows the daemon's
// reason at the Target field and keeps the stage as it was; choosing containers again saves.

import { randomBytes } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Page } from 'playwright-core';
import { startSession, type Session } from './support/session';

const projectName = `swarm-${randomBytes(4).toString('hex')}`;

let s: Session;
let page: Page;
let projectId = 0;

beforeAll(async () => {
  s = await startSession({ project: projectName });
  page = s.page;
  const project = await s.api<{ id: number }>('POST', '/api/projects', {
    name: projectName,
    image: '127.0.0.1:5999/swarm/app',
    container_port: 8080
  });
  projectId = project.id;
  await s.api('POST', `/api/projects/${projectId}/stages`, { name: 'prod', auto_deploy: false });
});

afterAll(async () => {
  await s?.close();
});

describe('a stage as a Swarm service in the browser', () => {
  it('signs in and opens the stage form', async () => {
    await page.goto(s.url('/login'));
    await s.signIn();
    await page.goto(s.url(`/projects/${projectId}`));
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
    const stage = await s.api<{ target: { kind: string } }>('GET', `/api/stages/${await stageId()}`);
    expect(stage.target.kind).toBe('container');
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
  const stages = await s.api<{ id: number; name: string }[]>('GET', `/api/projects/${projectId}/stages`);
  return stages.find((stage) => stage.name === 'prod')!.id;
}
