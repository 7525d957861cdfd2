// Proves that persistent subscriptions survive failover on a 3-node cluster with the unmodified
// node-eventstore-client: two consumers (gossip seeds, auto-ack) process 10,000 events of one
// stream while the leader is SIGKILLed twice (restarted in between), each kill mid-stream: sent
// from inside a consumer's event handler, so that event (and what else the leader handed out) is
// in flight, unacknowledged, with more events still to come. Every acknowledged write is
// processed at least once, nothing is lost, and the duplicates (redelivered after each failover
// from the group's last checkpoint) stay under the documented bound: per leader kill at most
// maxCheckPointCount + consumers x allowed in-flight (docs/persistent-subscriptions.md). After
// each kill the new leader's /info reports the checkpoint it resumed from and the events after it
// that existed then (failoverRedeliveryBound, an upper bound of what it may deliver again): the
// events consumers saw again after that kill never exceed it, nor do all duplicates exceed the
// reported bounds summed over the kills.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { Cluster, waitFor } from './lib/cluster.mjs';
import { httpFetch, scheme } from './lib/tls.mjs';
import {
  es, admin, ANY, Long, makeEvents, streamName, deferred, withDeadline,
} from './lib/es.mjs';

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

const AUTH = `Basic ${Buffer.from(`${admin.username}:${admin.password}`).toString('base64')}`;

let cluster;
before(async () => {
  cluster = new Cluster({ size: 3, memDb: true });
  await cluster.start();
  await cluster.waitForLeader({ timeoutMs: 15000 });
});
after(async () => { await cluster?.cleanup(); });

// The group's /info on `node` once that node has loaded it after a leader change.
async function resumedInfo(node) {
  const url = `${scheme}://${node.host}:${node.httpPort}/subscriptions/${encodeURIComponent(STREAM)}/` +
    `${GROUP}/info`;
  return waitFor(async () => {
    const res = await httpFetch(url, { headers: { authorization: AUTH },
      signal: AbortSignal.timeout(2000) }).catch(() => null);
    if (!res?.ok) return false;
    const info = await res.json();
    return info.resumedFromCheckpoint !== null && info.resumedFromCheckpoint !== undefined && info;
  }, { timeoutMs: 20000, intervalMs: 100, what: `/info of the group resumed on ${node.name}` });
}

