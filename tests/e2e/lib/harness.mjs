// Test harness: starts real chorus-worker processes on loopback with free ports and a fresh data
// folder, waits (with a deadline) until their TCP port accepts connections, and stops each one by
// its PID when the test ends. Every system test in tests/e2e uses it.
import { spawn } from 'node:child_process';
import crypto from 'node:crypto';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { TLS, workerTlsArgs } from './tls.mjs';

export const WORKER = process.env.CHORUS_WORKER ||
  path.resolve(import.meta.dirname, '../../../build/release/worker/chorus-worker');

// A free TCP port, drawn from kPortFirst..kPortLast: below the kernel's ephemeral range
// (32768-60999 by default), so that no outgoing connection can take it as its local port between
// the probe's release and the worker's bind, as one found by binding port 0 could be.
const kPortFirst = 3000;
const kPortLast = 9999;
// Ports the Fetch standard blocks ("bad ports"): Node's fetch fails on them with "fetch failed"
// (cause: "bad port") and Chromium refuses them too, so a node given one cannot be reached.
const kFetchBlockedPorts = new Set([1, 7, 9, 11, 13, 15, 17, 19, 20, 21, 22, 23, 25, 37, 42, 43,
  53, 69, 77, 79, 87, 95, 101, 102, 103, 104, 109, 110, 111, 113, 115, 117, 119, 123, 135, 137,
  139, 143, 161, 179, 389, 427, 465, 512, 513, 514, 515, 526, 530, 531, 532, 540, 548, 554, 556,
  563, 587, 601, 636, 989, 990, 993, 995, 1719, 1720, 1723, 2049, 3659, 4045, 4190, 5060, 5061,
  6000, 6566, 6665, 6666, 6667, 6668, 6669, 6679, 6697, 10080]);
// Ports this process has handed out: a test that asks for several ports before binding any of
// them must get distinct ones.
const handedOut = new Set();

function ephemeralRange() {
  try {
    const [lo, hi] = fs.readFileSync('/proc/sys/net/ipv4/ip_local_port_range', 'utf8')
      .trim().split(/\s+/).map(Number);
    return { lo, hi };
  } catch {
    return { lo: 32768, hi: 60999 };
  }
}

// Test files run side by side (ctest -j2), and between freePort's probe of a port and the
// worker's bind another test process may probe the same port. So every port handed out is also
// reserved machine-wide: a file named after it in a shared folder, created exclusively (O_EXCL)
// with this process's pid, removed when this process exits. A file left by a process that died
// without exiting (SIGKILL, a ctest timeout) is removed once it is old.
const reservations = path.join(os.tmpdir(), 'chorus-e2e-ports');
const kStaleReservationMs = 10 * 60 * 1000;
const reserved = [];

function pidAlive(pid) {
  try { process.kill(pid, 0); } catch (e) { if (e.code !== 'EPERM') return false; }
  return true;
}

function reserve(port) {
  // Shared by every user, like /tmp itself (sticky: each removes only its own files).
  if (fs.mkdirSync(reservations, { recursive: true })) fs.chmodSync(reservations, 0o1777);
  const file = path.join(reservations, String(port));
  try {
    fs.writeFileSync(file, `${process.pid}\n`, { flag: 'wx' });
  } catch (e) {
    if (e.code !== 'EEXIST') throw new Error(`cannot reserve port ${port} in ${reservations}: ${e.message}`);
    try {
      const owner = Number(fs.readFileSync(file, 'utf8'));
      const age = Date.now() - fs.statSync(file).mtimeMs;
      // Removed, not taken: the next offer of this port can then reserve it as usual.
      if (owner > 0 && !pidAlive(owner) && age > kStaleReservationMs) fs.unlinkSync(file);
    } catch { /* removed meanwhile */ }
    return false;
  }
  if (reserved.length === 0) {
    process.on('exit', () => {
      for (const f of reserved) { try { fs.unlinkSync(f); } catch { /* gone */ } }
    });
  }
  reserved.push(file);
  return true;
}

// Whether port can be bound on host now (it is neither bound nor reserved by the kernel).
export function portFree(port, host = '127.0.0.1') {
  return new Promise((resolve, reject) => {
    const srv = net.createServer();
    srv.unref();
    srv.on('error', (e) => {
      if (e.code === 'EADDRINUSE' || e.code === 'EACCES') resolve(false);
      else reject(e);
    });
    srv.listen(port, host, () => srv.close(() => resolve(true)));
  });
}

