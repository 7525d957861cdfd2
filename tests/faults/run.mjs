#!/usr/bin/env node
// Runs fault schedules against a real 3-node Chorus cluster, one network namespace per node,
// under a client workload, then heals, waits for the cluster to quiesce and checks the history
// (checker.mjs). Prints one JSON line per run: schedule, seed, ops, acknowledged, unknown,
// lost, duplicated, verdict, violations; then (on stderr) the table of docs/reliability.md.
// Exit code 1 when any run's verdict is not "ok".
//   node tests/faults/run.mjs --schedule kill-leader,bridge --runs 5 --seed 100
//   node tests/faults/run.mjs --schedule all --runs 5          (every schedule)
//   node tests/faults/run.mjs --schedule bridge --phase-ms 10000  (longer phases)
// A run is replayed by its schedule and seed (the seed picks victims and writers' streams; the
// timing of a real cluster is not deterministic). Needs root; CHORUS_WORKER, CHORUS_MANAGER
// and CHORUS_FAULT_SHIM name the binaries (default: build/release). A run removes everything it
// made (processes, namespaces, links, mounts, its folder) also when it fails or is interrupted,
// and reports anything it had to clean up after the cluster stopped as `leftBehind`.
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { check } from './checker.mjs';
import { FaultCluster, processesUnder } from './cluster.mjs';
import { Net, pidAlive } from './net.mjs';
import { needsManager, needsTmpfs, schedules } from './schedules.mjs';
import { runWorkload } from './workload.mjs';

const repo = path.resolve(import.meta.dirname, '../..');
const kLeaderDeadlineMs = 30000;
const kQuiesceDeadlineMs = 60000;
const kTailMs = 2000;  // writes go on this long after the schedule healed its fault

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

