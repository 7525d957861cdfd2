// Proves online backup and restore on a real 3-node cluster under one manager: a backup of a
// follower taken while clients write about 5,000 events/s holds, event by event, exactly the
// cluster's log up to the backup's position (read independently with the sqlite3 tool); restored
// onto a wiped node, that node keeps its seat in the voter set (a new instance id, the seat moved
// to it), joins, catches up and then holds exactly the cluster's log; and
// the API refuses anonymous and non-admin callers, folders outside BackupRoot or already used,
// and a restore onto a running node.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { Manager, ADMIN, waitFor } from './manager_harness.mjs';
import { admin, connect, closeQuietly, es, num, makeEvents } from './lib/es.mjs';
import { runChorus } from './lib/cli.mjs';

const TARGET_EVENTS_PER_SECOND = 5000;
const EVENTS_PER_APPEND = 10;
const TICK_MS = 50;
// Appends in flight at most: a server slower than the target rate slows the load down instead of
// the test queueing appends without bound.
const INFLIGHT_MAX = 400;

let m;
let conn;

before(async () => {
  m = new Manager({
    nodes: ['n1', 'n2', 'n3'].map((name) => ({ name, options: { ClusterSize: 3 } })),
  });
  await m.start();
  await m.waitForCluster(2, 60000);
});

after(async () => {
  closeQuietly(conn);
  await m?.cleanup();
});

async function post(p, auth) {
  const res = await m.fetch(p, { method: 'POST', auth, timeoutMs: 120000 });
  return { status: res.status, body: await res.json() };
}

function tcpOf(name) {
  return { tcpEndpoint: `tcp://127.0.0.1:${m.node(name).options.ExtTcpPort}` };
}

async function roleOf(name) { return (await m.nodeInfo(name)).role; }

// Every event of $all from the start (system events included), as comparable rows.
async function readWholeLog(c) {
  const rows = [];
  let pos = es.positions.start;
  for (;;) {
    const slice = await c.readAllEventsForward(pos, 4096, false, admin);
    for (const e of slice.events) {
      const r = e.originalEvent;
      rows.push({
        end: num(e.originalPosition.commitPosition), pos: num(e.originalPosition.preparePosition),
        stream: r.eventStreamId, number: num(r.eventNumber), type: r.eventType,
        data: Buffer.from(r.data).toString('hex').toUpperCase(),
      });
    }
    if (slice.isEndOfStream || slice.events.length === 0) return rows;
    pos = slice.nextPosition;
  }
}

// The events of a backup's database file, read with the sqlite3 tool, not with Chorus's code.
function readBackupFile(file) {
  const out = execFileSync('sqlite3', ['-readonly', '-json', file,
    'SELECT end_pos AS "end", pos, stream, number, type, hex(data) AS data FROM events ORDER BY pos'],
  { maxBuffer: 1 << 30 }).toString();
  return out.trim() ? JSON.parse(out) : [];
}

// Appends batches at about `rate` events/s until stopped; records every acknowledged append.
function startLoad(c, rate) {
  const state = { acked: [], failures: [], stop: false, inflight: new Set() };
  const perTick = Math.max(1, Math.round((rate * TICK_MS) / 1000 / EVENTS_PER_APPEND));
  let n = 0;
  state.done = (async () => {
    while (!state.stop) {
      const started = Date.now();
      for (let i = 0; i < perTick && state.inflight.size < INFLIGHT_MAX; i++) {
        const stream = `load-${n++ % 100}`;
        const at = Date.now();
        const p = c.appendToStream(stream, es.expectedVersion.any, makeEvents(EVENTS_PER_APPEND))
          .then(() => state.acked.push({ at, ms: Date.now() - at }))
          .catch((e) => state.failures.push(e.message))
          .finally(() => state.inflight.delete(p));
        state.inflight.add(p);
      }
      await new Promise((r) => setTimeout(r, Math.max(0, TICK_MS - (Date.now() - started))));
    }
    await Promise.all([...state.inflight]);
  })();
  return state;
}

test('the backup API refuses anonymous and non-admin callers', async () => {
  const anon = await post('/api/nodes/n1/backup');
  assert.equal(anon.status, 401, JSON.stringify(anon.body));
  const restoreAnon = await post('/api/nodes/n1/restore?folder=x');
  assert.equal(restoreAnon.status, 401);
  assert.equal((await m.fetch('/api/backups')).status, 401);
  // ops may restart nodes but not write or replace data files.
  const ops = 'Basic ' + Buffer.from('ops:changeit').toString('base64');
  const asOps = await post('/api/nodes/n1/backup', ops);
  assert.equal(asOps.status, 403, JSON.stringify(asOps.body));
  assert.equal((await post('/api/nodes/n1/restore?folder=x', ops)).status, 403);
  const wrong = 'Basic ' + Buffer.from('admin:wrong').toString('base64');
  assert.equal((await post('/api/nodes/n1/backup', wrong)).status, 401);
  assert.equal(fs.existsSync(path.join(m.dir, 'data', 'backups')) &&
    fs.readdirSync(path.join(m.dir, 'data', 'backups')).length, 0, 'nothing was written');
});

