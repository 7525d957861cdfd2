// Goal: prove, with the unmodified node-eventstore-client and plain HTTP, that a client which
// finds a fresh cluster's leader through gossip and uses admin's default credentials at once is
// never refused, although the leader creates admin (and ops) with a write of its own only after
// its first election: the nodes hold such a login until that write has committed and reached
// them (worker/engine/builtin_user_gate.hpp), on the leader and on the followers, over TCP and
// HTTP, over several formations (with and without --db folders). And that the wait never
// accepts a default password that was replaced: a follower restarted on its old log refuses
// ops's old password at every moment from its start until it accepts the new one. And that a
// node which cannot check a default login within the hold (alone, no cluster yet) says so as a
// node that is not ready (HTTP 503 with Retry-After, TCP NotHandled NotReady, which the client
// retries until the cluster forms), the same for a right and a wrong password, never "wrong
// password"; once it can check, a wrong password is refused as such.
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { Cluster, waitFor } from './lib/cluster.mjs';
import { admin, ANY, es, jsonEvent, streamName } from './lib/es.mjs';
import { httpFetch, scheme } from './lib/tls.mjs';

const FORMATIONS = 6;
const clusters = [];

after(async () => {
  await Promise.all(clusters.map((c) => c.cleanup()));
});

function basic(login, password) {
  return 'Basic ' + Buffer.from(`${login}:${password}`).toString('base64');
}

async function loginAnswer(node, login, password) {
  const res = await httpFetch(`${scheme}://${node.host}:${node.httpPort}/users/$current`, {
    headers: { Authorization: basic(login, password), Accept: 'application/json' },
    signal: AbortSignal.timeout(15000),
  });
  return { status: res.status, retryAfter: res.headers.get('retry-after'),
    challenge: res.headers.get('www-authenticate'), body: await res.text() };
}

async function loginStatus(node, login, password) {
  return (await loginAnswer(node, login, password)).status;
}

// The first node that calls itself Leader in its own gossip, as soon as one does (not waiting
// for the followers to agree: a client takes the first leader that gossip names).
async function firstLeader(cluster) {
  return waitFor(async () => {
    const v = (await cluster.views(500)).find((x) => x.self?.state === 'Leader');
    return v ? v.node : false;
  }, { timeoutMs: 15000, intervalMs: 10, what: 'a node advertising itself Leader in gossip' });
}

test(`admin's default login works the moment gossip names a leader (${FORMATIONS} formations)`,
  { timeout: 300000 }, async () => {
    for (let round = 0; round < FORMATIONS; round++) {
      const cluster = new Cluster({ memDb: round % 2 === 0 });
      clusters.push(cluster);
      await cluster.start();
      const leader = await firstLeader(cluster);
      const t0 = Date.now();
      const followers = cluster.nodes.filter((n) => n !== leader);
      // HTTP on every node, and TCP through gossip, all at once.
      const http = Promise.all(cluster.nodes.map(async (n) =>
        [n.name, await loginStatus(n, 'admin', 'changeit'), Date.now() - t0]));
      const conn = await cluster.connect({ settings: { defaultUserCredentials: admin } });
      const failed = [];
      conn.on('authenticationFailed', (reason) => failed.push(reason));
      const s = streamName('default-login');
      await conn.appendToStream(s, ANY, jsonEvent({ round }));  // the default credentials
      const users = await conn.readStreamEventsForward('$users', 0, 10, true, admin);
      assert.equal(users.status, 'success', `$users read as admin: ${users.status}`);
      const logins = await http;
      for (const [name, status] of logins) {
        assert.equal(status, 200, `round ${round}: admin's default login on ${name}`);
      }
      // A follower read (requireMaster false) with admin's credentials on that follower.
      const pinned = await cluster.connect({ node: followers[0],
        settings: { requireMaster: false, defaultUserCredentials: admin } });
      pinned.on('authenticationFailed', (reason) => failed.push(`follower: ${reason}`));
      const onFollower = await pinned.readStreamEventsForward('$users', 0, 10, true);
      assert.equal(onFollower.status, 'success', `$users read on a follower: ${onFollower.status}`);
      assert.deepEqual(failed, [], 'a connection reported authenticationFailed');
      // Refusals keep holding on the same fresh nodes.
      for (const n of cluster.nodes) {
        assert.equal(await loginStatus(n, 'admin', 'not-changeit'), 401, `${n.name}: wrong password`);
        assert.equal(await loginStatus(n, 'nobody', 'changeit'), 401, `${n.name}: unknown login`);
      }
      console.log(`# round ${round}: HTTP logins answered after ` +
        `${logins.map(([, , ms]) => ms).join('/')} ms, everything done ${Date.now() - t0} ms ` +
        'after gossip named the leader');
      await cluster.cleanup();
    }
  });

