// Goal: prove hole 4 of issue 10 is closed. Gossip pushed without the cluster secret's signature
// is refused (401) by nodes and by the manager; a signed view naming a member with the leader's
// instance id but an attacker's endpoints is ignored, so followers still pass HTTP writes (with
// the client's Authorization header) to the real leader and the manager's client-facing gossip
// names the real leader; a flood of members stays bounded; and the manager relay never POSTs to
// an address that a pushed view names. The cluster keeps serving and loses nothing.
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import crypto from 'node:crypto';
import http from 'node:http';
import { Manager, ADMIN, waitFor } from './manager_harness.mjs';
import { clusterSecretFile } from './lib/harness.mjs';
import { readSecret, signRequest } from './lib/internal_peer.mjs';

const nodes = ['n1', 'n2', 'n3'].map((name) => ({ name, options: { ClusterSize: 3 } }));
const m = new Manager({ nodes, settings: { GossipIntervalMs: 200 } });
// The attacker's HTTP server records who calls it: a proxied client write (with the client's
// Authorization header) or a POST from the manager's relay would be a leak. (Nodes gossip with
// every member a signed view names, as EventStore's do; only insiders can name one.)
const hits = [];
const attacker = http.createServer((req, res) => {
  let body = '';
  req.on('data', (d) => { body += d; });
  req.on('end', () => {
    let sender;
    try { sender = JSON.parse(body).serverPort; } catch {}
    hits.push({ method: req.method, url: req.url, auth: req.headers.authorization, sender });
    res.writeHead(404);
    res.end();
  });
});

after(async () => {
  await m.cleanup();
  attacker.close();
});

async function push(host, port, view, { sign = true, secret } = {}) {
  const body = typeof view === 'string' ? view : JSON.stringify(view);
  const headers = { 'Content-Type': typeof view === 'string' ? 'text/plain' : 'application/json' };
  if (sign) {
    headers['X-Chorus-Auth'] =
      signRequest(secret ?? readSecret(clusterSecretFile()), 'POST', '/gossip', body);
  }
  return fetch(`http://${host}:${port}/gossip`, { method: 'POST', body, headers,
    signal: AbortSignal.timeout(5000) });
}

const intHttp = (name) => m.node(name).options.IntHttpPort;
const extHttp = (name) => m.node(name).options.ExtHttpPort;
const nodeGossip = async (name) =>
  (await fetch(`http://${m.ip}:${extHttp(name)}/gossip?format=json`)).json();

