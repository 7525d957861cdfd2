// The fault harness's workload and its history: writers append to a few hot streams with
// expected versions and retry an unanswered write with the same event id and expected version
// (EventStore's idempotent retry); readers read the streams' heads (one through the leader over
// gossip, and on every node one over TCP and one over HTTP that allow follower reads); catch-up
// subscribers follow every hot stream; a poller records who says it leads in which epoch. All
// use the unmodified node-eventstore-client (or plain HTTP) from the host namespace. Everything
// observed is recorded, not judged, for checker.mjs. Single-threaded (the node event loop).
import { randomUUID } from 'node:crypto';
import { performance } from 'node:perf_hooks';
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
  const seeds = cluster.gossipSeeds().map((s) => new es.GossipSeed(s));
  return opened(es.createConnection(settings, seeds, name), name);
}

// A connection to one node only that may be served by a follower (requireMaster false).
function connectTo(node, name) {
  return opened(es.createConnection({ ...settings, requireMaster: false },
    `tcp://${node.addr}:1113`, name), name);
}

async function opened(conn, name) {
  conn.on('error', () => {});
  try {
    await new Promise((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`${name} did not connect in 30 s`)), 30000);
      conn.once('connected', () => { clearTimeout(timer); resolve(); });
      conn.connect().catch((e) => { clearTimeout(timer); reject(e); });
    });
  } catch (e) {
    try { conn.close(); } catch { /* never opened */ }
    throw e;
  }
  return conn;
}

export class History {
  constructor() {
    this.acked = [];     // { writer, stream, eventId, expected, version, start, end } (ms)
    this.unknown = [];   // { writer, stream, eventId, expected, error }
    this.refused = [];   // { writer, stream, eventId, expected }: wrong expected version at once
    this.failed = 0;     // refused.length
    this.ops = 0;
    this.reads = new Map();          // reader -> [{ stream, version }] in the order read
    this.subscriptions = new Map();  // stream -> [{ subscriber, seen: [{ n, id }], last }]
    this.leaders = [];   // { node, epoch }: a node's own gossip entry said Leader in that epoch
  }
}

async function lastVersion(conn, stream) {
  const r = await conn.readStreamEventsBackward(stream, -1, 1, false);
  if (r.status === 'noStream' || r.events.length === 0) return -1;
  return num(r.events[0].originalEventNumber);
}

// The last version of a stream as node `addr` answers over HTTP without ES-RequireMaster (a
// follower serves it once caught up), or undefined when it does not answer with one (503 while
// catching up, down, partitioned).
async function lastVersionHttp(addr, stream) {
  const res = await fetch(`http://${addr}:2113/streams/${stream}/head/backward/1?embed=rich`, {
    headers: { Accept: 'application/vnd.eventstore.atom+json' },
    signal: AbortSignal.timeout(1000), redirect: 'manual',
  });
  if (res.status === 404) return -1;
  if (res.status !== 200) return undefined;
  const feed = await res.json();
  return feed.entries?.length ? Number(feed.entries[0].eventNumber) : -1;
}

async function writer(conn, id, streams, history, rng, running) {
  const expected = new Map(streams.map((s) => [s, -1]));
  let seq = 0;
  while (running()) {
    const stream = streams[Math.floor(rng() * streams.length)];
    const eventId = randomUUID();
    const exp = expected.get(stream);
    const event = es.createJsonEventData(eventId, { writer: id, seq: seq++ }, null, 'FaultEvent');
    const write = { writer: id, stream, eventId, expected: exp, start: performance.now() };
    let outcome = 'unknown';
    let lastError;
    for (let attempt = 0; attempt < kRetries && running(); attempt++) {
      history.ops += 1;
      try {
        const r = await conn.appendToStream(stream, exp, [event]);
        write.version = num(r.nextExpectedVersion);
        write.end = performance.now();
        history.acked.push(write);
        expected.set(stream, write.version);
        outcome = 'acked';
        break;
      } catch (e) {
        lastError = e;
        if (e.name === 'WrongExpectedVersionError') {
          // Another writer got there first (or, after an unanswered attempt, maybe we did).
          if (attempt === 0) {
            outcome = 'refused';
            history.refused.push(write);
            history.failed += 1;
          }
          try { expected.set(stream, await lastVersion(conn, stream)); } catch { /* retry later */ }
          break;
        }
        await sleep(kRetryDelayMs);
      }
    }
    if (outcome === 'unknown') {
      history.unknown.push({ ...write, error: String(lastError?.message ?? 'stopped') });
      try { expected.set(stream, await lastVersion(conn, stream)); } catch { /* next round */ }
    }
  }
}

