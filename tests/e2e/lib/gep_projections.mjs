// geteventstore-promise's projection calls that the other projection tests do not make, unmodified,
// against one node (a follower passes them on to the leader): assert (create, then update the
// query), getState and getResult of a partition, config, getInfo with its config, stop and
// start, disableAll and enableAll (every non-transient projection, the standard ones too),
// reset, and remove with deleteCheckpointStream and deleteStateStream (the result streams go).
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import EventStore from 'geteventstore-promise';
import { waitFor } from './harness.mjs';
import { admin, ANY, jsonEvent } from './es.mjs';

const uid = () => randomUUID().replace(/-/g, '').slice(0, 10);

async function streamGone(conn, stream) {
  const slice = await conn.readStreamEventsBackward(stream, -1, 1, false, admin);
  return slice.status !== 'success';
}

// `node` is asked over HTTP; `conn` (TCP, to any node) writes the events and reads the streams.
export async function exerciseGepProjections(node, conn) {
  const gep = new EventStore.HTTPClient({ hostname: node.host, port: node.httpPort,
    credentials: { username: 'admin', password: 'changeit' } });
  const cat = `gepc${uid()}`;
  const name = `gepc-${uid()}`;
  for (let i = 0; i < 6; i++) {
    await conn.appendToStream(`${cat}-${i % 2}`, ANY, [jsonEvent({ amount: i + 1 }, 'Paid')], admin);
  }
  const query = (factor) => `fromCategory('${cat}').foreachStream().when({
    $init: function () { return { total: 0 }; },
    Paid: function (s, e) { s.total += ${factor} * e.data.amount; } }).outputState();`;
  await gep.projections.assert(name, query(1), 'continuous');
  // account 0 holds 1 + 3 + 5, account 1 holds 2 + 4 + 6
  const folded = async (want) => {
    await waitFor(async () => (await gep.projections.getState(name, { partition: `${cat}-1` })
      .catch(() => ({})))?.total === want, { timeoutMs: 30000, what: `a state of ${want}` });
  };
  await folded(12);
  assert.deepEqual(await gep.projections.getState(name, { partition: `${cat}-0` }), { total: 9 });
  await waitFor(async () => (await gep.projections.getResult(name, { partition: `${cat}-0` })
    .catch(() => ({})))?.total === 9, { timeoutMs: 30000, what: 'the partition result' });

  const config = await gep.projections.config(name);
  assert.equal(config.emitEnabled, false);
  assert.equal(config.trackEmittedStreams, false);
  assert.equal(typeof config.checkpointHandledThreshold, 'number');
  const info = await gep.projections.getInfo(name, true);
  assert.equal(info.status, 'Running');
  assert.deepEqual(info.config, config);

  await gep.projections.stop(name);
  assert.equal((await gep.projections.getInfo(name)).status, 'Stopped');
  await gep.projections.start(name);
  assert.equal((await gep.projections.getInfo(name)).status, 'Running');

  await gep.projections.disableAll();
  const stopped = (await gep.projections.getAllProjectionsInfo()).projections;
  assert.ok(stopped.some((p) => p.name === '$by_category'));
  for (const p of stopped) assert.notEqual(p.status, 'Running', `${p.name} still runs`);
  await gep.projections.enableAll();
  const running = (await gep.projections.getAllProjectionsInfo()).projections;
  for (const p of running.filter((x) => x.name === name || x.name.startsWith('$'))) {
    assert.equal(p.status, 'Running', `${p.name} did not start again`);
  }

  // assert on an existing name replaces its query; reset folds everything again with it.
  await gep.projections.assert(name, query(10), 'continuous');
  await gep.projections.reset(name);
  await folded(120);

  const resultStream = `$projections-${name}-result`;
  const partitionResult = `$projections-${name}-${cat}-1-result`;
  assert.equal(await streamGone(conn, partitionResult), false);
  await gep.projections.remove(name, true, true);
  assert.equal(await gep.projections.getInfo(name), undefined);
  await waitFor(async () => await streamGone(conn, resultStream) &&
    await streamGone(conn, partitionResult) &&
    await streamGone(conn, `$projections-${name}-checkpoint`),
  { timeoutMs: 20000, what: 'the result and checkpoint streams deleted' });
}
