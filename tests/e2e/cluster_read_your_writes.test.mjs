// Proves (issue 17) that a write sent through a follower is acknowledged only once that follower
// shows it: on a 3-node cluster, a client connected to a follower writes and at once reads the
// event back on the same connection, 1,000 times without a single miss, over TCP with
// node-eventstore-client 23.10.1 and 0.2.19 (requireMaster false: writes are passed on to the
// leader) and over HTTP with geteventstore-promise (POST to the follower, then GET from it). Then
// the same three loops run while the leader is SIGKILLed: writes and reads may fail during the
// election, but a read never shows an older state than a write already acknowledged, and writes
// are acknowledged again once a new leader is elected.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import es0219 from 'node-eventstore-client-0219';
import EventStore from 'geteventstore-promise';
import { Cluster, waitFor } from './lib/cluster.mjs';
import { es, connect, num } from './lib/es.mjs';
import { TLS } from './lib/tls.mjs';

const ROUNDS = 1000;
const cluster = new Cluster({ memDb: true });
let follower;

before(async () => {
  await cluster.start();
  const { leader } = await cluster.waitForLeader({ timeoutMs: 10000 });
  follower = cluster.live().find((n) => n !== leader);
});

after(async () => {
  await cluster.cleanup();
});

// One client's write-then-read step against the follower: write(i) resolves with the acknowledged
// event number, read(n) with the event number found at n (undefined when there is none).
function tcpClient(client, conn) {
  const stream = `ryw-${randomUUID()}`;
  return {
    name: client === es ? 'TCP 23.10.1' : 'TCP 0.2.19',
    async write(i) {
      const r = await conn.appendToStream(stream, client.expectedVersion.any,
        client.createJsonEventData(randomUUID(), { i }, null, 'Ryw'));
      return num(r.nextExpectedVersion);
    },
    async read(n) {
      const r = await conn.readEvent(stream, n, false);
      return r.status === 'success' && r.event ? num(r.event.originalEventNumber) : undefined;
    },
  };
}

function httpClient(node) {
  const stream = `ryw-http-${randomUUID()}`;
  // In TLS mode over HTTPS (the test CA is not the system's, so the client does not check it).
  const c = new EventStore.HTTPClient({ hostname: node.host, port: node.httpPort,
    credentials: { username: 'admin', password: 'changeit' },
    ...(TLS ? { protocol: 'https', validateServer: false } : {}) });
  let written = -1; // acknowledged writes - 1
  return {
    name: 'HTTP geteventstore-promise',
    async write(i) {
      await c.writeEvent(stream, 'Ryw', { i });
      // Each write of this loop appends one event to its own stream.
      written += 1;
      return written;
    },
    async read(n) {
      const events = await c.getEvents(stream, n, 1, 'forward');
      return events.length === 1 ? events[0].eventNumber : undefined;
    },
  };
}

async function followerConnection(client) {
  return connect(follower, { requireMaster: false, log: new client.NoopLogger() }, { client });
}

for (const kind of ['23.10.1', '0.2.19', 'http']) {
  test(`${kind}: 1,000 writes through a follower, each read back at once on the same follower`, { timeout: 120000 }, async () => {
    const c = kind === 'http' ? httpClient(follower)
      : tcpClient(kind === '23.10.1' ? es : es0219,
        await followerConnection(kind === '23.10.1' ? es : es0219));
    const misses = [];
    for (let i = 0; i < ROUNDS; i++) {
      const n = await c.write(i);
      assert.equal(n, i, `${c.name}: write ${i} acknowledged as event ${n}`);
      let found;
      try { found = await c.read(n); } catch (e) { found = e.message; }
      if (found !== n) misses.push({ i, found });
    }
    assert.deepEqual(misses.slice(0, 5), [], `${c.name}: ${misses.length} of ${ROUNDS} writes were not readable on the follower right after their acknowledgement`);
  });
}

test('while the leader is SIGKILLed, a follower never shows less than what it acknowledged', { timeout: 120000 }, async () => {
  const leader = await cluster.leader({ timeoutMs: 10000 });
  follower = cluster.live().find((n) => n !== leader);
  const clients = [
    tcpClient(es, await followerConnection(es)),
    tcpClient(es0219, await followerConnection(es0219)),
    // After k acknowledged HTTP writes the stream holds at least k events (a failed write may
    // have happened too), so event k-1 must be there.
    httpClient(follower),
  ];
  const loops = clients.map((c) => ({ c, acked: 0, afterKill: 0, stale: [], failed: 0 }));
  let killed = false;
  const deadline = Date.now() + 60000;
  const run = async (loop) => {
    for (let i = 0; Date.now() < deadline; i++) {
      if (killed && loop.afterKill >= 50) return;
      let n;
      try { n = await loop.c.write(i); } catch { loop.failed++; continue; }
      loop.acked++;
      if (killed) loop.afterKill++;
      let found;
      try { found = await loop.c.read(n); } catch { continue; } // a failed read may fail over
      if (found === undefined || found < n) loop.stale.push({ n, found });
    }
  };
  const running = loops.map(run);
  await waitFor(() => loops.every((l) => l.acked >= 50), { timeoutMs: 30000, what: '50 acknowledged writes per client' });
  await cluster.kill(leader);
  killed = true;
  await Promise.all(running);
  for (const l of loops) {
    assert.deepEqual(l.stale, [], `${l.c.name}: reads older than an acknowledged write`);
    assert.ok(l.afterKill >= 50, `${l.c.name}: ${l.afterKill} writes acknowledged after the kill (${l.failed} failed)`);
  }
});
