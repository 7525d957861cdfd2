// The cluster view's logic: gossip members (PROTOCOL.md D2) normalised, joined with this
// machine's node names, ordered leader first, with the replication lag behind the leader and the
// CSS class of each state. Pure functions over plain data.
import type { NodeInfo } from './api';

export interface Member {
  instanceId: string;
  state: string;
  isAlive: boolean;
  timeStamp: string | null;
  epochNumber: number | null;
  writerCheckpoint: number | null;
  chaserCheckpoint: number | null;
  lastCommitPosition: number | null;
  internalHttp: string;
  externalHttp: string;
  internalTcp: string;
  externalTcp: string;
  nodePriority: number | null;
}

function num(v: unknown): number | null {
  return typeof v === 'number' && Number.isFinite(v) ? v : null;
}

function str(v: unknown): string {
  return typeof v === 'string' ? v : '';
}

function endpoint(ip: unknown, port: unknown): string {
  const p = num(port);
  return str(ip) && p ? `${str(ip)}:${p}` : '';
}

// Accepts the /gossip answer and returns its members; anything malformed becomes an empty list
// plus a thrown error, so the page shows "bad gossip" instead of a broken table.
export function parseGossip(answer: unknown): Member[] {
  if (!answer || typeof answer !== 'object' || !Array.isArray((answer as any).members)) {
    throw new Error('gossip answer has no "members" list');
  }
  return ((answer as any).members as Record<string, unknown>[]).map((m) => ({
    instanceId: str(m.instanceId),
    state: str(m.state) || 'Unknown',
    isAlive: m.isAlive !== false,
    timeStamp: str(m.timeStamp) || null,
    epochNumber: num(m.epochNumber),
    writerCheckpoint: num(m.writerCheckpoint),
    chaserCheckpoint: num(m.chaserCheckpoint),
    lastCommitPosition: num(m.lastCommitPosition),
    internalHttp: endpoint(m.internalHttpIp, m.internalHttpPort),
    externalHttp: endpoint(m.externalHttpIp ?? m.httpEndPointIp,
                           m.externalHttpPort ?? m.httpEndPointPort),
    internalTcp: endpoint(m.internalTcpIp, m.internalTcpPort),
    externalTcp: endpoint(m.externalTcpIp, m.externalTcpPort),
    nodePriority: num(m.nodePriority),
  }));
}

// The leader whose word counts: an alive Leader; with two (a split seen in gossip), the one of
// the higher epoch.
export function leaderOf(members: Member[]): Member | null {
  let best: Member | null = null;
  for (const m of members) {
    if (m.state !== 'Leader' || !m.isAlive) continue;
    if (!best || (m.epochNumber ?? -1) > (best.epochNumber ?? -1)) best = m;
  }
  return best;
}

// Bytes of log the member is behind the leader: leader writer checkpoint - member's. Null when
// there is no leader or the member has no log (a manager, a seed).
export function replicationLag(member: Member, leader: Member | null): number | null {
  if (!leader || member.state === 'Manager') return null;
  if (leader.writerCheckpoint === null || member.writerCheckpoint === null) return null;
  return Math.max(0, leader.writerCheckpoint - member.writerCheckpoint);
}

// The same lag from this machine's node rows (for the charts), taking the leader's writer
// checkpoint from gossip when the leader lives on another machine.
export function nodeLag(node: NodeInfo, leader_writer: number | null): number | null {
  if (leader_writer === null || node.writerCheckpoint === null || node.state !== 'Running') {
    return null;
  }
  return Math.max(0, leader_writer - node.writerCheckpoint);
}

const kStableStates = new Set(['Leader', 'Follower', 'ReadOnlyReplica']);
const kTransientStates = new Set(['Unknown', 'Initializing', 'DiscoverLeader', 'PreReplica',
  'CatchingUp', 'Clone', 'PreLeader', 'PreReadOnlyReplica', 'ReadOnlyLeaderless',
  'ResigningLeader']);

export function memberStateClass(member: Pick<Member, 'state' | 'isAlive'>): string {
  if (!member.isAlive) return 'state-dead';
  if (member.state === 'Leader') return 'state-leader';
  if (kStableStates.has(member.state)) return 'state-ok';
  if (member.state === 'Manager') return 'state-manager';
  if (kTransientStates.has(member.state)) return 'state-transient';
  return 'state-bad';
}

export function supervisorStateClass(state: string): string {
  switch (state) {
    case 'Running': return 'state-ok';
    case 'Starting': return 'state-transient';
    case 'Backoff': return 'state-warn';
    case 'Failed': return 'state-bad';
    case 'Stopped': return 'state-stopped';
    default: return 'state-bad';
  }
}

// This machine's name for a member: the node whose internal HTTP endpoint (or external TCP)
// matches. Members of other machines keep their endpoint as their name.
export function memberName(member: Member, nodes: NodeInfo[]): string | null {
  for (const n of nodes) {
    if (member.internalHttp && member.internalHttp === `${n.ip.int}:${n.ports.intHttp}`) {
      return n.name;
    }
    if (member.externalTcp && member.externalTcp === `${n.ip.ext}:${n.ports.extTcp}`) {
      return n.name;
    }
  }
  return null;
}

const kStateOrder: Record<string, number> = { Leader: 0, Follower: 1, ReadOnlyReplica: 2,
  Manager: 9 };

// Leader first, then followers, other states, managers last; ties by endpoint for a stable table.
export function sortMembers(members: Member[]): Member[] {
  const rank = (m: Member) => (m.isAlive ? 0 : 20) + (kStateOrder[m.state] ?? 5);
  return [...members].sort((a, b) => rank(a) - rank(b) ||
    a.internalHttp.localeCompare(b.internalHttp));
}
