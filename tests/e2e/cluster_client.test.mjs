// Proves (issue 4, real processes on loopback) that an unmodified node-eventstore-client 23.10.1
// given only gossip seeds works against a 3-node Chorus cluster: it writes (1 and many events,
// sequential and concurrent), reads a stream and $all (as admin) and subscribes; a client pinned
// to a follower over tcp:// with requireMaster=false gets a volatile subscription there that sees
// events written through the leader, reads committed data locally, and has its writes forwarded
// to the leader (they succeed and are on the leader at the acknowledged numbers); a client pinned
// to a follower with requireMaster=true is redirected (NotHandled NotLeader) to the leader and its
// read or write succeeds there. A client seeded with one follower only, and the old 0.2.19 client
// (v5 state ranks), both end up on the leader.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import es0219 from 'node-eventstore-client-0219';
import { Cluster, waitFor } from './lib/cluster.mjs';
import { tlsSettings } from './lib/harness.mjs';
import {
  es, admin, ANY, NO_STREAM, num, readAll, streamName, makeEvents, jsonEvent, dataOf,
  deferred, withDeadline, testSettings,
} from './lib/es.mjs';

const cluster = new Cluster({ memDb: true });
let leader;
let followers;
let conn; // gossip seeds only, requireMaster default (true)

before(async () => {
  await cluster.start();
  ({ leader } = await cluster.waitForLeader({ timeoutMs: 10000 }));
  followers = cluster.live().filter((n) => n !== leader);
  conn = await cluster.connect();
});

after(async () => {
  await cluster.cleanup();
});

const endpointOf = (e) => { try { return JSON.parse(e.x); } catch { return undefined; } };

test('gossip-seeded client writes one event and reads it back', { timeout: 30000 }, async () => {
  const s = streamName('one');
  const ev = jsonEvent({ hello: 'cluster' });
  const r = await conn.appendToStream(s, NO_STREAM, ev);
  assert.equal(num(r.nextExpectedVersion), 0);
  const { status, events } = await readAll(conn, s);
  assert.equal(status, 'success');
  assert.equal(events.length, 1);
  assert.equal(events[0].event.eventId, ev.eventId);
  assert.deepEqual(dataOf(events[0].event), { hello: 'cluster' });
  // The client settled on the leader (gossip lists the leader first and ranks it highest).
  const connected = conn.events.filter((e) => e.ev === 'connected').map(endpointOf);
  assert.equal(connected.at(-1)?.port, leader.clientPort,
    `client connected to ${JSON.stringify(connected)}, leader tcp ${leader.clientPort}`);
});

test('a client seeded with one follower\'s gossip endpoint only finds and uses the leader', { timeout: 30000 }, async () => {
  const f = followers[0];
  const c = es.createConnection({ ...testSettings, ...tlsSettings(f) }, cluster.seeds([f]),
    'one-seed');
  c.on('error', () => {});
  const connected = [];
  c.on('connected', (ep) => connected.push(ep));
  cluster.conns.push(c);
  await c.connect();
  const s = streamName('oneseed');
  const r = await c.appendToStream(s, NO_STREAM, jsonEvent({ seeded: 'follower' }));
  assert.equal(num(r.nextExpectedVersion), 0);
  assert.equal(connected.at(-1)?.port, leader.clientPort,
    `connected to ${JSON.stringify(connected)}; leader tcp ${leader.clientPort}`);
});

test('gossip-seeded client writes many events (batch, sequential and concurrent) in order', { timeout: 60000 }, async () => {
  const s = streamName('many');
  const batch = makeEvents(100, 'Batch');
  const r1 = await conn.appendToStream(s, NO_STREAM, batch);
  assert.equal(num(r1.nextExpectedVersion), 99);
  const seq = makeEvents(20, 'Seq');
  for (let i = 0; i < seq.length; i++) {
    const r = await conn.appendToStream(s, 99 + i, seq[i]);
    assert.equal(num(r.nextExpectedVersion), 100 + i);
  }
  const conc = makeEvents(50, 'Conc');
  const acks = await Promise.all(conc.map((e) => conn.appendToStream(s, ANY, e)));
  const numbers = acks.map((a) => num(a.nextExpectedVersion)).sort((a, b) => a - b);
  assert.deepEqual(numbers, Array.from({ length: 50 }, (_, i) => 120 + i));
  const { events } = await readAll(conn, s);
  assert.equal(events.length, 170);
  events.forEach((e, i) => assert.equal(num(e.event.eventNumber), i));
  assert.deepEqual(events.slice(0, 120).map((e) => e.event.eventId),
    [...batch, ...seq].map((e) => e.eventId));
  const byId = new Map(events.map((e) => [e.event.eventId, num(e.event.eventNumber)]));
  conc.forEach((e, i) => assert.equal(byId.get(e.eventId), num(acks[i].nextExpectedVersion)));
  // Backward read gives the same events reversed.
  const back = await conn.readStreamEventsBackward(s, es.streamPosition.end, 200, false);
  assert.deepEqual(back.events.map((e) => e.event.eventId), events.map((e) => e.event.eventId).reverse());
});

