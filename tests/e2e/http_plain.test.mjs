// Goal: prove the worker's HTTP API with a plain HTTP client (fetch): the gossip document's keys
// and types, ES-CurrentVersion on a wrong-version 400, /metrics in strict Prometheus text format,
// a long poll answering within a second of a write, ETag then 304, 401 with the BasicCustom
// challenge, 413 for an oversized body, malformed JSON -> 400 while the node keeps serving, the
// same event read over TCP (node-eventstore-client) and HTTP being identical, plus routing
// (404/405/OPTIONS with CORS), the single-event 307, node endpoints and the admin endpoints.
import { describe, test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { startWorker, waitFor, canConnect, clusterSecretFile } from './lib/harness.mjs';
import { readSecret, signRequest } from './lib/internal_peer.mjs';
import { es, connect, closeQuietly, admin, NO_STREAM } from './lib/es.mjs';

const T = { timeout: 60000 };
const ADMIN = 'Basic ' + Buffer.from('admin:changeit').toString('base64');
const EVENTS_JSON = 'application/vnd.eventstore.events+json';

function stream(prefix) {
  return `${prefix}-${randomUUID().slice(0, 8)}`;
}

// A strict parser of Prometheus' text exposition format 0.0.4: every sample belongs to a family
// announced by # HELP and # TYPE, names and labels are well formed, values are numbers, and
// histogram buckets are cumulative and end with le="+Inf" equal to _count.
function parsePrometheus(text) {
  assert.ok(text.endsWith('\n'), 'exposition ends with a newline');
  const families = new Map();
  const nameRe = /^[a-zA-Z_:][a-zA-Z0-9_:]*$/;
  const sampleRe = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{[^}]*\})? (\S+)$/;
  const labelRe = /^([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"$/;
  let current;
  for (const line of text.slice(0, -1).split('\n')) {
    if (line.startsWith('# HELP ')) {
      const [name] = line.slice(7).split(' ');
      assert.match(name, nameRe);
      assert.ok(!families.has(name), `family ${name} announced once`);
      current = { name, type: undefined, samples: [] };
      families.set(name, current);
      continue;
    }
    if (line.startsWith('# TYPE ')) {
      const [name, type] = line.slice(7).split(' ');
      assert.equal(name, current?.name, 'TYPE follows HELP of the same family');
      assert.ok(['counter', 'gauge', 'histogram', 'summary', 'untyped'].includes(type), type);
      current.type = type;
      continue;
    }
    assert.ok(!line.startsWith('#'), `unexpected comment: ${line}`);
    const m = sampleRe.exec(line);
    assert.ok(m, `malformed sample line: ${line}`);
    const [, name, labelText, valueText] = m;
    assert.ok(current?.type, `sample before TYPE: ${line}`);
    const suffixes = current.type === 'histogram' ? ['_bucket', '_sum', '_count'] : [''];
    assert.ok(suffixes.some((sfx) => name === current.name + sfx),
      `sample ${name} outside its family ${current.name}`);
    const labels = {};
    if (labelText) {
      for (const pair of labelText.slice(1, -1).split(',')) {
        const lm = labelRe.exec(pair);
        assert.ok(lm, `malformed label ${pair}`);
        labels[lm[1]] = lm[2];
      }
    }
    const value = valueText === '+Inf' ? Infinity : Number(valueText);
    assert.ok(!Number.isNaN(value), `value of ${line}`);
    current.samples.push({ name, labels, value });
  }
  for (const f of families.values()) {
    if (f.type !== 'histogram') continue;
    const buckets = f.samples.filter((s) => s.name.endsWith('_bucket'));
    assert.ok(buckets.length > 0, `${f.name} has buckets`);
    for (let i = 1; i < buckets.length; i++) {
      assert.ok(buckets[i].value >= buckets[i - 1].value, `${f.name} buckets cumulative`);
    }
    assert.equal(buckets.at(-1).labels.le, '+Inf');
    const count = f.samples.find((s) => s.name === `${f.name}_count`);
    assert.equal(count.value, buckets.at(-1).value, `${f.name} +Inf bucket equals _count`);
  }
  return families;
}

describe('HTTP API with plain fetch', () => {
  let w;
  let base;
  let intBase;

  const post = (path, body, headers = {}) => fetch(base + path, {
    method: 'POST', body,
    headers: { Authorization: ADMIN, 'Content-Type': EVENTS_JSON, ...headers },
  });
  const write = (s, events, headers = {}) => post(`/streams/${s}`, JSON.stringify(events), headers);
  const ev = (data, type = 'T') => ({ eventId: randomUUID(), eventType: type, data });

  before(async () => {
    w = await startWorker({ memDb: true });
    await waitFor(() => canConnect(w.httpPort), { what: 'external HTTP port' });
    await waitFor(() => canConnect(w.intHttpPort), { what: 'internal HTTP port' });
    base = `http://127.0.0.1:${w.httpPort}`;
    intBase = `http://127.0.0.1:${w.intHttpPort}`;
  });

  after(async () => {
    await w?.cleanup();
  });

  test('gossip document keys and types, itself as Leader, on both ports', T, async () => {
    for (const url of [`${base}/gossip?format=json`, `${intBase}/gossip?format=json`]) {
      const res = await fetch(url);
      assert.equal(res.status, 200);
      assert.match(res.headers.get('content-type'), /application\/json/);
      const doc = await res.json();
      assert.equal(typeof doc.serverIp, 'string');
      assert.equal(doc.serverPort, w.intHttpPort);
      assert.equal(doc.members.length, 1);
      const m = doc.members[0];
      const types = {
        instanceId: 'string', timeStamp: 'string', state: 'string', isAlive: 'boolean',
        internalTcpIp: 'string', internalTcpPort: 'number', internalSecureTcpPort: 'number',
        externalTcpIp: 'string', externalTcpPort: 'number', externalSecureTcpPort: 'number',
        internalHttpIp: 'string', internalHttpPort: 'number', externalHttpIp: 'string',
        externalHttpPort: 'number', httpEndPointIp: 'string', httpEndPointPort: 'number',
        lastCommitPosition: 'number', writerCheckpoint: 'number', chaserCheckpoint: 'number',
        epochPosition: 'number', epochNumber: 'number', epochId: 'string',
        nodePriority: 'number', isReadOnlyReplica: 'boolean',
      };
      for (const [key, type] of Object.entries(types)) {
        assert.equal(typeof m[key], type, `member.${key} is a ${type}`);
      }
      assert.equal(m.state, 'Leader');
      assert.equal(m.isAlive, true);
      assert.equal(m.externalTcpPort, w.tcpPort);
      assert.equal(m.externalHttpPort, w.httpPort);
      assert.match(m.instanceId, /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/);
      assert.ok(!Number.isNaN(Date.parse(m.timeStamp)));
    }
    const a = await (await fetch(`${base}/gossip`)).json();
    const b = await (await fetch(`${intBase}/gossip`)).json();
    assert.equal(a.members[0].instanceId, b.members[0].instanceId, 'stable instanceId');
    const body = JSON.stringify(a);
    const unsigned = await fetch(`${intBase}/gossip`, { method: 'POST', body });
    assert.equal(unsigned.status, 401, 'gossip without the cluster secret\'s signature');
    const pushed = await fetch(`${intBase}/gossip`, { method: 'POST', body, headers: {
      'X-Chorus-Auth': signRequest(readSecret(clusterSecretFile()), 'POST', '/gossip', body) } });
    assert.equal(pushed.status, 200);
    assert.match(pushed.headers.get('x-chorus-auth'), /^[0-9a-f]{64}$/, 'the answer is signed');
    const ext = await fetch(`${base}/gossip`, { method: 'POST', body: '{}' });
    assert.equal(ext.status, 405, 'gossip POST exists only on the internal port');
  });

  test('wrong expected version: 400 with ES-CurrentVersion', T, async () => {
    const s = stream('ver');
    assert.equal((await write(s, [ev({ a: 1 }), ev({ a: 2 })], { 'ES-ExpectedVersion': '-1' }))
      .status, 201);
    const res = await write(s, [ev({ a: 3 })], { 'ES-ExpectedVersion': '5' });
    assert.equal(res.status, 400);
    assert.equal(res.statusText, 'Wrong expected EventNumber');
    assert.equal(res.headers.get('es-currentversion'), '1');
    const bad = await write(s, [ev({ a: 3 })], { 'ES-ExpectedVersion': 'abc' });
    assert.equal(bad.status, 400);
    assert.equal(await bad.text(), 'ES-ExpectedVersion header in wrong format.');
  });

  test('metrics parse as Prometheus text exposition format', T, async () => {
    await write(stream('m'), [ev({ a: 1 })]);
    const res = await fetch(`${base}/metrics`);
    assert.equal(res.status, 200);
    assert.match(res.headers.get('content-type'), /^text\/plain; version=0\.0\.4/);
    const families = parsePrometheus(await res.text());
    for (const name of ['chorus_io_events_written_total', 'chorus_io_bytes_written_total',
      'chorus_io_events_read_total', 'chorus_io_bytes_read_total', 'chorus_checkpoints',
      'chorus_tcp_connections', 'chorus_http_requests_total',
      'chorus_http_request_duration_seconds', 'chorus_writer_flush_duration_seconds',
      'chorus_writer_flush_size_events']) {
      assert.ok(families.has(name), `family ${name}`);
    }
    assert.ok(families.get('chorus_io_events_written_total').samples[0].value >= 1);
    const checkpoints = families.get('chorus_checkpoints').samples.map((x) => x.labels.name);
    assert.deepEqual(checkpoints.sort(), ['chaser', 'commit', 'writer']);
  });

  test('long poll answers within a second of a write', T, async () => {
    const s = stream('poll');
    await write(s, [ev({ n: 0 })]);
    const started = Date.now();
    const polled = fetch(`${base}/streams/${s}/1/forward/10?embed=body`, {
      headers: { Authorization: ADMIN, Accept: 'application/json', 'ES-LongPoll': '10' },
    });
    // Write once the poll is waiting (its subscription is counted in /stats).
    await waitFor(async () => (await (await fetch(`${base}/stats`)).json())
      .connections.subscriptions >= 1, { what: 'long poll subscribed' });
    const wroteAt = Date.now();
    await write(s, [ev({ n: 1 })]);
    const res = await polled;
    const answeredAt = Date.now();
    assert.equal(res.status, 200);
    const feed = await res.json();
    assert.equal(feed.entries.length, 1);
    assert.equal(JSON.parse(feed.entries[0].data).n, 1);
    assert.ok(answeredAt - wroteAt < 1000, `answered ${answeredAt - wroteAt} ms after the write`);
    assert.ok(wroteAt - started < 9000);
  });

  test('ETag then 304 Not Modified; a write changes the ETag', T, async () => {
    const s = stream('etag');
    await write(s, [ev({ a: 1 })]);
    const headers = { Authorization: ADMIN, Accept: 'application/json' };
    const first = await fetch(`${base}/streams/${s}`, { headers });
    assert.equal(first.status, 200);
    const etag = first.headers.get('etag');
    assert.ok(etag, 'ETag present');
    assert.equal(first.headers.get('vary'), 'Accept');
    const again = await fetch(`${base}/streams/${s}`, {
      headers: { ...headers, 'If-None-Match': etag },
    });
    assert.equal(again.status, 304);
    await write(s, [ev({ a: 2 })]);
    const changed = await fetch(`${base}/streams/${s}`, {
      headers: { ...headers, 'If-None-Match': etag },
    });
    assert.equal(changed.status, 200);
    assert.notEqual(changed.headers.get('etag'), etag);
  });

  test('bad credentials: 401 with WWW-Authenticate BasicCustom', T, async () => {
    const bad = 'Basic ' + Buffer.from('admin:wrong').toString('base64');
    const res = await fetch(`${base}/streams/anything`, { headers: { Authorization: bad } });
    assert.equal(res.status, 401);
    assert.equal(res.headers.get('www-authenticate'), 'BasicCustom realm="ES"');
    const anonAll = await fetch(`${base}/streams/%24all`);
    assert.equal(anonAll.status, 401, 'anonymous $all read is denied');
    const adminAll = await fetch(`${base}/streams/%24all`, { headers: { Authorization: ADMIN } });
    assert.equal(adminAll.status, 200);
    const feed = await adminAll.json();
    assert.ok(feed.links.some((l) => /\/streams\/%24all\/[0-9A-F]{32}\/forward\/20$/.test(l.uri)),
      'positions written as %016X%016X');
  });

  test('413 for an oversized body', T, async () => {
    const big = 'x'.repeat(9 * 1024 * 1024);
    const res = await post(`/streams/${stream('big')}`, big);
    assert.equal(res.status, 413);
    assert.equal((await fetch(`${base}/ping`)).status, 200);
  });

  test('malformed JSON: 400 with the reason, and the node keeps serving', T, async () => {
    const s = stream('bad');
    const res = await post(`/streams/${s}`, '[{"eventId": ');
    assert.equal(res.status, 400);
    assert.match(await res.text(), /Malformed JSON/);
    const single = await post(`/streams/${s}`, '{oops', {
      'Content-Type': 'application/json', 'ES-EventType': 'T', 'ES-EventId': randomUUID(),
    });
    assert.equal(single.status, 400);
    assert.equal((await write(s, [ev({ ok: true })])).status, 201);
    assert.equal((await fetch(`${base}/ping`)).status, 200);
  });

  test('single event without ES-EventId: 307 to incoming/{guid}, which then writes', T, async () => {
    const s = stream('single');
    const headers = { 'Content-Type': 'application/json', 'ES-EventType': 'Single' };
    const res = await fetch(`${base}/streams/${s}`, {
      method: 'POST', body: '{"x":1}', redirect: 'manual',
      headers: { Authorization: ADMIN, ...headers },
    });
    assert.equal(res.status, 307);
    const location = res.headers.get('location');
    assert.match(location, new RegExp(`/streams/${s}/incoming/[0-9a-f-]{36}$`));
    const followed = await fetch(location, {
      method: 'POST', body: '{"x":1}', headers: { Authorization: ADMIN, ...headers },
    });
    assert.equal(followed.status, 201);
    assert.match(followed.headers.get('location'), new RegExp(`/streams/${s}/0$`));
    const one = await fetch(`${base}/streams/${s}/0`, {
      headers: { Authorization: ADMIN, Accept: 'application/json' },
    });
    assert.equal(one.status, 200);
    assert.deepEqual(await one.json(), { x: 1 });
  });

  test('the same event read over TCP and HTTP is identical', T, async () => {
    const s = stream('same');
    const conn = await connect(w);
    try {
      const id = randomUUID();
      await conn.appendToStream(s, NO_STREAM, [es.createJsonEventData(id, { hello: 'world' },
        { meta: 1 }, 'Greeting')], admin);
      const tcp = (await conn.readEvent(s, 0, false, admin)).event.event;
      const res = await fetch(`${base}/streams/${s}/0/forward/1?embed=body`, {
        headers: { Authorization: ADMIN, Accept: 'application/vnd.eventstore.atom+json' },
      });
      assert.equal(res.status, 200);
      const entry = (await res.json()).entries[0];
      assert.equal(entry.eventId, tcp.eventId);
      assert.equal(entry.eventType, tcp.eventType);
      assert.equal(entry.eventNumber, Number(tcp.eventNumber));
      assert.equal(entry.streamId, tcp.eventStreamId);
      assert.equal(entry.isJson, tcp.isJson);
      assert.equal(entry.data, tcp.data.toString());
      assert.equal(entry.metaData, tcp.metadata.toString());
      assert.equal(Date.parse(entry.updated), tcp.created.getTime());
    } finally {
      closeQuietly(conn);
    }
  });

  test('routing: 404, 405 with Allow, OPTIONS preflight with CORS on every response', T, async () => {
    const missing = await fetch(`${base}/no/such/route`);
    assert.equal(missing.status, 404);
    assert.equal(missing.headers.get('access-control-allow-origin'), '*');
    const wrong = await fetch(`${base}/ping`, { method: 'PUT' });
    assert.equal(wrong.status, 405);
    assert.equal(wrong.headers.get('allow'), 'GET');
    const pre = await fetch(`${base}/streams/x`, { method: 'OPTIONS' });
    assert.equal(pre.status, 200);
    assert.match(pre.headers.get('access-control-allow-methods'), /POST/);
    assert.match(pre.headers.get('access-control-allow-headers'), /ES-ExpectedVersion/);
    const notAcceptable = await fetch(`${base}/streams/x`, {
      headers: { Authorization: ADMIN, Accept: 'text/html' },
    });
    assert.equal(notAcceptable.status, 406);
  });

  test('node endpoints: health, info, options, stats, scavenge', T, async () => {
    assert.equal((await fetch(`${base}/health/live`)).status, 204);
    assert.equal((await fetch(`${base}/health/live?liveCode=200`)).status, 200);
    const info = await (await fetch(`${base}/info`)).json();
    assert.equal(info.state, 'leader');
    assert.equal(typeof info.esVersion, 'string');
    assert.equal((await fetch(`${base}/info/options`)).status, 401, 'options need $admins/$ops');
    const options = await (await fetch(`${base}/info/options`,
      { headers: { Authorization: ADMIN } })).json();
    const port = options.find((o) => o.name === 'ExtHttpPort');
    assert.deepEqual(port, { name: 'ExtHttpPort', value: String(w.httpPort), source: 'Command Line' });
    const stats = await (await fetch(`${intBase}/stats`)).json();
    assert.equal(typeof stats.process.pid, 'number');
    assert.ok(stats.process.rssBytes > 0);
    assert.ok(stats.storage.writerCheckpoint > 0);
    assert.equal(typeof stats.connections.tcp, 'number');
    const anon = await fetch(`${base}/admin/scavenge`, { method: 'POST' });
    assert.equal(anon.status, 401);
    const scav = await fetch(`${base}/admin/scavenge`, { method: 'POST', headers: { Authorization: ADMIN } });
    assert.equal(scav.status, 200);
    const { scavengeId } = await scav.json();
    await waitFor(async () => {
      const r = await fetch(`${base}/admin/scavenge/${scavengeId}`, { headers: { Authorization: ADMIN } });
      return (await r.json()).scavengeResult === 'Success';
    }, { what: 'the scavenge to succeed' });
  });
});

describe('POST /admin/shutdown', () => {
  test('ops may shut the worker down cleanly; anonymous may not', T, async () => {
    const w = await startWorker({ memDb: true });
    try {
      await waitFor(() => canConnect(w.httpPort), { what: 'external HTTP port' });
      const url = `http://127.0.0.1:${w.httpPort}/admin/shutdown`;
      assert.equal((await fetch(url, { method: 'POST' })).status, 401);
      const ops = 'Basic ' + Buffer.from('ops:changeit').toString('base64');
      const res = await fetch(url, { method: 'POST', headers: { Authorization: ops } });
      assert.equal(res.status, 200);
      const exit = await Promise.race([w.exited,
        new Promise((_, reject) => setTimeout(() => reject(new Error('no exit in 10 s')), 10000))]);
      assert.equal(exit.code, 0);
    } finally {
      await w.cleanup();
    }
  });
});
