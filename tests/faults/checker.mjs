// The fault harness's checker, run once the cluster has healed and quiesced. check() reads every
// hot stream and all of $all from every node directly (not through the leader); analyze() then
// compares those views with the history of what clients were told and saw (workload.mjs). It is
// a pure function of its inputs, so checker.test.mjs proves each rule can fail on a hand-made bad
// history. Single-threaded (the node event loop); the node reads are sequential.
import { es, Long } from '../e2e/lib/es.mjs';

const num = (v) => (Long.isLong(v) ? v.toNumber() : Number(v));
const admin = new es.UserCredentials('admin', 'changeit');
const kMaxViolationsPerRule = 20;  // a broken run reports what is wrong, not 10,000 lines of it

async function nodeConnection(node) {
  const conn = es.createConnection({ log: new es.NoopLogger(), requireMaster: false,
    maxReconnections: 5, operationTimeout: 10000, failOnNoServerResponse: true },
  `tcp://${node.addr}:1113`, `checker-${node.index}`);
  conn.on('error', () => {});
  await new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`checker: ${node.name} did not connect`)),
      15000);
    conn.once('connected', () => { clearTimeout(timer); resolve(); });
    conn.connect().catch(reject);
  });
  return conn;
}

async function readStream(conn, stream) {
  const out = [];
  for (let from = 0; ;) {
    const r = await conn.readStreamEventsForward(stream, from, 4096, false);
    if (r.status === 'noStream') return out;
    for (const e of r.events) {
      out.push({ id: e.originalEvent.eventId, n: num(e.originalEventNumber) });
    }
    if (r.isEndOfStream) return out;
    from = num(r.nextEventNumber);
  }
}

// Every event of $all (every stream, system streams too) with its position: the committed log.
async function readAll(conn) {
  const out = [];
  let position = es.positions.start;
  for (;;) {
    const r = await conn.readAllEventsForward(position, 4096, false, admin);
    for (const e of r.events) {
      out.push({ id: e.originalEvent.eventId, stream: e.originalEvent.eventStreamId,
        commit: num(e.originalPosition.commitPosition),
        prepare: num(e.originalPosition.preparePosition) });
    }
    if (r.isEndOfStream || r.events.length === 0) return out;
    position = r.nextPosition;
  }
}

// Reads each node's view: { streams: Map(stream -> [{ id, n }]), all: [{ id, stream, commit,
// prepare }] }.
export async function readViews(cluster, streams) {
  const views = [];
  for (const node of cluster.nodes) {
    const conn = await nodeConnection(node);
    try {
      const view = { streams: new Map(), all: await readAll(conn) };
      for (const s of streams) view.streams.set(s, await readStream(conn, s));
      views.push(view);
    } finally {
      conn.close();
    }
  }
  return views;
}

// restEnd: the log position every node held and had committed when the cluster was last seen
// at rest; $all is compared up to it (see checkCommittedLogs).
export async function check(cluster, history, streams, restEnd) {
  return analyze(await readViews(cluster, streams), history, streams, { restEnd });
}

// Collects violations per rule, keeping the first few of each and counting the rest.
class Findings {
  constructor() { this.byRule = new Map(); }
  add(rule, text) {
    const f = this.byRule.get(rule) ?? { count: 0, texts: [] };
    f.count += 1;
    if (f.texts.length < kMaxViolationsPerRule) f.texts.push(`${rule}: ${text}`);
    this.byRule.set(rule, f);
  }
  list() {
    const out = [];
    for (const [rule, f] of this.byRule) {
      out.push(...f.texts);
      if (f.count > f.texts.length) out.push(`${rule}: ... ${f.count - f.texts.length} more`);
    }
    return out;
  }
  rules() { return [...this.byRule.keys()]; }
}

