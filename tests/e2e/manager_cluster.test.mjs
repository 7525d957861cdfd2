// Goal: prove that one chorus-manager with three nodes of one cluster behaves as issue 5 asks:
// the cluster forms through the manager's gossip relay; node-eventstore-client given only the
// manager's port as gossip seed writes and reads; a SIGKILLed worker is restarted within 1 s
// plus its backoff and catches up; the leader's SIGKILLed worker is replaced by a new leader and
// returns as a follower; a SIGSTOPped worker is detected and restarted; stop/start through the
// API need credentials (401 without), and so do the node logs and the restart history;
// SIGTERM of the manager stops all its workers; a restarted manager keeps the history and
// starts its nodes again, except one the operator stopped; SIGKILL of the manager takes its
// workers down too, and the next manager records their exits. Along the way: the streams
// proxy, recent streams, /api/auth, metrics, the chart history, the machines document, the
// dashboard's files and a rolling restart (followers first, the leader last after it resigns).
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { Manager, ADMIN, pidAlive, waitFor } from './manager_harness.mjs';
import { es, testSettings, jsonEvent, streamName, readAll, ANY, closeQuietly } from './lib/es.mjs';
import { httpFetch } from './lib/tls.mjs';

const nodes = ['n1', 'n2', 'n3'].map((name) => ({
  name, options: { ClusterSize: 3 },
}));
const webRoot = fs.mkdtempSync(path.join(os.tmpdir(), 'chorus-mgr-web-'));
fs.writeFileSync(path.join(webRoot, 'index.html'), '<html>dashboard</html>');
fs.writeFileSync(path.join(webRoot, 'app.js'), 'console.log(1)');
const m = new Manager({
  nodes,
  settings: { HungAfterMs: 1500, StopGraceMs: 5000, GossipIntervalMs: 300, WebRoot: webRoot },
});
let conn;

after(async () => {
  closeQuietly(conn);
  // CHORUS_KEEP=1 keeps the manager's folder (its and the nodes' logs) for a post-mortem.
  await m.cleanup({ keepDir: !!process.env.CHORUS_KEEP });
  if (process.env.CHORUS_KEEP) console.log('kept', m.dir);
  fs.rmSync(webRoot, { recursive: true, force: true });
});

async function gossipConnection() {
  const c = es.createConnection({ ...testSettings, maxReconnections: 20, maxRetries: 10,
    gossipTimeout: 1000, maxDiscoverAttempts: 20, ...m.clientSettings },
  [new es.GossipSeed({ host: m.ip, port: m.extHttpPort })], 'manager-e2e');
  c.on('error', () => {});
  await new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error('client did not connect')), 20000);
    c.once('connected', () => { clearTimeout(timer); resolve(); });
    c.connect().catch(reject);
  });
  return c;
}

function memberOf(gossip, name) {
  const port = m.node(name).options.IntHttpPort;
  return gossip.members.find((x) => x.internalHttpPort === port && x.state !== 'Manager');
}

async function leaderName() {
  const g = await m.waitForCluster(2);
  return nodes.map((n) => n.name).find((name) => memberOf(g, name)?.state === 'Leader');
}

// Waits until `name` runs under a new pid and is a caught-up follower again.
async function waitBackAsFollower(name, oldPid, timeoutMs = 30000) {
  let seen;  // what the last poll saw, for the failure message
  try {
    return await waitFor(async () => {
      const info = await m.nodeInfo(name);
      seen = { state: info.state, pid: info.pid, oldPid };
      if (info.state !== 'Running' || info.pid === oldPid) return false;
      const g = await m.gossip();
      seen.members = g.members.filter((x) => x.state !== 'Manager').map((x) => ({
        port: x.internalHttpPort, state: x.state, alive: x.isAlive,
        epoch: x.epochNumber, wcp: x.writerCheckpoint, id: x.instanceId }));
      const me = memberOf(g, name);
      const leader = g.members.find((x) => x.state === 'Leader' && x.isAlive);
      return me?.isAlive && me.state === 'Follower' && leader &&
        me.writerCheckpoint >= leader.writerCheckpoint ? info : false;
    }, { timeoutMs, intervalMs: 100, what: `${name} back as a caught-up follower` });
  } catch (e) {
    e.message += `; last seen ${JSON.stringify(seen)}; ${name} is on port ` +
      m.node(name).options.IntHttpPort;
    throw e;
  }
}

