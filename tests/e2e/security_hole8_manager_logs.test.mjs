// Goal: regression test for security hole 8's first part ("the manager's GET /api/nodes/{n}/log
// (and follow), /api/history need no login; logs leak"): without credentials, with a wrong
// password, and as an ordinary user (valid login, neither $admins nor $ops), the node logs, their
// follow stream and the restart history answer 401 with no log line in the body; admin and ops
// read them; the manager keeps serving its open documents throughout.
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { Manager, ADMIN, waitFor } from './manager_harness.mjs';

const basic = (login, password) => 'Basic ' + Buffer.from(`${login}:${password}`).toString('base64');
const OPS = basic('ops', 'changeit');
const WRONG = basic('admin', 'wrong');
const PLAIN = basic('plain-reader', 'plain-pw');
const PROTECTED = ['/api/history', '/api/nodes/n1/log?lines=50',
  '/api/nodes/n1/log?follow=true&lines=50', '/api/nodes/nope/log'];

const m = new Manager({ nodes: [{ name: 'n1', options: { MemDb: true } }] });

after(async () => {
  await m.cleanup();
});

test('hole 8: node logs and the restart history need a login of $admins or $ops',
  { timeout: 60000 }, async () => {
    await m.start();
    await m.waitForCluster(0);
    // The manager proxies to a node it counts as running (its health check passed).
    await waitFor(async () => (await m.nodeInfo('n1'))?.state === 'Running',
      { timeoutMs: 15000, what: 'n1 running in the manager\'s view' });
    const created = await fetch(`http://${m.ip}:${m.extHttpPort}/api/users`, {
      method: 'POST',
      headers: { Authorization: ADMIN, 'Content-Type': 'application/json' },
      body: JSON.stringify({ loginName: 'plain-reader', fullName: 'Plain', groups: ['readers'],
        password: 'plain-pw' }),
      signal: AbortSignal.timeout(15000),
    });
    assert.equal(created.status, 201, await created.text());
    // The plain user is known to the node (its credentials work there) before it is refused.
    await waitFor(async () => (await m.fetch('/api/auth', { auth: PLAIN })).status === 200,
      { timeoutMs: 10000, what: 'the plain user logging in' });

    // What admin sees, so that a refusal can be shown to carry none of it.
    const tail = await m.json('/api/nodes/n1/log?lines=50', { auth: ADMIN });
    assert.equal(tail.status, 200);
    assert.ok(tail.body.lines.length > 0, 'the node has written log lines');
    const secretLine = tail.body.lines.find((l) => l.length > 20) ?? tail.body.lines[0];

    for (const p of PROTECTED) {
      for (const [who, auth] of [['nobody', undefined], ['a wrong password', WRONG],
        ['an ordinary user', PLAIN]]) {
        const res = await m.fetch(p, { auth });
        const body = await res.text();
        assert.equal(res.status, 401, `${p} as ${who}: ${res.status} ${body.slice(0, 200)}`);
        assert.match(res.headers.get('www-authenticate') ?? '', /Basic/);
        assert.ok(!body.includes(secretLine), `${p} as ${who} leaked a log line`);
      }
    }

    for (const auth of [ADMIN, OPS]) {
      const logs = await m.json('/api/nodes/n1/log?lines=5', { auth });
      assert.equal(logs.status, 200);
      assert.ok(logs.body.lines.length > 0);
      assert.ok(Array.isArray(await m.history(auth)));
      const follow = await m.fetch('/api/nodes/n1/log?follow=true&lines=1', { auth });
      assert.equal(follow.status, 200);
      assert.match(follow.headers.get('content-type') ?? '', /text\/event-stream/);
      await follow.body.cancel();
    }

    // The manager kept serving what is open to all.
    assert.equal((await m.fetch('/health/live')).status, 204);
    assert.equal((await m.json('/api/nodes')).status, 200);
    assert.ok((await m.gossip()).members.length > 0);
  });
