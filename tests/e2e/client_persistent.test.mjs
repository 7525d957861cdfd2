// Goal: prove that persistent subscriptions (competing consumers, PROTOCOL.md C and G) work for
// the unmodified node-eventstore-client 23.10.1 and 0.2.19 (the same tests run with each):
// create/update/delete with their result codes and ACLs ($admins/$ops only), connect with
// in-flight limits, round robin splits between two consumers, pinned keeps a source stream on one
// consumer, acks, nak retry until the message is parked (the client does not expose the retry
// count; tcp_convert_test covers it), replay of parked messages, update and delete drop consumers
// with the right reason, max subscriber count, access denied on connect, and extraStatistics
// (EventStore's delivery-to-ack times per connection in /info, only when enabled).
import { describe, test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import es0219 from 'node-eventstore-client-0219';
import { startWorker, waitFor } from './lib/harness.mjs';
import {
  es, connect, closeQuietly, streamName, deferred, withDeadline, ANY, Long,
} from './lib/es.mjs';
import { randomUUID } from 'node:crypto';

const T = { timeout: 60000 };
const WAIT = 15000;


// Events a consumer saw, with a way to await a condition on them with a deadline.
function consumerLog() {
  const seen = [];
  const waiters = [];
  return {
    seen,
    push(e) {
      seen.push(e);
      for (const w of [...waiters]) {
        if (w.pred(seen)) { waiters.splice(waiters.indexOf(w), 1); w.resolve(); }
      }
    },
    until(pred, what) {
      if (pred(seen)) return Promise.resolve();
      const d = deferred();
      waiters.push({ pred, resolve: d.resolve });
      return withDeadline(d.promise, WAIT, `${what} (saw ${seen.length})`);
    },
  };
}

function numberOf(e) { return e.originalEventNumber.toNumber(); }

// EventStore's extra statistics, in its order (RequestStatistics.GetMeasurementDetails).
const EXTRA_KEYS = ['Mean', 'Median', 'Fastest', 'Quintile 1', 'Quintile 2', 'Quintile 3',
  'Quintile 4', 'Quintile 5', '90%', '95%', '99%', '99.5%', '99.9%', 'Highest'];

// The same tests for each client version; each client builds its own settings, credentials and
// event data (0.2.19 checks `instanceof` against its own classes).
for (const [version, client] of [['23.10.1', es], ['0.2.19', es0219]]) describe(
  `persistent subscriptions over TCP (${version})`, () => {
  const admin = new client.UserCredentials('admin', 'changeit');
  const ops = new client.UserCredentials('ops', 'changeit');
  const jsonEvent = (data, type = 'Work') =>
    client.createJsonEventData(randomUUID(), data, null, type);
  // Settings as the client builds them, starting from the beginning of the stream.
  const settings = (overrides = {}) => {
    const s = client.PersistentSubscriptionSettings.create();
    s.startFrom = Long.fromValue(0);
    return Object.assign(s, overrides);
  };
  const appendN = async (conn, stream, n) => {
    for (let i = 0; i < n; i++) await conn.appendToStream(stream, ANY, jsonEvent({ i }));
  };
  let w;
  let conn;   // manages and writes
  let c1;     // consumers
  let c2;

  before(async () => {
    w = await startWorker({ memDb: true });
    conn = await connect(w, {}, { client });
    c1 = await connect(w, { defaultUserCredentials: admin }, { client });
    c2 = await connect(w, { defaultUserCredentials: admin }, { client });
  });

  after(async () => {
    for (const c of [conn, c1, c2]) closeQuietly(c);
    await w?.cleanup();
  });

  test('create needs $admins or $ops; duplicates are refused; bad settings fail', T, async () => {
    const s = streamName('ps-acl');
    await assert.rejects(conn.createPersistentSubscription(s, 'g', settings()),
      /access denied/i, 'anonymous create is refused');
    await conn.createPersistentSubscription(s, 'g', settings(), ops);
    await assert.rejects(conn.createPersistentSubscription(s, 'g', settings(), admin),
      /already exists/);
    await assert.rejects(conn.updatePersistentSubscription(s, 'g', settings()),
      /access denied/i, 'anonymous update is refused');
    await assert.rejects(conn.deletePersistentSubscription(s, 'g'),
      /access denied/i, 'anonymous delete is refused');
    await assert.rejects(conn.updatePersistentSubscription(s, 'missing', settings(), admin),
      /does not exist|DoesNotExist/i);
    await assert.rejects(
      conn.createPersistentSubscription(s, 'bad', settings({ readBatchSize: 50,
        historyBufferSize: 20 }), admin), /bufferSize/);
    await assert.rejects(conn.createPersistentSubscription('$all', 'g', settings(), admin),
      /\$all/);
    await conn.deletePersistentSubscription(s, 'g', admin);
    await assert.rejects(conn.deletePersistentSubscription(s, 'g', admin),
      /does not exist|DoesNotExist/i);
  });

  test('round robin splits between two consumers; every event acked once', T, async () => {
    const s = streamName('ps-rr');
    await appendN(conn, s, 4);
    await conn.createPersistentSubscription(s, 'rr', settings(), admin);
    const a = consumerLog();
    const b = consumerLog();
    const subA = await c1.connectToPersistentSubscription(s, 'rr', (_s, e) => a.push(e));
    const subB = await c2.connectToPersistentSubscription(s, 'rr', (_s, e) => b.push(e));
    await appendN(conn, s, 16);
    await waitFor(() => a.seen.length + b.seen.length >= 20,
      { timeoutMs: WAIT, what: 'all 20 events delivered' });
    const all = [...a.seen, ...b.seen].map(numberOf).sort((x, y) => x - y);
    assert.deepEqual(all, Array.from({ length: 20 }, (_, i) => i), 'each event exactly once');
    assert.ok(a.seen.length >= 5 && b.seen.length >= 5,
      `round robin gives both consumers a share (${a.seen.length}/${b.seen.length})`);
    // Per consumer, events arrive in order.
    for (const log of [a, b]) {
      const ns = log.seen.map(numberOf);
      assert.deepEqual(ns, [...ns].sort((x, y) => x - y));
    }
    subA.stop();
    subB.stop();
  });

  test('pinned keeps each source stream on one consumer', T, async () => {
    const s = streamName('ps-pin');
    await conn.createPersistentSubscription(s, 'pin',
      settings({ namedConsumerStrategy: client.SystemConsumerStrategies.Pinned,
        resolveLinkTos: true }), admin);
    const a = consumerLog();
    const b = consumerLog();
    const subA = await c1.connectToPersistentSubscription(s, 'pin', (_s, e) => a.push(e));
    const subB = await c2.connectToPersistentSubscription(s, 'pin', (_s, e) => b.push(e));
    // Links into s from 6 source streams, as a category projection would write them.
    const sources = Array.from({ length: 6 }, (_, i) => streamName(`src${i}`));
    for (let round = 0; round < 4; round++) {
      for (const src of sources) {
        const r = await conn.appendToStream(src, ANY, jsonEvent({ round }));
        await conn.appendToStream(s, ANY, client.createEventData(randomUUID(), '$>', false,
          Buffer.from(`${r.nextExpectedVersion}@${src}`)));
      }
    }
    await waitFor(() => a.seen.length + b.seen.length >= 24,
      { timeoutMs: WAIT, what: 'all 24 links delivered' });
    const owner = new Map();
    for (const [name, log] of [['a', a], ['b', b]]) {
      for (const e of log.seen) {
        const src = e.event.eventStreamId;
        assert.ok(!owner.has(src) || owner.get(src) === name, `${src} went to both consumers`);
        owner.set(src, name);
      }
    }
    assert.equal(owner.size, 6);
    subA.stop();
    subB.stop();
  });

  test('nak retry redelivers until the message is parked; replay parked', T,
    async () => {
      const s = streamName('ps-nak');
      await appendN(conn, s, 1);
      await conn.createPersistentSubscription(s, 'nak', settings({ maxRetryCount: 2 }), admin);
      const log = consumerLog();
      let failing = true;
      const sub = await c1.connectToPersistentSubscription(s, 'nak', (subscription, e) => {
        log.push(e);
        if (failing) {
          subscription.fail(e, client.PersistentSubscriptionNakEventAction.Retry, 'not yet');
        } else {
          subscription.acknowledge(e);
        }
      }, undefined, undefined, 10, false);
      await log.until((seen) => seen.length >= 3, 'three deliveries');
      assert.deepEqual(log.seen.map(numberOf), [0, 0, 0], 'the first delivery and two retries');
      // The third nak passes maxRetryCount (2): the message is parked, a link in the parked stream.
      const parked = `$persistentsubscription-${s}::nak-parked`;
      let slice;
      const deadline = Date.now() + WAIT;
      do {
        slice = await conn.readStreamEventsForward(parked, 0, 10, true, admin);
        if (slice.events.length > 0) break;
        await new Promise((r) => setTimeout(r, 50));
      } while (Date.now() < deadline);
      assert.equal(slice.events.length, 1, 'one parked message');
      assert.equal(slice.events[0].event.eventStreamId, s);
      assert.equal(log.seen.length, 3, 'a parked message is not delivered again by itself');
      // Replay over HTTP (the TCP protocol has no replay command).
      failing = false;
      const auth = `Basic ${Buffer.from('admin:changeit').toString('base64')}`;
      const res = await fetch(
        `http://${w.host}:${w.httpPort}/subscriptions/${encodeURIComponent(s)}/nak/replayParked`,
        { method: 'POST', headers: { authorization: auth } });
      assert.equal(res.status, 200, `replayParked answered ${res.status}`);
      await log.until((seen) => seen.length >= 4, 'the parked message again');
      assert.equal(numberOf(log.seen[3]), 0);
      const after = await conn.readStreamEventsForward(parked, 0, 10, true, admin);
      assert.equal(after.events.length, 0, 'replayed messages leave the parked stream');
      sub.stop();
    });

  test('update and delete drop consumers with the right reason', T, async () => {
    const s = streamName('ps-drop');
    await conn.createPersistentSubscription(s, 'd', settings(), admin);
    const dropped1 = deferred();
    await c1.connectToPersistentSubscription(s, 'd', () => {},
      (_s, reason, err) => dropped1.resolve({ reason, err }));
    await conn.updatePersistentSubscription(s, 'd', settings({ messageTimeout: 5000 }), admin);
    const first = await withDeadline(dropped1.promise, WAIT, 'drop after update');
    assert.equal(first.reason, 'persistentSubscriptionDeleted');
    const dropped2 = deferred();
    await c1.connectToPersistentSubscription(s, 'd', () => {},
      (_s, reason) => dropped2.resolve(reason));
    await conn.deletePersistentSubscription(s, 'd', admin);
    assert.equal(await withDeadline(dropped2.promise, WAIT, 'drop after delete'),
      'persistentSubscriptionDeleted');
    await assert.rejects(c1.connectToPersistentSubscription(s, 'd', () => {}),
      /not found/i, 'a deleted group cannot be joined');
  });

  test('max subscriber count and access denied', T, async () => {
    const s = streamName('ps-max');
    await conn.createPersistentSubscription(s, 'm', settings({ maxSubscriberCount: 1 }), admin);
    const sub = await c1.connectToPersistentSubscription(s, 'm', () => {});
    await assert.rejects(c2.connectToPersistentSubscription(s, 'm', () => {}),
      /maximum subscribers/i);
    sub.stop();
    // Read access to the stream is needed to connect.
    const secret = streamName('ps-secret');
    await conn.setStreamMetadataRaw(secret, ANY, { $acl: { $r: '$admins' } }, admin);
    await conn.createPersistentSubscription(secret, 'g', settings(), admin);
    await assert.rejects(conn.connectToPersistentSubscription(secret, 'g', () => {}),
      /access/i);
    const ok = await c1.connectToPersistentSubscription(secret, 'g', () => {});
    ok.stop();
  });

  test('stop() ends the subscription as user initiated', T, async () => {
    const s = streamName('ps-stop');
    await conn.createPersistentSubscription(s, 'g', settings(), admin);
    const log = consumerLog();
    const dropped = deferred();
    const sub = await c1.connectToPersistentSubscription(s, 'g', (_s, e) => log.push(e),
      (_s, reason) => dropped.resolve(reason));
    await appendN(conn, s, 2);
    await log.until((seen) => seen.length >= 2, 'two events');
    assert.deepEqual(log.seen.map(numberOf), [0, 1]);
    sub.stop();
    assert.equal(await withDeadline(dropped.promise, WAIT, 'drop'), 'userInitiated');
  });

  test('extraStatistics: /info shows delivery-to-ack times per connection only when enabled', T,
    async () => {
      const s = streamName('ps-stats');
      await appendN(conn, s, 6);
      await conn.createPersistentSubscription(s, 'on', settings({ extraStatistics: true }), admin);
      await conn.createPersistentSubscription(s, 'off', settings(), admin);
      const HOLD_MS = 50;  // each consumer acks this long after it received the event
      const subs = [];
      for (const group of ['on', 'off']) {
        subs.push(await c1.connectToPersistentSubscription(s, group, (sub, e) => {
          setTimeout(() => sub.acknowledge(e), HOLD_MS);
        }, undefined, admin, 10, false));
      }
      const auth = `Basic ${Buffer.from('admin:changeit').toString('base64')}`;
      const info = async (group) => (await fetch(
        `http://${w.host}:${w.httpPort}/subscriptions/${encodeURIComponent(s)}/${group}/info`,
        { headers: { authorization: auth } })).json();
      const acked = (i) => i.connections.length === 1 && i.connections[0].totalItemsProcessed === 6;
      const on = await waitFor(async () => { const i = await info('on'); return acked(i) && i; },
        { timeoutMs: WAIT, what: 'six acks in /info of "on"' });
      assert.equal(on.config.extraStatistics, true);
      const stats = on.connections[0].extraStatistics;
      assert.deepEqual(stats.map((m) => m.key), EXTRA_KEYS);
      const value = Object.fromEntries(stats.map((m) => [m.key, m.value]));
      assert.ok(value.Fastest >= HOLD_MS - 5,
        `fastest ${value.Fastest} ms is less than the ${HOLD_MS} ms hold`);
      assert.ok(value.Fastest <= value.Median && value.Median <= value.Highest,
        JSON.stringify(value));
      assert.ok(value.Highest < 10000, `highest ${value.Highest} ms is not a time`);
      const off = await waitFor(async () => { const i = await info('off'); return acked(i) && i; },
        { timeoutMs: WAIT, what: 'six acks in /info of "off"' });
      assert.equal(off.config.extraStatistics, false);
      assert.deepEqual(off.connections[0].extraStatistics, [], 'no statistics when disabled');
      for (const sub of subs) sub.stop();
    });
});
