// Goal: gossip members are read tolerantly, the leader is found, the lag is the leader's writer
// checkpoint minus the member's, states get the right classes, and this machine's node names
// are matched to members.
import { describe, expect, it } from 'vitest';
import type { NodeInfo } from '../src/api';
import {
  leaderOf, memberName, memberStateClass, nodeLag, parseGossip, replicationLag, sortMembers,
  supervisorStateClass,
} from '../src/cluster';

function member(state: string, port: number, writer: number, extra: object = {}) {
  return {
    instanceId: `id-${port}`, timeStamp: '2026-11-27T21:00:00.000000Z', state, isAlive: true,
    internalTcpIp: '127.0.0.1', internalTcpPort: port + 1, externalTcpIp: '127.0.0.1',
    externalTcpPort: port + 2, internalHttpIp: '127.0.0.1', internalHttpPort: port,
    externalHttpIp: '127.0.0.1', externalHttpPort: port + 3, lastCommitPosition: writer,
    writerCheckpoint: writer, chaserCheckpoint: writer, epochPosition: 0, epochNumber: 2,
    epochId: 'e', nodePriority: 0, ...extra,
  };
}

const gossip = {
  members: [
    member('Follower', 2000, 900),
    member('Leader', 1000, 1000),
    member('Manager', 3000, -1, { instanceId: '' }),
    member('Follower', 4000, 400, { isAlive: false }),
  ],
  serverIp: '127.0.0.1', serverPort: 3000,
};

function nodeInfo(name: string, int_http: number, ext_tcp: number, extra: object = {}) {
  return {
    name, cluster: 'default', state: 'Running', pid: 1, uptimeSeconds: 1, restarts: 0,
    lastExit: null, nextStartInMs: null,
    ports: { intTcp: 1, extTcp: ext_tcp, intHttp: int_http, extHttp: 3 },
    ip: { int: '127.0.0.1', ext: '127.0.0.1' }, dataFolder: '/d', dataBytes: 0, cpuSeconds: 0,
    rssBytes: 0, role: 'Follower', epochNumber: 2, writerCheckpoint: 900, chaserCheckpoint: 900,
    commitCheckpoint: 900, eventsWritten: 0, eventsRead: 0, ...extra,
  } as NodeInfo;
}

describe('gossip', () => {
  it('parses members with endpoints', () => {
    const members = parseGossip(gossip);
    expect(members).toHaveLength(4);
    expect(members[1].internalHttp).toBe('127.0.0.1:1000');
    expect(members[1].externalTcp).toBe('127.0.0.1:1002');
    expect(members[1].externalHttp).toBe('127.0.0.1:1003');
    expect(members[3].isAlive).toBe(false);
  });
  it('reads v20 httpEndPoint keys', () => {
    const m = parseGossip({ members: [{ state: 'Leader', httpEndPointIp: '10.0.0.1',
      httpEndPointPort: 2113 }] });
    expect(m[0].externalHttp).toBe('10.0.0.1:2113');
    expect(m[0].isAlive).toBe(true);
  });
  it('refuses an answer without members', () => {
    expect(() => parseGossip({})).toThrow(/members/);
    expect(() => parseGossip(null)).toThrow();
  });
  it('orders leader first, followers, then the manager and the dead', () => {
    const states = sortMembers(parseGossip(gossip)).map((m) => `${m.state}/${m.isAlive}`);
    expect(states).toEqual(['Leader/true', 'Follower/true', 'Manager/true', 'Follower/false']);
  });
});

describe('leader and lag', () => {
  it('computes lag = leader writer checkpoint - member writer checkpoint', () => {
    const members = parseGossip(gossip);
    const leader = leaderOf(members)!;
    expect(leader.internalHttp).toBe('127.0.0.1:1000');
    expect(replicationLag(members[0], leader)).toBe(100);
    expect(replicationLag(leader, leader)).toBe(0);
    expect(replicationLag(members[2], leader)).toBeNull();
    expect(replicationLag(members[0], null)).toBeNull();
  });
  it('never shows a negative lag (a follower seen after the leader moved on)', () => {
    const members = parseGossip({ members: [member('Leader', 1, 50), member('Follower', 2, 60)] });
    expect(replicationLag(members[1], leaderOf(members))).toBe(0);
  });
  it('prefers the leader of the higher epoch and ignores dead leaders', () => {
    const members = parseGossip({ members: [
      member('Leader', 1, 10, { epochNumber: 3 }), member('Leader', 2, 10, { epochNumber: 4 }),
      member('Leader', 3, 10, { epochNumber: 9, isAlive: false })] });
    expect(leaderOf(members)?.internalHttp).toBe('127.0.0.1:2');
  });
  it('computes a node row lag only for running nodes', () => {
    expect(nodeLag(nodeInfo('n1', 1, 2), 1000)).toBe(100);
    expect(nodeLag(nodeInfo('n1', 1, 2, { state: 'Stopped' }), 1000)).toBeNull();
    expect(nodeLag(nodeInfo('n1', 1, 2), null)).toBeNull();
  });
});

describe('states and names', () => {
  it('gives each member state a class, the leader its own', () => {
    expect(memberStateClass({ state: 'Leader', isAlive: true })).toBe('state-leader');
    expect(memberStateClass({ state: 'Follower', isAlive: true })).toBe('state-ok');
    expect(memberStateClass({ state: 'CatchingUp', isAlive: true })).toBe('state-transient');
    expect(memberStateClass({ state: 'Manager', isAlive: true })).toBe('state-manager');
    expect(memberStateClass({ state: 'Leader', isAlive: false })).toBe('state-dead');
    expect(memberStateClass({ state: 'ShuttingDown', isAlive: true })).toBe('state-bad');
  });
  it('gives each supervisor state a class', () => {
    expect(supervisorStateClass('Running')).toBe('state-ok');
    expect(supervisorStateClass('Starting')).toBe('state-transient');
    expect(supervisorStateClass('Backoff')).toBe('state-warn');
    expect(supervisorStateClass('Failed')).toBe('state-bad');
    expect(supervisorStateClass('Stopped')).toBe('state-stopped');
  });
  it('names members after this machine\'s nodes by internal HTTP or external TCP endpoint', () => {
    const members = parseGossip(gossip);
    const nodes = [nodeInfo('n1', 1000, 9), nodeInfo('n2', 9, 2002)];
    expect(memberName(members[1], nodes)).toBe('n1');
    expect(memberName(members[0], nodes)).toBe('n2');
    expect(memberName(members[2], nodes)).toBeNull();
  });
});
