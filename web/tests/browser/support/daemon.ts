// The real docker-watcher binary on a free 127.0.0.1 port with a temp data folder.

import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { DOCKER, freePort, run, stop, waitForHttp } from './processes';

export const ADMIN_PASSWORD = 'e2e-admin-password';

export interface Daemon {
  url: string;
  dataDir: string;
  log: () => string;
  /** Removes every container labelled with `label=value` (the project's, say). */
  removeContainers: (label: string, value: string) => Promise<void>;
  stop: () => Promise<void>;
}

/** The binary under test: `DW_BIN`, else the debug build next to web/. */
export function binaryPath(): string {
  const path = process.env.DW_BIN ?? resolve(import.meta.dirname, '../../../../target/debug/docker-watcher');
  if (!existsSync(path)) {
    throw new Error(`${path} does not exist: build it first (cargo build), or set DW_BIN`);
  }
  return path;
}

export async function startDaemon(): Promise<Daemon> {
  const binary = binaryPath();
  const dataDir = await mkdtemp(join(tmpdir(), 'dw-e2e-'));
  const port = await freePort();
  const url = `http://127.0.0.1:${port}`;
  let output = '';
  const child: ChildProcess = spawn(binary, ['serve'], {
    env: {
      ...process.env,
      DW_LISTEN: `127.0.0.1:${port}`,
      DW_DATA_DIR: join(dataDir, 'data'),
      DW_ADMIN_PASSWORD: ADMIN_PASSWORD,
      DW_LOG_LEVEL: 'info',
      DW_PUBLIC_URL: url
    },
    stdio: ['ignore', 'pipe', 'pipe']
  });
  child.stdout?.on('data', (d) => (output += d));
  child.stderr?.on('data', (d) => (output += d));
  await waitForHttp(`${url}/healthz`, (s) => s === 200 || s === 503, 60_000, () => output);
  return {
    url,
    dataDir,
    log: () => output,
    async removeContainers(label, value) {
      const ids = (await run(DOCKER, ['ps', '-aq', '--filter', `label=${label}=${value}`]))
        .split(/\s+/)
        .filter(Boolean);
      if (ids.length > 0) await run(DOCKER, ['rm', '-f', '-v', ...ids]);
    },
    async stop() {
      await stop(child);
      await rm(dataDir, { recursive: true, force: true });
    }
  };
}
