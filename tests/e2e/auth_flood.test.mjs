// Goal: prove (issue 10, hole 7) that a flood of wrong passwords cannot stop a node from serving:
// while TCP connections (node-eventstore-client) and HTTP clients send distinct wrong passwords
// for admin as fast as the node answers, a first login of another user over HTTP and over TCP,
// admin's own (already proven) login and anonymous reads are each served within a deadline, and
// every flood request is answered with a refusal rather than left hanging.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { startWorker } from './lib/harness.mjs';
import {
  es, connect, closeQuietly, streamName, jsonEvent, ANY, deferred, withDeadline,
} from './lib/es.mjs';

// Each legitimate request must be answered this fast during the flood. One password check costs
// tens of milliseconds; without bounds the flood queues hundreds of them ahead of everyone.
const kDeadlineMs = 1500;
const kTcpConnections = 6;
const kInFlightPerConnection = 40;
const kHttpLoops = 4;
const kFloodRefusalsMin = 200;  // the flood really ran before the measurements

const ADMIN = 'Basic ' + Buffer.from('admin:changeit').toString('base64');
let w;
let anonymous;
const floodConns = [];
let stopFlood = false;
let floodDone;
const flood = { refused: 0, other: [] };
const floodRunning = deferred();  // resolved once the flood has kFloodRefusalsMin refusals

function refused() {
  flood.refused += 1;
  if (flood.refused === kFloodRefusalsMin) floodRunning.resolve();
}

function basic(login, password) {
  return 'Basic ' + Buffer.from(`${login}:${password}`).toString('base64');
}

async function http(path, auth) {
  const headers = { Accept: 'application/json' };
  if (auth) headers.Authorization = auth;
  return fetch(`http://${w.host}:${w.httpPort}${path}`, { headers,
    signal: AbortSignal.timeout(15000) });
}

// Resolves with the result of `fn` and how long it took.
async function timed(fn) {
  const started = Date.now();
  const value = await fn();
  return { value, ms: Date.now() - started };
}

async function tcpFlood(conn, stream) {
  let n = 0;
  const one = async () => {
    while (!stopFlood) {
      try {
        await conn.readStreamEventsForward(stream, 0, 1, false,
          new es.UserCredentials('admin', `guess-${randomUUID()}-${n++}`));
        flood.other.push('a wrong password was accepted over TCP');
      } catch (e) {
        if (/Authentication error/.test(e.message)) refused();
        else flood.other.push(`TCP: ${e.message}`);
      }
    }
  };
  await Promise.all(Array.from({ length: kInFlightPerConnection }, one));
}

async function httpFlood(stream) {
  while (!stopFlood) {
    const res = await http(`/streams/${stream}`, basic('admin', `guess-${randomUUID()}`));
    await res.arrayBuffer();
    if (res.status === 401) refused();
    else flood.other.push(`HTTP ${res.status}`);
  }
}

before(async () => {
  w = await startWorker({ memDb: true });
  anonymous = await connect(w);
  const created = await fetch(`http://${w.host}:${w.httpPort}/users`, { method: 'POST',
    headers: { Authorization: ADMIN, 'Content-Type': 'application/json' },
    body: JSON.stringify({ loginName: 'alice', fullName: 'Alice', groups: [], password: 'a-pw' }) });
  assert.equal(created.status, 201);
  const bob = await fetch(`http://${w.host}:${w.httpPort}/users`, { method: 'POST',
    headers: { Authorization: ADMIN, 'Content-Type': 'application/json' },
    body: JSON.stringify({ loginName: 'bob', fullName: 'Bob', groups: [], password: 'b-pw' }) });
  assert.equal(bob.status, 201);
  // admin proves its password once before the flood, as a logged-in dashboard would have.
  assert.equal((await http('/users/$current', ADMIN)).status, 200);
});

after(async () => {
  stopFlood = true;
  await floodDone?.catch(() => {});
  for (const c of floodConns) closeQuietly(c);
  closeQuietly(anonymous);
  await w?.cleanup();
});

test('legitimate requests are served promptly during a wrong-password flood',
  { timeout: 120000 }, async () => {
    const s = streamName('flood');
    await anonymous.appendToStream(s, ANY, jsonEvent({ hello: 'world' }));
    for (let i = 0; i < kTcpConnections; i++) floodConns.push(await connect(w));
    floodDone = Promise.all([
      ...floodConns.map((c) => tcpFlood(c, s)),
      ...Array.from({ length: kHttpLoops }, () => httpFlood(s)),
    ]);
    await withDeadline(floodRunning.promise, 60000, `${kFloodRefusalsMin} flood refusals`);

    const alice = await timed(async () => (await http('/users/$current',
      basic('alice', 'a-pw'))).status);
    assert.equal(alice.value, 200);
    const bobTcp = await timed(() => anonymous.readStreamEventsForward(s, 0, 1, false,
      new es.UserCredentials('bob', 'b-pw')));
    assert.equal(bobTcp.value.events.length, 1);
    const adminHttp = await timed(async () => (await http('/users/$current', ADMIN)).status);
    assert.equal(adminHttp.value, 200);
    const readHttp = await timed(async () => (await http(`/streams/${s}/0`)).status);
    assert.equal(readHttp.value, 200);
    const readTcp = await timed(() => anonymous.readStreamEventsForward(s, 0, 1, false));
    assert.equal(readTcp.value.events.length, 1);
    const times = { alice: alice.ms, bobTcp: bobTcp.ms, adminHttp: adminHttp.ms,
      readHttp: readHttp.ms, readTcp: readTcp.ms };
    console.log(`# during the flood (${flood.refused} refusals so far): ${JSON.stringify(times)}`);
    for (const [what, ms] of Object.entries(times)) {
      assert.ok(ms < kDeadlineMs, `${what} took ${ms} ms (deadline ${kDeadlineMs} ms)`);
    }

    stopFlood = true;
    await floodDone;
    assert.deepEqual(flood.other.slice(0, 5), [], 'every flood request was refused');
  });
