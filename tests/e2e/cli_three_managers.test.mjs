// Goal: prove the `chorus` command and its C++ client library across three managers on
// 127.0.0.1, .2 and .3 (one node each, options with ports only): `status` through a seed list
// whose first seed is dead, `nodes` finding every manager through one seed's gossip, and a
// benchmark writer seeded with the three managers that loses no write while the leader's manager
// is SIGKILLed (its node dies with it) and the cluster elects a new leader.
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { Manager, freePort, waitFor } from './manager_harness.mjs';
import { runChorus, startChorus, killChorusProcesses } from './lib/cli.mjs';

const ips = ['127.0.0.1', '127.0.0.2', '127.0.0.3'];
const managers = [];

after(async () => {
  killChorusProcesses();
  await Promise.all(managers.map((m) => m.cleanup()));
});

const seedList = () => managers.map((m) => `${m.ip}:${m.extHttpPort}`).join(',');

async function json(args) {
  const r = await runChorus([...args, '--json']);
  assert.equal(r.code, 0, `chorus ${args.join(' ')}: ${r.stderr}`);
  return JSON.parse(r.stdout);
}

test('three managers: status, nodes and writes through a manager SIGKILL', { timeout: 180000 },
  async () => {
    const ports = {};
    for (const k of ['mInt', 'mExt', 'IntTcpPort', 'ExtTcpPort', 'IntHttpPort', 'ExtHttpPort']) {
      ports[k] = await freePort();
    }
    for (const ip of ips) {
      const seeds = ips.filter((x) => x !== ip).map((x) => `${x}:${ports.mInt}`).join(',');
      managers.push(new Manager({
        ip,
        nodes: [{ name: `node-${ip.split('.')[3]}`, options: { ClusterSize: 3,
          IntTcpPort: ports.IntTcpPort, ExtTcpPort: ports.ExtTcpPort,
          IntHttpPort: ports.IntHttpPort, ExtHttpPort: ports.ExtHttpPort } }],
        settings: { IntHttpPort: ports.mInt, ExtHttpPort: ports.mExt, GossipSeed: seeds,
          GossipIntervalMs: 300 },
      }));
    }
    await Promise.all(managers.map((m) => m.start()));
    await Promise.all(managers.map((m) => m.waitForCluster(2, 60000)));

    const status = await json(['--seed', `127.0.0.9:${ports.mExt}`, '--seed', seedList(),
      'status']);
    assert.equal(status.members.filter((x) => x.state === 'Leader').length, 1);
    assert.ok(status.members.filter((x) => x.state === 'Manager').length >= 3);

    const listed = await json(['--seed', `${ips[0]}:${ports.mExt}`, 'nodes']);
    assert.deepEqual(listed.managers.map((x) => x.nodes[0].name).sort(),
      ['node-1', 'node-2', 'node-3'], 'one seed leads to all three managers');

    const leaderIp = status.leader.split(':')[0];
    const victim = managers.find((m) => m.ip === leaderIp);
    const prefix = `three-${process.pid}`;
    const bench = startChorus(['--seed', seedList(), 'bench', 'write', '--duration-s', '15',
      '--connections', '2', '--max-retries=-1', '--max-reconnections=-1', '--stream-prefix',
      prefix, '--json']);
    await waitFor(async () => (await runChorus(['--seed', seedList(), 'read', `${prefix}-0`,
      '--count', '1'])).code === 0, { timeoutMs: 30000, what: 'the first benchmark writes' });
    await victim.kill();
    const { code } = await bench.exited;
    assert.equal(code, 0, `the benchmark failed: ${bench.stderr}`);
    const result = JSON.parse(bench.lines.at(-1));
    assert.equal(result.errors, 0, 'no write failed');
    assert.ok(result.events > 0);
    const survivors = managers.filter((m) => m !== victim)
      .map((m) => `${m.ip}:${m.extHttpPort}`).join(',');
    const after = await waitFor(async () => {
      const s = await json(['--seed', survivors, 'status']);
      return s.leader && s.leader.split(':')[0] !== leaderIp ? s : false;
    }, { timeoutMs: 30000, what: 'a new leader on another machine' });
    assert.notEqual(after.leader.split(':')[0], leaderIp);
  });
