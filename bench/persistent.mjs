// Persistent-subscription benchmark (issue 12): events/s delivered and acknowledged to N
// competing consumers, and the end-to-end latency from append to a consumer's handler.
//
// Starts one chorus-worker (in memory, ports chosen here, logs in a temporary folder), and per
// run creates a group on a fresh stream (client default settings, startFrom 0), connects
// --consumers consumers (each its own connection, auto-ack, bufferSize --in-flight); then one
// writer appends --events events in batches of --batch, each event's data carrying its append
// time, as fast as the node takes them or paced to --rate events/s. Measures per run:
// - acked_per_second: events / (first append .. the group's /info reporting every event
//   acknowledged), i.e. delivered and acked end to end;
// - latency p50/p99: delivery time at the consumer - append start of its batch (one clock);
// - duplicates (deliveries beyond one per event; 0 without failures).
// Prints the machine and load, one JSON line per run, then the median of each figure.
//
// Usage (from the repository root; the node client comes from tests/e2e/node_modules):
//   node bench/persistent.mjs --worker build/release/worker/chorus-worker --consumers 1 \
//     [--events 20000] [--batch 50] [--in-flight 100] [--runs 5] [--rate 0]
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import { createRequire } from 'node:module';
import { randomUUID } from 'node:crypto';
import { performance } from 'node:perf_hooks';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const here = path.dirname(fileURLToPath(import.meta.url));
const require = createRequire(path.join(here, '../tests/e2e/package.json'));
const es = require('node-eventstore-client');
const Long = require('long');

function arg(name, fallback) {
  const i = process.argv.indexOf(`--${name}`);
  return i > 0 ? process.argv[i + 1] : fallback;
}
const WORKER = arg('worker', 'build/release/worker/chorus-worker');
const CONSUMERS = Number(arg('consumers', '1'));
const EVENTS = Number(arg('events', '20000'));
const BATCH = Number(arg('batch', '50'));
const IN_FLIGHT = Number(arg('in-flight', '100'));
const RUNS = Number(arg('runs', '5'));
const RATE = Number(arg('rate', '0'));  // events/s the writer offers; 0: as fast as acknowledged
const admin = new es.UserCredentials('admin', 'changeit');
const auth = `Basic ${Buffer.from('admin:changeit').toString('base64')}`;
const now = () => performance.timeOrigin + performance.now();

function freePort() {
  return new Promise((resolve, reject) => {
    const s = net.createServer();
    s.listen(0, '127.0.0.1', () => { const { port } = s.address(); s.close(() => resolve(port)); });
    s.on('error', reject);
  });
}

async function until(pred, timeoutMs, what, intervalMs = 10) {
  const deadline = Date.now() + timeoutMs;
  while (!(await pred())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, intervalMs));
  }
}

async function connect(port) {
  const conn = es.createConnection({ log: new es.NoopLogger(), defaultUserCredentials: admin },
    `tcp://127.0.0.1:${port}`);
  conn.on('error', () => {});
  await new Promise((resolve, reject) => {
    conn.once('connected', resolve);
    conn.once('closed', reject);
    conn.connect().catch(reject);
  });
  return conn;
}

function percentile(sorted, p) {
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))];
}

function median(values) {
  const v = [...values].sort((a, b) => a - b);
  return v[Math.floor(v.length / 2)];
}

async function acknowledgedCount(httpPort, stream) {
  const res = await fetch(`http://127.0.0.1:${httpPort}/subscriptions/${stream}/bench/info`,
    { headers: { authorization: auth } });
  if (res.status !== 200) return -1;
  return (await res.json()).totalItemsProcessed;
}

async function write(writer, stream, t0) {
  for (let i = 0; i < EVENTS; i += BATCH) {
    if (RATE > 0) {
      const due = t0 + (i / RATE) * 1000;
      if (due > now()) await new Promise((r) => setTimeout(r, due - now()));
    }
    const at = now();
    const batch = [];
    for (let j = 0; j < BATCH && i + j < EVENTS; j++) {
      batch.push(es.createJsonEventData(randomUUID(), { at, i: i + j }, null, 'Bench'));
    }
    await writer.appendToStream(stream, es.expectedVersion.any, batch);
  }
}

