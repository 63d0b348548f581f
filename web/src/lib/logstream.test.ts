import { describe, expect, it } from 'vitest';
import { followLog, initialLogState, parseEvent, reduce, type EventSourceLike, type LogState } from './logstream';
import type { LogEntry } from './types';

const entry = (id: number, step = 'pull', message = `line ${id}`): LogEntry => ({
  id,
  at: '2026-05-01T12:00:00Z',
  level: 'info',
  step,
  message
});

describe('reduce', () => {
  it('adds entries once, in id order, whatever a reconnect replays', () => {
    let state = initialLogState('pending');
    state = reduce(state, { type: 'open' });
    state = reduce(state, { type: 'entry', entry: entry(1) });
    state = reduce(state, { type: 'entry', entry: entry(2) });
    state = reduce(state, { type: 'error' });
    expect(state.phase).toBe('reconnecting');
    state = reduce(state, { type: 'open' });
    state = reduce(state, { type: 'entries', entries: [entry(1), entry(2), entry(4)] });
    state = reduce(state, { type: 'entry', entry: entry(3) });
    expect(state.entries.map((e) => e.id)).toEqual([1, 2, 3, 4]);
    expect(state.phase).toBe('live');
  });

  it('keeps the same array when nothing new arrived', () => {
    const state = reduce(initialLogState(), { type: 'entry', entry: entry(1) });
    expect(reduce(state, { type: 'entry', entry: entry(1) }).entries).toBe(state.entries);
  });

  it('ends with the final status and ignores errors after the end', () => {
    let state = reduce(initialLogState('pulling'), { type: 'status', status: 'health_checking' });
    expect(state.status).toBe('health_checking');
    state = reduce(state, { type: 'end', status: 'success' });
    expect(state).toMatchObject({ status: 'success', phase: 'ended' });
    expect(reduce(state, { type: 'error' }).phase).toBe('ended');
    expect(reduce(state, { type: 'open' }).phase).toBe('ended');
  });

  it('keeps the known status when the end event carries none', () => {
    const state = reduce(initialLogState('failed'), { type: 'end', status: null });
    expect(state.status).toBe('failed');
  });
});

describe('parseEvent', () => {
  it('reads the daemon’s log, status and end events', () => {
    expect(parseEvent('log', JSON.stringify({ ...entry(7), deploy_id: 1 }))).toMatchObject({
      type: 'entry',
      entry: { id: 7, step: 'pull' }
    });
    expect(parseEvent('status', '{"deploy_id":1,"status":"starting","finished":false}')).toEqual({
      type: 'status',
      status: 'starting'
    });
    expect(parseEvent('end', '{"id":1,"status":"rolled_back","finished":true}')).toEqual({
      type: 'end',
      status: 'rolled_back'
    });
  });

  it('ignores what it cannot use', () => {
    expect(parseEvent('log', 'not json')).toBeNull();
    expect(parseEvent('log', '{"id":"x"}')).toBeNull();
    expect(parseEvent('status', '{}')).toBeNull();
    expect(parseEvent('resync', '{}')).toBeNull();
    expect(parseEvent('end', '{"error":"gone"}')).toEqual({ type: 'end', status: null });
  });
});

/** An EventSource stand-in the test drives by hand. */
class FakeSource implements EventSourceLike {
  listeners = new Map<string, ((event: MessageEvent | Event) => void)[]>();
  closed = false;
  addEventListener(type: string, listener: (event: MessageEvent | Event) => void) {
    this.listeners.set(type, [...(this.listeners.get(type) ?? []), listener]);
  }
  close() {
    this.closed = true;
  }
  emit(type: string, data?: unknown) {
    const event = data === undefined ? new Event(type) : new MessageEvent(type, { data: JSON.stringify(data) });
    for (const listener of this.listeners.get(type) ?? []) listener(event);
  }
}

describe('followLog', () => {
  it('streams entries to the end and then closes the source', () => {
    const source = new FakeSource();
    const states: LogState[] = [];
    let opened = '';
    followLog('/api/deploys/9/logs/stream', initialLogState('pending'), (s) => states.push(s), (url) => {
      opened = url;
      return source;
    });
    expect(opened).toBe('/api/deploys/9/logs/stream');
    source.emit('open');
    source.emit('log', entry(1));
    source.emit('status', { status: 'pulling' });
    source.emit('log', entry(2, 'health_check'));
    expect(source.closed).toBe(false);
    source.emit('end', { id: 9, status: 'success', finished: true });
    const last = states.at(-1)!;
    expect(last.entries.map((e) => e.message)).toEqual(['line 1', 'line 2']);
    expect(last).toMatchObject({ status: 'success', phase: 'ended' });
    expect(source.closed).toBe(true);
  });

  it('stops when asked', () => {
    const source = new FakeSource();
    const stop = followLog('/x', initialLogState(), () => {}, () => source);
    stop();
    expect(source.closed).toBe(true);
  });
});
