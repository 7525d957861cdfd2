// TLS for the system tests: a CA and a node certificate (IP SANs 127.0.0.1-127.0.0.20 and
// localhost, usable as server and client certificate) made with `openssl` once per test process
// into a temporary folder that is removed at exit — no key is ever committed. CHORUS_TEST_TLS=1
// switches the harness to TLS mode: every worker and manager starts with the certificates, the
// clients use the secure TCP port and HTTPS. httpFetch() is fetch() for http:// and, for
// https://, a node:https request that trusts the test CA and presents the node certificate (the
// internal HTTP ports want one).
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import https from 'node:https';
import os from 'node:os';
import path from 'node:path';

export const TLS = process.env.CHORUS_TEST_TLS === '1';
export const scheme = TLS ? 'https' : 'http';

// IP SANs of the shared test certificate: every loopback address the tests use.
const kSanHostsMax = 20;

let material;

function openssl(args, cwd) {
  execFileSync('openssl', args, { cwd, stdio: ['ignore', 'ignore', 'pipe'] });
}

// Makes a CA (`name`.crt/.key) in `dir`.
export function makeCa(dir, name = 'ca', subject = '/CN=Chorus e2e CA') {
  openssl(['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes',
    '-keyout', `${name}.key`, '-out', `${name}.crt`, '-days', '2', '-subj', subject,
    '-addext', 'basicConstraints=critical,CA:TRUE',
    '-addext', 'keyUsage=critical,keyCertSign,cRLSign'], dir);
}

// Makes a certificate `name`.crt/.key in `dir`, signed by the CA `ca` of that folder.
export function makeNodeCertificate(dir, name, ca = 'ca', sans = defaultSans()) {
  fs.writeFileSync(path.join(dir, `${name}.ext`),
    `subjectAltName=${sans}\nextendedKeyUsage=serverAuth,clientAuth\n` +
    'basicConstraints=CA:FALSE\nkeyUsage=critical,digitalSignature,keyEncipherment\n');
  openssl(['req', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes',
    '-keyout', `${name}.key`, '-out', `${name}.csr`, '-subj', `/CN=${name}`], dir);
  openssl(['x509', '-req', '-in', `${name}.csr`, '-CA', `${ca}.crt`, '-CAkey', `${ca}.key`,
    '-CAcreateserial', '-days', '2', '-extfile', `${name}.ext`, '-out', `${name}.crt`], dir);
}

function defaultSans() {
  const ips = Array.from({ length: kSanHostsMax }, (_, i) => `IP:127.0.0.${i + 1}`);
  return [...ips, 'DNS:localhost'].join(',');
}

// The shared test certificates: { dir, rootsDir, caFile, certFile, keyFile, ca, cert, key }.
export function testCertificates() {
  if (material) return material;
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'chorus-e2e-tls-'));
  process.on('exit', () => fs.rmSync(dir, { recursive: true, force: true }));
  const rootsDir = path.join(dir, 'roots');
  fs.mkdirSync(rootsDir);
  makeCa(rootsDir);
  makeNodeCertificate(rootsDir, 'node');
  // The roots folder holds only the CA certificate; the node's files live beside it.
  for (const f of ['node.crt', 'node.key']) fs.renameSync(path.join(rootsDir, f), path.join(dir, f));
  for (const f of fs.readdirSync(rootsDir)) {
    if (f !== 'ca.crt' && f !== 'ca.key') fs.rmSync(path.join(rootsDir, f));
  }
  // The CA key is not needed by anyone after signing.
  fs.renameSync(path.join(rootsDir, 'ca.key'), path.join(dir, 'ca.key'));
  material = {
    dir, rootsDir,
    caFile: path.join(rootsDir, 'ca.crt'),
    certFile: path.join(dir, 'node.crt'),
    keyFile: path.join(dir, 'node.key'),
  };
  material.ca = fs.readFileSync(material.caFile);
  material.cert = fs.readFileSync(material.certFile);
  material.key = fs.readFileSync(material.keyFile);
  return material;
}

// The worker options that turn TLS on with the test certificates.
export function workerTlsArgs() {
  const m = testCertificates();
  return ['--certificate-file', m.certFile, '--certificate-private-key-file', m.keyFile,
    '--trusted-root-certificates-path', m.rootsDir];
}

// fetch() for http://; for https:// a request that trusts the test CA and presents the test
// certificate (`tls` overrides those node:https options). Supports method, headers, body and
// signal; answers { status, ok, headers.get, text(), json(), body.cancel() } at the headers.
export async function httpFetch(url, init = {}) {
  if (!url.startsWith('https:')) return fetch(url, init);
  const m = testCertificates();
  const { method = 'GET', headers = {}, body, signal, tls = {} } = init;
  return new Promise((resolve, reject) => {
    const req = https.request(url, { method, headers, ca: m.ca, cert: m.cert, key: m.key, signal,
      ...tls }, (res) => {
      // Resolves at the headers, as fetch() does; the body is read on demand, whole or chunk by
      // chunk through body.getReader() as with fetch() (or cancelled, for endless streams such
      // as a log follow).
      const unread = [];
      const readers = [];
      let ended = false;
      const body = new Promise((done, fail) => {
        const chunks = [];
        res.on('data', (c) => {
          chunks.push(c);
          if (readers.length) readers.shift()({ value: c, done: false });
          else unread.push(c);
        });
        res.on('error', fail);
        res.on('end', () => {
          ended = true;
          while (readers.length) readers.shift()({ value: undefined, done: true });
          done(Buffer.concat(chunks).toString('utf8'));
        });
      });
      body.catch(() => {});
      const read = () => {
        if (unread.length) return Promise.resolve({ value: unread.shift(), done: false });
        if (ended) return Promise.resolve({ value: undefined, done: true });
        return new Promise((r) => readers.push(r));
      };
      const cancel = async () => { res.destroy(); };
      resolve({
        status: res.statusCode,
        ok: res.statusCode >= 200 && res.statusCode < 300,
        headers: { get: (name) => res.headers[name.toLowerCase()] ?? null },
        text: () => body,
        json: async () => JSON.parse(await body),
        body: { cancel, getReader: () => ({ read, cancel }) },
      });
    });
    req.on('error', reject);
    if (body !== undefined) req.write(body);
    req.end();
  });
}

// An HTTPS server on 127.0.0.1 (port 0) that wants a client certificate of the test CA, answers
// every request with an empty gossip, and counts the connections and requests that reach it.
export async function countingServer(cert, key) {
  const m = testCertificates();
  const counts = { requests: 0, connections: 0 };
  const server = https.createServer({ cert, key, ca: m.ca, requestCert: true,
    rejectUnauthorized: true }, (req, res) => {
    counts.requests += 1;
    req.resume();
    res.writeHead(200, { 'content-type': 'application/json' });
    res.end('{"members":[]}');
  });
  server.on('connection', () => { counts.connections += 1; });
  await new Promise((resolve) => server.listen(0, '127.0.0.1', resolve));
  return { server, counts, port: server.address().port };
}
