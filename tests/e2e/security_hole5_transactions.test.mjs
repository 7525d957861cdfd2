// Goal: regression test for security hole 5 ("transactions belong to nobody"), with the
// unmodified node-eventstore-client: another user cannot write into or commit a user's
// transaction, neither can an anonymous client, from their own connections; the stream's ACL is
// checked again at commit; an idle transaction expires after --transaction-timeout-ms and is then
// refused; and after a failover a client's transaction id names nothing on the new leader, whose
// ids carry its own epoch. Each time the owner's events, and only those, are committed and the
// node keeps serving.
import { describe, test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { startWorker } from './lib/harness.mjs';
import { Cluster, waitFor } from './lib/cluster.mjs';
import {
  es, Long, connect, closeQuietly, streamName, makeEvents, jsonEvent, rejectsWith, admin, num,
  ANY, NO_STREAM,
} from './lib/es.mjs';

const T = { timeout: 60000 };
const TRANSACTION_TIMEOUT_MS = 1500;
const ADMIN = 'Basic ' + Buffer.from('admin:changeit').toString('base64');

async function createUser(node, login, password) {
  const res = await fetch(`http://${node.host}:${node.httpPort}/users`, {
    method: 'POST',
    headers: { Authorization: ADMIN, 'Content-Type': 'application/json' },
    body: JSON.stringify({ loginName: login, fullName: login, groups: [], password }),
    signal: AbortSignal.timeout(15000),
  });
  assert.equal(res.status, 201, await res.text());
  return new es.UserCredentials(login, password);
}

async function eventIds(conn, stream) {
  const slice = await conn.readStreamEventsForward(stream, 0, 100, false, admin);
  return slice.events.map((e) => e.event.eventId);
}

describe('security hole 5: transactions belong to their owner', () => {
  let w;
  let alice;
  let bob;
  let aliceConn;
  let bobConn;
  let anonConn;
  let otherAnonConn;
  let adminConn;

  before(async () => {
    w = await startWorker({ memDb: true,
      extraArgs: [`--transaction-timeout-ms=${TRANSACTION_TIMEOUT_MS}`] });
    const suffix = randomUUID().slice(0, 8);
    alice = await createUser(w, `alice-${suffix}`, 'alice-pw');
    bob = await createUser(w, `bob-${suffix}`, 'bob-pw');
    aliceConn = await connect(w, { defaultUserCredentials: alice });
    bobConn = await connect(w, { defaultUserCredentials: bob });
    anonConn = await connect(w);
    otherAnonConn = await connect(w);
    adminConn = await connect(w, { defaultUserCredentials: admin });
  });

  after(async () => {
    for (const c of [aliceConn, bobConn, anonConn, otherAnonConn, adminConn]) closeQuietly(c);
    await w?.cleanup();
  });

  test('another user and anonymous can neither write into nor commit it', T, async () => {
    const s = streamName('hole5');
    const tx = await aliceConn.startTransaction(s, NO_STREAM);
    const mine = makeEvents(2, 'Alice');
    await tx.write(mine[0]);
    for (const [who, conn] of [['bob', bobConn], ['anonymous', anonConn]]) {
      const stolen = conn.continueTransaction(tx.transactionId);
      await rejectsWith(stolen.write(jsonEvent({ injectedBy: who })), { name: 'AccessDeniedError' });
      await rejectsWith(stolen.commit(), { name: 'AccessDeniedError' });
    }
    // Bob naming his own credentials on the operation is refused the same way.
    const withCredentials = anonConn.continueTransaction(tx.transactionId, bob);
    await rejectsWith(withCredentials.commit(), { name: 'AccessDeniedError' });
    assert.equal((await adminConn.readStreamEventsForward(s, 0, 10)).status, 'streamNotFound',
      'nothing may be committed by a stranger');
    await tx.write(mine[1]);
    const r = await tx.commit();
    assert.equal(num(r.nextExpectedVersion), 1);
    assert.deepEqual(await eventIds(adminConn, s), mine.map((e) => e.eventId));
  });

  test('credentials given to startTransaction on an anonymous connection still work, and only '
    + 'on that connection', T, async () => {
    // node-eventstore-client sends tx.write without the credentials given at the start.
    const s = streamName('hole5-percall');
    const tx = await anonConn.startTransaction(s, NO_STREAM, alice);
    const events = makeEvents(2, 'PerCall');
    await tx.write(events);
    const elsewhere = otherAnonConn.continueTransaction(tx.transactionId);
    await rejectsWith(elsewhere.write(jsonEvent({ injected: true })), { name: 'AccessDeniedError' });
    await tx.commit();
    assert.deepEqual(await eventIds(adminConn, s), events.map((e) => e.eventId));
  });

  test('the stream ACL is checked again at commit', T, async () => {
    const s = streamName('hole5-acl');
    const tx = await aliceConn.startTransaction(s, ANY);
    await tx.write(makeEvents(1, 'Alice'));
    await adminConn.setStreamMetadataRaw(s, ANY, { $acl: { $w: bob.username } });
    await rejectsWith(tx.commit(), { name: 'AccessDeniedError' });
    assert.equal((await adminConn.readStreamEventsForward(s, 0, 10)).status, 'streamNotFound');
  });

  test('an idle transaction expires and is then refused; the node keeps serving', T, async () => {
    const s = streamName('hole5-expiry');
    const tx = await aliceConn.startTransaction(s, ANY);
    await tx.write(makeEvents(1, 'Late'));
    // Nothing to poll: any use of the transaction would keep it alive. Wait past the timeout.
    await new Promise((resolve) => setTimeout(resolve, TRANSACTION_TIMEOUT_MS + 500));
    await rejectsWith(tx.commit(), { message: /Invalid transaction/ });
    assert.equal((await adminConn.readStreamEventsForward(s, 0, 10)).status, 'streamNotFound');
    const fresh = await aliceConn.startTransaction(s, ANY);
    const events = makeEvents(1, 'OnTime');
    await fresh.write(events);
    await fresh.commit();
    assert.deepEqual(await eventIds(adminConn, s), events.map((e) => e.eventId));
  });
});

describe('security hole 5: transaction ids after a failover', () => {
  const cluster = new Cluster({ memDb: true });

  after(async () => {
    await cluster.cleanup();
  });

  test('a client\'s id from the deposed leader names nothing on the new one', { timeout: 90000 },
    async () => {
      await cluster.start();
      const { leader, epoch } = await cluster.waitForLeader({ timeoutMs: 15000 });
      const alice = await createUser(leader, `alice-${randomUUID().slice(0, 8)}`, 'alice-pw');
      const conn = await cluster.connect({ settings: { defaultUserCredentials: alice,
        maxReconnections: 50, maxDiscoverAttempts: 20, maxRetries: 10, operationTimeout: 5000 } });
      const s = streamName('hole5-failover');
      const old = await conn.startTransaction(s, ANY);
      await old.write(makeEvents(1, 'Lost'));
      const oldId = Long.fromValue(old.transactionId);
      assert.equal(oldId.high, epoch, 'an id carries the epoch of the leader that gave it');

      await cluster.kill(leader);
      const next = await cluster.waitForLeader({ timeoutMs: 15000,
        what: 'a new leader after killing the old one' });
      assert.ok(next.epoch > epoch);
      // The client finds the new leader itself (gossip seeds); its first transaction there:
      const fresh = await waitFor(async () => {
        try { return await conn.startTransaction(s, ANY); } catch { return false; }
      }, { timeoutMs: 15000, what: 'a transaction started on the new leader' });
      const freshId = Long.fromValue(fresh.transactionId);
      assert.ok(!freshId.eq(oldId), `ids must differ across leaders (${freshId} and ${oldId})`);
      assert.equal(freshId.high, next.epoch);
      const events = makeEvents(2, 'Kept');
      await fresh.write(events);
      // The stale id hits nothing: not the fresh transaction, not anyone else's.
      await rejectsWith(old.write(jsonEvent({ stale: true })), { message: /OperationResult: 6/ });
      await rejectsWith(old.commit(), { message: /Invalid transaction/ });
      await fresh.commit();
      const slice = await conn.readStreamEventsForward(s, 0, 10);
      assert.deepEqual(slice.events.map((e) => e.event.eventId), events.map((e) => e.eventId));
    });
});