// Identical committed logs: the same events at the same positions in the same order everywhere
// ($all is what a node has committed). With restEnd (where every node rested, holding and having
// committed the same log end), the logs are compared up to it: events that start at or after it
// were written after the rest (the nodes' own $stats events) and may reach one node before it
// is read and another after. Without it, the whole logs (the cluster must not have moved).
function checkCommittedLogs(views, f, restEnd) {
  const key = (e) => `${e.commit}/${e.prepare} ${e.stream} ${e.id}`;
  const upToRest = (all) => (restEnd === undefined ? all : all.filter((e) => e.prepare < restEnd));
  const first = upToRest(views[0].all);
  views.forEach((v, i) => {
    if (i === 0) return;
    const all = upToRest(v.all);
    const n = Math.min(first.length, all.length);
    for (let k = 0; k < n; k++) {
      if (key(all[k]) !== key(first[k])) {
        f.add('committed-log', `n${i} differs from n0 at $all index ${k}: ${key(all[k])} ` +
          `vs ${key(first[k])}`);
        return;
      }
    }
    if (all.length !== first.length) {
      const extra = all.length > first.length ? all[n] : first[n];
      f.add('committed-log', `n${i} holds ${all.length} events in $all, n0 ${first.length}` +
        `${restEnd === undefined ? '' : ` (before ${restEnd})`}; the first beyond the shorter: ` +
        key(extra));
    }
  });
  views.forEach((v, i) => {
    for (let k = 1; k < v.all.length; k++) {
      if (v.all[k].commit <= v.all[k - 1].commit && v.all[k].prepare <= v.all[k - 1].prepare) {
        f.add('committed-log', `n${i}: $all position goes back at index ${k}`);
        return;
      }
    }
  });
}

// Per stream and node: versions 0, 1, 2, ... with no id twice; the same events on every node.
function checkStreams(views, streams, f) {
  let duplicated = 0;
  for (const s of streams) {
    views.forEach((v, i) => {
      const events = v.streams.get(s);
      events.forEach((e, k) => {
        if (e.n !== k) f.add('contiguous', `n${i}: ${s} has event ${e.n} at index ${k}`);
      });
      const dup = events.length - new Set(events.map((e) => e.id)).size;
      if (dup > 0) f.add('exactly-once', `n${i}: ${s} holds ${dup} duplicated event id(s)`);
      duplicated = Math.max(duplicated, dup);
      const inAll = v.all.filter((e) => e.stream === s).map((e) => e.id);
      if (JSON.stringify(inAll) !== JSON.stringify(events.map((e) => e.id))) {
        f.add('same-order', `n${i}: ${s} read alone differs from its events in $all`);
      }
    });
    const first = JSON.stringify(views[0].streams.get(s).map((e) => e.id));
    views.forEach((v, i) => {
      if (JSON.stringify(v.streams.get(s).map((e) => e.id)) !== first) {
        f.add('same-order', `${s} differs between n0 and n${i}`);
      }
    });
  }
  return duplicated;
}

// Every acknowledged write: present once, at the version the client was told, on every node.
function checkAcknowledged(views, history, f) {
  let lost = 0;
  for (const a of history.acked) {
    let missing = false;
    views.forEach((v, i) => {
      const at = (v.streams.get(a.stream) ?? []).filter((e) => e.id === a.eventId);
      if (at.length === 0) {
        missing = true;
        f.add('lost', `n${i}: acknowledged ${a.stream}@${a.version} (${a.eventId}) is missing`);
      } else if (at[0].n !== a.version) {
        f.add('acked-version',
          `n${i}: ${a.eventId} acknowledged at ${a.version}, stored at ${at[0].n}`);
      }
    });
    if (missing) lost += 1;
  }
  return lost;
}