test('the backup API refuses folders outside BackupRoot, used folders, and restoring a running node',
  async () => {
    for (const folder of ['../escape', '/tmp/elsewhere', '.']) {
      const r = await post(`/api/nodes/n2/backup?folder=${encodeURIComponent(folder)}`, ADMIN);
      assert.equal(r.status, 400, `${folder}: ${JSON.stringify(r.body)}`);
      assert.match(r.body.error, /backup root/);
    }
    assert.equal(fs.existsSync(path.join(m.dir, 'data', 'escape')), false);
    const used = path.join(m.dir, 'data', 'backups', 'used');
    fs.mkdirSync(used, { recursive: true });
    fs.writeFileSync(path.join(used, 'keep'), 'x');
    const r = await post('/api/nodes/n2/backup?folder=used', ADMIN);
    assert.equal(r.status, 400);
    assert.match(r.body.error, /not empty/);
    assert.equal(fs.readFileSync(path.join(used, 'keep'), 'utf8'), 'x');
    const running = await post('/api/nodes/n2/restore?folder=used', ADMIN);
    assert.equal(running.status, 409, JSON.stringify(running.body));
    assert.match(running.body.error, /stop it first/);
  });

test('a backup under ~5,000 writes/s is the cluster prefix; restored on a wiped node it catches up',
  { timeout: 420000 }, async () => {
    const leader = (await m.waitForCluster(2, 30000)).members[0];
    const leaderName = ['n1', 'n2', 'n3'].find(
      (n) => m.node(n).options.ExtTcpPort === leader.externalTcpPort);
    const follower = ['n1', 'n2', 'n3'].find((n) => n !== leaderName);
    conn = await connect(tcpOf(leaderName), { maxRetries: 10 });
    const load = startLoad(conn, TARGET_EVENTS_PER_SECOND);
    await waitFor(() => load.acked.length * EVENTS_PER_APPEND >= 50000,
      { timeoutMs: 90000, what: '50,000 events written before the backup' });
    const backupStarted = Date.now();
    const before = load.acked.length;
    const taken = await post(`/api/nodes/${follower}/backup?folder=under-load`, ADMIN);
    const backupMs = Date.now() - backupStarted;
    assert.equal(taken.status, 200, JSON.stringify(taken.body));
    await new Promise((r) => setTimeout(r, 1000));  // the load goes on after the backup too
    load.stop = true;
    await load.done;
    const backupEnded = backupStarted + backupMs;
    // Appends in flight at some moment of the backup, and those acknowledged while it ran.
    const overlapping = load.acked.filter((a) => a.at <= backupEnded && a.at + a.ms >= backupStarted);
    const during = overlapping.filter((a) => a.at + a.ms <= backupEnded);
    const seconds = (load.acked.at(-1).at - load.acked[0].at) / 1000;
    const rate = Math.round((load.acked.length * EVENTS_PER_APPEND) / seconds);
    const slowest = Math.max(...overlapping.map((a) => a.ms), 0);
    console.log(`# load ${rate} events/s; backup ${backupMs} ms with ${during.length} appends ` +
      `acknowledged meanwhile (slowest ${slowest} ms); ${load.failures.length} failed appends`);
    assert.deepEqual(load.failures, []);
    assert.ok(load.acked.length > before, 'writes went on while the backup ran');
    // The copy does not hold the writer up: appends in flight during it finish in ordinary time.
    assert.ok(slowest < 10000, `an append waited ${slowest} ms during the backup`);
    if (backupMs > 500) assert.ok(during.length > 0, 'appends were acknowledged during the backup');

    const manifest = taken.body.manifest;
    const folder = taken.body.folder;
    assert.equal(folder, path.join(m.dir, 'data', 'backups', 'under-load'));
    assert.equal(manifest.node, follower);
    assert.ok(manifest.commitPosition > 0 && manifest.logPosition >= manifest.commitPosition,
      JSON.stringify(manifest));
    assert.equal(manifest.files[0].name, 'chorus.db');
    assert.match(manifest.files[0].sha256, /^[0-9a-f]{64}$/);
    assert.equal(manifest.files[0].bytes, fs.statSync(path.join(folder, 'chorus.db')).size);

    // The backup equals the cluster's log up to its log position (the cluster kept one leader,
    // so what the copy holds beyond the commit position was committed too).
    const cluster = await readWholeLog(conn);
    const backedUp = readBackupFile(path.join(folder, 'chorus.db'));
    const prefix = cluster.filter((e) => e.end <= manifest.logPosition);
    const committedCopies = backedUp.filter((e) => e.end <= manifest.commitPosition).length;
    assert.ok(committedCopies > 40000, `${committedCopies} of ${backedUp.length} events of the ` +
      `backup are below its commit position: ${JSON.stringify(manifest)}`);
    assert.equal(backedUp.length, prefix.length, 'same number of events');
    for (let i = 0; i < prefix.length; i++) {
      if (JSON.stringify(backedUp[i]) !== JSON.stringify(prefix[i])) {
        assert.deepEqual(backedUp[i], prefix[i], `event ${i} of the backup`);
      }
    }
    assert.ok(cluster.length > prefix.length, 'the cluster went on past the backup');

    // A wiped node seeded from the backup joins and catches up with what came after it.
    const target = ['n1', 'n2', 'n3'].find((n) => n !== leaderName && n !== follower) || follower;
    assert.equal((await post(`/api/nodes/${target}/stop`, ADMIN)).status, 200);
    const dataFolder = (await m.nodeInfo(target)).dataFolder;
    fs.rmSync(dataFolder, { recursive: true, force: true });
    const restored = await post(`/api/nodes/${target}/restore?folder=under-load`, ADMIN);
    assert.equal(restored.status, 200, JSON.stringify(restored.body));
    assert.equal(restored.body.manifest.logPosition, manifest.logPosition);
    // Its old id went with the wiped folder: the manager gave it a new one and the leader moved
    // its seat to it through the log (without that, the others would refuse it as a voter).
    assert.equal(restored.body.seatMoved, true, JSON.stringify(restored.body));
    const newId = fs.readFileSync(path.join(dataFolder, 'instance-id'), 'utf8').trim();
    assert.equal((await post(`/api/nodes/${target}/start`, ADMIN)).status, 200);
    const leaderEnd = cluster.at(-1).end;
    await waitFor(async () => {
      const g = await m.gossip();
      const me = g.members.find((x) => x.externalTcpPort === m.node(target).options.ExtTcpPort);
      return me && me.instanceId === newId && me.isAlive && me.state === 'Follower' &&
        me.writerCheckpoint >= leaderEnd;
    }, { timeoutMs: 120000, intervalMs: 200, what: `${target} caught up as a Follower under its new id` });
    const meInGossip = (await m.gossip()).members.find(
      (x) => x.externalTcpPort === m.node(target).options.ExtTcpPort);
    assert.equal(meInGossip.instanceId, newId, 'it follows under its new instance id');
    // The seat move is one more event in the log ($member-replaced in $voters).
    const clusterNow = await readWholeLog(conn);
    assert.deepEqual(clusterNow.slice(cluster.length).map((e) => `${e.stream}/${e.type}`),
      ['$voters/$member-replaced']);
    const direct = await connect(tcpOf(target), { requireMaster: false });
    try {
      const onTarget = await waitFor(async () => {
        const rows = await readWholeLog(direct);
        return rows.length >= clusterNow.length ? rows : false;
      }, { timeoutMs: 30000, what: `every event committed on ${target}` });
      assert.equal(onTarget.length, clusterNow.length);
      for (let i = 0; i < clusterNow.length; i++) {
        if (JSON.stringify(onTarget[i]) !== JSON.stringify(clusterNow[i])) {
          assert.deepEqual(onTarget[i], clusterNow[i], `event ${i} on the restored node`);
        }
      }
    } finally {
      closeQuietly(direct);
    }
  });