test('a follower restarted on its old log never takes a replaced default password',
  { timeout: 120000 }, async () => {
    const cluster = new Cluster({ memDb: false });
    clusters.push(cluster);
    await cluster.start();
    const { leader } = await cluster.waitForLeader({ timeoutMs: 15000 });
    const follower = cluster.live().find((n) => n !== leader);
    for (const n of cluster.live()) {
      await waitFor(async () => (await loginStatus(n, 'ops', 'changeit')) === 200,
        { timeoutMs: 15000, what: `ops's default login on ${n.name}` });
    }
    await cluster.kill(follower);
    const reset = await httpFetch(
      `${scheme}://${leader.host}:${leader.httpPort}/users/ops/command/reset-password`, {
        method: 'POST', headers: { Authorization: basic('admin', 'changeit'),
          'Content-Type': 'application/json' },
        body: JSON.stringify({ newPassword: 'ops-new' }), signal: AbortSignal.timeout(15000) });
    assert.equal(reset.status, 200, await reset.text());
    await cluster.restart(follower);
    // From its first answer until it takes the new password, the old one is never accepted.
    // (waitFor retries on errors: a refused connection before the node listens is one.)
    let answers = 0;
    const accepted = [];
    await waitFor(async () => {
      const old = await loginStatus(follower, 'ops', 'changeit');
      answers++;
      if (old === 200) accepted.push(answers);
      return (await loginStatus(follower, 'ops', 'ops-new')) === 200;
    }, { timeoutMs: 30000, intervalMs: 5, what: 'the restarted follower taking the new password' });
    assert.deepEqual(accepted, [], `the restarted follower accepted ops's replaced password`);
    assert.equal(await loginStatus(follower, 'ops', 'changeit'), 401);
    console.log(`# the restarted follower refused the old password ${answers} times, then took the new one`);
  });

test('a default login the node cannot check yet is told to retry, never that it is wrong',
  { timeout: 120000 }, async () => {
    const cluster = new Cluster({ memDb: true });
    clusters.push(cluster);
    await cluster.allocate();
    const [alone] = cluster.nodes;
    await alone.start();
    await waitFor(async () => !!(await alone.gossip(500)),
      { timeoutMs: 10000, what: `${alone.name} answering GET /gossip` });
    // Alone (cluster size 3), it has no leader: admin's record can never be checked here.
    const debug = [];
    const log = { debug: (...a) => debug.push(a.join(' ')), info: () => {}, error: () => {} };
    const settings = { requireMaster: false, maxRetries: 10, verboseLogging: true, log };
    const conn = await cluster.connect({ node: alone, settings });
    const right = conn.readStreamEventsForward('$users', 0, 10, true, admin);
    const wrong = conn.readStreamEventsForward('$users', 0, 10, true,
      new es.UserCredentials('admin', 'not-changeit'));
    right.catch(() => {});  // awaited below; a failed test closes the connection first
    wrong.catch(() => {});
    // The connection's default credentials (Authenticate at its handshake) too.
    const byDefault = cluster.connect({ node: alone, timeoutMs: 20000,
      settings: { ...settings, defaultUserCredentials: admin } });
    byDefault.catch(() => {});

    const t0 = Date.now();
    const [ok, bad] = await Promise.all([loginAnswer(alone, 'admin', 'changeit'),
      loginAnswer(alone, 'admin', 'not-changeit')]);
    const heldMs = Date.now() - t0;
    for (const [what, a] of [['right', ok], ['wrong', bad]]) {
      assert.equal(a.status, 503, `${what} password on a node that cannot check it: ${a.body}`);
      assert.equal(a.retryAfter, '1', `${what} password: Retry-After`);
      assert.equal(a.challenge, null, `${what} password: a 503 asks for no other password`);
      assert.match(a.body, /Not Ready/);
    }
    assert.equal(ok.body, bad.body, 'the answer tells a right password from a wrong one');
    assert.equal(await loginStatus(alone, 'nobody', 'changeit'), 401, 'a login that is not built in');
    // The client's first attempt was sent before the HTTP checks, so its hold ends about now.
    await waitFor(() => debug.some((l) => /NotHandled - NotReady/.test(l)), { timeoutMs: 10000,
      intervalMs: 20, what: 'the client seeing NotHandled NotReady for its held login' });

    // The other nodes start: the cluster forms, and the client's retries get their answers.
    await cluster.start();
    const read = await right;
    assert.equal(read.status, 'success', `$users read with admin's default login: ${read.status}`);
    await assert.rejects(wrong, /Authentication error/, 'a wrong password once it can be checked');
    const c2 = await byDefault;
    const viaDefault = await c2.readStreamEventsForward('$users', 0, 10, true);
    assert.equal(viaDefault.status, 'success', `$users read with the default credentials`);
    assert.equal(await loginStatus(alone, 'admin', 'changeit'), 200);
    assert.equal(await loginStatus(alone, 'admin', 'not-changeit'), 401);
    console.log(`# alone, HTTP logins answered 503 after ${heldMs} ms; ` +
      `${debug.filter((l) => /NotHandled - NotReady/.test(l)).length} NotHandled NotReady over TCP`);
  });
