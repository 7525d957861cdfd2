// Proves EventStore's projection management beyond create/state (issue 13), with the unmodified
// node-eventstore-client and plain HTTP: the standard projections take enable/disable/reset
// ($by_category disabled links nothing, enabled again it links what it missed, each once, in
// order) and $by_category's query ("last\n-") changes how categories are cut; a user projection's
// /config (EventStore's fields) is read and changed, PUT /query?emit= switches emitting, and
// DELETE honours deleteCheckpointStream and deleteEmittedStreams (tracked streams only); a
// one-time projection is kept: after a SIGKILL the node shows it Completed with its state; every
// one of these routes refuses anonymous callers and users outside $admins/$ops (401). In a
// 3-node cluster a follower passes ProjectionsManager's and geteventstore-promise's calls
// (lib/gep_projections.mjs) on to the leader.
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import EventStore from 'geteventstore-promise';
import { Worker, waitFor, canConnect } from './lib/harness.mjs';
import { exerciseGepProjections } from './lib/gep_projections.mjs';
import { Cluster } from './lib/cluster.mjs';
import { es, connect, closeQuietly, admin, ANY, jsonEvent, num } from './lib/es.mjs';

const cleanups = [];
after(async () => { for (const c of cleanups.reverse()) await c(); });
const uid = () => randomUUID().replace(/-/g, '').slice(0, 10);
const managerOf = (node) =>
  new es.ProjectionsManager(new es.NoopLogger(), `http://${node.host}:${node.httpPort}`, 10000);
const basic = (login, password) =>
  `Basic ${Buffer.from(`${login}:${password}`).toString('base64')}`;
const ADMIN = basic('admin', 'changeit');

// auth: an Authorization header value, or null for an anonymous call.
async function call(node, method, path, { auth = ADMIN, body } = {}) {
  const headers = { Accept: 'application/json' };
  if (auth) headers.Authorization = auth;
  const r = await fetch(`http://${node.host}:${node.httpPort}${path}`, { method, headers, body });
  return { status: r.status, text: await r.text() };
}

async function linked(conn, stream) {
  const slice = await conn.readStreamEventsForward(stream, 0, 4096, true, admin);
  return slice.status === 'success' ? slice.events.map((e) => e.event?.eventId) : [];
}

async function expectLinked(conn, stream, ids) {
  let last = [];
  await waitFor(async () => (last = await linked(conn, stream)).length >= ids.length,
    { timeoutMs: 20000, what: `${ids.length} links in ${stream}` }).catch((e) => {
    throw new Error(`${e.message}; found ${last.length}`);
  });
  assert.deepEqual(last, ids, `${stream} does not link each event once, in order`);
}

async function writeTo(conn, stream, n, type = 'Happened') {
  const events = Array.from({ length: n }, (_, i) => jsonEvent({ i }, type));
  await conn.appendToStream(stream, ANY, events, admin);
  return events.map((e) => e.eventId);
}

const statusOf = async (pm, name) => JSON.parse(await pm.getStatus(name, admin));

