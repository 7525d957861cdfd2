// The fault harness's cluster: one chorus-worker per network namespace (net.mjs), started
// through `ip netns exec` with the disk-fault shim preloaded (fault_shim.c; its control file
// switches EIO, slow-fsync and clock modes at run time). Unmanaged, the harness restarts any
// node that exits unless a schedule holds it down, as a manager would. Managed, each namespace
// runs a chorus-manager supervising its one worker, and the harness restarts only managers (as
// systemd would). Every process is stopped by its PID; leftovers() finds any process still
// holding this run's folder. Single-threaded (the node event loop).
import { spawn } from 'node:child_process';
import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { pidAlive } from './net.mjs';

const kRestartDelayMs = 500;  // a manager's (or systemd's) first restart backoff
const kManagerIntPort = 30777;
const kManagerExtPort = 30778;

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

// Live processes whose command line names a folder under `root` (a run's workers, managers).
export function processesUnder(root) {
  const out = [];
  for (const entry of fs.readdirSync('/proc')) {
    if (!/^\d+$/.test(entry) || Number(entry) === process.pid) continue;
    try {
      const cmd = fs.readFileSync(`/proc/${entry}/cmdline`, 'utf8');
      if (cmd.includes(root + '/') && pidAlive(Number(entry))) out.push(Number(entry));
    } catch { /* exited meanwhile */ }
  }
  return out;
}

function tail(text, lines = 8) {
  return text.split('\n').filter((l) => l && !/\[Information\]/.test(l)).slice(-lines).join('\n');
}

export class FaultNode {
  constructor(cluster, index) {
    this.cluster = cluster;
    this.index = index;
    this.addr = cluster.net.addr(index);
    this.dir = path.join(cluster.root, `node${index}`);
    this.dbDir = path.join(this.dir, 'db');
    this.control = path.join(this.dir, 'disk-fault');
    this.output = '';
    this.held = false;     // a schedule keeps it down: the harness does not restart it
    this.restarts = 0;
    fs.mkdirSync(this.dbDir, { recursive: true });
    fs.writeFileSync(this.control, '');
    if (cluster.manager) this.writeManagerConfig();
  }

  // Alive: the process the harness started (the worker, or managed: the manager).
  get alive() { return !!this.proc; }
  get name() { return `n${this.index}(${this.addr})`; }
  get pidFile() { return path.join(this.dir, 'mgr', 'manager', 'pids', 'node.pid'); }

  workerArgs() {
    const seeds = this.cluster.nodes.filter((n) => n !== this).map((n) => `${n.addr}:2112`);
    return ['--int-ip', this.addr, '--ext-ip', this.addr, '--db', this.dbDir,
      '--log', path.join(this.dir, 'log'), `--cluster-size=${this.cluster.nodes.length}`,
      '--discover-via-dns=false', `--gossip-seed=${seeds.join(',')}`,
      '--cluster-secret-file', this.cluster.secretFile];
  }

  // One manager per namespace with one node; the managers are each other's gossip seeds.
  writeManagerConfig() {
    const seeds = this.cluster.net.addrs().filter((a) => a !== this.addr)
      .map((a) => `${a}:${kManagerIntPort}`);
    this.config = path.join(this.dir, 'manager.yaml');
    fs.writeFileSync(this.config, [
      `IntIp: ${this.addr}`, `ExtIp: ${this.addr}`,
      `IntHttpPort: ${kManagerIntPort}`, `ExtHttpPort: ${kManagerExtPort}`,
      'DiscoverViaDns: false', `GossipSeed: ${seeds.join(',')}`,
      `Db: ${path.join(this.dir, 'mgr')}`, `Log: ${path.join(this.dir, 'mgr-log')}`,
      `WorkerPath: ${this.cluster.worker}`, 'HealthIntervalMs: 200',
      `ClusterSecretFile: ${this.cluster.secretFile}`,
      'Nodes:', '  - Name: node',
      `    Options: {ClusterSize: ${this.cluster.net.size}, Db: ${this.dbDir}, IntTcpPort: 1112, ` +
        'ExtTcpPort: 1113, IntHttpPort: 2112, ExtHttpPort: 2113}',
    ].join('\n') + '\n');
  }

  start() {
    const env = { ...process.env, CHORUS_FAULT_CONTROL: this.control,
      CHORUS_FAULT_PATH: this.dbDir };
    if (this.cluster.shim) env.LD_PRELOAD = this.cluster.shim;
    const command = this.cluster.manager
      ? [this.cluster.manager, '--config', this.config]
      : [this.cluster.worker, ...this.workerArgs()];
    const proc = spawn('ip', ['netns', 'exec', this.cluster.net.ns(this.index), ...command],
      { env, stdio: ['ignore', 'pipe', 'pipe'] });
    this.proc = proc;
    const collect = (d) => { this.output = (this.output + d.toString()).slice(-20000); };
    proc.stdout.on('data', collect);
    proc.stderr.on('data', collect);
    proc.once('error', (e) => collect(`spawn failed: ${e.message}\n`));
    this.exited = new Promise((resolve) => {
      proc.once('exit', (code, signal) => {
        if (this.proc === proc) this.proc = undefined;
        this.lastExit = { code, signal };
        resolve(this.lastExit);
      });
    });
  }

  // The worker's pid: our child, or managed, the one in the manager's pid file.
  workerPid() {
    if (!this.cluster.manager) return this.proc?.pid;
    try {
      const pid = Number(fs.readFileSync(this.pidFile, 'utf8'));
      return pid > 0 && pidAlive(pid) ? pid : undefined;
    } catch {
      return undefined;
    }
  }

  // Signals the worker (a pause stops the node, not its manager).
  signal(sig) {
    const pid = this.workerPid();
    if (pid) { try { process.kill(pid, sig); } catch { /* just exited */ } }
  }

