// Goal: prove EventStore's users API on a worker: the calls of EventStore's own UsersManager
// (.NET ClientAPI; no npm client ships one) with its paths, bodies and expected status codes;
// every refusal (anonymous, non-admin, wrong current password, bad JSON, unknown user, bad login
// names); that a disabled, re-passworded or deleted user is refused at once over TCP
// (node-eventstore-client, also on a connection that proved them before, with per-operation or
// default credentials) and HTTP while re-enabling restores access; and that the default
// passwords given with --default-admin-password / CHORUS_DEFAULT_OPS_PASSWORD replace changeit
// at first start only.
import { describe, test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { startWorker } from './lib/harness.mjs';
import { es, connect, closeQuietly, streamName, jsonEvent, rejectsWith, ANY } from './lib/es.mjs';

const T = { timeout: 60000 };

function basic(login, password) {
  return 'Basic ' + Buffer.from(`${login}:${password}`).toString('base64');
}
const ADMIN = basic('admin', 'changeit');

// One request of the users API; resolves to { status, headers, json (or null), text }.
async function call(w, method, path, { auth, body, raw } = {}) {
  const headers = { Accept: 'application/json' };
  if (auth) headers.Authorization = auth;
  let payload;
  if (raw !== undefined) payload = raw;
  else if (body !== undefined) payload = JSON.stringify(body);
  if (payload !== undefined) headers['Content-Type'] = 'application/json';
  const res = await fetch(`http://${w.host}:${w.httpPort}${path}`,
    { method, headers, body: payload, signal: AbortSignal.timeout(15000) });
  const text = await res.text();
  let json = null;
  try { json = JSON.parse(text); } catch {}
  return { status: res.status, headers: res.headers, json, text };
}

// The requests of EventStore's .NET UsersManager (ClientAPI UsersClient), each checked against
// the status code that client expects.
class UsersManager {
  constructor(w, auth) { this.w = w; this.auth = auth; }
  async expect(status, method, path, body) {
    const r = await call(this.w, method, path, { auth: this.auth, body });
    assert.equal(r.status, status, `${method} ${path}: ${r.text}`);
    return r;
  }
  createUser(login, fullName, groups, password) {
    return this.expect(201, 'POST', '/users/', { loginName: login, fullName, groups, password });
  }
  async getAllUsers() { return (await this.expect(200, 'GET', '/users/')).json.data; }
  async getUser(login) { return (await this.expect(200, 'GET', `/users/${encodeURIComponent(login)}`)).json.data; }
  async getCurrentUser() { return (await this.expect(200, 'GET', '/users/$current')).json.data; }
  updateUser(login, fullName, groups) {
    return this.expect(200, 'PUT', `/users/${encodeURIComponent(login)}`, { fullName, groups });
  }
  deleteUser(login) { return this.expect(200, 'DELETE', `/users/${encodeURIComponent(login)}`); }
  enable(login) { return this.expect(200, 'POST', `/users/${encodeURIComponent(login)}/command/enable`); }
  disable(login) { return this.expect(200, 'POST', `/users/${encodeURIComponent(login)}/command/disable`); }
  resetPassword(login, newPassword) {
    return this.expect(200, 'POST', `/users/${encodeURIComponent(login)}/command/reset-password`,
      { newPassword });
  }
  changePassword(login, currentPassword, newPassword) {
    return this.expect(200, 'POST', `/users/${encodeURIComponent(login)}/command/change-password`,
      { currentPassword, newPassword });
  }
}

function login(prefix = 'u') {
  return `${prefix}-${randomUUID().slice(0, 8)}`;
}

// HTTP: a request that needs authentication (the user's own record) succeeds or is refused.
async function httpAuthenticates(w, name, password) {
  const r = await call(w, 'GET', '/users/$current', { auth: basic(name, password) });
  assert.ok(r.status === 200 || r.status === 401, `unexpected ${r.status}: ${r.text}`);
  return r.status === 200;
}

// TCP: an append with the user's credentials to a stream only that user may write.
async function tcpAuthenticates(conn, stream, name, password) {
  try {
    await conn.appendToStream(stream, ANY, jsonEvent({ by: name }),
      new es.UserCredentials(name, password));
    return true;
  } catch (e) {
    if (/Authentication error/.test(e.message)) return false;
    throw e;
  }
}

describe('users API on one worker', () => {
  let w;
  let conn;
  let users;

  before(async () => {
    w = await startWorker({ memDb: true });
    conn = await connect(w);
    users = new UsersManager(w, ADMIN);
  });

  after(async () => {
    closeQuietly(conn);
    await w?.cleanup();
  });

  test('the built-in users are listed with EventStore\'s fields and links', T, async () => {
    const list = await users.getAllUsers();
    const names = list.map((u) => u.loginName);
    assert.ok(names.includes('admin') && names.includes('ops'), names.join());
    assert.deepEqual([...names].sort(), names, 'sorted by login');
    const adminUser = list.find((u) => u.loginName === 'admin');
    assert.equal(adminUser.fullName, 'Event Store Administrator');
    assert.deepEqual(adminUser.groups, ['$admins']);
    assert.equal(adminUser.disabled, false);
    assert.ok(!('hash' in adminUser) && !('salt' in adminUser), 'no password material');
    assert.deepEqual(adminUser.links.map((l) => l.rel),
      ['reset-password', 'change-password', 'edit', 'delete', 'disable']);
    assert.equal(adminUser.links[2].href, `http://${w.host}:${w.httpPort}/users/admin`);
    const full = await call(w, 'GET', '/users', { auth: ADMIN });
    assert.equal(full.json.success, true);
    assert.equal(full.json.error, 'Success');
  });

  test('create, read, update, change and reset passwords, delete and re-create', T, async () => {
    const name = login('life');
    const created = await users.createUser(name, 'Life Cycle', ['dev'], 'pw-1');
    assert.equal(created.headers.get('location'), `http://${w.host}:${w.httpPort}/users/${name}`);
    assert.deepEqual(created.json, { loginName: name, success: true, error: 'Success' });
    // A retried create with the same password succeeds (EventStore); another password conflicts.
    await users.createUser(name, 'Life Cycle', ['dev'], 'pw-1');
    const clash = await call(w, 'POST', '/users', { auth: ADMIN,
      body: { loginName: name, fullName: 'x', groups: [], password: 'other' } });
    assert.equal(clash.status, 409);
    assert.deepEqual(clash.json, { loginName: name, success: false, error: 'Conflict' });

    let user = await users.getUser(name);
    assert.equal(user.fullName, 'Life Cycle');
    assert.deepEqual(user.groups, ['dev']);
    assert.ok(Date.parse(user.dateLastUpdated) > Date.now() - 60000, user.dateLastUpdated);
    assert.ok((await users.getAllUsers()).some((u) => u.loginName === name));

    await users.updateUser(name, 'Renamed', ['dev', '$ops']);
    user = await users.getUser(name);
    assert.equal(user.fullName, 'Renamed');
    assert.deepEqual(user.groups, ['dev', '$ops']);

    // The user reads their own record and changes their own password.
    const self = new UsersManager(w, basic(name, 'pw-1'));
    assert.equal((await self.getCurrentUser()).loginName, name);
    assert.equal((await self.getUser(name)).fullName, 'Renamed');
    await self.changePassword(name, 'pw-1', 'pw-2');
    assert.equal(await httpAuthenticates(w, name, 'pw-1'), false, 'old password refused at once');
    assert.equal(await httpAuthenticates(w, name, 'pw-2'), true);

    await users.resetPassword(name, 'pw-3');
    assert.equal(await httpAuthenticates(w, name, 'pw-2'), false);
    assert.equal(await httpAuthenticates(w, name, 'pw-3'), true);

    await users.deleteUser(name);
    assert.equal((await call(w, 'GET', `/users/${name}`, { auth: ADMIN })).status, 404);
    assert.ok(!(await users.getAllUsers()).some((u) => u.loginName === name));
    assert.equal(await httpAuthenticates(w, name, 'pw-3'), false, 'a deleted user is gone');

    // The login can be created again, with nothing of the old user left.
    await users.createUser(name, 'Second', [], 'pw-new');
    user = await users.getUser(name);
    assert.equal(user.fullName, 'Second');
    assert.deepEqual(user.groups, []);
    assert.equal(await httpAuthenticates(w, name, 'pw-3'), false);
    assert.equal(await httpAuthenticates(w, name, 'pw-new'), true);
  });

  test('disable refuses the user over TCP and HTTP at once; enable restores access', T, async () => {
    const name = login('dis');
    await users.createUser(name, 'Disabled Soon', [], 'pw');
    const s = streamName('only-user');
    await conn.setStreamMetadataRaw(s, ANY, { $acl: { $w: name, $r: name } },
      new es.UserCredentials('admin', 'changeit'));
    // Authenticate first, so that the node has this credential cached when it is disabled.
    assert.equal(await tcpAuthenticates(conn, s, name, 'pw'), true);
    assert.equal(await httpAuthenticates(w, name, 'pw'), true);
    // A connection whose default credentials (Authenticate) are this user's.
    const asUser = await connect(w, { defaultUserCredentials: new es.UserCredentials(name, 'pw') });
    const readDefault = () => asUser.readStreamEventsForward(s, 0, 10, false);
    assert.equal((await readDefault()).events.length, 1);

    await users.disable(name);
    assert.equal((await users.getUser(name)).disabled, true);
    // The same connection that proved the credentials a moment ago, and a new one.
    assert.equal(await tcpAuthenticates(conn, s, name, 'pw'), false, 'TCP refused once disabled');
    const fresh = await connect(w);
    try {
      assert.equal(await tcpAuthenticates(fresh, s, name, 'pw'), false,
        'TCP refused once disabled (new connection)');
    } finally {
      closeQuietly(fresh);
    }
    assert.equal(await httpAuthenticates(w, name, 'pw'), false, 'HTTP refused once disabled');
    const read = await call(w, 'GET', `/streams/${s}`, { auth: basic(name, 'pw') });
    assert.equal(read.status, 401);
    await rejectsWith(readDefault(), { message: /Authentication error/ });
    const user = await users.getUser(name);
    assert.equal(user.links.at(-1).rel, 'enable');

    await users.enable(name);
    assert.equal(await tcpAuthenticates(conn, s, name, 'pw'), true, 'TCP works again');
    assert.equal(await httpAuthenticates(w, name, 'pw'), true, 'HTTP works again');
    const slice = await conn.readStreamEventsForward(s, 0, 10, false,
      new es.UserCredentials(name, 'pw'));
    assert.equal(slice.events.length, 2);
    assert.equal((await readDefault()).events.length, 2, 'the default credentials work again');
    closeQuietly(asUser);
  });

  test('anonymous callers are refused everywhere with 401 and the challenge', T, async () => {
    const name = login('anon');
    await users.createUser(name, 'Target', [], 'pw');
    const calls = [
      ['GET', '/users'], ['GET', `/users/${name}`], ['GET', '/users/$current'],
      ['POST', '/users', { loginName: login('x'), password: 'p' }],
      ['PUT', `/users/${name}`, { fullName: 'hacked' }], ['DELETE', `/users/${name}`],
      ['POST', `/users/${name}/command/enable`], ['POST', `/users/${name}/command/disable`],
      ['POST', `/users/${name}/command/reset-password`, { newPassword: 'p2' }],
      ['POST', `/users/${name}/command/change-password`,
        { currentPassword: 'pw', newPassword: 'p2' }],
    ];
    for (const [method, path, body] of calls) {
      const r = await call(w, method, path, { body });
      assert.equal(r.status, 401, `${method} ${path}: ${r.text}`);
      assert.equal(r.headers.get('www-authenticate'), 'BasicCustom realm="ES"');
      assert.equal(r.json?.error, 'Unauthorized', `${method} ${path}`);
    }
    const user = await users.getUser(name);
    assert.equal(user.fullName, 'Target', 'nothing changed');
    assert.equal(user.disabled, false);
    assert.equal(await httpAuthenticates(w, name, 'pw'), true);
  });

  test('a non-admin may read and change only their own record', T, async () => {
    const plain = login('plain');
    const other = login('other');
    await users.createUser(plain, 'Plain', ['dev', '$ops'], 'pw');
    await users.createUser(other, 'Other', [], 'opw');
    const auth = basic(plain, 'pw');
    const calls = [
      ['GET', '/users'], ['GET', `/users/${other}`], ['GET', '/users/admin'],
      ['POST', '/users', { loginName: login('x'), password: 'p', groups: ['$admins'] }],
      ['PUT', `/users/${plain}`, { groups: ['$admins'] }],
      ['PUT', `/users/${other}`, { fullName: 'hacked' }], ['DELETE', `/users/${other}`],
      ['POST', `/users/${other}/command/disable`], ['POST', `/users/${plain}/command/enable`],
      ['POST', `/users/${other}/command/reset-password`, { newPassword: 'p2' }],
      ['POST', `/users/${plain}/command/reset-password`, { newPassword: 'p2' }],
      ['POST', `/users/${other}/command/change-password`,
        { currentPassword: 'opw', newPassword: 'p2' }],
    ];
    for (const [method, path, body] of calls) {
      const r = await call(w, method, path, { auth, body });
      assert.equal(r.status, 401, `${method} ${path}: ${r.text}`);
      assert.equal(r.json?.error, 'Unauthorized', `${method} ${path}`);
    }
    assert.deepEqual((await users.getUser(plain)).groups, ['dev', '$ops'], 'no self-promotion');
    assert.equal((await users.getUser(other)).fullName, 'Other');
    assert.equal(await httpAuthenticates(w, other, 'opw'), true);
    assert.equal(await httpAuthenticates(w, plain, 'pw'), true);
  });

  test('change-password with a wrong current password is refused and changes nothing', T, async () => {
    const name = login('chg');
    await users.createUser(name, 'Changer', [], 'right');
    const r = await call(w, 'POST', `/users/${name}/command/change-password`,
      { auth: basic(name, 'right'), body: { currentPassword: 'wrong', newPassword: 'new' } });
    assert.equal(r.status, 401);
    assert.deepEqual(r.json, { loginName: name, success: false, error: 'Unauthorized' });
    assert.equal(await httpAuthenticates(w, name, 'new'), false);
    assert.equal(await httpAuthenticates(w, name, 'right'), true);
  });

  test('bad JSON and bad fields answer 400 and change nothing', T, async () => {
    const name = login('bad');
    await users.createUser(name, 'Bad Input', ['dev'], 'pw');
    const cases = [
      ['POST', '/users', '{"loginName": '],
      ['POST', '/users', '[]'],
      ['POST', '/users', JSON.stringify({ loginName: login('x') })],
      ['POST', '/users', JSON.stringify({ loginName: '', password: 'p' })],
      ['POST', '/users', JSON.stringify({ loginName: '$admins', password: 'p' })],
      ['POST', '/users', JSON.stringify({ loginName: 'a:b', password: 'p' })],
      ['POST', '/users', JSON.stringify({ loginName: login('x'), password: 'p', groups: 'dev' })],
      ['POST', '/users', JSON.stringify({ loginName: 'x'.repeat(300), password: 'p' })],
      ['PUT', `/users/${name}`, 'not json'],
      ['PUT', `/users/${name}`, JSON.stringify({ groups: [1] })],
      ['POST', `/users/${name}/command/reset-password`, '{'],
      ['POST', `/users/${name}/command/reset-password`, JSON.stringify({})],
      ['POST', `/users/${name}/command/change-password`, '{"currentPassword":"pw"'],
      ['POST', `/users/${name}/command/change-password`, JSON.stringify({ currentPassword: 'pw' })],
    ];
    for (const [method, path, raw] of cases) {
      const r = await call(w, method, path, { auth: ADMIN, raw });
      assert.equal(r.status, 400, `${method} ${path} ${raw.slice(0, 40)}: ${r.text}`);
      assert.ok(r.text.length > 0, 'the 400 says why');
    }
    const user = await users.getUser(name);
    assert.equal(user.fullName, 'Bad Input');
    assert.deepEqual(user.groups, ['dev']);
    assert.equal(await httpAuthenticates(w, name, 'pw'), true);
    assert.ok(!(await users.getAllUsers()).some((u) => u.loginName.startsWith('$')));
  });

  test('unknown users answer 404', T, async () => {
    const name = login('ghost');
    const cases = [
      ['GET', `/users/${name}`], ['PUT', `/users/${name}`, { fullName: 'x' }],
      ['DELETE', `/users/${name}`], ['POST', `/users/${name}/command/enable`],
      ['POST', `/users/${name}/command/disable`],
      ['POST', `/users/${name}/command/reset-password`, { newPassword: 'p' }],
      ['POST', `/users/${name}/command/change-password`, { currentPassword: 'a', newPassword: 'b' }],
    ];
    for (const [method, path, body] of cases) {
      const r = await call(w, method, path, { auth: ADMIN, body });
      assert.equal(r.status, 404, `${method} ${path}: ${r.text}`);
      assert.equal(r.json?.error, 'NotFound');
    }
    assert.equal((await call(w, 'GET', `/users/${name}`, { auth: ADMIN })).status, 404,
      'nothing was created by the failed calls');
  });
});

describe('default passwords at first start', () => {
  let w;
  let conn;

  after(async () => {
    closeQuietly(conn);
    await w?.cleanup();
  });

  test('--default-admin-password and CHORUS_DEFAULT_OPS_PASSWORD replace changeit', T, async () => {
    w = await startWorker({ extraArgs: ['--default-admin-password', 'Adm1n-first'],
      env: { CHORUS_DEFAULT_OPS_PASSWORD: '0ps-first' } });
    assert.equal(await httpAuthenticates(w, 'admin', 'changeit'), false);
    assert.equal(await httpAuthenticates(w, 'ops', 'changeit'), false);
    assert.equal(await httpAuthenticates(w, 'admin', 'Adm1n-first'), true);
    assert.equal(await httpAuthenticates(w, 'ops', '0ps-first'), true);
    conn = await connect(w);
    await rejectsWith(conn.readStreamEventsForward('$users', 0, 1, false,
      new es.UserCredentials('admin', 'changeit')), { message: /Authentication error/ });
    const slice = await conn.readStreamEventsForward('$users', 0, 10, false,
      new es.UserCredentials('admin', 'Adm1n-first'));
    assert.equal(slice.events.length, 2);
    closeQuietly(conn);
    conn = undefined;

    // Only at first start: a restart with other defaults keeps the stored passwords.
    await w.stop();
    w.extraArgs = ['--default-admin-password', 'ignored-later'];
    w.env = {};
    await w.start();
    assert.equal(await httpAuthenticates(w, 'admin', 'ignored-later'), false);
    assert.equal(await httpAuthenticates(w, 'admin', 'Adm1n-first'), true);
    assert.equal(await httpAuthenticates(w, 'ops', '0ps-first'), true);
  });
});
