// Goal: prove the cluster-secret start-up rules (docs/security.md): a worker on a loopback
// internal address runs without a secret (and says so in its log); a worker whose internal
// address is not loopback refuses to start without a secret, naming --cluster-secret-file and
// --insecure, unless certificates are configured (mutual TLS authenticates members; it then
// passes that check without binding anything); a secret file that others can read, or that is too short, is refused with the fix
// named; a manager creates a private secret in its data folder when none is configured and hands
// it to its nodes, which then form a cluster.
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { spawn } from 'node:child_process';
import { WORKER, startWorker } from './lib/harness.mjs';
import { workerTlsArgs } from './lib/tls.mjs';
import { Manager } from './manager_harness.mjs';

const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'chorus-secret-e2e-'));
const cleanups = [];
after(async () => {
  for (const c of cleanups) await c();
  fs.rmSync(dir, { recursive: true, force: true });
});

// Runs chorus-worker with `args` until it exits; resolves { code, output }.
function runWorker(args, timeoutMs = 10000, storage = ['--mem-db']) {
  return new Promise((resolve, reject) => {
    const p = spawn(WORKER, [...storage, '--log', path.join(dir, 'logs'), ...args],
      { stdio: ['ignore', 'pipe', 'pipe'] });
    let output = '';
    p.stdout.on('data', (d) => { output += d; });
    p.stderr.on('data', (d) => { output += d; });
    const timer = setTimeout(() => { p.kill('SIGKILL'); reject(new Error(`worker kept running:\n${output}`)); },
      timeoutMs);
    p.once('exit', (code) => { clearTimeout(timer); resolve({ code, output }); });
  });
}

test('a loopback worker runs without a secret and says so', { timeout: 30000 }, async () => {
  const w = await startWorker({ memDb: true, secretFile: null });
  cleanups.push(() => w.cleanup());
  assert.match(w.output, /no cluster secret/);
});

test('a non-loopback internal address without a secret refuses to start', { timeout: 30000 },
  async () => {
    // 0.0.0.0 reaches every interface; the worker refuses before it binds anything.
    const r = await runWorker(['--int-ip', '0.0.0.0']);
    assert.equal(r.code, 1, r.output);
    assert.match(r.output, /not loopback/);
    assert.match(r.output, /--cluster-secret-file/);
    assert.match(r.output, /--insecure/);
  });

test('with certificates a non-loopback internal address needs no secret', { timeout: 30000 },
  async () => {
    // A node that passes the rule goes on to read its instance id; a malformed one stops it
    // there, before it binds anything, so the test never listens beyond loopback.
    const db = path.join(dir, 'tls-db');
    fs.mkdirSync(db, { recursive: true });
    fs.writeFileSync(path.join(db, 'instance-id'), 'not-a-guid\n');
    const r = await runWorker(['--int-ip', '0.0.0.0', ...workerTlsArgs()], 10000, ['--db', db]);
    assert.equal(r.code, 1, r.output);
    assert.doesNotMatch(r.output, /not loopback/);
    assert.match(r.output, /instance id file .* is not a GUID/);
  });

test('a secret file readable by others, or too short, is refused', { timeout: 30000 },
  async () => {
    const open = path.join(dir, 'open-secret');
    fs.writeFileSync(open, 'a'.repeat(64), { mode: 0o644 });
    fs.chmodSync(open, 0o644);
    let r = await runWorker(['--cluster-secret-file', open]);
    assert.equal(r.code, 1, r.output);
    assert.match(r.output, /chmod 600/);
    const short = path.join(dir, 'short-secret');
    fs.writeFileSync(short, 'abc', { mode: 0o600 });
    r = await runWorker(['--cluster-secret-file', short]);
    assert.equal(r.code, 1, r.output);
    assert.match(r.output, /openssl rand/);
    r = await runWorker(['--cluster-secret-file', path.join(dir, 'missing')]);
    assert.equal(r.code, 1, r.output);
    assert.match(r.output, /missing/);
  });

test('a manager creates a private secret and hands it to its nodes', { timeout: 60000 },
  async () => {
    const m = new Manager({
      nodes: ['a', 'b', 'c'].map((name) => ({ name, options: { ClusterSize: 3, MemDb: true } })),
      settings: { ClusterSecretFile: null },
    });
    cleanups.push(() => m.cleanup());
    await m.start();
    await m.waitForCluster(2);
    const secret = path.join(m.dir, 'data', 'manager', 'cluster-secret');
    const st = fs.statSync(secret);
    assert.equal(st.mode & 0o777, 0o600);
    assert.match(fs.readFileSync(secret, 'utf8'), /^[0-9a-f]{64}\n$/);
  });
