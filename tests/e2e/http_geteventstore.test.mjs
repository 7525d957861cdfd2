// Goal: prove that the unmodified geteventstore-promise 4.0.1 HTTP client works against a real
// worker's external HTTP port: writing one and several events, an expected-version chain and a
// wrong version refused (400), forward and backward reads (counts past the end, `head`),
// getAllStreamEvents paging through 1,000 events until headOfStream, embed=rich without data,
// checkStreamExists, soft and hard deletes with 404 and 410 afterwards, and ping.
import { describe, test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import EventStore from 'geteventstore-promise';
import { startWorker, waitFor, canConnect } from './lib/harness.mjs';

const T = { timeout: 60000 };
const { HTTPClient, EventFactory } = EventStore;
const factory = new EventFactory();

function stream(prefix) {
  return `${prefix}-${randomUUID().slice(0, 8)}`;
}

async function rejectsWithStatus(promise, status) {
  await assert.rejects(promise, (err) => {
    assert.equal(err.response?.status, status, `expected HTTP ${status}, got ${err.message}`);
    return true;
  });
}

describe('geteventstore-promise HTTP client', () => {
  let w;
  let client;

  before(async () => {
    w = await startWorker({ memDb: true });
    await waitFor(() => canConnect(w.httpPort), { what: `HTTP port ${w.httpPort}` });
    client = new HTTPClient({
      hostname: '127.0.0.1', port: w.httpPort,
      credentials: { username: 'admin', password: 'changeit' },
    });
  });

  after(async () => {
    await w?.cleanup();
  });

  test('ping', T, async () => {
    const reply = await client.ping();
    assert.equal(reply.text, 'Ping request successfully handled');
  });

  test('write one event and read it back', T, async () => {
    const s = stream('one');
    await client.writeEvent(s, 'Thing', { a: 1 }, { m: 'x' });
    const events = await client.getEvents(s, 0, 10, 'forward');
    assert.equal(events.length, 1);
    assert.equal(events[0].eventType, 'Thing');
    assert.deepEqual(events[0].data, { a: 1 });
    assert.equal(events[0].eventNumber, 0);
    assert.equal(events[0].streamId, s);
    assert.ok(events[0].created, 'created is copied from updated');
    assert.ok(!Number.isNaN(Date.parse(events[0].created)));
  });

  test('write several events in one request', T, async () => {
    const s = stream('many');
    const evs = [0, 1, 2].map((i) => factory.newEvent('Many', { i }));
    await client.writeEvents(s, evs);
    const events = await client.getEvents(s, 0, 10, 'forward');
    assert.deepEqual(events.map((e) => e.data.i), [0, 1, 2]);
    assert.deepEqual(events.map((e) => e.eventId), evs.map((e) => e.eventId));
  });

  test('expected-version chain, then a wrong version is refused with 400', T, async () => {
    const s = stream('chain');
    await client.writeEvent(s, 'E', { n: 0 }, null, { expectedVersion: -1 });
    await client.writeEvent(s, 'E', { n: 1 }, null, { expectedVersion: 0 });
    await client.writeEvents(s, [factory.newEvent('E', { n: 2 })], { expectedVersion: 1 });
    await rejectsWithStatus(client.writeEvent(s, 'E', { n: 9 }, null, { expectedVersion: 0 }),
      400);
    await rejectsWithStatus(client.writeEvent(s, 'E', { n: 9 }, null, { expectedVersion: -1 }),
      400);
    const events = await client.getEvents(s, 0, 100, 'forward');
    assert.deepEqual(events.map((e) => e.data.n), [0, 1, 2]);
  });

  test('reads forward and backward, past the end and from head', T, async () => {
    const s = stream('reads');
    await client.writeEvents(s, Array.from({ length: 10 }, (_, i) => factory.newEvent('R', { i })));
    const fwd = await client.readEventsForward(s, 0, 4);
    assert.deepEqual(fwd.events.map((e) => e.data.i), [0, 1, 2, 3]);
    assert.equal(fwd.isEndOfStream, false);
    const pastEnd = await client.readEventsForward(s, 7, 100);
    assert.deepEqual(pastEnd.events.map((e) => e.data.i), [7, 8, 9]);
    assert.equal(pastEnd.isEndOfStream, true);
    const beyond = await client.readEventsForward(s, 50, 10);
    assert.deepEqual(beyond.events, []);
    const head = await client.readEventsBackward(s, undefined, 3);
    assert.deepEqual(head.events.map((e) => e.data.i), [9, 8, 7]);
    assert.equal(head.isEndOfStream, true, 'a read from head is the head of the stream');
    const back = await client.readEventsBackward(s, 5, 100);
    assert.deepEqual(back.events.map((e) => e.data.i), [5, 4, 3, 2, 1, 0]);
    // As EventStore: a backward page that lies wholly past the end is empty, one that overlaps
    // the end holds the events it covers.
    const backFromPastEnd = await client.getEvents(s, 100, 3, 'backward');
    assert.deepEqual(backFromPastEnd, []);
    const backOverlapping = await client.getEvents(s, 11, 4, 'backward');
    assert.deepEqual(backOverlapping.map((e) => e.data.i), [9, 8]);
  });

  test('getAllStreamEvents pages through 1,000 events until headOfStream', T, async () => {
    const s = stream('thousand');
    for (let start = 0; start < 1000; start += 250) {
      const batch = Array.from({ length: 250 }, (_, k) => factory.newEvent('K', { i: start + k }));
      await client.writeEvents(s, batch);
    }
    const all = await client.getAllStreamEvents(s, 100);
    assert.equal(all.length, 1000);
    all.forEach((e, i) => assert.equal(e.data.i, i));
    const oneChunk = await client.getAllStreamEvents(s);
    assert.equal(oneChunk.length, 1000);
  });

  test('embed=rich gives entries without data', T, async () => {
    const s = stream('rich');
    await client.writeEvent(s, 'Rich', { secret: 1 });
    const events = await client.getEvents(s, 0, 10, 'forward', true, 'rich');
    assert.equal(events.length, 1);
    assert.equal(events[0].data, undefined);
    assert.equal(events[0].eventType, 'Rich');
    assert.equal(events[0].eventNumber, 0);
  });

  test('checkStreamExists', T, async () => {
    const s = stream('exists');
    assert.equal(await client.checkStreamExists(s), false);
    await client.writeEvent(s, 'E', { a: 1 });
    assert.equal(await client.checkStreamExists(s), true);
  });

  test('soft delete gives 404 afterwards', T, async () => {
    const s = stream('soft');
    await client.writeEvent(s, 'E', { a: 1 });
    await client.deleteStream(s);
    assert.equal(await client.checkStreamExists(s), false);
    await rejectsWithStatus(client.readEventsForward(s, 0, 10), 404);
  });

  test('hard delete gives 410 afterwards', T, async () => {
    const s = stream('hard');
    await client.writeEvent(s, 'E', { a: 1 });
    await client.deleteStream(s, true);
    await rejectsWithStatus(client.readEventsForward(s, 0, 10), 410);
    await assert.rejects(client.checkStreamExists(s), /410/);
    await rejectsWithStatus(client.writeEvent(s, 'E', { a: 2 }), 410);
  });
});