function mulberry32(seed) {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

async function until(what, deadlineMs, fn) {
  const deadline = Date.now() + deadlineMs;
  while (Date.now() < deadline) {
    if (await fn()) return;
    await sleep(200);
  }
  throw new Error(`timed out waiting for ${what}`);
}

// Runs `fn`, turning its error into one that says which step failed.
async function step(what, fn) {
  try {
    return await fn();
  } catch (e) {
    throw new Error(`${what}: ${e.message}`);
  }
}

function binaries() {
  const pick = (env, rel) => process.env[env] || path.join(repo, 'build/release', rel);
  const b = { worker: pick('CHORUS_WORKER', 'worker/chorus-worker'),
    manager: pick('CHORUS_MANAGER', 'manager/chorus-manager'),
    shim: pick('CHORUS_FAULT_SHIM', 'tests/faults/libchorus_fault_shim.so') };
  return b;
}

// Cleanups of runs in progress, run on SIGINT/SIGTERM so an interrupted run leaves nothing.
const inProgress = new Set();
let handlersInstalled = false;
function installSignalHandlers() {
  if (handlersInstalled) return;
  handlersInstalled = true;
  for (const sig of ['SIGINT', 'SIGTERM']) {
    process.once(sig, async () => {
      await Promise.allSettled([...inProgress].map((f) => f()));
      process.exit(130);
    });
  }
}

function unmount(dir) {
  try {
    execFileSync('umount', [dir], { stdio: ['ignore', 'pipe', 'pipe'] });
  } catch {
    // Still busy (a process exiting): detach it now, the kernel frees it when unused.
    try {
      execFileSync('umount', ['-l', dir], { stdio: ['ignore', 'pipe', 'pipe'] });
    } catch { /* not mounted */ }
  }
}

// What runs of harness processes that died without their teardown (SIGKILL) left: each run's
// folder names its harness's pid in `owner`; if that process is gone, the run's processes are
// killed by PID, its mounts detached and its folder removed (net.mjs removes its names).
function reapDeadRuns() {
  for (const name of fs.readdirSync(os.tmpdir())) {
    if (!name.startsWith('chorus-faults-')) continue;
    const root = path.join(os.tmpdir(), name);
    let owner;
    try { owner = Number(fs.readFileSync(path.join(root, 'owner'), 'utf8')); } catch { continue; }
    if (!(owner > 0) || owner === process.pid || pidAlive(owner)) continue;
    for (const pid of processesUnder(root)) {
      try { process.kill(pid, 'SIGKILL'); } catch { /* gone */ }
    }
    for (const line of fs.readFileSync('/proc/self/mounts', 'utf8').split('\n')) {
      const dir = line.split(' ')[1];
      if (dir?.startsWith(root + '/')) unmount(dir);
    }
    fs.rmSync(root, { recursive: true, force: true });
  }
}

// Undoes everything a run made, whatever state it is in; returns what it found left behind
// (which it also removed): processes, namespaces, links, mounts.
async function teardown({ history, cluster, net, mounts, root }) {
  const left = [];
  history?.abort?.();
  await cluster?.stop().catch((e) => left.push(`stopping the cluster: ${e.message}`));
  for (const pid of cluster?.leftovers() ?? []) {
    left.push(`process ${pid}`);
    try { process.kill(pid, 'SIGKILL'); } catch { /* gone */ }
  }
  net.teardown();
  left.push(...net.leftovers());
  for (const dir of mounts) unmount(dir);
  const mounted = fs.readFileSync('/proc/self/mounts', 'utf8').split('\n')
    .filter((l) => l.split(' ')[1]?.startsWith(root + '/'));
  left.push(...mounted.map((l) => `mount ${l.split(' ')[1]}`));
  fs.rmSync(root, { recursive: true, force: true });
  return left;
}

// One run of one schedule; never throws: setup failures come back as verdict "error" saying
// which step failed and why. `bins` overrides binaries() (tests use a worker that cannot start).
export async function runOne(name, seed, { phaseMs = 3000, bins = {},
  leaderDeadlineMs = kLeaderDeadlineMs } = {}) {
  installSignalHandlers();
  const { worker, manager, shim } = { ...binaries(), ...bins };
  const managed = needsManager.has(name);
  const started = Date.now();
  const base = { schedule: name, seed, mode: managed ? 'managed' : 'workers' };
  reapDeadRuns();
  const run = { mounts: [], root: fs.mkdtempSync(path.join(os.tmpdir(), 'chorus-faults-')) };
  fs.writeFileSync(path.join(run.root, 'owner'), String(process.pid));
  run.net = new Net(3);
  const cleanup = () => { inProgress.delete(cleanup); return teardown(run); };
  inProgress.add(cleanup);
  let result;
  try {
    if (!schedules[name]) throw new Error(`unknown schedule ${name}`);
    for (const [what, file] of [['CHORUS_WORKER', worker], ['CHORUS_FAULT_SHIM', shim],
      ...(managed ? [['CHORUS_MANAGER', manager]] : [])]) {
      if (!fs.existsSync(file)) throw new Error(`${what}: ${file} does not exist (build it first)`);
    }
    await step('setting up the network', () => run.net.setup());
    if (needsTmpfs.has(name)) {
      await step('mounting tmpfs data folders', () => {
        for (let i = 0; i < run.net.size; i++) {
          const dir = path.join(run.root, `node${i}`);
          fs.mkdirSync(dir);
          execFileSync('mount', ['-t', 'tmpfs', '-o', 'size=128m', 'tmpfs', dir],
            { stdio: ['ignore', 'pipe', 'pipe'] });
          run.mounts.push(dir);
        }
      });
    }
    const cluster = new FaultCluster({ net: run.net, worker, shim, root: run.root,
      manager: managed ? manager : undefined });
    run.cluster = cluster;
    cluster.start();
    await step('electing a first leader', () =>
      until(`a leader in ${leaderDeadlineMs / 1000} s`, leaderDeadlineMs,
        async () => (await cluster.leader()) >= 0));
    const rng = mulberry32(seed);
    const streams = ['hot-a', 'hot-b', 'hot-c'].map((s) => `${s}-${seed}`);
    const ctx = { cluster, net: run.net, rng, sleep, phaseMs };
    let scheduleError;
    let release;
    const gate = new Promise((r) => { release = r; });
    // The schedule starts once the workload is connected (a slow start must not eat its phases).
    const schedule = gate.then(() => schedules[name](ctx)).catch((e) => { scheduleError = e; });
    const stop = schedule.then(() => sleep(kTailMs));
    const history = await step('starting the workload', () =>
      runWorkload(cluster, { streams, rng, stop, started: release }));
    run.history = history;
    // Heal everything, then let replication settle before reading every node.
    run.net.healAll();
    for (const n of cluster.nodes) {
      n.setDisk('');
      n.held = false;
      n.signal('SIGCONT');
    }
    let restEnd;
    try {
      await until('the cluster to quiesce', kQuiesceDeadlineMs,
        async () => (restEnd = await cluster.restEnd()) !== undefined);
    } catch (e) {
      throw new Error(`${e.message}: ${(await cluster.describe()).join('; ')}`);
    }
    await history.finish(15000);
    // The logs are compared up to where the cluster rested: the nodes write on their own (each
    // its $stats stream every 30 s by default), and such a write may reach one node's log before
    // it is read and another's after.
    const r = await step('checking', () => check(cluster, history, streams, restEnd));
    const final = await cluster.describe();
    if (scheduleError) r.violations.push(`schedule failed: ${scheduleError.message}`);
    result = { ...base, seconds: 0, ops: history.ops, acknowledged: history.acked.length,
      unknown: history.unknown.length, refused: history.failed, stored: r.stored, lost: r.lost,
      duplicated: r.duplicated, restarts: cluster.nodes.map((n) => n.restarts),
      observed: observed(history), final,
      verdict: r.violations.length ? 'fail' : 'ok', violations: r.violations.slice(0, 40) };
  } catch (e) {
    result = { ...base, seconds: 0, verdict: 'error', error: e.message,
      logs: run.cluster?.nodes.map((n) => n.logTail()) };
  } finally {
    const left = await cleanup();
    if (left.length) {
      result.verdict = result.verdict === 'ok' ? 'fail' : result.verdict;
      result.leftBehind = left;
    }
    result.seconds = Math.round((Date.now() - started) / 1000);
  }
  return result;
}

// How much each check had to go on: a check that observed nothing proves nothing.
function observed(history) {
  const reads = { leader: 0, nodeTcp: 0, nodeHttp: 0 };
  for (const [reader, log] of history.reads) {
    let kind = 'nodeTcp';
    if (reader.startsWith('leader')) kind = 'leader';
    else if (reader.endsWith('http')) kind = 'nodeHttp';
    reads[kind] += log.filter((r) => r.version >= 0).length;  // reads that found an event
  }
  let delivered = 0;
  for (const subs of history.subscriptions.values()) {
    for (const s of subs) delivered += s.seen.length;
  }
  return { leaderReads: reads.leader, nodeTcpReads: reads.nodeTcp, nodeHttpReads: reads.nodeHttp,
    leaderClaims: history.leaders.length, subscriberEvents: delivered };
}

// The table of docs/reliability.md, one row per schedule, from the runs' results.
export function summarize(results) {
  const rows = ['| schedule | runs | acknowledged | lost | duplicated | node restarts | verdicts |',
    '|---|---|---|---|---|---|---|'];
  const sum = (list, f) => list.reduce((a, r) => a + (f(r) ?? 0), 0);
  const fmt = (n) => n.toLocaleString('en-US');
  for (const name of [...new Set(results.map((r) => r.schedule))]) {
    const runs = results.filter((r) => r.schedule === name);
    const verdicts = {};
    for (const r of runs) verdicts[r.verdict] = (verdicts[r.verdict] ?? 0) + 1;
    rows.push(`| ${name} | ${runs.length} | ${fmt(sum(runs, (r) => r.acknowledged))} | ` +
      `${sum(runs, (r) => r.lost)} | ${sum(runs, (r) => r.duplicated)} | ` +
      `${sum(runs, (r) => r.restarts?.reduce((a, b) => a + b, 0))} | ` +
      `${Object.entries(verdicts).map(([v, n]) => `${n} ${v}`).join(', ')} |`);
  }
  return rows.join('\n');
}

async function main() {
  const { values } = parseArgs({ options: {
    schedule: { type: 'string', default: 'all' },
    runs: { type: 'string', default: '1' },
    seed: { type: 'string', default: '1' },
    'phase-ms': { type: 'string', default: '3000' },  // the writing before and between faults
  } });
  const names = values.schedule === 'all' ? Object.keys(schedules) : values.schedule.split(',');
  for (const n of names) if (!schedules[n]) throw new Error(`unknown schedule ${n}`);
  const results = [];
  for (const name of names) {
    for (let k = 0; k < Number(values.runs); k++) {
      const phaseMs = Number(values['phase-ms']);
      const r = await runOne(name, Number(values.seed) + k, { phaseMs });
      results.push(r);
      console.log(JSON.stringify(r));
    }
  }
  console.error(summarize(results));  // stderr: stdout stays JSON lines
  process.exit(results.every((r) => r.verdict === 'ok') ? 0 : 1);
}

if (process.argv[1] === import.meta.filename) main();
