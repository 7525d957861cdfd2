// Cluster page: one row per gossip member (EventStore's Cluster Status), leader first, with the
// L/W/C checkpoints and the lag behind the leader; refreshed by the live store every second.
import { isStale } from '../stale';
import { Badge, ErrorLine, LastUpdated } from '../components';
import { useEffect, useState } from 'preact/hooks';
import { useApp, useLiveStore, useNow } from '../context';
import {
  leaderOf, memberName, memberStateClass, replicationLag, sortMembers, type Member,
} from '../cluster';
import { formatAgo, formatBytes, formatCheckpoints, parseIsoMs } from '../format';
import type { NodeInfo } from '../api';

function MemberRow({ member, leader, nodes, now }: { member: Member; leader: Member | null;
                                                    nodes: NodeInfo[]; now: number }) {
  const name = memberName(member, nodes);
  const lag = replicationLag(member, leader);
  const is_manager = member.state === 'Manager';
  return (
    <tr data-testid="member-row" data-state={member.state} data-alive={String(member.isAlive)}
        data-name={name ?? ''} class={member.state === 'Leader' ? 'leader-row' : ''}>
      <td data-label="Name">
        <strong>{name ?? member.internalHttp}</strong>
        {name && <div class="sub">{member.internalHttp}</div>}
      </td>
      <td data-label="State"><Badge cls={memberStateClass(member)}>{member.state}</Badge></td>
      <td data-label="Alive">
        <Badge cls={member.isAlive ? 'state-ok' : 'state-dead'}>
          {member.isAlive ? 'Alive' : 'Dead'}
        </Badge>
      </td>
      <td data-label="Epoch" class="num">{is_manager ? 'n/a' : member.epochNumber ?? '–'}</td>
      <td data-label="L/W/C" class="mono">
        {is_manager ? 'n/a' : formatCheckpoints(member.lastCommitPosition,
          member.writerCheckpoint, member.chaserCheckpoint)}
      </td>
      <td data-label="Lag" class="num" data-testid="member-lag">
        {lag === null ? '–' : lag === 0 ? 'caught up' : formatBytes(lag)}
      </td>
      <td data-label="Ext TCP" class="mono">{member.externalTcp || '–'}</td>
      <td data-label="Ext HTTP" class="mono">{member.externalHttp || '–'}</td>
      <td data-label="Last heard">{formatAgo(parseIsoMs(member.timeStamp), now)}</td>
    </tr>
  );
}

function Summary({ members }: { members: Member[] }) {
  const leader = leaderOf(members);
  const db = members.filter((m) => m.state !== 'Manager');
  const alive = db.filter((m) => m.isAlive).length;
  return (
    <div class="summary">
      <div class="tile"><span class="label">Leader</span>
        <span class="value" data-testid="leader-endpoint">
          {leader ? leader.externalTcp || leader.internalHttp : 'none'}
        </span></div>
      <div class="tile"><span class="label">Nodes alive</span>
        <span class="value">{alive} / {db.length}</span></div>
      <div class="tile"><span class="label">Epoch</span>
        <span class="value">{leader?.epochNumber ?? '–'}</span></div>
    </div>
  );
}

// A choice of cluster when this manager serves more than one.
function ClusterChoice() {
  const { api, store } = useApp();
  const [clusters, setClusters] = useState<string[]>([]);
  useEffect(() => {
    api.clusters().then((a) => setClusters(a.clusters ?? []), () => setClusters([]));
  }, [api]);
  if (clusters.length < 2) return null;
  return (
    <select data-testid="cluster-choice" value={store.cluster ?? clusters[0]}
            aria-label="cluster"
            onChange={(e) => store.setCluster((e.target as HTMLSelectElement).value)}>
      {clusters.map((c) => <option value={c}>{c}</option>)}
    </select>
  );
}

export function ClusterPage() {
  const store = useLiveStore();
  const now = useNow();
  const gossip_href = `/gossip?format=json${store.cluster
    ? `&cluster=${encodeURIComponent(store.cluster)}` : ''}`;
  const members = store.gossip.value ? sortMembers(store.gossip.value) : [];
  const leader = leaderOf(members);
  const nodes = store.nodes.value?.nodes ?? [];
  return (
    <section>
      <div class="page-head">
        <h1>Cluster</h1>
        <ClusterChoice />
        <LastUpdated freshness={store.gossip} now={now} />
        <a href={gossip_href} target="_blank" rel="noreferrer" data-testid="gossip-json">
          gossip JSON</a>
      </div>
      <ErrorLine error={store.gossip.last_error} />
      <Summary members={members} />
      <div class={`table-wrap ${isStale(store.gossip, now) ? 'stale-data' : ''}`}>
        <table class="cards" data-testid="cluster-table">
          <thead>
            <tr><th>Name</th><th>State</th><th>Alive</th><th>Epoch</th><th>L/W/C</th>
              <th>Lag</th><th>Ext TCP</th><th>Ext HTTP</th><th>Last heard</th></tr>
          </thead>
          <tbody>
            {members.map((m) => (
              <MemberRow key={m.internalHttp + m.instanceId} member={m} leader={leader}
                         nodes={nodes} now={now} />
            ))}
          </tbody>
        </table>
      </div>
      {members.length === 0 && !store.gossip.last_error && <p class="muted">No members yet.</p>}
    </section>
  );
}
