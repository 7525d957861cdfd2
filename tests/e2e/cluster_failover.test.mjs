// Proves (issue 4, real processes on loopback, nodes on disk) failover and durability of a 3-node
// Chorus cluster driven by unmodified node-eventstore-client connections with gossip seeds:
// - SIGKILL of the leader under a continuous write load (several writers, unique event ids):
//   a new leader is elected and the client's first acknowledged write comes within 3 s
//   (measured and printed for each kill); the killed node restarts on its folder and rejoins;
//   every acknowledged event is then present exactly once, at its acknowledged stream and
//   number, on every node (each read directly over tcp:// with requireMaster=false), streams
//   are contiguous, no event that was never written appears, and all nodes hold the same.
// - SIGKILL of a follower: writes go on without a failure; restarted on the same folder it
//   catches up (the same writerCheckpoint as the leader in gossip) and holds the same events.
// - SIGKILL of two of three nodes: no write is acknowledged (short operation timeout, retries);
//   one node restarted: writes resume.
// - SIGKILL of the whole cluster at once under load and restart: every acknowledged event kept.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { Cluster, describeViews, waitFor } from './lib/cluster.mjs';
import { ANY, num, readAll, streamName, jsonEvent, withDeadline } from './lib/es.mjs';

const STREAMS = Array.from({ length: 8 }, (_, i) => streamName(`fo${i}`));
const WRITERS = 6;
const FAILOVER_MS = 3000;
const LEADER_KILLS = 3;

const cluster = new Cluster({ memDb: false });
const attempted = new Map(); // id -> stream (every event id ever sent)
const acked = []; // { id, stream, number, at, port }
const figures = [];

// Load connections: gossip seeds, generous reconnection so they ride through failovers.
const loadSettings = {
  maxReconnections: 200, reconnectionDelay: 100, maxRetries: 20,
  operationTimeout: 5000, failOnNoServerResponse: true, maxDiscoverAttempts: 20,
};
let loadConns = [];

before(async () => {
  await cluster.start();
  await cluster.waitForLeader({ timeoutMs: 10000 });
  for (let i = 0; i < WRITERS; i++) {
    const c = await cluster.connect({ settings: loadSettings, name: `writer-${i}` });
    c.on('connected', (ep) => { c.endpoint = ep; });
    c.endpoint = JSON.parse(c.events.find((e) => e.ev === 'connected').x);
    loadConns.push(c);
  }
});

after(async () => {
  if (figures.length) console.log(`# failover figures (leader SIGKILL -> ...): ${JSON.stringify(figures)}`);
  await cluster.cleanup();
});

// A continuous write load: each writer appends one new event (fresh id) at a time to a random
// stream; every acknowledgement is recorded with the stream, number and the node it came from.
class Load {
  constructor(conns) {
    this.conns = conns;
    this.stopped = false;
    this.failures = [];
    this.acks = 0;
    this.listeners = [];
  }

  start() {
    this.loops = this.conns.map((conn) => this.loop(conn));
    return this;
  }

  async loop(conn) {
    while (!this.stopped) {
      const stream = STREAMS[Math.floor(Math.random() * STREAMS.length)];
      const ev = jsonEvent({ at: Date.now() }, 'Failover');
      attempted.set(ev.eventId, stream);
      try {
        const r = await conn.appendToStream(stream, ANY, ev);
        const a = { id: ev.eventId, stream, number: num(r.nextExpectedVersion), at: Date.now(),
          port: conn.endpoint?.port };
        acked.push(a);
        this.acks++;
        for (const l of this.listeners) l(a);
      } catch (e) {
        this.failures.push({ at: Date.now(), error: `${e.name}: ${e.message.slice(0, 200)}` });
        // Back off a little after a failure so a leaderless spell is not a busy loop.
        await new Promise((r) => setTimeout(r, 50));
      }
    }
  }

