// Goal: prove that a worker names its threads (issue 16: `top -H` must show where time goes): a
// single node on disk that served one HTTP request and one TCP write has threads named core,
// writer, subscriptions, http, http-accept, gossip, reader-0.., password-0 and auth-answers, read
// from /proc/<pid>/task/*/comm; only its main thread (signals, shutdown; the client connections
// run on core) keeps the process name, so pgrep and killall still find it (each HTTP server's
// first pool thread is named when the server starts, not on its first request, so a port that
// has served nothing has no unnamed thread either). There is no I/O pool thread (io-1) any more.
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import { Worker } from './lib/harness.mjs';
import { connect, closeQuietly, streamName, jsonEvent, ANY } from './lib/es.mjs';

let w;
let conn;

after(async () => {
  closeQuietly(conn);
  await w?.cleanup();
});

function threadNames(pid) {
  return fs.readdirSync(`/proc/${pid}/task`).map((tid) =>
    fs.readFileSync(`/proc/${pid}/task/${tid}/comm`, 'utf8').trim());
}

test('a worker names its threads', { timeout: 60000 }, async () => {
  w = new Worker({});
  await w.start();
  const res = await fetch(`http://127.0.0.1:${w.httpPort}/info`);
  assert.equal(res.status, 200);
  conn = await connect(w);
  await conn.appendToStream(streamName('threads'), ANY, [jsonEvent({ a: 1 }, 'Named')]);
  const names = threadNames(w.pid);
  for (const expected of ['core', 'writer', 'subscriptions', 'http', 'http-accept', 'gossip',
    'reader-0', 'password-0', 'auth-answers']) {
    assert.ok(names.includes(expected), `no thread named ${expected} in ${names.join(', ')}`);
  }
  assert.ok(!names.includes('io-1'), `an I/O pool thread in ${names.join(', ')}`);
  // The main thread alone: the internal HTTP server has served nothing, its pool thread is named.
  const unnamed = names.filter((n) => n === 'chorus-worker');
  assert.equal(unnamed.length, 1, `unnamed threads: ${unnamed.length} of ${names.join(', ')}`);
  assert.equal(fs.readFileSync(`/proc/${w.pid}/comm`, 'utf8').trim(), 'chorus-worker');
});
