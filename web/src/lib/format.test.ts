import { describe, expect, it } from 'vitest';
import { age, deployDuration, duration, hostUrl, isFinal, shortDigest, statusLabel, tone } from './format';
import type { Deploy } from './types';

const now = new Date('2026-05-01T12:00:00Z');
const ago = (ms: number) => new Date(now.getTime() - ms).toISOString();

describe('age', () => {
  it('reads like a person would say it', () => {
    expect(age(ago(1_000), now)).toBe('just now');
    expect(age(ago(42_000), now)).toBe('42 s ago');
    expect(age(ago(5 * 60_000 + 59_000), now)).toBe('5 min ago');
    expect(age(ago(3 * 3600_000), now)).toBe('3 h ago');
    expect(age(ago(49 * 3600_000), now)).toBe('2 d ago');
  });

  it('handles missing, invalid and future times', () => {
    expect(age(null, now)).toBe('—');
    expect(age('not a date', now)).toBe('—');
    expect(age(new Date(now.getTime() + 60_000), now)).toBe('in the future');
    expect(age(new Date(now.getTime() + 2_000), now)).toBe('just now');
  });
});

describe('duration', () => {
  it('chooses the unit by size', () => {
    expect(duration(850)).toBe('850 ms');
    expect(duration(1_250)).toBe('1.2 s');
    expect(duration(12_400)).toBe('12 s');
    expect(duration(65_000)).toBe('1 min 5 s');
    expect(duration(120_000)).toBe('2 min');
    expect(duration(2 * 3600_000 + 3 * 60_000)).toBe('2 h 3 min');
    expect(duration(3600_000)).toBe('1 h');
  });

  it('shows a dash for what cannot be a duration', () => {
    expect(duration(-1)).toBe('—');
    expect(duration(null)).toBe('—');
    expect(duration(Number.NaN)).toBe('—');
  });
});

describe('deployDuration', () => {
  const deploy = (over: Partial<Deploy>): Deploy => ({
    id: 1,
    project_id: 1,
    stage_id: 1,
    tag: 'v1',
    digest: null,
    trigger: 'manual',
    status: 'success',
    finished: true,
    failed_step: null,
    error: null,
    instance_id: null,
    detected_at: null,
    created_at: ago(60_000),
    started_at: ago(50_000),
    finished_at: ago(38_000),
    ...over
  });

  it('measures from start to finish', () => {
    expect(deployDuration(deploy({}), now)).toBe('12 s');
  });

  it('counts up to now while running, from creation when not started', () => {
    expect(deployDuration(deploy({ finished_at: null, status: 'pulling' }), now)).toBe('50 s');
    expect(deployDuration(deploy({ started_at: null, finished_at: null, status: 'pending' }), now)).toBe('1 min');
  });
});

describe('statuses', () => {
  it('labels and colours every deploy status', () => {
    expect(statusLabel('configuring_proxy')).toBe('configuring proxy');
    expect(statusLabel('rolled_back')).toBe('rolled back');
    expect(statusLabel('something_new')).toBe('something new');
    expect(tone('success')).toBe('ok');
    expect(tone('running')).toBe('ok');
    expect(tone('failed')).toBe('bad');
    expect(tone('rolled_back')).toBe('warn');
    expect(tone('health_checking')).toBe('busy');
    expect(tone('superseded')).toBe('muted');
  });

  it('knows which statuses are final', () => {
    expect(isFinal('success')).toBe(true);
    expect(isFinal('superseded')).toBe(true);
    expect(isFinal('pending')).toBe(false);
    expect(isFinal('health_checking')).toBe(false);
  });
});

describe('small helpers', () => {
  it('shortens digests', () => {
    expect(shortDigest('sha256:0123456789abcdef0123')).toBe('sha256:0123456789ab');
    expect(shortDigest(null)).toBe('');
  });

  it('makes links from domains', () => {
    expect(hostUrl('stage-dev-shop.example.com')).toBe('https://stage-dev-shop.example.com');
    expect(hostUrl('127.0.0.1:3000', 'http')).toBe('http://127.0.0.1:3000');
    expect(hostUrl('http://already.example')).toBe('http://already.example');
  });
});
