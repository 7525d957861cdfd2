// Helper of installer/test_package.sh (node, no test runner): talks to an installed
// chorus-manager with the same unmodified node-eventstore-client the e2e tests use.
//   node test_client.mjs free-ports N            N free TCP ports on 127.0.0.1 (below 32768)
//   node test_client.mjs ports-free P1 P2 ...     exit 0 if every port can be bound
//   node test_client.mjs wait-cluster IP PORT S   gossip on IP:PORT shows 1 Leader, 2 Followers
//   node test_client.mjs write-read IP PORT [PW]  write an event with gossip seed IP:PORT, read it
//                                                 (as admin, password PW, else changeit)
// CHORUS_E2E_DIR names tests/e2e, whose node_modules hold the client.
import net from 'node:net';
import path from 'node:path';
import { createRequire } from 'node:module';
import { randomUUID } from 'node:crypto';

const [mode, ...args] = process.argv.slice(2);

function bindable(port) {
  return new Promise((resolve) => {
    const s = net.createServer();
    s.once('error', () => resolve(false));
    s.listen({ port, host: '127.0.0.1', exclusive: true }, () => s.close(() => resolve(true)));
  });
}

// Ports below Linux's ephemeral range (32768-60999), so that no outgoing connection takes one
// between this check and the node's bind.
async function freePorts(n) {
  const ports = [];
  let port = 20000 + Math.floor(Math.random() * 10000);
  while (ports.length < n && port < 32768) {
    if (await bindable(port)) ports.push(port);
    port += 1;
  }
  if (ports.length < n) throw new Error('not enough free ports below 32768');
  return ports;
}

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

async function waitCluster(ip, port, seconds) {
  const deadline = Date.now() + seconds * 1000;
  let last = 'no answer';
  while (Date.now() < deadline) {
    try {
      const res = await fetch(`http://${ip}:${port}/gossip?format=json`,
        { signal: AbortSignal.timeout(2000) });
      const g = await res.json();
      const nodes = g.members.filter((m) => m.state !== 'Manager' && m.isAlive);
      const states = nodes.map((m) => m.state).sort();
      last = JSON.stringify(g.members.map((m) => m.state));
      if (states.join(',') === 'Follower,Follower,Leader' && g.members[0].state === 'Leader') {
        console.log(`cluster formed: ${last}`);
        return 0;
      }
    } catch (e) {
      last = String(e.message || e);
    }
    await sleep(250);
  }
  console.error(`no cluster of one Leader and two Followers within ${seconds} s; last: ${last}`);
  return 1;
}

async function writeRead(ip, port, password = 'changeit') {
  const require = createRequire(path.join(process.env.CHORUS_E2E_DIR, 'package.json'));
  const es = require('node-eventstore-client');
  const conn = es.createConnection({
    log: new es.NoopLogger(), maxReconnections: 20, reconnectionDelay: 200, maxRetries: 10,
    operationTimeout: 15000, failOnNoServerResponse: true, gossipTimeout: 1000,
    maxDiscoverAttempts: 20,
  }, [new es.GossipSeed({ host: ip, port: Number(port) })], 'installer-test');
  conn.on('error', () => {});
  try {
    await new Promise((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error('client did not connect in 20 s')), 20000);
      conn.once('connected', () => { clearTimeout(timer); resolve(); });
      conn.connect().catch(reject);
    });
    const stream = `installer-${randomUUID().slice(0, 8)}`;
    const admin = new es.UserCredentials('admin', password);
    const event = es.createJsonEventData(randomUUID(), { installed: true }, null, 'Installed');
    await conn.appendToStream(stream, es.expectedVersion.noStream, [event], admin);
    const slice = await conn.readStreamEventsForward(stream, 0, 10, true, admin);
    const got = slice.events.map((e) => JSON.parse(e.event.data.toString()));
    if (slice.status !== 'success' || got.length !== 1 || got[0].installed !== true) {
      console.error(`read back ${slice.status} ${JSON.stringify(got)}`);
      return 1;
    }
    console.log(`wrote and read ${stream} through the gossip seed ${ip}:${port}`);
    return 0;
  } finally {
    try { conn.close(); } catch {}
  }
}

let code = 2;
if (mode === 'free-ports') {
  console.log((await freePorts(Number(args[0]))).join(' '));
  code = 0;
} else if (mode === 'ports-free') {
  const ok = await Promise.all(args.map((p) => bindable(Number(p))));
  code = ok.every(Boolean) ? 0 : 1;
} else if (mode === 'wait-cluster') {
  code = await waitCluster(args[0], args[1], Number(args[2] || 60));
} else if (mode === 'write-read') {
  code = await writeRead(args[0], args[1], args[2]);
} else {
  console.error(`unknown mode ${mode}`);
}
process.exit(code);
