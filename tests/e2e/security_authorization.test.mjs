// Goal: prove that every endpoint of a node's HTTP API and of the manager's API refuses whoever
// its rule excludes (docs/security.md, "Who may call what"): each route is called anonymously
// and as an ordinary signed-in user (neither $admins nor $ops) and must answer 401, with a
// wrong password too for the manager's own routes; then nothing has changed (no user created,
// deleted, disabled or given a new password; the protected stream, its subscription group and
// the projection are intact; the node was neither stopped, restarted nor made to resign) and
// the open endpoints still answer everyone.
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { Manager, ADMIN, waitFor } from './manager_harness.mjs';

const basic = (login, password) => 'Basic ' + Buffer.from(`${login}:${password}`).toString('base64');
const PLAIN = basic('plain-user', 'plain-pw');
const OPS = basic('ops', 'changeit');
const WRONG = basic('admin', 'wrong');
const SECRET = 'authz-secret';
const GROUP = 'g';
const PROJECTION = 'authz-proj';
const GUID = randomUUID();

const m = new Manager({ nodes: [{ name: 'n1', options: { MemDb: true, RunProjections: 'All' } }] });
let node;

after(async () => {
  await m.cleanup();
});

async function call(base, method, p, { auth, body, headers = {} } = {}) {
  const h = { Accept: 'application/json', ...headers };
  if (auth) h.Authorization = auth;
  if (body !== undefined && !h['Content-Type']) h['Content-Type'] = 'application/json';
  const res = await fetch(`${base}${p}`, { method, headers: h,
    body: body === undefined ? undefined : (typeof body === 'string' ? body : JSON.stringify(body)),
    signal: AbortSignal.timeout(15000) });
  const text = await res.text();
  return { status: res.status, text };
}

const events = JSON.stringify([{ eventId: randomUUID(), eventType: 'Intruder', data: { x: 1 } }]);
const ES_EVENTS = { 'Content-Type': 'application/vnd.eventstore.events+json' };

