// Proves (issue 16, real processes on loopback) that events as large as a node allows
// (kEventBytesMax = 16 MiB of data + metadata, worker/engine/types.hpp) written to a 3-node
// cluster through gossip seeds with the unmodified node-eventstore-client cost no election: every
// write is acknowledged at its first try (no client retry: a CommitTimeout fails the test), the
// leader and its epoch stay, no node starts an election (chorus_elections_total unchanged on
// every node), and both followers hold the last event whole (read back from each, byte-equal).
// An event over the limit is refused (InvalidTransaction, which the client reports as "Invalid
// transaction."), and nothing written before it is lost. Runs in TLS mode too (e2e_cluster_large_events_tls): replication over mutual
// TLS.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { Cluster, waitFor } from './lib/cluster.mjs';
import { httpFetch } from './lib/tls.mjs';
import { es, NO_STREAM, num, rawEvent, streamName } from './lib/es.mjs';

const MiB = 1024 * 1024;
const kEventBytesMax = 16 * MiB; // worker/engine/types.hpp
const kLargeEvents = 5;

const cluster = new Cluster({ memDb: true });
let conn;

before(async () => {
  await cluster.start();
  await cluster.waitForLeader({ timeoutMs: 15000 });
  // No retries: a write that times out (CommitTimeout while an election runs) fails here.
  conn = await cluster.connect({ settings: { maxRetries: 0, operationTimeout: 60000 } });
});

after(async () => {
  await cluster.cleanup();
});

// Elections this node started (its /metrics).
async function elections(node) {
  const res = await httpFetch(`${node.httpScheme}://${node.host}:${node.httpPort}/metrics`,
    { signal: AbortSignal.timeout(5000) });
  const m = /^chorus_elections_total (\d+)/m.exec(await res.text());
  assert.ok(m, `${node.name}: no chorus_elections_total in /metrics`);
  return Number(m[1]);
}

const stream = streamName('large');
let last; // the last large event's data

test(`${kLargeEvents} events of 16 MiB: each acknowledged, no election, the followers hold the last whole`, { timeout: 300000 }, async () => {
  const { leader, epoch } = await cluster.waitForLeader({ timeoutMs: 15000 });
  const campaigns = await Promise.all(cluster.nodes.map(elections));
  const size = kEventBytesMax - 256; // data only; the client adds no metadata
  for (let i = 0; i < kLargeEvents; i++) {
    last = randomBytes(size);
    const t0 = Date.now();
    const r = await conn.appendToStream(stream, i === 0 ? NO_STREAM : i - 1, rawEvent(last, 'Big'));
    assert.equal(num(r.nextExpectedVersion), i);
    console.log(`# large write ${i}: ${Date.now() - t0} ms`);
  }

  const after = await cluster.waitForLeader({ timeoutMs: 15000 });
  assert.equal(after.leader, leader, 'the leader changed');
  assert.equal(after.epoch, epoch, 'the epoch changed');
  assert.deepEqual(await Promise.all(cluster.nodes.map(elections)), campaigns,
    `a node started an election\n${cluster.diagnostics(1500)}`);

  for (const f of cluster.live().filter((n) => n !== leader)) {
    const fconn = await cluster.connect({ node: f, settings: { requireMaster: false } });
    const event = await waitFor(async () => {
      const one = await fconn.readEvent(stream, kLargeEvents - 1);
      return one.status === 'success' && one.event.event;
    }, { timeoutMs: 30000, what: `the last large event readable on ${f.name}` });
    assert.ok(event.data.equals(last), `${f.name} holds the last large event with other bytes`);
    fconn.close();
  }
});

test('an event over the limit is refused; nothing is lost', { timeout: 120000 }, async () => {
  const { leader, epoch } = await cluster.waitForLeader({ timeoutMs: 15000 });
  await assert.rejects(
    conn.appendToStream(stream, kLargeEvents - 1, rawEvent(randomBytes(kEventBytesMax + 1), 'Big')),
    /Invalid transaction/);

  const back = await conn.readStreamEventsBackward(stream, es.streamPosition.end, 1, false);
  assert.equal(num(back.lastEventNumber), kLargeEvents - 1);
  assert.ok(back.events[0].event.data.equals(last), 'the last large event changed');
  const r = await conn.appendToStream(stream, kLargeEvents - 1, rawEvent(Buffer.from('small')));
  assert.equal(num(r.nextExpectedVersion), kLargeEvents);
  const now = await cluster.waitForLeader({ timeoutMs: 15000 });
  assert.equal(now.leader, leader);
  assert.equal(now.epoch, epoch);
});
