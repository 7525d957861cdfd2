// Large-frame writer for bench/large_frames.sh: one raw connection to a node's external TCP port
// that sends one scenario's large frame again and again, each after the previous one's reply,
// for --duration-s seconds, and prints one JSON line: the writes, their replies (Success,
// InvalidTransaction, BadRequest, ...), each write's time from its first byte sent to its reply
// (p50 / max) and the MiB sent. Frames are built once per scenario; each send gets new event ids
// and a new correlation id, so no write is an idempotent retry of another.
// Scenarios: s<N> one event of N MiB; m<N> N events of 1 MiB; bad<N> a WriteEvents frame of N
// MiB whose payload is not a protobuf message (answered with a BadRequest, connection kept).
// --interval-ms N starts a write at most every N ms (a fixed offered load, so that a faster server
// is not also given more large writes to do); 0 (default) sends them back to back.
//   node bench/large_frames.mjs --port P --scenario s8 --duration-s 8 [--interval-ms 0]
//     [--host 127.0.0.1]
import net from 'node:net';
import { randomBytes, randomFillSync } from 'node:crypto';

const MiB = 1024 * 1024;
const kFrameBytesMax = 64 * MiB; // common/framing.hpp
const CMD = { WriteEvents: 0x82, WriteEventsCompleted: 0x83, BadRequest: 0xf0, NotHandled: 0xf1 };
const RESULTS = ['Success', 'PrepareTimeout', 'CommitTimeout', 'ForwardTimeout',
  'WrongExpectedVersion', 'StreamDeleted', 'InvalidTransaction', 'AccessDenied'];

function args() {
  const out = { host: '127.0.0.1', 'duration-s': '8', 'interval-ms': '0' };
  const argv = process.argv.slice(2);
  for (let i = 0; i < argv.length; i += 2) out[argv[i].replace(/^--/, '')] = argv[i + 1];
  if (!out.port || !out.scenario) {
    console.error('usage: large_frames.mjs --port P --scenario s8|m32|bad64 [--duration-s 8]');
    process.exit(2);
  }
  return out;
}

function varint(n) {
  const bytes = [];
  let v = BigInt(n);
  if (v < 0n) v += 1n << 64n;
  do {
    let b = Number(v & 0x7fn);
    v >>= 7n;
    if (v) b |= 0x80;
    bytes.push(b);
  } while (v);
  return Buffer.from(bytes);
}
const tag = (field, type) => varint((field << 3) | type);
const lengthDelimited = (field, bytes) => Buffer.concat([tag(field, 2), varint(bytes.length),
  bytes]);

// WriteEvents { stream, expected_version = -2 (any), events, require_master = false }, and the
// offsets of each event's 16 id bytes in it.
function writeEvents(stream, eventCount, eventBytes) {
  const data = Buffer.alloc(eventBytes, 0x61);
  const parts = [lengthDelimited(1, Buffer.from(stream)), tag(2, 0), varint(-2)];
  const idOffsets = [];
  let offset = parts.reduce((n, b) => n + b.length, 0);
  for (let i = 0; i < eventCount; ++i) {
    const body = [lengthDelimited(1, Buffer.alloc(16)), lengthDelimited(2, Buffer.from('Big')),
      tag(3, 0), varint(0), tag(4, 0), varint(0), tag(5, 2), varint(data.length)];
    const head = Buffer.concat(body);
    const event = [tag(3, 2), varint(head.length + data.length + 2), head];
    const prefix = Buffer.concat(event);
    // The id's bytes sit after the outer tag and length, then its own tag and length (1 + 1).
    idOffsets.push(offset + prefix.length - head.length + 2);
    parts.push(prefix, data, lengthDelimited(6, Buffer.alloc(0)));
    offset += prefix.length + data.length + 2;
  }
  parts.push(tag(4, 0), varint(0));
  return { payload: Buffer.concat(parts), idOffsets };
}

function frameOf(command, payload) {
  const head = Buffer.alloc(4 + 18);
  head.writeInt32LE(18 + payload.length, 0);
  head[4] = command;
  head[5] = 0;
  return { head, payload };
}

