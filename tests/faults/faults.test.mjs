// Proves, in a short mode for ./test.sh, that no acknowledged write is lost or duplicated and
// every node ends with the same history under a few fault schedules (a killed leader, a paused
// leader, a bridge partition, a leader's manager killed with its worker), each run once against
// a real 3-node cluster in network namespaces with the unmodified node-eventstore-client, and
// that each run leaves no process, namespace, link or mount behind. The full table: run.mjs.
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { test } from 'node:test';
import { runOne } from './run.mjs';

function canUseNamespaces() {
  if (process.getuid?.() !== 0) return false;
  try {
    execFileSync('ip', ['netns', 'list'], { stdio: 'ignore' });
    return true;
  } catch {
    return false;
  }
}

const skip = canUseNamespaces() ? false : 'needs root and iproute2 (ip netns)';

const kShort = [['kill-leader', 1], ['pause-leader', 2], ['bridge', 3], ['kill-manager-leader', 4]];
for (const [schedule, seed] of kShort) {
  test(`${schedule}: every acknowledged write survives, once, in one order on every node`,
    { skip, timeout: 240000 }, async () => {
      const r = await runOne(schedule, seed, { phaseMs: 2000 });
      console.log(JSON.stringify(r));
      assert.equal(r.verdict, 'ok', JSON.stringify(r, null, 1));
      assert.ok(r.acknowledged > 0, 'the workload wrote nothing');
      assert.equal(r.lost, 0);
      assert.equal(r.duplicated, 0);
      assert.equal(r.leftBehind, undefined, 'the run cleaned up after itself');
      for (const [what, n] of Object.entries(r.observed)) assert.ok(n > 0, `observed no ${what}`);
    });
}

test('a run that cannot start says which step failed and leaves nothing behind',
  { skip, timeout: 60000 }, async () => {
    const r = await runOne('kill-leader', 1, { bins: { worker: '/bin/false' },
      leaderDeadlineMs: 3000 });
    assert.equal(r.verdict, 'error');
    assert.match(r.error, /^electing a first leader: timed out waiting for a leader in 3 s/);
    assert.equal(r.leftBehind, undefined, JSON.stringify(r.leftBehind));
    const unknown = await runOne('no-such-schedule', 1);
    assert.equal(unknown.verdict, 'error');
    assert.match(unknown.error, /unknown schedule no-such-schedule/);
  });
