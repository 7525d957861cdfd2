// Goal: prove that deletes behave as on EventStore for the unmodified node-eventstore-client
// 23.10.1 (PROTOCOL.md F4): soft delete hides the stream (NoStream) and leaves `$tb` = long.Max in
// its metadata; appending again undeletes it with numbering continuing and old events hidden;
// StreamExists on a soft-deleted stream is StreamDeleted; hard delete makes every read, write
// and metadata read report deleted; deletes check the expected version.
import { describe, test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import {
  streamName, makeEvents, jsonEvent, num, dataOf, rejectsWith,
  ANY, NO_STREAM, STREAM_EXISTS, Long,
  openWorkerConnection, closeWorkerConnection,
} from './lib/es.mjs';

const T = { timeout: 60000 };
const numbers = (slice) => slice.events.map((e) => num(e.event.eventNumber));
const LONG_MAX = '9223372036854775807';

describe('client deletes', () => {
  let w;
  let conn;
  before(async () => ({ w, conn } = await openWorkerConnection()));
  after(() => closeWorkerConnection(w, conn));

  test('soft delete: reads say not found, metadata keeps isStreamDeleted false and $tb = long.Max', T, async () => {
    const s = streamName('soft');
    await conn.appendToStream(s, NO_STREAM, makeEvents(3));
    const d = await conn.deleteStream(s, 2, false);
    assert.ok(d.logPosition, 'delete returns a log position');
    const fwd = await conn.readStreamEventsForward(s, 0, 10);
    assert.equal(fwd.status, 'streamNotFound');
    assert.equal(fwd.events.length, 0);
    const bwd = await conn.readStreamEventsBackward(s, -1, 10);
    assert.equal(bwd.status, 'streamNotFound');
    assert.equal((await conn.readEvent(s, 0)).status, 'noStream');
    assert.equal((await conn.readEvent(s, -1)).status, 'noStream');

    const meta = await conn.getStreamMetadataRaw(s);
    assert.equal(meta.isStreamDeleted, false);
    assert.ok(meta.streamMetadata && '$tb' in meta.streamMetadata,
      `soft-deleted stream metadata must carry $tb, got ${JSON.stringify(meta.streamMetadata)}`);
    // JSON.parse turns 9223372036854775807 into the nearest double; check the raw text too.
    assert.equal(meta.streamMetadata.$tb, 9223372036854775807);
    const raw = await conn.readEvent(`$$${s}`, -1);
    assert.equal(raw.status, 'success');
    assert.match(raw.event.event.data.toString(), new RegExp(`"\\$tb"\\s*:\\s*${LONG_MAX}\\b`));
  });

  test('undelete by appending with Any: numbering continues, old events stay hidden', T, async () => {
    const s = streamName('undelete');
    await conn.appendToStream(s, NO_STREAM, makeEvents(3)); // 0..2
    await conn.deleteStream(s, 2, false);
    const r = await conn.appendToStream(s, ANY, makeEvents(2, 'New'));
    assert.equal(num(r.nextExpectedVersion), 4, 'numbering continues after the old last event 2');
    const fwd = await conn.readStreamEventsForward(s, 0, 10);
    assert.equal(fwd.status, 'success');
    assert.deepEqual(numbers(fwd), [3, 4]);
    assert.deepEqual(fwd.events.map((e) => e.event.eventType), ['New', 'New']);
    assert.equal((await conn.readEvent(s, 0)).status, 'notFound');
    const last = await conn.readEvent(s, -1);
    assert.equal(num(last.event.event.eventNumber), 4);
    const bwd = await conn.readStreamEventsBackward(s, -1, 10);
    assert.deepEqual(numbers(bwd), [4, 3]);
    assert.equal(bwd.isEndOfStream, true);
    const meta = await conn.getStreamMetadataRaw(s);
    assert.equal(meta.isStreamDeleted, false);
    assert.equal(meta.streamMetadata.$tb, 3, 'ES rewrites $tb to the first new event number');
    // Further writes chain normally from the new version.
    await conn.appendToStream(s, 4, jsonEvent({ more: true }));
  });

  test('undelete by appending with NoStream also continues the numbering', T, async () => {
    const s = streamName('undelete-nostream');
    await conn.appendToStream(s, NO_STREAM, makeEvents(2)); // 0..1
    await conn.deleteStream(s, ANY, false);
    const r = await conn.appendToStream(s, NO_STREAM, jsonEvent({ again: true }));
    assert.equal(num(r.nextExpectedVersion), 2);
    assert.deepEqual(numbers(await conn.readStreamEventsForward(s, 0, 10)), [2]);
  });

  test('StreamExists on a soft-deleted stream → StreamDeletedError', T, async () => {
    const s = streamName('soft-exists');
    await conn.appendToStream(s, NO_STREAM, makeEvents(1));
    await conn.deleteStream(s, 0, false);
    await rejectsWith(conn.appendToStream(s, STREAM_EXISTS, jsonEvent({})), { name: 'StreamDeletedError' });
  });

  test('hard delete: reads streamDeleted, appends StreamDeletedError, metadata isStreamDeleted', T, async () => {
    const s = streamName('hard');
    await conn.appendToStream(s, NO_STREAM, makeEvents(3));
    await conn.deleteStream(s, 2, true);
    const fwd = await conn.readStreamEventsForward(s, 0, 10);
    assert.equal(fwd.status, 'streamDeleted');
    assert.equal(fwd.events.length, 0);
    assert.equal((await conn.readStreamEventsBackward(s, -1, 10)).status, 'streamDeleted');
    assert.equal((await conn.readEvent(s, 0)).status, 'streamDeleted');
    assert.equal((await conn.readEvent(s, -1)).status, 'streamDeleted');
    await rejectsWith(conn.appendToStream(s, ANY, jsonEvent({})), { name: 'StreamDeletedError' });
    await rejectsWith(conn.appendToStream(s, 2, jsonEvent({})), { name: 'StreamDeletedError' });
    const meta = await conn.getStreamMetadataRaw(s);
    assert.equal(meta.isStreamDeleted, true);
    assert.ok(Long.isLong(meta.metastreamVersion) || typeof meta.metastreamVersion === 'number');
    // Deleting again, soft or hard, reports the stream deleted.
    await rejectsWith(conn.deleteStream(s, ANY, true), { name: 'StreamDeletedError' });
    await rejectsWith(conn.deleteStream(s, ANY, false), { name: 'StreamDeletedError' });
    // Metadata writes on a hard-deleted stream are refused too.
    await rejectsWith(conn.setStreamMetadataRaw(s, ANY, { x: 1 }), { name: 'StreamDeletedError' });
  });

  test('hard delete after a soft delete still tombstones the stream', T, async () => {
    const s = streamName('soft-then-hard');
    await conn.appendToStream(s, NO_STREAM, makeEvents(2));
    await conn.deleteStream(s, ANY, false);
    await conn.deleteStream(s, ANY, true);
    assert.equal((await conn.readStreamEventsForward(s, 0, 10)).status, 'streamDeleted');
    await rejectsWith(conn.appendToStream(s, ANY, jsonEvent({})), { name: 'StreamDeletedError' });
  });

  test('delete with a wrong expected version → WrongExpectedVersionError, stream intact', T, async () => {
    const s = streamName('del-wev');
    await conn.appendToStream(s, NO_STREAM, makeEvents(3));
    await rejectsWith(conn.deleteStream(s, 5, false), { name: 'WrongExpectedVersionError' });
    await rejectsWith(conn.deleteStream(s, 1, true), { name: 'WrongExpectedVersionError' });
    await rejectsWith(conn.deleteStream(s, NO_STREAM, false), { name: 'WrongExpectedVersionError' });
    const fwd = await conn.readStreamEventsForward(s, 0, 10);
    assert.deepEqual(numbers(fwd), [0, 1, 2]);
    assert.deepEqual(fwd.events.map((e) => dataOf(e.event).i), [0, 1, 2]);
  });

  test('soft delete of a missing stream with NoStream succeeds', T, async () => {
    const s = streamName('del-missing');
    await conn.deleteStream(s, NO_STREAM, false);
    assert.equal((await conn.readStreamEventsForward(s, 0, 10)).status, 'streamNotFound');
    // And a missing stream with an exact version is a WrongExpectedVersion.
    await rejectsWith(conn.deleteStream(streamName('del-missing2'), 3, false),
      { name: 'WrongExpectedVersionError' });
  });
});
