import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { subscribeLive, throttle } from './live';
import type { EventSourceLike } from './logstream';

beforeEach(() => vi.useFakeTimers());
afterEach(() => vi.useRealTimers());

describe('throttle', () => {
  it('runs at once, then once more at the end of the gap however often it was called', () => {
    const fn = vi.fn();
    const t = throttle(fn, 500);
    t.call();
    expect(fn).toHaveBeenCalledTimes(1);
    t.call();
    t.call();
    t.call();
    expect(fn).toHaveBeenCalledTimes(1);
    vi.advanceTimersByTime(500);
    expect(fn).toHaveBeenCalledTimes(2);
    vi.advanceTimersByTime(5000);
    expect(fn).toHaveBeenCalledTimes(2);
  });

  it('drops a pending run when cancelled', () => {
    const fn = vi.fn();
    const t = throttle(fn, 500);
    t.call();
    t.call();
    t.cancel();
    vi.advanceTimersByTime(1000);
    expect(fn).toHaveBeenCalledTimes(1);
  });
});

describe('subscribeLive', () => {
  it('reloads on status and resync events and reports the connection', () => {
    const listeners = new Map<string, (() => void)[]>();
    let closed = false;
    const source: EventSourceLike = {
      addEventListener: (type, l) => listeners.set(type, [...(listeners.get(type) ?? []), l as () => void]),
      close: () => (closed = true)
    };
    const emit = (type: string) => listeners.get(type)?.forEach((l) => l());
    const onChange = vi.fn();
    const connected: boolean[] = [];
    const stop = subscribeLive('/api/events', onChange, (c) => connected.push(c), 100, () => source);
    emit('open');
    emit('status');
    emit('status');
    vi.advanceTimersByTime(100);
    emit('resync');
    vi.advanceTimersByTime(100);
    emit('error');
    expect(onChange).toHaveBeenCalledTimes(3);
    expect(connected).toEqual([true, false]);
    stop();
    expect(closed).toBe(true);
  });
});
