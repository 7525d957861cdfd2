// Proves the low-disk refusal and the space figures of a real worker: below --min-free-disk-bytes
// the node refuses writes (HTTP 507 with the reason, TCP NotHandled TooBusy, which the unmodified
// client retries and then reports) while reads go on, /stats and /metrics say why and how much
// disk the database uses; on a small tmpfs (when the test runs as root) writes are refused as the
// volume fills and accepted again as soon as space is freed.
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { startWorker, waitFor } from './lib/harness.mjs';
import { connect, closeQuietly, es, makeEvents, rejectsWith, streamName } from './lib/es.mjs';

const cleanups = [];
after(async () => {
  for (const c of cleanups.reverse()) await c();
});

function base(w) { return `http://127.0.0.1:${w.httpPort}`; }

async function postEvent(w, stream) {
  const res = await fetch(`${base(w)}/streams/${stream}`, {
    method: 'POST',
    headers: { 'Content-Type': 'application/json', 'ES-EventType': 'T',
      'ES-EventId': crypto.randomUUID() },
    body: '{"a":1}',
    signal: AbortSignal.timeout(15000),
  });
  return { status: res.status, text: await res.text() };
}

async function space(w) {
  const res = await fetch(`${base(w)}/stats`, { signal: AbortSignal.timeout(5000) });
  return (await res.json()).storage.space;
}

async function leader(w) {
  await waitFor(async () => {
    const r = await fetch(`${base(w)}/health/ready`, { signal: AbortSignal.timeout(2000) });
    return r.status === 200;
  }, { timeoutMs: 20000, what: 'the node leading' });
}

test('a threshold above the free space refuses writes with a clear error; reads go on',
  { timeout: 60000 }, async () => {
    const w = await startWorker({ extraArgs: ['--min-free-disk-bytes', '9000000000000000000'] });
    cleanups.push(() => w.cleanup());
    await leader(w);
    const refused = await postEvent(w, streamName('full'));
    assert.equal(refused.status, 507, refused.text);
    assert.match(refused.text, /Not enough free disk space.*--min-free-disk-bytes/);
    const conn = await connect(w, { maxRetries: 2 });
    try {
      await rejectsWith(conn.appendToStream(streamName('full'), es.expectedVersion.any,
        makeEvents(1)), { message: /Retry limit reached/ });
      const read = await conn.readStreamEventsForward(streamName('full'), 0, 10, false);
      assert.equal(read.status, 'streamNotFound');
    } finally {
      closeQuietly(conn);
    }
    const s = await space(w);
    assert.equal(s.writesRefusedLowDisk, true);
    assert.equal(s.minFreeDiskBytes, 9000000000000000000);
    assert.ok(s.diskFreeBytes > 0 && s.diskTotalBytes >= s.diskFreeBytes, JSON.stringify(s));
    assert.ok(s.databaseBytes > 0, JSON.stringify(s));
    const metrics = await (await fetch(`${base(w)}/metrics`)).text();
    assert.match(metrics, /^chorus_writes_refused_low_disk 1$/m);
    assert.match(metrics, /^chorus_disk_free_bytes \d+$/m);
    assert.match(w.output + fs.readFileSync(path.join(w.logDir(), 'chorus-worker.log'), 'utf8'),
      /refusing writes/);
  });

test('the space figures break the database down into log, index and reclaimable bytes',
  { timeout: 60000 }, async () => {
    const w = await startWorker({});
    cleanups.push(() => w.cleanup());
    await leader(w);
    const conn = await connect(w);
    try {
      const big = Array.from({ length: 200 }, () => es.createJsonEventData(
        crypto.randomUUID(), { pad: 'x'.repeat(2000) }, null, 'Big'));
      await conn.appendToStream(streamName('space'), es.expectedVersion.any, big);
    } finally {
      closeQuietly(conn);
    }
    // The per-table breakdown is taken about a second after start, then every minute.
    const s = await waitFor(async () => {
      const r = await space(w);
      return r.breakdownAt && r.logBytes > 0 ? r : false;
    }, { timeoutMs: 10000, what: 'the first dbstat breakdown' });
    assert.ok(s.indexBytes > 0, JSON.stringify(s));
    assert.ok(s.tableBytes.events > 0 && s.tableBytes.stream_index > 0, JSON.stringify(s));
    assert.ok(s.reclaimableBytes >= 0 && s.pageSize > 0 && s.pageCount > 0, JSON.stringify(s));
    assert.equal(s.writesRefusedLowDisk, false);
    const metrics = await (await fetch(`${base(w)}/metrics`)).text();
    for (const name of ['database', 'log', 'index', 'reclaimable']) {
      assert.match(metrics, new RegExp(`^chorus_storage_${name}_bytes \\d+$`, 'm'));
    }
  });

const isRoot = process.getuid?.() === 0;

test('on a filling tmpfs writes are refused before ENOSPC and accepted again when space returns',
  { timeout: 90000, skip: isRoot ? false : 'needs root to mount a small tmpfs' }, async () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'chorus-e2e-tmpfs-'));
    execFileSync('mount', ['-t', 'tmpfs', '-o', 'size=48m', 'tmpfs', dir]);
    cleanups.push(async () => {
      try { execFileSync('umount', [dir]); } catch {}
      fs.rmSync(dir, { recursive: true, force: true });
    });
    const w = await startWorker({ dbDir: path.join(dir, 'db'),
      extraArgs: ['--min-free-disk-bytes', String(16 * 1024 * 1024)] });
    cleanups.push(() => w.cleanup());  // runs before the unmount (cleanups run in reverse)
    await leader(w);
    const stream = streamName('tmpfs');
    assert.equal((await postEvent(w, stream)).status, 201);
    const { bavail, bsize } = fs.statfsSync(dir);
    const filler = path.join(dir, 'filler');
    execFileSync('fallocate', ['-l', String(Number(bavail) * Number(bsize) - 8 * 1024 * 1024),
      filler]);
    await waitFor(async () => (await space(w)).writesRefusedLowDisk,
      { timeoutMs: 5000, what: 'the refusal after the volume filled' });
    const refused = await postEvent(w, stream);
    assert.equal(refused.status, 507, refused.text);
    const conn = await connect(w, { maxRetries: 1 });
    try {
      await rejectsWith(conn.appendToStream(stream, es.expectedVersion.any, makeEvents(1)),
        { message: /Retry limit reached/ });
      fs.rmSync(filler);
      await waitFor(async () => !(await space(w)).writesRefusedLowDisk,
        { timeoutMs: 5000, what: 'writes accepted again after the space returned' });
      assert.equal((await postEvent(w, stream)).status, 201);
      await conn.appendToStream(stream, es.expectedVersion.any, makeEvents(3));
      const read = await conn.readStreamEventsForward(stream, 0, 10, false);
      assert.equal(read.events.length, 5, 'the refused writes left nothing behind');
    } finally {
      closeQuietly(conn);
    }
  });