test('chorus backups lists it and chorus verify-backup finds a damaged copy', async () => {
  const seed = ['--seed', `127.0.0.1:${m.extHttpPort}`, '--user', 'admin', '--password', 'changeit'];
  const list = await runChorus([...seed, '--json', 'backups']);
  assert.equal(list.code, 0, list.stderr);
  const names = JSON.parse(list.stdout).map((b) => b.folder);
  assert.ok(names.includes('under-load'), list.stdout);
  const folder = path.join(m.dir, 'data', 'backups', 'under-load');
  const ok = await runChorus(['verify-backup', folder]);
  assert.equal(ok.code, 0, ok.stderr);
  const copy = path.join(m.dir, 'damaged');
  fs.cpSync(folder, copy, { recursive: true });
  const fd = fs.openSync(path.join(copy, 'chorus.db'), 'r+');
  const byte = Buffer.alloc(1);
  fs.readSync(fd, byte, 0, 1, 5000);
  byte[0] ^= 0xff;  // one byte changed, whatever it was
  fs.writeSync(fd, byte, 0, 1, 5000);
  fs.closeSync(fd);
  const bad = await runChorus(['verify-backup', copy]);
  assert.equal(bad.code, 1);
  assert.match(bad.stderr, /SHA-256/);
  const refused = await runChorus(['restore', '--from', copy, '--to', path.join(m.dir, 'seed')]);
  assert.equal(refused.code, 1);
  assert.equal(fs.existsSync(path.join(m.dir, 'seed', 'chorus.db')), false);
});
