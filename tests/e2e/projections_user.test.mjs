// Proves transient user projections with node-eventstore-client's unmodified ProjectionsManager
// on a node with --run-projections=All: a classic fromCategory(...).foreachStream() balance
// projection gives the right state for every account after 10,000 events; the projection is
// listed, its query, state and result are served, and it is deleted; a throwing, a runaway and
// an emitting query become Faulted with their reason while the node keeps serving; bad queries,
// duplicates and anonymous callers are refused with clear answers; a one-time projection folds
// $all as it was when created and completes; and
// geteventstore-promise's projection calls (assert, getState, getResult, getInfo,
// getAllProjectionsInfo, remove, and those in lib/gep_projections.mjs: config, stop/start,
// disableAll/enableAll, reset, partitions' state and result) work unmodified.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { Worker, waitFor } from './lib/harness.mjs';
import EventStore from 'geteventstore-promise';
import { exerciseGepProjections } from './lib/gep_projections.mjs';
import { es, connect, closeQuietly, admin, ops, ANY, jsonEvent } from './lib/es.mjs';

let w;
let conn;
let pm;
before(async () => {
  w = new Worker({ memDb: true,
    extraArgs: ['--run-projections=All', '--start-standard-projections=true'] });
  await w.start();
  conn = await connect(w);
  pm = new es.ProjectionsManager(new es.NoopLogger(), `http://${w.host}:${w.httpPort}`, 10000);
});
after(async () => {
  closeQuietly(conn);
  await w?.cleanup();
});

// ProjectionsManager.createTransient of node-eventstore-client 23.10.1 drops its `name` argument
// (it passes the query as the name); the client's own ProjectionsClient, which the manager
// wraps, sends the request EventStore documents.
const createTransient = (name, query, creds) =>
  pm._client.createTransient(pm._httpEndPoint, name, query, creds);

const uid = () => randomUUID().replace(/-/g, '').slice(0, 10);

async function statusOf(name) {
  return JSON.parse(await pm.getStatus(name, admin));
}

test('a foreachStream balance projection is right for every account after 10,000 events',
  { timeout: 120000 }, async () => {
    const cat = `account${uid()}`;
    const name = `balance-${uid()}`;
    const query = `fromCategory('${cat}').foreachStream().when({
      $init: function () { return { balance: 0, count: 0 }; },
      Deposited: function (s, e) { s.balance += e.data.amount; s.count++; },
      Withdrawn: function (s, e) { s.balance -= e.data.amount; s.count++; }
    }).outputState();`;
    const expected = new Map();
    const write = async (from, to) => {
      for (let b = from; b < to; b += 100) {
        const account = `${cat}-${(b / 100) % 10}`;
        const events = Array.from({ length: 100 }, (_, i) => {
          const amount = ((b + i) % 7) + 1;
          const deposit = (b + i) % 3 !== 0;
          const e = expected.get(account) || { balance: 0, count: 0 };
          e.balance += deposit ? amount : -amount;
          e.count += 1;
          expected.set(account, e);
          return jsonEvent({ amount }, deposit ? 'Deposited' : 'Withdrawn');
        });
        await conn.appendToStream(account, ANY, events, admin);
      }
    };
    await write(0, 5000); // half before the projection exists: it starts from the beginning
    await createTransient(name, query, admin);
    await write(5000, 10000);
    for (const [account, want] of expected) {
      await waitFor(async () => {
        const state = await pm.getPartitionState(name, account, admin);
        return state !== '' && JSON.parse(state).count === want.count;
      }, { timeoutMs: 60000, what: `${want.count} events folded for ${account}` });
      assert.deepEqual(JSON.parse(await pm.getPartitionState(name, account, admin)), want);
      assert.deepEqual(JSON.parse(await pm.getPartitionResult(name, account, admin)), want);
    }
    const listed = (await pm.listAll(admin)).find((p) => p.name === name);
    assert.equal(listed.mode, 'Transient');
    assert.equal(listed.status, 'Running');
    assert.ok(listed.eventsProcessedAfterRestart >= 10000, JSON.stringify(listed));
    assert.equal(await pm.getQuery(name, admin), query);
    await pm.delete(name, false, false, false, admin);
    await assert.rejects(pm.getStatus(name, admin), /404/);
  });

