// One measurement of bench/peers.sh: C concurrent writers, each awaiting the acknowledgement of
// its write before the next, for a fixed time against one system's three-node cluster, through
// that system's own Node client (Chorus: node-eventstore-client, one single-event append per
// write; NATS: JetStream publish to an R3 file stream; etcd: put). Every writer has its own
// stream / subject / key prefix. Prints one JSON line: system, writers, seconds, acknowledged
// writes, writes/s, p50/p99 latency in ms, errors, and the CPU time the server processes (--pids)
// spent in the measured window (after the warm-up), in µs per acknowledged write.
//   node driver.mjs --system chorus|chorus-before|nats|etcd --writers 64 --seconds 10 --size 256 \
//     --endpoints a,b,c --pids 1,2,3 [--follower]
import { randomUUID } from 'node:crypto';
import fs from 'node:fs';
import { createRequire } from 'node:module';
import { performance } from 'node:perf_hooks';
import { parseArgs } from 'node:util';

const require = createRequire(import.meta.url);
const { values: opt } = parseArgs({ options: {
  system: { type: 'string' },
  writers: { type: 'string', default: '1' },
  seconds: { type: 'string', default: '10' },
  warmup: { type: 'string', default: '1' },
  size: { type: 'string', default: '256' },
  endpoints: { type: 'string' },
  pids: { type: 'string', default: '' },
  setup: { type: 'boolean', default: false },
  // Chorus only: write through a follower (requireMaster false), which forwards each write to
  // the leader and answers once it shows the write itself.
  follower: { type: 'boolean', default: false },
} });

const kConnectDeadlineMs = 30000;
const payload = Buffer.alloc(Number(opt.size), 'x');
const endpoints = opt.endpoints.split(',');
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

// Each client returns { write(k, i), close() }: write k's i-th write, resolved when acknowledged.
async function chorus() {
  const es = require('node-eventstore-client');
  const seeds = endpoints.map((e) => {
    const [host, port] = e.split(':');
    return { endPoint: { host, port: Number(port) } };
  });
  const log = { info() {}, debug() {}, error() {} };
  let conn;
  if (opt.follower) {
    const [host, port] = endpoints[0].split(':');
    const gossip = await (await fetch(`http://${host}:${port}/gossip?format=json`)).json();
    const f = gossip.members.find((m) => m.isAlive && m.state === 'Follower');
    if (!f) throw new Error('no follower in the gossip of ' + endpoints[0]);
    conn = es.createConnection({ log, requireMaster: false },
      `tcp://${f.externalTcpIp}:${f.externalTcpPort}`, 'peer-bench');
  } else {
    conn = es.createConnection({ log }, seeds, 'peer-bench');
  }
  conn.on('error', () => {});
  await new Promise((resolve) => { conn.once('connected', resolve); conn.connect(); });
  const run = randomUUID().slice(0, 8);
  return {
    write: (k) => conn.appendToStream(`peer-${run}-${k}`, es.expectedVersion.any,
      [es.createEventData(randomUUID(), 'Bench', false, payload)]),
    close: () => conn.close(),
  };
}

async function nats() {
  const { connect, StorageType } = require('nats');
  const nc = await connect({ servers: endpoints, timeout: kConnectDeadlineMs });
  if (opt.setup) {
    const jsm = await nc.jetstreamManager();
    await jsm.streams.add({ name: 'bench', subjects: ['bench.>'], num_replicas: 3,
      storage: StorageType.File });
  }
  const js = nc.jetstream({ timeout: kConnectDeadlineMs });
  return {
    write: (k) => js.publish(`bench.w${k}`, payload),
    close: () => nc.close(),
  };
}

async function etcd() {
  const { Etcd3 } = require('etcd3');
  const client = new Etcd3({ hosts: endpoints.map((e) => `http://${e}`) });
  return {
    write: (k, i) => client.put(`bench/w${k}/${i}`).value(payload).exec(),
    close: () => client.close(),
  };
}

// utime + stime of every server process, in clock ticks (USER_HZ, 100 on Linux).
const kTicksPerSecond = 100;
function serverTicks() {
  let ticks = 0;
  for (const pid of opt.pids.split(',').filter(Boolean)) {
    const stat = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    ticks += Number(fields[11]) + Number(fields[12]);  // fields 14 and 15 of proc(5)
  }
  return ticks;
}

function percentile(sorted, p) {
  if (!sorted.length) return null;
  return sorted[Math.min(sorted.length - 1, Math.ceil(p * sorted.length) - 1)];
}

async function main() {
  // chorus-before: a second Chorus cluster (another build), driven the same way.
  const clients = { chorus, 'chorus-before': chorus, nats, etcd };
  if (!clients[opt.system]) throw new Error(`--system must be one of ${Object.keys(clients)}`);
  const client = await clients[opt.system]();
  if (opt.setup) {
    await client.close();
    return;
  }
  const writers = Number(opt.writers);
  const warmupEnd = performance.now() + Number(opt.warmup) * 1000;
  const end = warmupEnd + Number(opt.seconds) * 1000;
  const latencies = [];
  let errors = 0;
  let firstError = '';
  const loop = async (k) => {
    for (let i = 0; performance.now() < end; i++) {
      const t0 = performance.now();
      try {
        await client.write(k, i);
        if (t0 >= warmupEnd) latencies.push(performance.now() - t0);
      } catch (e) {
        errors++;
        firstError ||= String(e?.message || e);
        await sleep(10);
      }
    }
  };
  let ticks0 = 0;
  let ticks1 = 0;
  // The driver's own CPU over the same window: the client shares the machine's two cores with the
  // servers, so its cost per write bounds every system's throughput here.
  let client0 = null;
  let client1 = null;
  const windowed = (async () => {
    await sleep(warmupEnd - performance.now());
    ticks0 = serverTicks();
    client0 = process.cpuUsage();
    await sleep(end - performance.now());
    ticks1 = serverTicks();
    client1 = process.cpuUsage(client0);
  })();
  await Promise.all(Array.from({ length: writers }, (_, k) => loop(k)));
  await windowed;
  await client.close();
  latencies.sort((a, b) => a - b);
  const round = (x) => (x === null ? null : Math.round(x * 100) / 100);
  console.log(JSON.stringify({ system: opt.system, writers, seconds: Number(opt.seconds),
    acked: latencies.length, rate: Math.round(latencies.length / Number(opt.seconds)),
    p50: round(percentile(latencies, 0.5)), p99: round(percentile(latencies, 0.99)),
    cpuUsPerWrite: latencies.length && opt.pids
      ? Math.round(((ticks1 - ticks0) / kTicksPerSecond) * 1e6 / latencies.length) : null,
    clientCpuUsPerWrite: latencies.length && client1
      ? Math.round((client1.user + client1.system) / latencies.length) : null,
    errors, firstError }));
}

main().then(() => process.exit(0), (e) => {
  console.error(`driver failed: ${e?.stack || e}`);
  process.exit(1);
});