test('one manager with three nodes forms a cluster; its gossip lists the leader first',
  { timeout: 60000 }, async () => {
    await m.start();
    const g = await m.waitForCluster(2);
    assert.equal(g.members[0].state, 'Leader');
    assert.ok(g.members.some((x) => x.state === 'Manager' && x.externalHttpPort === m.extHttpPort),
      'the manager itself is a member in state Manager');
    const list = await m.nodes();
    assert.deepEqual(list.map((n) => n.state), ['Running', 'Running', 'Running']);
    assert.ok(list.every((n) => n.pid > 0 && n.ports.extTcp > 0));
    // The internal port serves the same view.
    const res = await httpFetch(`${m.scheme}://${m.ip}:${m.intHttpPort}/gossip?format=json`);
    assert.equal(res.status, 200);
  });

test('a client with only the manager as gossip seed writes and reads', { timeout: 60000 },
  async () => {
    conn = await gossipConnection();
    const stream = streamName('mgr');
    for (let i = 0; i < 10; i++) await conn.appendToStream(stream, ANY, jsonEvent({ i }, 'T'));
    const { status, events } = await readAll(conn, stream);
    assert.equal(status, 'success');
    assert.equal(events.length, 10);
  });

test('streams proxy, recent streams, auth, metrics and the dashboard\'s files',
  { timeout: 30000 }, async () => {
    const stream = streamName('proxied');
    await conn.appendToStream(stream, ANY, jsonEvent({ a: 1 }, 'Proxied'));
    const feed = await waitFor(async () => {
      const res = await m.fetch(`/api/streams/${stream}/head/backward/20?embed=body`,
        { auth: ADMIN });
      return res.status === 200 ? { status: 200, body: await res.json() } : false;
    }, { timeoutMs: 5000, what: 'the stream through the proxy' });
    assert.equal(feed.body.entries.length, 1);
    const recent = await m.json('/api/recent-streams', { auth: ADMIN });
    assert.equal(recent.status, 200);
    assert.ok(recent.body.streams.some((x) => x.stream === stream), JSON.stringify(recent.body));
    assert.equal((await m.fetch('/api/recent-streams')).status, 401);
    const auth = await m.json('/api/auth', { auth: ADMIN });
    assert.equal(auth.status, 200);
    assert.equal(auth.body.login, 'admin');
    assert.ok(auth.body.groups.includes('$admins'));
    const ops = await m.json('/api/auth',
      { auth: 'Basic ' + Buffer.from('ops:changeit').toString('base64') });
    assert.equal(ops.status, 200);
    assert.equal(ops.body.mayChange, true);
    assert.equal((await m.fetch('/api/auth')).status, 401);
    const metrics = await (await m.fetch('/metrics')).text();
    assert.match(metrics, /chorus_manager_nodes\{state="Running"\} 3/);
    const index = await m.fetch('/');
    assert.equal(index.status, 200);
    assert.match(await index.text(), /dashboard/);
    assert.match((await m.fetch('/app.js')).headers.get('content-type'), /javascript/);
    assert.equal((await m.fetch('/nodes/n1')).status, 200, 'dashboard routes get index.html');
    assert.equal((await m.fetch('/missing.js')).status, 404);
    assert.doesNotMatch(await (await m.fetch('/..%2F..%2Fetc%2Fpasswd')).text(), /root:/);
    const clusters = await m.json('/api/clusters');
    assert.deepEqual(clusters.body.clusters, ['default']);
    const cors = await m.fetch('/api/nodes');
    assert.equal(cors.headers.get('access-control-allow-origin'), '*');
  });