export async function freePort(host = '127.0.0.1') {
  const { lo, hi } = ephemeralRange();
  if (kPortLast >= lo && kPortFirst <= hi) {
    throw new Error(`the test ports ${kPortFirst}-${kPortLast} overlap this machine's ephemeral ` +
                    `range ${lo}-${hi} (/proc/sys/net/ipv4/ip_local_port_range)`);
  }
  const span = kPortLast - kPortFirst + 1;
  const start = crypto.randomInt(span);
  for (let i = 0; i < span; i++) {
    const port = kPortFirst + ((start + i) % span);
    if (kFetchBlockedPorts.has(port) || handedOut.has(port) || !(await portFree(port, host)) || !reserve(port)) continue;
    handedOut.add(port);
    return port;
  }
  throw new Error(`no free port in ${kPortFirst}-${kPortLast} on ${host}`);
}

// A cluster secret file for this test process (mode 0600, removed at exit). Workers and managers
// get it by default, so every test runs with authenticated internal traffic.
let secretFile;
export function clusterSecretFile() {
  if (!secretFile) {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'chorus-e2e-secret-'));
    secretFile = path.join(dir, 'cluster-secret');
    fs.writeFileSync(secretFile, crypto.randomBytes(32).toString('hex') + '\n', { mode: 0o600 });
    process.on('exit', () => fs.rmSync(dir, { recursive: true, force: true }));
  }
  return secretFile;
}

