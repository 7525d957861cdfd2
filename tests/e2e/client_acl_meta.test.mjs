// Goal: prove that stream metadata and security behave as on EventStore for the unmodified
// node-eventstore-client 23.10.1: metadata set/get through `$$stream` with custom keys kept and
// `$maxCount` / `$tb` honoured by reads; `$acl` `$w`/`$r`/`$d` denying anonymous users while admin
// (per-operation or connection default credentials) is allowed; wrong credentials failing with
// "Authentication error"; the built-in ops user; and `$settings` `$userStreamAcl` changing the
// defaults of streams without their own ACL.
import { describe, test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { startWorker, waitFor } from './lib/harness.mjs';
import {
  es, connect, closeQuietly, streamName, makeEvents, jsonEvent, num, dataOf, rejectsWith,
  admin, ops, ANY, NO_STREAM,
} from './lib/es.mjs';

const T = { timeout: 60000 };
const numbers = (slice) => slice.events.map((e) => num(e.event.eventNumber));

describe('client metadata and ACLs', () => {
  let w;
  let conn; // anonymous
  let adminConn; // admin as connection default credentials

  before(async () => {
    w = await startWorker({ memDb: true });
    conn = await connect(w);
    adminConn = await connect(w, { defaultUserCredentials: admin });
    assert.deepEqual(adminConn.authFailures, [], 'admin/changeit must authenticate');
  });

  after(async () => {
    closeQuietly(conn);
    closeQuietly(adminConn);
    await w?.cleanup();
  });

  test('metadata set/get: missing → version -1, custom keys kept, versions chain', T, async () => {
    const s = streamName('meta');
    const none = await conn.getStreamMetadataRaw(s);
    assert.equal(none.isStreamDeleted, false);
    assert.equal(num(none.metastreamVersion), -1);
    assert.equal(none.streamMetadata, null);

    const meta = { $maxCount: 50, custom: { nested: [1, 2, 3] }, owner: 'team-a' };
    const r = await conn.setStreamMetadataRaw(s, NO_STREAM, meta);
    assert.equal(num(r.nextExpectedVersion), 0);
    let got = await conn.getStreamMetadataRaw(s);
    assert.equal(got.isStreamDeleted, false);
    assert.equal(num(got.metastreamVersion), 0);
    assert.deepEqual(got.streamMetadata, meta);

    const meta2 = { owner: 'team-b', $cacheControl: 10 };
    await conn.setStreamMetadataRaw(s, 0, meta2);
    got = await conn.getStreamMetadataRaw(s);
    assert.equal(num(got.metastreamVersion), 1);
    assert.deepEqual(got.streamMetadata, meta2, 'only the newest metadata counts');

    await rejectsWith(conn.setStreamMetadataRaw(s, 0, { x: 1 }), { name: 'WrongExpectedVersionError' });

    // The metastream behaves as if $maxCount = 1: only the latest metadata event is visible.
    const metaRead = await conn.readStreamEventsForward(`$$${s}`, 0, 10);
    assert.equal(metaRead.status, 'success');
    assert.deepEqual(numbers(metaRead), [1]);
    assert.equal(metaRead.events[0].event.eventType, '$metadata');
    assert.deepEqual(dataOf(metaRead.events[0].event), meta2);
  });

  test('$maxCount is honoured by stream reads and readEvent', T, async () => {
    const s = streamName('maxcount');
    await conn.appendToStream(s, NO_STREAM, makeEvents(10));
    await conn.setStreamMetadataRaw(s, ANY, { $maxCount: 3 });
    const fwd = await conn.readStreamEventsForward(s, 0, 100);
    assert.deepEqual(numbers(fwd), [7, 8, 9]);
    assert.equal(num(fwd.lastEventNumber), 9);
    assert.equal(fwd.isEndOfStream, true);
    const bwd = await conn.readStreamEventsBackward(s, -1, 100);
    assert.deepEqual(numbers(bwd), [9, 8, 7]);
    assert.equal(bwd.isEndOfStream, true);
    assert.equal((await conn.readEvent(s, 0)).status, 'notFound');
    assert.equal((await conn.readEvent(s, 7)).status, 'success');
    // New events keep the window at 3.
    await conn.appendToStream(s, 9, makeEvents(2));
    assert.deepEqual(numbers(await conn.readStreamEventsForward(s, 0, 100)), [9, 10, 11]);
  });

  test('$tb (truncate before) is honoured by stream reads and readEvent', T, async () => {
    const s = streamName('tb');
    await conn.appendToStream(s, NO_STREAM, makeEvents(10));
    await conn.setStreamMetadataRaw(s, ANY, { $tb: 4, keep: 'me' });
    const fwd = await conn.readStreamEventsForward(s, 0, 100);
    assert.deepEqual(numbers(fwd), [4, 5, 6, 7, 8, 9]);
    const bwd = await conn.readStreamEventsBackward(s, 9, 100);
    assert.deepEqual(numbers(bwd), [9, 8, 7, 6, 5, 4]);
    assert.equal(bwd.isEndOfStream, true);
    assert.equal((await conn.readEvent(s, 3)).status, 'notFound');
    assert.equal((await conn.readEvent(s, 4)).status, 'success');
    assert.deepEqual((await conn.getStreamMetadataRaw(s)).streamMetadata, { $tb: 4, keep: 'me' });
  });

  test('$acl $w: anonymous append denied, admin (per-op and connection default) allowed', T, async () => {
    const s = streamName('acl-w');
    await conn.appendToStream(s, NO_STREAM, jsonEvent({ before: true }));
    await conn.setStreamMetadataRaw(s, ANY, { $acl: { $w: '$admins' } }, admin);
    await rejectsWith(conn.appendToStream(s, ANY, jsonEvent({})), { name: 'AccessDeniedError' });
    await conn.appendToStream(s, ANY, jsonEvent({ perOp: true }), admin);
    await adminConn.appendToStream(s, ANY, jsonEvent({ connDefault: true }));
    // Reads stay open to everyone.
    const sl = await conn.readStreamEventsForward(s, 0, 10);
    assert.deepEqual(numbers(sl), [0, 1, 2]);
  });

  test('$acl $r: anonymous reads denied, admin allowed', T, async () => {
    const s = streamName('acl-r');
    await conn.appendToStream(s, NO_STREAM, makeEvents(2));
    await conn.setStreamMetadataRaw(s, ANY, { $acl: { $r: '$admins' } }, admin);
    await rejectsWith(conn.readStreamEventsForward(s, 0, 10), { name: 'AccessDeniedError' });
    await rejectsWith(conn.readStreamEventsBackward(s, -1, 10), { name: 'AccessDeniedError' });
    await rejectsWith(conn.readEvent(s, 0), { name: 'AccessDeniedError' });
    assert.deepEqual(numbers(await conn.readStreamEventsForward(s, 0, 10, false, admin)), [0, 1]);
    assert.deepEqual(numbers(await adminConn.readStreamEventsForward(s, 0, 10)), [0, 1]);
    assert.equal((await adminConn.readEvent(s, -1)).status, 'success');
    // Writes stay open to everyone.
    await conn.appendToStream(s, 1, jsonEvent({ anon: true }));
  });

  test('$acl $d: anonymous delete denied, admin allowed', T, async () => {
    const s = streamName('acl-d');
    await conn.appendToStream(s, NO_STREAM, makeEvents(1));
    await conn.setStreamMetadataRaw(s, ANY, { $acl: { $d: '$admins' } }, admin);
    await rejectsWith(conn.deleteStream(s, ANY, false), { name: 'AccessDeniedError' });
    await rejectsWith(conn.deleteStream(s, ANY, true), { name: 'AccessDeniedError' });
    assert.equal((await conn.readStreamEventsForward(s, 0, 10)).status, 'success');
    await conn.deleteStream(s, ANY, true, admin);
    assert.equal((await conn.readStreamEventsForward(s, 0, 10)).status, 'streamDeleted');
  });

  test('$acl with a user role: ops allowed, anonymous denied; ops is not an admin', T, async () => {
    const s = streamName('acl-ops');
    await conn.appendToStream(s, NO_STREAM, makeEvents(1));
    await conn.setStreamMetadataRaw(s, ANY, { $acl: { $r: ['$ops'] } }, admin);
    await rejectsWith(conn.readEvent(s, 0), { name: 'AccessDeniedError' });
    assert.equal((await conn.readEvent(s, 0, false, ops)).status, 'success');
    // ops/changeit authenticates (else "Authentication error") but $all needs $admins.
    await rejectsWith(conn.readAllEventsForward(es.positions.start, 10, false, ops),
      { name: 'AccessDeniedError' });
  });

  test('wrong credentials → "Authentication error" (per operation and as connection default)', T, async () => {
    const s = streamName('badauth');
    await conn.appendToStream(s, NO_STREAM, makeEvents(1));
    const wrong = new es.UserCredentials('admin', 'wrong-password');
    const unknown = new es.UserCredentials('nobody-here', 'changeit');
    await rejectsWith(conn.appendToStream(s, ANY, jsonEvent({}), wrong), { message: /Authentication error/ });
    await rejectsWith(conn.readEvent(s, 0, false, wrong), { message: /Authentication error/ });
    await rejectsWith(conn.readStreamEventsForward(s, 0, 10, false, unknown),
      { message: /Authentication error/ });
    await rejectsWith(conn.readEvent(s, 0, false, new es.UserCredentials('ops', 'nope')),
      { message: /Authentication error/ });
    // The failed operations did not write anything.
    assert.deepEqual(numbers(await conn.readStreamEventsForward(s, 0, 10)), [0]);

    const bad = await connect(w, { defaultUserCredentials: wrong });
    try {
      assert.ok(bad.authFailures.length >= 1, 'client must report authenticationFailed');
      await rejectsWith(bad.readEvent(s, 0), { message: /Authentication error/ });
      // Per-operation credentials still override the bad default.
      assert.equal((await bad.readEvent(s, 0, false, admin)).status, 'success');
    } finally {
      closeQuietly(bad);
    }
  });

  test('$settings $userStreamAcl changes the defaults of new streams (then restored)', T, async () => {
    const s = streamName('settings');
    const restricted = {
      $userStreamAcl: { $r: '$admins', $w: '$admins', $d: '$admins', $mr: '$admins', $mw: '$admins' },
      $systemStreamAcl: { $r: '$admins', $w: '$admins', $d: '$admins', $mr: '$admins', $mw: '$admins' },
    };
    // Anonymous users may not write $settings (a system stream).
    await rejectsWith(conn.appendToStream('$settings', ANY, jsonEvent(restricted, '$settings')),
      { name: 'AccessDeniedError' });
    await conn.appendToStream('$settings', ANY, jsonEvent(restricted, '$settings'), admin);
    try {
      await rejectsWith(conn.appendToStream(s, ANY, jsonEvent({})), { name: 'AccessDeniedError' });
      await conn.appendToStream(s, ANY, jsonEvent({ admin: true }), admin);
      await rejectsWith(conn.readStreamEventsForward(s, 0, 10), { name: 'AccessDeniedError' });
      assert.deepEqual(numbers(await adminConn.readStreamEventsForward(s, 0, 10)), [0]);
      // A stream's own $acl still wins over the system default.
      const open = streamName('settings-own');
      await conn.setStreamMetadataRaw(open, NO_STREAM,
        { $acl: { $r: '$all', $w: '$all', $d: '$all', $mr: '$all', $mw: '$all' } }, admin);
      await conn.appendToStream(open, ANY, jsonEvent({ anon: true }));
    } finally {
      await conn.appendToStream('$settings', ANY, jsonEvent({}, '$settings'), admin);
    }
    await conn.appendToStream(s, ANY, jsonEvent({ anonAgain: true }));
    assert.deepEqual(numbers(await conn.readStreamEventsForward(s, 0, 10)), [0, 1]);
  });

  test('$maxAge hides events older than the age once it has passed', T, async () => {
    const s = streamName('maxage');
    await conn.appendToStream(s, NO_STREAM, makeEvents(3));
    await conn.setStreamMetadataRaw(s, ANY, { $maxAge: 1 });
    assert.equal((await conn.readStreamEventsForward(s, 0, 10)).events.length, 3,
      'events younger than $maxAge stay visible');
    await waitFor(async () => (await conn.readStreamEventsForward(s, 0, 10)).events.length === 0,
      { timeoutMs: 5000, intervalMs: 100, what: 'events older than $maxAge 1 s to disappear' });
    assert.equal((await conn.readEvent(s, 0)).status, 'notFound');
  });

  test('writes and deletes of $all are refused even for admin; transactions need write access', T, async () => {
    await rejectsWith(conn.appendToStream('$all', ANY, jsonEvent({}), admin), { name: 'AccessDeniedError' });
    await rejectsWith(conn.deleteStream('$all', ANY, false, admin), { name: 'AccessDeniedError' });
    const s = streamName('tx-acl');
    await conn.setStreamMetadataRaw(s, NO_STREAM, { $acl: { $w: '$admins' } }, admin);
    await rejectsWith(conn.startTransaction(s, ANY), { name: 'AccessDeniedError' });
    const tx = await conn.startTransaction(s, ANY, admin);
    await tx.write(jsonEvent({ inTx: true }));
    await tx.commit();
    assert.equal((await conn.readStreamEventsForward(s, 0, 10)).events.length, 1);
  });
});