test('gossip-seeded client reads $all as admin: our events in write order', { timeout: 30000 }, async () => {
  const s = streamName('all');
  const evs = makeEvents(5, 'AllTest');
  await conn.appendToStream(s, NO_STREAM, evs.slice(0, 3));
  await conn.appendToStream(s, 2, evs.slice(3));
  const seen = [];
  let pos = es.positions.start;
  for (let page = 0; page < 1000; page++) {
    const slice = await conn.readAllEventsForward(pos, 500, false, admin);
    for (const e of slice.events) if (e.event?.eventStreamId === s) seen.push(e.event.eventId);
    if (slice.isEndOfStream) break;
    pos = slice.nextPosition;
  }
  assert.deepEqual(seen, evs.map((e) => e.eventId));
});

test('gossip-seeded client subscribes (volatile) and sees new events', { timeout: 30000 }, async () => {
  const s = streamName('sub');
  const got = [];
  const all = deferred();
  const sub = await withDeadline(conn.subscribeToStream(s, false, (_sub, e) => {
    got.push(e.event.eventId);
    if (got.length === 3) all.resolve();
  }), 5000, 'subscription confirmation');
  const evs = makeEvents(3);
  await conn.appendToStream(s, NO_STREAM, evs);
  await withDeadline(all.promise, 5000, 'three events on the subscription');
  assert.deepEqual(got, evs.map((e) => e.eventId));
  sub.unsubscribe();
});

test('follower-pinned client (requireMaster=false): volatile subscription sees writes made through the leader; local reads are committed data', { timeout: 30000 }, async () => {
  for (const f of followers) {
    const fconn = await cluster.connect({ node: f, settings: { requireMaster: false } });
    const s = streamName('fsub');
    const got = [];
    const all = deferred();
    await withDeadline(fconn.subscribeToStream(s, false, (_sub, e) => {
      got.push({ id: e.event.eventId, n: num(e.event.eventNumber) });
      if (got.length === 4) all.resolve();
    }), 5000, `subscription on ${f.name}`);
    const evs = makeEvents(4);
    await conn.appendToStream(s, NO_STREAM, evs.slice(0, 2));
    await conn.appendToStream(s, 1, evs.slice(2));
    await withDeadline(all.promise, 5000, `4 events on the subscription on follower ${f.name}`);
    assert.deepEqual(got, evs.map((e, i) => ({ id: e.eventId, n: i })));
    // A local read on the follower shows the same events (eventually: it is committed there).
    const events = await waitFor(async () => {
      const r = await readAll(fconn, s);
      return r.events.length === 4 && r.events;
    }, { timeoutMs: 5000, what: `4 events readable on follower ${f.name}` });
    assert.deepEqual(events.map((e) => e.event.eventId), evs.map((e) => e.eventId));
    // $all on the follower (admin) holds them too, in write order.
    const inAll = [];
    let pos = es.positions.start;
    for (let page = 0; page < 1000; page++) {
      const slice = await fconn.readAllEventsForward(pos, 500, false, admin);
      for (const e of slice.events) if (e.event?.eventStreamId === s) inAll.push(e.event.eventId);
      if (slice.isEndOfStream) break;
      pos = slice.nextPosition;
    }
    assert.deepEqual(inAll, evs.map((e) => e.eventId), `$all on follower ${f.name}`);
    // It never left the follower.
    const connected = fconn.events.filter((e) => e.ev === 'connected').map(endpointOf);
    assert.deepEqual(connected.map((c) => c?.port), [f.clientPort]);
  }
});

