// The fault harness's checker, run once the cluster has healed and quiesced: it reads every hot
// stream and $all from every node directly (not through the leader) and compares them with the
// history of what clients were told. Verdict "ok" only when every acknowledged event is present
// exactly once on every node at its acknowledged version, all nodes hold the same events in the
// same order, stream versions are contiguous, no two acknowledged writes used one expected
// version, subscribers saw every event once in order, and no read went backwards.
import { es, Long } from '../e2e/lib/es.mjs';

const num = (v) => (Long.isLong(v) ? v.toNumber() : Number(v));
const admin = new es.UserCredentials('admin', 'changeit');

async function nodeConnection(node) {
  const conn = es.createConnection({ log: new es.NoopLogger(), requireMaster: false,
    maxReconnections: 5, operationTimeout: 10000, failOnNoServerResponse: true },
  `tcp://${node.addr}:1113`, `checker-${node.index}`);
  conn.on('error', () => {});
  await new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`checker: ${node.name} did not connect`)), 15000);
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
    for (const e of r.events) out.push({ id: e.originalEvent.eventId, n: num(e.originalEventNumber) });
    if (r.isEndOfStream) return out;
    from = num(r.nextEventNumber);
  }
}

async function readAllIds(conn, streams) {
  const ids = [];
  let position = es.positions.start;
  for (;;) {
    const r = await conn.readAllEventsForward(position, 4096, false, admin);
    for (const e of r.events) {
      if (streams.includes(e.originalEvent.eventStreamId)) ids.push(e.originalEvent.eventId);
    }
    if (r.isEndOfStream || r.events.length === 0) return ids;
    position = r.nextPosition;
  }
}

export async function check(cluster, history, streams) {
  const violations = [];
  const views = [];
  for (const node of cluster.nodes) {
    const conn = await nodeConnection(node);
    try {
      const view = { streams: new Map(), all: await readAllIds(conn, streams) };
      for (const s of streams) view.streams.set(s, await readStream(conn, s));
      views.push(view);
    } finally {
      conn.close();
    }
  }
  // Per stream: contiguous versions, no duplicate ids, identical on every node.
  let duplicated = 0;
  for (const s of streams) {
    views.forEach((v, i) => {
      const events = v.streams.get(s);
      events.forEach((e, k) => {
        if (e.n !== k) violations.push(`n${i}: ${s} has event ${e.n} at index ${k}`);
      });
      const dup = events.length - new Set(events.map((e) => e.id)).size;
      if (dup > 0) violations.push(`n${i}: ${s} holds ${dup} duplicated event id(s)`);
      duplicated = Math.max(duplicated, dup);
    });
    const first = JSON.stringify(views[0].streams.get(s).map((e) => e.id));
    views.forEach((v, i) => {
      if (JSON.stringify(v.streams.get(s).map((e) => e.id)) !== first) {
        violations.push(`${s} differs between n0 and n${i}`);
      }
    });
  }
  const allFirst = JSON.stringify(views[0].all);
  views.forEach((v, i) => {
    if (JSON.stringify(v.all) !== allFirst) violations.push(`$all order differs between n0 and n${i}`);
  });
  // Every acknowledged write: present once, at the version the client was told, on every node.
  let lost = 0;
  for (const a of history.acked) {
    let missing = false;
    views.forEach((v, i) => {
      const at = v.streams.get(a.stream).filter((e) => e.id === a.eventId);
      if (at.length === 0) {
        missing = true;
        violations.push(`n${i}: acknowledged ${a.stream}@${a.version} (${a.eventId}) is missing`);
      } else if (at[0].n !== a.version) {
        violations.push(`n${i}: ${a.eventId} acknowledged at ${a.version}, stored at ${at[0].n}`);
      }
    });
    if (missing) lost += 1;
  }
  // CAS: one acknowledged write per (stream, expected version).
  const cas = new Map();
  for (const a of history.acked) {
    const key = `${a.stream}@${a.expected}`;
    if (cas.has(key) && cas.get(key) !== a.eventId) {
      violations.push(`two acknowledged writes to ${key}: ${cas.get(key)} and ${a.eventId}`);
    }
    cas.set(key, a.eventId);
  }
  for (const [stream, subs] of history.subscriptions) {
    for (const s of subs) for (const v of s.violations) violations.push(`${s.subscriber} on ${stream}: ${v}`);
  }
  for (const r of history.reads) {
    violations.push(`${r.reader}: ${r.stream} went back from ${r.before} to ${r.after}`);
  }
  const stored = views[0].all.length;
  return { lost, duplicated, stored, violations, verdict: violations.length === 0 ? 'ok' : 'fail' };
}
