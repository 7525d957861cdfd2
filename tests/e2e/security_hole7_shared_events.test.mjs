// Goal: regression test for issue 10 hole 7's first part ("per subscriber, publish copies and
// serializes every event before any backpressure: 4,096 subscriptions x one 16 MiB event =
// 64 GiB"): 28 live subscriptions (7 unmodified client connections, 4 each) receive one 8 MiB
// event, every one of them intact, while the node's peak resident memory grows by less than half
// of one copy per subscriber (224 MiB here): the event is copied and encoded once and its bytes
// are shared by every subscriber's send queue. The node keeps serving afterwards.
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import { createHash, randomBytes } from 'node:crypto';
import { startWorker } from './lib/harness.mjs';
import { connect, closeQuietly, streamName, rawEvent, withDeadline, ANY } from './lib/es.mjs';

const MiB = 1024 * 1024;
// Queued frames count in full against the node's send budget (kQueuedSendBytesBudget, 256 MiB)
// even when shared, so 28 x 8 MiB stays below it and no subscriber is cut.
const EVENT_BYTES = 8 * MiB;
const CONNECTIONS = 7;
const SUBSCRIPTIONS_PER_CONNECTION = 4;
const SUBSCRIBERS = CONNECTIONS * SUBSCRIPTIONS_PER_CONNECTION;
// A frame per subscriber held until written is SUBSCRIBERS x 8 MiB = 224 MiB at the peak; shared,
// the delivery costs a few copies (the record, its encoding) on top of what the write took.
const PEAK_GROWTH_MAX = (SUBSCRIBERS * EVENT_BYTES) / 2;

let w;
const conns = [];

after(async () => {
  for (const c of conns) closeQuietly(c);
  await w?.cleanup();
});

// The process's peak resident set (VmHWM), in bytes.
function peakRss(pid) {
  const line = fs.readFileSync(`/proc/${pid}/status`, 'utf8').split('\n')
    .find((l) => l.startsWith('VmHWM:'));
  return Number(/(\d+)/.exec(line)[1]) * 1024;
}

test('hole 7: one 8 MiB event to 28 subscribers is shared, not copied per subscriber',
  { timeout: 120000 }, async () => {
    w = await startWorker({ memDb: true });
    const writer = await connect(w);
    conns.push(writer);
    const s = streamName('hole7-shared');
    const data = randomBytes(EVENT_BYTES);
    const digest = createHash('sha256').update(data).digest('hex');

    // A first event as large with nobody subscribed: the peak the write itself costs.
    await writer.appendToStream(streamName('hole7-warmup'), ANY, rawEvent(randomBytes(EVENT_BYTES)));
    const before = peakRss(w.pid);

    const received = [];
    let all;
    const allReceived = new Promise((resolve) => { all = resolve; });
    for (let c = 0; c < CONNECTIONS; c++) {
      const conn = await connect(w);
      conns.push(conn);
      for (let i = 0; i < SUBSCRIPTIONS_PER_CONNECTION; i++) {
        await withDeadline(conn.subscribeToStream(s, false, (_sub, e) => {
          received.push(createHash('sha256').update(e.event.data).digest('hex'));
          if (received.length === SUBSCRIBERS) all();
        }), 5000, `subscription ${c}.${i}`);
      }
    }
    await writer.appendToStream(s, ANY, rawEvent(data));
    await withDeadline(allReceived, 60000, `the event at all ${SUBSCRIBERS} subscribers`)
      .catch((e) => {
        throw new Error(`${e.message} (${received.length} got it); node output:\n` +
          w.output.slice(-3000));
      });
    const growth = peakRss(w.pid) - before;
    console.log(`# peak RSS grew by ${(growth / MiB).toFixed(1)} MiB delivering 8 MiB to ` +
      `${SUBSCRIBERS} subscribers`);

    assert.equal(received.length, SUBSCRIBERS);
    assert.ok(received.every((d) => d === digest), 'every subscriber got the event intact');
    assert.ok(growth < PEAK_GROWTH_MAX,
      `peak RSS grew by ${(growth / MiB).toFixed(0)} MiB (limit ${PEAK_GROWTH_MAX / MiB})`);
    // Still serving: a small write and read.
    const small = await writer.appendToStream(s, ANY, rawEvent(Buffer.from('small')));
    assert.ok(small.nextExpectedVersion);
    const slice = await writer.readStreamEventsBackward(s, -1, 1);
    assert.equal(Buffer.from(slice.events[0].event.data).toString(), 'small');
  });
