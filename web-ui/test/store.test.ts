// Goal: the live store records a sample per successful /api/nodes poll (with the lag from the
// gossip leader), keeps the last good data when a poll fails, and notifies subscribers.
import { describe, expect, it } from 'vitest';
import { ApiClient, type FetchLike } from '../src/api';
import { LiveStore } from '../src/store';

function nodesAnswer(written: number) {
  return {
    manager: { name: 'm', version: '0.1.0', intHttp: '', extHttp: '', peers: [],
               uptimeSeconds: 1 },
    nodes: [{ name: 'n1', cluster: 'default', state: 'Running', pid: 5, uptimeSeconds: 1,
      restarts: 0, lastExit: null, nextStartInMs: null,
      ports: { intTcp: 1, extTcp: 2, intHttp: 3, extHttp: 4 },
      ip: { int: '127.0.0.1', ext: '127.0.0.1' }, dataFolder: '/d', dataBytes: 1,
      cpuSeconds: 1, rssBytes: 1, role: 'Follower', epochNumber: 1, writerCheckpoint: 70,
      chaserCheckpoint: 70, commitCheckpoint: 70, eventsWritten: written, eventsRead: 0 }],
  };
}

const gossip = { members: [{ state: 'Leader', isAlive: true, writerCheckpoint: 100,
  internalHttpIp: '127.0.0.1', internalHttpPort: 9, epochNumber: 1 }] };

describe('LiveStore', () => {
  it('samples, survives a failed poll and notifies', async () => {
    let up = true;
    let written = 10;
    const fetch: FetchLike = async (url) => {
      if (!up) throw new TypeError('Failed to fetch');
      const body = url.startsWith('/gossip') ? gossip : nodesAnswer(written);
      return new Response(JSON.stringify(body), { status: 200 });
    };
    let now = 1000;
    const store = new LiveStore(new ApiClient(fetch), () => now);
    let notified = 0;
    store.subscribe(() => notified++);
    await store.poll();
    now = 2000;
    written = 30;
    await store.poll();
    expect(store.history.latestRate('n1', 'events_written')).toBe(20);
    expect(store.history.samples.map((x) => x.nodes.n1.lag_bytes)).toEqual([30, 30]);
    up = false;
    now = 3000;
    await store.poll();
    expect(store.nodes.value?.nodes[0].name).toBe('n1');
    expect(store.nodes.last_success_ms).toBe(2000);
    expect(store.nodes.last_error).toMatch(/not reachable/);
    expect(store.history.samples).toHaveLength(2);
    expect(notified).toBe(3);
  });
});

describe('LiveStore cluster choice', () => {
  it('asks the manager for the chosen cluster\'s gossip and drops the old view', async () => {
    const urls: string[] = [];
    const fetch: FetchLike = async (url) => {
      urls.push(url);
      const body = url.startsWith('/gossip') ? gossip : nodesAnswer(1);
      return new Response(JSON.stringify(body), { status: 200 });
    };
    const store = new LiveStore(new ApiClient(fetch), () => 1000);
    await store.poll();
    expect(urls).toContain('/gossip?format=json');
    expect(store.gossip.value).toHaveLength(1);
    store.setCluster('other one');
    expect(store.gossip.value).toBeNull();
    await store.poll();
    expect(urls).toContain('/gossip?format=json&cluster=other%20one');
    expect(store.cluster).toBe('other one');
  });
});
