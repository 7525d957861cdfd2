// Goal: regression test for security hole 2 ("links bypass ACLs"): a `$>` link written by an
// anonymous user to a stream it may write, pointing at a stream it may not read (the admin's
// user record, or a `$r`-restricted stream), must not reveal the target through link resolution
// — not over TCP reads, not over HTTP feeds (which resolve links by default), not to a live
// subscription. The unreadable target resolves as if it were missing; the admin still sees it.
import { describe, test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { startWorker } from './lib/harness.mjs';
import {
  es, connect, closeQuietly, streamName, jsonEvent, admin, ANY, NO_STREAM, withDeadline, deferred,
} from './lib/es.mjs';
import { randomUUID } from 'node:crypto';

const T = { timeout: 60000 };

function linkTo(target) {
  return es.createEventData(randomUUID(), '$>', false, Buffer.from(target));
}

describe('security hole 2: links bypass ACLs', () => {
  let w;
  let anon;
  let adminConn;

  before(async () => {
    w = await startWorker({ memDb: true });
    anon = await connect(w);
    adminConn = await connect(w, { defaultUserCredentials: admin });
  });

  after(async () => {
    closeQuietly(anon);
    closeQuietly(adminConn);
    await w?.cleanup();
  });

  test('a link to $user-admin resolves to nothing for anonymous, over TCP', T, async () => {
    const s = streamName('hole2');
    await anon.appendToStream(s, NO_STREAM, [linkTo('0@$user-admin')]);
    const slice = await anon.readStreamEventsForward(s, 0, 10, true);
    assert.equal(slice.events.length, 1);
    const e = slice.events[0];
    assert.equal(e.event, null, 'the unreadable target must not be returned');
    assert.ok(e.link, 'the link itself is readable');
    const one = await anon.readEvent(s, 0, true);
    assert.equal(one.event.event, null);
    // The admin may read the target, so for the admin the link resolves.
    const asAdmin = await adminConn.readStreamEventsForward(s, 0, 10, true);
    assert.equal(asAdmin.events[0].event.eventStreamId, '$user-admin');
  });

  test('a link to a $r-restricted stream resolves to nothing, also in $all', T, async () => {
    const secret = streamName('secret');
    await adminConn.appendToStream(secret, NO_STREAM, [jsonEvent({ pin: 1234 })]);
    await adminConn.setStreamMetadataRaw(secret, ANY, { $acl: { $r: '$admins' } });
    const s = streamName('hole2');
    await anon.appendToStream(s, NO_STREAM, [linkTo(`0@${secret}`)]);
    const slice = await anon.readStreamEventsForward(s, 0, 10, true);
    assert.equal(slice.events[0].event, null);
    const all = await adminConn.readAllEventsBackward(es.positions.end, 50, true);
    const found = all.events.find((e) => e.link && e.link.eventStreamId === s);
    assert.ok(found?.event, 'admin resolves it through $all');
  });

  test('HTTP feeds (links resolved by default) do not embed the target', T, async () => {
    const s = streamName('hole2');
    await anon.appendToStream(s, NO_STREAM, [linkTo('0@$user-admin')]);
    const res = await fetch(`http://127.0.0.1:${w.httpPort}/streams/${s}/0/forward/10?embed=body`,
      { headers: { Accept: 'application/vnd.eventstore.atom+json' } });
    assert.equal(res.status, 200);
    const text = await res.text();
    assert.ok(!text.includes('hash'), `feed leaks the user record: ${text.slice(0, 300)}`);
    assert.ok(!text.includes('Event Store Administrator'));
  });

  test('a live subscription with resolveLinkTos gets the link without its target', T, async () => {
    const s = streamName('hole2');
    const got = deferred();
    const sub = await anon.subscribeToStream(s, true, (_sub, e) => got.resolve(e));
    await anon.appendToStream(s, NO_STREAM, [linkTo('0@$user-admin')]);
    const e = await withDeadline(got.promise, 10000, 'the link event');
    sub.unsubscribe();
    assert.equal(e.event, null);
    assert.ok(e.link);
  });
});
