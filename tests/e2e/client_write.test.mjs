// Goal: prove that appends through the unmodified node-eventstore-client 23.10.1 behave as on
// EventStore: single and multi-event writes (1, 26, 1,001 events, a 3 MiB event read back
// byte-exact), the expected-version rules (exact, NoStream, StreamExists, Any), idempotent
// retries with the same event ids returning the first result and appending nothing, appends to
// a hard-deleted stream refused, and 2,000 concurrent appends over 20 streams numbered
// contiguously.
import { describe, test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import {
  connect, streamName, makeEvents, jsonEvent, rawEvent, num, dataOf, rejectsWith,
  readAll, ANY, NO_STREAM, STREAM_EXISTS,
  openWorkerConnection, closeWorkerConnection, closeQuietly,
} from './lib/es.mjs';

const T = { timeout: 60000 };

describe('client appends', () => {
  let w;
  let conn;
  before(async () => ({ w, conn } = await openWorkerConnection()));
  after(() => closeWorkerConnection(w, conn));

  test('append of 1 event: version 0, position > 0, read back with id, type, data, date', T, async () => {
    const s = streamName('one');
    const ev = jsonEvent({ hello: 'world' }, 'Greeting', { m: 1 });
    const before = Date.now();
    const r = await conn.appendToStream(s, NO_STREAM, ev);
    assert.equal(num(r.nextExpectedVersion), 0);
    assert.ok(r.logPosition.commitPosition.gt(0) && r.logPosition.preparePosition.gt(0),
      `write position must be > 0, got ${r.logPosition}`);
    const { events } = await readAll(conn, s);
    assert.equal(events.length, 1);
    const e = events[0].event;
    assert.equal(e.eventId, ev.eventId);
    assert.equal(e.eventType, 'Greeting');
    assert.equal(e.eventStreamId, s);
    assert.equal(num(e.eventNumber), 0);
    assert.equal(e.isJson, true);
    assert.deepEqual(dataOf(e), { hello: 'world' });
    assert.deepEqual(JSON.parse(e.metadata.toString()), { m: 1 });
    // created_epoch (ms) is what the client shows as the event date (PROTOCOL.md H5).
    assert.ok(e.createdEpoch >= before - 60000 && e.createdEpoch <= Date.now() + 60000,
      `created_epoch ${e.createdEpoch} is not a current ms timestamp`);
  });

  test('append of 26 events in one write: version 25, read back in order', T, async () => {
    const s = streamName('twentysix');
    const evs = makeEvents(26);
    const r = await conn.appendToStream(s, NO_STREAM, evs);
    assert.equal(num(r.nextExpectedVersion), 25);
    const { events } = await readAll(conn, s);
    assert.deepEqual(events.map((e) => e.event.eventId), evs.map((e) => e.eventId));
    assert.deepEqual(events.map((e) => num(e.event.eventNumber)), [...Array(26).keys()]);
  });

  test('append of 1,001 events in one write: version 1000, all read back in order', T, async () => {
    const s = streamName('thousand');
    const evs = makeEvents(1001);
    const r = await conn.appendToStream(s, NO_STREAM, evs);
    assert.equal(num(r.nextExpectedVersion), 1000);
    const { events } = await readAll(conn, s, { pageSize: 300 });
    assert.equal(events.length, 1001);
    assert.deepEqual(events.map((e) => e.event.eventId), evs.map((e) => e.eventId));
    events.forEach((e, i) => assert.equal(dataOf(e.event).i, i));
  });

  test('a 3 MiB event is stored and read back byte-exact (stream read and readEvent)', T, async () => {
    const s = streamName('big');
    const data = randomBytes(3 * 1024 * 1024);
    const ev = rawEvent(data, 'Big');
    const r = await conn.appendToStream(s, NO_STREAM, ev);
    assert.equal(num(r.nextExpectedVersion), 0);
    const slice = await conn.readStreamEventsForward(s, 0, 10);
    assert.equal(slice.events.length, 1);
    assert.equal(slice.events[0].event.isJson, false);
    assert.ok(slice.events[0].event.data.equals(data), '3 MiB data differs after a stream read');
    const one = await conn.readEvent(s, 0);
    assert.equal(one.status, 'success');
    assert.ok(one.event.event.data.equals(data), '3 MiB data differs after readEvent');
    // The connection must still be healthy afterwards (heartbeats not starved by big frames).
    const r2 = await conn.appendToStream(s, 0, jsonEvent({ after: true }));
    assert.equal(num(r2.nextExpectedVersion), 1);
  });

  test('wrong expected version → WrongExpectedVersionError, stream unchanged', T, async () => {
    const s = streamName('wev');
    await conn.appendToStream(s, NO_STREAM, makeEvents(2)); // version 1
    await rejectsWith(conn.appendToStream(s, 5, jsonEvent({})), { name: 'WrongExpectedVersionError' });
    await rejectsWith(conn.appendToStream(s, 0, jsonEvent({})), { name: 'WrongExpectedVersionError' });
    await rejectsWith(conn.appendToStream(s, NO_STREAM, jsonEvent({})),
      { name: 'WrongExpectedVersionError' });
    const { events } = await readAll(conn, s);
    assert.equal(events.length, 2);
  });

  test('expected version chain: NoStream, exact, StreamExists (missing → error), Any', T, async () => {
    const s = streamName('chain');
    await rejectsWith(conn.appendToStream(s, STREAM_EXISTS, jsonEvent({ n: 'x' })),
      { name: 'WrongExpectedVersionError' });
    let r = await conn.appendToStream(s, NO_STREAM, jsonEvent({ n: 0 }));
    assert.equal(num(r.nextExpectedVersion), 0);
    r = await conn.appendToStream(s, 0, makeEvents(2));
    assert.equal(num(r.nextExpectedVersion), 2);
    r = await conn.appendToStream(s, 2, jsonEvent({ n: 3 }));
    assert.equal(num(r.nextExpectedVersion), 3);
    r = await conn.appendToStream(s, STREAM_EXISTS, jsonEvent({ n: 4 }));
    assert.equal(num(r.nextExpectedVersion), 4);
    r = await conn.appendToStream(s, ANY, jsonEvent({ n: 5 }));
    assert.equal(num(r.nextExpectedVersion), 5);
    const fresh = streamName('chain-any');
    r = await conn.appendToStream(fresh, ANY, jsonEvent({ n: 0 }));
    assert.equal(num(r.nextExpectedVersion), 0);
    const { events } = await readAll(conn, s);
    assert.deepEqual(events.map((e) => num(e.event.eventNumber)), [0, 1, 2, 3, 4, 5]);
  });

  test('idempotent retry with NoStream: same result, nothing appended', T, async () => {
    const s = streamName('idem-nostream');
    const evs = makeEvents(3);
    const r1 = await conn.appendToStream(s, NO_STREAM, evs);
    const r2 = await conn.appendToStream(s, NO_STREAM, evs);
    assert.equal(num(r2.nextExpectedVersion), num(r1.nextExpectedVersion));
    assert.equal(r2.logPosition.toString(), r1.logPosition.toString(),
      'retry must return the first write\'s position');
    const { events } = await readAll(conn, s);
    assert.equal(events.length, 3);
  });

  test('idempotent retry with an exact expected version: same result, nothing appended', T, async () => {
    const s = streamName('idem-exact');
    await conn.appendToStream(s, NO_STREAM, jsonEvent({ first: true })); // version 0
    const evs = makeEvents(2);
    const r1 = await conn.appendToStream(s, 0, evs);
    assert.equal(num(r1.nextExpectedVersion), 2);
    // Another write lands in between; the retry with the old expected version still succeeds.
    await conn.appendToStream(s, 2, jsonEvent({ later: true }));
    const r2 = await conn.appendToStream(s, 0, evs);
    assert.equal(num(r2.nextExpectedVersion), 2, 'retry must return the original last event number');
    assert.equal(r2.logPosition.toString(), r1.logPosition.toString());
    const { events } = await readAll(conn, s);
    assert.equal(events.length, 4);
    // Same ids at the same version but different ones after them is not idempotent.
    await rejectsWith(conn.appendToStream(s, 0, [evs[0], jsonEvent({ other: true })]),
      { name: 'WrongExpectedVersionError' });
  });

  test('idempotent retry with Any: same result, nothing appended', T, async () => {
    const s = streamName('idem-any');
    await conn.appendToStream(s, ANY, makeEvents(2));
    const evs = makeEvents(2);
    const r1 = await conn.appendToStream(s, ANY, evs);
    assert.equal(num(r1.nextExpectedVersion), 3);
    const r2 = await conn.appendToStream(s, ANY, evs);
    assert.equal(num(r2.nextExpectedVersion), 3);
    assert.equal(r2.logPosition.toString(), r1.logPosition.toString());
    const single = jsonEvent({ single: true });
    const r3 = await conn.appendToStream(s, ANY, single);
    const r4 = await conn.appendToStream(s, ANY, single);
    assert.equal(num(r3.nextExpectedVersion), 4);
    assert.equal(num(r4.nextExpectedVersion), 4);
    const { events } = await readAll(conn, s);
    assert.equal(events.length, 5);
  });

  test('append to a hard-deleted stream → StreamDeletedError whatever the expected version', T, async () => {
    const s = streamName('hard');
    await conn.appendToStream(s, NO_STREAM, makeEvents(2));
    await conn.deleteStream(s, 1, true);
    await rejectsWith(conn.appendToStream(s, ANY, jsonEvent({})), { name: 'StreamDeletedError' });
    await rejectsWith(conn.appendToStream(s, NO_STREAM, jsonEvent({})), { name: 'StreamDeletedError' });
    await rejectsWith(conn.appendToStream(s, 1, jsonEvent({})), { name: 'StreamDeletedError' });
  });

  test('2,000 concurrent appends over 20 streams all succeed, numbered contiguously', T, async () => {
    const conns = [conn, await connect(w), await connect(w), await connect(w)];
    try {
      const streams = Array.from({ length: 20 }, (_, i) => streamName(`conc${i}`));
      const sent = new Map(streams.map((s) => [s, new Set()]));
      const versions = new Map(streams.map((s) => [s, []]));
      const writes = [];
      for (let i = 0; i < 2000; i++) {
        const s = streams[i % 20];
        const ev = jsonEvent({ i }, 'Concurrent');
        sent.get(s).add(ev.eventId);
        writes.push(conns[i % conns.length].appendToStream(s, ANY, ev).then((r) => {
          versions.get(s).push(num(r.nextExpectedVersion));
        }));
      }
      await Promise.all(writes);
      for (const s of streams) {
        // Each write got its own event number.
        assert.deepEqual(versions.get(s).sort((a, b) => a - b), [...Array(100).keys()],
          `acknowledged versions of ${s}`);
        const { events } = await readAll(conn, s);
        assert.equal(events.length, 100, `${s} holds ${events.length} events`);
        assert.deepEqual(events.map((e) => num(e.event.eventNumber)), [...Array(100).keys()]);
        assert.deepEqual(new Set(events.map((e) => e.event.eventId)), sent.get(s));
      }
    } finally {
      conns.slice(1).forEach(closeQuietly);
    }
  });

  test('the connection stayed up through every test (heartbeats answered under load)', T, () => {
    assert.deepEqual(conn.disconnects, []);
  });
});
