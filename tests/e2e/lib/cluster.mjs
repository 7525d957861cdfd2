// Cluster harness: starts N real chorus-worker processes shaped like the three commands of
// EventStore's clustering guide (--cluster-size, --discover-via-dns=false, --gossip-seed = the
// other nodes' internal HTTP endpoints; or DNS discovery), on free ports or on several loopback
// addresses with the same ports, with --mem-db or a data folder each. It reads each node's
// GET /gossip, waits (with deadlines) for one agreed leader, kills / restarts nodes by PID,
// opens node-eventstore-client connections with gossip seeds or pinned to one node, and
// collects each node's "leading epoch N" lines. cleanup() stops every process by its PID.
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { randomUUID } from 'node:crypto';
import { Worker, freePort, portFree, waitFor, tlsSettings } from './harness.mjs';
import { es, testSettings } from './es.mjs';
import { TLS, httpFetch } from './tls.mjs';

export { waitFor };


// GET http(s)://host:port/gossip?format=json with a short timeout; the parsed document or throws.
export async function getGossip(host, port, timeoutMs = 1000, scheme = TLS ? 'https' : 'http') {
  const res = await httpFetch(`${scheme}://${host}:${port}/gossip?format=json`,
    { signal: AbortSignal.timeout(timeoutMs) });
  if (res.status !== 200) throw new Error(`GET /gossip on ${host}:${port} answered ${res.status}`);
  return res.json();
}

export class ClusterNode extends Worker {
  constructor(cluster, index, opts) {
    super(opts);
    this.cluster = cluster;
    this.index = index;
    this.leading = []; // epochs this node announced with "leading epoch N", in order
    let partial = '';
    this.onOutput = (text) => {
      partial += text;
      const lines = partial.split('\n');
      partial = lines.pop();
      for (const line of lines) {
        const m = /leading epoch (\d+)/.exec(line);
        if (m) this.leading.push({ epoch: Number(m[1]), at: Date.now() });
      }
    };
  }

  get alive() { return !!this.proc; }
  get name() { return `node${this.index + 1}(${this.host}:${this.httpPort})`; }
  get intHttp() { return `${this.host}:${this.intHttpPort}`; }

  gossip(timeoutMs) { return getGossip(this.host, this.httpPort, timeoutMs, this.httpScheme); }

  // This node's own entry in its own gossip (keyed by internal HTTP endpoint).
  async self(timeoutMs) {
    const g = await this.gossip(timeoutMs);
    const me = g.members.find((m) => m.internalHttpPort === this.intHttpPort &&
      m.internalHttpIp === this.host);
    if (!me) throw new Error(`${this.name}: own entry missing from its gossip`);
    return me;
  }
}

export class Cluster {
  // size: nodes; memDb: --mem-db, else a temp folder per node; hosts: one address per node
  // (default all 127.0.0.1, free ports each) — with samePorts every node gets the same four
  // ports; dns: { name, port } for --discover-via-dns=true instead of --gossip-seed;
  // clusterSize: the --cluster-size given (default size); extraArgs: added to every node; tls:
// certificates and secure ports (default CHORUS_TEST_TLS=1).
  constructor({ size = 3, memDb = true, hosts, samePorts = false, dns, clusterSize,
    extraArgs = [], tls = TLS } = {}) {
    this.tls = tls;
    this.size = size;
    this.memDb = memDb;
    this.hosts = hosts || Array(size).fill('127.0.0.1');
    this.samePorts = samePorts;
    this.dns = dns;
    this.clusterSize = clusterSize || size;
    this.extraArgs = extraArgs;
    this.nodes = [];
    this.conns = [];
  }

  async allocate() {
    let shared;
    if (this.samePorts) {
      // Ports reserved on 127.0.0.1 must also be bindable on every other host of the cluster.
      for (;;) {
        shared = [await freePort(), await freePort(), await freePort(), await freePort()];
        const ok = await Promise.all(
          this.hosts.flatMap((h) => shared.map((p) => portFree(p, h).catch(() => false))));
        if (ok.every(Boolean)) break;
      }
    }
    for (let i = 0; i < this.size; i++) {
      const host = this.hosts[i];
      const n = new ClusterNode(this, i, { memDb: this.memDb, host, tls: this.tls });
      if (!this.memDb) {
        n.dbDir = fs.mkdtempSync(path.join(os.tmpdir(), 'chorus-cluster-db-'));
        n.ownsDir = true;
      }
      if (shared) {
        [n.tcpPort, n.httpPort, n.intTcpPort, n.intHttpPort] = shared;
      } else {
        n.tcpPort = await freePort(host);
        n.httpPort = await freePort(host);
        n.intTcpPort = await freePort(host);
        n.intHttpPort = await freePort(host);
      }
      this.nodes.push(n);
    }
    for (const n of this.nodes) {
      const discovery = this.dns
        ? ['--discover-via-dns=true', '--cluster-dns', this.dns.name,
          '--cluster-gossip-port', String(this.dns.port ?? n.intHttpPort)]
        : ['--discover-via-dns=false',
          `--gossip-seed=${this.nodes.filter((o) => o !== n).map((o) => o.intHttp).join(',')}`];
      n.extraArgs = [`--cluster-size=${this.clusterSize}`, ...discovery, ...this.extraArgs];
    }
    return this;
  }

