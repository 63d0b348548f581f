// A running container's output as it streams (`/api/instances/{id}/logs`): the lines so
// far, at most MAX_LINES of them, and where the stream is. The server sends the last
// `tail` lines on every connection, so a reconnect starts the lines afresh instead of
// repeating them. `reduce` is pure and tested alone; `followContainerLog` wires it to an
// EventSource.

import type { EventSourceLike, Phase } from './logstream';

/** Lines kept in the browser; older ones are dropped as new ones come. */
export const MAX_LINES = 2000;

export interface ContainerLine {
  /** Counts up from 1 on each connection, so the view can key lines. */
  n: number;
  stream: 'stdout' | 'stderr';
  at: string | null;
  text: string;
}

export interface ContainerLogState {
  readonly lines: readonly ContainerLine[];
  readonly phase: Phase;
  /** Why the stream ended, when it ended on an error. */
  readonly error: string | null;
  /** How many times the stream opened. */
  readonly opened: number;
  /** Lines dropped from the front to stay within MAX_LINES. */
  readonly dropped: number;
}

export type ContainerLogEvent =
  | { type: 'open' }
  | { type: 'line'; stream: 'stdout' | 'stderr'; at: string | null; text: string }
  | { type: 'end'; error: string | null }
  | { type: 'error' };

export function initialContainerLog(): ContainerLogState {
  return { lines: [], phase: 'connecting', error: null, opened: 0, dropped: 0 };
}

export function reduce(state: ContainerLogState, event: ContainerLogEvent): ContainerLogState {
  switch (event.type) {
    case 'open':
      if (state.phase === 'ended') return state;
      // A reconnect replays the tail: start over rather than show lines twice.
      return state.opened > 0
        ? { ...state, lines: [], dropped: 0, phase: 'live', opened: state.opened + 1 }
        : { ...state, phase: 'live', opened: 1 };
    case 'line': {
      if (state.phase === 'ended') return state;
      const last = state.lines.at(-1);
      const line = { n: (last?.n ?? 0) + 1, stream: event.stream, at: event.at, text: event.text };
      const lines = [...state.lines, line];
      const over = Math.max(0, lines.length - MAX_LINES);
      return { ...state, lines: over ? lines.slice(over) : lines, dropped: state.dropped + over };
    }
    case 'end':
      return { ...state, phase: 'ended', error: event.error };
    case 'error':
      return state.phase === 'ended' ? state : { ...state, phase: 'reconnecting' };
  }
}

/** Reads one server-sent event; `null` for what the view does not use. */
export function parseEvent(name: string, data: string): ContainerLogEvent | null {
  let value: Record<string, unknown>;
  try {
    value = (JSON.parse(data) ?? {}) as Record<string, unknown>;
  } catch {
    return null;
  }
  if (name === 'line' && typeof value.text === 'string') {
    return {
      type: 'line',
      stream: value.stream === 'stderr' ? 'stderr' : 'stdout',
      at: typeof value.at === 'string' ? value.at : null,
      text: value.text
    };
  }
  if (name === 'end') {
    return { type: 'end', error: typeof value.error === 'string' ? value.error : null };
  }
  return null;
}

/** Follows the stream at `url`, calling `onChange` with each new state; returns a function
 * that stops. The stream is closed after `end` (the container stopped, or the backlog of a
 * stream that does not follow was sent). */
export function followContainerLog(
  url: string,
  onChange: (state: ContainerLogState) => void,
  open: (url: string) => EventSourceLike = (u) => new EventSource(u, { withCredentials: true })
): () => void {
  let state = initialContainerLog();
  const source = open(url);
  const apply = (event: ContainerLogEvent) => {
    state = reduce(state, event);
    onChange(state);
    if (state.phase === 'ended') source.close();
  };
  source.addEventListener('open', () => apply({ type: 'open' }));
  source.addEventListener('error', () =>
    // An answer other than a 200 event stream (the container is gone: 409) is not retried.
    apply(
      source.readyState === 2
        ? { type: 'end', error: "cannot open the container's output: it may have been removed" }
        : { type: 'error' }
    )
  );
  for (const name of ['line', 'end']) {
    source.addEventListener(name, (event) => {
      const parsed = parseEvent(name, (event as MessageEvent).data ?? '');
      if (parsed) apply(parsed);
    });
  }
  return () => source.close();
}
