// Goal: prove every `chorus` subcommand against a manager with three real nodes: exit codes
// (0 ok, 1 failed operation, 2 bad usage), --json output parsed here, human output readable;
// status/nodes/node/rolling-restart/logs through the manager's API (actions refused without
// valid credentials), append/read/delete/meta/tail through the C++ client library discovering the
// leader via the manager's gossip port, bench write/read, and a client seeded with the manager
// that keeps writing (no failed request) while the leader's process is SIGKILLed.
import { test, after, before } from 'node:test';
import assert from 'node:assert/strict';
import { Manager, waitFor } from './manager_harness.mjs';
import { runChorus, startChorus, killChorusProcesses } from './lib/cli.mjs';

const nodes = ['n1', 'n2', 'n3'].map((name) => ({ name, options: { ClusterSize: 3 } }));
const m = new Manager({ nodes, settings: { StopGraceMs: 5000, GossipIntervalMs: 300 } });
const ADMIN_ARGS = ['--user', 'admin', '--password', 'changeit'];

before(async () => {
  await m.start();
  await m.waitForCluster(2);
});

after(async () => {
  killChorusProcesses();
  await m.cleanup();
});

// Runs chorus with the manager as seed (unless `seeded` is false).
function chorus(args, { auth = false, seeded = true, ...opts } = {}) {
  const seed = seeded ? ['--seed', `${m.ip}:${m.extHttpPort}`] : [];
  return runChorus([...seed, ...(auth ? ADMIN_ARGS : []), ...args], opts);
}

async function json(args, opts) {
  const r = await chorus([...args, '--json'], opts);
  assert.equal(r.code, 0, `chorus ${args.join(' ')} failed: ${r.stderr}`);
  return JSON.parse(r.stdout);
}

// A long-running chorus (tail, logs -f, a benchmark) with the manager as seed.
function start(args, { auth = false } = {}) {
  return startChorus(['--seed', `${m.ip}:${m.extHttpPort}`, ...(auth ? ADMIN_ARGS : []), ...args]);
}

let counter = 0;
const stream = (prefix) => `${prefix}-${process.pid}-${++counter}`;

test('usage: --help on every subcommand exits 0, bad usage exits 2', async () => {
  const top = await chorus(['--help']);
  assert.equal(top.code, 0);
  assert.match(top.stdout, /rolling-restart/);
  for (const c of ['status', 'nodes', 'node', 'rolling-restart', 'logs', 'append', 'read', 'tail',
    'delete', 'meta', 'bench']) {
    const r = await chorus([c, '--help']);
    assert.equal(r.code, 0, `${c} --help: ${r.stderr}`);
    assert.match(r.stdout, new RegExp(`usage: chorus ${c}`));
  }
  for (const args of [[], ['frobnicate'], ['read'], ['read', 's', '--count', 'x'],
    ['append', 's', 't', '{not json'], ['meta', 's', '--set', '[1]'], ['node', 'jump', 'n1'],
    ['append', 's', 't', '--expected-version', 'sometimes'], ['--seed', 'host:0', 'status']]) {
    const r = await chorus(args);
    assert.equal(r.code, 2, `chorus ${args.join(' ')} gave ${r.code}: ${r.stderr}`);
    assert.ok(r.stderr.length > 0, 'an explanation on stderr');
  }
});

test('status shows the cluster: one leader, two followers, the manager; lag per node', async () => {
  const s = await json(['status']);
  const nodesSeen = s.members.filter((x) => x.state !== 'Manager');
  assert.equal(nodesSeen.length, 3);
  assert.equal(nodesSeen.filter((x) => x.state === 'Leader').length, 1);
  assert.ok(s.members.some((x) => x.state === 'Manager'));
  assert.ok(nodesSeen.every((x) => typeof x.writerCheckpoint === 'number' && x.lagBytes >= 0));
  assert.equal(s.leader, nodesSeen.find((x) => x.state === 'Leader').externalTcp);
  const human = await chorus(['status']);
  assert.equal(human.code, 0);
  assert.match(human.stdout, /leader 127\.0\.0\.1:\d+/);
  assert.match(human.stdout, /STATE\s+ALIVE\s+TCP/);
  const nowhere = await chorus(['--seed', '127.0.0.1:1', 'status'], { seeded: false });
  assert.equal(nowhere.code, 1, 'no seed answers: the operation failed');
  const viaEnv = await chorus(['status', '--json'],
    { seeded: false, env: { CHORUS_SEEDS: `127.0.0.1:1,${m.ip}:${m.extHttpPort}` } });
  assert.equal(viaEnv.code, 0, `CHORUS_SEEDS with one dead seed: ${viaEnv.stderr}`);
  assert.equal(JSON.parse(viaEnv.stdout).leader, s.leader);
});