async function run(ports, index) {
  const writer = await connect(ports.tcp);
  const stream = `bench-ps-${index}-${randomUUID().slice(0, 8)}`;
  const settings = es.PersistentSubscriptionSettings.create();
  settings.startFrom = Long.fromValue(0);
  await writer.createPersistentSubscription(stream, 'bench', settings, admin);
  const seen = new Set();
  const latencies = [];
  let deliveries = 0;
  const conns = [];
  for (let c = 0; c < CONSUMERS; c++) {
    const conn = await connect(ports.tcp);
    conns.push(conn);
    await conn.connectToPersistentSubscription(stream, 'bench', (_s, e) => {
      const at = now();
      deliveries += 1;
      const id = e.originalEvent.eventId;
      if (seen.has(id)) return;
      seen.add(id);
      latencies.push(at - JSON.parse(e.originalEvent.data.toString()).at);
    }, undefined, admin, IN_FLIGHT, true);
  }
  const t0 = now();
  await write(writer, stream, t0);
  await until(() => seen.size >= EVENTS, 300000, `${EVENTS} deliveries`);
  await until(async () => (await acknowledgedCount(ports.http, stream)) >= EVENTS, 60000,
    `${EVENTS} acknowledgements in /info`);
  const seconds = (now() - t0) / 1000;
  latencies.sort((a, b) => a - b);
  for (const c of [...conns, writer]) c.close();
  return {
    consumers: CONSUMERS, events: EVENTS,
    acked_per_second: Math.round(EVENTS / seconds),
    latency_p50_ms: Number(percentile(latencies, 50).toFixed(2)),
    latency_p99_ms: Number(percentile(latencies, 99).toFixed(2)),
    duplicates: deliveries - seen.size,
  };
}

const logDir = fs.mkdtempSync(path.join(os.tmpdir(), 'chorus-bench-ps-'));
const [tcp, http, intTcp, intHttp] = [await freePort(), await freePort(), await freePort(),
  await freePort()];
const worker = spawn(WORKER, ['--mem-db', '--ext-ip', '127.0.0.1', '--int-ip', '127.0.0.1',
  '--ext-tcp-port', String(tcp), '--ext-http-port', String(http),
  '--int-tcp-port', String(intTcp), '--int-http-port', String(intHttp), '--log', logDir],
{ stdio: ['ignore', 'ignore', 'inherit'] });
try {
  console.log(JSON.stringify({
    machine: `${os.cpus()[0].model}, ${os.cpus().length} cores, ${os.platform()} ${os.release()}`,
    load_before: os.loadavg().map((l) => Number(l.toFixed(2))),
    settings: { consumers: CONSUMERS, events: EVENTS, batch: BATCH, in_flight: IN_FLIGHT,
      runs: RUNS, rate: RATE },
  }));
  await until(() => new Promise((resolve) => {
    const s = net.connect(tcp, '127.0.0.1', () => { s.destroy(); resolve(true); });
    s.on('error', () => resolve(false));
  }), 30000, 'the worker', 50);
  const results = [];
  for (let r = 0; r < RUNS; r++) {
    const result = await run({ tcp, http }, r);
    results.push(result);
    console.log(JSON.stringify({ run: r + 1, ...result }));
  }
  const m = (key) => median(results.map((r) => r[key]));
  console.log(JSON.stringify({
    median: { consumers: CONSUMERS, acked_per_second: m('acked_per_second'),
      latency_p50_ms: m('latency_p50_ms'), latency_p99_ms: m('latency_p99_ms'),
      duplicates: m('duplicates') },
    load_after: os.loadavg().map((l) => Number(l.toFixed(2))),
  }));
} finally {
  if (worker.exitCode === null && worker.signalCode === null) {
    const exited = new Promise((r) => worker.once('exit', r));
    worker.kill('SIGTERM');
    await exited;
  }
  fs.rmSync(logDir, { recursive: true, force: true });
}