test('throwing, runaway and emitting queries fault with their reason; the node keeps serving',
  { timeout: 60000 }, async () => {
    const cat = `fault${uid()}`;
    await conn.appendToStream(`${cat}-1`, ANY, jsonEvent({ a: 1 }, 'Poke'), admin);
    const cases = [
      ['throws', `fromCategory('${cat}').when({ Poke: function () { throw new Error('boom'); } })`,
        /boom/],
      ['loops', `fromCategory('${cat}').when({ Poke: function () { for (;;) {} } })`,
        /limit of 250 ms/],
      ['emits', `fromCategory('${cat}').when({ Poke: function (s, e) { emit('x', 'Y', {}); } })`,
        /not allowed in a transient/],
    ];
    for (const [kind, query, reason] of cases) {
      const name = `${kind}-${uid()}`;
      await createTransient(name, query, ops); // $ops may manage projections
      await waitFor(async () => (await statusOf(name)).status === 'Faulted',
        { timeoutMs: 20000, what: `${kind} faulted` });
      assert.match((await statusOf(name)).stateReason, reason);
      // The node still takes writes and reads while a projection has run away.
      await conn.appendToStream(`${cat}-2`, ANY, jsonEvent({ b: 1 }, 'Other'), admin);
      await pm.delete(name, false, false, false, admin);
    }
  });

test('a one-time projection (createOneTime, no name) folds what exists, then completes',
  { timeout: 30000 }, async () => {
    const cat = `once${uid()}`;
    for (let i = 0; i < 30; i++) {
      await conn.appendToStream(`${cat}-${i % 3}`, ANY, jsonEvent({ i }, 'Tick'), admin);
    }
    const existing = new Set((await pm.listOneTime(admin)).map((p) => p.name));
    await pm.createOneTime(`fromCategory('${cat}').when({
      $init: function () { return { n: 0 }; }, Tick: function (s) { s.n++; } });`, admin);
    const created = (await pm.listOneTime(admin)).filter((p) => !existing.has(p.name));
    assert.equal(created.length, 1);
    const { name } = created[0];
    assert.equal(created[0].mode, 'OneTime');
    await waitFor(async () => (await statusOf(name)).status === 'Completed',
      { timeoutMs: 20000, what: 'the one-time projection completed' });
    assert.deepEqual(JSON.parse(await pm.getState(name, admin)), { n: 30 });
    await pm.delete(name, false, false, false, admin);
  });

test('bad queries, duplicates and anonymous callers are refused',
  { timeout: 30000 }, async () => {
    await assert.rejects(createTransient(`syntax-${uid()}`, 'fromAll().when({', admin),
      /400/);
    await assert.rejects(createTransient(`nosource-${uid()}`, 'var a = 1;', admin), /400/);
    const name = `dup-${uid()}`;
    await createTransient(name, 'fromAll().when({ $any: function (s) { return s; } })', admin);
    await assert.rejects(createTransient(name, 'fromAll()', admin), /409/);
    await assert.rejects(createTransient('$mine', 'fromAll()', admin), /400/);
    const base = `http://${w.host}:${w.httpPort}`;
    const anonymous = await fetch(`${base}/projections/transient?name=anon&type=JS`,
      { method: 'POST', body: 'fromAll()' });
    assert.equal(anonymous.status, 401);
    const anonymousDelete = await fetch(`${base}/projection/${name}`, { method: 'DELETE' });
    assert.equal(anonymousDelete.status, 401);
    const anonymousState = await fetch(`${base}/projection/${name}/state`);
    assert.equal(anonymousState.status, 401);
    await pm.delete(name, false, false, false, admin);
    await assert.rejects(pm.delete(name, false, false, false, admin), /404/);
  });

test('geteventstore-promise: assert a transient projection, read its state and result, remove it',
  { timeout: 30000 }, async () => {
    const client = new EventStore.HTTPClient({
      hostname: w.host, port: w.httpPort,
      credentials: { username: 'admin', password: 'changeit' },
    });
    const cat = `gesp${uid()}`;
    const name = `counter-${uid()}`;
    for (let i = 0; i < 5; i++) {
      await conn.appendToStream(`${cat}-${i % 2}`, ANY, jsonEvent({ i }, 'Counted'), admin);
    }
    await client.projections.assert(name, `fromCategory('${cat}').when({
      $init: function () { return { n: 0 }; },
      Counted: function (s) { s.n++; }
    }).transformBy(function (s) { return { total: s.n }; });`, 'transient');
    await waitFor(async () => (await client.projections.getState(name))?.n === 5,
      { timeoutMs: 20000, what: 'the state counting 5 events' });
    assert.deepEqual(await client.projections.getResult(name), { total: 5 });
    // getAllProjectionsInfo lists all-non-transient, as EventStore: the standard ones, not this.
    const all = await client.projections.getAllProjectionsInfo();
    assert.ok(all.projections.some((p) => p.name === '$by_category'));
    assert.ok(!all.projections.some((p) => p.name === name));
    assert.equal((await client.projections.getInfo('$by_category')).status, 'Running');
    await client.projections.remove(name);
    await assert.rejects(pm.getStatus(name, admin), /404/);
  });

test('geteventstore-promise: config, stop/start, disableAll/enableAll, reset, partitions, remove',
  { timeout: 60000 }, async () => {
    await exerciseGepProjections(w, conn);
  });