test('standard projections: disable, enable, reset and $by_category\'s separator mode',
  { timeout: 120000 }, async () => {
    const w = new Worker({ memDb: true,
      extraArgs: ['--run-projections=All', '--start-standard-projections=true'] });
    cleanups.push(() => w.cleanup());
    await w.start();
    const conn = await connect(w);
    cleanups.push(async () => closeQuietly(conn));
    const pm = managerOf(w);
    const cat = `shop${uid()}`;
    const first = await writeTo(conn, `${cat}-1`, 5);
    await expectLinked(conn, `$ce-${cat}`, first);

    await pm.disable('$by_category', admin);
    assert.equal((await statusOf(pm, '$by_category')).status, 'Stopped');
    const missed = await writeTo(conn, `${cat}-2`, 5, 'Missed');
    // $et- goes on: once it holds the new events, $by_category had its chance and wrote nothing.
    await expectLinked(conn, '$et-Missed', missed);
    assert.deepEqual(await linked(conn, `$ce-${cat}`), first);

    await pm.enable('$by_category', admin);
    assert.equal((await statusOf(pm, '$by_category')).status, 'Running');
    await expectLinked(conn, `$ce-${cat}`, [...first, ...missed]);
    await pm.reset('$by_category', admin);
    const later = await writeTo(conn, `${cat}-3`, 3);
    await expectLinked(conn, `$ce-${cat}`, [...first, ...missed, ...later]);
    const stats = await statusOf(pm, '$by_category');
    assert.ok(stats.epoch >= 1 && stats.version >= 3, JSON.stringify(stats));

    // EventStore's query text: categories by the last separator.
    assert.equal(await pm.getQuery('$by_category', admin), 'first\n-');
    await pm.updateQuery('$by_category', 'last\n-', admin);
    assert.equal(await pm.getQuery('$by_category', admin), 'last\n-');
    const region = await writeTo(conn, `${cat}-eu-7`, 2);
    await expectLinked(conn, `$ce-${cat}-eu`, region);
    await assert.rejects(pm.updateQuery('$by_category', 'middle\n-', admin), /400/);
    const config = await call(w, 'GET', '/projection/$by_category/config');
    assert.equal(config.status, 200);
    assert.equal(JSON.parse(config.text).emitEnabled, true);
    assert.equal((await call(w, 'DELETE', '/projection/$by_category')).status, 400);
    assert.equal((await statusOf(pm, '$by_category')).status, 'Running');
  });

test('a user projection\'s config, PUT query?emit= and DELETE with its stream options',
  { timeout: 120000 }, async () => {
    const w = new Worker({ memDb: true, extraArgs: ['--run-projections=All'] });
    cleanups.push(() => w.cleanup());
    await w.start();
    const conn = await connect(w);
    cleanups.push(async () => closeQuietly(conn));
    const pm = managerOf(w);
    const cat = `src${uid()}`;
    const out = `copy${uid()}`;
    const name = `copier-${uid()}`;
    const query = `fromCategory('${cat}').when({ $any: function (s, e) {
      emit('${out}-' + e.streamId.split('-')[1], 'Copied', { n: e.sequenceNumber }); } })`;
    await writeTo(conn, `${cat}-a`, 3);
    await writeTo(conn, `${cat}-b`, 2);
    await pm.createContinuous(name, query, true, admin);
    await waitFor(async () => (await linked(conn, `${out}-b`)).length === 2,
      { timeoutMs: 20000, what: 'the copies' });

    const config = JSON.parse((await call(w, 'GET', `/projection/${name}/config`)).text);
    assert.equal(config.emitEnabled, true);
    assert.equal(config.trackEmittedStreams, true);
    assert.equal(config.checkpointHandledThreshold, 4000);
    const put = await call(w, 'PUT', `/projection/${name}/config`,
      { body: JSON.stringify({ ...config, checkpointHandledThreshold: 10 }) });
    assert.equal(put.status, 200, put.text);
    assert.equal(JSON.parse((await call(w, 'GET', `/projection/${name}/config`)).text)
      .checkpointHandledThreshold, 10);
    assert.equal((await call(w, 'PUT', `/projection/${name}/config`,
      { body: '{"checkpointAfterMs":-5}' })).status, 400);
    assert.equal((await call(w, 'PUT', `/projection/${name}/config`, { body: 'nope' })).status,
      400);

    const r = await call(w, 'PUT', `/projection/${name}/query?type=JS&emit=no`, { body: query });
    assert.equal(r.status, 200, r.text);
    const withConfig = JSON.parse((await call(w, 'GET', `/projection/${name}/query?config=yes`))
      .text);
    assert.equal(withConfig.emitEnabled, false);
    assert.equal(withConfig.query, query);
    await call(w, 'PUT', `/projection/${name}/query?type=JS&emit=yes`, { body: query });

    // Untracked emitted streams cannot be deleted with it (EventStore's rule).
    const untracked = `plain-${uid()}`;
    await pm.createContinuous(untracked, `fromCategory('${cat}').when({})`, false, admin);
    assert.equal((await call(w, 'DELETE',
      `/projection/${untracked}?deleteEmittedStreams=true`)).status, 400);
    await pm.delete(untracked, false, false, true, admin);

    const stats = await statusOf(pm, name);
    assert.ok(stats.version >= 3, JSON.stringify(stats));
    await pm.delete(name, true, true, true, admin);
    await assert.rejects(pm.getStatus(name, admin), /404/);
    for (const stream of [`${out}-a`, `${out}-b`, `$projections-${name}-checkpoint`]) {
      let status;
      await waitFor(async () => {
        const s = await conn.readStreamEventsForward(stream, 0, 10, false, admin);
        status = `${s.status}, ${s.events.length} events`;
        return s.status !== 'success' || s.events.length === 0;
      }, { timeoutMs: 10000, what: `${stream} deleted` }).catch((e) => {
        throw new Error(`${e.message} (${status})`);
      });
    }
    // The source stays.
    assert.equal((await linked(conn, `${cat}-a`)).length, 3);
  });

