// Proves continuous user projections with node-eventstore-client's unmodified ProjectionsManager:
// a foreachStream balance projection that also links every withdrawal into an audit stream
// (emit enabled) is right for every account, and its audit stream holds each withdrawal once and
// in order, after its node is SIGKILLed and restarted on its folder, and in a 3-node cluster
// after the leader is SIGKILLed twice while 10,000 events are written (the next leader resumes
// from the checkpoint): there each account's result (outputState) is also the last Result event
// of its $projections-<name>-<account>-result stream, linked from $projections-<name>-result,
// and a follower serves the same through GET /result?partition=. A continuous projection without
// emit that emits is Faulted. disable stops it where it is, enable resumes it, reset folds
// everything again without emitting twice, and commands are refused to anonymous callers;
// updateQuery replaces the query (400 if it does not compile).
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { Worker, waitFor } from './lib/harness.mjs';
import { Cluster } from './lib/cluster.mjs';
import { es, connect, closeQuietly, admin, ANY, jsonEvent, num } from './lib/es.mjs';

const cleanups = [];
after(async () => { for (const c of cleanups.reverse()) await c(); });
const uid = () => randomUUID().replace(/-/g, '').slice(0, 10);
const managerOf = (node) =>
  new es.ProjectionsManager(new es.NoopLogger(), `http://${node.host}:${node.httpPort}`, 10000);

// `output`: with outputState(), so each account's result goes to its result stream too.
const balanceQuery = (cat, audit, output = false) => `fromCategory('${cat}').foreachStream().when({
  $init: function () { return { balance: 0, count: 0 }; },
  Deposited: function (s, e) { s.balance += e.data.amount; s.count++; },
  Withdrawn: function (s, e) { s.balance -= e.data.amount; s.count++; linkTo('${audit}', e); }
})${output ? '.outputState()' : ''};`;

// Writes `batches` batches of 10 events to accounts of `cat`, retrying each with the same ids
// until acknowledged; returns the expected states and the ids of withdrawals in write order.
function ledger(cat) {
  const expected = new Map();
  const withdrawals = [];
  let b = 0;
  return {
    expected, withdrawals,
    async write(conn, batches, onBatch) {
      for (let k = 0; k < batches; k++, b++) {
        const account = `${cat}-${b % 5}`;
        const events = Array.from({ length: 10 }, (_, i) => {
          const amount = ((b + i) % 9) + 1;
          const withdraw = (b + i) % 4 === 0;
          const e = expected.get(account) || { balance: 0, count: 0 };
          e.balance += withdraw ? -amount : amount;
          e.count += 1;
          expected.set(account, e);
          return jsonEvent({ amount }, withdraw ? 'Withdrawn' : 'Deposited');
        });
        for (let attempt = 0; ; attempt++) {
          try {
            await conn.appendToStream(account, ANY, events, admin);
            break;
          } catch (e) {
            if (attempt > 100) throw e;
            await new Promise((r) => setTimeout(r, 100));
          }
        }
        for (const e of events) if (e.type === 'Withdrawn') withdrawals.push(e.eventId);
        if (onBatch) await onBatch(k);
      }
    },
  };
}

async function expectState(pm, name, expected) {
  for (const [account, want] of expected) {
    let last = '';
    try {
      await waitFor(async () => {
        last = await pm.getPartitionState(name, account, admin);
        return last !== '' && JSON.parse(last).count === want.count;
      }, { timeoutMs: 60000, what: `${want.count} events folded for ${account}` });
    } catch (e) {
      throw new Error(`${e.message}; last state ${last}`);
    }
    assert.deepEqual(JSON.parse(last), want);
  }
}

