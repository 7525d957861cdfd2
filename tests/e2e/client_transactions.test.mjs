// Goal: prove that explicit transactions work as on EventStore for the unmodified
// node-eventstore-client 23.10.1: start/write/commit makes the events visible in write order only
// at commit, a write whose promise is not awaited before commit is still included (a connection's
// packages are processed in arrival order), a wrong expected version fails at commit and not at
// start, and an unknown transaction id is an error.
import { describe, test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import {
  es, streamName, makeEvents, jsonEvent, num, dataOf, rejectsWith, admin,
  ANY, NO_STREAM, Long,
  openWorkerConnection, closeWorkerConnection,
} from './lib/es.mjs';

const T = { timeout: 60000 };

describe('client transactions', () => {
  let w;
  let conn;
  before(async () => ({ w, conn } = await openWorkerConnection()));
  after(() => closeWorkerConnection(w, conn));

  test('start, write twice, commit → events readable in order, invisible before commit', T, async () => {
    const s = streamName('tx');
    const tx = await conn.startTransaction(s, NO_STREAM);
    assert.ok(Long.isLong(tx.transactionId) || typeof tx.transactionId === 'number');
    assert.ok(Long.fromValue(tx.transactionId).gte(0), `transaction id ${tx.transactionId} must be >= 0`);
    const a = makeEvents(2, 'A');
    const b = makeEvents(3, 'B');
    await tx.write(a);
    await tx.write(b);
    // Nothing is visible before the commit.
    assert.equal((await conn.readStreamEventsForward(s, 0, 10)).status, 'streamNotFound');
    const r = await tx.commit();
    assert.equal(num(r.nextExpectedVersion), 4);
    const sl = await conn.readStreamEventsForward(s, 0, 10);
    assert.deepEqual(sl.events.map((e) => e.event.eventId), [...a, ...b].map((e) => e.eventId));
    assert.deepEqual(sl.events.map((e) => num(e.event.eventNumber)), [0, 1, 2, 3, 4]);

    // The events are in $all, in order, with positions that differ (shared commit position).
    const all = await conn.readAllEventsBackward(es.positions.end, 50, false, admin);
    const ours = all.events.filter((e) => e.event.eventStreamId === s).reverse();
    assert.deepEqual(ours.map((e) => e.event.eventId), [...a, ...b].map((e) => e.eventId));
    for (let i = 1; i < ours.length; i++) {
      assert.ok(ours[i].originalPosition.compareTo(ours[i - 1].originalPosition) > 0,
        'transaction events must have increasing, distinct $all positions');
    }
  });

  test('a write not awaited before commit is still included, in order', T, async () => {
    const s = streamName('tx-unawaited');
    await conn.appendToStream(s, NO_STREAM, jsonEvent({ pre: true })); // version 0
    const tx = await conn.startTransaction(s, 0);
    const first = makeEvents(2, 'First');
    const second = makeEvents(2, 'Second');
    await tx.write(first);
    const pending = tx.write(second); // deliberately not awaited before commit
    const r = await tx.commit();
    await pending;
    assert.equal(num(r.nextExpectedVersion), 4);
    const sl = await conn.readStreamEventsForward(s, 0, 10);
    assert.deepEqual(sl.events.map((e) => e.event.eventType), ['TestEvent', 'First', 'First', 'Second', 'Second']);
    assert.deepEqual(sl.events.slice(1).map((e) => e.event.eventId), [...first, ...second].map((e) => e.eventId));
  });

  test('wrong expected version fails at commit, not at start; nothing is written', T, async () => {
    const s = streamName('tx-wev');
    await conn.appendToStream(s, NO_STREAM, makeEvents(2)); // version 1
    const tx = await conn.startTransaction(s, 7); // starting must succeed
    await tx.write(makeEvents(2, 'Never'));
    await rejectsWith(tx.commit(), { name: 'WrongExpectedVersionError' });
    const sl = await conn.readStreamEventsForward(s, 0, 10);
    assert.deepEqual(sl.events.map((e) => dataOf(e.event).i), [0, 1]);

    const s2 = streamName('tx-wev-nostream');
    await conn.appendToStream(s2, NO_STREAM, makeEvents(1));
    const tx2 = await conn.startTransaction(s2, NO_STREAM);
    await tx2.write(jsonEvent({ never: true }));
    await rejectsWith(tx2.commit(), { name: 'WrongExpectedVersionError' });
    assert.equal((await conn.readStreamEventsForward(s2, 0, 10)).events.length, 1);
  });

  test('two interleaved transactions (Any) on one connection stay separate', T, async () => {
    const s1 = streamName('tx-a');
    const s2 = streamName('tx-b');
    const t1 = await conn.startTransaction(s1, ANY);
    const t2 = await conn.startTransaction(s2, ANY);
    assert.ok(!Long.fromValue(t1.transactionId).eq(Long.fromValue(t2.transactionId)),
      'distinct transactions need distinct ids');
    const e1 = makeEvents(2, 'One');
    const e2 = makeEvents(2, 'Two');
    await t1.write(e1[0]);
    await t2.write(e2[0]);
    await t1.write(e1[1]);
    await t2.write(e2[1]);
    await t2.commit();
    await t1.commit();
    const r1 = await conn.readStreamEventsForward(s1, 0, 10);
    const r2 = await conn.readStreamEventsForward(s2, 0, 10);
    assert.deepEqual(r1.events.map((e) => e.event.eventId), e1.map((e) => e.eventId));
    assert.deepEqual(r2.events.map((e) => e.event.eventId), e2.map((e) => e.eventId));
  });

  test('unknown transaction id → write and commit fail', T, async () => {
    const tx = conn.continueTransaction(987654321);
    // ES answers InvalidTransaction; the client maps it to an error (write: "Unexpected
    // OperationResult"; commit: "Invalid transaction").
    await rejectsWith(tx.commit(), { message: /Invalid transaction/ });
    const tx2 = conn.continueTransaction(987654322);
    await rejectsWith(tx2.write(jsonEvent({})), { message: /Unexpected OperationResult: 6/ });
  });
});
