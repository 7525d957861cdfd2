// Goal: prove the users API in a 3-node cluster (real processes on loopback): every change sent
// to a follower is passed on to the leader and answered with the leader's status and Location;
// reads on a follower answer from its own committed data; a user created, disabled, re-enabled,
// given a new password or deleted through one node is accepted or refused accordingly on every
// node (over HTTP and over TCP with node-eventstore-client pinned to a follower), with no stale
// credential surviving on any node.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { Cluster, waitFor } from './lib/cluster.mjs';
import { es, ANY, jsonEvent, streamName } from './lib/es.mjs';
import { httpFetch, scheme } from './lib/tls.mjs';

const cluster = new Cluster({ memDb: true });
const ADMIN = 'Basic ' + Buffer.from('admin:changeit').toString('base64');
let leader;
let followers;

function basic(login, password) {
  return 'Basic ' + Buffer.from(`${login}:${password}`).toString('base64');
}

async function call(node, method, path, { auth, body } = {}) {
  const headers = { Accept: 'application/json' };
  if (auth) headers.Authorization = auth;
  if (body !== undefined) headers['Content-Type'] = 'application/json';
  const res = await httpFetch(`${scheme}://${node.host}:${node.httpPort}${path}`, { method, headers,
    body: body === undefined ? undefined : JSON.stringify(body),
    signal: AbortSignal.timeout(15000) });
  const text = await res.text();
  let json = null;
  try { json = JSON.parse(text); } catch {}
  return { status: res.status, headers: res.headers, json, text };
}

async function accepted(node, login, password) {
  const r = await call(node, 'GET', '/users/$current', { auth: basic(login, password) });
  assert.ok(r.status === 200 || r.status === 401, `${node.name}: ${r.status} ${r.text}`);
  return r.status === 200;
}

// Every node reaches `expected` for these credentials; replication takes a moment, so each node
// is polled with a deadline (a stale cached credential would never flip and fail the wait).
async function everywhere(login, password, expected, what) {
  for (const node of cluster.live()) {
    await waitFor(async () => (await accepted(node, login, password)) === expected,
      { timeoutMs: 5000, what: `${what} on ${node.name}` });
  }
}

before(async () => {
  await cluster.start();
  ({ leader } = await cluster.waitForLeader({ timeoutMs: 10000 }));
  followers = cluster.live().filter((n) => n !== leader);
});

after(async () => {
  await cluster.cleanup();
});

test('changes sent to a follower run on the leader and hold on every node', { timeout: 90000 },
  async () => {
    const follower = followers[0];
    const login = `cl-${randomUUID().slice(0, 8)}`;
    const created = await call(follower, 'POST', '/users', { auth: ADMIN,
      body: { loginName: login, fullName: 'Clustered', groups: ['dev'], password: 'pw-1' } });
    assert.equal(created.status, 201, created.text);
    assert.match(created.headers.get('location'), new RegExp(`/users/${login}$`));
    const onLeader = await call(leader, 'GET', `/users/${login}`, { auth: ADMIN });
    assert.equal(onLeader.status, 200, 'the leader holds the user the follower was sent');
    await everywhere(login, 'pw-1', true, 'the new user accepted');

    // Pinned to a follower: its TCP connection authenticates there.
    const conn = await cluster.connect({ node: followers[1], settings: { requireMaster: false } });
    const s = streamName('cl-users');
    await conn.appendToStream(s, ANY, jsonEvent({ n: 1 }), new es.UserCredentials(login, 'pw-1'));
    const readAs = (pw) => conn.readStreamEventsForward(s, 0, 10, false,
      new es.UserCredentials(login, pw));
    // The follower serves committed data once it has it.
    await waitFor(async () => (await readAs('pw-1')).events.length === 1,
      { timeoutMs: 5000, what: 'the event readable on the follower' });

    const disabled = await call(followers[1], 'POST', `/users/${login}/command/disable`,
      { auth: ADMIN });
    assert.equal(disabled.status, 200, disabled.text);
    await everywhere(login, 'pw-1', false, 'the disabled user refused');
    await assert.rejects(readAs('pw-1'), /Authentication error/,
      'TCP on a follower refuses the disabled user');

    assert.equal((await call(follower, 'POST', `/users/${login}/command/enable`,
      { auth: ADMIN })).status, 200);
    await everywhere(login, 'pw-1', true, 'the re-enabled user accepted');
    assert.equal((await readAs('pw-1')).events.length, 1, 'TCP works again');

    const changed = await call(follower, 'POST', `/users/${login}/command/change-password`,
      { auth: basic(login, 'pw-1'), body: { currentPassword: 'pw-1', newPassword: 'pw-2' } });
    assert.equal(changed.status, 200, changed.text);
    await everywhere(login, 'pw-1', false, 'the old password refused');
    await everywhere(login, 'pw-2', true, 'the new password accepted');
    await assert.rejects(readAs('pw-1'), /Authentication error/);

    const deleted = await call(follower, 'DELETE', `/users/${login}`, { auth: ADMIN });
    assert.equal(deleted.status, 200, deleted.text);
    await everywhere(login, 'pw-2', false, 'the deleted user refused');
    for (const node of cluster.live()) {
      await waitFor(async () => (await call(node, 'GET', `/users/${login}`,
        { auth: ADMIN })).status === 404, { timeoutMs: 5000, what: `404 on ${node.name}` });
    }
  });

test('a follower lists the users from its own data and refuses what the leader would',
  { timeout: 30000 }, async () => {
    const list = await call(followers[0], 'GET', '/users', { auth: ADMIN });
    assert.equal(list.status, 200);
    assert.ok(list.json.data.some((u) => u.loginName === 'admin'));
    const anonymous = await call(followers[0], 'POST', '/users',
      { body: { loginName: 'nobody', password: 'p' } });
    assert.equal(anonymous.status, 401);
    const missing = await call(followers[0], 'PUT', `/users/ghost-${randomUUID().slice(0, 6)}`,
      { auth: ADMIN, body: { fullName: 'x' } });
    assert.equal(missing.status, 404, 'the leader\'s 404 comes back through the follower');
  });
