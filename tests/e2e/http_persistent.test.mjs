// Proves EventStore's persistent-subscription HTTP API (PROTOCOL.md E4) for the unmodified
// geteventstore-promise client: assert (create, then update on 409), getEvents as competing
// Atom with ack/nack links that work (ack, nack retry, nack park), info (with the settings the
// update set), the stream and global lists, replayParked, remove; anonymous create/replay/delete
// are refused with 401; a follower passes the requests on to the leader; /metrics shows the group.
import { describe, test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import EventStore from 'geteventstore-promise';
import { startWorker, waitFor, canConnect } from './lib/harness.mjs';
import { Cluster } from './lib/cluster.mjs';

const T = { timeout: 60000 };
const { HTTPClient, EventFactory } = EventStore;
const factory = new EventFactory();

function stream(prefix) {
  return `${prefix}-${randomUUID().slice(0, 8)}`;
}

async function status(url, options = {}) {
  const res = await fetch(url, options);
  await res.text();
  return res.status;
}

const auth = `Basic ${Buffer.from('admin:changeit').toString('base64')}`;

describe('persistent subscriptions over HTTP (geteventstore-promise)', () => {
  let w;
  let client;
  let base;

  before(async () => {
    w = await startWorker({ memDb: true });
    await waitFor(() => canConnect(w.httpPort), { what: `HTTP port ${w.httpPort}` });
    client = new HTTPClient({
      hostname: '127.0.0.1', port: w.httpPort,
      credentials: { username: 'admin', password: 'changeit' },
    });
    base = `http://127.0.0.1:${w.httpPort}`;
  });

  after(async () => { await w?.cleanup(); });

  test('assert, getEvents with ack/nack links, info, lists, replayParked, remove', T, async () => {
    const s = stream('hps');
    await client.writeEvents(s, [1, 2, 3].map((n) => factory.newEvent('Work', { n })));
    await client.persistentSubscriptions.assert('g', s, { maxRetryCount: 0 });
    // A second assert updates (409 on PUT, then POST).
    await client.persistentSubscriptions.assert('g', s,
      { maxRetryCount: 0, readBatchSize: 10, extraStatistics: true });

    // The update restarts the group (as EventStore does), and a read answers with what the
    // group holds now: nothing until it has read the stream again, so poll as a client would.
    const first = await waitFor(async () => {
      const got = await client.persistentSubscriptions.getEvents('g', s, 2, 'Body');
      return got.entries.length > 0 ? got : false;
    }, { what: 'the restarted group to hand out its first events' });
    assert.equal(first.entries.length, 2);
    assert.deepEqual(first.entries.map((e) => e.event.data.n).sort(), [1, 2]);
    assert.equal(typeof first.ackAll, 'function');
    const byN = Object.fromEntries(first.entries.map((e) => [e.event.data.n, e]));
    await byN[1].ack();
    // Event 2 is nacked with ?action=park on its nack link.
    const nack = byN[2].event.links.find((l) => l.relation === 'nack');
    assert.ok(nack, 'each entry has a nack link');
    assert.equal(await status(`${nack.uri}?action=park`,
      { method: 'POST', headers: { authorization: auth } }), 202);

    const info = await waitFor(async () => {
      const i = await client.persistentSubscriptions.getSubscriptionInfo('g', s);
      return i.parkedMessageCount === 1 ? i : false;
    }, { what: 'one parked message in /info' });
    assert.equal(info.eventStreamId, s);
    assert.equal(info.groupName, 'g');
    assert.equal(info.config.readBatchSize, 10);
    assert.equal(info.config.extraStatistics, true, 'the update took extraStatistics');
    assert.ok(['Live', 'Behind', 'Paused', 'Stuck'].includes(info.status));
    assert.ok(info.links.some((l) => l.rel === 'replayParked'));

    const forStream = await client.persistentSubscriptions.getStreamSubscriptionsInfo(s);
    assert.deepEqual(forStream.map((g) => g.groupName), ['g']);
    const all = await client.persistentSubscriptions.getAllSubscriptionsInfo();
    assert.ok(all.some((g) => g.eventStreamId === s && g.groupName === 'g'));

    // Event 3 is next; the parked event comes back after replayParked.
    const second = await client.persistentSubscriptions.getEvents('g', s, 5, 'Body');
    assert.deepEqual(second.entries.map((e) => e.event.data.n), [3]);
    await second.ackAll();
    assert.equal(await status(`${base}/subscriptions/${s}/g/replayParked`, { method: 'POST' }),
      401, 'anonymous replay is refused');
    assert.equal(await status(`${base}/subscriptions/${s}/g/replayParked`,
      { method: 'POST', headers: { authorization: auth } }), 200);
    const replayed = await client.persistentSubscriptions.getEvents('g', s, 5, 'Body');
    assert.deepEqual(replayed.entries.map((e) => e.event.data.n), [2]);
    await replayed.nackAll();  // no action: retry (maxRetryCount 0 parks it again)
    await waitFor(async () => (await client.persistentSubscriptions
      .getSubscriptionInfo('g', s)).parkedMessageCount === 1, { what: 'parked again' });

    assert.equal(await status(`${base}/subscriptions/${s}/g`, { method: 'DELETE' }), 401,
      'anonymous delete is refused');
    await client.persistentSubscriptions.remove('g', s);
    await assert.rejects(client.persistentSubscriptions.getSubscriptionInfo('g', s),
      (e) => e.response?.status === 404);
  });

  test('bad settings, bad ids and anonymous create are refused', T, async () => {
    const s = stream('hps-bad');
    const put = (body, headers = { authorization: auth }) => status(`${base}/subscriptions/${s}/g`,
      { method: 'PUT', headers: { 'content-type': 'application/json', ...headers },
        body: JSON.stringify(body) });
    assert.equal(await put({}, {}), 401);
    assert.equal(await put({ bufferSize: 10, readBatchSize: 20 }), 400);
    assert.equal(await put({ namedConsumerStrategy: 'Nope' }), 400);
    assert.equal(await put({ startFrom: 0 }), 201);
    assert.equal(await put({ startFrom: 0 }), 409);
    assert.equal(await status(`${base}/subscriptions/${s}/g/ack/not-a-guid`,
      { method: 'POST', headers: { authorization: auth } }), 400);
    assert.equal(await status(`${base}/subscriptions/${s}/g/nack/${randomUUID()}?action=explode`,
      { method: 'POST', headers: { authorization: auth } }), 400);
    const metrics = await (await fetch(`${base}/metrics`)).text();
    assert.match(metrics,
      new RegExp(`chorus_persistent_subscription_consumers\\{stream="${s}",group="g"\\} 0`));
  });
});

describe('persistent subscriptions over HTTP on a follower', () => {
  let cluster;
  before(async () => {
    cluster = new Cluster({ size: 3, memDb: true });
    await cluster.start();
    await cluster.waitForLeader({ timeoutMs: 15000 });
  });
  after(async () => { await cluster?.cleanup(); });

  test('a follower passes persistent-subscription requests on to the leader', T, async () => {
    const [follower] = await cluster.followers({ timeoutMs: 15000 });
    const client = new HTTPClient({
      hostname: follower.host, port: follower.httpPort,
      credentials: { username: 'admin', password: 'changeit' },
    });
    const s = stream('hps-fwd');
    await client.persistentSubscriptions.assert('g', s, {});
    const info = await client.persistentSubscriptions.getSubscriptionInfo('g', s);
    assert.equal(info.groupName, 'g');
    await client.persistentSubscriptions.remove('g', s);
  });
});
