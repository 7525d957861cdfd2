// Named fault schedules. Each is an async function of a context { cluster, net, rng, sleep,
// phaseMs } run while the workload writes; it injects its fault, waits, and heals (the runner
// heals everything again afterwards). Victims are chosen from the live roles (leader, a
// follower) with the run's seeded rng, so a seed replays the same choices. `needsTmpfs` and
// `needsManager` name the schedules that want size-limited data folders or a chorus-manager
// per namespace.
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

// Waits until the node's gossip time stamp (its wall clock) is `offsetS` off the true time: the
// jump took effect (else the schedule fails instead of proving nothing).
async function clockIs(ctx, node, offsetS) {
  for (let i = 0; i < 50; i++) {
    const stamp = Date.parse((await node.self())?.timeStamp ?? '');
    if (Math.abs(stamp - (Date.now() + offsetS * 1000)) < 60000) return;
    await ctx.sleep(100);
  }
  throw new Error(`${node.name}'s clock did not jump by ${offsetS} s`);
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
    await leaderOf(ctx);  // then write a while more to the cluster that came back
    await ctx.sleep(ctx.phaseMs);
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
  'kill-manager-leader': async (ctx) => {
    // The leader's manager and its worker die in the same instant; the manager comes back (as
    // systemd restarts it) and starts its worker again. Then the same for the new leader.
    await ctx.sleep(ctx.phaseMs);
    await killAndRestart(ctx, [await leaderOf(ctx)], 2000);
    await ctx.sleep(ctx.phaseMs);
    await killAndRestart(ctx, [await leaderOf(ctx)], 2000);
  },
  'kill-manager-all': async (ctx) => {
    // Every manager with its worker at once (the whole cluster loses power), back 1 s later.
    await ctx.sleep(ctx.phaseMs);
    await killAndRestart(ctx, ctx.cluster.nodes.map((n) => n.index), 1000);
    await leaderOf(ctx);
    await ctx.sleep(ctx.phaseMs);
  },
  'clock-jumps': async (ctx) => {
    // Wall clocks jump (CLOCK_REALTIME only, through the shim): the leader an hour ahead and a
    // follower an hour behind, then the other way round, then back to the true time.
    await ctx.sleep(ctx.phaseMs);
    const l = ctx.cluster.nodes[await leaderOf(ctx)];
    const f = ctx.cluster.nodes[await followerOf(ctx)];
    l.setDisk('clock +3600');
    f.setDisk('clock -3600');
    await clockIs(ctx, l, 3600);
    await clockIs(ctx, f, -3600);
    await ctx.sleep(ctx.phaseMs);
    l.setDisk('clock -3600');
    f.setDisk('clock +3600');
    await clockIs(ctx, l, -3600);
    await ctx.sleep(ctx.phaseMs);
    l.setDisk('');
    f.setDisk('');
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
// Schedules run with a chorus-manager per namespace supervising that namespace's worker.
export const needsManager = new Set(['kill-manager-leader', 'kill-manager-all']);
