// Proves --stats-period-sec (issue 13): each node writes its statistics (the document GET /stats
// answers) as `$statsCollected` events to `$stats-<ext ip>:<ext http port>`, as EventStore, and
// sets the stream's metadata to EventStore's {"$maxAge":864000} first; a single node and every
// node of a 3-node cluster do it (followers forward their writes to the leader); with 0 nothing
// is written; the stream is a system stream (anonymous readers are refused); and a cluster member
// (holding the secret) that forwards a request as `$system` gets statistics writes only: a write
// to any other stream is refused and never lands.
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import crypto from 'node:crypto';
import path from 'node:path';
import protobuf from 'protobufjs';
import { Worker, waitFor, clusterSecretFile } from './lib/harness.mjs';
import { Cluster } from './lib/cluster.mjs';
import { connect, closeQuietly, admin, num } from './lib/es.mjs';
import { InternalPeer, readSecret } from './lib/internal_peer.mjs';

const cleanups = [];
after(async () => { for (const c of cleanups.reverse()) await c(); });

const statsStream = (n) => `$stats-${n.host}:${n.httpPort}`;

async function readStats(conn, stream) {
  const slice = await conn.readStreamEventsForward(stream, 0, 4096, false, admin);
  if (slice.status !== 'success') return [];
  return slice.events.map((e) => e.event);
}

async function expectStats(conn, node, count) {
  let events = [];
  await waitFor(async () => {
    events = await readStats(conn, statsStream(node));
    return events.length >= count;
  }, { timeoutMs: 20000, what: `${count} events in ${statsStream(node)}` });
  for (const e of events) {
    assert.equal(e.eventType, '$statsCollected');
    const body = JSON.parse(e.data.toString());
    for (const key of ['process', 'storage', 'connections', 'cluster']) {
      assert.ok(body[key], `${key} missing in ${e.data.toString().slice(0, 200)}`);
    }
  }
  const meta = await conn.getStreamMetadataRaw(statsStream(node), admin);
  assert.equal(num(meta.metastreamVersion), 0, 'the metadata is written once');
  assert.equal(meta.streamMetadata.$maxAge, 864000);
  return events;
}

test('a single node writes its statistics to $stats-<ip>:<port> every period', { timeout: 60000 },
  async () => {
    const w = new Worker({ memDb: true, extraArgs: ['--stats-period-sec=1'] });
    cleanups.push(() => w.cleanup());
    await w.start();
    const conn = await connect(w);
    cleanups.push(() => closeQuietly(conn));
    const events = await expectStats(conn, w, 3);
    const pids = events.map((e) => JSON.parse(e.data.toString()).process.pid);
    assert.ok(pids.every((p) => p === w.pid), 'the statistics are this process\'s');
    // A system stream: anonymous readers are refused.
    const anonymous = await fetch(`http://${w.host}:${w.httpPort}/streams/${
      encodeURIComponent(statsStream(w))}`, { headers: { Accept: 'application/json' } });
    assert.equal(anonymous.status, 401);
  });

test('--stats-period-sec=0 writes no statistics', { timeout: 60000 }, async () => {
  const quiet = new Worker({ memDb: true, extraArgs: ['--stats-period-sec=0'] });
  const loud = new Worker({ memDb: true, extraArgs: ['--stats-period-sec=1'] });
  cleanups.push(() => quiet.cleanup(), () => loud.cleanup());
  await Promise.all([quiet.start(), loud.start()]);
  const [quietConn, loudConn] = await Promise.all([connect(quiet), connect(loud)]);
  cleanups.push(() => closeQuietly(quietConn), () => closeQuietly(loudConn));
  // Both started together: by the time the other wrote twice, this one would have too.
  await expectStats(loudConn, loud, 2);
  assert.deepEqual(await readStats(quietConn, statsStream(quiet)), []);
  const options = await (await fetch(`http://${quiet.host}:${quiet.httpPort}/info/options`,
    { headers: { Authorization: `Basic ${Buffer.from('admin:changeit').toString('base64')}` } }))
    .json();
  const entry = options.find((o) => o.name === 'StatsPeriodSec');
  assert.equal(entry?.value, '0', JSON.stringify(entry));
});

test('3-node cluster: every node writes its statistics; a forged $system forward is refused',
  { timeout: 120000 }, async () => {
    const cluster = new Cluster({ size: 3, extraArgs: ['--stats-period-sec=1'] });
    cleanups.push(() => cluster.cleanup());
    await cluster.start();
    const { leader } = await cluster.waitForLeader({ timeoutMs: 15000 });
    const conn = await cluster.connect({ node: leader });
    for (const n of cluster.nodes) await expectStats(conn, n, 2);

    // An insider speaking the internal protocol as a follower, forwarding as "$system".
    const root = protobuf.loadSync(path.resolve(import.meta.dirname,
      '../../common/proto/messages.proto'));
    const WriteEvents = root.lookupType('EventStore.Client.Messages.WriteEvents');
    const writeTo = (stream) => Buffer.from(WriteEvents.encode(WriteEvents.create({
      eventStreamId: stream, expectedVersion: -2, requireMaster: true,
      events: [{ eventId: crypto.randomBytes(16), eventType: 'forged', dataContentType: 1,
        metadataContentType: 0, data: Buffer.from('{"forged":true}') }],
    })).finish());
    const follower = cluster.nodes.find((n) => n !== leader);
    const peerId = `${follower.host}:${follower.intTcpPort}`;
    const peer = new InternalPeer(leader.host, leader.intTcpPort);
    cleanups.push(() => peer.destroy());
    assert.ok(await peer.handshake(readSecret(clusterSecretFile()), 'default', peerId));
    // The leader answers a forwarded request on its own connection to the follower, so the
    // outcome is read from the log: requests are handled in order, and the statistics write sent
    // last lands only after the forged ones were handled.
    // Members are known by instance id (the voter set): the insider names both as gossip does.
    const fromInstance = (await follower.self(2000)).instanceId;
    const toInstance = (await leader.self(2000)).instanceId;
    const send = (requestId, stream) => peer.send({ from: peerId, fromInstance, toInstance,
      to: `${leader.host}:${leader.intTcpPort}`, cluster: 'default',
      forward: { requestId, login: '$system', groups: [], command: 0x82,
        payload: writeTo(stream) } });
    const victim = `victim-${crypto.randomUUID()}`;
    const marker = `$stats-forged-${crypto.randomUUID()}`;
    send(1, victim);
    send(2, '$settings');
    send(3, `$$${victim}`);
    send(4, marker);
    await waitFor(async () => (await readStats(conn, marker)).length === 1,
      { timeoutMs: 10000, what: 'the forwarded statistics write' });
    for (const stream of [victim, `$$${victim}`]) {
      const slice = await conn.readStreamEventsForward(stream, 0, 10, false, admin);
      assert.equal(slice.events.length, 0, `the forged write to ${stream} landed`);
    }
    const settings = await conn.readStreamEventsBackward('$settings', -1, 10, false, admin);
    assert.ok(settings.events.every((e) => e.event.eventType !== 'forged'),
      'the forged write to $settings landed');
  });