// Compare-and-set: a write with expected version e lands at e + 1 or nowhere; one acknowledged
// write per (stream, expected version); nothing stored that no writer sent or that was refused;
// and real time: a write acknowledged before another began holds the lower version.
function checkCas(views, history, streams, f) {
  const sent = new Map();
  for (const w of [...history.acked, ...history.unknown]) sent.set(w.eventId, w);
  const refused = new Set(history.refused.map((w) => w.eventId));
  for (const a of history.acked) {
    if (a.version !== a.expected + 1) {
      f.add('cas',
        `${a.eventId} expected ${a.stream}@${a.expected} but was acknowledged at ${a.version}`);
    }
  }
  const cas = new Map();
  for (const a of history.acked) {
    const key = `${a.stream}@${a.expected}`;
    if (cas.has(key) && cas.get(key) !== a.eventId) {
      f.add('cas', `two acknowledged writes to ${key}: ${cas.get(key)} and ${a.eventId}`);
    }
    cas.set(key, a.eventId);
  }
  for (const s of streams) {
    for (const e of views[0].streams.get(s)) {
      const w = sent.get(e.id);
      if (refused.has(e.id)) f.add('cas', `${s}@${e.n} holds ${e.id}, whose write was refused`);
      else if (!w) f.add('phantom', `${s}@${e.n} holds ${e.id}, which no writer sent`);
      else if (w.stream !== s || e.n !== w.expected + 1) {
        f.add('cas', `${s}@${e.n} holds ${e.id}, written to ${w.stream} expecting ${w.expected}`);
      }
    }
    // Sorted by version, no write may have been acknowledged before a lower-versioned write began.
    const acked = history.acked.filter((a) => a.stream === s && a.start !== undefined)
      .sort((x, y) => x.version - y.version);
    let minEnd = Infinity;
    let minEndWrite;
    for (let k = acked.length - 1; k >= 0; k--) {
      if (minEnd < acked[k].start) {
        f.add('linearizable', `${s}@${minEndWrite.version} was acknowledged before ` +
          `${s}@${acked[k].version} was sent`);
      }
      if (acked[k].end < minEnd) { minEnd = acked[k].end; minEndWrite = acked[k]; }
    }
  }
}

// At most one leader per epoch, across every node's own gossip entry seen during the run.
function checkLeaders(history, f) {
  const byEpoch = new Map();
  for (const o of history.leaders) {
    const set = byEpoch.get(o.epoch) ?? new Set();
    set.add(o.node);
    byEpoch.set(o.epoch, set);
  }
  for (const [epoch, nodes] of byEpoch) {
    if (nodes.size > 1) f.add('one-leader', `epoch ${epoch} had leaders ${[...nodes].join(', ')}`);
  }
}

// Catch-up subscribers: events 0, 1, 2, ... once each, the stored event at each number, up to
// the stream's end.
function checkSubscribers(views, history, f) {
  for (const [stream, subs] of history.subscriptions) {
    const stored = views[0].streams.get(stream) ?? [];
    for (const s of subs) {
      let expect = 0;
      for (const d of s.seen) {
        if (d.n !== expect) {
          f.add('subscriber', `${s.subscriber} on ${stream} saw ${d.n} after ${expect - 1}`);
          expect = Math.max(expect, d.n + 1);
          continue;
        }
        if (stored[d.n]?.id !== d.id) {
          f.add('subscriber', `${s.subscriber} on ${stream} saw ${d.id} as ${d.n}; ` +
            `stored there: ${stored[d.n]?.id}`);
        }
        expect += 1;
      }
      if (expect < stored.length) {
        f.add('subscriber', `${s.subscriber} on ${stream} stopped at ${expect - 1}, ` +
          `stream ends at ${stored.length - 1}`);
      }
    }
  }
}

// Reads never go back: each reader (one pinned to each node, one following the leader) sees a
// stream's last version never decrease.
function checkReads(history, f) {
  for (const [reader, log] of history.reads) {
    const seen = new Map();
    for (const r of log) {
      const before = seen.get(r.stream) ?? -1;
      if (r.version < before) {
        f.add('monotonic-reads', `${reader}: ${r.stream} went back from ${before} to ${r.version}`);
      }
      seen.set(r.stream, Math.max(before, r.version));
    }
  }
}

// The verdict on one run: lost and duplicated counts and every violation, by rule.
export function analyze(views, history, streams, { restEnd } = {}) {
  const f = new Findings();
  checkCommittedLogs(views, f, restEnd);
  const duplicated = checkStreams(views, streams, f);
  const lost = checkAcknowledged(views, history, f);
  checkCas(views, history, streams, f);
  checkLeaders(history, f);
  checkSubscribers(views, history, f);
  checkReads(history, f);
  const violations = f.list();
  return { lost, duplicated, stored: views[0].all.filter((e) => streams.includes(e.stream)).length,
    violations, rules: f.rules(), verdict: violations.length === 0 ? 'ok' : 'fail' };
}
