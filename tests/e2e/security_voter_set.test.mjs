// Goal: prove issue 10's voter set with real processes. A 4th node that holds the cluster secret
// but has no seat in a 3-node cluster cannot vote, ack or count toward a commit: with both real
// followers stopped, the leader does not keep leading (or commit a write) on the 4th node's acks,
// no election succeeds with its votes, the nodes log the refusal, and once the followers return
// the cluster serves again with every acknowledged event. A member rebuilt with a wiped data
// folder (so a new instance id) is refused at its pinned endpoint, and rejoins once an admin
// moves its seat to the new id (POST /admin/members/replace, through the log); anonymous, $ops,
// malformed, unknown-seat, taken-id and own-seat replacements are refused and change nothing.
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { Cluster, ClusterNode, waitFor } from './lib/cluster.mjs';
import { freePort } from './lib/harness.mjs';
import { es, admin } from './lib/es.mjs';

const clusters = [];
const strays = [];
after(async () => {
  for (const n of strays) await n.cleanup().catch(() => {});
  for (const c of clusters) await c.cleanup();
});

// Keeps every line a node writes about voters (its output buffer keeps only the last 20 kB).
function recordVoterLines(node) {
  node.voterLines = [];
  const previous = node.onOutput;
  let partial = '';
  node.onOutput = (text) => {
    previous?.(text);
    partial += text;
    const lines = partial.split('\n');
    partial = lines.pop();
    node.voterLines.push(...lines.filter((l) => /voter/.test(l)));
  };
}
const logged = (nodes, re) => nodes.some((n) => n.voterLines.some((l) => re.test(l)));

const events = (n, tag) => Array.from({ length: n },
  (_, i) => es.createJsonEventData(crypto.randomUUID(), { i, tag }, null, 'voters'));

async function readTags(conn, stream) {
  const r = await conn.readStreamEventsForward(stream, 0, 4096, false, admin);
  return r.events.map((e) => JSON.parse(e.event.data.toString()).tag);
}

// An HTTP write to `node` that must be acknowledged within timeoutMs; its status, or 0 when the
// node did not answer in time.
async function httpWrite(node, stream, timeoutMs) {
  try {
    const res = await fetch(`http://${node.host}:${node.httpPort}/streams/${stream}`, {
      method: 'POST',
      body: JSON.stringify([{ eventId: crypto.randomUUID(), eventType: 'T', data: { x: 1 } }]),
      headers: { Authorization: `Basic ${Buffer.from('admin:changeit').toString('base64')}`,
        'Content-Type': 'application/vnd.eventstore.events+json', 'ES-RequireLeader': 'True' },
      signal: AbortSignal.timeout(timeoutMs),
    });
    return res.status;
  } catch {
    return 0;
  }
}

// A node of `cluster`'s shape (same secret, --cluster-size, the members as gossip seeds) that is
// not one of its members; it gets a data folder of its own.
async function strayNode(cluster) {
  const n = new ClusterNode(cluster, cluster.nodes.length, { memDb: false });
  n.tcpPort = await freePort();
  n.httpPort = await freePort();
  n.intTcpPort = await freePort();
  n.intHttpPort = await freePort();
  n.extraArgs = [`--cluster-size=${cluster.clusterSize}`, '--discover-via-dns=false',
    `--gossip-seed=${cluster.nodes.map((o) => o.intHttp).join(',')}`];
  strays.push(n);
  return n;
}

// A 3-node cluster on disk whose nodes' voter log lines are recorded; its leader and a client.
async function startCluster() {
  const cluster = new Cluster({ size: 3, memDb: false });
  clusters.push(cluster);
  await cluster.allocate();
  cluster.nodes.forEach(recordVoterLines);
  await cluster.start();
  const { leader } = await cluster.waitForLeader({ timeoutMs: 15000 });
  const conn = await cluster.connect();
  return { cluster, leader, conn };
}

