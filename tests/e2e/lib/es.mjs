// Helpers shared by the client end-to-end tests: open an unmodified node-eventstore-client
// connection to a worker and wait (with a deadline) until the client reports `connected`, so a
// server that never answers IdentifyClient fails the test instead of hanging it; plus small
// helpers for event data, Long values and expected failures.
import es from 'node-eventstore-client';
import Long from 'long';
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { startWorker, tlsSettings } from './harness.mjs';

export { es, Long };

export const admin = new es.UserCredentials('admin', 'changeit');
export const ops = new es.UserCredentials('ops', 'changeit');
export const ANY = es.expectedVersion.any;
export const NO_STREAM = es.expectedVersion.noStream;
export const STREAM_EXISTS = es.expectedVersion.streamExists;

// Connection settings used by every test: the client's default heartbeats (750/1500 ms), a
// silent logger, few reconnections and no endless retries, so a broken server fails fast.
export const testSettings = {
  log: new es.NoopLogger(),
  maxReconnections: 2,
  reconnectionDelay: 100,
  failOnNoServerResponse: true,
  operationTimeout: 15000,
  maxRetries: 3,
};

// Opens a connection with `client` (23.10.1 by default, or the 0.2.19 module) to the worker and
// resolves once `connected` fired; rejects on `closed` or after timeoutMs.
export async function connect(w, settings = {}, { client = es, timeoutMs = 10000, name } = {}) {
  const conn = client.createConnection({ ...testSettings, ...tlsSettings(w), ...settings },
    w.tcpEndpoint,
    name || `e2e-${randomUUID().slice(0, 8)}`);
  conn.on('error', () => {});
  // Kept for tests of bad default credentials: on NotAuthenticated the client's internal
  // handler emits `authenticationFailed` and carries on; EventStoreNodeConnection does not
  // forward that event, so listen on the handler itself.
  conn.authFailures = [];
  // Every connection loss after `connected` (heartbeat timeout, server close) is recorded, so
  // tests can prove the server kept the connection healthy.
  conn.disconnects = [];
  conn.on('disconnected', (ep) => conn.disconnects.push(`disconnected ${JSON.stringify(ep)}`));
  conn.on('reconnecting', () => conn.disconnects.push('reconnecting'));
  (conn._handler || conn).on('authenticationFailed', (reason) => conn.authFailures.push(reason));
  await new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(
      `client did not reach "connected" within ${timeoutMs} ms (IdentifyClient unanswered?)`)),
      timeoutMs);
    conn.once('connected', () => { clearTimeout(timer); resolve(); });
    conn.once('closed', (reason) => {
      clearTimeout(timer);
      reject(new Error(`connection closed before connected: ${reason}`));
    });
    conn.connect().catch((e) => { clearTimeout(timer); reject(e); });
  });
  return conn;
}

export function closeQuietly(conn) {
  try { conn?.close(); } catch {}
}

// The usual fixture of a client test file: one in-memory worker and one anonymous connection.
export async function openWorkerConnection() {
  const w = await startWorker({ memDb: true });
  return { w, conn: await connect(w) };
}

export async function closeWorkerConnection(w, conn) {
  closeQuietly(conn);
  await w?.cleanup();
}

// A unique stream name per test so tests in one file never see each other's events.
export function streamName(prefix = 's') {
  return `${prefix}-${randomUUID().replace(/-/g, '').slice(0, 16)}`;
}

export function jsonEvent(data, type = 'TestEvent', metadata) {
  return es.createJsonEventData(randomUUID(), data, metadata, type);
}

export function rawEvent(buf, type = 'Raw') {
  return es.createEventData(randomUUID(), type, false, buf);
}

export function makeEvents(n, type = 'TestEvent', extra = {}) {
  return Array.from({ length: n }, (_, i) => jsonEvent({ i, ...extra }, type));
}

// A Long (or number) as a JS number, for readable assertions.
export function num(v) {
  assert.ok(v !== null && v !== undefined, `expected a number, got ${v}`);
  return Long.isLong(v) ? v.toNumber() : Number(v);
}

export function dataOf(recorded) {
  return JSON.parse(recorded.data.toString());
}

// Asserts that the promise rejects with an error of the named class / message pattern, and
// returns the error.
export async function rejectsWith(promise, { name, message } = {}) {
  let err;
  try {
    const value = await promise;
    assert.fail(`expected a failure (${name || message}), but the operation succeeded: ` +
      `${JSON.stringify(value, (k, v) => (typeof v === 'bigint' ? String(v) : v))?.slice(0, 300)}`);
  } catch (e) {
    if (e instanceof assert.AssertionError) throw e;
    err = e;
  }
  if (name) assert.equal(err.name, name, `expected ${name}, got ${err.name}: ${err.message}`);
  if (message) assert.match(err.message, message);
  return err;
}

// Reads a whole stream forward in pages and returns all events (ResolvedEvent[]).
export async function readAll(conn, stream, { creds, pageSize = 4096 } = {}) {
  const out = [];
  let from = 0;
  for (;;) {
    const slice = await conn.readStreamEventsForward(stream, from, pageSize, false, creds);
    if (slice.status !== 'success') return { status: slice.status, events: out };
    out.push(...slice.events);
    if (slice.isEndOfStream) return { status: slice.status, events: out };
    from = num(slice.nextEventNumber);
  }
}

// A promise with an outside resolve, for events that callbacks deliver.
export function deferred() {
  let resolve, reject;
  const promise = new Promise((res, rej) => { resolve = res; reject = rej; });
  return { promise, resolve, reject };
}

// Rejects after ms with a message naming what was awaited.
export function withDeadline(promise, ms, what) {
  let timer;
  return Promise.race([
    promise,
    new Promise((_, reject) => {
      timer = setTimeout(() => reject(new Error(`timed out after ${ms} ms waiting for ${what}`)), ms);
    }),
  ]).finally(() => clearTimeout(timer));
}
