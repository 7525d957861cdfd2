// Proves schema versions on the real binary: a node started on a database written before versions
// existed (made from tests/fixtures/schema_v1.sql) migrates it and serves its events as before, and a node
// started on a file that claims a newer schema exits with code 1 and a clear message, leaving the
// file byte for byte as it was.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync, spawn } from 'node:child_process';
import crypto from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { Worker, WORKER, freePort } from './lib/harness.mjs';
import { connect, closeQuietly, admin, dataOf, num } from './lib/es.mjs';

// The `.dump` of a layout-1 file an early release wrote (tests/fixtures/README.md).
const FIXTURE = path.resolve(import.meta.dirname, '../fixtures/schema_v1.sql');
const USER_VERSION_OFFSET = 60;  // SQLite's header field of PRAGMA user_version (big-endian)

// A folder holding the fixture as a node's chorus.db (sqlite3 is installed by scripts/setup.sh).
function copyFixture() {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'chorus-schema-'));
  const sql = fs.readFileSync(FIXTURE, 'utf8') + 'PRAGMA journal_mode=WAL;\n';
  execFileSync('sqlite3', [path.join(dir, 'chorus.db')], { input: sql, stdio: ['pipe', 'ignore', 'inherit'] });
  return dir;
}

test('a version-1 database migrates and reads as before', { timeout: 60000 }, async () => {
  const dir = copyFixture();
  const w = new Worker({ dbDir: dir });
  w.ownsDir = true;
  let conn;
  try {
    await w.start();
    conn = await connect(w);
    const a = await conn.readStreamEventsForward('fixture-a', 0, 10, false, admin);
    assert.deepEqual(a.events.map((e) => dataOf(e.event).n), [0, 1, 2]);
    const b = await conn.readStreamEventsForward('fixture-b', 0, 10, false, admin);
    assert.deepEqual(b.events.map((e) => num(e.event.eventNumber)), [2]);  // $maxCount 1
    const c = await conn.readStreamEventsForward('fixture-c', 0, 10, false, admin);
    assert.equal(c.status, 'streamDeleted');
    closeQuietly(conn);
    await w.stop();  // a clean stop checkpoints the WAL into the file
    const header = fs.readFileSync(path.join(dir, 'chorus.db')).subarray(0, 100);
    assert.ok(header.readUInt32BE(USER_VERSION_OFFSET) >= 2, 'the file is stamped');
  } finally {
    closeQuietly(conn);
    await w.cleanup();
  }
});

test('a database from a newer release is refused and left untouched', { timeout: 60000 },
  async () => {
    const dir = copyFixture();
    const file = path.join(dir, 'chorus.db');
    const bytes = fs.readFileSync(file);
    bytes.writeUInt32BE(99, USER_VERSION_OFFSET);
    fs.writeFileSync(file, bytes);
    const digest = () => crypto.createHash('sha256').update(fs.readFileSync(file)).digest('hex');
    const before = digest();
    const logDir = fs.mkdtempSync(path.join(os.tmpdir(), 'chorus-schema-log-'));
    try {
      const ports = await Promise.all([freePort(), freePort(), freePort(), freePort()]);
      const proc = spawn(WORKER, ['--db', dir, '--log', logDir,
        '--ext-tcp-port', String(ports[0]), '--ext-http-port', String(ports[1]),
        '--int-tcp-port', String(ports[2]), '--int-http-port', String(ports[3])],
      { stdio: ['ignore', 'pipe', 'pipe'] });
      let output = '';
      proc.stdout.on('data', (d) => { output += d; });
      proc.stderr.on('data', (d) => { output += d; });
      const code = await new Promise((resolve) => proc.once('exit', (c) => resolve(c)));
      assert.equal(code, 1, output);
      assert.match(output, /schema version 99, newer than the \d+ this chorus-worker knows/);
      assert.equal(digest(), before);
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
      fs.rmSync(logDir, { recursive: true, force: true });
    }
  });
