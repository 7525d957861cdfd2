// Goal: stale detection, log-follow parsing, the stream feed and its paging links, the session
// in storage and the hash routes behave as the pages rely on.
import { describe, expect, it } from 'vitest';
import { canOperate, isAdmin, loadSession, saveSession } from '../src/auth';
import { followUrl, LogBuffer, logLevel, splitEventData } from '../src/logs';
import { parseRoute, streamHash, subscriptionHash } from '../src/route';
import { isStale, kStaleAfterMs } from '../src/stale';
import { headPath, parseFeed, proxyPath } from '../src/streams';

describe('stale detection', () => {
  it('is fresh within the limit and stale after it', () => {
    const f = { last_success_ms: 10_000, last_error: null };
    expect(isStale(f, 10_000 + kStaleAfterMs)).toBe(false);
    expect(isStale(f, 10_001 + kStaleAfterMs)).toBe(true);
  });
  it('is not stale while loading, but stale when the first poll failed', () => {
    expect(isStale({ last_success_ms: null, last_error: null }, 99_999)).toBe(false);
    expect(isStale({ last_success_ms: null, last_error: 'down' }, 0)).toBe(true);
  });
  it('a single failed poll right after a success is not stale yet', () => {
    expect(isStale({ last_success_ms: 1000, last_error: 'timeout' }, 2000)).toBe(false);
  });
});

describe('log follow', () => {
  it('splits multi-line event data and drops the trailing newline', () => {
    expect(splitEventData('a')).toEqual(['a']);
    expect(splitEventData('a\nb\r\nc\n')).toEqual(['a', 'b', 'c']);
    expect(splitEventData('')).toEqual(['']);
  });
  it('keeps at most lines_max lines, the newest', () => {
    const b = new LogBuffer(3);
    b.replace(['1', '2', '3', '4']);
    expect(b.lines).toEqual(['2', '3', '4']);
    b.appendEventData('5\n6');
    expect(b.lines).toEqual(['4', '5', '6']);
  });
  it('reads the level of the worker\'s log lines', () => {
    expect(logLevel('2026-11-27T21:00:00.000Z [Information] listening')).toBe('info');
    expect(logLevel('2026-11-27T21:00:00.000Z [Warning] slow')).toBe('warn');
    expect(logLevel('2026-11-27T21:00:00.000Z [Fatal] gone')).toBe('fatal');
    expect(logLevel('plain output')).toBe('plain');
  });
  it('builds the follow URL', () => {
    expect(followUrl('n/1')).toBe('/api/nodes/n%2F1/log?lines=200&follow=true');
  });
});

describe('stream feed', () => {
  const feed = {
    title: "Event stream 'orders'", headOfStream: true, streamId: 'orders',
    links: [
      { uri: 'http://127.0.0.1:2113/streams/orders', relation: 'self' },
      { uri: 'http://127.0.0.1:2113/streams/orders/head/backward/20', relation: 'first' },
      { uri: 'http://127.0.0.1:2113/streams/orders/21/backward/20', relation: 'next' },
      { uri: 'http://127.0.0.1:2113/streams/orders/42/forward/20', relation: 'previous' },
    ],
    entries: [{
      eventId: 'e1', eventType: 'OrderPlaced', eventNumber: 41, streamId: 'orders',
      data: '{"id":7}', metaData: '{"by":"me"}', isJson: true, title: '41@orders',
      updated: '2026-11-27T21:00:00.000000Z',
    }],
  };
  it('reads entries with data and metadata', () => {
    const page = parseFeed(feed);
    expect(page.headOfStream).toBe(true);
    expect(page.events[0]).toMatchObject({ eventNumber: 41, eventType: 'OrderPlaced',
      data: '{"id":7}', metadata: '{"by":"me"}', isJson: true });
  });
  it('turns node links into manager proxy paths with embed=body', () => {
    const page = parseFeed(feed);
    expect(page.links.next).toBe('orders/21/backward/20?embed=body');
    expect(page.links.previous).toBe('orders/42/forward/20?embed=body');
    expect(page.links.last).toBeNull();
    expect(proxyPath('http://x/streams/%24all/00000000000000000000000000000000/backward/20'))
      .toBe('%24all/00000000000000000000000000000000/backward/20?embed=body');
    expect(proxyPath('http://x/elsewhere')).toBeNull();
  });
  it('escapes stream names in the head path and refuses non-feeds', () => {
    expect(headPath('$all')).toBe('%24all/head/backward/20?embed=body');
    expect(() => parseFeed({ error: 'x' })).toThrow(/feed/);
  });
});

class MemoryStorage {
  private m = new Map<string, string>();
  getItem(k: string) { return this.m.get(k) ?? null; }
  setItem(k: string, v: string) { this.m.set(k, v); }
  removeItem(k: string) { this.m.delete(k); }
}

describe('session', () => {
  it('round-trips through storage and clears', () => {
    const storage = new MemoryStorage() as unknown as Storage;
    const s = { login: 'ops', groups: ['$ops'], authorization: 'Basic x' };
    saveSession(storage, s);
    expect(loadSession(storage)).toEqual(s);
    expect(canOperate(s)).toBe(true);
    expect(isAdmin(s)).toBe(false);
    saveSession(storage, null);
    expect(loadSession(storage)).toBeNull();
  });
  it('ignores damaged storage and plain users cannot operate', () => {
    const storage = new MemoryStorage() as unknown as Storage;
    storage.setItem('chorus.session', '{broken');
    expect(loadSession(storage)).toBeNull();
    expect(canOperate({ login: 'u', groups: [], authorization: 'x' })).toBe(false);
    expect(canOperate(null)).toBe(false);
  });
});

describe('routes', () => {
  it('parses pages and stream names', () => {
    expect(parseRoute('')).toEqual({ page: 'cluster', stream: null });
    expect(parseRoute('#/machine')).toEqual({ page: 'machine', stream: null });
    expect(parseRoute('#/machines')).toEqual({ page: 'machines', stream: null });
    expect(parseRoute('#/nowhere')).toEqual({ page: 'cluster', stream: null });
    expect(parseRoute(streamHash('$all'))).toEqual({ page: 'streams', stream: '$all' });
    expect(parseRoute(streamHash('a/b c'))).toEqual({ page: 'streams', stream: 'a/b c' });
  });
  it('parses the subscriptions page and an open group', () => {
    expect(parseRoute('#/subscriptions')).toEqual({ page: 'subscriptions', stream: null,
      group: null });
    expect(parseRoute(subscriptionHash('orders/x', 'g 1'))).toEqual({ page: 'subscriptions',
      stream: null, group: { stream: 'orders/x', group: 'g 1' } });
  });
});
