// Proves that persistent subscriptions survive failover on a 3-node cluster with the unmodified
// node-eventstore-client: two consumers (gossip seeds, auto-ack) process 10,000 events of one
// stream while the leader is SIGKILLed twice (restarted in between). Every acknowledged write is
// processed at least once, nothing is lost, and the duplicates (redelivered after each failover
// from the group's last checkpoint) stay under the documented bound: per leader kill at most
// maxCheckPointCount + consumers x allowed in-flight (docs/persistent-subscriptions.md).
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { Cluster, waitFor } from './lib/cluster.mjs';
import { es, admin, ANY, Long, makeEvents, streamName } from './lib/es.mjs';

const EVENTS = 10000;
const BATCH = 100;
const CONSUMERS = 2;
const IN_FLIGHT = 10; // the client's default bufferSize
const KILLS = 2;
const STREAM = streamName('psfo');
const GROUP = 'workers';

const settings = {
  maxReconnections: 200, reconnectionDelay: 100, maxRetries: 50, operationTimeout: 5000,
  failOnNoServerResponse: true, maxDiscoverAttempts: 50, defaultUserCredentials: admin,
};

let cluster;
before(async () => {
  cluster = new Cluster({ size: 3, memDb: true });
  await cluster.start();
  await cluster.waitForLeader({ timeoutMs: 15000 });
});
after(async () => { await cluster?.cleanup(); });

// A consumer that reconnects whenever its subscription drops, and records every delivery.
function startConsumer(conn, deliveries, state) {
  const join = async () => {
    while (!state.stopped) {
      try {
        await conn.connectToPersistentSubscription(STREAM, GROUP, (_s, e) => {
          const id = e.originalEvent.eventId;
          deliveries.set(id, (deliveries.get(id) || 0) + 1);
          state.total += 1;
        }, () => { if (!state.stopped) setTimeout(join, 50); }, admin, IN_FLIGHT, true);
        return;
      } catch {
        await new Promise((r) => setTimeout(r, 200));
      }
    }
  };
  return join();
}

test('10,000 events acked by two consumers across two leader kills: none lost, duplicates bounded',
  { timeout: 180000 }, async () => {
    const started = Date.now();
    const admin1 = await cluster.connect({ settings });
    const group = es.PersistentSubscriptionSettings.create();
    group.startFrom = Long.fromValue(0);
    await admin1.createPersistentSubscription(STREAM, GROUP, group, admin);
    const maxCheckPointCount = group.maxCheckPointCount;

    const deliveries = new Map();
    const state = { stopped: false, total: 0 };
    const consumers = [];
    for (let i = 0; i < CONSUMERS; i++) {
      const conn = await cluster.connect({ settings });
      consumers.push(startConsumer(conn, deliveries, state));
    }
    await Promise.all(consumers);

    // The writer retries each batch with the same ids until it is acknowledged (idempotent).
    const written = new Set();
    const writer = (async () => {
      for (let i = 0; i < EVENTS; i += BATCH) {
        const batch = makeEvents(BATCH, 'Work');
        for (;;) {
          try {
            await admin1.appendToStream(STREAM, ANY, batch);
            break;
          } catch {
            await new Promise((r) => setTimeout(r, 100));
          }
        }
        for (const e of batch) written.add(e.eventId);
      }
    })();

    const kills = [];
    for (let k = 1; k <= KILLS; k++) {
      await waitFor(() => deliveries.size >= (EVENTS * k) / (KILLS + 1),
        { timeoutMs: 60000, what: `${(EVENTS * k) / (KILLS + 1)} events processed` });
      const leader = await cluster.leader({ timeoutMs: 15000 });
      const before = state.total;
      await cluster.kill(leader);
      kills.push({ at: Date.now() - started, processedBefore: before });
      await cluster.waitForLeader({ timeoutMs: 15000, followers: 'live' });
      await cluster.restart(leader);
    }
    await writer;
    await waitFor(() => [...written].every((id) => deliveries.has(id)),
      { timeoutMs: 60000, what: 'every written event processed' });
    state.stopped = true;

    const missing = [...written].filter((id) => !deliveries.has(id));
    assert.equal(written.size, EVENTS);
    assert.equal(missing.length, 0, `${missing.length} acknowledged events were never processed`);
    const duplicates = state.total - deliveries.size;
    const bound = KILLS * (maxCheckPointCount + CONSUMERS * IN_FLIGHT);
    console.log(`# persistent failover: ${EVENTS} events, ${KILLS} leader kills, ` +
      `${state.total} deliveries, ${duplicates} duplicates (bound ${bound}), ` +
      `${Math.round((Date.now() - started) / 1000)} s; kills ${JSON.stringify(kills)}`);
    assert.ok(duplicates <= bound, `${duplicates} duplicates exceed the bound ${bound}`);
  });