  // Resolves once `n` more acknowledgements arrived (deadline in ms).
  moreAcks(n, ms, what) {
    const target = this.acks + n;
    return waitFor(() => this.acks >= target, { timeoutMs: ms, what: what || `${n} more acks` });
  }

  async stop() {
    this.stopped = true;
    await Promise.all(this.loops);
  }
}

// Reads every stream on `node` directly (tcp://, requireMaster=false): Map stream -> [[id, n]].
async function contentOf(node) {
  const conn = await cluster.connect({ node, settings: { requireMaster: false, maxReconnections: 0 } });
  try {
    const out = new Map();
    for (const s of STREAMS) {
      const { status, events } = await readAll(conn, s);
      out.set(s, status === 'success' ? events.map((e) => [e.event.eventId, num(e.event.eventNumber)]) : []);
    }
    return out;
  } finally {
    conn.close();
    cluster.conns = cluster.conns.filter((c) => c !== conn);
  }
}

// Every live node holds the same events; every acknowledged event exactly once at its acked
// stream/number; streams contiguous from 0; no id twice; no id that was never attempted.
async function verifyAllNodes(label, { timeoutMs = 15000 } = {}) {
  const nodes = cluster.live();
  let contents;
  // Followers may trail the leader briefly: wait until all nodes read the same.
  await waitFor(async () => {
    contents = await Promise.all(nodes.map(contentOf));
    const ref = JSON.stringify([...contents[0]]);
    return contents.every((c) => JSON.stringify([...c]) === ref);
  }, { timeoutMs, intervalMs: 200, what: `${label}: identical content on ${nodes.map((n) => n.name)}` })
    .catch((e) => {
      const sizes = contents?.map((c, i) => `${nodes[i].name}: ${[...c.values()].map((v) => v.length)}`);
      throw new Error(`${e.message}\nper-stream sizes: ${JSON.stringify(sizes)}`);
    });
  for (let i = 0; i < nodes.length; i++) {
    const where = `${label} on ${nodes[i].name}`;
    const byId = new Map();
    for (const [s, evs] of contents[i]) {
      evs.forEach(([id, n], k) => {
        assert.equal(n, k, `${where}: ${s} must be numbered contiguously (at ${k} found ${n})`);
        assert.ok(!byId.has(id), `${where}: event ${id} stored twice (${JSON.stringify(byId.get(id))} and ${s}/${n})`);
        assert.equal(attempted.get(id), s, `${where}: event ${id} in ${s} was never written there`);
        byId.set(id, { stream: s, number: n });
      });
    }
    const missing = acked.filter((a) => !byId.has(a.id));
    assert.equal(missing.length, 0, `${where}: ${missing.length} of ${acked.length} acknowledged events lost, ` +
      `e.g. ${JSON.stringify(missing.slice(0, 5))}`);
    const moved = acked.filter((a) => byId.get(a.id).stream !== a.stream || byId.get(a.id).number !== a.number);
    assert.equal(moved.length, 0, `${where}: acknowledged events at other numbers: ${JSON.stringify(moved.slice(0, 5).map((a) => [a, byId.get(a.id)]))}`);
  }
  // At most one leader per epoch: no epoch announced twice ("leading epoch N" lines, restarts included).
  const announced = cluster.nodes.flatMap((n) => n.leading.map((l) => `${l.epoch}`));
  assert.equal(new Set(announced).size, announced.length,
    `${label}: an epoch was announced twice: ${JSON.stringify(cluster.nodes.map((n) => [n.name, n.leading.map((l) => l.epoch)]))}`);
  const total = [...contents[0].values()].reduce((n, v) => n + v.length, 0);
  console.log(`# ${label}: ${acked.length} acknowledged of ${attempted.size} attempted; ${total} stored, identical on ${nodes.length} nodes`);
}