  // Allocates (first time) and starts every node at once, then waits until each answers
  // GET /gossip. A free port can be taken by another process before a node binds it (the node
  // then exits with "Address already in use", possibly after its TCP port already answered):
  // on the first start the cluster is then allocated anew, up to three times.
  async start() {
    for (let attempt = 1; ; attempt++) {
      const fresh = this.nodes.length === 0;
      if (fresh) await this.allocate();
      try {
        await Promise.all(this.nodes.map((n) => (n.alive ? null : n.start())));
        // 20 s: three nodes starting at once on a loaded 2-core machine took more than 10 s once.
        await waitFor(async () => {
          await Promise.all(this.nodes.map((n) => n.gossip(500)));
          return true;
        }, { timeoutMs: 20000, what: 'every node answering GET /gossip',
          stopIf: () => this.nodes.some((n) => !n.alive) });
        const dead = this.nodes.find((n) => !n.alive);
        if (dead) throw new Error(`${dead.name} exited at its start:\n${dead.output.slice(-2000)}`);
        return this;
      } catch (e) {
        const output = this.nodes.map((n) => n.output).join('\n');
        if (!fresh || attempt >= 3 || !/Address already in use/.test(output)) {
          // What each node said, to tell a slow start from a stuck one.
          e.message += this.nodes.map((n) => `\n--- ${n.name} (alive: ${n.alive}):\n` +
            n.output.slice(-1500)).join('');
          throw e;
        }
        console.log(`# a port was taken before a node bound it; allocating the cluster again (attempt ${attempt + 1})`);
        await this.cleanup();
        this.nodes = [];
      }
    }
  }

  live() { return this.nodes.filter((n) => n.alive); }

  // Each live node's own view: { node, self, leaderSeen } where leaderSeen are the alive
  // Leader members that node's gossip lists. A node that does not answer gives an error entry.
  async views(timeoutMs = 1000) {
    return Promise.all(this.live().map(async (node) => {
      try {
        const g = await node.gossip(timeoutMs);
        const self = g.members.find((m) => m.internalHttpPort === node.intHttpPort &&
          m.internalHttpIp === node.host);
        return { node, gossip: g, self,
          leaders: g.members.filter((m) => m.isAlive && m.state === 'Leader') };
      } catch (e) {
        return { node, error: e.message };
      }
    }));
  }

  // Resolves when every live node answers gossip, exactly one live node is Leader in its own
  // entry, the others Follower (followers: 'all'; or Follower/CatchingUp with followers:
  // 'replicating', for a cluster under a write load), every node names that same leader (by instanceId) as the only
  // alive Leader, with the same epoch number. Returns { leader (ClusterNode), epoch, ms }.
  async waitForLeader({ timeoutMs = 5000, followers = 'all', what = 'an agreed leader' } = {}) {
    const t0 = Date.now();
    let last;
    const found = await waitFor(async () => {
      const vs = await this.views(500);
      last = vs;
      if (vs.some((v) => v.error || !v.self)) return false;
      const leaderViews = vs.filter((v) => v.self.state === 'Leader');
      if (leaderViews.length !== 1) return false;
      const lv = leaderViews[0];
      const others = vs.filter((v) => v !== lv);
      const ok = followers === 'all' ? ['Follower'] : ['Follower', 'CatchingUp'];
      if (!others.every((v) => ok.includes(v.self.state))) return false;
      for (const v of vs) {
        if (v.leaders.length !== 1 || v.leaders[0].instanceId !== lv.self.instanceId) return false;
        if (v.self.epochNumber !== lv.self.epochNumber) return false;
      }
      return { leader: lv.node, epoch: lv.self.epochNumber, ms: Date.now() - t0 };
    }, { timeoutMs, intervalMs: 50, what }).catch((e) => {
      throw new Error(`${e.message}\nlast views:\n${describeViews(last)}`);
    });
    return found;
  }