test('a SIGKILLed follower worker is restarted at once and catches up', { timeout: 60000 },
  async () => {
    const leader = await leaderName();
    const victim = nodes.map((n) => n.name).find((n) => n !== leader);
    const before = await m.nodeInfo(victim);
    const killedAt = Date.now();
    process.kill(before.pid, 'SIGKILL');
    const restarted = await waitFor(async () => {
      const info = await m.nodeInfo(victim);
      return info.pid && info.pid !== before.pid ? info : false;
    }, { timeoutMs: 5000, intervalMs: 20, what: `${victim} restarted` });
    assert.ok(Date.now() - killedAt < 1000 + 200, `restarted after ${Date.now() - killedAt} ms`);
    assert.equal(restarted.lastExit.signal, 9);
    // Writes go on while it catches up.
    await conn.appendToStream(streamName('during'), ANY, jsonEvent({ x: 1 }, 'T'));
    await waitBackAsFollower(victim, before.pid);
  });

test('the leader\'s SIGKILLed worker: a new leader, the old one returns as a follower',
  { timeout: 60000 }, async () => {
    const leader = await leaderName();
    const before = await m.nodeInfo(leader);
    process.kill(before.pid, 'SIGKILL');
    await waitFor(async () => {
      const g = await m.gossip();
      const l = g.members.find((x) => x.state === 'Leader' && x.isAlive);
      return l && l.internalHttpPort !== m.node(leader).options.IntHttpPort;
    }, { timeoutMs: 20000, intervalMs: 100, what: 'a new leader' });
    await waitBackAsFollower(leader, before.pid);
    await conn.appendToStream(streamName('after-failover'), ANY, jsonEvent({ y: 1 }, 'T'));
  });

test('a SIGSTOPped worker is detected as hung, killed and restarted', { timeout: 60000 },
  async () => {
    const leader = await leaderName();
    const victim = nodes.map((n) => n.name).find((n) => n !== leader);
    const before = await m.nodeInfo(victim);
    const others = nodes.map((n) => n.name).filter((n) => n !== victim);
    const otherPids = await Promise.all(others.map(async (n) => (await m.nodeInfo(n)).pid));
    process.kill(before.pid, 'SIGSTOP');
    await waitBackAsFollower(victim, before.pid);
    assert.ok(!pidAlive(before.pid), 'the stopped process was killed');
    // The hung node's probe waiting out its timeout must not delay the others' probes until
    // they look hung too (the probes once ran one by one and killed all three nodes).
    for (const [i, n] of others.entries()) {
      assert.equal((await m.nodeInfo(n)).pid, otherPids[i], `${n} was left running`);
    }
    const events = await m.history();
    assert.ok(events.some((e) => e.node === victim && e.event === 'hung'), 'history has "hung"');
  });

test('stop and start through the API; 401 without credentials', { timeout: 60000 }, async () => {
  const denied = await m.fetch('/api/nodes/n3/stop', { method: 'POST' });
  assert.equal(denied.status, 401);
  assert.match(denied.headers.get('www-authenticate'), /Basic/);
  const wrong = await m.fetch('/api/nodes/n3/stop', { method: 'POST',
    auth: 'Basic ' + Buffer.from('admin:wrong').toString('base64') });
  assert.equal(wrong.status, 401);
  assert.equal((await m.nodeInfo('n3')).state, 'Running');
  const unknown = await m.fetch('/api/nodes/nope/stop', { method: 'POST', auth: ADMIN });
  assert.equal(unknown.status, 404);

  const pid = (await m.nodeInfo('n3')).pid;
  const stopped = await m.json('/api/nodes/n3/stop', { method: 'POST', auth: ADMIN });
  assert.equal(stopped.status, 200);
  assert.equal(stopped.body.node.state, 'Stopped');
  assert.ok(!pidAlive(pid));
  const started = await m.json('/api/nodes/n3/start', { method: 'POST', auth: ADMIN });
  assert.equal(started.status, 200);
  // The cluster whole again in the manager's view, not only n3 running: stopping n3 (perhaps
  // the leader) leaves it without a known leader for seconds, and the next tests read the
  // manager's figures of the last seconds (the chart history's lag of every node).
  await waitFor(async () => (await m.nodeInfo('n3')).state === 'Running',
    { timeoutMs: 15000, what: 'n3 running again' });
  await m.waitForCluster(2);
  const events = await m.history();
  assert.ok(events.some((e) => e.node === 'n3' && e.event === 'stop-requested'));
  assert.ok(events.some((e) => e.node === 'n3' && e.event === 'start-requested'));
});

