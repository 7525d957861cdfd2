// Goal: prove that the manager's HTTP ports have the worker's slow-client limits (issue 10, hole
// 7; common/http_serving.hpp): on the external port, 16 request threads (kManagerExternalThreadsMax)
// plus 64 waiting connections (kManagerQueuedConnectionsMax) can be held, the next connection is
// closed at once without an answer and the refusal is logged with a count, and the port serves
// again once the clients go; a client that sends its request a byte at a time (slow loris) is cut
// at the 30 s I/O deadline (kHttpIoDeadlineMs) although each byte comes well within the socket
// timeout, while other clients are served meanwhile.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import net from 'node:net';
import { Manager, waitFor } from './manager_harness.mjs';

const THREADS_MAX = 16;
const QUEUED_MAX = 64;
const IO_DEADLINE_MS = 30000;

let m;
const sockets = [];

before(async () => {
  m = new Manager({ nodes: [{ name: 'n1', options: { MemDb: true } }] });
  await m.start();
});

after(async () => {
  for (const s of sockets) s.destroy();
  await m?.cleanup();
});

// A raw connection to the manager's external port that records what it receives and when it
// is closed.
function connect() {
  const s = net.connect({ host: m.ip, port: m.extHttpPort });
  s.received = '';
  s.closedAt = 0;
  s.on('data', (d) => { s.received += d.toString(); });
  // Monotonic: the machine's wall clock may be stepped during the 30 s this test measures.
  s.on('close', () => { s.closedAt = performance.now(); });
  s.on('error', () => {});
  sockets.push(s);
  return new Promise((resolve, reject) => {
    s.once('connect', () => resolve(s));
    s.once('error', reject);
  });
}

async function gossipAnswers() {
  const res = await m.fetch('/gossip', { timeoutMs: 5000 });
  return res.status === 200;
}

test('connections beyond the threads and the queue are closed at once, then served again',
  { timeout: 60000 }, async () => {
    // Each holder sends half a request: its thread waits for the rest (within the socket
    // timeout, 10 s, and the I/O deadline, 30 s, both longer than this test needs).
    const held = [];
    for (let i = 0; i < THREADS_MAX + QUEUED_MAX; i++) {
      const s = await connect();
      s.write('GET /gossip HTTP/1.1\r\n');
      held.push(s);
    }
    // The next one is closed without an answer (Poco counts it as refused).
    const beyond = await waitFor(async () => {
      const s = await connect();
      s.write('GET /gossip HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n');
      await waitFor(() => s.closedAt > 0 || s.received, { timeoutMs: 3000 }).catch(() => {});
      return s.closedAt > 0 && s.received === '' ? s : false;
    }, { timeoutMs: 15000, intervalMs: 100, what: 'a connection beyond the limit closed unanswered' });
    assert.equal(beyond.received, '');
    await waitFor(() => /http: refused \d+ connections to the manager's external HTTP server/
      .test(m.output), { timeoutMs: 5000, what: 'the refusal logged with a count' });
    for (const s of held) s.destroy();
    await waitFor(gossipAnswers, { timeoutMs: 15000, what: 'the port serving again' });
  });

test('a slow loris is cut at the I/O deadline while others are served', { timeout: 90000 },
  async () => {
    const slow = await connect();
    const started = performance.now();
    slow.write('GET /gossip HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Slow: ');
    // One byte every 2 s: the 10 s socket timeout never fires.
    const drip = setInterval(() => { if (!slow.closedAt) slow.write('a'); }, 2000);
    try {
      assert.ok(await gossipAnswers(), 'another client is served meanwhile');
      await waitFor(() => slow.closedAt > 0,
        { timeoutMs: IO_DEADLINE_MS + 15000, intervalMs: 200, what: 'the slow client cut' });
    } finally {
      clearInterval(drip);
    }
    const lasted = Math.round(slow.closedAt - started);
    assert.ok(lasted >= IO_DEADLINE_MS - 1000 && lasted < IO_DEADLINE_MS + 10000,
      `cut after ${lasted} ms`);
    assert.equal(slow.received, '', 'it never got an answer');
    assert.match(m.output, /closing the connection from [0-9.:]+ to the manager's external HTTP server .* longer than 30000 ms/);
    assert.ok(await gossipAnswers());
  });
