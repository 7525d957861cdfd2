// A raw connection to a worker's external TCP port that speaks frames by hand (int32 LE length,
// command, flags, 16-byte correlation id, optional credentials, payload), for tests that send
// what no client library would: hostile frames, partial frames, sockets that stop reading.
import net from 'node:net';
import { randomBytes } from 'node:crypto';

export const DEADLINE_MS = 5000;

export const CMD = {
  HeartbeatRequest: 0x01, HeartbeatResponse: 0x02, Ping: 0x03, Pong: 0x04, WriteEvents: 0x82,
  ReadEvent: 0xb0, SubscribeToStream: 0xc0, SubscriptionConfirmation: 0xc1,
  StreamEventAppeared: 0xc2, BadRequest: 0xf0, NotAuthenticated: 0xf4,
};
export const EMPTY_GUID = Buffer.alloc(16);

// A raw connection that speaks frames: int32 LE length, command, flags, 16-byte correlation id,
// optional credentials, payload.
export class RawConn {
  static open(port) {
    return new Promise((resolve, reject) => {
      const socket = net.connect({ port, host: '127.0.0.1' });
      socket.once('connect', () => resolve(new RawConn(socket)));
      socket.once('error', reject);
    });
  }

  constructor(socket) {
    this.socket = socket;
    this.buffer = Buffer.alloc(0);
    this.packages = [];
    this.waiters = [];
    this.isClosed = false;
    socket.on('data', (d) => { this.buffer = Buffer.concat([this.buffer, d]); this.split(); });
    socket.on('error', () => {});
    socket.on('close', () => { this.isClosed = true; this.wake(); });
  }

  split() {
    while (this.buffer.length >= 4) {
      const n = this.buffer.readInt32LE(0);
      if (this.buffer.length < 4 + n) break;
      const frame = this.buffer.subarray(4, 4 + n);
      this.buffer = this.buffer.subarray(4 + n);
      this.packages.push({
        command: frame[0], flags: frame[1], correlationId: Buffer.from(frame.subarray(2, 18)),
        payload: Buffer.from(frame.subarray(18)),
      });
    }
    this.wake();
  }

  wake() { for (const w of this.waiters.splice(0)) w(); }

  // Sends one package; returns its (random) correlation id.
  send(command, { payload = Buffer.alloc(0), flags = 0, login, password } = {}) {
    const correlationId = randomBytes(16);
    const parts = [Buffer.from([command, flags | (login !== undefined ? 0x01 : 0)]), correlationId];
    if (login !== undefined) {
      parts.push(Buffer.from([Buffer.byteLength(login)]), Buffer.from(login));
      parts.push(Buffer.from([Buffer.byteLength(password)]), Buffer.from(password));
    }
    parts.push(payload);
    const body = Buffer.concat(parts);
    const prefix = Buffer.alloc(4);
    prefix.writeInt32LE(body.length, 0);
    this.socket.write(Buffer.concat([prefix, body]));
    return correlationId;
  }

  sendRaw(bytes) { this.socket.write(bytes); }

  // Resolves when pred() is truthy (re-checked on every package or close), rejects at the deadline.
  async until(pred, what, timeoutMs = DEADLINE_MS) {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const v = pred();
      if (v) return v;
      const left = deadline - Date.now();
      if (left <= 0) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
      await new Promise((resolve) => {
        const timer = setTimeout(resolve, left);
        this.waiters.push(() => { clearTimeout(timer); resolve(); });
      });
    }
  }

  // The next package that is not a server heartbeat request.
  async next(what = 'a package') {
    const pick = () => {
      while (this.packages.length > 0) {
        const p = this.packages.shift();
        if (p.command !== 0x01) return p;
      }
      if (this.isClosed) throw new Error(`connection closed while waiting for ${what}`);
      return undefined;
    };
    return this.until(pick, what);
  }

  closed() { return this.until(() => this.isClosed, 'the server to close the connection'); }
  end() { this.socket.destroy(); }
}