// Each account's result stream ends with a Result event of its expected state, the projection's
// result stream links to those streams, and GET /result?partition= (on `node`) agrees.
async function expectResults(conn, node, name, expected) {
  const root = `$projections-${name}-result`;
  for (const [account, want] of expected) {
    const stream = `$projections-${name}-${account}-result`;
    let last = null;
    let read = '';
    await waitFor(async () => {
      const slice = await conn.readStreamEventsBackward(stream, -1, 1, false, admin);
      last = slice.status === 'success' ? slice.events[0]?.event : null;
      read = `${slice.status} ${last?.eventType} ${last?.data}`;
      return last?.eventType === 'Result' && JSON.parse(last.data.toString()).count === want.count;
    }, { timeoutMs: 60000, what: `the last Result in ${stream}` }).catch((e) => {
      throw new Error(`${e.message}; read ${read}`);
    });
    assert.deepEqual(JSON.parse(last.data.toString()), want);
    const meta = JSON.parse(last.metadata.toString());
    assert.ok(num(meta.$c) > 0 && typeof meta.$causedBy === 'string', last.metadata.toString());
    const r = await fetch(`http://${node.host}:${node.httpPort}/projection/${name}/result` +
      `?partition=${encodeURIComponent(account)}`, { headers: { Authorization:
        `Basic ${Buffer.from('admin:changeit').toString('base64')}` } });
    assert.deepEqual(await r.json(), want);
  }
  const links = await conn.readStreamEventsForward(root, 0, 4096, false, admin);
  assert.equal(links.status, 'success');
  const targets = new Set(links.events.map((e) => e.event.data.toString().split('@')[1]));
  assert.deepEqual([...targets].sort(),
    [...expected.keys()].map((a) => `$projections-${name}-${a}-result`).sort());
}

async function expectAudit(conn, audit, withdrawals) {
  let ids = [];
  await waitFor(async () => {
    const slice = await conn.readStreamEventsForward(audit, 0, 4096, true, admin);
    ids = slice.status === 'success' ? slice.events.map((e) => e.event?.eventId) : [];
    return ids.length >= withdrawals.length;
  }, { timeoutMs: 60000, what: `${withdrawals.length} links in ${audit}` });
  assert.deepEqual(ids, withdrawals, `${audit} does not link each withdrawal once, in order`);
}

test('a continuous projection resumes from its checkpoint after SIGKILL: state and emitted links',
  { timeout: 120000 }, async () => {
    const w = new Worker({ extraArgs: ['--run-projections=All'] });
    cleanups.push(() => w.cleanup());
    await w.start();
    const cat = `acc${uid()}`;
    const audit = `audit${uid()}`;
    const name = `balances-${uid()}`;
    const book = ledger(cat);
    let conn = await connect(w);
    await book.write(conn, 100);
    const pm = managerOf(w);
    await pm.createContinuous(name, balanceQuery(cat, audit), false, admin);
    await expectState(pm, name, book.expected);
    closeQuietly(conn);
    await w.kill();
    await w.start();
    conn = await connect(w);
    cleanups.push(async () => closeQuietly(conn));
    await book.write(conn, 100);
    await expectState(pm, name, book.expected);
    await expectAudit(conn, audit, book.withdrawals);
    const status = JSON.parse(await pm.getStatus(name, admin));
    assert.equal(status.mode, 'Continuous');
    assert.equal(status.status, 'Running');
    assert.match(await pm.getQuery(name, admin), /foreachStream/);

    // Without emit enabled, emitting faults it.
    const quiet = `quiet-${uid()}`;
    await managerOf(w)._client.sendPost(
      `http://${w.host}:${w.httpPort}/projections/continuous?name=${quiet}&type=JS&emit=no`,
      balanceQuery(cat, `${audit}x`), admin, 201);
    await waitFor(async () => JSON.parse(await pm.getStatus(quiet, admin)).status === 'Faulted',
      { timeoutMs: 20000, what: 'the projection without emit faulted' });
    assert.match(JSON.parse(await pm.getStatus(quiet, admin)).stateReason, /emit enabled/);
    await pm.delete(quiet, false, false, false, admin);
    await pm.delete(name, false, false, false, admin);
    await assert.rejects(pm.getStatus(name, admin), /404/);
  });

