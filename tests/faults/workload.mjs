// The fault harness's workload and its history: writers append to a few hot streams with
// expected versions and retry an unanswered write with the same event id and expected version
// (EventStore's idempotent retry); readers read the streams' heads; catch-up subscribers follow
// every hot stream. All use the unmodified node-eventstore-client over gossip from the host
// namespace. Everything observed is recorded for checker.mjs.
import { randomUUID } from 'node:crypto';
import { es, Long } from '../e2e/lib/es.mjs';

const kRetries = 6;          // attempts of one write before its outcome is recorded as unknown
const kRetryDelayMs = 300;

const settings = {
  log: new es.NoopLogger(),
  maxReconnections: 1000,
  reconnectionDelay: 200,
  operationTimeout: 4000,
  maxRetries: 2,
  gossipTimeout: 800,
  maxDiscoverAttempts: 1000,
  failOnNoServerResponse: true,
};

const num = (v) => (Long.isLong(v) ? v.toNumber() : Number(v));
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

export async function connect(cluster, name) {
  const seeds = cluster.nodes.map((n) => new es.GossipSeed({ host: n.addr, port: 2113 }));
  const conn = es.createConnection(settings, seeds, name);
  conn.on('error', () => {});
  await new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`${name} did not connect`)), 30000);
    conn.once('connected', () => { clearTimeout(timer); resolve(); });
    conn.connect().catch(reject);
  });
  return conn;
}

export class History {
  constructor() {
    this.acked = [];     // { writer, stream, eventId, expected, version }
    this.unknown = [];   // { writer, stream, eventId, expected, error }
    this.failed = 0;     // definite refusals (wrong expected version on a first attempt)
    this.ops = 0;
    this.reads = [];     // violations: a reader saw a stream go backwards
    this.subscriptions = new Map();  // stream -> [{ subscriber, violations, last }]
  }
}

async function lastVersion(conn, stream) {
  const r = await conn.readStreamEventsBackward(stream, -1, 1, false);
  if (r.status === 'noStream' || r.events.length === 0) return -1;
  return num(r.events[0].originalEventNumber);
}

async function writer(conn, id, streams, history, rng, running) {
  const expected = new Map(streams.map((s) => [s, -1]));
  let seq = 0;
  while (running()) {
    const stream = streams[Math.floor(rng() * streams.length)];
    const eventId = randomUUID();
    const exp = expected.get(stream);
    const event = es.createJsonEventData(eventId, { writer: id, seq: seq++ }, null, 'FaultEvent');
    let outcome = 'unknown';
    let lastError;
    for (let attempt = 0; attempt < kRetries && running(); attempt++) {
      history.ops += 1;
      try {
        const r = await conn.appendToStream(stream, exp, [event]);
        const version = num(r.nextExpectedVersion);
        history.acked.push({ writer: id, stream, eventId, expected: exp, version });
        expected.set(stream, version);
        outcome = 'acked';
        break;
      } catch (e) {
        lastError = e;
        if (e.name === 'WrongExpectedVersionError') {
          // Another writer got there first (or, after an unanswered attempt, maybe we did).
          if (attempt === 0) { outcome = 'refused'; history.failed += 1; }
          try { expected.set(stream, await lastVersion(conn, stream)); } catch { /* retry later */ }
          break;
        }
        await sleep(kRetryDelayMs);
      }
    }
    if (outcome === 'unknown') {
      history.unknown.push({ writer: id, stream, eventId, expected: exp,
        error: String(lastError?.message ?? 'stopped') });
      try { expected.set(stream, await lastVersion(conn, stream)); } catch { /* next round */ }
    } else if (outcome !== 'acked' && outcome !== 'refused') {
      history.unknown.push({ writer: id, stream, eventId, expected: exp, error: outcome });
    }
  }
}

async function reader(conn, id, streams, history, running) {
  const seen = new Map();
  while (running()) {
    for (const stream of streams) {
      try {
        const v = await lastVersion(conn, stream);
        const before = seen.get(stream) ?? -1;
        if (v < before) history.reads.push({ reader: id, stream, before, after: v });
        seen.set(stream, Math.max(before, v));
      } catch { /* unavailable during the fault: no observation */ }
    }
    await sleep(50);
  }
}

// A catch-up subscription that resubscribes from the last event it saw after every drop, and
// records any event that is not exactly the next number (a gap, a repeat or a reorder). Each
// subscription is a generation: once dropped, whatever its (client-side) object still delivers
// is not counted, since the replacement resumes from the last event seen.
function subscriber(conn, id, stream, history) {
  const state = { subscriber: id, last: -1, violations: [], drops: 0, generation: 0 };
  const list = history.subscriptions.get(stream) ?? [];
  list.push(state);
  history.subscriptions.set(stream, list);
  const subscribe = () => {
    const generation = ++state.generation;
    state.sub = conn.subscribeToStreamFrom(stream, state.last < 0 ? null : state.last, false,
      (_s, e) => {
        if (generation !== state.generation) return;
        const n = num(e.originalEventNumber);
        if (n !== state.last + 1) state.violations.push(`saw ${n} after ${state.last}`);
        state.last = Math.max(state.last, n);
      },
      () => {},
      () => {
        if (generation !== state.generation) return;
        state.generation += 1;  // this one is over; its replacement starts below
        state.drops += 1;
        if (!state.stopped) setTimeout(subscribe, 300);
      },
      null, 500);
  };
  subscribe();
  return () => { state.stopped = true; try { state.sub?.stop(); } catch { /* gone */ } };
}

// Runs writers, readers and subscribers until stop() resolves; returns the history.
export async function runWorkload(cluster, { streams, writers = 3, readers = 1, rng, stop }) {
  const history = new History();
  let active = true;
  const running = () => active;
  const conns = [];
  for (let i = 0; i < writers + readers + 1; i++) conns.push(await connect(cluster, `fault-${i}`));
  const stops = streams.map((s, i) => subscriber(conns[writers + readers], `sub${i}`, s, history));
  const tasks = [];
  for (let i = 0; i < writers; i++) tasks.push(writer(conns[i], `w${i}`, streams, history, rng, running));
  for (let i = 0; i < readers; i++) tasks.push(reader(conns[writers + i], `r${i}`, streams, history, running));
  await stop;
  active = false;
  await Promise.all(tasks);
  history.finish = async (deadlineMs) => {
    // Subscribers must reach each stream's final version (read once everything has healed).
    const deadline = Date.now() + deadlineMs;
    for (const stream of streams) {
      const final = await lastVersion(conns[0], stream).catch(() => -1);
      for (const s of history.subscriptions.get(stream) ?? []) {
        while (s.last < final && Date.now() < deadline) await sleep(100);
        if (s.last < final) s.violations.push(`stopped at ${s.last}, stream ends at ${final}`);
      }
    }
    for (const f of stops) f();
    for (const c of conns) { try { c.close(); } catch { /* closed */ } }
  };
  return history;
}
