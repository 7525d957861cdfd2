// Gossip as the client generations see it: a reader that does what an EventStore-5-era client
// (photon-pump's discovery) does with GET /gossip, a relay that serves a real node's or
// manager's gossip with the members in reverse order (so a client can only find the leader by
// its state name, not by its place), and a recorder of the raw gossip requests clients send.
// Each server listens on 127.0.0.1 on a port of its own and is closed by its close().
import http from 'node:http';

// EventStore 5's VNodeState, as v5 clients declare it (photon-pump's NodeState enum, the ranks
// of node-eventstore-client 0.2.x): a name outside it is an error for such a client.
export const V5_STATES = ['Initializing', 'Unknown', 'PreReplica', 'CatchingUp', 'Clone', 'Slave',
  'PreMaster', 'Master', 'Manager', 'ShuttingDown', 'Shutdown'];
const V5_ELIGIBLE = ['Clone', 'Slave', 'Master'];

// Reads http://host:port/gossip as photon-pump does (no ?format, aiohttp's headers), looks every
// member's state up in the v5 enum (throws on a name it lacks, as photon-pump's KeyError), and
// picks the eligible alive member of the highest rank, the first of equals (Python's max).
// Returns { members, best, masters } where masters are the alive members in state Master.
export async function readGossipAsV5Client(host, port, timeoutMs = 2000) {
  const res = await fetch(`http://${host}:${port}/gossip`, {
    headers: { Accept: '*/*', 'User-Agent': 'Python/3.11 aiohttp/3.9.5' },
    signal: AbortSignal.timeout(timeoutMs),
  });
  if (res.status !== 200) throw new Error(`GET /gossip on ${host}:${port} answered ${res.status}`);
  const doc = await res.json();
  const members = doc.members.map((m) => {
    const rank = V5_STATES.indexOf(m.state);
    if (rank < 0) throw new Error(`state '${m.state}' is not an EventStore 5 state (KeyError)`);
    return { ...m, rank };
  });
  const eligible = members.filter((m) => m.isAlive && V5_ELIGIBLE.includes(m.state));
  const best = eligible.reduce((a, m) => (a === undefined || m.rank > a.rank ? m : a), undefined);
  return { members, best, masters: members.filter((m) => m.isAlive && m.state === 'Master') };
}

function listen(server) {
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => resolve(server.address().port));
  });
}

// Serves GET /gossip with the upstream's current document (fetched per request from
// http://upstream/gossip?format=json), members reversed. { port, close(), served: documents }.
export async function startReversingRelay(upstreamHost, upstreamPort) {
  const served = [];
  const server = http.createServer(async (req, res) => {
    try {
      const up = await fetch(`http://${upstreamHost}:${upstreamPort}/gossip?format=json`,
        { signal: AbortSignal.timeout(1000) });
      const doc = await up.json();
      doc.members.reverse();
      served.push(doc);
      res.writeHead(up.status, { 'Content-Type': 'application/json' });
      res.end(JSON.stringify(doc));
    } catch (e) {
      res.writeHead(502, { 'Content-Type': 'text/plain' });
      res.end(String(e));
    }
  });
  server.keepAliveTimeout = 100;
  const port = await listen(server);
  return { port, served, close: () => new Promise((r) => { server.closeAllConnections(); server.close(r); }) };
}

// Records each request's method, URL and headers (raw names, in order) and answers 503, so a
// client's discovery fails fast after having shown its request. { port, requests, close() }.
export async function startGossipRecorder() {
  const requests = [];
  const server = http.createServer((req, res) => {
    const headers = [];
    for (let i = 0; i < req.rawHeaders.length; i += 2) {
      headers.push([req.rawHeaders[i], req.rawHeaders[i + 1]]);
    }
    requests.push({ method: req.method, url: req.url, httpVersion: req.httpVersion, headers });
    res.writeHead(503, { 'Content-Type': 'text/plain', Connection: 'close' });
    res.end('recording only');
  });
  const port = await listen(server);
  return { port, requests, close: () => new Promise((r) => { server.closeAllConnections(); server.close(r); }) };
}
