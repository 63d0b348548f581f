// A stage's deploy history at a glance: the bars of the deploy chart (duration, outcome,
// push-to-serving time), the tag timeline (which tag served when) and the dashboard's
// strip of the last outcomes. Pure functions of the deploy list, tested without a browser.

import type { Deploy, DeployStatus } from './types';

/** How a deploy ended, as the chart colours it. */
export type Outcome = 'success' | 'failed' | 'rolled_back' | 'superseded' | 'running';

export interface DeployBar {
  id: number;
  tag: string;
  status: DeployStatus;
  outcome: Outcome;
  /** Start (or queueing) to the end, in ms; to `now` while running. */
  durationMs: number;
  /** From the push being noticed (webhook or poll) to serving, in ms; null for manual
   * deploys and deploys that did not serve. */
  servingMs: number | null;
  at: string;
}

export interface TagSpan {
  tag: string;
  deployId: number;
  from: number;
  /** When the next tag took over; null while it still serves. */
  to: number | null;
}

/** The stage's last `limit` deploys, oldest first. */
export function deployBars(
  deploys: readonly Deploy[],
  stageId: number,
  limit = 20,
  now = Date.now()
): DeployBar[] {
  return newestFirst(deploys, stageId)
    .slice(0, limit)
    .reverse()
    .map((d) => {
      const start = time(d.started_at ?? d.created_at) ?? now;
      const end = time(d.finished_at) ?? now;
      const detected = time(d.detected_at);
      return {
        id: d.id,
        tag: d.tag,
        status: d.status,
        outcome: outcome(d),
        durationMs: Math.max(0, end - start),
        servingMs:
          d.status === 'success' && detected !== null && d.finished_at ? Math.max(0, end - detected) : null,
        at: d.created_at
      };
    });
}

/** Which tag served when: one span per successful deploy among `deploys`, oldest first;
 * a failed or rolled-back deploy leaves the tag before it serving. */
export function tagTimeline(deploys: readonly Deploy[], stageId: number): TagSpan[] {
  const served = newestFirst(deploys, stageId)
    .filter((d) => d.status === 'success' && d.finished_at)
    .reverse();
  return served.map((d, i) => ({
    tag: d.tag,
    deployId: d.id,
    from: time(d.finished_at) ?? 0,
    to: i + 1 < served.length ? time(served[i + 1].finished_at) : null
  }));
}

/** The last `count` deploys of a stage for the dashboard's strip, oldest first. */
export function outcomeStrip(deploys: readonly Deploy[], stageId: number, count = 10): Deploy[] {
  return newestFirst(deploys, stageId).slice(0, count).reverse();
}

export function outcome(d: Deploy): Outcome {
  switch (d.status) {
    case 'success':
    case 'failed':
    case 'rolled_back':
    case 'superseded':
      return d.status;
    default:
      return 'running';
  }
}

function newestFirst(deploys: readonly Deploy[], stageId: number): Deploy[] {
  return deploys.filter((d) => d.stage_id === stageId).sort((a, b) => b.id - a.id);
}

function time(at: string | null | undefined): number | null {
  if (!at) return null;
  const t = Date.parse(at);
  return Number.isNaN(t) ? null : t;
}
