// Goal: prove that a worker answers malformed or hostile TCP input as PROTOCOL.md A1/A6 say —
// garbage bytes, a truncated frame, a 2 GB length prefix, an unknown command, an undecodable
// protobuf payload, the TrustedWrite flag and wrong credentials each get the documented answer
// (BadRequest / NotAuthenticated with the request's correlation id) or a closed connection — and
// that after each one the node still serves others: a fresh connection gets Pong for a Ping and an
// unmodified client can append.
import { describe, test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { startWorker } from './lib/harness.mjs';
import { RawConn, CMD, EMPTY_GUID } from './lib/raw_tcp.mjs';
import { connect, closeQuietly, streamName, makeEvents, NO_STREAM } from './lib/es.mjs';

const T = { timeout: 60000 };

// ReadEvent { event_stream_id = stream, event_number = 0, resolve_link_tos = false,
// require_master = true }, encoded by hand (field tags 0x0a, 0x10, 0x18, 0x20).
function readEventPayload(stream) {
  const s = Buffer.from(stream);
  return Buffer.concat([Buffer.from([0x0a, s.length]), s, Buffer.from([0x10, 0, 0x18, 0, 0x20, 1])]);
}

describe('bad input over TCP', () => {
  let w;

  before(async () => { w = await startWorker({ memDb: true }); });
  after(async () => { await w?.cleanup(); });

  // The node keeps serving: a fresh raw connection gets Pong, and a real client can append.
  async function assertStillServing() {
    const raw = await RawConn.open(w.tcpPort);
    try {
      const id = raw.send(CMD.Ping);
      const pong = await raw.next('Pong');
      assert.equal(pong.command, CMD.Pong);
      assert.deepEqual(pong.correlationId, id);
    } finally {
      raw.end();
    }
    const conn = await connect(w);
    try {
      const result = await conn.appendToStream(streamName('after-bad-input'), NO_STREAM,
        makeEvents(1));
      assert.equal(Number(result.nextExpectedVersion), 0);
    } finally {
      closeQuietly(conn);
    }
  }

  test('garbage bytes: the connection is closed, the node goes on', T, async () => {
    const raw = await RawConn.open(w.tcpPort);
    raw.sendRaw(Buffer.from('GET / HTTP/1.1\r\nHost: chorus\r\n\r\n'));
    await raw.closed();
    for (const p of raw.packages) {
      assert.equal(p.command, CMD.BadRequest);
      assert.deepEqual(p.correlationId, EMPTY_GUID);
    }
    await assertStillServing();
  });

  test('a truncated frame and then a close does not disturb the node', T, async () => {
    const raw = await RawConn.open(w.tcpPort);
    const prefix = Buffer.alloc(4);
    prefix.writeInt32LE(100, 0);
    raw.sendRaw(Buffer.concat([prefix, Buffer.from([CMD.Ping, 0]), randomBytes(10)]));
    raw.end();
    await assertStillServing();
  });

  test('a 2 GB length prefix closes the connection', T, async () => {
    const raw = await RawConn.open(w.tcpPort);
    raw.sendRaw(Buffer.from([0x00, 0x00, 0x00, 0x80]));
    await raw.closed();
    // If the connection-wide BadRequest made it out first, it carries the empty GUID.
    for (const p of raw.packages) {
      assert.equal(p.command, CMD.BadRequest);
      assert.deepEqual(p.correlationId, EMPTY_GUID);
    }
    await assertStillServing();
  });

  test('an unknown command gets BadRequest with its correlation id; the connection stays', T,
    async () => {
      const raw = await RawConn.open(w.tcpPort);
      try {
        const id = raw.send(0x5a);
        const reply = await raw.next('BadRequest');
        assert.equal(reply.command, CMD.BadRequest);
        assert.deepEqual(reply.correlationId, id);
        const pingId = raw.send(CMD.Ping);
        const pong = await raw.next('Pong on the same connection');
        assert.equal(pong.command, CMD.Pong);
        assert.deepEqual(pong.correlationId, pingId);
      } finally {
        raw.end();
      }
      await assertStillServing();
    });

  test('an undecodable protobuf payload gets BadRequest "Could not unwrap ..."', T, async () => {
    const raw = await RawConn.open(w.tcpPort);
    try {
      const id = raw.send(CMD.WriteEvents, { payload: Buffer.from([0xff, 0xff, 0xff]) });
      const reply = await raw.next('BadRequest');
      assert.equal(reply.command, CMD.BadRequest);
      assert.deepEqual(reply.correlationId, id);
      assert.equal(reply.payload.toString(),
        'Could not unwrap network package for command WriteEvents.');
      assert.equal(raw.isClosed, false);
    } finally {
      raw.end();
    }
    await assertStillServing();
  });

  test('the TrustedWrite flag gets BadRequest and a closed connection', T, async () => {
    const raw = await RawConn.open(w.tcpPort);
    const id = raw.send(CMD.ReadEvent, { payload: readEventPayload('trusted'), flags: 0x02 });
    const reply = await raw.next('BadRequest');
    assert.equal(reply.command, CMD.BadRequest);
    assert.deepEqual(reply.correlationId, id);
    await raw.closed();
    await assertStillServing();
  });

  test('wrong credentials get NotAuthenticated with the request correlation id', T, async () => {
    const raw = await RawConn.open(w.tcpPort);
    try {
      const id = raw.send(CMD.ReadEvent, {
        payload: readEventPayload('creds'), login: 'admin', password: 'wrong-password',
      });
      const reply = await raw.next('NotAuthenticated');
      assert.equal(reply.command, CMD.NotAuthenticated);
      assert.deepEqual(reply.correlationId, id);
      assert.equal(reply.payload.toString(), 'Not Authenticated');
      const pingId = raw.send(CMD.Ping);
      const pong = await raw.next('Pong on the same connection');
      assert.deepEqual(pong.correlationId, pingId);
    } finally {
      raw.end();
    }
    await assertStillServing();
  });
});
