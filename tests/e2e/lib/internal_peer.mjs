// A stand-in cluster member for the security tests: it speaks the internal TCP protocol
// (4-byte little-endian length + chorus.internal.ReplicationMessage from common/proto, encoded
// with protobufjs) and the cluster-secret handshake and gossip signatures (node:crypto HMAC),
// so a test can act as an outsider without the secret or as an insider with it.
import crypto from 'node:crypto';
import fs from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import protobuf from 'protobufjs';

const protoFile = path.resolve(import.meta.dirname, '../../../common/proto/replication.proto');
const root = protobuf.loadSync(protoFile);
export const ReplicationMessage = root.lookupType('chorus.internal.ReplicationMessage');

export const INT64_MAX = '9223372036854775807';
const HELLO = Buffer.from('CHORUS-AUTH-1\n');
const NONCE_BYTES = 32;
const MAC_BYTES = 32;

export function readSecret(file) { return fs.readFileSync(file, 'utf8').trim(); }

// The length-prefixed field list that every proof covers (common/cluster_auth.cpp).
function fields(parts) {
  return Buffer.concat(parts.map((p) => {
    const b = Buffer.isBuffer(p) ? p : Buffer.from(String(p));
    return Buffer.concat([Buffer.from(`${b.length}:`), b]);
  }));
}

const hmac = (key, data) => crypto.createHmac('sha256', key).update(data).digest();

// The X-Chorus-Auth header of a gossip request signed with `key`.
export function signRequest(key, method, p, body, nowMs = Date.now()) {
  const nonce = crypto.randomBytes(NONCE_BYTES).toString('hex');
  const mac = hmac(key, fields(['chorus-gossip-request-1', method, p, String(nowMs), nonce, body]));
  return `t=${nowMs},n=${nonce},m=${mac.toString('hex')}`;
}

export function frame(message) {
  const body = ReplicationMessage.encode(ReplicationMessage.create(message)).finish();
  const head = Buffer.alloc(4);
  head.writeUInt32LE(body.length);
  return Buffer.concat([head, Buffer.from(body)]);
}

// One connection to a node's internal TCP port. `closed` resolves when the node hangs up.
export class InternalPeer {
  constructor(host, port) {
    this.socket = net.connect({ host, port });
    this.socket.on('error', () => {});
    this.received = Buffer.alloc(0);
    this.waiters = [];
    this.socket.on('data', (d) => {
      this.received = Buffer.concat([this.received, d]);
      this.wake();
    });
    this.closed = new Promise((resolve) => this.socket.once('close', () => {
      this.isClosed = true;
      this.wake();
      resolve();
    }));
    this.connected = new Promise((resolve, reject) => {
      this.socket.once('connect', resolve);
      this.socket.once('error', reject);
    });
  }

  wake() { for (const w of this.waiters.splice(0)) w(); }

  // The next `n` bytes the node sends, or null if it hangs up first.
  async read(n, timeoutMs = 5000) {
    const deadline = Date.now() + timeoutMs;
    while (this.received.length < n) {
      if (this.isClosed) return null;
      if (Date.now() > deadline) throw new Error(`no ${n} bytes from the node in ${timeoutMs} ms`);
      await new Promise((r) => { this.waiters.push(r); setTimeout(r, 50); });
    }
    const out = this.received.subarray(0, n);
    this.received = this.received.subarray(n);
    return out;
  }

  write(bytes) { if (!this.isClosed) this.socket.write(bytes); }
  send(message) { this.write(frame(message)); }

  // The connecting side of the cluster-secret handshake as node `selfId`; true when the node's
  // proof was right and ours was sent (the node then reads our messages).
  async handshake(key, cluster, selfId) {
    await this.connected;
    const nonce = crypto.randomBytes(NONCE_BYTES);
    const id = Buffer.from(selfId);
    this.write(Buffer.concat([HELLO, nonce, Buffer.from([id.length]), id]));
    const answer = await this.read(NONCE_BYTES + MAC_BYTES);
    if (!answer) return false;
    const serverNonce = answer.subarray(0, NONCE_BYTES);
    const expected = hmac(key, fields(['chorus-int-tcp-server-1', cluster, id, nonce, serverNonce]));
    if (!crypto.timingSafeEqual(expected, answer.subarray(NONCE_BYTES))) return false;
    this.write(hmac(key, fields(['chorus-int-tcp-client-1', cluster, id, nonce, serverNonce])));
    return true;
  }

  // Waits until the node closes the connection; false if it is still open after timeoutMs.
  async closedWithin(timeoutMs = 5000) {
    let timer;
    const result = await Promise.race([
      this.closed.then(() => true),
      new Promise((r) => { timer = setTimeout(() => r(false), timeoutMs); }),
    ]);
    clearTimeout(timer);
    return result;
  }

  destroy() { this.socket.destroy(); }
}
