import { describe, expect, it } from 'vitest';
import { deployBars, outcomeStrip, tagTimeline } from './history';
import type { Deploy, DeployStatus } from './types';

function deploy(id: number, tag: string, status: DeployStatus, start: number, end: number | null, detected?: number): Deploy {
  const iso = (s: number) => new Date(Date.UTC(2026, 10, 30, 2, 0, s)).toISOString();
  return {
    id,
    project_id: 1,
    stage_id: 7,
    tag,
    digest: null,
    trigger: detected === undefined ? 'manual' : 'webhook',
    status,
    finished: end !== null,
    failed_step: null,
    error: null,
    instance_id: null,
    detected_at: detected === undefined ? null : iso(detected),
    created_at: iso(start),
    started_at: iso(start),
    finished_at: end === null ? null : iso(end)
  };
}

const history = [
  deploy(1, 'v1', 'success', 0, 10, 0),
  deploy(2, 'v2', 'rolled_back', 20, 25),
  deploy(3, 'v3', 'success', 30, 33, 28),
  { ...deploy(4, 'x', 'success', 40, 41), stage_id: 8 },
  deploy(5, 'v4', 'pulling', 50, null)
];

describe('deploy history', () => {
  it('gives bars oldest first with duration, outcome and push-to-serving time', () => {
    const now = Date.UTC(2026, 10, 30, 2, 0, 52);
    const bars = deployBars(history, 7, 20, now);
    expect(bars.map((b) => [b.id, b.outcome, b.durationMs, b.servingMs])).toEqual([
      [1, 'success', 10_000, 10_000],
      [2, 'rolled_back', 5_000, null],
      [3, 'success', 3_000, 5_000],
      [5, 'running', 2_000, null]
    ]);
    expect(deployBars(history, 7, 2, now).map((b) => b.id)).toEqual([3, 5]);
  });

  it('shows which tag served when: a rolled-back deploy leaves the tag before it', () => {
    const spans = tagTimeline(history, 7);
    expect(spans.map((s) => [s.tag, s.to === null])).toEqual([
      ['v1', false],
      ['v3', true]
    ]);
    expect(spans[0].to).toBe(spans[1].from);
  });

  it('keeps the last outcomes of one stage for the strip', () => {
    expect(outcomeStrip(history, 7, 3).map((d) => d.id)).toEqual([2, 3, 5]);
    expect(outcomeStrip(history, 8).map((d) => d.id)).toEqual([4]);
  });
});
