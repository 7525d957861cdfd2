// Proves that every rule of the fault harness's checker (checker.mjs analyze()) can fail: a
// hand-made good history of three nodes passes, and each hand-made bad history (a lost write, a
// duplicate, a reorder, a broken compare-and-set, two leaders in one epoch, a subscriber gap, a
// read going back, ...) fails naming that rule (often among others it also breaks). No cluster.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { analyze } from './checker.mjs';

const S = 's';
const ids = ['e0', 'e1', 'e2', 'e3'];

function goodView() {
  return {
    streams: new Map([[S, ids.map((id, n) => ({ id, n }))]]),
    all: [
      { id: 'sys', stream: '$users', commit: 100, prepare: 100 },
      ...ids.map((id, n) => ({ id, stream: S, commit: 200 + n * 100, prepare: 200 + n * 100 })),
    ],
  };
}

function goodHistory() {
  return {
    acked: ids.map((id, n) => ({ writer: 'w0', stream: S, eventId: id, expected: n - 1,
      version: n, start: n * 10, end: n * 10 + 5 })),
    unknown: [],
    refused: [{ writer: 'w1', stream: S, eventId: 'r1', expected: -1 }],
    leaders: [{ node: 'n0', epoch: 1 }, { node: 'n0', epoch: 1 }, { node: 'n1', epoch: 2 }],
    subscriptions: new Map([[S, [{ subscriber: 'sub0', seen: ids.map((id, n) => ({ n, id })) }]]]),
    reads: new Map([['leader-tcp', [{ stream: S, version: 0 }, { stream: S, version: 2 },
      { stream: S, version: 2 }, { stream: S, version: 3 }]], ['n1-http', []]]),
  };
}

function run(edit) {
  const views = [goodView(), goodView(), goodView()];
  const history = goodHistory();
  edit?.(views, history);
  return analyze(views, history, [S]);
}

test('a good history passes every rule', () => {
  const r = run();
  assert.deepEqual(r.violations, []);
  assert.equal(r.verdict, 'ok');
  assert.equal(r.lost, 0);
  assert.equal(r.stored, 4);
});

const bad = {
  'lost': (v) => {  // an acknowledged event missing on one node (and $all agrees)
    v[2].streams.get(S).pop();
    v[2].all.pop();
  },
  'committed-log': (v) => { v[1].all[0].commit = 150; v[1].all[0].prepare = 150; },
  'contiguous': (v, h) => {  // a hole at version 1 on every node
    for (const x of v) x.streams.get(S)[1].n = 5;
    h.acked = h.acked.filter((a) => a.version !== 1);
    h.subscriptions.get(S)[0].seen = h.subscriptions.get(S)[0].seen.slice(0, 1);
    h.reads.set('leader-tcp', []);
  },
  'same-order': (v) => {  // one node's stream read alone disagrees with $all
    const s = v[1].streams.get(S);
    [s[1].id, s[2].id] = [s[2].id, s[1].id];
  },
  'acked-version': (_v, h) => { h.acked[3].version = 2; h.acked[3].expected = 1; },
  'cas': (_v, h) => {  // an acknowledged write that did not land at expected + 1
    h.acked[2].expected = 0;
  },
  'phantom': (v) => {
    for (const x of v) {
      x.streams.get(S).push({ id: 'x', n: 4 });
      x.all.push({ id: 'x', stream: S, commit: 700, prepare: 700 });
    }
  },
  'one-leader': (_v, h) => { h.leaders.push({ node: 'n2', epoch: 2 }); },
  'subscriber': (_v, h) => { h.subscriptions.get(S)[0].seen.splice(2, 1); },
  'monotonic-reads': (_v, h) => { h.reads.get('n1-http').push({ stream: S, version: 3 },
    { stream: S, version: 1 }); },
};

for (const [rule, edit] of Object.entries(bad)) {
  test(`rule "${rule}" fails on a history that breaks it`, () => {
    const r = run(edit);
    assert.equal(r.verdict, 'fail');
    assert.ok(r.rules.includes(rule), `expected ${rule}, got ${JSON.stringify(r.violations)}`);
  });
}

test('committed-log: a node\'s own write after the rest end is not compared, one before it is',
  () => {
    // n1 and n2 already hold a $stats event written after the cluster rested at 600; n0 not yet.
    const later = (v) => {
      for (const x of [v[1], v[2]]) {
        x.all.push({ id: 'st', stream: '$stats-n1', commit: 700, prepare: 600 });
      }
    };
    const views = [goodView(), goodView(), goodView()];
    later(views);
    assert.deepEqual(analyze(views, goodHistory(), [S], { restEnd: 600 }).violations, []);
    // Without the rest end the whole logs are compared, as before.
    assert.ok(analyze(views, goodHistory(), [S]).rules.includes('committed-log'));
    // Below the rest end a node that lacks an event still fails.
    const missing = [goodView(), goodView(), goodView()];
    later(missing);
    missing[1].all.shift();
    const r = analyze(missing, goodHistory(), [S], { restEnd: 600 });
    assert.ok(r.rules.includes('committed-log'), JSON.stringify(r.violations));
  });

test('exactly-once: an event stored twice counts as duplicated', () => {
  const r = run((v) => {
    for (const x of v) {
      x.streams.get(S).push({ id: 'e3', n: 4 });
      x.all.push({ id: 'e3', stream: S, commit: 700, prepare: 700 });
    }
  });
  assert.ok(r.rules.includes('exactly-once'), JSON.stringify(r.violations));
  assert.equal(r.duplicated, 1);
});

test('cas: a refused write that was stored anyway, and two acknowledged writes to one version',
  () => {
    const stored = run((v, h) => {
      h.refused.push({ writer: 'w1', stream: S, eventId: 'e3', expected: 2 });
    });
    assert.ok(stored.violations.some((x) => /was refused/.test(x)), JSON.stringify(stored));
    const twice = run((_v, h) => {
      h.acked.push({ writer: 'w1', stream: S, eventId: 'y', expected: 2, version: 3 });
    });
    assert.ok(twice.violations.some((x) => /two acknowledged writes/.test(x)),
      JSON.stringify(twice));
  });

test('linearizable: a write acknowledged before a lower-versioned write was sent', () => {
  const r = run((_v, h) => { h.acked[1].start = 100; h.acked[1].end = 105; });
  assert.ok(r.rules.includes('linearizable'), JSON.stringify(r.violations));
});

test('subscriber: a repeat, a wrong event, and stopping short each fail', () => {
  const repeat = run((_v, h) => {
    const seen = h.subscriptions.get(S)[0].seen;
    seen.splice(2, 0, { ...seen[1] });
  });
  assert.ok(repeat.rules.includes('subscriber'), JSON.stringify(repeat.violations));
  const wrong = run((_v, h) => { h.subscriptions.get(S)[0].seen[1].id = 'e2'; });
  assert.ok(wrong.rules.includes('subscriber'), JSON.stringify(wrong.violations));
  const short = run((_v, h) => { h.subscriptions.get(S)[0].seen.pop(); });
  assert.ok(short.violations.some((x) => /stopped at 2/.test(x)), JSON.stringify(short));
});

test('a broken run reports each rule\'s first violations, then how many more', () => {
  const r = run((_v, h) => {
    for (let k = 0; k < 50; k++) {
      h.leaders.push({ node: `n${k}`, epoch: 100 + k }, { node: 'z', epoch: 100 + k });
    }
  });
  assert.equal(r.violations.length, 21);
  assert.match(r.violations[20], /one-leader: \.\.\. 30 more/);
});
