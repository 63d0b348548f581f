// A deploy's log as it streams: the entries so far (each once, in order, whatever the
// server replays after a reconnect), the deploy's status, and where the stream is.
// `reduce` is pure and tested alone; `followLog` wires it to an EventSource.

import type { DeployStatus, LogEntry } from './types';

export type Phase = 'connecting' | 'live' | 'reconnecting' | 'ended';

export interface LogState {
  readonly entries: readonly LogEntry[];
  readonly status: DeployStatus | null;
  readonly phase: Phase;
}

/** One thing that happened on the stream. */
export type LogEvent =
  | { type: 'open' }
  | { type: 'entry'; entry: LogEntry }
  | { type: 'entries'; entries: LogEntry[] }
  | { type: 'status'; status: DeployStatus }
  | { type: 'end'; status?: DeployStatus | null }
  | { type: 'error' };

export function initialLogState(status: DeployStatus | null = null): LogState {
  return { entries: [], status, phase: 'connecting' };
}

export function reduce(state: LogState, event: LogEvent): LogState {
  switch (event.type) {
    case 'open':
      return state.phase === 'ended' ? state : { ...state, phase: 'live' };
    case 'entry':
      return { ...state, entries: merge(state.entries, [event.entry]) };
    case 'entries':
      return { ...state, entries: merge(state.entries, event.entries) };
    case 'status':
      return { ...state, status: event.status };
    case 'end':
      return { ...state, status: event.status ?? state.status, phase: 'ended' };
    case 'error':
      // The browser retries on its own; once the log ended there is nothing to retry.
      return state.phase === 'ended' ? state : { ...state, phase: 'reconnecting' };
  }
}

/** Reads one server-sent event into a `LogEvent`; `null` for what the UI does not use. */
export function parseEvent(name: string, data: string): LogEvent | null {
  let value: unknown;
  try {
    value = data === '' ? {} : JSON.parse(data);
  } catch {
    return null;
  }
  const object = (value ?? {}) as Record<string, unknown>;
  switch (name) {
    case 'message':
    case 'entry':
    case 'log':
      return isEntry(object) ? { type: 'entry', entry: object } : null;
    case 'status':
      return typeof object.status === 'string'
        ? { type: 'status', status: object.status as DeployStatus }
        : null;
    case 'end':
      return {
        type: 'end',
        status: typeof object.status === 'string' ? (object.status as DeployStatus) : null
      };
    default:
      return null;
  }
}

/** The event names `followLog` listens to: the daemon sends `log`, `status` and a final
 * `end` carrying the finished deploy. */
export const STREAM_EVENTS = ['message', 'entry', 'log', 'status', 'end'] as const;

/** The minimal EventSource surface used, so tests can pass a stand-in. */
export interface EventSourceLike {
  addEventListener(type: string, listener: (event: MessageEvent | Event) => void): void;
  close(): void;
  /** 2 (CLOSED) after an answer the browser will not retry (not a 200 event stream). */
  readonly readyState?: number;
}

/**
 * Follows the log stream at `url`, calling `onChange` with each new state. Returns a
 * function that stops following. The stream is closed when the server says `end` (a final
 * status alone does not close it: the last entries may still be on their way).
 */
export function followLog(
  url: string,
  initial: LogState,
  onChange: (state: LogState) => void,
  open: (url: string) => EventSourceLike = (u) => new EventSource(u, { withCredentials: true })
): () => void {
  let state = initial;
  const source = open(url);
  const apply = (event: LogEvent) => {
    state = reduce(state, event);
    onChange(state);
    if (state.phase === 'ended') source.close();
  };
  source.addEventListener('open', () => apply({ type: 'open' }));
  source.addEventListener('error', () => apply({ type: 'error' }));
  for (const name of STREAM_EVENTS) {
    source.addEventListener(name, (event) => {
      const parsed = parseEvent(name, (event as MessageEvent).data ?? '');
      if (parsed) apply(parsed);
    });
  }
  return () => source.close();
}

function merge(existing: readonly LogEntry[], incoming: readonly LogEntry[]): LogEntry[] {
  const seen = new Set(existing.map((e) => e.id));
  const added = incoming.filter((e) => {
    if (seen.has(e.id)) return false;
    seen.add(e.id);
    return true;
  });
  if (added.length === 0) return existing as LogEntry[];
  const all = [...existing, ...added];
  // Entries carry increasing ids; keep them in that order even if a replay interleaves.
  const last = existing.at(-1);
  if (last && added.some((e) => e.id < last.id)) all.sort((a, b) => a.id - b.id);
  return all;
}

function isEntry(value: Record<string, unknown>): value is Record<string, unknown> & LogEntry {
  return (
    typeof value.id === 'number' &&
    typeof value.message === 'string' &&
    typeof value.step === 'string'
  );
}