test('a 4th node with the secret but no seat cannot vote, ack or count toward commit',
  { timeout: 120000 }, async () => {
    const { cluster, leader, conn } = await startCluster();
    const stream = `voters-${crypto.randomUUID()}`;
    await conn.appendToStream(stream, es.expectedVersion.any, events(20, 'before'), admin);

    const stray = await strayNode(cluster);
    await stray.start();
    const strayId = (await stray.self(2000)).instanceId;
    // Every member learns of it through gossip and refuses it a seat; the members it campaigns
    // with refuse its messages.
    const noSeat = new RegExp(`node ${strayId} at [0-9.:]+ is not a voter: all 3 seats`);
    await waitFor(() => cluster.nodes.every((n) => logged([n], noSeat)),
      { timeoutMs: 15000, what: 'each member logging that the 4th node has no seat' });
    await waitFor(() => logged(cluster.nodes, new RegExp(`node ${strayId} at [0-9.:]+, not a voter`)),
      { timeoutMs: 15000, what: 'a member refusing the 4th node\'s (pre-)vote requests' });
    // It never follows the leader, and the leader never counts it as a follower.
    await cluster.waitForLeader({ timeoutMs: 5000 });
    assert.notEqual((await stray.self(1000)).state, 'Follower');
    const stats = await (await fetch(`http://${leader.host}:${leader.httpPort}/stats`)).json();
    assert.ok(!stats.cluster.followers.some((f) => f.node === strayId),
      'the leader reports the 4th node as its follower');
    await conn.appendToStream(stream, es.expectedVersion.any, events(5, 'with-stray'), admin);

    // Both real followers stop: the leader and the 4th node are 2 of "3" if the 4th counted.
    const followers = cluster.nodes.filter((n) => n !== leader);
    await Promise.all(followers.map((n) => n.stop()));
    assert.notEqual(await httpWrite(leader, `${stream}-alone`, 8000), 201,
      'a write was acknowledged with only the leader and the 4th node holding it');
    // The leader steps down (it hears from no voter), and nobody leads with the 4th node's votes.
    await waitFor(async () => (await leader.self(500)).state !== 'Leader',
      { timeoutMs: 10000, what: 'the lone leader stepping down' });
    const watchUntil = Date.now() + 3000;  // ten election timeouts
    while (Date.now() < watchUntil) {
      const states = [(await leader.self(500)).state, (await stray.self(500)).state];
      assert.ok(!states.includes('Leader'), `a leader without a majority of voters: ${states}`);
      await new Promise((r) => setTimeout(r, 100));
    }

    // The followers return: one leader among the members, every acknowledged event there.
    await Promise.all(followers.map((n) => n.start()));
    await cluster.waitForLeader({ timeoutMs: 20000 });
    await conn.appendToStream(stream, es.expectedVersion.any, events(5, 'after'), admin);
    const tags = await readTags(conn, stream);
    assert.deepEqual(tags.filter((t) => t === 'before').length, 20);
    assert.deepEqual(tags.filter((t) => t === 'with-stray').length, 5);
    assert.deepEqual(tags.filter((t) => t === 'after').length, 5);
    assert.notEqual((await stray.self(1000)).state, 'Follower');
    assert.notEqual((await stray.self(1000)).state, 'Leader');
  });

// POST /admin/members/replace on `node` with `auth` ('' for none); { status, text }.
async function replaceMember(node, body, auth) {
  const headers = { 'Content-Type': 'application/json' };
  if (auth) headers.Authorization = `Basic ${Buffer.from(auth).toString('base64')}`;
  const res = await fetch(`http://${node.host}:${node.httpPort}/admin/members/replace`,
    { method: 'POST', headers, body: typeof body === 'string' ? body : JSON.stringify(body),
      signal: AbortSignal.timeout(20000) });
  return { status: res.status, text: await res.text() };
}

