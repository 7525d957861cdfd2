// The fault harness's cluster: one chorus-worker per network namespace (net.mjs), started
// through `ip netns exec` with the disk-fault shim preloaded (fault_shim.c; its control file
// switches EIO and slow-fsync modes at run time). A supervisor restarts any node that exits
// unless a schedule holds it down, as a manager would. Every process is stopped by its PID.
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';

const kRestartDelayMs = 500;  // a manager's first restart backoff

export class FaultNode {
  constructor(cluster, index) {
    this.cluster = cluster;
    this.index = index;
    this.addr = cluster.net.addr(index);
    this.dir = path.join(cluster.root, `node${index}`);
    this.dbDir = path.join(this.dir, 'db');
    this.control = path.join(this.dir, 'disk-fault');
    this.output = '';
    this.held = false;     // a schedule keeps it down: the supervisor does not restart it
    this.restarts = 0;
    fs.mkdirSync(this.dbDir, { recursive: true });
    fs.writeFileSync(this.control, '');
  }

  get alive() { return !!this.proc; }
  get name() { return `n${this.index}(${this.addr})`; }

  args() {
    const seeds = this.cluster.nodes.filter((n) => n !== this).map((n) => `${n.addr}:2112`);
    return ['--int-ip', this.addr, '--ext-ip', this.addr, '--db', this.dbDir,
      '--log', path.join(this.dir, 'log'), `--cluster-size=${this.cluster.nodes.length}`,
      '--discover-via-dns=false', `--gossip-seed=${seeds.join(',')}`];
  }

  start() {
    const env = { ...process.env, CHORUS_FAULT_CONTROL: this.control,
      CHORUS_FAULT_PATH: this.dbDir };
    if (this.cluster.shim) env.LD_PRELOAD = this.cluster.shim;
    const proc = spawn('ip', ['netns', 'exec', this.cluster.net.ns(this.index),
      this.cluster.worker, ...this.args()], { env, stdio: ['ignore', 'pipe', 'pipe'] });
    this.proc = proc;
    const collect = (d) => { this.output = (this.output + d.toString()).slice(-20000); };
    proc.stdout.on('data', collect);
    proc.stderr.on('data', collect);
    this.exited = new Promise((resolve) => {
      proc.once('exit', (code, signal) => {
        if (this.proc === proc) this.proc = undefined;
        this.lastExit = { code, signal };
        resolve(this.lastExit);
      });
    });
  }

  signal(sig) {
    if (this.proc) process.kill(this.proc.pid, sig);
  }

  async kill() {
    if (!this.proc) return;
    const exited = this.exited;
    this.signal('SIGKILL');
    await exited;
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
      return g.members.find((m) => m.internalHttpIp === this.addr);
    } catch {
      return undefined;
    }
  }
}

export class FaultCluster {
  constructor({ net, worker, shim, root }) {
    this.net = net;
    this.worker = worker;
    this.shim = shim;
    this.root = root;
    this.nodes = [];
    for (let i = 0; i < net.size; i++) this.nodes.push(new FaultNode(this, i));
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

  // Every node up, one leader, and all writer checkpoints equal: replication has caught up.
  async quiesced() {
    const selves = await Promise.all(this.nodes.map((n) => (n.alive ? n.self() : undefined)));
    if (selves.some((s) => !s)) return false;
    if (selves.filter((s) => s.state === 'Leader').length !== 1) return false;
    const ends = new Set(selves.map((s) => s.writerCheckpoint));
    const commits = new Set(selves.map((s) => s.lastCommitPosition));
    return ends.size === 1 && commits.size === 1;
  }

  // One line per node for error reports: role, epoch, writer and commit positions, restarts.
  async describe() {
    const selves = await Promise.all(this.nodes.map((n) => (n.alive ? n.self() : undefined)));
    return selves.map((s, i) => `${this.nodes[i].name}: ` + (s
      ? `${s.state} e${s.epochNumber} writer=${s.writerCheckpoint} commit=${s.lastCommitPosition}`
      : (this.nodes[i].alive ? 'no answer' : `down ${JSON.stringify(this.nodes[i].lastExit)}`)) +
      ` restarts=${this.nodes[i].restarts}`);
  }

  async stop() {
    this.stopping = true;
    clearInterval(this.supervisor);
    for (const n of this.nodes) {
      clearTimeout(n.restartTimer);
      n.signal('SIGCONT');  // a paused node must be able to die
    }
    await Promise.all(this.nodes.map((n) => n.kill()));
  }
}