test('leader SIGKILL under write load: new leader and first acknowledged write within 3 s; no acknowledged event lost or duplicated', { timeout: 120000 }, async () => {
  for (let k = 0; k < LEADER_KILLS; k++) {
    const { leader: old, epoch } = await cluster.waitForLeader({ timeoutMs: 10000 });
    const load = new Load(loadConns).start();
    await load.moreAcks(200, 15000, 'acks before the kill');
    assert.equal(load.failures.length, 0, `failures before the kill: ${JSON.stringify(load.failures.slice(0, 3))}`);
    // Kill from an ack callback so writes are in flight at that moment.
    const killAt = await new Promise((resolve) => {
      load.listeners.push(() => {
        if (load.listeners.length === 0) return;
        load.listeners = [];
        process.kill(old.pid, 'SIGKILL');
        resolve(Date.now());
      });
    });
    const firstNew = new Promise((resolve) => {
      load.listeners.push((a) => { if (a.port !== old.tcpPort && a.at >= killAt) resolve(a.at); });
    });
    await old.exited;
    let firstAckAt;
    try {
      firstAckAt = await withDeadline(firstNew, 15000, 'the first acknowledged write after the leader kill');
    } catch (e) {
      await load.stop();
      assert.fail(`${e.message}\nfailures: ${JSON.stringify(load.failures.slice(-5))}\n` +
        `${describeViews(await cluster.views())}\n${cluster.diagnostics(2000)}`);
    }
    const next = await cluster.waitForLeader({ timeoutMs: 10000, what: 'the new leader agreed by both survivors' });
    const leadingAt = next.leader.leading.find((l) => l.epoch === next.epoch)?.at;
    const fig = { kill: k + 1, oldEpoch: epoch, newEpoch: next.epoch, leaderLineMs: leadingAt - killAt,
      firstAckMs: firstAckAt - killAt, failedWrites: load.failures.length };
    figures.push(fig);
    console.log(`# leader kill ${k + 1}: ${JSON.stringify(fig)}`);
    await load.moreAcks(100, 10000, 'acks after the failover');
    await load.stop();
    assert.ok(next.epoch > epoch, `new epoch ${next.epoch} > ${epoch}`);
    assert.notEqual(next.leader, old);
    // Restart the old leader on its folder: it rejoins as a follower.
    await cluster.restart(old);
    const again = await cluster.waitForLeader({ timeoutMs: 10000, what: 'three nodes agreed after the old leader rejoined' });
    assert.equal(again.leader, next.leader, 'the rejoining node does not depose the new leader');
    await verifyAllNodes(`after leader kill ${k + 1}`);
    assert.ok(fig.firstAckMs <= FAILOVER_MS,
      `first acknowledged write ${fig.firstAckMs} ms after the leader kill (limit ${FAILOVER_MS})`);
  }
});

test('follower SIGKILL: writes go on; restarted on its folder it catches up to the leader\'s writer checkpoint', { timeout: 60000 }, async () => {
  const { leader } = await cluster.waitForLeader({ timeoutMs: 10000 });
  const follower = cluster.live().find((n) => n !== leader);
  const load = new Load(loadConns).start();
  await load.moreAcks(100, 10000, 'acks before the follower kill');
  await follower.kill();
  await load.moreAcks(300, 10000, 'acks with a follower dead');
  await load.stop();
  assert.equal(load.failures.length, 0, `writes failed with one follower dead: ${JSON.stringify(load.failures.slice(0, 5))}`);
  await cluster.restart(follower);
  const t0 = Date.now();
  await waitFor(async () => {
    const [l, f] = await Promise.all([leader.self(), follower.self()]);
    return f.state === 'Follower' && f.writerCheckpoint === l.writerCheckpoint &&
      f.lastCommitPosition === l.lastCommitPosition;
  }, { timeoutMs: 10000, intervalMs: 100, what: 'the restarted follower at the leader\'s writer checkpoint' })
    .catch(async (e) => assert.fail(`${e.message}\n${describeViews(await cluster.views())}`));
  console.log(`# restarted follower caught up ${Date.now() - t0} ms after its restart`);
  await cluster.waitForLeader({ timeoutMs: 5000 });
  await verifyAllNodes('after the follower restart');
});