// [method, path, options, refused for: 'anon' | 'both' (anonymous and the ordinary user)]
const NODE_ROUTES = [
  ['GET', '/info/options', {}, 'both'],
  ['POST', '/admin/shutdown', {}, 'both'],
  ['POST', '/admin/scavenge', {}, 'both'],
  ['GET', '/admin/scavenge/current', {}, 'both'],
  ['GET', `/admin/scavenge/${GUID}`, {}, 'both'],
  ['DELETE', `/admin/scavenge/${GUID}`, {}, 'both'],
  ['POST', '/admin/node/resign', {}, 'both'],
  ['POST', '/admin/members/replace', { body: { seat: GUID, instanceId: randomUUID() } }, 'both'],
  ['GET', '/users', {}, 'both'],
  ['POST', '/users', { body: { loginName: 'intruder', fullName: 'I', groups: ['$admins'],
    password: 'x' } }, 'both'],
  ['GET', '/users/$current', {}, 'anon'],
  ['GET', '/users/admin', {}, 'both'],
  ['PUT', '/users/admin', { body: { fullName: 'Owned', groups: [] } }, 'both'],
  ['DELETE', '/users/ops', {}, 'both'],
  ['POST', '/users/ops/command/disable', {}, 'both'],
  ['POST', '/users/ops/command/enable', {}, 'both'],
  ['POST', '/users/admin/command/reset-password', { body: { newPassword: 'owned' } }, 'both'],
  ['POST', '/users/admin/command/change-password',
    { body: { currentPassword: 'wrong', newPassword: 'owned' } }, 'both'],
  ['GET', `/streams/${SECRET}`, {}, 'both'],
  ['GET', `/streams/${SECRET}/0`, {}, 'both'],
  ['GET', `/streams/${SECRET}/0/forward/10`, {}, 'both'],
  ['POST', `/streams/${SECRET}`, { body: events, headers: ES_EVENTS }, 'both'],
  ['POST', `/streams/${SECRET}/incoming/${GUID}`,
    { body: { x: 1 }, headers: { 'ES-EventType': 'Intruder' } }, 'both'],
  ['DELETE', `/streams/${SECRET}`, {}, 'both'],
  ['GET', `/streams/${SECRET}/metadata`, {}, 'both'],
  ['POST', `/streams/${SECRET}/metadata`, { body: JSON.stringify([{ eventId: randomUUID(),
    eventType: '$metadata', data: { $acl: { $r: '$all' } } }]), headers: ES_EVENTS }, 'both'],
  ['GET', '/streams/%24all', {}, 'both'],
  ['GET', '/streams/%24settings', {}, 'both'],
  ['GET', `/subscriptions/${SECRET}/${GROUP}/info`, {}, 'both'],
  ['GET', `/subscriptions/${SECRET}/${GROUP}`, {}, 'both'],
  ['GET', `/subscriptions/${SECRET}/${GROUP}/5`, {}, 'both'],
  ['PUT', `/subscriptions/${SECRET}/g2`, { body: {} }, 'both'],
  ['POST', `/subscriptions/${SECRET}/${GROUP}`, { body: {} }, 'both'],
  ['DELETE', `/subscriptions/${SECRET}/${GROUP}`, {}, 'both'],
  ['POST', `/subscriptions/${SECRET}/${GROUP}/replayParked`, {}, 'both'],
  ['POST', `/subscriptions/${SECRET}/${GROUP}/ack?ids=${GUID}`, {}, 'both'],
  ['POST', `/subscriptions/${SECRET}/${GROUP}/nack?ids=${GUID}`, {}, 'both'],
  ['POST', `/subscriptions/${SECRET}/${GROUP}/ack/${GUID}`, {}, 'both'],
  ['POST', `/subscriptions/${SECRET}/${GROUP}/nack/${GUID}`, {}, 'both'],
  ['GET', '/projections/any', {}, 'anon'],
  ['GET', `/projection/${PROJECTION}`, {}, 'anon'],
  ['GET', `/projection/${PROJECTION}/statistics`, {}, 'anon'],
  ['GET', `/projection/${PROJECTION}/state`, {}, 'anon'],
  ['GET', `/projection/${PROJECTION}/result`, {}, 'anon'],
  ['GET', `/projection/${PROJECTION}/query`, {}, 'anon'],
  ['POST', '/projections/continuous?name=intruder&type=JS',
    { body: 'fromAll().when({})', headers: { 'Content-Type': 'application/javascript' } }, 'both'],
  ['PUT', `/projection/${PROJECTION}/query?type=JS`,
    { body: 'fromAll().when({$any: function(s){return s;}})',
      headers: { 'Content-Type': 'application/javascript' } }, 'both'],
  ['POST', `/projection/${PROJECTION}/command/disable`, {}, 'both'],
  ['DELETE', `/projection/${PROJECTION}`, {}, 'both'],
  ['DELETE', `/projection/${PROJECTION}?deleteCheckpointStream=yes&deleteStateStream=yes`, {},
    'both'],
  ['GET', `/projection/${PROJECTION}/config`, {}, 'both'],
  ['PUT', `/projection/${PROJECTION}/config`, { body: { checkpointAfterMs: 5 } }, 'both'],
  ['PUT', `/projection/${PROJECTION}/query?type=JS&emit=yes`,
    { body: 'fromAll().when({})', headers: { 'Content-Type': 'application/javascript' } }, 'both'],
  ['POST', '/projection/%24by_category/command/enable', {}, 'both'],
  ['POST', '/projection/%24by_category/command/reset', {}, 'both'],
  ['PUT', '/projection/%24by_category/query',
    { body: 'last\n-', headers: { 'Content-Type': 'text/plain' } }, 'both'],
];

