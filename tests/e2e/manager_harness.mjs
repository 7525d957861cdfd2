// Manager test harness: writes a chorus-manager config with free ports and a temporary folder,
// starts the manager (whose nodes are real chorus-worker processes), talks to its HTTP API and
// gossip, and stops the manager and every node it started by PID (the pid files in
// <Db>/manager/pids cover a manager killed with SIGKILL). Used by tests/e2e/manager_*.test.mjs.
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { WORKER, clusterSecretFile, freePort, waitFor } from './lib/harness.mjs';
import { TLS, testCertificates, httpFetch } from './lib/tls.mjs';

export { waitFor, freePort };

export const MANAGER = process.env.CHORUS_MANAGER ||
  path.resolve(path.dirname(WORKER), '../manager/chorus-manager');

export const ADMIN = 'Basic ' + Buffer.from('admin:changeit').toString('base64');

// A process that exited but was not reaped yet (a zombie: its parent, the manager, is gone and
// PID 1 may reap late) counts as gone.
export function pidAlive(pid) {
  try { process.kill(pid, 0); } catch (e) { if (e.code !== 'EPERM') return false; }
  try {
    const stat = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
    return stat.slice(stat.lastIndexOf(')') + 2)[0] !== 'Z';
  } catch { return false; }
}

// Node options as YAML flow maps.
function yamlMap(obj) {
  return '{' + Object.entries(obj).map(([k, v]) => `${k}: ${v}`).join(', ') + '}';
}

export class Manager {
  // nodes: [{ name, cluster, options: {ClusterSize, MemDb, ...} }]; ports are added if missing.
  // With `tls` (default: CHORUS_TEST_TLS=1) the manager gets the test certificates (so its ports
  // and its nodes' HTTP ports serve HTTPS) and every node a secure TCP port and no plain one.
  constructor({ ip = '127.0.0.1', nodes, settings = {}, dir, tls = TLS } = {}) {
    this.ip = ip;
    this.tls = tls;
    this.nodeSpecs = nodes;
    this.settings = settings;
    this.dir = dir || fs.mkdtempSync(path.join(os.tmpdir(), 'chorus-mgr-'));
    this.output = '';
  }

  async prepare() {
    if (this.configPath) return;
    this.intHttpPort = this.settings.IntHttpPort || await freePort(this.ip);
    this.extHttpPort = this.settings.ExtHttpPort || await freePort(this.ip);
    for (const n of this.nodeSpecs) {
      n.options = { ...n.options };
      for (const k of ['IntTcpPort', 'ExtTcpPort', 'IntHttpPort', 'ExtHttpPort']) {
        if (!n.options[k]) n.options[k] = await freePort(this.ip);
      }
      if (this.tls && !n.options.ExtSecureTcpPort) {
        n.options.ExtSecureTcpPort = await freePort(this.ip);
        n.options.DisableInsecureTcp = true;
      }
      // No IntIp/ExtIp: like an operator's config, the nodes take the manager's addresses.
    }
    const lines = [
      `IntIp: ${this.ip}`, `ExtIp: ${this.ip}`,
      `IntHttpPort: ${this.intHttpPort}`, `ExtHttpPort: ${this.extHttpPort}`,
      `Db: ${path.join(this.dir, 'data')}`, `Log: ${path.join(this.dir, 'logs')}`,
      'HealthIntervalMs: 200',
      // The worker under test, whichever build the tests were given.
      `WorkerPath: ${WORKER}`,
    ];
    // One secret for every manager of the test process (as an operator copies one file to
    // every machine), unless the test sets its own or none.
    if (!('ClusterSecretFile' in this.settings) && !('Insecure' in this.settings)) {
      lines.push(`ClusterSecretFile: ${clusterSecretFile()}`);
    }
    if (this.tls) {
      const c = testCertificates();
      lines.push(`CertificateFile: ${c.certFile}`, `CertificatePrivateKeyFile: ${c.keyFile}`,
        `TrustedRootCertificatesPath: ${c.rootsDir}`);
    }
    for (const [k, v] of Object.entries(this.settings)) {
      // null leaves a key out (ClusterSecretFile: null = the manager's own default).
      if (k !== 'IntHttpPort' && k !== 'ExtHttpPort' && v !== null) lines.push(`${k}: ${v}`);
    }
    lines.push('Nodes:');
    for (const n of this.nodeSpecs) {
      lines.push(`  - Name: ${n.name}`);
      if (n.cluster) lines.push(`    Cluster: ${n.cluster}`);
      lines.push(`    Options: ${yamlMap(n.options)}`);
    }
    this.configPath = path.join(this.dir, 'manager.yaml');
    fs.writeFileSync(this.configPath, lines.join('\n') + '\n');
  }

