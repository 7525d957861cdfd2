// Proves (issue 17) that every generation of EventStore client finds the leader of one 3-node
// Chorus cluster by its state name, through gossip seeds (the nodes) and through a manager:
// node-eventstore-client 23.10.1 on the usual ports (v20 names: Leader, Follower) and 0.2.19 on
// the ExtHttpPortV5 of the nodes and of the manager (v5 names: Master, Slave), each connecting to
// the leader first, then writing and reading — also through a relay that lists the members in
// reverse order, so the leader is not the first member and position cannot pick it. It shows
// why a separate port is needed (both npm generations send the same request, byte for byte, and
// each picks a follower from the other generation's names), that a reader doing what a v5 client
// (photon-pump) does finds exactly one Master on every v5 port, also when it asks the members'
// advertised HTTP endpoints next, and fails on the v20 names; and that a v5 port refuses what
// the usual external port refuses (gossip pushes, unauthenticated admin actions).
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import es0219 from 'node-eventstore-client-0219';
import { es, testSettings } from './lib/es.mjs';
import { Manager, freePort, waitFor } from './manager_harness.mjs';
import {
  readGossipAsV5Client, startReversingRelay, startGossipRecorder, V5_STATES,
} from './lib/gossip_clients.mjs';

const HOST = '127.0.0.1';
const GENERATIONS = {
  '23.10.1': { client: es, names: 'v20' },
  '0.2.19': { client: es0219, names: 'v5' },
};

let m;
let nodes; // [{ name, http, v5, tcp }] external HTTP, ExtHttpPortV5 and TCP of each node
let leaderTcpPort;
const conns = [];
const relays = [];

before(async () => {
  const spec = async (name) => ({ name, options: { ClusterSize: 3, MemDb: true,
    ExtHttpPortV5: await freePort(HOST) } });
  m = new Manager({ nodes: [await spec('g1'), await spec('g2'), await spec('g3')],
    settings: { ExtHttpPortV5: await freePort(HOST) } });
  await m.start();
  const g = await m.waitForCluster(2);
  leaderTcpPort = g.members[0].externalTcpPort;
  nodes = m.nodeSpecs.map((n) => ({ name: n.name, http: n.options.ExtHttpPort,
    v5: n.options.ExtHttpPortV5, tcp: n.options.ExtTcpPort }));
  // Every node's own gossip agrees on that leader before the clients ask them.
  await waitFor(async () => {
    for (const n of nodes) {
      const r = await fetch(`http://${HOST}:${n.http}/gossip?format=json`);
      const d = await r.json();
      if (d.members[0].state !== 'Leader' || d.members[0].externalTcpPort !== leaderTcpPort) {
        return false;
      }
    }
    return true;
  }, { timeoutMs: 10000, what: 'every node naming the same leader first' });
});

after(async () => {
  for (const c of conns) { try { c.close(); } catch {} }
  for (const r of relays) await r.close();
  await m?.cleanup();
});

// A connection of `client` with these gossip seeds; resolves with it and the TCP endpoints it
// connected to, in order, once it first connected.
async function connectVia(client, seeds) {
  const conn = client.createConnection(
    { ...testSettings, log: new client.NoopLogger(), maxDiscoverAttempts: 5 },
    seeds.map((port) => new client.GossipSeed({ host: HOST, port })),
    `gen-${randomUUID().slice(0, 8)}`);
  conn.on('error', () => {});
  conn.connectedTo = [];
  conn.on('connected', (ep) => conn.connectedTo.push(ep.port));
  conns.push(conn);
  await conn.connect();
  await waitFor(() => conn.connectedTo.length > 0, { timeoutMs: 10000, what: 'connected' });
  return conn;
}

async function writeAndRead(client, conn) {
  const s = `gen-${randomUUID()}`;
  const id = randomUUID();
  await conn.appendToStream(s, client.expectedVersion.noStream,
    client.createJsonEventData(id, { hello: 'generations' }, null, 'Gen'));
  const slice = await conn.readStreamEventsForward(s, 0, 10, false);
  assert.deepEqual(slice.events.map((e) => e.event.eventId), [id]);
}

const portOf = (n, names) => (names === 'v5' ? n.v5 : n.http);
const managerPort = (names) => (names === 'v5' ? m.settings.ExtHttpPortV5 : m.extHttpPort);

// The first member such a client may connect to (alive, not a Manager), in listed order.
const firstEligible = (doc) => doc.members.find((x) => x.isAlive &&
  !['Manager', 'ShuttingDown', 'Shutdown'].includes(x.state));

for (const [version, { client, names }] of Object.entries(GENERATIONS)) {
  test(`${version} (${names} names) discovers the leader through the nodes as gossip seeds`, { timeout: 30000 }, async () => {
    const conn = await connectVia(client, nodes.map((n) => portOf(n, names)));
    assert.equal(conn.connectedTo[0], leaderTcpPort, `connected to ${conn.connectedTo}`);
    await writeAndRead(client, conn);
  });

  test(`${version} (${names} names) discovers the leader through the manager`, { timeout: 30000 }, async () => {
    const conn = await connectVia(client, [managerPort(names)]);
    assert.equal(conn.connectedTo[0], leaderTcpPort, `connected to ${conn.connectedTo}`);
    await writeAndRead(client, conn);
  });

  for (const via of ['a follower', 'the manager']) {
    test(`${version} finds the leader listed last (relay of ${via}'s ${names} gossip, reversed)`, { timeout: 30000 }, async () => {
      const follower = nodes.find((n) => n.tcp !== leaderTcpPort);
      const relay = await startReversingRelay(HOST,
        via === 'a follower' ? portOf(follower, names) : managerPort(names));
      relays.push(relay);
      const conn = await connectVia(client, [relay.port]);
      const first = firstEligible(relay.served[0]);
      assert.notEqual(first.externalTcpPort, leaderTcpPort, 'the leader must not be listed first');
      assert.equal(conn.connectedTo[0], leaderTcpPort, `connected to ${conn.connectedTo}`);
      await writeAndRead(client, conn);
    });
  }
}

