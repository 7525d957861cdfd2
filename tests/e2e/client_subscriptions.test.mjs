// Goal: prove that subscriptions work as on EventStore for the unmodified node-eventstore-client
// 23.10.1 (PROTOCOL.md C7): volatile stream subscriptions confirm with the stream's last event
// number (Long -1 for a missing stream) and push new events live in order; unsubscribing drops
// with userInitiated; $all subscriptions need admin and carry increasing positions; catch-up
// subscriptions deliver history then live events without gaps or duplicates, and a catch-up on
// $all from the end position delivers no history, only new events.
import { describe, test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { startWorker } from './lib/harness.mjs';
import {
  es, connect, closeQuietly, streamName, makeEvents, jsonEvent, num, dataOf, rejectsWith,
  deferred, withDeadline, admin, ANY, NO_STREAM, Long,
} from './lib/es.mjs';

const T = { timeout: 60000 };
const WAIT = 15000;

// Collects pushed events and lets a test await a condition on them with a deadline.
function collector() {
  const events = [];
  const waiters = [];
  const check = () => {
    for (const w of [...waiters]) {
      if (w.pred(events)) { waiters.splice(waiters.indexOf(w), 1); w.resolve(); }
    }
  };
  return {
    events,
    push(e) { events.push(e); check(); },
    until(pred, what) {
      if (pred(events)) return Promise.resolve();
      const d = deferred();
      waiters.push({ pred, resolve: d.resolve });
      return withDeadline(d.promise, WAIT, what).catch((e) => {
        throw new Error(`${e.message} (received ${events.length} events)`);
      });
    },
    waitFor(n, what) { return this.until((evs) => evs.length >= n, `${what}: ${n} events`); },
  };
}

describe('client subscriptions', () => {
  let w;
  let conn; // subscribes
  let writer; // writes, so pushes and replies travel on different connections

  before(async () => {
    w = await startWorker({ memDb: true });
    conn = await connect(w);
    writer = await connect(w);
  });

  after(async () => {
    closeQuietly(conn);
    closeQuietly(writer);
    await w?.cleanup();
  });

  test('volatile subscription to a missing stream: lastEventNumber is Long -1, events live in order, unsubscribe → userInitiated', T, async () => {
    const s = streamName('vol');
    const got = collector();
    const dropped = deferred();
    const sub = await withDeadline(conn.subscribeToStream(s, false,
      (_sub, e) => got.push(e), (_sub, reason, err) => dropped.resolve({ reason, err })),
    WAIT, 'subscription confirmation');
    assert.ok(Long.isLong(sub.lastEventNumber),
      `lastEventNumber must be a Long, got ${typeof sub.lastEventNumber} ${sub.lastEventNumber}`);
    assert.equal(sub.lastEventNumber.toNumber(), -1, 'missing stream: confirmation last_event_number = -1');
    assert.ok(Long.fromValue(sub.lastCommitPosition).gte(0));
    assert.equal(sub.streamId, s);
    assert.equal(sub.isSubscribedToAll, false);

    const evs = makeEvents(3);
    await writer.appendToStream(s, NO_STREAM, evs[0]);
    await writer.appendToStream(s, 0, evs.slice(1));
    const other = streamName('vol-other');
    await writer.appendToStream(other, ANY, jsonEvent({ not: 'mine' }));
    const more = makeEvents(2, 'More');
    await writer.appendToStream(s, 2, more);
    await got.waitFor(5, 'live events');
    assert.deepEqual(got.events.map((e) => e.originalEvent.eventId), [...evs, ...more].map((e) => e.eventId));
    assert.deepEqual(got.events.map((e) => num(e.originalEventNumber)), [0, 1, 2, 3, 4]);
    assert.ok(got.events.every((e) => e.originalStreamId === s), 'only events of the subscribed stream');
    for (let i = 0; i < got.events.length; i++) {
      const p = got.events[i].originalPosition;
      assert.ok(p && p.compareTo(es.positions.start) > 0, `live event ${i} must carry a position > (0,0)`);
      if (i > 0) assert.ok(p.compareTo(got.events[i - 1].originalPosition) > 0, 'live positions increase');
    }
    assert.deepEqual(dataOf(got.events[0].event), { i: 0 });

    sub.unsubscribe();
    const d = await withDeadline(dropped.promise, WAIT, 'subscriptionDropped');
    assert.equal(d.reason, 'userInitiated');
    // The connection keeps working after the unsubscribe.
    await writer.appendToStream(s, 4, jsonEvent({ after: true }));
    assert.equal((await conn.readEvent(s, -1)).status, 'success');
  });

  test('volatile subscription to an existing stream confirms its last event number', T, async () => {
    const s = streamName('vol-existing');
    await writer.appendToStream(s, NO_STREAM, makeEvents(4));
    const got = collector();
    const sub = await conn.subscribeToStream(s, false, (_s, e) => got.push(e));
    assert.equal(num(sub.lastEventNumber), 3);
    await writer.appendToStream(s, 3, jsonEvent({ live: true }));
    await got.waitFor(1, 'live event');
    assert.equal(num(got.events[0].originalEventNumber), 4);
    sub.unsubscribe();
  });

  test('subscribeToAll as admin gets events of several streams in commit order with positions', T, async () => {
    const got = collector();
    const sub = await conn.subscribeToAll(false, (_s, e) => got.push(e), undefined, admin);
    assert.equal(sub.isSubscribedToAll, true);
    const a = streamName('all-a');
    const b = streamName('all-b');
    const order = [];
    for (let i = 0; i < 6; i++) {
      const ev = jsonEvent({ i });
      order.push(ev.eventId);
      await writer.appendToStream(i % 2 ? b : a, ANY, ev);
    }
    const wanted = new Set(order);
    await got.until((evs) => evs.filter((e) => wanted.has(e.originalEvent.eventId)).length >= 6,
      'our 6 events on $all');
    const ours = got.events.filter((e) => wanted.has(e.originalEvent.eventId));
    assert.deepEqual(ours.map((e) => e.originalEvent.eventId), order);
    assert.deepEqual(ours.map((e) => e.originalStreamId), [a, b, a, b, a, b]);
    for (let i = 1; i < got.events.length; i++) {
      assert.ok(got.events[i].originalPosition.compareTo(got.events[i - 1].originalPosition) > 0,
        '$all subscription positions must increase');
    }
    sub.unsubscribe();
  });

  test('anonymous subscribeToAll is refused with access denied', T, async () => {
    await rejectsWith(withDeadline(conn.subscribeToAll(false, () => {}), WAIT, 'subscription answer'),
      { message: /access denied/i });
    // A stream whose $acl denies anonymous reads is refused the same way.
    const s = streamName('sub-acl');
    await writer.setStreamMetadataRaw(s, NO_STREAM, { $acl: { $r: '$admins' } }, admin);
    await rejectsWith(withDeadline(conn.subscribeToStream(s, false, () => {}), WAIT, 'subscription answer'),
      { message: /access denied/i });
    const ok = await conn.subscribeToStream(s, false, () => {}, undefined, admin);
    ok.unsubscribe();
  });

  test('catch-up subscription from the start: history then live, no gaps, no duplicates', T, async () => {
    const s = streamName('catchup');
    await writer.appendToStream(s, NO_STREAM, makeEvents(50, 'History'));
    const got = collector();
    const live = deferred();
    const dropped = deferred();
    const sub = conn.subscribeToStreamFrom(s, null, false, (_s, e) => got.push(e),
      () => live.resolve(got.events.length), (_s, reason, err) => dropped.resolve({ reason, err }),
      undefined, 20);
    // Writes racing with the catch-up phase must neither be lost nor duplicated.
    let v = 49;
    for (let i = 0; i < 10; i++) {
      await writer.appendToStream(s, v, makeEvents(2, 'Racing'));
      v += 2;
    }
    await withDeadline(live.promise, WAIT, 'liveProcessingStarted');
    await writer.appendToStream(s, v, makeEvents(5, 'Live'));
    await got.waitFor(75, 'catch-up events');
    assert.deepEqual(got.events.map((e) => num(e.originalEventNumber)), [...Array(75).keys()]);
    assert.deepEqual(got.events.slice(70).map((e) => e.originalEvent.eventType), Array(5).fill('Live'));
    sub.stop();
    const d = await withDeadline(dropped.promise, WAIT, 'catch-up drop');
    assert.equal(d.reason, 'userInitiated');
  });

  test('catch-up subscription from event number 2 delivers 3.. then live events', T, async () => {
    const s = streamName('catchup-from');
    await writer.appendToStream(s, NO_STREAM, makeEvents(6));
    const got = collector();
    const live = deferred();
    const sub = conn.subscribeToStreamFrom(s, 2, false, (_s, e) => got.push(e), () => live.resolve());
    await withDeadline(live.promise, WAIT, 'liveProcessingStarted');
    await writer.appendToStream(s, 5, makeEvents(2, 'Live'));
    await got.waitFor(5, 'events after 2');
    assert.deepEqual(got.events.map((e) => num(e.originalEventNumber)), [3, 4, 5, 6, 7]);
    sub.stop();
  });

  test('catch-up subscription to a missing stream goes live and receives its first events', T, async () => {
    const s = streamName('catchup-missing');
    const got = collector();
    const live = deferred();
    const sub = conn.subscribeToStreamFrom(s, null, false, (_s, e) => got.push(e), () => live.resolve());
    await withDeadline(live.promise, WAIT, 'liveProcessingStarted on a missing stream');
    await writer.appendToStream(s, NO_STREAM, makeEvents(2));
    await got.waitFor(2, 'first events');
    assert.deepEqual(got.events.map((e) => num(e.originalEventNumber)), [0, 1]);
    sub.stop();
  });

  test('catch-up on $all from the end position delivers no history, only new events', T, async () => {
    const old = streamName('all-old');
    await writer.appendToStream(old, NO_STREAM, makeEvents(5));
    const head = await conn.readAllEventsForward(es.positions.end, 1, false, admin);
    const got = collector();
    const live = deferred();
    const sub = conn.subscribeToAllFrom(head.nextPosition, false, (_s, e) => got.push(e),
      () => live.resolve(), undefined, admin);
    await withDeadline(live.promise, WAIT, 'liveProcessingStarted on $all');
    const s = streamName('all-new');
    const fresh = makeEvents(3, 'Fresh');
    await writer.appendToStream(s, NO_STREAM, fresh);
    await got.waitFor(3, 'new $all events');
    // Nothing written before the subscription may appear; the first events are ours.
    assert.ok(!got.events.some((e) => e.originalStreamId === old), 'history delivered from the end position');
    assert.deepEqual(got.events.slice(0, 3).map((e) => e.originalEvent.eventId), fresh.map((e) => e.eventId));
    sub.stop();
  });

  test('catch-up on $all from the start as admin delivers our history in order', T, async () => {
    const s = streamName('all-start');
    const evs = makeEvents(4);
    await writer.appendToStream(s, NO_STREAM, evs);
    const got = collector();
    const live = deferred();
    const sub = conn.subscribeToAllFrom(null, false, (_s, e) => got.push(e), () => live.resolve(),
      undefined, admin, 100);
    await withDeadline(live.promise, WAIT, 'liveProcessingStarted on $all from start');
    const ours = got.events.filter((e) => e.originalStreamId === s);
    assert.deepEqual(ours.map((e) => e.originalEvent.eventId), evs.map((e) => e.eventId));
    for (let i = 1; i < got.events.length; i++) {
      assert.ok(got.events[i].originalPosition.compareTo(got.events[i - 1].originalPosition) > 0);
    }
    sub.stop();
  });

  test('an idle subscription survives several heartbeat periods and still gets events', T, async () => {
    const s = streamName('idle');
    const got = collector();
    const dropped = [];
    const sub = await conn.subscribeToStream(s, false, (_s, e) => got.push(e),
      (_s, reason) => dropped.push(reason));
    // Idle time is the point of this test: the client declares the connection dead after
    // 750 + 1500 ms without any package, so the server must answer its heartbeat requests.
    await new Promise((r) => setTimeout(r, 3500));
    assert.deepEqual(dropped, [], 'subscription dropped while idle');
    await writer.appendToStream(s, NO_STREAM, jsonEvent({ afterIdle: true }));
    await got.waitFor(1, 'event after idle period');
    sub.unsubscribe();
    assert.deepEqual(conn.disconnects, [], 'subscribing connection was lost');
    assert.deepEqual(writer.disconnects, [], 'writing connection was lost');
  });

  test('a volatile subscription with resolveLinkTos pushes the target event with its link', T, async () => {
    const target = streamName('sub-target');
    const linker = streamName('sub-linker');
    const tev = jsonEvent({ t: 1 }, 'Target');
    await writer.appendToStream(target, NO_STREAM, tev);
    const got = collector();
    const sub = await conn.subscribeToStream(linker, true, (_s, e) => got.push(e));
    const link = es.createEventData(randomUUID(), '$>', false, Buffer.from(`0@${target}`));
    await writer.appendToStream(linker, NO_STREAM, link);
    await got.waitFor(1, 'resolved link event');
    const e = got.events[0];
    assert.equal(e.event?.eventId, tev.eventId, 'event = the link target');
    assert.equal(e.link?.eventId, link.eventId, 'link = the link record');
    assert.equal(e.originalStreamId, linker);
    sub.unsubscribe();
  });
});