function build(scenario, stream) {
  const m = /^(s|m|bad)(\d+)$/.exec(scenario);
  if (!m) throw new Error(`unknown scenario ${scenario}`);
  const n = Number(m[2]);
  if (m[1] === 'bad') {
    // 0xFF bytes: field 31, wire type 7 (none exists), so protobuf refuses it at once.
    const payload = Buffer.alloc(Math.min(n * MiB, kFrameBytesMax) - 18, 0xff);
    return { ...frameOf(CMD.WriteEvents, payload), idOffsets: [] };
  }
  const { payload, idOffsets } = m[1] === 's' ? writeEvents(stream, 1, n * MiB - 256)
    : writeEvents(stream, n, MiB - 256);
  return { ...frameOf(CMD.WriteEvents, payload), idOffsets };
}

class Replies {
  constructor(socket) {
    this.socket = socket;
    this.chunks = [];
    this.bytes = 0;
    this.waiter = null;
    socket.on('data', (d) => { this.chunks.push(d); this.bytes += d.length; this.split(); });
  }

  split() {
    for (;;) {
      if (this.bytes < 4) return;
      const all = this.chunks.length === 1 ? this.chunks[0] : Buffer.concat(this.chunks);
      this.chunks = [all];
      const n = all.readInt32LE(0);
      if (all.length < 4 + n) return;
      const frame = all.subarray(4, 4 + n);
      this.chunks = [all.subarray(4 + n)];
      this.bytes = this.chunks[0].length;
      const reply = { command: frame[0], id: frame.subarray(2, 18), payload: frame.subarray(18) };
      if (reply.command === 0x01) {
        // The node's heartbeat request: answered, so that only the frames are measured.
        const response = Buffer.alloc(22);
        response.writeInt32LE(18, 0);
        response[4] = 0x02;
        reply.id.copy(response, 6);
        this.socket.write(response);
        continue;
      }
      if (this.waiter) this.waiter(reply);
    }
  }
}

// WriteEventsCompleted's result (field 1, a varint): its name.
function resultOf(reply) {
  if (reply.command === CMD.BadRequest) return 'BadRequest';
  if (reply.command === CMD.NotHandled) return 'NotHandled';
  if (reply.command !== CMD.WriteEventsCompleted) return `0x${reply.command.toString(16)}`;
  return reply.payload[0] === 0x08 ? RESULTS[reply.payload[1]] || `result ${reply.payload[1]}`
    : 'unparsed';
}

const percentile = (sorted, q) => sorted[Math.min(sorted.length - 1,
  Math.floor(q * sorted.length))];

async function main() {
  const o = args();
  const stream = `big-${o.scenario}-${randomBytes(4).toString('hex')}`;
  const frame = build(o.scenario, stream);
  const socket = net.connect({ host: o.host, port: Number(o.port) });
  socket.setNoDelay(true);
  await new Promise((resolve, reject) => { socket.once('connect', resolve); socket.once('error', reject); });
  socket.on('error', () => {});
  let closed = false;
  socket.on('close', () => { closed = true; });
  const replies = new Replies(socket);
  const results = {};
  const times = [];
  let sentBytes = 0;
  const deadline = Date.now() + Number(o['duration-s']) * 1000;
  const intervalMs = Number(o['interval-ms']);
  let nextAt = Date.now();
  while (Date.now() < deadline && !closed) {
    const wait = nextAt - Date.now();
    if (wait > 0) await new Promise((resolve) => setTimeout(resolve, wait));
    if (Date.now() >= deadline) break;
    nextAt = Date.now() + intervalMs;
    for (const at of frame.idOffsets) randomFillSync(frame.payload, at, 16);
    const id = randomBytes(16);
    id.copy(frame.head, 6);
    const started = process.hrtime.bigint();
    const reply = new Promise((resolve) => { replies.waiter = resolve; });
    socket.write(frame.head);
    socket.write(frame.payload);
    const timeout = new Promise((resolve) => setTimeout(() => resolve(null), 60000));
    const r = await Promise.race([reply, timeout]);
    if (!r) { results.timeout = (results.timeout || 0) + 1; break; }
    times.push(Number(process.hrtime.bigint() - started) / 1e6);
    sentBytes += frame.head.length + frame.payload.length;
    const name = resultOf(r);
    results[name] = (results[name] || 0) + 1;
  }
  socket.destroy();
  times.sort((a, b) => a - b);
  console.log(JSON.stringify({
    scenario: o.scenario, frame_bytes: frame.head.length + frame.payload.length,
    writes: times.length, results, closed,
    write_ms_p50: times.length ? +percentile(times, 0.5).toFixed(1) : null,
    write_ms_max: times.length ? +times[times.length - 1].toFixed(1) : null,
    mib_sent: +(sentBytes / MiB).toFixed(1),
  }));
}

main().catch((e) => { console.error(e); process.exit(1); });
