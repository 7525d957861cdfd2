// Goal: prove, with the unmodified node-eventstore-client and plain HTTP, that a client which
// finds a fresh cluster's leader through gossip and uses admin's default credentials at once is
// never refused, although the leader creates admin (and ops) with a write of its own only after
// its first election: the nodes hold such a login until that write has committed and reached
// them (worker/engine/builtin_user_gate.hpp), on the leader and on the followers, over TCP and
// HTTP, over several formations (with and without --db folders). And that the wait never
// accepts a default password that was replaced: a follower restarted on its old log refuses
// ops's old password at every moment from its start until it accepts the new one.
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { Cluster, waitFor } from './lib/cluster.mjs';
import { admin, ANY, jsonEvent, streamName } from './lib/es.mjs';
import { httpFetch, scheme } from './lib/tls.mjs';

const FORMATIONS = 6;
const clusters = [];

after(async () => {
  await Promise.all(clusters.map((c) => c.cleanup()));
});

function basic(login, password) {
  return 'Basic ' + Buffer.from(`${login}:${password}`).toString('base64');
}

async function loginStatus(node, login, password) {
  const res = await httpFetch(`${scheme}://${node.host}:${node.httpPort}/users/$current`, {
    headers: { Authorization: basic(login, password), Accept: 'application/json' },
    signal: AbortSignal.timeout(15000),
  });
  await res.text();
  return res.status;
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