test('logs and the restart history need a login of $admins or $ops; /api/nodes and gossip stay '
  + 'open', { timeout: 30000 }, async () => {
  const wrong = 'Basic ' + Buffer.from('admin:wrong').toString('base64');
  for (const p of ['/api/history', '/api/nodes/n1/log?lines=5',
    '/api/nodes/n1/log?follow=true&lines=1', '/api/nodes/nope/log']) {
    for (const auth of [undefined, wrong]) {
      const res = await m.fetch(p, { auth });
      assert.equal(res.status, 401, `${p} with ${auth ? 'a wrong password' : 'no credentials'}`);
      assert.match(res.headers.get('www-authenticate') ?? '', /Basic/);
      await res.text();
    }
  }
  const ops = 'Basic ' + Buffer.from('ops:changeit').toString('base64');
  for (const auth of [ADMIN, ops]) {
    const tail = await m.json('/api/nodes/n1/log?lines=5', { auth });
    assert.equal(tail.status, 200);
    assert.ok(tail.body.lines.length > 0);
    assert.ok((await m.history(auth)).length > 0);
  }
  const follow = await m.fetch('/api/nodes/n1/log?follow=true&lines=1', { auth: ADMIN });
  assert.equal(follow.status, 200);
  assert.match(follow.headers.get('content-type'), /text\/event-stream/);
  await follow.body.cancel();
  assert.equal((await m.fetch('/api/nodes')).status, 200);
  assert.equal((await m.fetch('/gossip?format=json')).status, 200);
});

test('chart history: a sample a second with the nodes\' figures; bad parameters are refused',
  { timeout: 30000 }, async () => {
    const since = Date.now() - 3000;
    await conn.appendToStream(streamName('chart'), ANY, jsonEvent({ c: 1 }, 'T'));
    // A node's lag is known only while the manager's view has a leader and the node alive;
    // wait for a sample of every node's lag (the window may open on a leaderless moment).
    const hasLag = (d, n) => d.series.lagBytes[n]?.some((v) => v !== null);
    const doc = await waitFor(async () => {
      const r = await m.json(`/api/metrics-history?resolution=1s&since=${since}`);
      assert.equal(r.status, 200);
      return r.body.times.length >= 3 && r.body.nodes.every((n) => hasLag(r.body, n)) ?
        r.body : false;
    }, { timeoutMs: 15000, what: 'three samples and a lag of every node' });
    assert.deepEqual(doc.nodes, ['n1', 'n2', 'n3']);
    assert.ok(doc.times.every((t, i) => t > since && (i === 0 || t > doc.times[i - 1])));
    for (const n of doc.nodes) {
      assert.equal(doc.series.eventsWritten[n].length, doc.times.length);
      assert.ok(doc.series.dataBytes[n].some((v) => v > 0), `${n} disk use`);
      assert.ok(hasLag(doc, n), `${n} lag`);
    }
    const minutes = await m.json('/api/metrics-history?resolution=1m');
    assert.equal(minutes.status, 200);
    assert.equal(minutes.body.intervalMs, 60000);
    assert.ok(minutes.body.times.length >= 1, 'the minute in progress');
    for (const bad of ['resolution=5s', 'since=abc', 'since=-5', 'since=12x']) {
      const r = await m.json(`/api/metrics-history?${bad}`);
      assert.equal(r.status, 400, bad);
      assert.match(r.body.error, /resolution|since/);
    }
  });

test('machines: this manager alone (no peers); its nodes document is also on the internal port',
  { timeout: 30000 }, async () => {
    const r = await m.json('/api/machines');
    assert.equal(r.status, 200);
    assert.equal(r.body.machines.length, 1);
    const [self] = r.body.machines;
    assert.equal(self.self, true);
    assert.equal(self.reachable, true);
    assert.deepEqual(self.nodes.map((n) => n.name), ['n1', 'n2', 'n3']);
    const internal = await httpFetch(`${m.scheme}://${m.ip}:${m.intHttpPort}/api/nodes`);
    assert.equal(internal.status, 200);
    assert.equal((await internal.json()).nodes.length, 3);
    // Nothing else of the API is on the internal port.
    for (const p of ['/api/history', '/api/machines', '/api/nodes/n1/log']) {
      const res = await httpFetch(`${m.scheme}://${m.ip}:${m.intHttpPort}${p}`, {
        headers: { Authorization: ADMIN } });
      assert.equal(res.status, 404, p);
      await res.text();
    }
  });

