// Goal: prove the secure external TCP port with certificates made at test time: the unmodified
// node-eventstore-client 23.10.1 with useSslConnection writes and reads through it (the server
// presents the configured certificate); a plain client on the secure port and a TLS hello on the
// plain port fail cleanly while the node keeps serving both; with --disable-insecure-tcp the plain
// port is not listening and gossip advertises only the secure port; broken certificate setups
// stop the worker at once with a message naming the file or option.
import { describe, test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import tls from 'node:tls';
import { randomBytes } from 'node:crypto';
import { Worker, WORKER, canConnect, freePort, tlsSettings } from './lib/harness.mjs';
import {
  connect, closeQuietly, streamName, jsonEvent, rawEvent, readAll, num, NO_STREAM, withDeadline,
} from './lib/es.mjs';
import {
  testCertificates, workerTlsArgs, makeCa, makeNodeCertificate, httpFetch,
} from './lib/tls.mjs';

const T = { timeout: 60000 };

// Resolves with how a raw connection ended: 'close' (the server closed it) or an error code.
function ended(socket) {
  return new Promise((resolve) => {
    socket.once('error', (e) => resolve(e.code || e.message));
    socket.once('close', () => resolve('close'));
  });
}

// Appends one event and reads it back through `conn`: proves the connection serves.
async function roundTrip(conn) {
  const s = streamName('tls');
  const ev = jsonEvent({ over: 'tls' });
  await conn.appendToStream(s, NO_STREAM, ev);
  const { events } = await readAll(conn, s);
  assert.deepEqual(events.map((e) => e.event.eventId), [ev.eventId]);
}

async function gossipOf(w) {
  const res = await httpFetch(`${w.httpScheme}://${w.host}:${w.httpPort}/gossip?format=json`,
    { signal: AbortSignal.timeout(5000) });
  assert.equal(res.status, 200);
  return res.json();
}

describe('secure external TCP port beside the plain one', () => {
  let w;
  let conns = [];
  before(async () => {
    w = new Worker({ memDb: true, tls: true, plainTcp: true,
      extraArgs: ['--ext-tcp-heartbeat-interval', '500', '--ext-tcp-heartbeat-timeout', '500'] });
    await w.start();
  });
  after(async () => {
    for (const c of conns) closeQuietly(c);
    await w?.cleanup();
  });

  test('node-eventstore-client with useSslConnection writes and reads, 1 MiB event included',
    T, async () => {
      const conn = await connect(w, tlsSettings(w));
      conns.push(conn);
      await roundTrip(conn);
      const s = streamName('big');
      const big = randomBytes(1 << 20);
      const r = await conn.appendToStream(s, NO_STREAM, rawEvent(big));
      assert.equal(num(r.nextExpectedVersion), 0);
      const { events } = await readAll(conn, s);
      assert.ok(Buffer.from(events[0].event.data).equals(big), '1 MiB event read back byte-exact');
    });

  test('the secure port presents the configured certificate over TLS 1.2+', T, async () => {
    const { ca } = testCertificates();
    const socket = tls.connect({ host: w.host, port: w.securePort, ca, servername: 'localhost' });
    await new Promise((resolve, reject) => {
      socket.once('secureConnect', resolve);
      socket.once('error', reject);
    });
    assert.equal(socket.authorized, true, `not authorized: ${socket.authorizationError}`);
    assert.equal(socket.getPeerCertificate().subject.CN, 'node');
    assert.match(socket.getProtocol(), /^TLSv1\.[23]$/);
    socket.destroy();
  });

  test('a plain client on the secure port is closed; the node keeps serving', T, async () => {
    const socket = net.connect({ host: w.host, port: w.securePort });
    await new Promise((resolve, reject) => {
      socket.once('connect', resolve);
      socket.once('error', reject);
    });
    const end = ended(socket);
    // A HeartbeatRequest frame of the plain protocol: 18 bytes after the length prefix.
    const frame = Buffer.alloc(22);
    frame.writeInt32LE(18, 0);
    frame[4] = 0x01;
    socket.write(frame);
    assert.ok(['close', 'ECONNRESET'].includes(await withDeadline(end, 10000, 'the close')));
    const conn = await connect(w, tlsSettings(w));
    conns.push(conn);
    await roundTrip(conn);
  });

  test('a TLS hello on the plain port fails; the node keeps serving', T, async () => {
    const socket = tls.connect({ host: w.host, port: w.tcpPort, rejectUnauthorized: false });
    let secured = false;
    socket.once('secureConnect', () => { secured = true; });
    const how = await withDeadline(ended(socket), 10000, 'the failed TLS connection');
    assert.equal(secured, false, `a TLS session was established on the plain port (${how})`);
    // w.tcpEndpoint names the secure port; this client uses the plain one.
    const plain = await connect({ tcpEndpoint: `tcp://${w.host}:${w.tcpPort}` });
    conns.push(plain);
    await roundTrip(plain);
  });

  test('the HTTP API is HTTPS and its feed links name https://', T, async () => {
    const conn = await connect(w, tlsSettings(w));
    conns.push(conn);
    const s = streamName('feed');
    await conn.appendToStream(s, NO_STREAM, jsonEvent({ a: 1 }));
    const res = await httpFetch(`https://${w.host}:${w.httpPort}/streams/${s}`,
      { headers: { Accept: 'application/vnd.eventstore.atom+json' } });
    assert.equal(res.status, 200);
    const feed = await res.json();
    assert.equal(feed.id, `https://${w.host}:${w.httpPort}/streams/${s}`);
    assert.ok(feed.links.every((l) => l.uri.startsWith('https://')), JSON.stringify(feed.links));
  });

  test('gossip advertises both ports', T, async () => {
    const me = (await gossipOf(w)).members[0];
    assert.equal(me.externalTcpPort, w.tcpPort);
    assert.equal(me.externalSecureTcpPort, w.securePort);
  });
});

describe('--disable-insecure-tcp', () => {
  let w;
  let conn;
  before(async () => {
    w = new Worker({ memDb: true, tls: true, plainTcp: false });
    await w.start();
  });
  after(async () => {
    closeQuietly(conn);
    await w?.cleanup();
  });

  test('the plain port is not listening; the secure one serves; gossip says so', T, async () => {
    assert.equal(await canConnect(w.tcpPort, w.host), false, 'plain port must not listen');
    conn = await connect(w, tlsSettings(w));
    await roundTrip(conn);
    const me = (await gossipOf(w)).members[0];
    assert.equal(me.externalTcpPort, 0);
    assert.equal(me.externalSecureTcpPort, w.securePort);
  });
});

describe('broken certificate setups stop the start', () => {
  let dir;
  before(() => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'chorus-e2e-badtls-'));
    makeCa(dir, 'other', '/CN=Other CA');
    makeNodeCertificate(dir, 'stranger', 'other');
  });
  after(() => fs.rmSync(dir, { recursive: true, force: true }));

  // Runs the worker to its exit (it must not start) and returns { code, output }.
  async function runToExit(args) {
    const logDir = fs.mkdtempSync(path.join(os.tmpdir(), 'chorus-e2e-log-'));
    try {
      const r = spawnSync(WORKER, ['--mem-db', '--log', logDir,
        '--ext-tcp-port', String(await freePort()), '--ext-http-port', String(await freePort()),
        '--int-tcp-port', String(await freePort()), '--int-http-port', String(await freePort()),
        ...args], { timeout: 20000, encoding: 'utf8' });
      return { code: r.status, output: `${r.stdout}${r.stderr}` };
    } finally {
      fs.rmSync(logDir, { recursive: true, force: true });
    }
  }

  test('a missing certificate file is named; exit code 1', T, async () => {
    const m = testCertificates();
    const missing = path.join(dir, 'absent.crt');
    const r = await runToExit(['--certificate-file', missing,
      '--certificate-private-key-file', m.keyFile, '--trusted-root-certificates-path', m.rootsDir]);
    assert.equal(r.code, 1, r.output);
    assert.match(r.output, new RegExp(`cannot read certificate file '${missing}': no such file`));
  });

  test('a key that does not match the certificate is refused; exit code 1', T, async () => {
    const m = testCertificates();
    const r = await runToExit(['--certificate-file', m.certFile,
      '--certificate-private-key-file', path.join(dir, 'stranger.key'),
      '--trusted-root-certificates-path', m.rootsDir]);
    assert.equal(r.code, 1, r.output);
    assert.match(r.output, /does not match certificate/);
  });

  test('a certificate of another CA than the trusted roots is refused', T, async () => {
    const m = testCertificates();
    const r = await runToExit(['--certificate-file', path.join(dir, 'stranger.crt'),
      '--certificate-private-key-file', path.join(dir, 'stranger.key'),
      '--trusted-root-certificates-path', m.rootsDir]);
    assert.equal(r.code, 1, r.output);
    assert.match(r.output, /does not chain to a root/);
  });

  test('a secure port without certificates is a usage error (exit code 2)', T, async () => {
    const r = await runToExit(['--ext-secure-tcp-port', '1115']);
    assert.equal(r.code, 2, r.output);
    assert.match(r.output, /--ext-secure-tcp-port needs --certificate-file/);
    const partial = await runToExit([...workerTlsArgs().slice(0, 2)]);
    assert.equal(partial.code, 2, partial.output);
    assert.match(partial.output, /go together/);
  });
});
