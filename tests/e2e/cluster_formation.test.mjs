// Proves (issue 4, real processes on loopback) that the three commands of EventStore's clustering
// guide — with only the binary's name changed and free ports — form a cluster: within 5 s of
// starting, every node answers GET /gossip, exactly one is Leader and two are Follower, all three
// name the same leader with the same epoch, and no epoch was ever announced by two nodes. The
// same holds with --db folders, on three addresses (127.0.0.1/.2/.3, the same ports on each),
// and with DNS discovery (--cluster-dns resolving through /etc/hosts to the three addresses).
// An unresolvable --cluster-dns with --cluster-size=3 must never give a leader: every node keeps
// reporting no Leader for 3 s (never three leaders — EventStore's split brain #1878).
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import { randomUUID } from 'node:crypto';
import dns from 'node:dns/promises';
import { Cluster, addHostsName, describeViews } from './lib/cluster.mjs';

const FORM_MS = 5000;
const clusters = [];
let hostsBackup;

after(async () => {
  await Promise.all(clusters.map((c) => c.cleanup()));
  if (hostsBackup !== undefined) fs.writeFileSync('/etc/hosts', hostsBackup);
});

const lookupAll = async (name) => (await dns.lookup(name, { all: true, family: 4 })).map((a) => a.address);

// Starts the cluster and asserts the formation invariants within FORM_MS of the start.
async function formsWithin(cluster, label) {
  clusters.push(cluster);
  const t0 = Date.now();
  await cluster.start();
  let r;
  try {
    r = await cluster.waitForLeader({
      timeoutMs: Math.max(100, FORM_MS - (Date.now() - t0)),
      what: `${label}: 1 Leader + 2 Followers agreed by all nodes`,
    });
  } catch (e) {
    assert.fail(`${e.message}\n${cluster.diagnostics(1500)}`);
  }
  const ms = Date.now() - t0;
  const gone = cluster.nodes.filter((n) => !n.alive);
  assert.equal(gone.length, 0, `nodes exited: ${gone.map((n) => n.name)}\n${cluster.diagnostics(1500)}`);
  const vs = await cluster.views();
  const states = vs.map((v) => v.self.state).sort();
  assert.deepEqual(states, ['Follower', 'Follower', 'Leader'], describeViews(vs));
  assert.ok(r.epoch >= 0, `leader epoch ${r.epoch}`);
  // The leader's gossip lists itself first (clients of both versions rely on it, PROTOCOL D1).
  const lv = vs.find((v) => v.node === r.leader);
  assert.equal(lv.gossip.members[0].state, 'Leader', `leader's gossip lists the leader first:\n${describeViews(vs)}`);
  // At most one leader per epoch, from the nodes' own "leading epoch N" lines.
  const announced = cluster.nodes.flatMap((n) => n.leading.map((l) => l.epoch));
  assert.equal(new Set(announced).size, announced.length,
    `an epoch was announced by two nodes: ${JSON.stringify(cluster.nodes.map((n) => n.leading))}`);
  assert.ok(r.leader.leading.some((l) => l.epoch === r.epoch),
    `the leader wrote "leading epoch ${r.epoch}" (saw ${JSON.stringify(r.leader.leading)})`);
  console.log(`# ${label}: leader ${r.leader.name} epoch ${r.epoch} agreed ${ms} ms after start`);
  return r;
}

test('the guide\'s three commands (--mem-db) give 1 Leader and 2 Followers within 5 s', { timeout: 60000 }, async () => {
  const c = new Cluster({ memDb: true });
  await formsWithin(c, 'mem-db');
  await c.cleanup();
});

test('the same with --db folders', { timeout: 60000 }, async () => {
  const c = new Cluster({ memDb: false });
  await formsWithin(c, 'db');
  await c.cleanup();
});

test('three addresses 127.0.0.1/.2/.3 with the same ports on each', { timeout: 60000 }, async () => {
  const c = new Cluster({ memDb: false, hosts: ['127.0.0.1', '127.0.0.2', '127.0.0.3'], samePorts: true });
  await formsWithin(c, 'three addresses');
  assert.deepEqual(new Set(c.nodes.map((n) => n.httpPort)).size, 1);
  await c.cleanup();
});

test('DNS discovery: --cluster-dns resolving (via /etc/hosts) to the three addresses', { timeout: 60000 }, async (t) => {
  const hosts = addHostsName('chorus-e2e', ['127.0.0.1', '127.0.0.2', '127.0.0.3']);
  if (!hosts) {
    t.skip('/etc/hosts not writable');
    return;
  }
  const { name } = hosts;
  hostsBackup = hosts.original;
  try {
    // --cluster-gossip-port = the internal HTTP port that every node shares.
    const c = new Cluster({ memDb: true, hosts: ['127.0.0.1', '127.0.0.2', '127.0.0.3'],
      samePorts: true, dns: { name } });
    console.log(`# ${name} resolves to ${JSON.stringify(await lookupAll(name))}`);
    await formsWithin(c, 'dns');
    await c.cleanup();
  } finally {
    fs.writeFileSync('/etc/hosts', hosts.original);
    hostsBackup = undefined;
  }
});

test('an unresolvable --cluster-dns with --cluster-size=3 never elects a leader (watched 3 s)', { timeout: 60000 }, async () => {
  const c = new Cluster({ memDb: true, dns: { name: `chorus-nx-${randomUUID().slice(0, 8)}.invalid`, port: 2112 } });
  clusters.push(c);
  await c.start();
  const deadline = Date.now() + 3000;
  let polls = 0;
  while (Date.now() < deadline) {
    const vs = await c.views(1000);
    for (const v of vs) {
      assert.ok(!v.error, `${v.node.name} must answer GET /gossip: ${v.error}`);
      assert.notEqual(v.self?.state, 'Leader', `${v.node.name} became Leader alone:\n${describeViews(vs)}`);
      assert.equal(v.leaders.length, 0, `${v.node.name} lists a Leader:\n${describeViews(vs)}`);
    }
    polls++;
    await new Promise((r) => setTimeout(r, 100)); // poll interval of a bounded watch
  }
  for (const n of c.nodes) assert.deepEqual(n.leading, [], `${n.name} announced leading an epoch`);
  assert.ok(polls >= 5, `watched with ${polls} polls`);
  const states = (await c.views()).map((v) => v.self?.state);
  console.log(`# unresolvable DNS: after 3 s states ${JSON.stringify(states)}, no leader`);
  await c.cleanup();
});
