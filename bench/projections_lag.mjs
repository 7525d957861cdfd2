// The lag of $ce- behind the writes at a steady rate: writes RATE events/s (batches of BATCH to
// STREAMS streams of one new category) for SECONDS to a node that runs the standard projections,
// waits until $ce-<category> links every event, then reads it and reports, from the server's own
// timestamps (the link's created time minus its event's), the lag's p50/p99/max in ms and the
// rate actually written. One JSON line on stdout.
// Usage: node bench/projections_lag.mjs <ext tcp port> [RATE=5000] [SECONDS=20]
import { randomUUID } from 'node:crypto';
import { createRequire } from 'node:module';

const require = createRequire(new URL('../tests/e2e/package.json', import.meta.url));
const es = require('node-eventstore-client');

const [port, rate = '5000', seconds = '20'] = process.argv.slice(2);
const RATE = Number(rate);
const SECONDS = Number(seconds);
const BATCH = 50;
const STREAMS = 16;
const admin = new es.UserCredentials('admin', 'changeit');
const category = `lag${randomUUID().replace(/-/g, '').slice(0, 10)}`;

const conn = es.createConnection({ defaultUserCredentials: admin, maxReconnections: 0 },
  `tcp://127.0.0.1:${port}`);
await conn.connect();

// Steady rate: every tick writes the batches due by then, so a slow tick does not lower the rate.
const started = Date.now();
let written = 0;
const inFlight = new Set();
while (Date.now() - started < SECONDS * 1000) {
  const due = Math.floor(((Date.now() - started) / 1000) * RATE);
  while (written + BATCH <= due) {
    const stream = `${category}-${(written / BATCH) % STREAMS}`;
    const events = Array.from({ length: BATCH }, (_, i) =>
      es.createJsonEventData(randomUUID(), { i: written + i }, null, 'LagProbe'));
    const p = conn.appendToStream(stream, es.expectedVersion.any, events);
    inFlight.add(p);
    p.finally(() => inFlight.delete(p));
    written += BATCH;
  }
  await new Promise((r) => setTimeout(r, 5));
}
await Promise.all(inFlight);
const writeSeconds = (Date.now() - started) / 1000;

const lags = [];
let from = 0;
const deadline = Date.now() + 120000;
while (lags.length < written && Date.now() < deadline) {
  const slice = await conn.readStreamEventsForward(`$ce-${category}`, from, 4096, true, admin);
  if (slice.status === 'success') {
    for (const e of slice.events) lags.push(e.link.createdEpoch - e.event.createdEpoch);
    from = Number(slice.nextEventNumber);
  }
  if (slice.status !== 'success' || slice.isEndOfStream) {
    await new Promise((r) => setTimeout(r, 100));
  }
}
conn.close();
lags.sort((a, b) => a - b);
const at = (q) => lags[Math.min(lags.length - 1, Math.floor(q * lags.length))];
console.log(JSON.stringify({
  rate_asked: RATE, events: written, rate_written: Math.round(written / writeSeconds),
  links: lags.length, lag_p50_ms: at(0.5), lag_p99_ms: at(0.99), lag_max_ms: lags.at(-1),
}));