// A consumer that reconnects whenever its subscription drops, records every delivery and then
// calls state.onDelivery() (where an armed leader kill fires).
function startConsumer(conn, deliveries, state) {
  const join = async () => {
    while (!state.stopped) {
      try {
        await conn.connectToPersistentSubscription(STREAM, GROUP, (_s, e) => {
          const id = e.originalEvent.eventId;
          deliveries.set(id, (deliveries.get(id) || 0) + 1);
          // Delivered before the current leader kill and again after it.
          const first = state.firstPeriod.get(id);
          if (first === undefined) state.firstPeriod.set(id, state.period);
          else if (first < state.period) state.seenAgain[state.period].add(id);
          state.total += 1;
          state.onDelivery(id);
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
    const written = new Set();
    // Kill k fires when the k-th third of the events has been processed. The writer stays half a
    // third ahead of the armed kill and no further, so the kill is always reached mid-stream
    // (never after the last delivery) and never passed before it is armed.
    const third = EVENTS / (KILLS + 1);
    let writeLimit = Math.round(1.5 * third);
    let armed = null;
    const kills = [];
    const state = {
      stopped: false,
      total: 0,
      period: 0, // the leader kills so far
      firstPeriod: new Map(),
      seenAgain: Array.from({ length: KILLS + 1 }, () => new Set()),
      onDelivery(id) {
        if (!armed || deliveries.size < armed.at) return;
        const { node, fired } = armed;
        armed = null;
        // SIGKILL now, inside the handler: this event's ack has not been sent yet.
        kills.push({ at: Date.now() - started, processed: deliveries.size,
          written: written.size, inFlight: id });
        state.period += 1;
        fired.resolve(node.kill());
      },
    };
    const arm = async (k) => {
      const node = await cluster.leader({ timeoutMs: 15000 });
      const fired = deferred();
      armed = { at: Math.round(k * third), node, fired };
      writeLimit = k === KILLS ? EVENTS : Math.round((k + 0.5) * third);
      return { node, fired: fired.promise };
    };
    const consumers = [];
    for (let i = 0; i < CONSUMERS; i++) {
      const conn = await cluster.connect({ settings });
      consumers.push(startConsumer(conn, deliveries, state));
    }
    await Promise.all(consumers);

    // The writer retries each batch with the same ids until it is acknowledged (idempotent).
    const writer = (async () => {
      for (let i = 0; i < EVENTS; i += BATCH) {
        await waitFor(() => i + BATCH <= writeLimit, { timeoutMs: 120000, intervalMs: 10,
          what: `the writer allowed past ${i} events` });
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

    for (let k = 1; k <= KILLS; k++) {
      const { node, fired } = await arm(k);
      // Resolves once the killed leader's process has exited.
      await withDeadline(fired, 90000, `leader kill ${k} at ${Math.round(k * third)} processed`);
      await cluster.waitForLeader({ timeoutMs: 15000, followers: 'live' });
      const info = await resumedInfo(await cluster.leader({ timeoutMs: 15000 }));
      kills[k - 1].resumedFromCheckpoint = info.resumedFromCheckpoint;
      kills[k - 1].reportedBound = info.failoverRedeliveryBound;
      await cluster.restart(node);
    }
    await writer;
    await waitFor(() => [...written].every((id) => deliveries.has(id)),
      { timeoutMs: 60000, what: 'every written event processed' });
    state.stopped = true;
    const last = await resumedInfo(await cluster.leader({ timeoutMs: 15000 }));

    const missing = [...written].filter((id) => !deliveries.has(id));
    assert.equal(written.size, EVENTS);
    assert.equal(missing.length, 0, `${missing.length} acknowledged events were never processed`);
    const duplicates = state.total - deliveries.size;
    const bound = KILLS * (maxCheckPointCount + CONSUMERS * IN_FLIGHT);
    console.log(`# persistent failover: ${EVENTS} events, ${KILLS} leader kills, ` +
      `${state.total} deliveries, ${duplicates} duplicates (bound ${bound}), ` +
      `${Math.round((Date.now() - started) / 1000)} s; kills ${JSON.stringify(kills)}`);
    assert.ok(duplicates <= bound, `${duplicates} duplicates exceed the bound ${bound}`);
    // What the leaders reported: the events consumers saw again after each kill are among the
    // events after the resumed checkpoint that existed at load, so never more than reported.
    const reported = kills.reduce((sum, k) => sum + k.reportedBound, 0);
    console.log(`# reported after each kill: ${JSON.stringify(kills.map((k, i) => ({
      checkpoint: k.resumedFromCheckpoint, bound: k.reportedBound,
      seenAgain: state.seenAgain[i + 1].size })))}; last leader delivered ` +
      `${last.failoverPossiblyRedelivered} of its ${last.failoverRedeliveryBound}`);
    for (const [i, k] of kills.entries()) {
      assert.ok(Number.isInteger(k.reportedBound) && k.reportedBound >= 1,
        `kill ${i + 1}: the unacknowledged event in flight lies after the checkpoint`);
      assert.ok(state.seenAgain[i + 1].size <= k.reportedBound,
        `kill ${i + 1}: ${state.seenAgain[i + 1].size} events seen again exceed the reported ` +
        `bound ${k.reportedBound}`);
    }
    assert.ok(duplicates <= reported,
      `${duplicates} duplicates exceed the ${reported} reported over the kills`);
    // The last leader's running count: every event seen again after the last kill was delivered
    // by it from the counted range, and the count never passes the bound.
    assert.equal(last.failoverRedeliveryBound, kills[KILLS - 1].reportedBound);
    assert.ok(last.failoverPossiblyRedelivered >= state.seenAgain[KILLS].size);
    assert.ok(last.failoverPossiblyRedelivered <= last.failoverRedeliveryBound);
    // Each kill hit the stream mid-way: events were processed after it, and the event whose
    // handler sent the SIGKILL (unacknowledged then) was delivered again by the next leader.
    assert.equal(kills.length, KILLS);
    for (const [i, k] of kills.entries()) {
      assert.equal(k.processed, Math.round((i + 1) * third), 'the kill fired at its mark');
      assert.ok(k.processed < EVENTS, `kill ${i + 1} came after the last event was processed`);
      assert.ok(deliveries.get(k.inFlight) >= 2,
        `the event in flight at kill ${i + 1} was not delivered again`);
    }
  });
