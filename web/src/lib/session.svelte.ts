// Who is signed in, shared by the layout (which checks on start) and the pages.

import type { User } from './types';

export const session = $state<{ user: User | null; checked: boolean }>({
  user: null,
  checked: false
});

/** The current time, ticking every few seconds, so "5 min ago" stays true. */
export const ticker = $state<{ now: Date }>({ now: new Date() });

let timer: ReturnType<typeof setInterval> | null = null;

export function startTicker(everyMs = 5000): () => void {
  if (timer === null) timer = setInterval(() => (ticker.now = new Date()), everyMs);
  return () => {
    if (timer !== null) clearInterval(timer);
    timer = null;
  };
}
