// Proves the standard projections with the unmodified node-eventstore-client: with
// --run-projections=System --start-standard-projections, $ce-<category>, $et-<type>, $streams,
// $category-<category> and $bc-<correlation id> hold one link per source event, in log order,
// resolving to the events; nothing is linked with the default (None); a node SIGKILLed and
// restarted on its folder resumes from its checkpoint without a duplicate or a gap; and in a
// 3-node cluster the links stay exactly-once and in order across a SIGKILL of the leader while
// events are being written. The projections' HTTP status routes answer node-eventstore-client's
// ProjectionsManager (list, status, statistics) on the leader and, passed on, on a follower, and
// refuse anonymous callers.
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { Worker, waitFor } from './lib/harness.mjs';
import { Cluster } from './lib/cluster.mjs';
import { es, connect, closeQuietly, admin, ANY, jsonEvent, num } from './lib/es.mjs';

const PROJECTIONS = ['--run-projections=System', '--start-standard-projections=true'];
const cleanups = [];
after(async () => { for (const c of cleanups.reverse()) await c(); });

const STANDARD = ['$streams', '$stream_by_category', '$by_category', '$by_event_type',
  '$by_correlation_id'];
const projectionsOf = (node) =>
  new es.ProjectionsManager(new es.NoopLogger(), `http://${node.host}:${node.httpPort}`, 5000);

const uid = () => randomUUID().replace(/-/g, '').slice(0, 12);

// Every event of `stream` (following links, as admin: system streams are admin-only).
async function readResolved(conn, stream) {
  const out = [];
  let from = 0;
  for (;;) {
    const slice = await conn.readStreamEventsForward(stream, from, 4096, true, admin);
    if (slice.status !== 'success') return out;
    out.push(...slice.events);
    if (slice.isEndOfStream) return out;
    from = num(slice.nextEventNumber);
  }
}

async function linkedIds(conn, stream) {
  return (await readResolved(conn, stream)).map((e) => e.event?.eventId);
}

// Waits until `stream` links exactly `expected` (ids, in order); fails on any duplicate, gap or
// reordering it ends up with.
async function expectLinks(conn, stream, expected, timeoutMs = 30000) {
  let last = [];
  try {
    await waitFor(async () => {
      last = await linkedIds(conn, stream);
      return last.length >= expected.length;
    }, { timeoutMs, what: `${expected.length} links in ${stream}` });
  } catch (e) {
    throw new Error(`${e.message}; found ${last.length}`);
  }
  assert.deepEqual(last, expected, `${stream} does not link each event once, in order`);
}

async function writeEach(conn, events) {
  for (const { stream, event } of events) await conn.appendToStream(stream, ANY, event, admin);
}