// Waits until fn() returns a truthy value, polling every intervalMs, failing after timeoutMs.
// `stopIf()` returning true ends the wait early (resolving undefined), so a lost race does not
// keep polling, and the process alive, until the deadline.
export async function waitFor(fn, { timeoutMs = 10000, intervalMs = 25, what = 'condition',
  stopIf = () => false } = {}) {
  const deadline = Date.now() + timeoutMs;
  let lastError;
  while (Date.now() < deadline) {
    if (stopIf()) return undefined;
    try {
      const v = await fn();
      if (v) return v;
    } catch (e) {
      lastError = e;
    }
    await new Promise((r) => setTimeout(r, intervalMs));
  }
  throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}` +
    (lastError ? `: ${lastError.message}` : ''));
}

export function canConnect(port, host = '127.0.0.1') {
  return new Promise((resolve) => {
    const s = net.connect({ port, host });
    s.once('connect', () => { s.destroy(); resolve(true); });
    s.once('error', () => resolve(false));
  });
}

// A running worker. `start()` spawns it; `stop()` sends SIGTERM (then SIGKILL after a grace
// period) to its PID; `kill()` sends SIGKILL at once. `host` is the address it binds (internal
// and external; any 127.x.y.z on Linux); ports set on the object before the first start()
// (tcpPort, httpPort, intTcpPort, intHttpPort, securePort) are used as they are.
// `onOutput(text)` sees every chunk the process writes to stdout or stderr. `secretFile` is its
// --cluster-secret-file (the test process's shared one by default; null for none). With `tls`
// (default: CHORUS_TEST_TLS=1) it starts with the test certificates and a secure TCP port, and
// without the plain TCP port unless `plainTcp`; tcpEndpoint then names the secure port (clients
// need tlsSettings(worker)).
export class Worker {
  constructor({ memDb = false, dbDir, extraArgs = [], env = {}, host = '127.0.0.1',
    onOutput, secretFile = clusterSecretFile(), tls = TLS, plainTcp = !tls } = {}) {
    this.host = host;
    this.secretFile = secretFile;
    this.tls = tls;
    this.plainTcp = plainTcp;
    this.onOutput = onOutput;
    this.memDb = memDb;
    this.dbDir = dbDir;
    this.extraArgs = extraArgs;
    this.env = env;
    this.output = '';
  }

  async start() {
    if (!this.tcpPort) {
      this.tcpPort = await freePort(this.host);
      this.httpPort = await freePort(this.host);
      this.intTcpPort = await freePort(this.host);
      this.intHttpPort = await freePort(this.host);
    }
    if (this.tls && !this.securePort) this.securePort = await freePort(this.host);
    if (!this.memDb && !this.dbDir) {
      this.dbDir = fs.mkdtempSync(path.join(os.tmpdir(), 'chorus-e2e-'));
      this.ownsDir = true;
    }
    const args = [
      '--ext-ip', this.host, '--int-ip', this.host,
      '--ext-tcp-port', String(this.tcpPort), '--ext-http-port', String(this.httpPort),
      '--int-tcp-port', String(this.intTcpPort), '--int-http-port', String(this.intHttpPort),
      ...(this.memDb ? ['--mem-db'] : ['--db', this.dbDir]),
      '--log', this.logDir(),
      ...(this.secretFile ? ['--cluster-secret-file', this.secretFile] : []),
      ...(this.tls ? [...workerTlsArgs(), '--ext-secure-tcp-port', String(this.securePort)] : []),
      ...(this.plainTcp ? [] : ['--disable-insecure-tcp']),
      ...this.extraArgs,
    ];
    this.proc = spawn(WORKER, args, {
      env: { ...process.env, ...this.env },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    const proc = this.proc;
    this.exited = new Promise((resolve) => {
      proc.once('exit', (code, signal) => {
        if (this.proc === proc) this.proc = undefined;
        resolve({ code, signal });
      });
      // A failed spawn (no binary, no permission) emits 'error' and maybe no 'exit'.
      proc.once('error', (e) => {
        if (this.proc === proc) this.proc = undefined;
        resolve({ error: e.message });
      });
    });
    const collect = (d) => {
      this.output = (this.output + d.toString()).slice(-20000);
      this.onOutput?.(d.toString());
    };
    this.proc.stdout.on('data', collect);
    this.proc.stderr.on('data', collect);
    let gone = false;
    const exitedEarly = this.exited.then((r) => {
      gone = true;
      throw new Error(`worker exited early (${JSON.stringify(r)}):\n${this.output}`);
    });
    exitedEarly.catch(() => {});
    try {
      await Promise.race([
        // Both client ports: the worker opens its HTTP port just after its TCP port, and a test
        // that calls HTTP at once found it refused on a loaded machine (e2e_http_users).
        waitFor(async () => await canConnect(this.clientPort, this.host)
            && canConnect(this.httpPort, this.host),
          { what: `worker TCP port ${this.clientPort} and HTTP port ${this.httpPort}`,
            stopIf: () => gone }),
        exitedEarly,
      ]);
    } catch (e) {
      // A worker that never answered is killed here: the caller got no Worker to clean up, and
      // its open pipes kept the test file running until ctest's timeout (600 s) after the failure.
      if (!gone) {
        try { process.kill(proc.pid, 'SIGKILL'); } catch {}
        await this.exited;
      }
      throw e;
    }
    return this;
  }

  // Logs go to a temporary folder, never into the source tree.
  logDir() {
    if (!this.logDirPath) this.logDirPath = fs.mkdtempSync(path.join(os.tmpdir(), 'chorus-e2e-log-'));
    return this.logDirPath;
  }

  get pid() { return this.proc?.pid; }
  // The TCP port clients use: the secure one in TLS mode.
  get clientPort() { return this.tls ? this.securePort : this.tcpPort; }
  get tcpEndpoint() { return `tcp://${this.host}:${this.clientPort}`; }
  get httpScheme() { return this.tls ? 'https' : 'http'; }

  async kill() {
    if (!this.proc) return;
    process.kill(this.proc.pid, 'SIGKILL');
    await this.exited;
  }

  async stop(graceMs = 10000) {
    if (!this.proc) return;
    const pid = this.proc.pid;
    process.kill(pid, 'SIGTERM');
    const timer = setTimeout(() => { try { process.kill(pid, 'SIGKILL'); } catch {} }, graceMs);
    const r = await this.exited;
    clearTimeout(timer);
    return r;
  }

  async cleanup() {
    await this.stop();
    if (this.ownsDir) fs.rmSync(this.dbDir, { recursive: true, force: true });
    if (this.logDirPath) fs.rmSync(this.logDirPath, { recursive: true, force: true });
  }
}

// Client settings for a worker: TLS without server validation when it runs with certificates
// (the client takes no CA option; the tests check certificates on their own links).
export function tlsSettings(worker) {
  return worker?.tls ? { useSslConnection: true, validateServer: false } : {};
}

export async function startWorker(opts) {
  return new Worker(opts).start();
}