test('the new routes refuse anonymous callers and users outside $admins and $ops',
  { timeout: 60000 }, async () => {
    const w = new Worker({ memDb: true,
      extraArgs: ['--run-projections=All', '--start-standard-projections=true'] });
    cleanups.push(() => w.cleanup());
    await w.start();
    // start() waits for the TCP port; the HTTP port opens just after it.
    await waitFor(() => canConnect(w.httpPort, w.host), { what: 'the HTTP port' });
    const created = await call(w, 'POST', '/users', { body: JSON.stringify({
      loginName: 'reader', fullName: 'Reader', password: 'secret1', groups: [] }) });
    assert.equal(created.status, 201, created.text);
    const name = `p-${uid()}`;
    assert.equal((await call(w, 'POST', `/projections/continuous?name=${name}&type=JS`,
      { body: 'fromAll().when({})' })).status, 201);
    const reader = basic('reader', 'secret1');
    const refusals = [
      ['GET', `/projection/${name}/config`], ['PUT', `/projection/${name}/config`, '{}'],
      ['PUT', `/projection/${name}/query?emit=yes`, 'fromAll().when({})'],
      ['DELETE', `/projection/${name}?deleteCheckpointStream=true`],
      ['POST', '/projection/$by_category/command/disable'],
      ['POST', '/projection/$by_category/command/reset'],
      ['PUT', '/projection/$by_category/query', 'last\n-'],
      ['GET', '/projection/$by_category/config'],
      ['DELETE', '/projection/$by_category'],
    ];
    for (const [method, path, body] of refusals) {
      for (const auth of [reader, null]) {
        const r = await call(w, method, path, { auth, body });
        assert.equal(r.status, 401, `${method} ${path} as ${auth ? 'reader' : 'anonymous'}`);
      }
    }
    // Nothing changed.
    const pm = managerOf(w);
    assert.equal((await statusOf(pm, '$by_category')).status, 'Running');
    assert.equal(await pm.getQuery('$by_category', admin), 'first\n-');
    assert.equal((await statusOf(pm, name)).status, 'Running');
    // What any signed-in user may read.
    assert.equal((await call(w, 'GET', `/projection/${name}/query?config=yes`,
      { auth: reader })).status, 200);
  });

