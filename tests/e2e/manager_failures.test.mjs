// Goal: prove that a crash-looping node becomes Failed after the restart limit while the other
// nodes stay up, that an operator start clears Failed, and that invalid configurations make the
// manager exit with code 2 and a message naming the file and the key.
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { Manager, ADMIN, freePort, runManager, waitFor } from './manager_harness.mjs';

const cleanups = [];
after(async () => { for (const c of cleanups) await c(); });

test('a crash-looping node becomes Failed after the limit; the others stay up',
  { timeout: 60000 }, async () => {
    // n2's internal TCP port (the first it binds) is held by this test, so n2 exits at once on
    // every start.
    const blocked = await freePort();
    const holder = net.createServer();
    await new Promise((r) => holder.listen(blocked, '127.0.0.1', r));
    cleanups.push(() => new Promise((r) => holder.close(r)));
    const m = new Manager({
      nodes: [
        { name: 'n1', options: { ClusterSize: 1, MemDb: true } },
        { name: 'n2', cluster: 'other', options: { ClusterSize: 1, MemDb: true,
          IntTcpPort: blocked } },
      ],
      settings: { RestartIntensity: 5, RestartPeriodMs: 60000 },
    });
    cleanups.push(() => m.cleanup());
    await m.start();
    await waitFor(async () => (await m.nodeInfo('n1')).state === 'Running',
      { timeoutMs: 15000, what: 'n1 running' });
    const n1pid = (await m.nodeInfo('n1')).pid;
    const failed = await waitFor(async () => {
      const info = await m.nodeInfo('n2');
      return info.state === 'Failed' ? info : false;
    }, { timeoutMs: 20000, intervalMs: 50, what: 'n2 Failed' });
    assert.equal(failed.restarts, 4);
    assert.equal(failed.lastExit.code, 1);
    assert.equal(failed.pid, null);
    const n1 = await m.nodeInfo('n1');
    assert.equal(n1.state, 'Running');
    assert.equal(n1.pid, n1pid);
    const events = await m.history();
    assert.ok(events.some((e) => e.node === 'n2' && e.event === 'failed'));
    // Stays down...
    await new Promise((r) => setTimeout(r, 500));
    assert.equal((await m.nodeInfo('n2')).state, 'Failed');
    // ...until an operator starts it (it now runs: the port is free again).
    await new Promise((r) => holder.close(r));
    const res = await m.fetch('/api/nodes/n2/start', { method: 'POST', auth: ADMIN });
    assert.equal(res.status, 200);
    await waitFor(async () => (await m.nodeInfo('n2')).state === 'Running',
      { timeoutMs: 15000, what: 'n2 running after the operator start' });
    // Two clusters on one manager: each served separately.
    await waitFor(async () => (await m.gossip('&cluster=other')).members
      .some((x) => x.internalTcpPort === blocked && x.state === 'Leader'),
    { timeoutMs: 10000, what: 'n2 leading cluster other' });
    assert.ok(!(await m.gossip()).members.some((x) => x.internalTcpPort === blocked),
      'the default cluster\'s gossip does not list the other cluster\'s node');
  });

test('invalid configurations exit with code 2 and name the key', { timeout: 60000 }, async () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'chorus-mgr-bad-'));
  cleanups.push(() => fs.rmSync(dir, { recursive: true, force: true }));
  const write = (name, text) => {
    const p = path.join(dir, name);
    fs.writeFileSync(p, `Db: ${dir}/data\nLog: ${dir}/logs\n${text}`);
    return p;
  };
  const node = (name, port, extra = '') =>
    `  - Name: ${name}\n    Options: {ExtTcpPort: ${port}, IntTcpPort: ${port + 1}, ` +
    `IntHttpPort: ${port + 2}, ExtHttpPort: ${port + 3}${extra}}\n`;
  const cases = [
    [write('unknown.yaml', 'IntHtpPort: 5\n'), /unknown\.yaml: IntHtpPort: unknown key/],
    [write('clash.yaml', 'Nodes:\n' + node('a', 40000) + node('b', 40002)),
      /clash\.yaml: Nodes\[1\]\.Options\.\w+Port: port 4000\d is also used by Nodes\[0\]/],
    [write('size.yaml', 'Nodes:\n' + node('a', 40000, ', ClusterSize: 3') +
      node('b', 41000, ', ClusterSize: 5')), /size\.yaml: Nodes\[1\]\.Options\.ClusterSize/],
    [write('option.yaml', 'Nodes:\n' + node('a', 40000, ', NoSuchOption: 1')),
      /option\.yaml: Nodes\[0\]\.Options/],
    [write('folder.yaml', 'Nodes: []\n'), null],
  ];
  for (const [file, pattern] of cases.slice(0, 4)) {
    const r = await runManager(['--config', file]);
    assert.equal(r.code, 2, `${file}: ${r.stderr}`);
    assert.match(r.stderr, pattern);
  }
  const unwritable = path.join(dir, 'ro.yaml');
  fs.writeFileSync(unwritable, 'Db: /proc/chorus-no\nLog: /tmp\n');
  const r = await runManager(['--config', unwritable]);
  assert.equal(r.code, 2);
  assert.match(r.stderr, /ro\.yaml: Db: cannot create folder/);
  const missing = await runManager(['--config', path.join(dir, 'absent.yaml')]);
  assert.equal(missing.code, 2);
  assert.match(missing.stderr, /absent\.yaml: cannot read/);
  const noWorker = await runManager(['--config', cases[4][0], '--worker-path', '/nonexistent']);
  assert.equal(noWorker.code, 2);
  assert.match(noWorker.stderr, /folder\.yaml: WorkerPath: '\/nonexistent' is not an executable/);
  const whatIf = await runManager(['--config', cases[4][0], '--what-if', '--ext-http-port', '31999']);
  assert.equal(whatIf.code, 0, whatIf.stderr);
  assert.match(whatIf.stdout, /EXT HTTP PORT: 31999 \(Command Line\)/);
});