test('hole 4: gossip is authenticated and a forged leader is ignored', { timeout: 120000 },
  async () => {
    await new Promise((resolve) => attacker.listen(0, '127.0.0.1', resolve));
    const evilPort = attacker.address().port;
    await m.start();
    const g = await m.waitForCluster(2);
    const leader = g.members[0];
    const followerName = nodes.map((n) => n.name).find((name) =>
      g.members.some((x) => x.internalHttpPort === intHttp(name) && x.state === 'Follower'));
    const follower = await nodeGossip(followerName);
    const me = follower.members.find((x) => x.internalHttpPort === intHttp(followerName));
    const forged = { ...leader, internalHttpIp: '127.0.0.1', internalHttpPort: evilPort,
      externalHttpIp: '127.0.0.1', externalHttpPort: evilPort, externalTcpIp: '127.0.0.1',
      externalTcpPort: evilPort, internalTcpIp: '127.0.0.1', internalTcpPort: evilPort,
      epochNumber: leader.epochNumber + 100, timeStamp: new Date().toISOString() };
    const view = { members: [me, forged], serverIp: me.internalHttpIp,
      serverPort: me.internalHttpPort, clusterName: 'default' };

    // Without the signature: refused by a node and by the manager, whatever the view says.
    assert.equal((await push(m.ip, intHttp(followerName), view, { sign: false })).status, 401);
    assert.equal((await push(m.ip, m.intHttpPort, view, { sign: false })).status, 401);
    const badSig = await fetch(`http://${m.ip}:${intHttp(followerName)}/gossip`, {
      method: 'POST', body: JSON.stringify(view), headers: { 'X-Chorus-Auth':
        signRequest(crypto.randomBytes(32).toString('hex'), 'POST', '/gossip', JSON.stringify(view)) },
    });
    assert.equal(badSig.status, 401, 'a signature with another secret');
    // The short "unchanged" form of a push (issue 16) keeps the same rule. Signed, it is taken
    // only from a member whose whole view with that digest the receiver merged before: a digest
    // it does not hold is answered 412 (push the whole view), and changes nothing.
    for (const target of [intHttp(followerName), m.intHttpPort]) {
      for (const sender of [me, leader]) {
        const unchanged = `chorus-gossip-unchanged-push\ndefault\n${sender.internalHttpIp}:` +
          `${sender.internalHttpPort}\n1\n1\n${new Date().toISOString()}\n`;
        assert.equal((await push(m.ip, target, unchanged, { sign: false })).status, 401);
        const other = crypto.randomBytes(32).toString('hex');
        assert.equal((await push(m.ip, target, unchanged, { secret: other })).status, 401);
        const held = await push(m.ip, target, unchanged);
        assert.equal(held.status, 412, await held.text());
      }
      const broken = await push(m.ip, target, 'chorus-gossip-unchanged-push\nshort\n');
      assert.equal(broken.status, 400, await broken.text());
    }

    // Signed (an insider's mistake or a stolen secret): the forged leader entry is still ignored.
    for (const target of [intHttp(followerName), m.intHttpPort]) {
      assert.equal((await push(m.ip, target, view)).status, 200);
    }
    for (const doc of [await nodeGossip(followerName), await m.gossip()]) {
      const claims = doc.members.filter((x) => x.instanceId === leader.instanceId);
      assert.equal(claims.length, 1, JSON.stringify(doc.members));
      assert.equal(claims[0].internalHttpPort, leader.internalHttpPort);
      assert.ok(!doc.members.some((x) => x.externalHttpPort === evilPort), 'forged endpoints listed');
    }
    // A follower passes an HTTP write to the real leader, never to the attacker.
    const stream = `hole4-${crypto.randomUUID()}`;
    const write = await fetch(`http://${m.ip}:${extHttp(followerName)}/streams/${stream}`, {
      method: 'POST', redirect: 'manual',
      headers: { Authorization: ADMIN, 'Content-Type': 'application/json',
        'ES-EventType': 'hole4', 'ES-EventId': crypto.randomUUID() },
      body: JSON.stringify({ a: 1 }),
    });
    assert.equal(write.status, 201, await write.text());

    // A flood of members is bounded, and the relay does not POST to addresses a view names.
    const flood = Array.from({ length: 2000 }, (_, i) => ({ ...forged,
      instanceId: crypto.randomUUID(), state: 'Follower', epochNumber: 0,
      internalHttpIp: `127.9.${Math.floor(i / 250)}.${i % 250}`, internalHttpPort: evilPort,
      internalTcpIp: `127.9.${Math.floor(i / 250)}.${i % 250}`, internalTcpPort: evilPort }));
    const newcomer = { ...forged, instanceId: crypto.randomUUID(), state: 'Follower',
      internalTcpIp: '127.0.0.1', internalTcpPort: evilPort + 1, epochNumber: 0 };
    const wide = { members: [me, newcomer, ...flood], serverIp: me.internalHttpIp,
      serverPort: me.internalHttpPort, clusterName: 'default' };
    assert.equal((await push(m.ip, m.intHttpPort, wide)).status, 200);
    const before = (await m.fetch('/metrics').then((r) => r.text()))
      .match(/chorus_manager_gossip_exchanges_total (\d+)/)[1];
    // Several relay rounds (every 200 ms) pass while the attacker listens.
    await waitFor(async () => {
      const now = (await m.fetch('/metrics').then((r) => r.text()))
        .match(/chorus_manager_gossip_exchanges_total (\d+)/)[1];
      return Number(now) >= Number(before) + 12;
    }, { timeoutMs: 20000, what: 'a dozen relay exchanges after the flood' });
    const doc = await m.gossip();
    assert.ok(doc.members.length <= 257, `${doc.members.length} members after a flood`);
    assert.deepEqual(hits.filter((h) => h.sender === m.intHttpPort), [], 'the relay POSTed');
    assert.deepEqual(hits.filter((h) => h.auth || h.url !== '/gossip'), [], 'a client request leaked');

    // Still serving, nothing lost.
    const read = await fetch(`http://${m.ip}:${extHttp(followerName)}/streams/${stream}/0`, {
      headers: { Authorization: ADMIN, Accept: 'application/json' } });
    assert.equal(read.status, 200);
    assert.deepEqual(await read.json(), { a: 1 });
    const after = await m.waitForCluster(2);
    assert.equal(after.members[0].instanceId, leader.instanceId);
  });