  // SIGKILL; managed, the manager and its worker in the same instant (a machine losing power,
  // the OOM killer taking the whole cgroup), then waits until both are gone.
  async kill() {
    const worker = this.cluster.manager ? this.workerPid() : undefined;
    const exited = this.exited;
    if (this.proc) process.kill(this.proc.pid, 'SIGKILL');
    if (worker) { try { process.kill(worker, 'SIGKILL'); } catch { /* already gone */ } }
    if (exited) await exited;
    for (let i = 0; worker && pidAlive(worker) && i < 100; i++) await sleep(50);
  }

  setDisk(mode) { fs.writeFileSync(this.control, mode); }

  async gossip(timeoutMs = 1000) {
    const res = await fetch(`http://${this.addr}:2113/gossip?format=json`,
      { signal: AbortSignal.timeout(timeoutMs) });
    if (res.status !== 200) throw new Error(`gossip of ${this.name}: ${res.status}`);
    return res.json();
  }

  // This node's own gossip entry, or undefined when it does not answer.
  async self() {
    try {
      const g = await this.gossip(800);
      return g.members.find((m) => m.internalHttpIp === this.addr && m.state !== 'Manager');
    } catch {
      return undefined;
    }
  }

  // The last lines of this node's output that are not routine (and its manager's, if any).
  logTail() {
    let text = tail(this.output);
    if (this.cluster.manager) {
      try {
        const out = path.join(this.dir, 'mgr-log', 'node.out.log');
        text += '\n' + tail(fs.readFileSync(out, 'utf8'));
      } catch { /* no node output yet */ }
    }
    return text;
  }
}

export class FaultCluster {
  // manager: the chorus-manager binary for a managed cluster, else undefined.
  constructor({ net, worker, shim, root, manager }) {
    this.net = net;
    this.worker = worker;
    this.shim = shim;
    this.root = root;
    this.manager = manager;
    // The nodes' addresses are not loopback, so they run as a real deployment must: with a
    // cluster secret (docs/security.md), the same file for every node and manager.
    this.secretFile = path.join(root, 'cluster-secret');
    fs.writeFileSync(this.secretFile, crypto.randomBytes(32).toString('hex'), { mode: 0o600 });
    this.nodes = [];
    for (let i = 0; i < net.size; i++) this.nodes.push(new FaultNode(this, i));
  }

  // Where clients find the cluster: managed, the managers' external ports, as operators do.
  gossipSeeds() {
    const port = this.manager ? kManagerExtPort : 2113;
    return this.nodes.map((n) => ({ host: n.addr, port }));
  }

  start() {
    for (const n of this.nodes) n.start();
    this.supervisor = setInterval(() => {
      for (const n of this.nodes) {
        if (!n.alive && !n.held && !this.stopping && !n.restartTimer) {
          n.restartTimer = setTimeout(() => {
            n.restartTimer = undefined;
            if (!n.alive && !n.held && !this.stopping) {
              n.restarts += 1;
              n.start();
            }
          }, kRestartDelayMs);
        }
      }
    }, 100);
  }

  // The index of the node that says it leads (highest epoch if several), or -1.
  async leader() {
    const selves = await Promise.all(this.nodes.map((n) => (n.alive ? n.self() : undefined)));
    let best = -1;
    selves.forEach((s, i) => {
      if (s?.state === 'Leader' && (best < 0 || s.epochNumber > selves[best].epochNumber)) best = i;
    });
    return best;
  }

  // Quiesced (every node up, one leader, all writer and commit positions equal: replication has
  // caught up): the log end every node holds and has committed, where the cluster rests until
  // the next write; undefined while not quiesced.
  async restEnd() {
    const selves = await Promise.all(this.nodes.map((n) => (n.alive ? n.self() : undefined)));
    if (selves.some((s) => !s)) return undefined;
    if (selves.filter((s) => s.state === 'Leader').length !== 1) return undefined;
    const ends = new Set(selves.map((s) => s.writerCheckpoint));
    const commits = new Set(selves.map((s) => s.lastCommitPosition));
    if (ends.size !== 1 || commits.size !== 1) return undefined;
    return Number(selves[0].lastCommitPosition);
  }

  // One line per node for error reports: role, epoch, writer and commit positions, restarts.
  async describe() {
    const selves = await Promise.all(this.nodes.map((n) => (n.alive ? n.self() : undefined)));
    return selves.map((s, i) => `${this.nodes[i].name}: ` + (s
      ? `${s.state} e${s.epochNumber} writer=${s.writerCheckpoint} commit=${s.lastCommitPosition}`
      : (this.nodes[i].alive ? 'no answer' : `down ${JSON.stringify(this.nodes[i].lastExit)}`)) +
      ` restarts=${this.nodes[i].restarts}`);
  }

  // Stops every process by its PID: workers first when managed (else the manager's death would
  // only SIGTERM them), after SIGCONT so a paused one can die.
  async stop() {
    this.stopping = true;
    clearInterval(this.supervisor);
    for (const n of this.nodes) {
      clearTimeout(n.restartTimer);
      n.signal('SIGCONT');
    }
    await Promise.all(this.nodes.map((n) => n.kill()));
    // A worker a manager started in its last instant is in no pid file we read: find it by
    // its folder. Whatever is still there after this, teardown reports as left behind.
    for (let i = 0; i < 20; i++) {
      const left = this.leftovers();
      if (left.length === 0) break;
      for (const pid of left) { try { process.kill(pid, 'SIGKILL'); } catch { /* gone */ } }
      await sleep(100);
    }
  }

  // Pids of processes still running with this run's folder on their command line (a worker a
  // dead manager left behind, say): after stop() there must be none.
  leftovers() { return processesUnder(this.root); }
}