test('two of three killed: no write is acknowledged; one restarted: writes resume', { timeout: 90000 }, async () => {
  const { leader } = await cluster.waitForLeader({ timeoutMs: 10000 });
  const [f1, f2] = cluster.live().filter((n) => n !== leader);
  await Promise.all([f1.kill(), f2.kill()]);
  const probe = await cluster.connect({ node: leader,
    settings: { operationTimeout: 1500, failOnNoServerResponse: true, maxRetries: 2, maxReconnections: 5 } });
  const outcomes = [];
  const probes = [];
  for (let i = 0; i < 3; i++) {
    const stream = STREAMS[i];
    const ev = jsonEvent({ probe: i }, 'QuorumLost');
    attempted.set(ev.eventId, stream);
    const p = probe.appendToStream(stream, ANY, ev).then(
      (r) => { outcomes.push({ i, acked: true, at: Date.now(), number: num(r.nextExpectedVersion) }); },
      (e) => { outcomes.push({ i, acked: false, at: Date.now(), error: `${e.name}: ${e.message.slice(0, 120)}` }); });
    probes.push(p);
    await withDeadline(p, 20000, `write ${i} without a quorum to fail`).catch(() => {});
  }
  const restartAt = Date.now();
  assert.equal(outcomes.filter((o) => o.acked).length, 0,
    `a write was acknowledged without a quorum: ${JSON.stringify(outcomes)}`);
  assert.equal(outcomes.length, 3, `each write without a quorum must fail (got ${JSON.stringify(outcomes)})`);
  const alone = await leader.self().catch((e) => ({ state: `no answer: ${e.message}` }));
  console.log(`# without a quorum: the remaining node is ${alone.state}; writes: ${JSON.stringify(outcomes.map((o) => o.error.slice(0, 60)))}`);
  // The load is not running here: nothing can be acknowledged between now and the restart.
  await cluster.restart(f1);
  const t0 = Date.now();
  const load = new Load(loadConns).start();
  await load.moreAcks(50, 15000, 'acks after one node restarted').catch(async (e) => {
    await load.stop();
    assert.fail(`${e.message}\nfailures: ${JSON.stringify(load.failures.slice(-5))}\n${describeViews(await cluster.views())}`);
  });
  console.log(`# writes resumed ${Date.now() - t0} ms after the restart`);
  await load.stop();
  assert.ok(outcomes.every((o) => !o.acked || o.at >= restartAt));
  await cluster.restart(f2);
  await cluster.waitForLeader({ timeoutMs: 10000 });
  await verifyAllNodes('after the quorum loss');
});

test('whole-cluster SIGKILL under write load and restart keeps every acknowledged event', { timeout: 90000 }, async () => {
  await cluster.waitForLeader({ timeoutMs: 10000 });
  const load = new Load(loadConns).start();
  await load.moreAcks(300, 15000, 'acks before the whole-cluster kill');
  await new Promise((resolve) => {
    load.listeners.push(() => {
      if (load.listeners.length === 0) return;
      load.listeners = [];
      for (const n of cluster.live()) process.kill(n.pid, 'SIGKILL');
      resolve();
    });
  });
  await Promise.all(cluster.nodes.map((n) => n.exited));
  // The load's writes now fail (nothing to talk to); stop it before the restart so every
  // acknowledgement counted came before the kill.
  for (const c of loadConns) c.close();
  await load.stop();
  const ackedBefore = acked.length;
  await Promise.all(cluster.nodes.map((n) => cluster.restart(n)));
  await cluster.waitForLeader({ timeoutMs: 10000, what: 'a leader after the whole-cluster restart' });
  assert.equal(acked.length, ackedBefore);
  await verifyAllNodes('after the whole-cluster SIGKILL and restart');
});
