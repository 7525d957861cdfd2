// Named fault schedules. Each is an async function of a context { cluster, net, rng, sleep,
// phaseMs } run while the workload writes; it injects its fault, waits, and heals (the runner
// heals everything again afterwards). Victims are chosen from the live roles (leader, a
// follower) with the run's seeded rng, so a seed replays the same choices.
import fs from 'node:fs';
import path from 'node:path';
import { execFileSync } from 'node:child_process';

async function leaderOf(ctx) {
  for (let i = 0; i < 100; i++) {
    const l = await ctx.cluster.leader();
    if (l >= 0) return l;
    await ctx.sleep(100);
  }
  throw new Error('no leader to aim the fault at');
}

async function followerOf(ctx) {
  const l = await leaderOf(ctx);
  const others = ctx.cluster.nodes.map((n) => n.index).filter((i) => i !== l);
  return others[Math.floor(ctx.rng() * others.length)];
}

async function killAndRestart(ctx, indexes, downMs) {
  for (const i of indexes) ctx.cluster.nodes[i].held = true;
  await Promise.all(indexes.map((i) => ctx.cluster.nodes[i].kill()));
  await ctx.sleep(downMs);
  for (const i of indexes) ctx.cluster.nodes[i].held = false;  // the supervisor restarts them
}

// Fills the tmpfs under a node's data folder, leaving `leaveBytes` free.
function fillDisk(node, leaveBytes) {
  const { bavail, bsize } = fs.statfsSync(node.dbDir);
  const free = Number(bavail) * Number(bsize);
  const filler = path.join(node.dbDir, '..', 'filler');
  if (free > leaveBytes) {
    execFileSync('fallocate', ['-l', String(free - leaveBytes), filler]);
  }
  return filler;
}

export const schedules = {
  'kill-leader': async (ctx) => {
    await ctx.sleep(ctx.phaseMs);
    await killAndRestart(ctx, [await leaderOf(ctx)], 2000);
    await ctx.sleep(ctx.phaseMs);
    await killAndRestart(ctx, [await leaderOf(ctx)], 2000);
  },
  'kill-follower': async (ctx) => {
    await ctx.sleep(ctx.phaseMs);
    await killAndRestart(ctx, [await followerOf(ctx)], 3000);
  },
  'kill-all': async (ctx) => {
    await ctx.sleep(ctx.phaseMs);
    await killAndRestart(ctx, ctx.cluster.nodes.map((n) => n.index), 1000);
  },
  'pause-leader': async (ctx) => {
    await ctx.sleep(ctx.phaseMs);
    const node = ctx.cluster.nodes[await leaderOf(ctx)];
    node.signal('SIGSTOP');
    await ctx.sleep(5000);  // several election timeouts: a GC-like pause
    node.signal('SIGCONT');
  },
  'partition-leader': async (ctx) => {
    await ctx.sleep(ctx.phaseMs);
    const l = await leaderOf(ctx);
    ctx.net.linkDown(l);
    await ctx.sleep(6000);
    ctx.net.linkUp(l);
  },
  'bridge': async (ctx) => {
    // The leader and one follower cannot talk; the third node sees both (overlapping majorities).
    await ctx.sleep(ctx.phaseMs);
    const l = await leaderOf(ctx);
    const f = await followerOf(ctx);
    ctx.net.blackhole(l, f);
    ctx.net.blackhole(f, l);
    await ctx.sleep(6000);
    ctx.net.unblackhole(l, f);
    ctx.net.unblackhole(f, l);
  },
  'one-way-leader': async (ctx) => {
    // Nothing the leader sends to its peers arrives; it still hears them and its clients.
    await ctx.sleep(ctx.phaseMs);
    const l = await leaderOf(ctx);
    const peers = ctx.cluster.nodes.map((n) => n.index).filter((i) => i !== l);
    for (const p of peers) ctx.net.blackhole(l, p);
    await ctx.sleep(6000);
    for (const p of peers) ctx.net.unblackhole(l, p);
  },
  'eio-fsync-follower': async (ctx) => {
    await ctx.sleep(ctx.phaseMs);
    const node = ctx.cluster.nodes[await followerOf(ctx)];
    node.setDisk('eio-fsync');
    await ctx.sleep(4000);
    node.setDisk('');
  },
  'eio-write-leader': async (ctx) => {
    await ctx.sleep(ctx.phaseMs);
    const node = ctx.cluster.nodes[await leaderOf(ctx)];
    node.setDisk('eio-write');
    await ctx.sleep(4000);
    node.setDisk('');
  },
  'slow-disk-follower': async (ctx) => {
    const node = ctx.cluster.nodes[await followerOf(ctx)];
    node.setDisk('slow-fsync 200');
    await ctx.sleep(3 * ctx.phaseMs);
    node.setDisk('');
  },
  'enospc-follower': async (ctx) => {
    await ctx.sleep(ctx.phaseMs);
    const node = ctx.cluster.nodes[await followerOf(ctx)];
    const filler = fillDisk(node, 64 * 1024);
    await ctx.sleep(4000);
    fs.rmSync(filler, { force: true });
  },
};

// Schedules whose nodes keep their data folders on a size-limited tmpfs.
export const needsTmpfs = new Set(['enospc-follower']);