  async leader(opts) { return (await this.waitForLeader(opts)).leader; }

  async followers(opts) {
    const l = await this.leader(opts);
    return this.live().filter((n) => n !== l);
  }

  // Gossip seeds (external HTTP) of all nodes, for the client.
  seeds(nodes = this.nodes) {
    return nodes.map((n) => new es.GossipSeed({ host: n.host, port: n.httpPort }));
  }

  // A node-eventstore-client connection: via gossip seeds (default) or pinned to `node` over
  // tcp://; over TLS (secure port, HTTPS gossip) in TLS mode. Resolves once `connected`. Closed
  // in cleanup().
  async connect({ node, settings = {}, timeoutMs = 10000, name } = {}) {
    const target = node ? node.tcpEndpoint : this.seeds();
    const conn = es.createConnection(
      { ...testSettings, ...tlsSettings(node || this.nodes[0]), ...settings }, target,
      name || `cluster-${randomUUID().slice(0, 8)}`);
    conn.on('error', () => {});
    conn.events = [];
    for (const ev of ['connected', 'disconnected', 'reconnecting', 'closed']) {
      conn.on(ev, (x) => conn.events.push({ ev, at: Date.now(), x: JSON.stringify(x) }));
    }
    this.conns.push(conn);
    await new Promise((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(
        `client did not reach "connected" within ${timeoutMs} ms`)), timeoutMs);
      conn.once('connected', () => { clearTimeout(timer); resolve(); });
      conn.once('closed', (reason) => {
        clearTimeout(timer);
        reject(new Error(`connection closed before connected: ${reason}`));
      });
      conn.connect().catch((e) => { clearTimeout(timer); reject(e); });
    });
    return conn;
  }

  async kill(node) { await node.kill(); }

  // Restarts a stopped node with the same ports, folder and arguments.
  async restart(node) { await node.start(); }

  // The tail of each node's output and its log folder's files, for failure messages.
  diagnostics(maxChars = 3000) {
    return this.nodes.map((n) => {
      let logs = '';
      try {
        for (const f of fs.readdirSync(n.logDir())) {
          const p = path.join(n.logDir(), f);
          if (fs.statSync(p).isFile()) logs += `--- ${f}\n${fs.readFileSync(p, 'utf8').slice(-maxChars)}\n`;
        }
      } catch {}
      return `=== ${n.name} pid=${n.pid ?? '-'} leading=${JSON.stringify(n.leading.map((l) => l.epoch))}\n` +
        `${n.output.slice(-maxChars)}\n${logs}`;
    }).join('\n');
  }

  // Stops every node by its PID and removes its folders; with CHORUS_E2E_KEEP=1 the data and
  // log folders are kept (and named) for a post-mortem.
  async cleanup() {
    for (const c of this.conns) { try { c.close(); } catch {} }
    this.conns = [];
    if (process.env.CHORUS_E2E_KEEP) {
      await Promise.all(this.nodes.map((n) => n.stop().catch(() => {})));
      for (const n of this.nodes) console.log(`# kept ${n.name}: db ${n.dbDir ?? '-'} log ${n.logDir()}`);
      return;
    }
    await Promise.all(this.nodes.map((n) => n.cleanup().catch(() => {})));
  }
}

// Adds a fresh name resolving to each address to /etc/hosts (for DNS discovery tests; needs
// root). Returns { name, original } — the caller restores `original` — or null, having printed
// why, when the file cannot be written.
export function addHostsName(prefix, addresses) {
  let original;
  try {
    original = fs.readFileSync('/etc/hosts', 'utf8');
    fs.accessSync('/etc/hosts', fs.constants.W_OK);
  } catch (e) {
    console.log(`# skipped: /etc/hosts is not writable (${e.message})`);
    return null;
  }
  const name = `${prefix}-${randomUUID().slice(0, 8)}.test`;
  fs.writeFileSync('/etc/hosts', `${original.replace(/\n?$/, '\n')}` +
    addresses.map((a) => `${a} ${name}\n`).join(''));
  return { name, original };
}

export function describeViews(vs) {
  if (!vs) return '(none)';
  return vs.map((v) => {
    if (v.error) return `  ${v.node.name}: ${v.error}`;
    const ms = v.gossip.members.map((m) =>
      `${m.internalHttpIp}:${m.internalHttpPort}=${m.state}${m.isAlive ? '' : '(dead)'}` +
      `/e${m.epochNumber}/w${m.writerCheckpoint}/c${m.lastCommitPosition}`).join(' ');
    return `  ${v.node.name}: self=${v.self?.state}/e${v.self?.epochNumber} members: ${ms}`;
  }).join('\n');
}