test('append, read forward and backward, expected versions, stdin data', async () => {
  const s = stream('cli-rw');
  const first = await json(['append', s, 'Created', '{"a":1}', '--expected-version', 'no-stream']);
  assert.equal(first.eventNumber, 0);
  const second = await json(['append', s, 'Updated', '-', '--expected-version', '0'],
    { input: '{"b":2}' });
  assert.equal(second.eventNumber, 1);
  const wrong = await chorus(['append', s, 'Late', '{}', '--expected-version', '0']);
  assert.equal(wrong.code, 1);
  assert.match(wrong.stderr, /WrongExpectedVersion/);
  const forward = await json(['read', s]);
  assert.deepEqual(forward.events.map((e) => [e.eventNumber, e.eventType]), [[0, 'Created'],
    [1, 'Updated']]);
  assert.deepEqual(forward.events[1].data, { b: 2 });
  const backward = await json(['read', s, '--backward', '--count', '1']);
  assert.deepEqual(backward.events.map((e) => e.eventNumber), [1]);
  const from = await json(['read', s, '--from', '1']);
  assert.deepEqual(from.events.map((e) => e.eventNumber), [1]);
  const human = await chorus(['read', s]);
  assert.equal(human.code, 0);
  assert.match(human.stdout, /Created/);
  const missing = await chorus(['read', stream('cli-missing')]);
  assert.equal(missing.code, 1);
  assert.match(missing.stderr, /not found/);
});

test('meta set and get; access rules from metadata are enforced for other users', async () => {
  const s = stream('cli-meta');
  await json(['append', s, 'E', '{}']);
  const none = await json(['meta', s]);
  assert.equal(none.metastreamVersion, -1);
  assert.equal(none.metadata, null);
  const set = await json(['meta', s, '--set', '{"$maxCount":5,"owner":"ops"}']);
  assert.equal(set.metastreamVersion, 0);
  const got = await json(['meta', s]);
  assert.deepEqual(got.metadata, { $maxCount: 5, owner: 'ops' });
  await json(['meta', s, '--set', '{"$acl":{"$r":"$admins"}}']);
  const denied = await chorus(['read', s]);
  assert.equal(denied.code, 1, 'anonymous read of an admin-only stream');
  assert.match(denied.stderr, /AccessDenied/);
  assert.equal((await json(['read', s], { auth: true })).events.length, 1);
  const badLogin = await chorus(['--user', 'admin', '--password', 'wrong', 'read', s]);
  assert.equal(badLogin.code, 1);
  assert.match(badLogin.stderr, /NotAuthenticated|uthentication/);
});

test('delete: soft delete hides the stream, hard delete forbids writes', async () => {
  const s = stream('cli-del');
  await json(['append', s, 'E', '{}']);
  const soft = await json(['delete', s]);
  assert.equal(soft.hard, false);
  assert.equal((await chorus(['read', s])).code, 1);
  const h = stream('cli-hard');
  await json(['append', h, 'E', '{}']);
  assert.equal((await json(['delete', h, '--hard'])).hard, true);
  const meta = await json(['meta', h]);
  assert.equal(meta.isDeleted, true);
  const write = await chorus(['append', h, 'E', '{}']);
  assert.equal(write.code, 1);
  assert.match(write.stderr, /StreamDeleted/);
});

test('tail prints new events as JSON lines and stops cleanly on Ctrl-C', { timeout: 60000 },
  async () => {
    const s = stream('cli-tail');
    const t = start(['tail', s, '--json']);
    await waitFor(() => t.stderr.includes('tailing'), { timeoutMs: 15000, what: 'tail to subscribe' });
    await json(['append', s, 'One', '{"n":1}']);
    await json(['append', s, 'Two', '{"n":2}']);
    await waitFor(() => t.lines.length >= 2, { timeoutMs: 15000, what: 'two tailed events' });
    const events = t.lines.slice(0, 2).map((l) => JSON.parse(l));
    assert.deepEqual(events.map((e) => [e.eventType, e.data.n]), [['One', 1], ['Two', 2]]);
    t.proc.kill('SIGINT');
    const { code } = await t.exited;
    assert.equal(code, 0, `tail exit: ${t.stderr}`);
    const all = start(['tail', '$all', '--json'], { auth: true });
    await waitFor(() => all.stderr.includes('tailing'), { timeoutMs: 15000, what: '$all tail' });
    await json(['append', s, 'Three', '{"n":3}']);
    await waitFor(() => all.lines.some((l) => JSON.parse(l).eventType === 'Three'),
      { timeoutMs: 15000, what: 'the event on $all' });
    all.proc.kill('SIGTERM');
    assert.equal((await all.exited).code, 0);
    const denied = start(['tail', '$all']);
    assert.equal((await denied.exited).code, 1, 'anonymous $all subscription is refused');
  });

