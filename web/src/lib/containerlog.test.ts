import { describe, expect, it } from 'vitest';
import {
  MAX_LINES,
  followContainerLog,
  initialContainerLog,
  parseEvent,
  reduce,
  type ContainerLogEvent,
  type ContainerLogState
} from './containerlog';

const line = (text: string): ContainerLogEvent => ({ type: 'line', stream: 'stdout', at: null, text });

function run(events: ContainerLogEvent[]): ContainerLogState {
  return events.reduce(reduce, initialContainerLog());
}

describe('container log', () => {
  it('keeps lines in order and numbers them', () => {
    const state = run([{ type: 'open' }, line('a'), line('b')]);
    expect(state.lines.map((l) => [l.n, l.text])).toEqual([
      [1, 'a'],
      [2, 'b']
    ]);
    expect(state.phase).toBe('live');
  });

  it('starts afresh on a reconnect, which replays the tail', () => {
    const state = run([{ type: 'open' }, line('a'), { type: 'error' }, { type: 'open' }, line('a'), line('b')]);
    expect(state.lines.map((l) => l.text)).toEqual(['a', 'b']);
    expect(state.opened).toBe(2);
  });

  it('keeps at most MAX_LINES, dropping the oldest', () => {
    const events: ContainerLogEvent[] = [{ type: 'open' }];
    for (let i = 0; i < MAX_LINES + 5; i++) events.push(line(`l${i}`));
    const state = run(events);
    expect(state.lines).toHaveLength(MAX_LINES);
    expect(state.lines[0].text).toBe('l5');
    expect(state.dropped).toBe(5);
  });

  it('ends with the reason, and ignores what comes after', () => {
    const state = run([{ type: 'open' }, { type: 'end', error: 'docker: gone' }, line('late'), { type: 'error' }]);
    expect(state.phase).toBe('ended');
    expect(state.error).toBe('docker: gone');
    expect(state.lines).toHaveLength(0);
  });

  it('reads the events the daemon sends', () => {
    expect(parseEvent('line', '{"stream":"stderr","at":"2026-11-30T02:00:00Z","text":"x"}')).toEqual({
      type: 'line',
      stream: 'stderr',
      at: '2026-11-30T02:00:00Z',
      text: 'x'
    });
    expect(parseEvent('end', '{"reason":"done","error":null}')).toEqual({ type: 'end', error: null });
    expect(parseEvent('line', 'not json')).toBeNull();
    expect(parseEvent('other', '{}')).toBeNull();
  });

  it('closes the source after the end', () => {
    const listeners: Record<string, (e: MessageEvent | Event) => void> = {};
    let closed = false;
    const states: ContainerLogState[] = [];
    followContainerLog('/x', (s) => states.push(s), () => ({
      addEventListener: (type, listener) => (listeners[type] = listener),
      close: () => (closed = true)
    }));
    listeners.open(new Event('open'));
    listeners.line(new MessageEvent('line', { data: '{"stream":"stdout","at":null,"text":"hi"}' }));
    expect(closed).toBe(false);
    listeners.end(new MessageEvent('end', { data: '{"reason":"done","error":null}' }));
    expect(closed).toBe(true);
    expect(states.at(-1)?.lines.map((l) => l.text)).toEqual(['hi']);
  });
});
