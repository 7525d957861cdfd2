// Goal: prove the supervisor's process rules with stand-in workers (small shell scripts given as
// WorkerPath): exit code 75 ("restart me") is restarted at once and still counts towards the
// restart limit; a node's output file is rotated by size; a node that ignores SIGTERM is killed
// after the stop grace period; a node left running by a SIGKILLed manager (it ignored the death
// signal) is stopped by the next manager before it starts a new one; the log endpoint tails and
// follows the node's output.
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { Manager, ADMIN, pidAlive, waitFor } from './manager_harness.mjs';
import { WORKER } from './lib/harness.mjs';

const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'chorus-mgr-fake-'));
const managers = [];
after(async () => {
  for (const m of managers) await m.cleanup();
  fs.rmSync(dir, { recursive: true, force: true });
});

// A stand-in worker; its file name contains "chorus-worker" as a real one's does. Node n2 (its
// own cluster) runs the real worker: logs and history need a login, which a running node checks.
function fakeWorker(name, body) {
  const p = path.join(dir, `${name}-chorus-worker.sh`);
  fs.writeFileSync(p, `#!/bin/sh\ncase " $* " in *'/n2 '*) exec '${WORKER}' "$@" ;; esac\n` +
    `${body}\n`, { mode: 0o755 });
  return p;
}

// Stand-ins never answer /health/live: a long start grace keeps them "Starting".
function manager(worker, settings = {}) {
  const m = new Manager({
    nodes: [{ name: 'n1', options: { MemDb: true } },
      { name: 'n2', cluster: 'auth', options: { MemDb: true } }],
    settings: { WorkerPath: worker, StartGraceMs: 600000, ...settings },
  });
  managers.push(m);
  return m;
}

// Until the real node n2 runs, no node can check the credentials that logs and history need.
async function waitForChecker(m) {
  await waitFor(async () => (await m.nodeInfo('n2')).state === 'Running',
    { timeoutMs: 15000, what: 'n2 (the real worker) running' });
}

test('exit code 75 is restarted at once and counts towards the limit', { timeout: 30000 },
  async () => {
    const m = manager(fakeWorker('exit75', 'exit 75'), { RestartIntensity: 5 });
    await m.start();
    const info = await waitFor(async () => {
      const n = await m.nodeInfo('n1');
      return n.state === 'Failed' ? n : false;
    }, { timeoutMs: 10000, what: 'n1 Failed after five exits' });
    assert.equal(info.lastExit.code, 75);
    assert.equal(info.restarts, 4);
    await waitForChecker(m);
    const events = await m.history();
    const restarts = events.filter((e) => e.node === 'n1' && e.event === 'restarting');
    assert.equal(restarts.length, 4);
    assert.ok(restarts.every((e) => e.detail === 'in 0 ms'), JSON.stringify(restarts));
    await m.stop();
  });

test('output is rotated by size; the log endpoint tails and follows it', { timeout: 30000 },
  async () => {
    const m = manager(fakeWorker('chatty',
      'i=0; while [ $i -lt 3000 ]; do echo "line $i of output padding padding padding"; ' +
      'i=$((i+1)); done; while :; do echo tick; sleep 0.2; done'),
    { NodeLogFileSize: 50000, NodeLogFileCount: 2 });
    await m.start();
    const out = path.join(m.dir, 'logs', 'n1.out.log');
    await waitFor(() => fs.existsSync(`${out}.1`), { timeoutMs: 10000, what: 'a rotated file' });
    assert.ok(fs.statSync(`${out}.1`).size > 50000);
    // Right after a rotation the file may hold fewer lines; the ticks refill it.
    await waitForChecker(m);
    const tail = await waitFor(async () => {
      const t = await m.json('/api/nodes/n1/log?lines=3', { auth: ADMIN });
      return t.body.lines.length === 3 ? t : false;
    }, { timeoutMs: 5000, what: 'three lines' });
    assert.equal(tail.status, 200);
    // follow: new lines arrive as server-sent events
    const res = await m.fetch('/api/nodes/n1/log?follow=true&lines=1', { auth: ADMIN });
    assert.match(res.headers.get('content-type'), /text\/event-stream/);
    const reader = res.body.getReader();
    let text = '';
    await waitFor(async () => {
      const { value } = await reader.read();
      text += Buffer.from(value).toString();
      return (text.match(/data: tick/g) || []).length >= 2;
    }, { timeoutMs: 5000, what: 'followed lines' });
    await reader.cancel();
    await m.stop();
  });

test('a node that ignores SIGTERM is killed after the grace period; a leftover of a killed '
  + 'manager is stopped by the next one', { timeout: 60000 }, async () => {
  const m = manager(fakeWorker('stubborn', "trap '' TERM; while :; do sleep 0.1; done"),
    { StopGraceMs: 1000 });
  await m.start();
  const first = await waitFor(async () => (await m.nodeInfo('n1')).pid, { what: 'n1 started' });
  const began = Date.now();
  const r = await m.stop();
  assert.equal(r.code, 0);
  assert.ok(Date.now() - began >= 900, `the manager waited for the grace period (${Date.now() - began} ms)`);
  assert.ok(!pidAlive(first), 'SIGKILL after the grace period');

  // A manager killed with SIGKILL: its stubborn node ignores the death signal (SIGTERM) and
  // stays; the next manager on the same folder stops it before starting n1 again.
  await m.start();
  const leftover = await waitFor(async () => (await m.nodeInfo('n1')).pid, { what: 'n1' });
  await m.kill();
  assert.ok(pidAlive(leftover), 'the stubborn node outlived the killed manager');
  await m.start();
  await waitFor(() => !pidAlive(leftover), { timeoutMs: 10000, what: `leftover ${leftover} gone` });
  await waitForChecker(m);
  const events = await m.history();
  assert.ok(events.some((e) => /left by an earlier manager/.test(e.detail)));
  const fresh = await waitFor(async () => (await m.nodeInfo('n1')).pid, { what: 'a new n1' });
  assert.notEqual(fresh, leftover);
});
