// Goal: prove hole 3 of issue 10 is closed. A program that speaks the internal TCP protocol
// (tests/e2e/lib/internal_peer.mjs) but lacks the cluster secret cannot vote (epoch INT64_MAX),
// ack or subscribe as an invented peer, or forward a request as admin: the node closes its
// connection before reading a message. An insider with the secret is still held to the rules:
// out-of-range fields and messages from a node id other than the one its connection proved are
// refused, and an invented peer's acks are dropped. A node with another secret cannot join.
// Throughout, the cluster keeps its leader and epoch, no node restarts, and no event is lost.
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import crypto from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { Cluster, waitFor } from './lib/cluster.mjs';
import { clusterSecretFile } from './lib/harness.mjs';
import { es, admin } from './lib/es.mjs';
import { InternalPeer, INT64_MAX, readSecret } from './lib/internal_peer.mjs';

const clusters = [];
const dirs = [];
after(async () => {
  for (const c of clusters) await c.cleanup();
  for (const d of dirs) fs.rmSync(d, { recursive: true, force: true });
});

const nodeId = (n) => `${n.host}:${n.intTcpPort}`;
const base = (n, from) => ({ from, to: nodeId(n), cluster: 'default' });
const events = (n, tag) => Array.from({ length: n },
  (_, i) => es.createJsonEventData(crypto.randomUUID(), { i, tag }, null, 'hole3'));

async function readAll(conn, stream) {
  const r = await conn.readStreamEventsForward(stream, 0, 4096, false, admin);
  return r.events.map((e) => JSON.parse(e.event.data.toString()));
}

test('hole 3: without the secret nobody joins, votes, acks or forwards', { timeout: 120000 },
  async () => {
    const cluster = new Cluster({ size: 3 });
    clusters.push(cluster);
    await cluster.start();
    const { leader, epoch } = await cluster.waitForLeader({ timeoutMs: 10000 });
    const followers = cluster.nodes.filter((n) => n !== leader);
    const pids = cluster.nodes.map((n) => n.pid);
    const conn = await cluster.connect();
    const stream = `hole3-${crypto.randomUUID()}`;
    await conn.appendToStream(stream, es.expectedVersion.any, events(20, 'before'), admin);

    // Outsiders: each message is sent as it would be by a real member, without the handshake.
    const forgeries = [
      { ...base(followers[0], nodeId(leader)),
        voteRequest: { epoch: INT64_MAX, lastEpoch: INT64_MAX, logEnd: INT64_MAX, priority: 0,
          pre: false } },
      { ...base(leader, nodeId(followers[0])),
        appendAck: { epoch, logEnd: INT64_MAX, durableEnd: INT64_MAX, session: 1 } },
      { ...base(leader, '127.0.0.1:1'), subscribe: { epoch, logEnd: 0, epochs: [], session: 7 } },
      { ...base(followers[1], nodeId(leader)),
        append: { epoch: INT64_MAX, start: '1000000000', sync: true, entries: [], commitEnd: 0,
          session: 0 } },
      { ...base(leader, nodeId(followers[0])),
        forward: { requestId: 1, login: 'admin', groups: ['$admins'], command: 0x82,
          payload: Buffer.from('x') } },
    ];
    for (const message of forgeries) {
      const target = cluster.nodes.find((n) => nodeId(n) === message.to);
      const peer = new InternalPeer(target.host, target.intTcpPort);
      await peer.connected;
      peer.send(message);
      assert.ok(await peer.closedWithin(5000),
        `${Object.keys(message).pop()} without the secret: connection still open`);
      assert.equal(peer.received.length, 0, 'nothing answered before the handshake');
    }
    // A wrong secret fails the handshake: the node's proof does not verify, and a made-up proof
    // gets the connection closed.
    const wrong = new InternalPeer(leader.host, leader.intTcpPort);
    assert.equal(await wrong.handshake(crypto.randomBytes(32).toString('hex'), 'default',
      nodeId(followers[0])), false);
    wrong.write(crypto.randomBytes(32));
    assert.ok(await wrong.closedWithin(5000), 'a wrong proof keeps the connection');

    // An insider holding the secret: proves itself, then breaks the rules.
    const key = readSecret(clusterSecretFile());
    const invented = new InternalPeer(leader.host, leader.intTcpPort);
    assert.ok(await invented.handshake(key, 'default', '127.0.0.1:1'), 'handshake with the secret');
    for (let i = 0; i < 5; i++) {
      invented.send({ ...base(leader, '127.0.0.1:1'),
        appendAck: { epoch, logEnd: INT64_MAX, durableEnd: INT64_MAX, session: 1 } });
    }
    invented.send({ ...base(leader, '127.0.0.1:1'),
      voteRequest: { epoch: INT64_MAX, lastEpoch: 0, logEnd: 0, priority: 0, pre: false } });
    assert.ok(await invented.closedWithin(5000), 'epoch INT64_MAX from an insider was read');
    const impostor = new InternalPeer(leader.host, leader.intTcpPort);
    assert.ok(await impostor.handshake(key, 'default', nodeId(followers[0])));
    impostor.send({ ...base(leader, nodeId(followers[1])),
      appendAck: { epoch, logEnd: 0, durableEnd: 0, session: 1 } });
    assert.ok(await impostor.closedWithin(5000), 'a message from another id than proved');

    // The cluster kept its leader and epoch, nobody restarted, and nothing was lost.
    const after = await cluster.waitForLeader({ timeoutMs: 5000 });
    assert.equal(after.leader, leader);
    assert.equal(after.epoch, epoch);
    assert.deepEqual(cluster.nodes.map((n) => n.pid), pids);
    await conn.appendToStream(stream, es.expectedVersion.any, events(5, 'after'), admin);
    const read = await readAll(conn, stream);
    assert.equal(read.length, 25);
    assert.equal(read.filter((e) => e.tag === 'before').length, 20);
    // The refusals were logged by the node.
    assert.match(leader.output, /refused/);
  });

