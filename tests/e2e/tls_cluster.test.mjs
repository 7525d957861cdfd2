// Goal: prove that a three-node cluster with certificates made at test time forms and serves
// over TLS only, and that its internal links admit members alone: node-eventstore-client with
// useSslConnection discovers the leader through HTTPS gossip and writes through its secure port;
// the internal TCP and HTTP ports refuse a TLS peer without a certificate, one whose certificate
// comes from another CA, and plain connections; a node whose certificate another CA signed
// cannot join (never listed alive, never a follower) while the cluster keeps serving; a worker's
// gossip client refuses a peer whose certificate (of the right CA) names another address.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import tls from 'node:tls';
import { Cluster, waitFor } from './lib/cluster.mjs';
import { Worker } from './lib/harness.mjs';
import { es, jsonEvent, readAll, streamName, num, NO_STREAM, withDeadline } from './lib/es.mjs';
import { testCertificates, makeCa, makeNodeCertificate, httpFetch, countingServer } from './lib/tls.mjs';

const T = { timeout: 60000 };
const cluster = new Cluster({ size: 3, tls: true });
let leader;
let strangerDir;
let stranger;

before(async () => {
  await cluster.start();
  ({ leader } = await cluster.waitForLeader({ timeoutMs: 15000 }));
  strangerDir = fs.mkdtempSync(path.join(os.tmpdir(), 'chorus-e2e-stranger-'));
  makeCa(strangerDir, 'other', '/CN=Other CA');
  makeNodeCertificate(strangerDir, 'stranger', 'other');
});

after(async () => {
  await stranger?.cleanup();
  await cluster.cleanup();
  if (strangerDir) fs.rmSync(strangerDir, { recursive: true, force: true });
});

// Opens a TLS connection with `options` and resolves 'secure' or how it failed.
function tlsOutcome(port, host, options) {
  return withDeadline(new Promise((resolve) => {
    const socket = tls.connect({ host, port, servername: 'localhost', ...options });
    socket.once('secureConnect', () => {
      // TLS 1.3 servers check the client certificate after the client's "connected": wait for
      // the server's verdict (an alert and a close) or a quiet moment.
      const timer = setTimeout(() => { socket.destroy(); resolve('secure'); }, 500);
      socket.once('error', (e) => { clearTimeout(timer); resolve(e.code || e.message); });
      socket.once('close', () => { clearTimeout(timer); resolve('closed by server'); });
    });
    socket.once('error', (e) => resolve(e.code || e.message));
  }), 10000, 'a TLS outcome');
}

test('a client with useSslConnection discovers the leader through HTTPS gossip and writes',
  T, async () => {
    const conn = await cluster.connect({ settings: { useSslConnection: true,
      validateServer: false } });
    const s = streamName('tlsgossip');
    const r = await conn.appendToStream(s, NO_STREAM, jsonEvent({ over: 'tls' }));
    assert.equal(num(r.nextExpectedVersion), 0);
    const { events } = await readAll(conn, s);
    assert.equal(events.length, 1);
    const connected = conn.events.filter((e) => e.ev === 'connected').map((e) => JSON.parse(e.x));
    assert.equal(connected.at(-1)?.port, leader.securePort, 'connected to the leader secure port');
  });

test('the internal TCP port admits only peers with a certificate of the trusted CA', T,
  async () => {
    const m = testCertificates();
    const port = leader.intTcpPort;
    const host = leader.host;
    assert.equal(await tlsOutcome(port, host, { ca: m.ca, cert: m.cert, key: m.key }), 'secure');
    assert.notEqual(await tlsOutcome(port, host, { ca: m.ca }), 'secure',
      'no client certificate must be refused');
    const other = {
      cert: fs.readFileSync(path.join(strangerDir, 'stranger.crt')),
      key: fs.readFileSync(path.join(strangerDir, 'stranger.key')),
    };
    assert.notEqual(await tlsOutcome(port, host, { ca: m.ca, ...other }), 'secure',
      'a certificate of another CA must be refused');
    // A plain connection that speaks the replication framing is dropped at the handshake.
    const socket = net.connect({ host, port });
    const closed = new Promise((resolve) => {
      socket.once('close', () => resolve(true));
      socket.once('error', () => resolve(true));
    });
    socket.write(Buffer.from([8, 0, 0, 0, 1, 2, 3, 4, 5, 6, 7, 8]));
    assert.equal(await withDeadline(closed, 10000, 'the plain connection closed'), true);
  });