test('standard projections link every event once, in order, into each of their streams',
  { timeout: 60000 }, async () => {
    const w = new Worker({ memDb: true, extraArgs: PROJECTIONS });
    cleanups.push(() => w.cleanup());
    await w.start();
    const conn = await connect(w);
    cleanups.push(async () => closeQuietly(conn));
    const cat = `acct${uid()}`;
    const corr = `corr-${uid()}`;
    const written = [];
    for (let i = 0; i < 30; i++) {
      const stream = `${cat}-${i % 3}`;
      const type = i % 2 === 0 ? `Deposited${cat}` : `Withdrawn${cat}`;
      const meta = i % 5 === 0 ? { $correlationId: corr } : { n: i };
      written.push({ stream, type, event: jsonEvent({ i }, type, meta) });
    }
    await writeEach(conn, written);
    const ids = (pick) => written.filter(pick).map((w1) => w1.event.eventId);
    await expectLinks(conn, `$ce-${cat}`, ids(() => true));
    await expectLinks(conn, `$et-Deposited${cat}`, ids((x) => x.type.startsWith('Deposited')));
    await expectLinks(conn, `$et-Withdrawn${cat}`, ids((x) => x.type.startsWith('Withdrawn')));
    await expectLinks(conn, `$bc-${corr}`,
      written.filter((_x, i) => i % 5 === 0).map((x) => x.event.eventId));
    const firsts = written.slice(0, 3).map((x) => x.event.eventId);
    await expectLinks(conn, `$category-${cat}`, firsts);
    const streams = await linkedIds(conn, '$streams');
    for (const id of firsts) assert.equal(streams.filter((s) => s === id).length, 1);
    // A link is a `$>` event whose data names the source: "<number>@<stream>".
    const raw = await conn.readStreamEventsForward(`$ce-${cat}`, 0, 1, false, admin);
    assert.equal(raw.events[0].event.eventType, '$>');
    assert.equal(raw.events[0].event.data.toString(), `0@${cat}-0`);
    // ProjectionsManager sees the five, running, with the events they processed.
    const pm = projectionsOf(w);
    const all = await pm.listAll(admin);
    assert.deepEqual(all.map((p) => p.name).sort(), [...STANDARD].sort());
    assert.ok(all.every((p) => p.status === 'Running' && p.mode === 'Continuous'));
    const status = JSON.parse(await pm.getStatus('$by_category', admin));
    assert.equal(status.name, '$by_category');
    assert.ok(status.eventsProcessedAfterRestart >= 30, JSON.stringify(status));
    assert.match(status.position, /^C:\d+\/P:\d+$/);
    const stats = JSON.parse(await pm.getStatistics('$by_event_type', admin));
    assert.equal(stats.projections[0].name, '$by_event_type');
    assert.deepEqual(await pm.listOneTime(admin), []);
    await assert.rejects(pm.getStatus('nope', admin), /404/);
    const anonymous = await fetch(`http://${w.host}:${w.httpPort}/projections/any`);
    assert.equal(anonymous.status, 401);
    // The service set a retention on its checkpoint stream when it started.
    const meta = await conn.readStreamEventsBackward(
      '$$$projections-$by_category-checkpoint', -1, 1, false, admin);
    assert.equal(meta.status, 'success');
  });

test('without --run-projections nothing is linked', { timeout: 30000 }, async () => {
  const w = new Worker({ memDb: true });
  cleanups.push(() => w.cleanup());
  await w.start();
  const conn = await connect(w);
  cleanups.push(async () => closeQuietly(conn));
  const cat = `none${uid()}`;
  await conn.appendToStream(`${cat}-1`, ANY, jsonEvent({ a: 1 }, 'Thing'), admin);
  // A node that runs the projections has set its checkpoint stream's retention before it
  // answers its first client (the first test checks that); this one never started them.
  const meta = await conn.readStreamEventsBackward(
    '$$$projections-$by_category-checkpoint', -1, 1, false, admin);
  assert.equal(meta.status, 'streamNotFound');
  const slice = await conn.readStreamEventsForward(`$ce-${cat}`, 0, 10, true, admin);
  assert.equal(slice.status, 'streamNotFound');
  const checkpoint = await conn.readStreamEventsBackward(
    '$projections-$by_category-checkpoint', -1, 1, false, admin);
  assert.equal(checkpoint.status, 'streamNotFound');
  assert.deepEqual(await projectionsOf(w).listAll(admin), []);
});

