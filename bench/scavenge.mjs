// Scavenge benchmark (issue 14): one chorus-worker on disk. Each of RUNS rounds writes a fresh
// set of STREAMS x PER_STREAM events (default 1,000 x 200 = 200,000, 500 bytes of data each),
// hard-deletes half the streams and caps a quarter with $maxCount 10; then runs a write load (two
// writers, batches of 10 events to fresh streams) without a scavenge ("without", as long as the
// previous round's scavenge took, at least 5 s) and the same load while a scavenge runs ("with").
// Prints per round the scavenge rate (events examined and removed per second), the file size
// before and after, and each load's events/s and p50/p99 with their ratios.
// Usage: node bench/scavenge.mjs [--worker PATH] [--streams N] [--per-stream N] [--bytes N]
//        [--runs N]
// Every process it starts is stopped (by PID) at the end; its data folder is removed.
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const here = path.dirname(fileURLToPath(import.meta.url));
const args = Object.fromEntries(process.argv.slice(2).reduce((pairs, a, i, all) => {
  if (a.startsWith('--')) pairs.push([a.slice(2), all[i + 1]]);
  return pairs;
}, []));
const worker = args.worker || path.join(here, '../build/release/worker/chorus-worker');
process.env.CHORUS_WORKER = path.resolve(worker);
// Imported after CHORUS_WORKER is set: the harness reads it when it loads.
const { startWorker } = await import('../tests/e2e/lib/harness.mjs');
const { connect, closeQuietly } = await import('../tests/e2e/lib/es.mjs');
const { ADMIN, Scenario, awaitScavenge, writeLoad, percentile } =
  await import('../tests/e2e/lib/scavenge_scenario.mjs');
const STREAMS = Number(args.streams || 1000);
const PER_STREAM = Number(args['per-stream'] || 200);
const BYTES = Number(args.bytes || 500);
const RUNS = Number(args.runs || 3);

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
const fileBytes = (dir) => fs.statSync(path.join(dir, 'chorus.db')).size;

function summary(stats, seconds) {
  return {
    eventsPerSecond: Math.round(stats.writes / seconds),
    p99Ms: Number(percentile(stats.latenciesMs, 0.99).toFixed(1)),
    p50Ms: Number(percentile(stats.latenciesMs, 0.5).toFixed(1)),
    failures: stats.failures.length,
  };
}

async function loadFor(conn, ms) {
  const load = writeLoad(conn);
  const t0 = performance.now();
  await sleep(ms);
  const stats = await load.stop();
  return summary(stats, (performance.now() - t0) / 1000);
}

async function loadDuringScavenge(conn, base) {
  const load = writeLoad(conn);
  const t0 = performance.now();
  const res = await fetch(`${base}/admin/scavenge`,
    { method: 'POST', headers: { Authorization: ADMIN } });
  const { scavengeId } = await res.json();
  const state = await awaitScavenge(base, scavengeId, { timeoutMs: 1800000 });
  const stats = await load.stop();
  return { state, load: summary(stats, (performance.now() - t0) / 1000) };
}

const w = await startWorker({});
const conn = await connect(w, { operationTimeout: 60000 });
const base = `http://127.0.0.1:${w.httpPort}`;
try {
  let lastMs = 5000;
  let scenario;
  for (let run = 1; run <= RUNS; run++) {
    scenario = new Scenario({ streams: STREAMS, perStream: PER_STREAM, dataBytes: BYTES });
    const t0 = performance.now();
    await scenario.write(conn);
    await scenario.retire(conn);
    console.log(`# round ${run}: wrote ${STREAMS * PER_STREAM} events to ${STREAMS} streams in ` +
      `${((performance.now() - t0) / 1000).toFixed(1)} s; ${scenario.removable()} removable`);
    const without = await loadFor(conn, Math.max(5000, lastMs));
    const sizeBefore = fileBytes(w.dbDir);
    const withScavenge = await loadDuringScavenge(conn, base);
    const s = withScavenge.state;
    lastMs = s.timeTakenMs;
    const round = {
      run,
      scavenge: {
        result: s.scavengeResult,
        seconds: s.timeTakenMs / 1000,
        examined: s.eventsExamined,
        removed: s.eventsRemoved,
        examinedPerSecond: Math.round(s.eventsExamined / (s.timeTakenMs / 1000)),
        removedPerSecond: Math.round(s.eventsRemoved / (s.timeTakenMs / 1000)),
        spaceSavedBytes: s.spaceSavedBytes,
        fileBytesBefore: sizeBefore,
        fileBytesAfter: fileBytes(w.dbDir),
      },
      without,
      with: withScavenge.load,
      throughputRatio: Number((withScavenge.load.eventsPerSecond / without.eventsPerSecond)
        .toFixed(2)),
      p99Ratio: Number((withScavenge.load.p99Ms / without.p99Ms).toFixed(2)),
    };
    console.log(JSON.stringify(round));
  }
  const problem = await scenario.checkReads(conn);
  console.log(problem ? `# READS DIFFER: ${problem}`
    : '# reads after the scavenges: as EventStore');
} finally {
  closeQuietly(conn);
  await w.cleanup();
}
