// A throwaway Docker Distribution registry (Debian's docker-registry) on a free
// 127.0.0.1 port, and pushes of the local test images into it.

import { spawn, type ChildProcess } from 'node:child_process';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { DOCKER, freePort, run, stop, waitForHttp } from './processes';

export interface Registry {
  /** `127.0.0.1:PORT`, the registry part of an image reference. */
  host: string;
  url: string;
  /** Pushes the local image `source` as `repository:tag`. */
  push: (source: string, repository: string, tag: string) => Promise<void>;
  /** Removes every local image from this registry (what a daemon pulled from it). */
  removePulledImages: () => Promise<void>;
  stop: () => Promise<void>;
}

export async function startRegistry(): Promise<Registry> {
  const dir = await mkdtemp(join(tmpdir(), 'dw-e2e-registry-'));
  const port = await freePort();
  const storage = join(dir, 'storage');
  await mkdir(storage);
  const config = join(dir, 'config.yml');
  await writeFile(
    config,
    [
      'version: 0.1',
      'log:',
      '  level: warn',
      'storage:',
      '  filesystem:',
      `    rootdirectory: ${storage}`,
      '  delete:',
      '    enabled: true',
      'http:',
      `  addr: 127.0.0.1:${port}`,
      ''
    ].join('\n')
  );
  let output = '';
  let child: ChildProcess;
  try {
    child = spawn('docker-registry', ['serve', config], { stdio: ['ignore', 'pipe', 'pipe'] });
  } catch (e) {
    throw new Error(`cannot start docker-registry (run ./dev services): ${e}`);
  }
  child.on('error', (e) => (output += `\ncannot start docker-registry (run ./dev services): ${e}`));
  child.stdout?.on('data', (d) => (output += d));
  child.stderr?.on('data', (d) => (output += d));
  const host = `127.0.0.1:${port}`;
  const url = `http://${host}`;
  await waitForHttp(`${url}/v2/`, (s) => s === 200 || s === 401, 15_000, () => output);
  // A private docker config, so the push never touches the user's credentials.
  const dockerEnv = { ...process.env, DOCKER_CONFIG: join(dir, 'docker-config') };
  return {
    host,
    url,
    async removePulledImages() {
      const images = (await run(DOCKER, ['image', 'ls', '--format', '{{.Repository}}:{{.Tag}}']).catch(() => ''))
        .split('\n')
        .filter((ref) => ref.startsWith(`${host}/`));
      if (images.length > 0) await run(DOCKER, ['rmi', '-f', ...images]).catch(() => {});
    },
    async push(source, repository, tag) {
      const target = `${host}/${repository}:${tag}`;
      await run(DOCKER, ['tag', source, target], dockerEnv);
      try {
        await run(DOCKER, ['push', target], dockerEnv);
      } finally {
        // Without the local tag, the daemon's pull really goes to the registry.
        await run(DOCKER, ['rmi', target], dockerEnv).catch(() => {});
      }
    },
    async stop() {
      await stop(child, 5_000);
      await rm(dir, { recursive: true, force: true });
    }
  };
}
