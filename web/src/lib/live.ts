// The dashboard's and the deploy list's live updates: any deploy status change on
// `/api/events` asks the page to reload what it shows, at most once per `minGapMs`.

import type { EventSourceLike } from './logstream';

/** `status`: a deploy changed status; `resync`: this reader fell behind and should re-read. */
export const LIVE_EVENTS = ['message', 'status', 'resync'] as const;

/** Calls `fn` at most once per `gapMs`; a call inside the gap runs once at its end. */
export function throttle(fn: () => void, gapMs: number): { call: () => void; cancel: () => void } {
  let last = -Infinity;
  let timer: ReturnType<typeof setTimeout> | null = null;
  const run = () => {
    timer = null;
    last = Date.now();
    fn();
  };
  return {
    call() {
      if (timer !== null) return;
      const wait = last + gapMs - Date.now();
      if (wait <= 0) run();
      else timer = setTimeout(run, wait);
    },
    cancel() {
      if (timer !== null) clearTimeout(timer);
      timer = null;
    }
  };
}

/**
 * Listens to the events stream at `url`; `onChange` runs (throttled) after each event,
 * and `onState` says whether the stream is connected. Returns a function that stops.
 */
export function subscribeLive(
  url: string,
  onChange: () => void,
  onState: (connected: boolean) => void = () => {},
  minGapMs = 500,
  open: (url: string) => EventSourceLike = (u) => new EventSource(u, { withCredentials: true })
): () => void {
  const source = open(url);
  const refresh = throttle(onChange, minGapMs);
  source.addEventListener('open', () => onState(true));
  source.addEventListener('error', () => onState(false));
  for (const name of LIVE_EVENTS) source.addEventListener(name, () => refresh.call());
  return () => {
    refresh.cancel();
    source.close();
  };
}