// Reads every stream's head in turn with `read` (undefined: no answer, nothing observed).
async function reader(id, read, streams, history, running) {
  const log = [];
  history.reads.set(id, log);
  while (running()) {
    for (const stream of streams) {
      try {
        const version = await read(stream);
        if (version !== undefined) log.push({ stream, version });
      } catch { /* unavailable during the fault: no observation */ }
    }
    await sleep(50);
  }
}

// Polls every node's own gossip entry and records each claim to lead an epoch.
async function leaderPoller(cluster, history, running) {
  while (running()) {
    await Promise.all(cluster.nodes.map(async (n) => {
      const self = await n.self();
      if (self?.state === 'Leader') history.leaders.push({ node: n.name, epoch: self.epochNumber });
    }));
    await sleep(100);
  }
}

// A catch-up subscription that resubscribes from the last event it saw after every drop, and
// records every event delivered (checker.mjs wants 0, 1, 2, ... with the stored ids). Each
// subscription is a generation: once dropped, whatever its (client-side) object still delivers
// is not counted, since the replacement resumes from the last event seen.
function subscriber(conn, id, stream, history) {
  const state = { subscriber: id, last: -1, seen: [], drops: 0, generation: 0 };
  const list = history.subscriptions.get(stream) ?? [];
  list.push(state);
  history.subscriptions.set(stream, list);
  const subscribe = () => {
    const generation = ++state.generation;
    state.sub = conn.subscribeToStreamFrom(stream, state.last < 0 ? null : state.last, false,
      (_s, e) => {
        if (generation !== state.generation) return;
        const n = num(e.originalEventNumber);
        state.seen.push({ n, id: e.originalEvent.eventId });
        state.last = Math.max(state.last, n);
      },
      () => {},
      () => {
        if (generation !== state.generation) return;
        state.generation += 1;  // this one is over; its replacement starts below
        state.drops += 1;
        if (!state.stopped) state.retry = setTimeout(subscribe, 300);
      },
      null, 500);
  };
  subscribe();
  return () => {
    state.stopped = true;
    clearTimeout(state.retry);
    try { state.sub?.stop(); } catch { /* gone */ }
  };
}

// Runs writers, readers and subscribers until `stop` resolves (calling started() once every
// connection is open); returns the history, whose
// finish() waits (with a deadline) for subscribers to reach each stream's end and closes every
// connection. On an error every connection opened so far is closed before it is thrown.
export async function runWorkload(cluster, { streams, writers = 3, rng, stop, started }) {
  const history = new History();
  let active = true;
  const running = () => active;
  const conns = [];
  const closeAll = () => { for (const c of conns) { try { c.close(); } catch { /* closed */ } } };
  let pinned;
  try {
    for (let i = 0; i < writers + 2; i++) conns.push(await connect(cluster, `fault-${i}`));
    pinned = [];
    for (const n of cluster.nodes) {
      const c = await connectTo(n, `fault-on-n${n.index}`);
      conns.push(c);
      pinned.push(c);
    }
  } catch (e) {
    closeAll();
    throw e;
  }
  started?.();
  const subConn = conns[writers + 1];
  const stops = streams.map((s, i) => subscriber(subConn, `sub${i}`, s, history));
  const tasks = [leaderPoller(cluster, history, running)];
  for (let i = 0; i < writers; i++) {
    tasks.push(writer(conns[i], `w${i}`, streams, history, rng, running));
  }
  const viaLeader = (s) => lastVersion(conns[writers], s);
  tasks.push(reader('leader-tcp', viaLeader, streams, history, running));
  cluster.nodes.forEach((n, i) => {
    tasks.push(reader(`n${i}-tcp`, (s) => lastVersion(pinned[i], s), streams, history, running));
    tasks.push(reader(`n${i}-http`, (s) => lastVersionHttp(n.addr, s), streams, history, running));
  });
  await stop;
  active = false;
  await Promise.all(tasks);
  history.finish = async (deadlineMs) => {
    const deadline = Date.now() + deadlineMs;
    try {
      for (const stream of streams) {
        const final = await lastVersion(conns[0], stream).catch(() => -1);
        for (const s of history.subscriptions.get(stream) ?? []) {
          while (s.last < final && Date.now() < deadline) await sleep(100);
        }
      }
    } finally {
      for (const f of stops) f();
      closeAll();
    }
  };
  history.abort = () => { for (const f of stops) f(); closeAll(); };
  return history;
}