const MANAGER_ROUTES = [
  ['GET', '/api/history', {}, 'both'],
  ['GET', '/api/nodes/n1/log?lines=5', {}, 'both'],
  ['GET', '/api/nodes/n1/log?follow=true&lines=1', {}, 'both'],
  ['POST', '/api/nodes/n1/stop', {}, 'both'],
  ['POST', '/api/nodes/n1/start', {}, 'both'],
  ['POST', '/api/nodes/n1/restart', {}, 'both'],
  ['POST', '/api/nodes/n1/resign', {}, 'both'],
  ['POST', '/api/cluster/rolling-restart', {}, 'both'],
  ['POST', '/api/nodes/n1/backup', {}, 'both'],
  ['POST', '/api/nodes/n1/restore?folder=x', {}, 'both'],
  ['GET', '/api/backups', {}, 'both'],
  ['POST', '/api/nodes/n1/scavenge', {}, 'both'],
  ['GET', '/api/nodes/n1/scavenge', {}, 'both'],
  ['POST', '/api/cluster/scavenge', {}, 'both'],
  ['GET', '/api/cluster/scavenge', {}, 'both'],
  ['GET', '/api/auth', {}, 'anon'],
  ['GET', '/api/recent-streams', {}, 'both'],
  ['GET', `/api/streams/${SECRET}`, {}, 'both'],
  ['GET', '/api/users', {}, 'both'],
  ['POST', '/api/users', { body: { loginName: 'intruder', fullName: 'I', groups: [],
    password: 'x' } }, 'both'],
  ['DELETE', '/api/users/ops', {}, 'both'],
  ['GET', `/api/subscriptions/${SECRET}/${GROUP}/info`, {}, 'both'],
  ['DELETE', `/api/subscriptions/${SECRET}/${GROUP}`, {}, 'both'],
  ['POST', `/api/subscriptions/${SECRET}/${GROUP}/replayParked`, {}, 'both'],
  ['GET', '/api/projections/any', {}, 'anon'],
  ['GET', `/api/projection/${PROJECTION}/config`, {}, 'both'],
  ['POST', `/api/projection/${PROJECTION}/command/disable`, {}, 'both'],
  ['DELETE', `/api/projection/${PROJECTION}?deleteCheckpointStream=yes`, {}, 'both'],
];

async function expectRefusals(base, routes, extra = []) {
  for (const [method, p, opts, refused] of routes) {
    const callers = [['anonymous', undefined], ...extra];
    if (refused === 'both') callers.push(['an ordinary user', PLAIN]);
    for (const [who, auth] of callers) {
      const r = await call(base, method, p, { ...opts, auth });
      // 401, or 403 where a route tells a signed-in caller that it lacks the role.
      const refused = r.status === 401 || (auth === PLAIN && r.status === 403);
      assert.ok(refused, `${method} ${p} as ${who}: ${r.status} ${r.text.slice(0, 200)}`);
    }
  }
}