test('a member rebuilt with a wiped data folder is refused until an admin moves its seat to it',
  { timeout: 120000 }, async () => {
    const { cluster, leader, conn } = await startCluster();
    const stream = `voters-wipe-${crypto.randomUUID()}`;
    await conn.appendToStream(stream, es.expectedVersion.any, events(10, 'before'), admin);
    const member = cluster.nodes.find((n) => n !== leader);
    const other = cluster.nodes.find((n) => n !== leader && n !== member);
    const seat = `${member.host}:${member.intTcpPort}`;
    const oldId = fs.readFileSync(path.join(member.dbDir, 'instance-id'), 'utf8').trim();
    // The leader pinned the member (the pin file lists it with its id).
    const pins = fs.readFileSync(path.join(leader.dbDir, 'voters'), 'utf8');
    assert.match(pins, new RegExp(`${seat} ${oldId}`));

    await member.stop();
    for (const f of fs.readdirSync(member.dbDir)) {
      fs.rmSync(path.join(member.dbDir, f), { recursive: true, force: true });
    }
    await member.start();
    const newId = (await member.self(2000)).instanceId;
    assert.notEqual(newId, oldId, 'a wiped node makes a new instance id');
    const mismatch = new RegExp(`node ${newId} at [0-9.:]+ is not a voter: that endpoint's ` +
      `seat is pinned to instance ${oldId}`);
    await waitFor(() => logged([leader], mismatch),
      { timeoutMs: 15000, what: 'the leader refusing the rebuilt node its old seat' });
    // The two others keep serving; the rebuilt node does not follow.
    await conn.appendToStream(stream, es.expectedVersion.any, events(5, 'during'), admin);
    assert.notEqual((await member.self(1000)).state, 'Follower');

    // Only an admin may move a seat, and only a seat that exists to a node that does not vote.
    const move = { seat: oldId, instanceId: newId };
    assert.equal((await replaceMember(leader, move, '')).status, 401, 'anonymous');
    assert.equal((await replaceMember(leader, move, 'ops:changeit')).status, 403, '$ops');
    assert.equal((await replaceMember(leader, move, 'admin:wrong')).status, 401, 'bad password');
    assert.equal((await replaceMember(leader, '{"seat":', 'admin:changeit')).status, 400);
    const noSeat = await replaceMember(leader, { seat: crypto.randomUUID(), instanceId: newId },
      'admin:changeit');
    assert.equal(noSeat.status, 409, noSeat.text);
    assert.match(noSeat.text, /no seat/);
    const otherId = (await other.self(1000)).instanceId;
    const taken = await replaceMember(leader, { seat: oldId, instanceId: otherId },
      'admin:changeit');
    assert.equal(taken.status, 409, `a voter's id cannot take a second seat: ${taken.text}`);
    const own = await replaceMember(leader, { seat: (await leader.self(1000)).instanceId,
      instanceId: newId }, 'admin:changeit');
    assert.equal(own.status, 409, own.text);
    assert.match(fs.readFileSync(path.join(leader.dbDir, 'voters'), 'utf8'),
      new RegExp(`${seat} ${oldId}`), 'the refusals changed no seat');

    // The operator's fix, sent to a follower (it goes through the leader's log): the seat moves.
    const moved = await replaceMember(other, move, 'admin:changeit');
    assert.equal(moved.status, 200, moved.text);
    assert.deepEqual(JSON.parse(moved.text), { seat: { endpoint: seat, instanceId: oldId },
      successor: { endpoint: seat, instanceId: newId } });
    // Every member applies it from the log and keeps it in its pin file.
    for (const n of [leader, other]) {
      await waitFor(() => fs.readFileSync(path.join(n.dbDir, 'voters'), 'utf8')
        .includes(`${seat} ${newId}`), { timeoutMs: 10000, what: `${n.name} moving the seat` });
    }
    // It follows (waitForLeader wants every live node a Follower) and catches up.
    const { leader: now } = await cluster.waitForLeader({ timeoutMs: 20000 });
    const committed = (await now.self(1000)).lastCommitPosition;
    await waitFor(async () => (await member.self(500)).writerCheckpoint >= committed,
      { timeoutMs: 15000, what: 'the new member catching up with the leader' });
    const tags = await readTags(conn, stream);
    assert.equal(tags.length, 15);
    // Moved once: asking again is refused (the old id holds no seat any more).
    const again = await replaceMember(leader, move, 'admin:changeit');
    assert.equal(again.status, 409, again.text);
  });
