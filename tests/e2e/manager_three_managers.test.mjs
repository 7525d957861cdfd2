// Goal: prove issue 15's scenario: three managers on 127.0.0.1, 127.0.0.2 and 127.0.0.3, each
// supervising one node whose Options list only ports (the manager passes its IntIp/ExtIp, and
// --what-if shows it), relay gossip into one cluster: every manager serves the same leader
// (listed first) and all three nodes; a client that knows only one manager writes and reads
// through any of them, also through a manager whose own node is down; and a client seeded with
// the three managers keeps writing when the leader's manager is SIGKILLed (its node dies with it).
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { Manager, ADMIN, freePort, pidAlive, runManager, waitFor } from './manager_harness.mjs';
import { es, testSettings, jsonEvent, streamName, readAll, ANY, closeQuietly } from './lib/es.mjs';

const ips = ['127.0.0.1', '127.0.0.2', '127.0.0.3'];
const managers = [];
const conns = [];

after(async () => {
  conns.forEach(closeQuietly);
  await Promise.all(managers.map((m) => m.cleanup()));
});

async function connectVia(m) {
  const c = es.createConnection({ ...testSettings, ...m.clientSettings, maxReconnections: 10,
    gossipTimeout: 1000, maxDiscoverAttempts: 20 },
  [new es.GossipSeed({ host: m.ip, port: m.extHttpPort })],
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
    await managers[1].prepare();
    const whatIf = await runManager(['--config', managers[1].configPath, '--what-if']);
    assert.equal(whatIf.code, 0, whatIf.stderr);
    const nodeLine = whatIf.stdout.split('\n').find((l) => l.startsWith('NODE node '));
    assert.ok(nodeLine?.includes(' --int-ip=127.0.0.2') && nodeLine.includes(' --ext-ip=127.0.0.2'),
      `--what-if shows the node's command line with the manager's addresses: ${nodeLine}`);
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

// The member of this manager's own node in a gossip document.
function ownMember(g, m, port) {
  return g.members.find((x) => x.state !== 'Manager' && x.internalHttpIp === m.ip &&
    x.internalHttpPort === port);
}

test('a client seeded with the three managers keeps writing through a SIGKILL of the leader\'s ' +
  'manager', { timeout: 120000 }, async () => {
  // The previous test stopped one node; all three run again first.
  for (const m of managers) {
    const res = await m.fetch('/api/nodes/node/start', { method: 'POST', auth: ADMIN });
    assert.equal(res.status, 200);
  }
  await Promise.all(managers.map((m) => m.waitForCluster(2, 40000)));
  const g = await managers[0].waitForCluster(2);
  const port = (await managers[0].nodes())[0].ports.intHttp;
  const victim = managers.find((m) => ownMember(g, m, port)?.state === 'Leader');
  assert.ok(victim, 'the manager of the leader');
  const survivors = managers.filter((m) => m !== victim);
  const victimNodePids = victim.workerPids();
  assert.equal(victimNodePids.length, 1);

  const c = es.createConnection({ ...testSettings, ...managers[0].clientSettings,
    maxReconnections: 50, reconnectionDelay: 200,
    maxRetries: 20, operationTimeout: 10000, gossipTimeout: 1000, maxDiscoverAttempts: 30 },
  managers.map((m) => new es.GossipSeed({ host: m.ip, port: m.extHttpPort })), 'three-seeded');
  c.on('error', () => {});
  conns.push(c);
  await new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error('no connection via the seeds')), 20000);
    c.once('connected', () => { clearTimeout(timer); resolve(); });
    c.connect().catch(reject);
  });

  // One writer, appending one event at a time; each acknowledged event id is remembered.
  const stream = streamName('through-kill');
  const acked = [];
  const failures = [];
  let writing = true;
  let killedAt = 0;
  const writer = (async () => {
    for (let i = 0; writing; i++) {
      const e = jsonEvent({ i }, 'T');
      try {
        await c.appendToStream(stream, ANY, e);
        acked.push({ id: e.eventId, afterKill: killedAt > 0 });
      } catch (err) {
        failures.push(`${i}: ${err.message}`);
      }
    }
  })();
  await waitFor(() => acked.length >= 20, { timeoutMs: 20000, what: '20 writes before the kill' });
  await victim.kill();
  killedAt = Date.now();
  // Its node dies with it (PR_SET_PDEATHSIG), so the cluster keeps two of three nodes.
  await waitFor(() => !pidAlive(victimNodePids[0]), { timeoutMs: 15000,
    what: 'the killed manager\'s node to exit' });
  await waitFor(() => acked.filter((a) => a.afterKill).length >= 50,
    { timeoutMs: 45000, what: '50 acknowledged writes after the kill' });
  const resumedMs = Date.now() - killedAt;
  writing = false;
  await writer;
  // Each survivor's gossip learns of the death within a few gossip rounds (not at a given instant).
  for (const m of survivors) {
    await waitFor(async () => {
      const view = await m.waitForCluster(1, 20000);
      return ownMember(view, victim, port)?.isAlive !== true;
    }, { timeoutMs: 20000, intervalMs: 250, what: 'a survivor to report the killed node dead' });
  }
  // Every acknowledged write is in the stream, read through the same seeded client.
  const { status, events } = await readAll(c, stream);
  assert.equal(status, 'success');
  const stored = new Set(events.map((e) => e.event.eventId));
  const missing = acked.filter((a) => !stored.has(a.id));
  assert.deepEqual(missing, [], 'no acknowledged write is lost');
  console.log(`# ${acked.length} writes acknowledged, 50 after the kill within ${resumedMs} ms; ` +
    `${failures.length} attempts failed: ${failures.slice(0, 3).join('; ')}`);
});
