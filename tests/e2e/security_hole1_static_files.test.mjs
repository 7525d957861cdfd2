// Goal: prove hole 1 of issue 10 is closed: the manager's dashboard file serving never returns a
// file outside its web root, whatever raw path is sent (absolute, "//", %2F, %2e%2e, "..",
// backslashes, NUL, a symlink out of the root), and the manager keeps serving afterwards.
// Requests go over a raw socket because fetch() normalises paths before sending them.
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { Manager } from './manager_harness.mjs';

const dir = fs.realpathSync(fs.mkdtempSync(path.join(os.tmpdir(), 'chorus-hole1-')));
const webRoot = path.join(dir, 'web');
const secretFile = path.join(dir, 'secret.txt');
const marker = `SECRET-${process.pid}-${Date.now()}`;
const indexHtml = '<!doctype html><title>dashboard</title>';
let manager;

after(async () => {
  await manager?.cleanup();
  fs.rmSync(dir, { recursive: true, force: true });
});

// Sends `GET <rawPath>` byte for byte and resolves { status, body }.
function rawGet(port, rawPath) {
  return new Promise((resolve, reject) => {
    const socket = net.connect({ host: '127.0.0.1', port });
    const chunks = [];
    socket.setTimeout(5000, () => socket.destroy(new Error(`no answer to ${rawPath}`)));
    socket.on('connect', () => socket.write(Buffer.concat([
      Buffer.from('GET '), Buffer.from(rawPath, 'latin1'),
      Buffer.from(' HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n')])));
    socket.on('data', (d) => chunks.push(d));
    socket.on('error', reject);
    socket.on('end', () => {
      const text = Buffer.concat(chunks).toString('latin1');
      const status = Number(/^HTTP\/1\.[01] (\d{3})/.exec(text)?.[1] ?? 0);
      resolve({ status, body: text.slice(text.indexOf('\r\n\r\n') + 4) });
    });
  });
}

test('hole 1: no raw path reads a file outside the web root', { timeout: 60000 }, async () => {
  fs.mkdirSync(path.join(webRoot, 'assets'), { recursive: true });
  fs.writeFileSync(path.join(webRoot, 'index.html'), indexHtml);
  fs.writeFileSync(path.join(webRoot, 'assets', 'app.js'), 'console.log(1)');
  fs.writeFileSync(secretFile, marker);
  fs.symlinkSync(secretFile, path.join(webRoot, 'leak.txt'));
  fs.symlinkSync(dir, path.join(webRoot, 'up'));
  manager = new Manager({
    nodes: [{ name: 'n1', options: { MemDb: true } }],
    settings: { WebRoot: webRoot },
  });
  await manager.start();
  const port = manager.extHttpPort;

  // Sanity: the dashboard itself is served, so a refusal below is not an outage.
  assert.equal((await rawGet(port, '/assets/app.js')).body, 'console.log(1)');

  const enc = (s) => s.split('/').map(encodeURIComponent).join('%2F');
  const hostile = [
    `/${secretFile}`, // "//tmp/.../secret.txt": substr(1) made this absolute
    `/%2F${secretFile.slice(1)}`,
    `/${enc(secretFile)}`,
    '//etc/passwd', '/%2Fetc/passwd', '/%2fetc%2fpasswd',
    '/../secret.txt', '/../../../../../../etc/passwd', '/assets/../../secret.txt',
    '/%2e%2e/secret.txt', '/%2E%2E%2Fsecret.txt', '/..%2fsecret.txt', '/%252e%252e/secret.txt',
    '/..\\secret.txt', '/%5C..%5Csecret.txt', '/assets\\..\\..\\secret.txt',
    '/index.html%00/../../secret.txt', '/%00/../secret.txt', '/leak.txt', '/up/secret.txt',
    '/up/web/../secret.txt', `/up/${path.basename(secretFile)}`,
  ];
  for (const raw of hostile) {
    const r = await rawGet(port, raw);
    assert.ok(!r.body.includes(marker), `${raw} returned the secret file`);
    assert.ok(!r.body.includes('root:x:0:0'), `${raw} returned /etc/passwd`);
    // Refused, or at most the single-page dashboard's own index.html.
    assert.ok(r.status !== 200 || r.body === indexHtml, `${raw}: ${r.status} ${r.body}`);
  }
  // The symlink and absolute cases are refused outright, not mapped to the index.
  for (const raw of [`/${secretFile}`, '/leak.txt', '/up/secret.txt', '/../secret.txt']) {
    assert.equal((await rawGet(port, raw)).status, 404, raw);
  }

  // The manager keeps serving.
  assert.equal((await rawGet(port, '/')).body, indexHtml);
  assert.equal((await manager.fetch('/health/live')).status, 204);
});
