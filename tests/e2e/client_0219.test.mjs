// Goal: prove that the old node-eventstore-client 0.2.19 (bundled by geteventstore-promise; it
// decodes replies with proto2 `required` checks and fails an operation on any missing required
// field) works against Chorus: append, readEvent (found, not found, missing stream),
// stream reads forward/backward, $all forward as admin, and a volatile subscription.
import { describe, test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import es0219 from 'node-eventstore-client-0219';
import { startWorker } from './lib/harness.mjs';
import { connect, closeQuietly, streamName, num, deferred, withDeadline, rejectsWith } from './lib/es.mjs';

const T = { timeout: 60000 };
const admin = new es0219.UserCredentials('admin', 'changeit');
const ev = (data, type = 'Old') => es0219.createJsonEventData(randomUUID(), data, null, type);

describe('node-eventstore-client 0.2.19 (strict decoder)', () => {
  let w;
  let conn;
  let s;
  let ids;

  before(async () => {
    w = await startWorker({ memDb: true });
    conn = await connect(w, { log: new es0219.NoopLogger() }, { client: es0219 });
    s = streamName('old');
    const evs = Array.from({ length: 10 }, (_, i) => ev({ i }));
    ids = evs.map((e) => e.eventId);
    const r = await conn.appendToStream(s, es0219.expectedVersion.noStream, evs);
    assert.equal(num(r.nextExpectedVersion), 9);
  });

  after(async () => {
    closeQuietly(conn);
    await w?.cleanup();
  });

  test('append: single events chain, wrong expected version is a WrongExpectedVersionError', T, async () => {
    const t = streamName('old-append');
    let r = await conn.appendToStream(t, es0219.expectedVersion.any, ev({ a: 1 }));
    assert.equal(num(r.nextExpectedVersion), 0);
    r = await conn.appendToStream(t, 0, ev({ a: 2 }));
    assert.equal(num(r.nextExpectedVersion), 1);
    await rejectsWith(conn.appendToStream(t, 7, ev({ a: 3 })), { name: 'WrongExpectedVersionError' });
  });

  test('readEvent: success, last (-1), notFound, noStream', T, async () => {
    const r = await conn.readEvent(s, 3);
    assert.equal(r.status, 'success');
    assert.equal(r.event.event.eventId, ids[3]);
    assert.deepEqual(JSON.parse(r.event.event.data.toString()), { i: 3 });
    assert.equal(num((await conn.readEvent(s, -1)).event.event.eventNumber), 9);
    // These replies carry no event: the required `event` field must still be present.
    assert.equal((await conn.readEvent(s, 50)).status, 'notFound');
    assert.equal((await conn.readEvent(streamName('old-missing'), 0)).status, 'noStream');
  });

  test('readStreamEventsForward/Backward incl. a missing stream', T, async () => {
    const fwd = await conn.readStreamEventsForward(s, 0, 4);
    assert.equal(fwd.status, 'success');
    assert.deepEqual(fwd.events.map((e) => e.event.eventId), ids.slice(0, 4));
    assert.equal(num(fwd.nextEventNumber), 4);
    assert.equal(fwd.isEndOfStream, false);
    const bwd = await conn.readStreamEventsBackward(s, -1, 100);
    assert.deepEqual(bwd.events.map((e) => e.event.eventId), [...ids].reverse());
    assert.equal(bwd.isEndOfStream, true);
    const missing = await conn.readStreamEventsForward(streamName('old-missing'), 0, 10);
    assert.equal(missing.status, 'streamNotFound');
    assert.equal(missing.isEndOfStream, true);
  });

  test('readAllEventsForward as admin contains our events in order', T, async () => {
    const all = [];
    let pos = es0219.positions.start;
    for (let page = 0; page < 1000; page++) {
      const sl = await conn.readAllEventsForward(pos, 200, false, admin);
      all.push(...sl.events);
      if (sl.isEndOfStream) break;
      pos = sl.nextPosition;
    }
    const ours = all.filter((e) => e.event.eventStreamId === s);
    assert.deepEqual(ours.map((e) => e.event.eventId), ids);
    assert.ok(all[0].originalPosition.compareTo(es0219.positions.start) > 0);
  });

  test('volatile subscription: confirmation, live events, unsubscribe', T, async () => {
    const t = streamName('old-sub');
    const got = [];
    const two = deferred();
    const dropped = deferred();
    const sub = await withDeadline(conn.subscribeToStream(t, false, (_s, e) => {
      got.push(e);
      if (got.length === 2) two.resolve();
    }, (_s, reason) => dropped.resolve(reason)), 15000, 'subscription confirmation');
    assert.equal(num(sub.lastEventNumber), -1);
    const evs = [ev({ n: 1 }), ev({ n: 2 })];
    await conn.appendToStream(t, es0219.expectedVersion.noStream, evs);
    await withDeadline(two.promise, 15000, 'two live events');
    assert.deepEqual(got.map((e) => e.originalEvent.eventId), evs.map((e) => e.eventId));
    sub.unsubscribe();
    assert.equal(await withDeadline(dropped.promise, 15000, 'drop'), 'userInitiated');
  });
});
