// Goal: prove that an acknowledged write survives SIGKILL. A worker on disk takes appends from 16
// concurrent writers (separate connections, several writes in flight each) until at least 1,000
// writes are acknowledged; it is killed with SIGKILL while writes are still in flight, restarted on
// the same folder and ports, and must then hold every acknowledged event at its acknowledged
// number with its id, with no event stored twice and every stream numbered contiguously.
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { Worker } from './lib/harness.mjs';
import { connect, closeQuietly, streamName, jsonEvent, num, readAll, ANY } from './lib/es.mjs';

const WRITERS = 16;
const DEPTH = 4; // writes in flight per writer
const TARGET = 1000;
const STREAMS = Array.from({ length: 8 }, (_, i) => streamName(`crash${i}`));

let w;
const conns = [];

after(async () => {
  conns.forEach(closeQuietly);
  await w?.cleanup();
});

test('acknowledged writes survive SIGKILL and a restart on the same folder', { timeout: 120000 }, async () => {
  w = new Worker({});
  await w.start();
  for (let i = 0; i < WRITERS; i++) {
    conns.push(await connect(w, { maxReconnections: 0, maxRetries: 0 }));
  }

  const acked = []; // { id, stream, number }
  let inFlight = 0;
  let inFlightAtKill = -1;
  let killed = false;
  let stopWriting = false;
  let failure;
  const done = new Promise((resolve) => {
    const pid = w.pid;
    const writeOne = (conn, k) => {
      if (stopWriting) return;
      const stream = STREAMS[k % STREAMS.length];
      const ev = jsonEvent({ writer: k, at: Date.now() }, 'CrashTest');
      inFlight++;
      conn.appendToStream(stream, ANY, ev).then((r) => {
        inFlight--;
        // Replies handled after the kill were still received before it: they count too.
        acked.push({ id: ev.eventId, stream, number: num(r.nextExpectedVersion) });
        if (killed) return;
        if (acked.length >= TARGET) {
          // Kill synchronously from the ack callback so the other writers' requests are in
          // flight at that moment.
          stopWriting = true;
          killed = true;
          inFlightAtKill = inFlight;
          process.kill(pid, 'SIGKILL');
          resolve();
          return;
        }
        writeOne(conn, k);
      }, (e) => {
        inFlight--;
        if (!killed) { failure = e; stopWriting = true; resolve(); }
      });
    };
    conns.forEach((c, k) => { for (let d = 0; d < DEPTH; d++) writeOne(c, k); });
  });
  await done;
  if (failure) assert.fail(`a write failed before the kill: ${failure.message}`);
  await w.exited;
  assert.ok(inFlightAtKill > 0, `writes must be in flight at the kill (had ${inFlightAtKill})`);
  conns.forEach(closeQuietly);
  assert.ok(acked.length >= TARGET);

  await w.start(); // same dbDir and ports
  const reader = await connect(w);
  conns.push(reader);
  const stored = new Map(); // id -> { stream, number }
  for (const s of STREAMS) {
    const { status, events } = await readAll(reader, s);
    assert.equal(status, 'success', `${s} must exist after the restart`);
    events.forEach((e, i) => {
      assert.equal(num(e.event.eventNumber), i, `${s} must be numbered contiguously`);
      assert.ok(!stored.has(e.event.eventId), `event ${e.event.eventId} stored twice`);
      stored.set(e.event.eventId, { stream: s, number: i });
    });
  }
  const lost = acked.filter((a) => !stored.has(a.id));
  assert.equal(lost.length, 0,
    `${lost.length} of ${acked.length} acknowledged events lost, e.g. ${JSON.stringify(lost.slice(0, 3))}`);
  for (const a of acked) {
    assert.deepEqual(stored.get(a.id), { stream: a.stream, number: a.number },
      `acknowledged event ${a.id} moved`);
  }
  // The restarted worker accepts writes that continue each stream.
  const r = await reader.appendToStream(STREAMS[0], ANY, jsonEvent({ after: 'restart' }));
  assert.equal(num(r.nextExpectedVersion),
    [...stored.values()].filter((v) => v.stream === STREAMS[0]).length);
});