test('each npm generation, given the other generation\'s names with the leader last, picks a follower (why there are two ports)', { timeout: 30000 }, async () => {
  const follower = nodes.find((n) => n.tcp !== leaderTcpPort);
  for (const [client, names] of [[es0219, 'v20'], [es, 'v5']]) {
    const relay = await startReversingRelay(HOST, portOf(follower, names));
    relays.push(relay);
    const conn = await connectVia(client, [relay.port]);
    assert.notEqual(conn.connectedTo[0], leaderTcpPort,
      `with ${names} names listed in reverse, position decided and picked ${conn.connectedTo[0]}`);
    conn.close();
  }
});

test('both npm generations send the same gossip request, byte for byte (no header tells them apart)', { timeout: 30000 }, async () => {
  const seen = {};
  for (const [version, { client }] of Object.entries(GENERATIONS)) {
    const rec = await startGossipRecorder();
    const conn = client.createConnection(
      { ...testSettings, log: new client.NoopLogger(), maxDiscoverAttempts: 1 },
      [new client.GossipSeed({ host: HOST, port: rec.port })], `rec-${version}`);
    conn.on('error', () => {});
    conn.connect().catch(() => {});
    await waitFor(() => rec.requests.length > 0, { timeoutMs: 10000, what: `${version}'s request` });
    conn.close();
    await rec.close();
    const r = rec.requests[0];
    // The Host header names the recorder's own port; everything else must match.
    r.headers = r.headers.map(([k, v]) => [k, k.toLowerCase() === 'host' ? 'HOST' : v]);
    seen[version] = r;
  }
  assert.equal(seen['23.10.1'].url, '/gossip?format=json');
  assert.deepEqual(seen['0.2.19'], seen['23.10.1']);
  const names = seen['23.10.1'].headers.map(([k]) => k.toLowerCase());
  for (const h of ['accept', 'user-agent']) assert.ok(!names.includes(h), `no ${h} header`);
  assert.ok(!names.some((k) => k.startsWith('es-')), 'no ES-* header');
});

test('a reader doing what a v5 client does finds exactly one Master, the leader, on every v5 port', { timeout: 30000 }, async () => {
  for (const port of [...nodes.map((n) => n.v5), m.settings.ExtHttpPortV5]) {
    const g = await readGossipAsV5Client(HOST, port);
    assert.equal(g.masters.length, 1, `port ${port}: ${g.members.map((x) => x.state)}`);
    assert.equal(g.members[0].state, 'Master', `port ${port}: the leader is listed first`);
    assert.equal(g.best.externalTcpPort, leaderTcpPort);
    assert.ok(g.members.every((x) => V5_STATES.includes(x.state)));
    assert.ok(g.members.some((x) => x.state === 'Slave'));
    // photon-pump (and EventStore's v5 .NET client) ask the members' external HTTP endpoints on
    // their next discovery: those are the members' v5 ports, which answer in v5 names too.
    for (const x of g.members.filter((y) => y.isAlive)) {
      const next = await readGossipAsV5Client(x.externalHttpIp, x.externalHttpPort);
      assert.equal(next.masters.length, 1, `member ${x.externalHttpPort} reached from ${port}`);
    }
  }
  // The same reader on the usual ports meets v20 names, as photon-pump did (KeyError: 'Leader').
  await assert.rejects(readGossipAsV5Client(HOST, nodes[0].http), /'Leader' is not an EventStore 5 state/);
  await assert.rejects(readGossipAsV5Client(HOST, m.extHttpPort), /'Leader' is not an EventStore 5 state/);
});

test('a v5 port refuses what the usual external port refuses: gossip pushes, unauthenticated admin', { timeout: 30000 }, async () => {
  const push = (port) => fetch(`http://${HOST}:${port}/gossip`, { method: 'POST',
    body: JSON.stringify({ members: [] }), headers: { 'Content-Type': 'application/json' } });
  // A node's external ports have no gossip push (405); the manager's say so (404).
  assert.equal((await push(nodes[0].v5)).status, 405);
  assert.equal((await push(m.settings.ExtHttpPortV5)).status, 404);
  const shutdown = await fetch(`http://${HOST}:${nodes[0].v5}/admin/shutdown`, { method: 'POST' });
  assert.equal(shutdown.status, 401);
  const restart = await fetch(`http://${HOST}:${m.settings.ExtHttpPortV5}/api/nodes/g1/restart`,
    { method: 'POST' });
  assert.equal(restart.status, 401);
  // Everything else is the usual API, e.g. a stream read (v5 clients' HTTP endpoint is this port).
  const read = await fetch(`http://${HOST}:${nodes[0].v5}/streams/gen-none`,
    { headers: { Accept: 'application/json' } });
  assert.equal(read.status, 404);
  const info = await fetch(`http://${HOST}:${nodes[0].v5}/info`);
  assert.equal(info.status, 200);
});