test('every endpoint refuses whom its rule excludes; nothing changes', { timeout: 120000 },
  async () => {
    await m.start();
    await m.waitForCluster(0);
    // The manager proxies to a node it counts as running (its health check passed).
    await waitFor(async () => (await m.nodeInfo('n1'))?.state === 'Running',
      { timeoutMs: 15000, what: 'n1 running in the manager\'s view' });
    const spec = m.node('n1').options;
    node = `http://${m.ip}:${spec.ExtHttpPort}`;
    const manager = `http://${m.ip}:${m.extHttpPort}`;
    const pid = (await m.nodeInfo('n1')).pid;

    // Setup as admin: an ordinary user, a stream only admins may touch, a group, a projection.
    assert.equal((await call(node, 'POST', '/users', { auth: ADMIN, body: { loginName: 'plain-user',
      fullName: 'Plain', groups: ['readers'], password: 'plain-pw' } })).status, 201);
    const meta = await call(node, 'POST', `/streams/${SECRET}/metadata`, { auth: ADMIN,
      headers: ES_EVENTS, body: JSON.stringify([{ eventId: randomUUID(), eventType: '$metadata',
        data: { $acl: { $r: '$admins', $w: '$admins', $d: '$admins', $mr: '$admins',
          $mw: '$admins' } } }]) });
    assert.equal(meta.status, 201, meta.text);
    assert.equal((await call(node, 'POST', `/streams/${SECRET}`, { auth: ADMIN, headers: ES_EVENTS,
      body: JSON.stringify([{ eventId: randomUUID(), eventType: 'Kept', data: { n: 1 } }]) }))
      .status, 201);
    assert.equal((await call(node, 'PUT', `/subscriptions/${SECRET}/${GROUP}`,
      { auth: ADMIN, body: {} })).status, 201);
    const created = await call(node, 'POST',
      `/projections/continuous?name=${PROJECTION}&type=JS&emit=no`, { auth: ADMIN,
        body: 'fromAll().when({})', headers: { 'Content-Type': 'application/javascript' } });
    assert.equal(created.status, 201, created.text);
    await waitFor(async () => (await call(node, 'GET', '/users/$current', { auth: PLAIN }))
      .status === 200, { timeoutMs: 10000, what: 'the ordinary user signing in' });

    await expectRefusals(node, NODE_ROUTES);
    await expectRefusals(manager, MANAGER_ROUTES, [['a wrong password', WRONG]]);

    // Gossip pushes need the cluster's signature, on the node and on the manager.
    const intNode = `http://${m.ip}:${spec.IntHttpPort}`;
    const intManager = `http://${m.ip}:${m.intHttpPort}`;
    for (const base of [intNode, intManager]) {
      const r = await call(base, 'POST', '/gossip', { body: { members: [] } });
      assert.equal(r.status, 401, `unsigned POST /gossip on ${base}: ${r.status} ${r.text}`);
    }
    assert.equal((await call(manager, 'POST', '/gossip', { body: { members: [] } })).status, 404,
      'the manager takes gossip pushes on its internal port only');

    // The subscription list shows only groups of streams the caller may read.
    for (const auth of [undefined, PLAIN]) {
      const list = await call(node, 'GET', '/subscriptions', { auth });
      assert.equal(list.status, 200);
      assert.ok(!list.text.includes(SECRET), `the list names ${SECRET}: ${list.text}`);
    }

    // Nothing changed, and the node kept serving without a restart.
    assert.equal((await call(node, 'GET', '/users/$current', { auth: ADMIN })).status, 200);
    assert.equal((await call(node, 'GET', '/users/$current', { auth: OPS })).status, 200);
    assert.equal((await call(node, 'GET', '/users/intruder', { auth: ADMIN })).status, 404);
    const admin = JSON.parse((await call(node, 'GET', '/users/admin', { auth: ADMIN })).text);
    assert.deepEqual(admin.data.groups, ['$admins']);
    const read = await call(node, 'GET', `/streams/${SECRET}/0/forward/10?embed=body`,
      { auth: ADMIN, headers: { Accept: 'application/vnd.eventstore.atom+json' } });
    assert.equal(read.status, 200);
    assert.equal(JSON.parse(read.text).entries.length, 1);
    assert.equal((await call(node, 'GET', `/subscriptions/${SECRET}/${GROUP}/info`,
      { auth: ADMIN })).status, 200);
    const projection = await call(node, 'GET', `/projection/${PROJECTION}`, { auth: ADMIN });
    assert.equal(projection.status, 200);
    assert.doesNotMatch(projection.text, /"status":\s*"(Stopped|Aborted)/);
    const byCategory = await call(node, 'GET', '/projection/%24by_category/query', { auth: ADMIN });
    assert.equal(byCategory.text, 'first\n-', 'the standard projection keeps its query');
    const n1 = await m.nodeInfo('n1');
    assert.equal(n1.state, 'Running');
    assert.equal(n1.pid, pid, 'the node was not restarted');

    // The open endpoints answer everyone.
    for (const p of ['/gossip', '/ping', '/info', '/stats', '/health/live', '/health/ready',
      '/metrics']) {
      const r = await call(node, 'GET', p);
      assert.ok(r.status === 200 || r.status === 204, `GET ${p}: ${r.status}`);
    }
    for (const p of ['/gossip', '/health/live', '/metrics', '/api/nodes', '/api/clusters',
      '/api/machines', '/api/metrics-history']) {
      const r = await call(manager, 'GET', p);
      assert.ok(r.status === 200 || r.status === 204, `manager GET ${p}: ${r.status}`);
    }
  });
