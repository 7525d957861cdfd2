// Goal: a worker's gossip client (HTTPS through tls::make_http_session) sends no request to a peer
// whose certificate, of the trusted CA, names another address: neither when the peer answers the
// TLS handshake at once nor when it answers later than the session's handshake wait (Poco 1.11
// then went on as if the handshake had finished, and the request's first write completed it
// without the name check: bench/results/2026-12-03-s7/tlsname.md). A peer with the right
// certificate behind the same delay is reached, so the delay is one at which requests are sent.
// Each peer is a node:https server behind a proxy that holds back the server's first bytes.
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { Worker, waitFor } from './lib/harness.mjs';
import { testCertificates, makeNodeCertificate, countingServer } from './lib/tls.mjs';

// The worker's gossip budget; its HTTPS sessions give the handshake a third of it (800 ms).
const kGossipTimeoutMs = 2400;
// Past the handshake's third, within the first write's wait that then completes the handshake.
const kSlowHandshakeMs = 1200;
// Connections each peer must have seen: gossip tried it in several rounds.
const kConnectionsMin = 3;

const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'chorus-e2e-peer-name-'));
const peers = [];
after(() => {
  for (const p of peers) p.close();
  fs.rmSync(dir, { recursive: true, force: true });
});

// countingServer() behind a proxy on 127.0.0.1 that passes the client's bytes at once and the
// server's first chunk after `delayMs`.
async function slowPeer(cert, key, delayMs) {
  const { server, counts } = await countingServer(cert, key);
  const sockets = new Set();
  const proxy = net.createServer((client) => {
    const upstream = net.connect(server.address().port, '127.0.0.1');
    sockets.add(client).add(upstream);
    let first = true;
    client.on('data', (d) => upstream.write(d));
    upstream.on('data', (d) => {
      if (!first) return client.write(d);
      first = false;
      upstream.pause();
      setTimeout(() => { client.write(d); upstream.resume(); }, delayMs);
    });
    const end = () => { client.destroy(); upstream.destroy(); };
    for (const s of [client, upstream]) {
      s.on('error', end);
      s.on('close', () => { sockets.delete(s); end(); });
    }
  });
  await new Promise((resolve) => proxy.listen(0, '127.0.0.1', resolve));
  const peer = {
    counts,
    port: proxy.address().port,
    close() {
      for (const s of sockets) s.destroy();
      proxy.close();
      server.closeAllConnections();
      server.close();
    },
  };
  peers.push(peer);
  return peer;
}

test('a worker\'s gossip client sends nothing to a wrongly named peer, also a slow one',
  { timeout: 60000 }, async (t) => {
    const m = testCertificates();
    // A certificate of the trusted CA that names 127.0.0.9 only, served on 127.0.0.1.
    fs.copyFileSync(m.caFile, path.join(dir, 'main.crt'));
    fs.copyFileSync(path.join(m.dir, 'ca.key'), path.join(dir, 'main.key'));
    makeNodeCertificate(dir, 'wrongname', 'main', 'IP:127.0.0.9');
    const wrongCert = fs.readFileSync(path.join(dir, 'wrongname.crt'));
    const wrongKey = fs.readFileSync(path.join(dir, 'wrongname.key'));
    const wrongFast = await slowPeer(wrongCert, wrongKey, 0);
    const wrongSlow = await slowPeer(wrongCert, wrongKey, kSlowHandshakeMs);
    const rightSlow = await slowPeer(m.cert, m.key, kSlowHandshakeMs);
    const seeds = [wrongFast, wrongSlow, rightSlow].map((p) => `127.0.0.1:${p.port}`).join(',');
    const w = new Worker({ memDb: true, tls: true, extraArgs: ['--cluster-size=3',
      '--discover-via-dns=false', `--gossip-seed=${seeds}`, '--gossip-interval-ms', '100',
      '--gossip-timeout-ms', String(kGossipTimeoutMs)] });
    try {
      await w.start();
      await waitFor(() => rightSlow.counts.requests >= kConnectionsMin &&
        wrongFast.counts.connections >= kConnectionsMin &&
        wrongSlow.counts.connections >= kConnectionsMin,
      { timeoutMs: 20000, what: `${kConnectionsMin} gossip connections to each peer, ` +
        `${kConnectionsMin} requests to the right one` });
      t.diagnostic(`connections/requests: wrong name ${JSON.stringify(wrongFast.counts)}, ` +
        `wrong name slow ${JSON.stringify(wrongSlow.counts)}, ` +
        `right name slow ${JSON.stringify(rightSlow.counts)}`);
      assert.equal(wrongFast.counts.requests, 0, 'requests that reached the wrongly named peer');
      assert.equal(wrongSlow.counts.requests, 0,
        'requests that reached the wrongly named peer with a slow handshake');
    } finally {
      await w.cleanup();
    }
  });