test('rolling restart: followers first, the leader last after it resigns', { timeout: 120000 },
  async () => {
    await m.waitForCluster(2);
    const leader = await leaderName();
    const before = new Map((await m.nodes()).map((n) => [n.name, n.pid]));
    const denied = await m.fetch('/api/cluster/rolling-restart', { method: 'POST' });
    assert.equal(denied.status, 401);
    const r = await m.json('/api/cluster/rolling-restart?cluster=default',
      { method: 'POST', auth: ADMIN, timeoutMs: 110000 });
    assert.equal(r.status, 200, JSON.stringify(r.body));
    const restarts = r.body.steps.filter((x) => x.action === 'restart').map((x) => x.node);
    assert.equal(restarts.length, 3);
    assert.equal(restarts[2], leader, 'the leader is restarted last');
    assert.ok(r.body.steps.some((x) => x.action === 'resign' && x.node === leader));
    const after = await m.nodes();
    for (const n of after) assert.notEqual(n.pid, before.get(n.name), `${n.name} restarted`);
    await m.waitForCluster(2);
    await conn.appendToStream(streamName('after-rolling'), ANY, jsonEvent({ z: 1 }, 'T'));
  });

test('SIGTERM of the manager stops every worker; a new manager keeps the history and starts '
  + 'the nodes again', { timeout: 90000 }, async () => {
  closeQuietly(conn);
  conn = undefined;
  await m.waitForCluster(2);
  // An operator stop outlives the manager: n3 stays stopped after the restart.
  assert.equal((await m.json('/api/nodes/n3/stop', { method: 'POST', auth: ADMIN })).status, 200);
  const pids = (await m.nodes()).map((n) => n.pid).filter((p) => p);
  assert.equal(pids.length, 2);
  const historyBefore = await m.history();
  const r = await m.stop();
  assert.equal(r.code, 0, m.output);
  for (const pid of pids) assert.ok(!pidAlive(pid), `worker ${pid} exited with the manager`);

  await m.start();
  await m.waitForCluster(1);
  const n3 = await m.nodeInfo('n3');
  assert.equal(n3.state, 'Stopped');
  assert.equal(n3.pid, null);
  assert.equal((await m.json('/api/nodes/n3/start', { method: 'POST', auth: ADMIN })).status,
    200);
  await m.waitForCluster(2);
  const events = await m.history();
  assert.ok(events.length > historyBefore.length);
  const oldest = historyBefore[historyBefore.length - 1];
  assert.ok(events.some((e) => e.at === oldest.at && e.event === oldest.event), 'history kept');
  assert.equal(events.filter((e) => e.event === 'manager-started').length, 2);
  assert.ok(events.some((e) => e.event === 'manager-stopped'));
  const list = await m.nodes();
  assert.ok(list.find((n) => n.name === 'n1').restarts >= 0);
});

test('SIGKILL of the manager takes its workers down too; the next manager records those exits',
  { timeout: 90000 }, async () => {
    const before = await m.nodes();
    const pids = before.map((n) => n.pid);
    assert.equal(pids.length, 3);
    await m.kill();
    await waitFor(() => pids.every((pid) => !pidAlive(pid)),
      { timeoutMs: 15000, what: 'every worker gone after the manager was killed' });
    // Regression: exits nobody watched were missing from the history (only the new starts were
    // there). The next manager on the same folder lists each with its pid and cause.
    await m.start();
    await m.waitForCluster(2);
    const events = await m.history();
    for (const n of before) {
      const exit = events.find((e) => e.node === n.name && e.event === 'exited' &&
        e.detail.startsWith(`pid ${n.pid} ended while no manager watched it`));
      assert.ok(exit, `${n.name}'s exit (pid ${n.pid}) in the history`);
      const started = events.findIndex((e) => e.node === n.name && e.event === 'started');
      assert.ok(started >= 0 && started < events.indexOf(exit), 'then its new start');
      const info = await m.nodeInfo(n.name);
      assert.match(info.lastExit.reason, /no manager watched it/);
    }
  });
