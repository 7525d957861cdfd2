// The scavenge scenario shared by tests/e2e/scavenge.test.mjs and bench/scavenge.mjs: streams of
// fat events, half of them hard-deleted, a quarter capped with $maxCount, a quarter untouched;
// what EventStore would return for each afterwards; starting a scavenge over HTTP and awaiting
// its end (with a deadline); and a steady write load that also reads a capped stream.
import { randomUUID } from 'node:crypto';
import { es, admin, num, readAll } from './es.mjs';
import { waitFor } from './harness.mjs';

export const ADMIN = `Basic ${Buffer.from('admin:changeit').toString('base64')}`;
export const MAX_COUNT = 10;

// Stream i's fate: 0 and 2 mod 4 hard-deleted, 1 capped, 3 untouched.
export function fate(i) {
  if (i % 2 === 0) return 'deleted';
  return i % 4 === 1 ? 'capped' : 'kept';
}

export class Scenario {
  constructor({ streams, perStream, dataBytes = 1500, prefix = `sc-${randomUUID().slice(0, 8)}` }) {
    this.streams = streams;
    this.perStream = perStream;
    this.filler = 'x'.repeat(dataBytes);
    this.prefix = prefix;
  }

  name(i) { return `${this.prefix}-${i}`; }

  // Writes every stream (batches of up to 500 events), several streams at once.
  async write(conn, { parallel = 8 } = {}) {
    let next = 0;
    const worker = async () => {
      for (let i = next++; i < this.streams; i = next++) {
        for (let n = 0; n < this.perStream; n += 500) {
          const batch = [];
          for (let k = n; k < Math.min(n + 500, this.perStream); k++) {
            batch.push(es.createJsonEventData(randomUUID(), { k, pad: this.filler }, null,
              'TestEvent'));
          }
          await conn.appendToStream(this.name(i), es.expectedVersion.any, batch, admin);
        }
      }
    };
    await Promise.all(Array.from({ length: parallel }, worker));
  }

  // Hard-deletes half the streams and caps a quarter at MAX_COUNT.
  async retire(conn) {
    for (let i = 0; i < this.streams; i++) {
      if (fate(i) === 'deleted') {
        await conn.deleteStream(this.name(i), es.expectedVersion.any, true, admin);
      } else if (fate(i) === 'capped') {
        await conn.setStreamMetadataRaw(this.name(i), es.expectedVersion.any,
          { $maxCount: MAX_COUNT }, admin);
      }
    }
  }

  // The event numbers a read of stream i returns (null: StreamDeleted).
  expected(i) {
    const f = fate(i);
    if (f === 'deleted') return null;
    const first = f === 'capped' ? this.perStream - MAX_COUNT : 0;
    return Array.from({ length: this.perStream - first }, (_, k) => first + k);
  }

  // Events a scavenge removes: all but the tombstone of deleted streams, all beyond $maxCount.
  removable() {
    let n = 0;
    for (let i = 0; i < this.streams; i++) {
      if (fate(i) === 'deleted') n += this.perStream;
      if (fate(i) === 'capped') n += this.perStream - MAX_COUNT;
    }
    return n;
  }

  // Reads every stream on `conn` and returns the first difference from what EventStore would
  // return, or null.
  async checkReads(conn) {
    for (let i = 0; i < this.streams; i++) {
      const want = this.expected(i);
      const got = await readAll(conn, this.name(i), { creds: admin, pageSize: 1000 });
      if (want === null) {
        if (got.status !== 'streamDeleted') return `${this.name(i)}: ${got.status}, not deleted`;
        continue;
      }
      const numbers = got.events.map((e) => num(e.event.eventNumber));
      if (got.status !== 'success' || JSON.stringify(numbers) !== JSON.stringify(want)) {
        return `${this.name(i)}: ${got.status} [${numbers.slice(0, 5)}...] (${numbers.length})` +
          ` instead of [${want.slice(0, 5)}...] (${want.length})`;
      }
    }
    return null;
  }

  // "stream@number" of this scenario's TestEvents in the order `events` has them.
  ours(events) {
    return events
      .filter((e) => e.originalStreamId?.startsWith(`${this.prefix}-`) &&
        e.originalEvent?.eventType === 'TestEvent')
      .map((e) => `${e.originalStreamId}@${num(e.originalEventNumber)}`);
  }

  // Of `before` ("stream@number" in log order, read before the scavenge), what EventStore shows
  // in $all after it: the same order without the removed events.
  retained(before) {
    return before.filter((id) => {
      const [stream, n] = id.split('@');
      const want = this.expected(Number(stream.slice(this.prefix.length + 1)));
      return want !== null && want.includes(Number(n));
    });
  }
}

// POSTs /admin/scavenge to a node and awaits its end; returns the final state.
export async function scavenge(base, { timeoutMs = 120000, auth = ADMIN } = {}) {
  const res = await fetch(`${base}/admin/scavenge?startFromChunk=0&threads=1`,
    { method: 'POST', headers: { Authorization: auth } });
  if (res.status !== 200) {
    throw new Error(`POST /admin/scavenge: ${res.status} ${await res.text()}`);
  }
  const { scavengeId } = await res.json();
  return awaitScavenge(base, scavengeId, { timeoutMs, auth });
}

export async function awaitScavenge(base, id, { timeoutMs = 120000, auth = ADMIN } = {}) {
  let state;
  await waitFor(async () => {
    const r = await fetch(`${base}/admin/scavenge/${id}`, { headers: { Authorization: auth } });
    state = await r.json();
    return state.scavengeResult !== 'InProgress';
  }, { timeoutMs, intervalMs: 100, what: `scavenge ${id} on ${base} to end` });
  return state;
}

// Writes small batches to fresh streams and reads a capped stream back, until stop(); records
// each write's latency, failures, and any read that differed from `expectedCapped`.
export function writeLoad(conn, { cappedStream, expectedCapped, batch = 10 } = {}) {
  const stats = { writes: 0, failures: [], latenciesMs: [], readMismatches: [] };
  let running = true;
  const loop = async () => {
    let k = 0;
    while (running) {
      const stream = `load-${randomUUID().slice(0, 8)}-${k++ % 50}`;
      const events = Array.from({ length: batch }, (_, j) =>
        es.createJsonEventData(randomUUID(), { j }, null, 'Load'));
      const t0 = performance.now();
      try {
        await conn.appendToStream(stream, es.expectedVersion.any, events, admin);
        stats.latenciesMs.push(performance.now() - t0);
        stats.writes += batch;
      } catch (e) {
        stats.failures.push(e.message);
      }
      if (cappedStream && k % 10 === 0) {
        const got = await readAll(conn, cappedStream, { creds: admin });
        const numbers = got.events.map((e) => num(e.event.eventNumber));
        if (JSON.stringify(numbers) !== JSON.stringify(expectedCapped)) {
          stats.readMismatches.push(`[${numbers.slice(0, 3)}...] (${numbers.length})`);
        }
      }
    }
  };
  const done = Promise.all([loop(), loop()]);
  return { stats, stop: async () => { running = false; await done; return stats; } };
}

export function percentile(values, p) {
  if (values.length === 0) return 0;
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.floor(sorted.length * p))];
}