test('a write through a follower with requireMaster=false is forwarded to the leader and succeeds', { timeout: 30000 }, async () => {
  const f = followers[0];
  const fconn = await cluster.connect({ node: f, settings: { requireMaster: false } });
  const s = streamName('fwd');
  const evs = makeEvents(3, 'Forwarded');
  const r1 = await fconn.appendToStream(s, NO_STREAM, evs.slice(0, 2));
  assert.equal(num(r1.nextExpectedVersion), 1);
  const r2 = await fconn.appendToStream(s, 1, evs[2]);
  assert.equal(num(r2.nextExpectedVersion), 2);
  // A wrong expected version is the leader's answer too.
  await assert.rejects(fconn.appendToStream(s, NO_STREAM, jsonEvent({ x: 1 })),
    (e) => e.name === 'WrongExpectedVersionError', 'wrong expected version through a follower');
  // On the leader (read through the gossip client, requireMaster=true) at the acknowledged numbers.
  const { events } = await readAll(conn, s);
  assert.deepEqual(events.map((e) => [e.event.eventId, num(e.event.eventNumber)]),
    evs.map((e, i) => [e.eventId, i]));
  const connected = fconn.events.filter((e) => e.ev === 'connected').map(endpointOf);
  assert.deepEqual(connected.map((c) => c?.port), [f.clientPort], 'the forwarding client stays on the follower');
});

test('a read with requireMaster=true on a follower is redirected to the leader', { timeout: 30000 }, async () => {
  const s = streamName('redir');
  const evs = makeEvents(2);
  await conn.appendToStream(s, NO_STREAM, evs);
  const f = followers[1];
  const fconn = await cluster.connect({ node: f, settings: { requireMaster: true } });
  const slice = await fconn.readStreamEventsForward(s, 0, 10, false);
  assert.equal(slice.status, 'success');
  assert.deepEqual(slice.events.map((e) => e.event.eventId), evs.map((e) => e.eventId));
  const connected = fconn.events.filter((e) => e.ev === 'connected').map(endpointOf);
  assert.equal(connected[0]?.port, f.clientPort, 'first connected to the follower');
  assert.equal(connected.at(-1)?.port, leader.clientPort,
    `then reconnected to the leader (connected: ${JSON.stringify(connected)})`);
});

test('a write with requireMaster=true on a follower is redirected to the leader and succeeds', { timeout: 30000 }, async () => {
  const f = followers[0];
  const fconn = await cluster.connect({ node: f, settings: { requireMaster: true } });
  const s = streamName('redirw');
  const ev = jsonEvent({ redirected: true });
  const r = await fconn.appendToStream(s, NO_STREAM, ev);
  assert.equal(num(r.nextExpectedVersion), 0);
  const { events } = await readAll(conn, s);
  assert.deepEqual(events.map((e) => e.event.eventId), [ev.eventId]);
  const connected = fconn.events.filter((e) => e.ev === 'connected').map(endpointOf);
  assert.deepEqual(connected.map((c) => c?.port), [f.clientPort, leader.clientPort],
    'connected to the follower, then to the leader');
});

test('node-eventstore-client 0.2.19 with gossip seeds (v5 ranks) finds the leader, writes and reads', { timeout: 30000 }, async () => {
  const seeds = cluster.nodes.map((n) => new es0219.GossipSeed({ host: n.host, port: n.httpPort }));
  const c = es0219.createConnection(
    { ...testSettings, log: new es0219.NoopLogger(), ...tlsSettings(leader) }, seeds, 'v0219');
  c.on('error', () => {});
  const connected = [];
  c.on('connected', (ep) => connected.push(ep));
  cluster.conns.push(c);
  await withDeadline(new Promise((resolve, reject) => {
    c.once('connected', resolve);
    c.once('closed', (r) => reject(new Error(`closed: ${r}`)));
    c.connect().catch(reject);
  }), 10000, '0.2.19 client connected');
  const s = streamName('v0219');
  const evs = [1, 2, 3].map((i) => es0219.createJsonEventData(randomUUID(), { i }, null, 'Old'));
  const r = await c.appendToStream(s, es0219.expectedVersion.noStream, evs);
  assert.equal(num(r.nextExpectedVersion), 2);
  const slice = await c.readStreamEventsForward(s, 0, 10, false);
  assert.deepEqual(slice.events.map((e) => e.event.eventId), evs.map((e) => e.eventId));
  assert.equal(connected.at(-1)?.port, leader.clientPort,
    `0.2.19 client connected to ${JSON.stringify(connected)}; leader tcp ${leader.clientPort}`);
});
