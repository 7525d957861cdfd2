// Does a worker's gossip client skip the certificate name check when the peer's TLS handshake
// answer is slower than its timeout part (gossip timeout 500 ms / 3)? A peer with a certificate of
// the trusted CA that names 127.0.0.9 only, on 127.0.0.1, behind a proxy that delays the server's
// first bytes by DELAY ms. Counts HTTP requests that reach the peer (there must be none).
import fs from 'node:fs';
import https from 'node:https';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { Worker, waitFor } from '/work/wt/index/tests/e2e/lib/harness.mjs';
import { testCertificates, makeNodeCertificate } from '/work/wt/index/tests/e2e/lib/tls.mjs';

const delay = Number(process.argv[2] || 0);
const m = testCertificates();
const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'ci3-tlsname-'));
fs.copyFileSync(m.caFile, path.join(dir, 'main.crt'));
fs.copyFileSync(path.join(m.dir, 'ca.key'), path.join(dir, 'main.key'));
makeNodeCertificate(dir, 'wrongname', 'main', 'IP:127.0.0.9');
const counts = { requests: 0, connections: 0 };
const server = https.createServer({ cert: fs.readFileSync(path.join(dir, 'wrongname.crt')),
  key: fs.readFileSync(path.join(dir, 'wrongname.key')), ca: m.ca, requestCert: true,
  rejectUnauthorized: true }, (req, res) => {
  counts.requests += 1; req.resume();
  res.writeHead(200, { 'content-type': 'application/json' }); res.end('{"members":[]}');
});
await new Promise((r) => server.listen(0, '127.0.0.1', r));
// The proxy: client bytes go straight through; the server's first chunk waits `delay` ms.
const proxy = net.createServer((c) => {
  counts.connections += 1;
  const s = net.connect(server.address().port, '127.0.0.1');
  let first = true;
  c.on('data', (d) => s.write(d));
  s.on('data', (d) => {
    if (first) { first = false; s.pause(); setTimeout(() => { c.write(d); s.resume(); }, delay); }
    else c.write(d);
  });
  const end = () => { c.destroy(); s.destroy(); };
  c.on('error', end); s.on('error', end); c.on('close', end); s.on('close', end);
});
await new Promise((r) => proxy.listen(0, '127.0.0.1', r));
const w = new Worker({ memDb: true, tls: true, extraArgs: ['--cluster-size=3',
  '--discover-via-dns=false', `--gossip-seed=127.0.0.1:${proxy.address().port}`,
  '--gossip-interval-ms', '100'] });
try {
  await w.start();
  await waitFor(() => counts.connections > 10, { timeoutMs: 30000, what: '10 gossip connections' });
  console.log(`delay ${delay} ms: ${counts.connections} connections, ${counts.requests} requests reached the wrongly named peer`);
} finally {
  await w.cleanup(); proxy.close(); server.close();
  fs.rmSync(dir, { recursive: true, force: true });
}
process.exit(0);