test('disable, enable and reset a continuous projection', { timeout: 90000 }, async () => {
  const w = new Worker({ memDb: true, extraArgs: ['--run-projections=All'] });
  cleanups.push(() => w.cleanup());
  await w.start();
  const conn = await connect(w);
  cleanups.push(async () => closeQuietly(conn));
  const pm = managerOf(w);
  const cat = `cmd${uid()}`;
  const audit = `cmdaudit${uid()}`;
  const name = `cmdbal-${uid()}`;
  const book = ledger(cat);
  await book.write(conn, 20);
  await pm.createContinuous(name, balanceQuery(cat, audit), false, admin);
  await expectState(pm, name, book.expected);
  const before = new Map([...book.expected].map(([k, v]) => [k, { ...v }]));

  await pm.disable(name, admin);
  assert.equal(JSON.parse(await pm.getStatus(name, admin)).status, 'Stopped');
  await book.write(conn, 20);
  // A projection created after these writes has folded them all: the disabled one had the time
  // to, and did not.
  const control = `control-${uid()}`;
  await pm._client.createTransient(pm._httpEndPoint, control,
    balanceQuery(cat, audit).replace(/linkTo\([^)]*\);/, ''), admin);
  await expectState(pm, control, book.expected);
  await expectState(pm, name, before);

  await pm.enable(name, admin);
  await expectState(pm, name, book.expected);
  await pm.reset(name, admin);
  await expectState(pm, name, book.expected);
  await expectAudit(conn, audit, book.withdrawals);

  // The new query is saved and runs (from the last checkpoint, which depends on timing, so
  // only its text and status are checked here).
  const updated = balanceQuery(cat, audit).replace('s.count++; linkTo', 's.count += 100; linkTo');
  await pm.updateQuery(name, updated, admin);
  assert.equal(await pm.getQuery(name, admin), updated);
  await waitFor(async () => JSON.parse(await pm.getStatus(name, admin)).status === 'Running',
    { timeoutMs: 20000, what: 'running the new query' });
  await assert.rejects(pm.updateQuery(name, 'fromAll().when({', admin), /400/);

  const base = `http://${w.host}:${w.httpPort}`;
  const anonymous = await fetch(`${base}/projection/${name}/command/disable`, { method: 'POST' });
  assert.equal(anonymous.status, 401);
  await assert.rejects(pm._client.sendPost(`${base}/projection/${name}/command/explode`, '',
    admin, 200), /404/);
  await pm.delete(control, false, false, false, admin);
  await pm.delete(name, false, false, false, admin);
});

// Issue 13's check: the balance projection is right after 10,000 events (1,000 batches of 10),
// with the leader SIGKILLed twice during the writes.
const CLUSTER_BATCHES = 1000;
const CLUSTER_KILLS_AT = [333, 666];

test('3-node cluster: a continuous projection survives two leader SIGKILLs during 10,000 events',
  { timeout: 240000 }, async () => {
    const cluster = new Cluster({ size: 3, memDb: true, extraArgs: ['--run-projections=All'] });
    cleanups.push(() => cluster.cleanup());
    await cluster.start();
    await cluster.waitForLeader({ timeoutMs: 15000 });
    const settings = { maxReconnections: 200, reconnectionDelay: 100, maxRetries: 50,
      operationTimeout: 5000, failOnNoServerResponse: true, maxDiscoverAttempts: 50,
      defaultUserCredentials: admin };
    const conn = await cluster.connect({ settings });
    cleanups.push(async () => closeQuietly(conn));
    const cat = `cl${uid()}`;
    const audit = `claudit${uid()}`;
    const name = `clbal-${uid()}`;
    const book = ledger(cat);
    const leader = await cluster.leader({ timeoutMs: 15000 });
    await managerOf(leader).createContinuous(name, balanceQuery(cat, audit, true), false, admin);
    await book.write(conn, CLUSTER_BATCHES, async (k) => {
      if (!CLUSTER_KILLS_AT.includes(k)) return;
      const current = await cluster.leader({ timeoutMs: 15000 });
      await cluster.kill(current);
      await cluster.waitForLeader({ timeoutMs: 15000, followers: 'live' });
      await cluster.restart(current);
    });
    const now = await cluster.leader({ timeoutMs: 15000 });
    await expectState(managerOf(now), name, book.expected);
    await expectAudit(conn, audit, book.withdrawals);
    // A follower answers too (passed on to the leader).
    const follower = (await cluster.followers({ timeoutMs: 15000 }))[0];
    await expectResults(conn, follower, name, book.expected);
    const status = JSON.parse(await managerOf(follower).getStatus(name, admin));
    assert.equal(status.status, 'Running');
    assert.ok(num(status.eventsProcessedAfterRestart) >= 0);
  });