  node(name) { return this.nodeSpecs.find((n) => n.name === name); }

  async start() {
    await this.prepare();
    this.proc = spawn(MANAGER, ['--config', this.configPath], { stdio: ['ignore', 'pipe', 'pipe'] });
    this.exited = new Promise((resolve) => this.proc.once('exit', (code, signal) => {
      this.proc = undefined;
      resolve({ code, signal });
    }));
    const collect = (d) => { this.output = (this.output + d.toString()).slice(-20000); };
    this.proc.stdout.on('data', collect);
    this.proc.stderr.on('data', collect);
    let gone = false;
    this.exited.then(() => { gone = true; });
    await waitFor(async () => (await this.fetch('/health/live')).status === 204,
      { what: `manager on ${this.ip}:${this.extHttpPort}`, stopIf: () => gone, timeoutMs: 10000 });
    if (gone) throw new Error(`manager exited early:\n${this.output}`);
    return this;
  }

  get pid() { return this.proc?.pid; }
  get scheme() { return this.tls ? 'https' : 'http'; }
  // What a node-eventstore-client needs to reach this manager's nodes (TLS in TLS mode).
  get clientSettings() { return this.tls ? { useSslConnection: true, validateServer: false } : {}; }

  async fetch(p, { method = 'GET', auth, timeoutMs = 15000 } = {}) {
    const headers = auth ? { Authorization: auth } : {};
    return httpFetch(`${this.scheme}://${this.ip}:${this.extHttpPort}${p}`,
      { method, headers, signal: AbortSignal.timeout(timeoutMs) });
  }

  async json(p, opts) {
    const res = await this.fetch(p, opts);
    return { status: res.status, body: await res.json() };
  }

  async nodes() { return (await this.json('/api/nodes')).body.nodes; }
  async nodeInfo(name) { return (await this.nodes()).find((n) => n.name === name); }
  async gossip(query = '') { return (await this.json(`/gossip?format=json${query}`)).body; }
  // The restart history needs a login ($admins or $ops), checked by a running node.
  async history(auth = ADMIN) {
    const { status, body } = await this.json('/api/history?limit=1000', { auth });
    assert.equal(status, 200, `GET /api/history: ${JSON.stringify(body)}`);
    return body.events;
  }

  // Waits until the cluster seen through this manager has one alive Leader (listed first) and
  // `followers` alive Followers; returns the gossip document.
  async waitForCluster(followers, timeoutMs = 30000) {
    return waitFor(async () => {
      const g = await this.gossip();
      const nodes = g.members.filter((m) => m.state !== 'Manager' && m.isAlive);
      const leaders = nodes.filter((m) => m.state === 'Leader');
      if (leaders.length !== 1 || g.members[0].state !== 'Leader') return false;
      return nodes.filter((m) => m.state === 'Follower').length >= followers ? g : false;
    }, { timeoutMs, intervalMs: 100, what: `a leader and ${followers} followers via the manager` });
  }

  // The pids of the nodes this manager started, from its pid files.
  workerPids() {
    const folder = path.join(this.dir, 'data', 'manager', 'pids');
    if (!fs.existsSync(folder)) return [];
    return fs.readdirSync(folder).map((f) => Number(fs.readFileSync(path.join(folder, f), 'utf8')))
      .filter((p) => p > 0);
  }

  async stop(graceMs = 20000) {
    if (!this.proc) return undefined;
    const pid = this.proc.pid;
    process.kill(pid, 'SIGTERM');
    const timer = setTimeout(() => { try { process.kill(pid, 'SIGKILL'); } catch {} }, graceMs);
    const r = await this.exited;
    clearTimeout(timer);
    return r;
  }

  async kill() {
    if (!this.proc) return;
    process.kill(this.proc.pid, 'SIGKILL');
    await this.exited;
  }

  async cleanup({ keepDir = false } = {}) {
    const pids = this.workerPids();
    await this.stop();
    for (const pid of pids) { try { process.kill(pid, 'SIGKILL'); } catch {} }
    if (!keepDir) fs.rmSync(this.dir, { recursive: true, force: true });
  }
}

// Starts `chorus-manager` with `args` and resolves { code, stderr } when it exits.
export function runManager(args, timeoutMs = 10000) {
  return new Promise((resolve, reject) => {
    const p = spawn(MANAGER, args, { stdio: ['ignore', 'pipe', 'pipe'] });
    let stderr = '';
    let stdout = '';
    p.stderr.on('data', (d) => { stderr += d; });
    p.stdout.on('data', (d) => { stdout += d; });
    const timer = setTimeout(() => { p.kill('SIGKILL'); reject(new Error('manager did not exit')); },
      timeoutMs);
    p.once('exit', (code) => { clearTimeout(timer); resolve({ code, stderr, stdout }); });
  });
}
