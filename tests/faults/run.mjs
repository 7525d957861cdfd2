#!/usr/bin/env node
// Runs fault schedules against a real 3-node Chorus cluster, one network namespace per node,
// under a client workload, then heals, waits for the cluster to quiesce and checks the history
// (checker.mjs). Prints one JSON line per run: schedule, seed, ops, acknowledged, unknown,
// lost, duplicated, verdict, violations. Exit code 1 when any run's verdict is not "ok".
//   node tests/faults/run.mjs --schedule kill-leader,bridge --runs 5 --seed 100
//   node tests/faults/run.mjs --schedule all --runs 5          (every schedule)
// A run is replayed by its schedule and seed (the seed picks victims and writers' streams; the
// timing of a real cluster is not deterministic). Needs root; CHORUS_WORKER and
// CHORUS_FAULT_SHIM name the binaries (default: build/release).
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { check } from './checker.mjs';
import { FaultCluster } from './cluster.mjs';
import { Net } from './net.mjs';
import { needsTmpfs, schedules } from './schedules.mjs';
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

export async function runOne(name, seed, { phaseMs = 3000 } = {}) {
  const worker = process.env.CHORUS_WORKER || path.join(repo, 'build/release/worker/chorus-worker');
  const shim = process.env.CHORUS_FAULT_SHIM ||
    path.join(repo, 'build/release/tests/faults/libchorus_fault_shim.so');
  const root = fs.mkdtempSync(path.join(os.tmpdir(), 'chorus-faults-'));
  const mounts = [];
  const net = new Net(3);
  let cluster;
  const started = Date.now();
  try {
    net.setup();
    if (needsTmpfs.has(name)) {
      for (let i = 0; i < net.size; i++) {
        const dir = path.join(root, `node${i}`);
        fs.mkdirSync(dir);
        execFileSync('mount', ['-t', 'tmpfs', '-o', 'size=128m', 'tmpfs', dir]);
        mounts.push(dir);
      }
    }
    cluster = new FaultCluster({ net, worker, shim, root });
    cluster.start();
    await until('a leader', kLeaderDeadlineMs, async () => (await cluster.leader()) >= 0);
    const rng = mulberry32(seed);
    const streams = ['hot-a', 'hot-b', 'hot-c'].map((s) => `${s}-${seed}`);
    const ctx = { cluster, net, rng, sleep, phaseMs };
    let scheduleError;
    const schedule = schedules[name](ctx).catch((e) => { scheduleError = e; });
    const stop = schedule.then(() => sleep(kTailMs));
    const history = await runWorkload(cluster, { streams, rng, stop });
    // Heal everything, then let replication settle before reading every node.
    net.healAll();
    for (const n of cluster.nodes) {
      n.setDisk('');
      n.held = false;
      n.signal('SIGCONT');
    }
    try {
      await until('the cluster to quiesce', kQuiesceDeadlineMs, () => cluster.quiesced());
    } catch (e) {
      throw new Error(`${e.message}: ${(await cluster.describe()).join('; ')}`);
    }
    await history.finish(15000);
    const result = await check(cluster, history, streams);
    const final = await cluster.describe();
    if (scheduleError) result.violations.push(`schedule failed: ${scheduleError.message}`);
    return { schedule: name, seed, seconds: Math.round((Date.now() - started) / 1000),
      ops: history.ops, acknowledged: history.acked.length, unknown: history.unknown.length,
      refused: history.failed, stored: result.stored, lost: result.lost,
      duplicated: result.duplicated, restarts: cluster.nodes.map((n) => n.restarts), final,
      verdict: result.violations.length ? 'fail' : 'ok', violations: result.violations.slice(0, 20) };
  } catch (e) {
    return { schedule: name, seed, seconds: Math.round((Date.now() - started) / 1000),
      verdict: 'error', error: e.message,
      logs: cluster?.nodes.map((n) => n.output.split('\n').filter((l) =>
        !/\[Information\]/.test(l)).slice(-8).join('\n')) };
  } finally {
    await cluster?.stop();
    net.teardown();
    for (const dir of mounts) { try { execFileSync('umount', [dir]); } catch { /* busy */ } }
    fs.rmSync(root, { recursive: true, force: true });
  }
}

async function main() {
  const { values } = parseArgs({ options: {
    schedule: { type: 'string', default: 'all' },
    runs: { type: 'string', default: '1' },
    seed: { type: 'string', default: '1' },
  } });
  const names = values.schedule === 'all' ? Object.keys(schedules) : values.schedule.split(',');
  for (const n of names) if (!schedules[n]) throw new Error(`unknown schedule ${n}`);
  let failed = false;
  for (const name of names) {
    for (let k = 0; k < Number(values.runs); k++) {
      const r = await runOne(name, Number(values.seed) + k);
      failed ||= r.verdict !== 'ok';
      console.log(JSON.stringify(r));
    }
  }
  process.exit(failed ? 1 : 0);
}

if (process.argv[1] === import.meta.filename) main();