test('a node killed with SIGKILL resumes from its checkpoint: no duplicate, no gap',
  { timeout: 90000 }, async () => {
    const w = new Worker({ extraArgs: PROJECTIONS });
    cleanups.push(() => w.cleanup());
    await w.start();
    const cat = `crash${uid()}`;
    const written = [];
    const writeBatch = async (n) => {
      const conn = await connect(w);
      const batch = Array.from({ length: n }, (_, i) => ({
        stream: `${cat}-${i % 4}`, event: jsonEvent({ i }, 'Tick') }));
      await Promise.all([0, 1, 2, 3].map((s) => conn.appendToStream(`${cat}-${s}`, ANY,
        batch.filter((b) => b.stream === `${cat}-${s}`).map((b) => b.event), admin)));
      closeQuietly(conn);
      // The order of $all: each stream's batch went in one write, streams in any order.
      return batch;
    };
    const first = await writeBatch(400);
    const conn1 = await connect(w);
    // Kill while the links of the first batch are still being written (or just done).
    await waitFor(async () => (await linkedIds(conn1, `$ce-${cat}`)).length >= 100,
      { timeoutMs: 30000, what: 'the first links' });
    const linkedBefore = (await linkedIds(conn1, `$ce-${cat}`)).length;
    const cp = await conn1.readStreamEventsBackward(
      '$projections-$by_category-checkpoint', -1, 1, false, admin);
    console.log(`# before the kill: ${linkedBefore} links, checkpoint ` +
      (cp.events.length ? cp.events[0].event.metadata.toString() : 'none'));
    closeQuietly(conn1);
    await w.kill();
    await w.start();
    const second = await writeBatch(400);
    written.push(...first, ...second);
    const conn = await connect(w);
    cleanups.push(async () => closeQuietly(conn));
    const ids = await (async () => {
      await waitFor(async () => (await linkedIds(conn, `$ce-${cat}`)).length >= written.length,
        { timeoutMs: 30000, what: `${written.length} links after the restart` });
      return linkedIds(conn, `$ce-${cat}`);
    })();
    assert.equal(new Set(ids).size, ids.length, 'a link was written twice');
    assert.deepEqual(new Set(ids), new Set(written.map((x) => x.event.eventId)));
    // In order: each stream's events appear in the category in their stream order.
    for (let s = 0; s < 4; s++) {
      const mine = written.filter((x) => x.stream === `${cat}-${s}`).map((x) => x.event.eventId);
      assert.deepEqual(ids.filter((id) => mine.includes(id)), mine);
    }
  });

test('3-node cluster: $ce- and $et- link each event once, in order, across two leader SIGKILLs',
  { timeout: 180000 }, async () => {
    const cluster = new Cluster({ size: 3, memDb: true, extraArgs: PROJECTIONS });
    cleanups.push(() => cluster.cleanup());
    await cluster.start();
    await cluster.waitForLeader({ timeoutMs: 15000 });
    const settings = { maxReconnections: 200, reconnectionDelay: 100, maxRetries: 50,
      operationTimeout: 5000, failOnNoServerResponse: true, maxDiscoverAttempts: 50,
      defaultUserCredentials: admin };
    const conn = await cluster.connect({ settings });
    const cat = `fo${uid()}`;
    const type = `Moved${uid()}`;
    const TOTAL = 3000;
    const written = [];
    let kills = 0;
    // One writer, batches of 10 events to one stream each, retried with the same ids until
    // acknowledged: the order of acknowledgements is the order in $all.
    for (let b = 0; b < TOTAL / 10; b++) {
      const stream = `${cat}-${b % 7}`;
      const batch = Array.from({ length: 10 }, (_, i) => jsonEvent({ b, i }, type));
      for (let attempt = 0; ; attempt++) {
        try {
          await conn.appendToStream(stream, ANY, batch, admin);
          break;
        } catch (e) {
          if (attempt > 100) throw e;
          await new Promise((r) => setTimeout(r, 100));
        }
      }
      written.push(...batch.map((e) => e.eventId));
      if (kills < 2 && written.length >= (TOTAL * (kills + 1)) / 3) {
        // The leader is linking what was written when it dies; the next leader resumes.
        kills += 1;
        const leader = await cluster.leader({ timeoutMs: 15000 });
        await cluster.kill(leader);
        await cluster.waitForLeader({ timeoutMs: 15000, followers: 'live' });
        await cluster.restart(leader);
      }
    }
    await expectLinks(conn, `$ce-${cat}`, written, 60000);
    await expectLinks(conn, `$et-${type}`, written, 60000);
    closeQuietly(conn);
    // A follower passes the projections API on to the leader.
    const follower = (await cluster.followers({ timeoutMs: 15000 }))[0];
    const status = JSON.parse(await projectionsOf(follower).getStatus('$by_category', admin));
    assert.equal(status.status, 'Running');
  });