test('nodes lists the manager\'s nodes; node stop/start need valid credentials', { timeout: 90000 },
  async () => {
    const list = await json(['nodes']);
    assert.equal(list.managers.length, 1);
    const names = list.managers[0].nodes.map((n) => n.name).sort();
    assert.deepEqual(names, ['n1', 'n2', 'n3']);
    const human = await chorus(['nodes']);
    assert.match(human.stdout, /n1.*Running/);
    const s = await json(['status']);
    const leaderPort = Number(s.leader.split(':')[1]);
    const follower = list.managers[0].nodes.find((n) => n.ports.extTcp !== leaderPort).name;
    const anonymous = await chorus(['node', 'stop', follower]);
    assert.equal(anonymous.code, 2, 'no credentials: bad usage');
    const wrong = await chorus(['--user', 'admin', '--password', 'nope', 'node', 'stop', follower]);
    assert.equal(wrong.code, 1, 'refused by the manager');
    assert.match(wrong.stderr, /401/);
    assert.equal((await m.nodeInfo(follower)).state, 'Running');
    const stopped = await json(['node', 'stop', follower], { auth: true });
    assert.equal(stopped.ok, true);
    assert.equal((await m.nodeInfo(follower)).state, 'Stopped');
    await json(['node', 'start', follower], { auth: true });
    await waitFor(async () => (await m.nodeInfo(follower)).state === 'Running',
      { timeoutMs: 20000, what: `${follower} running again` });
    const unknown = await chorus(['node', 'restart', 'nope'], { auth: true });
    assert.equal(unknown.code, 1);
    assert.match(unknown.stderr, /no manager runs a node named 'nope'/);
    await m.waitForCluster(2);
    const resignFollower = await chorus(['node', 'resign', follower], { auth: true });
    assert.equal(resignFollower.code, 1, 'a follower cannot resign');
  });

test('logs prints a node\'s output; -f follows it', { timeout: 60000 }, async () => {
  const logs = await json(['logs', 'n1', '--lines', '5'], { auth: true });
  assert.ok(Array.isArray(logs.lines) && logs.lines.length > 0 && logs.lines.length <= 5);
  const f = start(['logs', 'n1', '-f', '--lines', '3'], { auth: true });
  await waitFor(() => f.lines.length >= 1, { timeoutMs: 15000, what: 'followed log lines' });
  f.proc.kill('SIGINT');
  await f.exited;
});

test('bench write and read report their figures as JSON', { timeout: 120000 }, async () => {
  const w = await json(['bench', 'write', '--events', '300', '--connections', '4', '--batch', '3']);
  assert.equal(w.phase, 'write');
  assert.equal(w.events, 300);
  assert.equal(w.errors, 0);
  assert.ok(w.events_per_s > 0 && w.p50_ms > 0);
  // The server's CPU, from each node's /stats through the manager's gossip: all three nodes.
  assert.equal(w.server_nodes, 3, `server CPU: ${w.server_cpu_unknown}`);
  assert.ok(w.server_cpu_s > 0 && w.server_cpu_us_per_event > 0);
  assert.equal(Object.keys(w.server_cpu_s_by_node).length, 3);
  const r = await json(['bench', 'read', '--fill', '500', '--page', '100']);
  assert.equal(r.phase, 'read-stream');
  assert.equal(r.events, 500);
  assert.equal(r.errors, 0);
  const human = await chorus(['bench', 'write', '--events', '50', '--connections', '2']);
  assert.equal(human.code, 0, human.stderr);
  assert.match(human.stdout, /PHASE\s+CONNS\s+EVENTS/);
  assert.match(human.stdout, /server CPU: [\d.]+ s on 3 node\(s\), [\d.]+ us per event/);
});

test('a client seeded with the manager keeps writing while the leader is SIGKILLed',
  { timeout: 120000 }, async () => {
    const s = await json(['status']);
    const leaderPort = Number(s.leader.split(':')[1]);
    const leader = (await m.nodes()).find((n) => n.ports.extTcp === leaderPort);
    const prefix = stream('cli-failover');
    const b = start(['bench', 'write', '--duration-s', '12', '--connections', '2',
      '--max-retries=-1', '--max-reconnections=-1', '--stream-prefix', prefix, '--json']);
    // Writes are flowing before the kill: a stream of the run has events.
    await waitFor(async () => (await chorus(['read', `${prefix}-0`, '--count', '1'])).code === 0,
      { timeoutMs: 20000, what: 'the first benchmark writes' });
    process.kill(leader.pid, 'SIGKILL');
    const { code } = await b.exited;
    assert.equal(code, 0, `bench failed: ${b.stderr}`);
    const result = JSON.parse(b.lines.at(-1));
    assert.equal(result.errors, 0, 'every write succeeded, through retries');
    assert.ok(result.events > 0);
    const after = await json(['status']);
    assert.notEqual(after.leader, s.leader, 'a new leader took over');
  });

test('rolling-restart restarts every node and the cluster comes back', { timeout: 240000 },
  async () => {
    await m.waitForCluster(2, 60000);
    const refused = await chorus(['--user', 'admin', '--password', 'nope', 'rolling-restart']);
    assert.equal(refused.code, 1);
    const r = await json(['rolling-restart'], { auth: true, timeoutMs: 230000 });
    assert.equal(r.managers.length, 1);
    const restarted = r.managers[0].steps.filter((x) => x.action === 'restart').map((x) => x.node);
    assert.deepEqual(restarted.sort(), ['n1', 'n2', 'n3'], JSON.stringify(r.managers[0].steps));
    await m.waitForCluster(2, 60000);
  });
