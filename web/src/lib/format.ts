// How times, durations and statuses read on screen. Pure functions of their inputs
// (the current time is passed in), so they are tested without a clock.

import type { Deploy, DeployStatus, EnvVar, InstanceStatus } from './types';
import { FINAL_STATUSES } from './types';

const SECOND = 1000;
const MINUTE = 60 * SECOND;
const HOUR = 60 * MINUTE;
const DAY = 24 * HOUR;

/** "just now", "42 s ago", "5 min ago", "3 h ago", "2 d ago"; "in the future" for clock skew. */
export function age(at: string | Date | null | undefined, now: Date = new Date()): string {
  const time = toTime(at);
  if (time === null) return '—';
  const elapsed = now.getTime() - time;
  if (elapsed < -5 * SECOND) return 'in the future';
  if (elapsed < 5 * SECOND) return 'just now';
  if (elapsed < MINUTE) return `${Math.floor(elapsed / SECOND)} s ago`;
  if (elapsed < HOUR) return `${Math.floor(elapsed / MINUTE)} min ago`;
  if (elapsed < DAY) return `${Math.floor(elapsed / HOUR)} h ago`;
  return `${Math.floor(elapsed / DAY)} d ago`;
}

/** "850 ms", "12.4 s", "1 min 5 s", "2 h 3 min". Negative or missing: "—". */
export function duration(ms: number | null | undefined): string {
  if (ms === null || ms === undefined || !Number.isFinite(ms) || ms < 0) return '—';
  if (ms < SECOND) return `${Math.round(ms)} ms`;
  if (ms < 10 * SECOND) return `${(Math.floor(ms / 100) / 10).toFixed(1)} s`;
  if (ms < MINUTE) return `${Math.floor(ms / SECOND)} s`;
  if (ms < HOUR) {
    const minutes = Math.floor(ms / MINUTE);
    const seconds = Math.floor((ms % MINUTE) / SECOND);
    return seconds ? `${minutes} min ${seconds} s` : `${minutes} min`;
  }
  const hours = Math.floor(ms / HOUR);
  const minutes = Math.floor((ms % HOUR) / MINUTE);
  return minutes ? `${hours} h ${minutes} min` : `${hours} h`;
}

/** How long a deploy took, or has been running so far. */
export function deployDuration(deploy: Deploy, now: Date = new Date()): string {
  const start = toTime(deploy.started_at ?? deploy.created_at);
  if (start === null) return '—';
  const end = deploy.finished_at ? toTime(deploy.finished_at) : now.getTime();
  if (end === null) return '—';
  return duration(end - start);
}

/** Local date and time, to the second, for a tooltip or a log line. */
export function timestamp(at: string | null | undefined): string {
  const time = toTime(at);
  if (time === null) return '—';
  const d = new Date(time);
  const pad = (n: number) => String(n).padStart(2, '0');
  return `${d.getFullYear()}-${pad(d.getMonth() + 1)}-${pad(d.getDate())} ${pad(d.getHours())}:${pad(d.getMinutes())}:${pad(d.getSeconds())}`;
}

/** Only the time of day, for log lines. */
export function clock(at: string | null | undefined): string {
  const time = toTime(at);
  if (time === null) return '--:--:--';
  const d = new Date(time);
  const pad = (n: number, w = 2) => String(n).padStart(w, '0');
  return `${pad(d.getHours())}:${pad(d.getMinutes())}:${pad(d.getSeconds())}.${pad(d.getMilliseconds(), 3)}`;
}

const STATUS_LABELS: Record<DeployStatus, string> = {
  awaiting_approval: 'awaiting approval',
  scheduled: 'scheduled',
  pending: 'pending',
  pulling: 'pulling',
  starting: 'starting',
  configuring_proxy: 'configuring proxy',
  health_checking: 'health checking',
  success: 'success',
  failed: 'failed',
  rolled_back: 'rolled back',
  superseded: 'superseded',
  rejected: 'rejected',
  expired: 'expired'
};

export function statusLabel(status: DeployStatus | string): string {
  return STATUS_LABELS[status as DeployStatus] ?? status.replaceAll('_', ' ');
}

export type Tone = 'ok' | 'bad' | 'warn' | 'busy' | 'muted';

/** The colour family of a deploy or instance status. */
export function tone(status: DeployStatus | InstanceStatus | string): Tone {
  switch (status) {
    case 'success':
    case 'running':
      return 'ok';
    case 'failed':
      return 'bad';
    case 'rolled_back':
    case 'stopped':
    case 'awaiting_approval':
    case 'scheduled':
      return 'warn';
    case 'rejected':
      return 'bad';
    case 'expired':
    case 'superseded':
    case 'removing':
      return 'muted';
    default:
      return 'busy';
  }
}

export function isFinal(status: DeployStatus | string): boolean {
  return (FINAL_STATUSES as readonly string[]).includes(status);
}

/** `sha256:0123456789ab…` shortened to its first 12 hex digits. */
export function shortDigest(digest: string | null | undefined): string {
  if (!digest) return '';
  const [algo, hex] = digest.includes(':') ? digest.split(':', 2) : ['', digest];
  return algo ? `${algo}:${hex.slice(0, 12)}` : hex.slice(0, 12);
}

/** A link for a domain or `host:port`: absolute URLs as they are, bare names with `scheme`. */
export function hostUrl(host: string, scheme: 'http' | 'https' = 'https'): string {
  return /^https?:\/\//.test(host) ? host : `${scheme}://${host}`;
}

function toTime(at: string | Date | null | undefined): number | null {
  if (at === null || at === undefined || at === '') return null;
  const time = at instanceof Date ? at.getTime() : Date.parse(at);
  return Number.isNaN(time) ? null : time;
}

/** Env vars as the API takes them: names trimmed, and a secret left empty sent without a
 * value, which keeps the stored one. */
export function envForApi(env: readonly EnvVar[]): EnvVar[] {
  return env.map((v) =>
    v.secret && !v.value ? { name: v.name.trim(), secret: true } : { ...v, name: v.name.trim() }
  );
}

/** An empty number input (null, or NaN while half-typed) clears the value. */
export function optionalNumber(value: number | null | undefined): number | null {
  return value === null || value === undefined || Number.isNaN(value) ? null : Number(value);
}