test('3-node cluster: ProjectionsManager and geteventstore-promise through a follower',
  { timeout: 180000 }, async () => {
    const cluster = new Cluster({ size: 3,
      extraArgs: ['--run-projections=All', '--start-standard-projections=true'] });
    cleanups.push(() => cluster.cleanup());
    await cluster.start();
    const { leader } = await cluster.waitForLeader({ timeoutMs: 15000 });
    const follower = cluster.nodes.find((n) => n !== leader);
    const conn = await cluster.connect({ node: leader });
    const pm = managerOf(follower);
    const cat = `acct${uid()}`;
    for (let i = 0; i < 4; i++) {
      await conn.appendToStream(`${cat}-${i % 2}`, ANY,
        [jsonEvent({ amount: i + 1 }, 'Deposited')], admin);
    }
    const name = `bal-${uid()}`;
    await pm.createContinuous(name, `fromCategory('${cat}').foreachStream().when({
      $init: function () { return { balance: 0 }; },
      Deposited: function (s, e) { s.balance += e.data.amount; } })`, false, admin);
    await waitFor(async () => {
      const s = await pm.getPartitionState(name, `${cat}-1`, admin).catch(() => '');
      return s && JSON.parse(s).balance === 6;
    }, { timeoutMs: 30000, what: 'the state through the follower' });
    const all = await pm.listContinuous(admin);
    assert.ok(all.some((p) => p.name === name));
    assert.ok(all.some((p) => p.name === '$by_category'));
    await pm.disable(name, admin);
    assert.equal((await statusOf(pm, name)).status, 'Stopped');
    await pm.enable(name, admin);
    assert.equal((await statusOf(pm, name)).status, 'Running');
    const oneTime = JSON.parse((await call(follower, 'POST', '/projections/onetime?type=JS',
      { body: `fromCategory('${cat}').when({ $init: function () { return { n: 0 }; },
        Deposited: function (s) { s.n++; } })` })).text).name;
    await waitFor(async () => (await statusOf(pm, oneTime)).status === 'Completed',
      { timeoutMs: 30000, what: 'the one-time projection completed' });
    assert.equal(JSON.parse(await pm.getState(oneTime, admin)).n, 4);

    const gep = new EventStore.HTTPClient({ hostname: follower.host, port: follower.httpPort,
      credentials: { username: 'admin', password: 'changeit' } });
    const transient = `gep-${uid()}`;
    await gep.projections.assert(transient, `fromCategory('${cat}').when({
      $init: function () { return { total: 0 }; },
      Deposited: function (s, e) { s.total += e.data.amount; } })`, 'transient');
    await waitFor(async () => (await gep.projections.getState(transient).catch(() => ({})))
      .total === 10, { timeoutMs: 30000, what: 'geteventstore-promise state through a follower' });
    await gep.projections.remove(transient);
    await exerciseGepProjections(follower, conn);
    await pm.delete(name, false, false, true, admin);
    await assert.rejects(managerOf(leader).getStatus(name, admin), /404/);
  });

test('a one-time projection is kept: after a SIGKILL the node shows it Completed with its state',
  { timeout: 90000 }, async () => {
    const w = new Worker({ extraArgs: ['--run-projections=All'] });
    cleanups.push(() => w.cleanup());
    await w.start();
    let conn = await connect(w);
    const pm = managerOf(w);
    const cat = `kept${uid()}`;
    for (let i = 0; i < 3; i++) await writeTo(conn, `${cat}-${i}`, 4, 'Tick');
    const created = await call(w, 'POST', '/projections/onetime?type=JS', { body:
      `fromCategory('${cat}').when({ $init: function () { return { n: 0 }; },
        Tick: function (s) { s.n++; } })` });
    assert.equal(created.status, 201, created.text);
    const { name } = JSON.parse(created.text);
    await waitFor(async () => (await statusOf(pm, name)).status === 'Completed',
      { timeoutMs: 20000, what: 'the one-time projection completed' });
    assert.deepEqual(JSON.parse(await pm.getState(name, admin)), { n: 12 });
    closeQuietly(conn);
    await w.kill();
    await w.start();
    conn = await connect(w);
    cleanups.push(async () => closeQuietly(conn));
    await writeTo(conn, `${cat}-9`, 2, 'Tick');  // after its end: not folded
    await waitFor(async () => (await statusOf(pm, name).catch(() => ({}))).status === 'Completed',
      { timeoutMs: 20000, what: 'the one-time projection loaded again' });
    const status = await statusOf(pm, name);
    assert.equal(status.mode, 'OneTime');
    assert.deepEqual(JSON.parse(await pm.getState(name, admin)), { n: 12 });
    assert.ok((await pm.listOneTime(admin)).some((p) => p.name === name));
    await pm.delete(name, false, false, true, admin);
  });
