// Sequential one-event reads on one node (requireMaster false) for SECONDS: p50/p99 latency.
import { createRequire } from 'node:module';
import { performance } from 'node:perf_hooks';
const require = createRequire('/work/main/bench/peers/package.json');
const es = require('node-eventstore-client');
const [port, seconds] = [Number(process.argv[2]), Number(process.argv[3] || 6)];
const log = { info() {}, debug() {}, error() {} };
const conn = es.createConnection({ log, requireMaster: false }, `tcp://127.0.0.1:${port}`, 'rl');
conn.on('error', () => {});
await new Promise((r) => { conn.once('connected', r); conn.connect(); });
const creds = new es.UserCredentials('admin', 'changeit');
const lat = [];
const end = performance.now() + seconds * 1000;
let errors = 0;
while (performance.now() < end) {
  const t = performance.now();
  try { await conn.readAllEventsBackward(es.positions.end, 1, false, creds); } catch { errors++; }
  lat.push(performance.now() - t);
}
lat.sort((a, b) => a - b);
const q = (p) => lat[Math.floor(p * (lat.length - 1))].toFixed(3);
console.log(JSON.stringify({ reads: lat.length, p50: q(0.5), p90: q(0.9), p99: q(0.99), max: lat.at(-1).toFixed(2), errors }));
conn.close();
process.exit(0);