test('the internal HTTP port answers members only; the external one any HTTPS client', T,
  async () => {
    const intUrl = `https://${leader.host}:${leader.intHttpPort}/gossip?format=json`;
    const extUrl = `https://${leader.host}:${leader.httpPort}/gossip?format=json`;
    const noCertificate = { tls: { cert: undefined, key: undefined } };
    assert.equal((await httpFetch(intUrl)).status, 200);
    await assert.rejects(httpFetch(intUrl, noCertificate), 'no client certificate: refused');
    const other = { tls: {
      cert: fs.readFileSync(path.join(strangerDir, 'stranger.crt')),
      key: fs.readFileSync(path.join(strangerDir, 'stranger.key')) } };
    await assert.rejects(httpFetch(intUrl, other), 'a certificate of another CA: refused');
    assert.equal((await httpFetch(extUrl, noCertificate)).status, 200);
    await assert.rejects(fetch(`http://${leader.host}:${leader.httpPort}/gossip`,
      { signal: AbortSignal.timeout(5000) }), 'plain HTTP on an HTTPS port fails');
  });

test('a node with a certificate of another CA cannot join; the cluster keeps serving', T,
  async () => {
    const m = testCertificates();
    // It trusts both CAs (so it starts and would accept the cluster), the cluster trusts one.
    const roots = path.join(strangerDir, 'roots');
    fs.mkdirSync(roots);
    fs.copyFileSync(m.caFile, path.join(roots, 'ca.crt'));
    fs.copyFileSync(path.join(strangerDir, 'other.crt'), path.join(roots, 'other.crt'));
    stranger = new Worker({ memDb: true, tls: false, extraArgs: [
      '--certificate-file', path.join(strangerDir, 'stranger.crt'),
      '--certificate-private-key-file', path.join(strangerDir, 'stranger.key'),
      '--trusted-root-certificates-path', roots,
      '--cluster-size=3', '--discover-via-dns=false',
      `--gossip-seed=${cluster.nodes.map((n) => n.intHttp).join(',')}`,
      '--gossip-interval-ms', '200'] });
    await stranger.start();
    // Long enough for many gossip rounds and election timeouts of the stranger.
    const deadline = Date.now() + 4000;
    while (Date.now() < deadline) {
      for (const v of await cluster.views()) {
        assert.ok(!v.error, v.error);
        const listed = v.gossip.members.find((x) => x.internalHttpPort === stranger.intHttpPort &&
          x.isAlive);
        assert.equal(listed, undefined, `${v.node.name} lists the stranger as alive`);
      }
      const own = await httpFetch(`https://${stranger.host}:${stranger.httpPort}/gossip?format=json`,
        { tls: { rejectUnauthorized: false } });
      const me = (await own.json()).members.find((x) => x.internalHttpPort === stranger.intHttpPort);
      assert.ok(!['Follower', 'Leader'].includes(me.state), `the stranger became ${me.state}`);
      await new Promise((r) => setTimeout(r, 250));
    }
    const after = await cluster.waitForLeader({ timeoutMs: 5000 });
    assert.equal(after.leader, leader, 'the leader did not change');
    const conn = await cluster.connect();
    const s = streamName('afterstranger');
    await conn.appendToStream(s, NO_STREAM, jsonEvent({ still: 'serving' }));
    assert.equal((await readAll(conn, s)).events.length, 1);
  });

test('a worker\'s gossip client refuses a peer whose certificate names another address', T,
  async () => {
    const m = testCertificates();
    // A certificate of the trusted CA that names 127.0.0.9 only, served on 127.0.0.1.
    fs.copyFileSync(m.caFile, path.join(strangerDir, 'main.crt'));
    fs.copyFileSync(path.join(m.dir, 'ca.key'), path.join(strangerDir, 'main.key'));
    makeNodeCertificate(strangerDir, 'wrongname', 'main', 'IP:127.0.0.9');
    const good = await countingServer(m.cert, m.key);
    const bad = await countingServer(fs.readFileSync(path.join(strangerDir, 'wrongname.crt')),
      fs.readFileSync(path.join(strangerDir, 'wrongname.key')));
    const w = new Worker({ memDb: true, tls: true, extraArgs: ['--cluster-size=3',
      '--discover-via-dns=false', `--gossip-seed=127.0.0.1:${good.port},127.0.0.1:${bad.port}`,
      '--gossip-interval-ms', '100'] });
    try {
      await w.start();
      // Several connections to the bad seed: gossip tried it in more than one round.
      await waitFor(() => good.counts.requests > 0 && bad.counts.connections > 2,
        { timeoutMs: 15000, what: 'gossip to both seeds' });
      assert.equal(bad.counts.requests, 0, 'no request reached the peer with the wrong name');
    } finally {
      await w.cleanup();
      good.server.close();
      bad.server.close();
    }
  });