test('hole 3: a node with another secret cannot join the cluster', { timeout: 60000 },
  async () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'chorus-hole3-'));
    dirs.push(dir);
    const otherSecret = path.join(dir, 'other-secret');
    fs.writeFileSync(otherSecret, crypto.randomBytes(32).toString('hex'), { mode: 0o600 });
    const cluster = new Cluster({ size: 3 });
    clusters.push(cluster);
    await cluster.allocate();
    const outsider = cluster.nodes[2];
    outsider.secretFile = otherSecret;
    await cluster.start();
    // The two members elect a leader between them; the outsider never follows it.
    const insiders = cluster.nodes.slice(0, 2);
    const leaderEntry = await waitFor(async () => {
      const views = await Promise.all(insiders.map((n) => n.self(500)));
      return views.find((v) => v.state === 'Leader') && views.some((v) => v.state === 'Follower')
        ? views.find((v) => v.state === 'Leader') : false;
    }, { timeoutMs: 15000, what: 'a leader among the two nodes that share the secret' });
    await new Promise((r) => setTimeout(r, 2000)); // the outsider's chance to join, if it could
    const outsiderSelf = await outsider.self(1000);
    assert.notEqual(outsiderSelf.state, 'Follower', 'the outsider follows the leader');
    assert.notEqual(outsiderSelf.state, 'Leader');
    const leaderNode = insiders.find((n) => n.intHttpPort === leaderEntry.internalHttpPort);
    const lv = await leaderNode.gossip(1000);
    const seen = lv.members.find((m) => m.internalHttpPort === outsider.intHttpPort);
    assert.ok(!seen || seen.state !== 'Follower', 'the leader lists the outsider as a follower');
    assert.match(leaderNode.output + outsider.output, /refused/);
  });
