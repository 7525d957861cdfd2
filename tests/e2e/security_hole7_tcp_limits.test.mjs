// Goal: prove issue 10 hole 7's TCP limits on a real worker, each refusal leaving the node
// serving others and losing nothing: (1) partially received frames of all connections share one
// budget (kPartialFrameBytesBudget, 256 MiB): of five connections each sending 60 MiB of a 64 MiB
// frame, one is refused with a BadRequest and closed and the other four complete theirs; (2)
// connections beyond --ext-tcp-connections-max are closed at once and logged, and a freed slot
// serves again; (3) a subscriber that stops reading (but keeps answering heartbeats) is cut at the
// write deadline (kWriteTimeoutMs, 10 s) and its subscription freed, while a reading subscriber
// gets every event. Meanwhile an unmodified client appends and reads back every event.
import { describe, test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { startWorker, waitFor } from './lib/harness.mjs';
import { RawConn, CMD } from './lib/raw_tcp.mjs';
import {
  connect, closeQuietly, streamName, makeEvents, rawEvent, readAll, num, ANY,
} from './lib/es.mjs';

const MiB = 1024 * 1024;
const kFrameBytesMax = 64 * MiB; // common/framing.hpp
const kPartialFrameBytesBudget = 4 * kFrameBytesMax; // worker/tcp/limits.hpp
const kWriteTimeoutMs = 10000; // worker/tcp/limits.hpp
const T = { timeout: 120000 };

async function metric(w, name) {
  const text = await (await fetch(`http://127.0.0.1:${w.httpPort}/metrics`)).text();
  const line = text.split('\n').find((l) => l.startsWith(`${name} `));
  assert.ok(line, `no ${name} in /metrics`);
  return Number(line.split(' ')[1]);
}

async function expectPong(raw) {
  const id = raw.send(CMD.Ping);
  const pong = await raw.next('Pong');
  assert.equal(pong.command, CMD.Pong);
  assert.deepEqual(pong.correlationId, id);
}

// Appends `count` small events to a fresh stream while `during` runs, then reads them back.
async function appendsSurvive(conn, count, during) {
  const stream = streamName('hole7');
  const writes = (async () => {
    for (let i = 0; i < count; ++i) await conn.appendToStream(stream, ANY, makeEvents(1));
  })();
  await during();
  await writes;
  const { events } = await readAll(conn, stream);
  assert.equal(events.length, count, 'every appended event is read back');
}

describe('hole 7: TCP limits', () => {
  let w;
  let conn;

  before(async () => {
    // A long heartbeat timeout: the stalled subscriber's heartbeats come from this process's
    // timers, which a loaded machine can delay past the default second, and then the heartbeat
    // check, not the write deadline under test, would cut it.
    w = await startWorker({ memDb: true, extraArgs: ['--ext-tcp-heartbeat-timeout', '30000'] });
    conn = await connect(w);
  });
  after(async () => {
    closeQuietly(conn);
    await w?.cleanup();
  });

  test('a frame beyond the node-wide budget of partial frames closes only its connection', T,
    async () => {
      const frameBytes = kFrameBytesMax - 64;
      const sentBytes = 60 * MiB;
      const body = Buffer.alloc(frameBytes - 18, 0x70);
      const raws = [];
      await appendsSurvive(conn, 20, async () => {
        for (let i = 0; i < 5; ++i) {
          const raw = await RawConn.open(w.tcpPort);
          const header = Buffer.alloc(22);
          header.writeInt32LE(frameBytes, 0);
          header[4] = CMD.Ping;
          const id = randomBytes(16);
          id.copy(header, 6);
          raw.id = id;
          await new Promise((resolve) => raw.socket.write(header, resolve));
          await new Promise((resolve) => raw.socket.write(body.subarray(0, sentBytes - 22),
            resolve));
          raws.push(raw);
          // The node reads the connections in whatever order their bytes arrive: wait until it
          // holds all of this one's, or the tail of one could arrive after the fifth frame took
          // the budget, and both be refused.
          if (i < 4) {
            await waitFor(async () => (await metric(w, 'chorus_tcp_partial_frame_bytes')) ===
              (i + 1) * sentBytes, { timeoutMs: 30000, what: `frame ${i + 1} held in full` });
          }
        }
        // 5 x 60 MiB pass the 256 MiB budget once; after the refusal the other four fit.
        await waitFor(() => raws.some((r) => r.isClosed),
          { timeoutMs: 30000, what: 'a connection closed at the budget' });
        const refused = raws.filter((r) => r.isClosed);
        assert.equal(refused.length, 1, 'exactly one frame is refused');
        const [bad] = refused.map((r) => r.packages.find((p) => p.command === CMD.BadRequest));
        assert.ok(bad, 'the refused connection got a BadRequest before the close');
        assert.deepEqual(bad.correlationId, refused[0].id);
        assert.match(bad.payload.toString(), /too many large frames.*268435456 bytes/);
        for (const raw of raws.filter((r) => !r.isClosed)) {
          raw.sendRaw(body.subarray(sentBytes - 22));
          const pong = await raw.until(() => raw.packages.find((p) => p.command === CMD.Pong),
            'Pong for the completed 64 MiB frame', 30000);
          assert.deepEqual(pong.correlationId, raw.id);
          raw.end();
        }
      });
      assert.match(w.output, new RegExp('tcp: closing the connection from 127\\.0\\.0\\.1:\\d+: ' +
        `its frame of ${frameBytes} bytes \\(\\d+ received\\) would pass the budget of ` +
        `${kPartialFrameBytesBudget} bytes`));
      const raw = await RawConn.open(w.tcpPort);
      await expectPong(raw);
      raw.end();
    });

  test('a subscriber that stops reading is cut at the write deadline; nothing is lost', T,
    async () => {
      const stream = streamName('hole7-stalled');
      const subscribe = Buffer.concat([Buffer.from([0x0a, Buffer.byteLength(stream)]),
        Buffer.from(stream), Buffer.from([0x10, 0])]);
      // The node's own subscriptions (e.g. the voter set's watch of $voters) count too.
      const base = await metric(w, 'chorus_subscriptions');
      const stalled = await RawConn.open(w.tcpPort);
      stalled.send(CMD.SubscribeToStream, { payload: subscribe });
      const confirmed = await stalled.next('SubscriptionConfirmation');
      assert.equal(confirmed.command, CMD.SubscriptionConfirmation);
      const received = [];
      // The reader has its own client, so that what is asserted of it is this test's alone (the
      // 64 MiB frames of the first test can keep a loaded node from answering the shared client's
      // heartbeats within their 1.5 s), and a 10 s heartbeat timeout: on a loaded machine the
      // 1 MiB events here also delayed a heartbeat past 1.5 s. A close by the node, or a stall of
      // the reader beyond 10 s, still counts as a disconnect.
      const readerConn = await connect(w, { heartbeatTimeout: 10000 });
      const reader = await readerConn.subscribeToStream(stream, false, (_, e) => received.push(e));
      await waitFor(async () => (await metric(w, 'chorus_subscriptions')) === base + 2,
        { what: 'both subscriptions registered' });
      // It stops reading, but keeps its heartbeats going so that only the deadline can cut it.
      stalled.socket.pause();
      const heartbeats = setInterval(() => stalled.send(CMD.HeartbeatResponse), 500);
      try {
        const count = 40;
        for (let i = 0; i < count; i += 10) {
          const events = Array.from({ length: 10 }, () => rawEvent(Buffer.alloc(MiB, 0x61)));
          await conn.appendToStream(stream, ANY, events);
        }
        const stalledAt = Date.now();
        await waitFor(() => stalled.isClosed,
          { timeoutMs: kWriteTimeoutMs + 20000, what: 'the stalled subscriber to be closed' });
        const after = Date.now() - stalledAt;
        assert.match(w.output, new RegExp('tcp: closing the connection from 127\\.0\\.0\\.1:\\d+: ' +
          `a write did not complete within ${kWriteTimeoutMs} ms \\(the client does not read\\); ` +
          'dropping \\d+ queued bytes and 1 subscriptions'));
        await waitFor(async () => (await metric(w, 'chorus_subscriptions')) === base + 1,
          { what: 'the stalled subscription freed' });
        await waitFor(() => received.length === count,
          { timeoutMs: 30000, what: `the reading subscriber to get ${count} events` });
        assert.deepEqual(received.map((e) => num(e.originalEventNumber)),
          Array.from({ length: count }, (_, i) => i));
        const { events } = await readAll(conn, stream);
        assert.equal(events.length, count);
        assert.equal(readerConn.disconnects.length, 0, 'the reading client was never disconnected');
        console.log(`stalled subscriber closed ${after} ms after the last append`);
      } finally {
        clearInterval(heartbeats);
        reader.close();
        closeQuietly(readerConn);
        stalled.end();
      }
    });
});

describe('hole 7: --ext-tcp-connections-max', () => {
  let w;
  let conn;

  before(async () => {
    w = await startWorker({ memDb: true, extraArgs: ['--ext-tcp-connections-max', '3'] });
    conn = await connect(w);
  });
  after(async () => {
    closeQuietly(conn);
    await w?.cleanup();
  });

  test('connections beyond the limit are closed at once; the open ones are served', T,
    async () => {
      await waitFor(async () => (await metric(w, 'chorus_tcp_connections')) === 1,
        { what: 'only the client connected' });
      const first = await RawConn.open(w.tcpPort);
      const second = await RawConn.open(w.tcpPort);
      await expectPong(first);
      await expectPong(second);
      await appendsSurvive(conn, 10, async () => {
        const refused = await RawConn.open(w.tcpPort);
        await refused.closed();
        assert.equal(refused.packages.length, 0);
        await expectPong(second);
      });
      assert.match(w.output, /tcp: refused a connection from 127\.0\.0\.1: 3 connections are open on the node's external TCP ports, the limit \(ExtTcpConnectionsMax\); 1 refused since the last such line/);
      first.end();
      await waitFor(async () => (await metric(w, 'chorus_tcp_connections')) === 2,
        { what: 'the closed connection to free its slot' });
      const again = await RawConn.open(w.tcpPort);
      await expectPong(again);
      again.end();
      second.end();
      assert.equal(conn.disconnects.length, 0, 'the client was never disconnected');
    });
});
