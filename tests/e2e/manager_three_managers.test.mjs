// Goal: prove that three managers on 127.0.0.1, 127.0.0.2 and 127.0.0.3, each with one node and
// the other two managers as gossip seeds, relay gossip into one cluster: every manager serves
// the same leader (listed first) and all three nodes, and a client that knows only one manager
// writes and reads, through any of them, also through a manager whose own node is down.
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { Manager, freePort } from './manager_harness.mjs';
import { es, testSettings, jsonEvent, streamName, readAll, ANY, closeQuietly } from './lib/es.mjs';

const ips = ['127.0.0.1', '127.0.0.2', '127.0.0.3'];
const managers = [];
const conns = [];

after(async () => {
  conns.forEach(closeQuietly);
  await Promise.all(managers.map((m) => m.cleanup()));
});

async function connectVia(m) {
  const c = es.createConnection({ ...testSettings, maxReconnections: 10, gossipTimeout: 1000,
    maxDiscoverAttempts: 20 }, [new es.GossipSeed({ host: m.ip, port: m.extHttpPort })],
  `three-${m.ip}`);
  c.on('error', () => {});
  conns.push(c);
  await new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`no connection via ${m.ip}`)), 20000);
    c.once('connected', () => { clearTimeout(timer); resolve(); });
    c.connect().catch(reject);
  });
  return c;
}

test('three managers with one node each form one cluster reachable through any manager',
  { timeout: 90000 }, async () => {
    // The same ports on each address (free on 127.0.0.1; the others are separate addresses).
    const ports = {};
    for (const k of ['mInt', 'mExt', 'IntTcpPort', 'ExtTcpPort', 'IntHttpPort', 'ExtHttpPort']) {
      ports[k] = await freePort();
    }
    const seeds = (self) => ips.filter((ip) => ip !== self).map((ip) => `${ip}:${ports.mInt}`);
    for (const ip of ips) {
      managers.push(new Manager({
        ip,
        nodes: [{ name: 'node', options: { ClusterSize: 3, IntTcpPort: ports.IntTcpPort,
          ExtTcpPort: ports.ExtTcpPort, IntHttpPort: ports.IntHttpPort,
          ExtHttpPort: ports.ExtHttpPort } }],
        settings: { IntHttpPort: ports.mInt, ExtHttpPort: ports.mExt,
          GossipSeed: seeds(ip).join(','), GossipIntervalMs: 300 },
      }));
    }
    await Promise.all(managers.map((m) => m.start()));
    const views = await Promise.all(managers.map((m) => m.waitForCluster(2, 40000)));
    const leaderOf = (g) => `${g.members[0].internalHttpIp}:${g.members[0].internalHttpPort}`;
    await Promise.all(managers.map(async (m) => {
      // Settle on one leader as seen by all three.
      const g = await m.waitForCluster(2, 20000);
      assert.equal(leaderOf(g), leaderOf(views[0]), `${m.ip} sees the same leader`);
      const managersSeen = g.members.filter((x) => x.state === 'Manager' && x.isAlive);
      assert.ok(managersSeen.length >= 3, `${m.ip} knows the three managers`);
    }));
    for (const m of managers) {
      const c = await connectVia(m);
      const stream = streamName(`via-${m.ip}`);
      await c.appendToStream(stream, ANY, jsonEvent({ via: m.ip }, 'T'));
      const { status, events } = await readAll(c, stream);
      assert.equal(status, 'success');
      assert.equal(events.length, 1);
    }
  });

test('a manager whose only node is down still serves the cluster\'s view, leader first',
  { timeout: 60000 }, async () => {
    const admin = 'Basic ' + Buffer.from('admin:changeit').toString('base64');
    // Stop a follower's node, so that the remaining two keep a majority.
    let target;
    for (const m of managers) {
      const g = await m.waitForCluster(2);
      const mine = (await m.nodes())[0];
      const me = g.members.find((x) => x.state !== 'Manager' &&
        x.internalHttpPort === mine.ports.intHttp && x.internalHttpIp === m.ip);
      if (me?.state === 'Follower') { target = m; break; }
    }
    assert.ok(target, 'a manager with a follower');
    const res = await target.fetch('/api/nodes/node/stop', { method: 'POST', auth: admin });
    assert.equal(res.status, 200);
    const g = await target.waitForCluster(1);
    assert.equal(g.members[0].state, 'Leader');
    const c = await connectVia(target);
    const stream = streamName('node-down');
    await c.appendToStream(stream, ANY, jsonEvent({ x: 1 }, 'T'));
    assert.equal((await readAll(c, stream)).events.length, 1);
  });
