// Goal: prove that reads through the unmodified node-eventstore-client 23.10.1 give EventStore's
// answers: readEvent (incl. -1 = last, NotFound, NoStream), stream paging forward and backward
// with ES's exact next/last/end-of-stream values (PROTOCOL.md C5, incl. reads past the end),
// $all forward/backward as admin with increasing positions > (0,0) and the resolved head echoed on
// reads from the end (C6), anonymous $all reads denied, and `$>` links resolved or not on request.
import { describe, test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { startWorker } from './lib/harness.mjs';
import {
  es, connect, closeQuietly, streamName, makeEvents, jsonEvent, num, dataOf, rejectsWith,
  admin, NO_STREAM, ANY,
} from './lib/es.mjs';

const T = { timeout: 60000 };

describe('client reads', () => {
  let w;
  let conn;
  let s100; // a stream of exactly 100 events, data {i}
  let ids100;

  before(async () => {
    w = await startWorker({ memDb: true });
    conn = await connect(w);
    s100 = streamName('hundred');
    const evs = makeEvents(100);
    ids100 = evs.map((e) => e.eventId);
    await conn.appendToStream(s100, NO_STREAM, evs);
  });

  after(async () => {
    closeQuietly(conn);
    await w?.cleanup();
  });

  const numbers = (slice) => slice.events.map((e) => num(e.event.eventNumber));
  const range = (from, to) => {
    const out = [];
    for (let i = from; from <= to ? i <= to : i >= to; i += from <= to ? 1 : -1) out.push(i);
    return out;
  };

  test('readEvent: number, -1 = last, past the end = notFound, missing stream = noStream', T, async () => {
    const first = await conn.readEvent(s100, 0);
    assert.equal(first.status, 'success');
    assert.equal(num(first.eventNumber), 0);
    assert.equal(first.event.event.eventId, ids100[0]);
    assert.equal(dataOf(first.event.event).i, 0);

    const mid = await conn.readEvent(s100, 42);
    assert.equal(mid.status, 'success');
    assert.equal(num(mid.event.event.eventNumber), 42);
    assert.equal(mid.event.event.eventId, ids100[42]);

    const last = await conn.readEvent(s100, -1);
    assert.equal(last.status, 'success');
    assert.equal(num(last.event.event.eventNumber), 99);
    assert.equal(last.event.event.eventId, ids100[99]);

    const past = await conn.readEvent(s100, 100);
    assert.equal(past.status, 'notFound');
    assert.equal(past.event, null);

    const missing = await conn.readEvent(streamName('missing'), 0);
    assert.equal(missing.status, 'noStream');
    const missingLast = await conn.readEvent(streamName('missing'), -1);
    assert.equal(missingLast.status, 'noStream');
  });

  test('forward(0,100) on a 100-event stream → next 100, last 99, end of stream', T, async () => {
    const sl = await conn.readStreamEventsForward(s100, 0, 100);
    assert.equal(sl.status, 'success');
    assert.deepEqual(numbers(sl), range(0, 99));
    assert.deepEqual(sl.events.map((e) => e.event.eventId), ids100);
    assert.equal(num(sl.nextEventNumber), 100);
    assert.equal(num(sl.lastEventNumber), 99);
    assert.equal(sl.isEndOfStream, true);
  });

  test('forward from 50 count 20 → events 50..69, next 70, not end', T, async () => {
    const sl = await conn.readStreamEventsForward(s100, 50, 20);
    assert.deepEqual(numbers(sl), range(50, 69));
    assert.equal(num(sl.nextEventNumber), 70);
    assert.equal(num(sl.lastEventNumber), 99);
    assert.equal(sl.isEndOfStream, false);
  });

  test('forward pages of 30 walk the stream; past the end gives 0 events, next 100, end', T, async () => {
    const seen = [];
    let from = 0;
    const expectNext = [30, 60, 90, 100];
    for (let page = 0; page < 4; page++) {
      const sl = await conn.readStreamEventsForward(s100, from, 30);
      seen.push(...numbers(sl));
      assert.equal(num(sl.nextEventNumber), expectNext[page], `next of page ${page}`);
      assert.equal(sl.isEndOfStream, page === 3, `end of stream on page ${page}`);
      from = num(sl.nextEventNumber);
    }
    assert.deepEqual(seen, range(0, 99));
    const past = await conn.readStreamEventsForward(s100, 200, 10);
    assert.equal(past.status, 'success');
    assert.equal(past.events.length, 0);
    assert.equal(num(past.nextEventNumber), 100);
    assert.equal(num(past.lastEventNumber), 99);
    assert.equal(past.isEndOfStream, true);
  });

  test('backward(99,100) → events 99..0, next -1, last 99, end of stream', T, async () => {
    const sl = await conn.readStreamEventsBackward(s100, 99, 100);
    assert.equal(sl.status, 'success');
    assert.deepEqual(numbers(sl), range(99, 0));
    assert.equal(num(sl.nextEventNumber), -1);
    assert.equal(num(sl.lastEventNumber), 99);
    assert.equal(sl.isEndOfStream, true);
  });

  test('backward from the end (-1) in pages of 30 → 99..70 next 69 ... last page ends with next -1', T, async () => {
    const first = await conn.readStreamEventsBackward(s100, es.streamPosition.end, 30);
    assert.deepEqual(numbers(first), range(99, 70));
    assert.equal(num(first.nextEventNumber), 69);
    assert.equal(first.isEndOfStream, false);
    const seen = numbers(first);
    let from = 69;
    for (;;) {
      const sl = await conn.readStreamEventsBackward(s100, from, 30);
      seen.push(...numbers(sl));
      if (sl.isEndOfStream) {
        assert.equal(num(sl.nextEventNumber), -1);
        break;
      }
      assert.ok(seen.length < 100, 'backward paging must end after 100 events');
      from = num(sl.nextEventNumber);
    }
    assert.deepEqual(seen, range(99, 0));
  });

  test('backward(200,100) past the end → success with 0 events', T, async () => {
    const sl = await conn.readStreamEventsBackward(s100, 200, 100);
    assert.equal(sl.status, 'success');
    assert.equal(sl.events.length, 0);
    assert.equal(num(sl.lastEventNumber), 99);
  });

  test('reads of a missing stream → streamNotFound, no events, end of stream', T, async () => {
    const s = streamName('missing');
    for (const sl of [await conn.readStreamEventsForward(s, 0, 10),
      await conn.readStreamEventsBackward(s, -1, 10)]) {
      assert.equal(sl.status, 'streamNotFound');
      assert.equal(sl.events.length, 0);
      assert.equal(num(sl.lastEventNumber), -1);
      assert.equal(sl.isEndOfStream, true);
    }
  });

  test('$all forward as admin: positions > (0,0), strictly increasing, our events in order', T, async () => {
    const s = streamName('all-fwd');
    const evs = makeEvents(5);
    await conn.appendToStream(s, NO_STREAM, evs);
    const all = [];
    let pos = es.positions.start;
    for (;;) {
      const sl = await conn.readAllEventsForward(pos, 500, false, admin);
      all.push(...sl.events);
      if (sl.isEndOfStream) break;
      assert.ok(sl.nextPosition.compareTo(pos) > 0, 'nextPosition must advance');
      pos = sl.nextPosition;
      assert.ok(all.length < 100000, 'runaway $all read');
    }
    assert.ok(all.length >= 105, `$all holds only ${all.length} events`);
    assert.ok(all[0].originalPosition.compareTo(es.positions.start) > 0,
      `first $all position must be > (0,0), got ${all[0].originalPosition}`);
    for (let i = 1; i < all.length; i++) {
      assert.ok(all[i].originalPosition.compareTo(all[i - 1].originalPosition) > 0,
        `$all positions not increasing at ${i}: ${all[i - 1].originalPosition} then ${all[i].originalPosition}`);
    }
    const ours = all.filter((e) => e.event.eventStreamId === s);
    assert.deepEqual(ours.map((e) => e.event.eventId), evs.map((e) => e.eventId));
    const hundred = all.filter((e) => e.event.eventStreamId === s100);
    assert.deepEqual(hundred.map((e) => e.event.eventId), ids100);
  });

  test('$all backward from the end as admin: resolved head echoed, next < from, reverse order', T, async () => {
    const s = streamName('all-bwd');
    const evs = makeEvents(3);
    await conn.appendToStream(s, NO_STREAM, evs);
    const sl = await conn.readAllEventsBackward(es.positions.end, 10, false, admin);
    assert.ok(sl.events.length >= 3);
    assert.ok(sl.fromPosition.compareTo(es.positions.start) > 0,
      `reply must echo the resolved head position, got ${sl.fromPosition}`);
    assert.ok(sl.nextPosition.compareTo(sl.fromPosition) < 0,
      `backward from end: next ${sl.nextPosition} must be < from ${sl.fromPosition}`);
    // Our three events are among the newest ones, newest first.
    assert.deepEqual(sl.events.filter((e) => e.event.eventStreamId === s).map((e) => e.event.eventId),
      evs.map((e) => e.eventId).reverse());
    for (let i = 1; i < sl.events.length; i++) {
      assert.ok(sl.events[i].originalPosition.compareTo(sl.events[i - 1].originalPosition) < 0,
        'backward $all read must return decreasing positions');
    }
    // Reading forward from the head gives nothing; reading backward from there gives the same page.
    const fwdEnd = await conn.readAllEventsForward(es.positions.end, 10, false, admin);
    assert.equal(fwdEnd.events.length, 0);
    assert.ok(fwdEnd.nextPosition.compareTo(es.positions.start) > 0,
      `forward from end must echo the head position, got ${fwdEnd.nextPosition}`);
    // Paging backward continues below the page without overlap.
    const next = await conn.readAllEventsBackward(sl.nextPosition, 10, false, admin);
    if (next.events.length > 0) {
      assert.ok(next.events[0].originalPosition.compareTo(sl.events[sl.events.length - 1].originalPosition) < 0,
        'second backward page must start below the first page');
    }
  });

  test('anonymous read of $all → AccessDeniedError (forward and backward)', T, async () => {
    await rejectsWith(conn.readAllEventsForward(es.positions.start, 10), { name: 'AccessDeniedError' });
    await rejectsWith(conn.readAllEventsBackward(es.positions.end, 10), { name: 'AccessDeniedError' });
  });

  test('links: `$>` "0@stream" resolved with resolveLinkTos, raw without', T, async () => {
    const target = streamName('target');
    const linker = streamName('linker');
    const tev = jsonEvent({ target: true }, 'Target');
    await conn.appendToStream(target, NO_STREAM, [tev, jsonEvent({ second: true }, 'Target')]);
    const link = es.createEventData(randomUUID(), '$>', false, Buffer.from(`0@${target}`));
    await conn.appendToStream(linker, ANY, link);

    const resolved = await conn.readStreamEventsForward(linker, 0, 10, true);
    assert.equal(resolved.events.length, 1);
    const r = resolved.events[0];
    assert.ok(r.event, 'resolved read must carry the target event');
    assert.ok(r.link, 'resolved read must carry the link record');
    assert.equal(r.event.eventId, tev.eventId);
    assert.equal(r.event.eventStreamId, target);
    assert.equal(num(r.event.eventNumber), 0);
    assert.equal(r.event.eventType, 'Target');
    assert.equal(r.link.eventId, link.eventId);
    assert.equal(r.link.eventStreamId, linker);
    assert.equal(r.link.eventType, '$>');
    assert.equal(r.isResolved, true);
    assert.equal(r.originalStreamId, linker);
    assert.equal(num(r.originalEventNumber), 0);

    const raw = await conn.readStreamEventsForward(linker, 0, 10, false);
    assert.equal(raw.events[0].event.eventType, '$>');
    assert.equal(raw.events[0].event.data.toString(), `0@${target}`);
    assert.equal(raw.events[0].link, null);

    const one = await conn.readEvent(linker, 0, true);
    assert.equal(one.status, 'success');
    assert.equal(one.event.event.eventId, tev.eventId);
    assert.equal(one.event.link.eventId, link.eventId);
  });
});
