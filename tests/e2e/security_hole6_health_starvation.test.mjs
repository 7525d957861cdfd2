// Goal: prove hole 6 of issue 10 is closed: 20 anonymous long polls and 100 idle sockets against a
// managed node's internal HTTP port (where the manager's liveness probe used to go) do not make
// the manager kill it: its restart count stays 0 and its pid is unchanged over a probe period
// longer than HungAfterMs, because the probe uses the node's own health listener (a Unix socket
// only the manager's user can reach). Long polls beyond the limit answer at once, the node keeps
// serving writes and reads, and /health/ready reports it ready.
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import { Manager, ADMIN, waitFor } from './manager_harness.mjs';

const kHungAfterMs = 3000;
const kProbePeriodMs = 3 * kHungAfterMs;
const kLongPolls = 20;
const kIdleSockets = 100;
const kLongPollsWaitingMax = 8; // worker/http/limits.hpp

let manager;
let flooding = true;
const sockets = new Set();
const polls = new AbortController();

after(async () => {
  flooding = false;
  polls.abort();
  for (const s of sockets) s.destroy();
  await manager?.cleanup();
});

// An idle socket that says nothing; reopened when the server closes it, until the test ends.
function idleSocket(port) {
  if (!flooding) return;
  const s = net.connect({ host: '127.0.0.1', port });
  sockets.add(s);
  s.on('error', () => {});
  s.on('close', () => {
    sockets.delete(s);
    if (flooding) setTimeout(() => idleSocket(port), 50);
  });
}

test('long polls and idle sockets do not starve the manager\'s health check', { timeout: 60000 },
  async () => {
    manager = new Manager({
      nodes: [{ name: 'n1', options: { MemDb: true, ClusterSize: 1 } }],
      settings: { HungAfterMs: kHungAfterMs },
    });
    await manager.start();
    const spec = manager.node('n1').options;
    const ext = `http://127.0.0.1:${spec.ExtHttpPort}`;
    const int = `http://127.0.0.1:${spec.IntHttpPort}`;
    const ready = await waitFor(async () => {
      const r = await fetch(`${ext}/health/ready`).catch(() => undefined);
      return r?.status === 200 ? r.json() : false;
    }, { timeoutMs: 20000, what: 'n1 ready' });
    assert.deepEqual(ready, { ready: true, state: 'Leader' });
    // Running: the manager's first health check over the listener answered.
    const before = await waitFor(async () => {
      const n = await manager.nodeInfo('n1');
      return n.state === 'Running' ? n : false;
    }, { timeoutMs: 10000, what: 'n1 Running' });
    assert.equal(before.restarts, 0);

    // The flood, on the port the manager used to probe.
    const started = Date.now();
    const answered = [];
    for (let i = 0; i < kLongPolls; i++) {
      fetch(`${int}/streams/hole6-empty-${i}/0/forward/20?embed=body`, {
        headers: { Accept: 'application/json', 'ES-LongPoll': '60' }, signal: polls.signal,
      }).then((r) => { answered.push({ status: r.status, ms: Date.now() - started }); },
        () => {});
    }
    for (let i = 0; i < kIdleSockets; i++) idleSocket(spec.IntHttpPort);

    // Polls beyond the limit answer at once, as if they had timed out; the rest keep waiting.
    await waitFor(() => answered.length >= kLongPolls - kLongPollsWaitingMax,
      { timeoutMs: 10000, what: 'the long polls beyond the limit answered' });
    assert.ok(answered.every((a) => a.ms < 10000), JSON.stringify(answered));

    // The probe period: the manager's health checks keep succeeding.
    const until = Date.now() + kProbePeriodMs;
    while (Date.now() < until) {
      const info = await manager.nodeInfo('n1');
      assert.equal(info.restarts, 0, `n1 was restarted: ${JSON.stringify(info)}`);
      assert.equal(info.state, 'Running');
      assert.equal(info.pid, before.pid);
      await new Promise((r) => setTimeout(r, 250));
    }
    assert.ok(answered.length <= kLongPolls - kLongPollsWaitingMax + 1,
      `the waiting long polls were answered early: ${JSON.stringify(answered)}`);

    // The node keeps serving on its external port.
    const event = [{ eventId: '6a1c7d3e-0000-4000-8000-000000000006', eventType: 'hole6',
      data: { ok: true } }];
    const write = await fetch(`${ext}/streams/hole6-after`, {
      method: 'POST', body: JSON.stringify(event),
      headers: { Authorization: ADMIN, 'Content-Type': 'application/vnd.eventstore.events+json' },
    });
    assert.equal(write.status, 201);
    const read = await fetch(`${ext}/streams/hole6-after/0/forward/1?embed=body`,
      { headers: { Authorization: ADMIN, Accept: 'application/vnd.eventstore.atom+json' } });
    assert.equal(read.status, 200);
    assert.equal((await read.json()).entries[0].eventType, 'hole6');
    const after = await manager.nodeInfo('n1');
    assert.equal(after.restarts, 0);
    assert.equal(after.pid, before.pid);
  });

test('the health listener is reachable by the manager\'s user alone', async () => {
  const folder = path.join(manager.dir, 'data', 'manager', 'health');
  const socket = path.join(folder, 'n1.sock');
  assert.equal(fs.statSync(folder).mode & 0o777, 0o700);
  assert.ok(fs.statSync(socket).isSocket());
  assert.equal(fs.statSync(socket).mode & 0o777, 0o600);
  if (process.getuid() !== 0) return; // the refusal below needs a second user
  // Another user (nobody) is refused by the kernel before the node sees a byte.
  const probe = 'require("net").connect(process.argv[1])' +
    '.on("connect",()=>{console.log("CONNECTED");process.exit(0)})' +
    '.on("error",(e)=>{console.log(e.code);process.exit(0)})';
  const r = spawnSync(process.execPath, ['-e', probe, socket], { uid: 65534, gid: 65534,
    encoding: 'utf8', timeout: 10000 });
  assert.equal(r.stdout.trim(), 'EACCES', `stdout ${r.stdout} stderr ${r.stderr}`);
});
