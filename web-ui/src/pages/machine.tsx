// This machine page (supervisord's process list, Nomad's allocation view): one row per virtual
// node with its supervisor state, process figures and actions; rolling restart per cluster; the
// restart history; a node's log tail with follow; scavenges per node and per cluster with their
// progress; each node's disk use and the data volume's free space.
import { useEffect, useRef, useState } from 'preact/hooks';
import { ApiError, type ClusterScavengeAnswer, type ManagerInfo, type NodeInfo,
  type NodeScavengeAnswer } from '../api';
import { canOperate } from '../auth';
import { isStale } from '../stale';
import { Badge, ConfirmDialog, ErrorLine, LastUpdated, type ConfirmRequest } from '../components';
import { useApp, useLiveStore, useNow } from '../context';
import { supervisorStateClass } from '../cluster';
import { formatBytes, formatDuration, formatExit, formatTimeUtc } from '../format';
import { describeClusterScavenge, describeNodeScavenge, describeStep, scavengeFinished,
  volumeSummary } from '../scavenge';
import { HistoryPanel } from './history';
import { LogPanel } from './log';

type NodeAction = 'start' | 'stop' | 'restart' | 'resign';

interface ActionResult {
  ok: boolean;
  text: string;
}

const kActionLabels: Record<NodeAction, string> = {
  start: 'Start', stop: 'Stop', restart: 'Restart', resign: 'Resign leader',
};

function actionsFor(node: NodeInfo): NodeAction[] {
  const running = node.state === 'Running' || node.state === 'Starting' ||
    node.state === 'Backoff';
  const list: NodeAction[] = running ? ['stop', 'restart'] : ['start'];
  if (node.role === 'Leader' && node.state === 'Running') list.push('resign');
  return list;
}

function StateCell({ node }: { node: NodeInfo }) {
  return (
    <>
      <Badge cls={supervisorStateClass(node.state)}>{node.state}</Badge>
      {node.state === 'Backoff' && node.nextStartInMs !== null && (
        <div class="sub">next start in {formatDuration(node.nextStartInMs / 1000)}</div>
      )}
    </>
  );
}

function NodeRow({ node, cpu_load, allowed, onAction, onScavenge, onLog }: {
  node: NodeInfo; cpu_load: number | null; allowed: boolean;
  onAction: (node: NodeInfo, action: NodeAction) => void; onScavenge: (node: NodeInfo) => void;
  onLog: (name: string) => void;
}) {
  return (
    <tr data-testid="node-row" data-name={node.name} data-state={node.state}
        data-pid={node.pid ?? ''} data-restarts={node.restarts} data-role={node.role ?? ''}>
      <td data-label="Node"><strong>{node.name}</strong>
        <div class="sub">{node.cluster}</div></td>
      <td data-label="State"><StateCell node={node} /></td>
      <td data-label="Role">{node.role ?? '–'}</td>
      <td data-label="PID" class="num" data-testid="node-pid">{node.pid ?? '–'}</td>
      <td data-label="Uptime" class="num">{formatDuration(node.uptimeSeconds)}</td>
      <td data-label="Restarts" class="num" data-testid="node-restarts">{node.restarts}</td>
      <td data-label="Last exit" class="wrap" title={formatTimeUtc(node.lastExit?.at)}>
        {formatExit(node.lastExit)}</td>
      <td data-label="CPU" class="num">
        {cpu_load === null ? '–' : `${(cpu_load * 100).toFixed(1)} %`}</td>
      <td data-label="Memory" class="num">{formatBytes(node.rssBytes)}</td>
      <td data-label="Data" class="num">{formatBytes(node.dataBytes)}</td>
      <td data-label="Actions"><div class="actions">
        {actionsFor(node).map((a) => (
          <button type="button" data-testid={`action-${a}`} disabled={!allowed}
                  title={allowed ? '' : 'log in to act'} onClick={() => onAction(node, a)}>
            {kActionLabels[a]}
          </button>
        ))}
        {node.state === 'Running' && (
          <button type="button" data-testid="action-scavenge" disabled={!allowed}
                  title={allowed ? 'remove deleted and expired events, free their space'
                    : 'log in to act'} onClick={() => onScavenge(node)}>Scavenge</button>
        )}
        <button type="button" class="link" data-testid="action-log"
                onClick={() => onLog(node.name)}>Log</button>
      </div></td>
    </tr>
  );
}

function describeError(e: unknown): string {
  return e instanceof ApiError || e instanceof Error ? e.message : String(e);
}

function useActions() {
  const { api, store, session } = useApp();
  const [pending, setPending] = useState<string | null>(null);
  const [result, setResult] = useState<ActionResult | null>(null);
  const run = async (label: string, call: () => Promise<unknown>, done: (a: any) => string) => {
    setPending(label);
    setResult(null);
    try {
      const answer = await call();
      setResult({ ok: true, text: `${label}: ${done(answer)}` });
    } catch (e) {
      setResult({ ok: false, text: `${label} failed: ${describeError(e)}` });
    } finally {
      setPending(null);
      void store.poll();
    }
  };
  const nodeAction = (node: NodeInfo, action: NodeAction) =>
    run(`${kActionLabels[action]} ${node.name}`,
      () => api.nodeAction(node.name, action, session?.authorization ?? null), () => 'done');
  const rolling = (cluster: string) =>
    run(`Rolling restart of ${cluster}`,
      () => api.rollingRestart(cluster, session?.authorization ?? null),
      (a) => (a?.steps ?? []).map((s: any) => `${s.node} ${s.action} ${s.ms} ms`).join(', ') ||
        'done');
  return { pending, result, nodeAction, rolling };
}

const kScavengePollMs = 1000;

// Scavenges started from this page (and a cluster's last one), followed until they end.
function useScavenges() {
  const { api, session } = useApp();
  const auth = session?.authorization ?? null;
  const [nodes, setNodes] = useState<Record<string, NodeScavengeAnswer>>({});
  const [clusters, setClusters] = useState<Record<string, ClusterScavengeAnswer>>({});
  const [error, setError] = useState<string | null>(null);
  const alive = useRef(true);
  useEffect(() => () => { alive.current = false; }, []);
  const pause = () => new Promise((r) => setTimeout(r, kScavengePollMs));
  const followNode = async (name: string) => {
    while (alive.current) {
      const a = await api.nodeScavenge(name, auth);
      if (!alive.current) return;
      setNodes((prev) => ({ ...prev, [name]: a }));
      if (!a.scavenge || scavengeFinished(a.scavenge.scavengeResult)) return;
      await pause();
    }
  };
  const followCluster = async (cluster: string, first: ClusterScavengeAnswer) => {
    let a = first;
    while (alive.current) {
      setClusters((prev) => ({ ...prev, [cluster]: a }));
      if (a.state !== 'Running') return;
      await pause();
      a = await api.clusterScavenge(cluster, auth);
    }
  };
  const guard = async (call: () => Promise<void>) => {
    setError(null);
    try {
      await call();
    } catch (e) {
      if (alive.current) setError(`Scavenge failed: ${describeError(e)}`);
    }
  };
  const scavengeNode = (node: NodeInfo) => guard(async () => {
    await api.scavengeNode(node.name, auth);
    await followNode(node.name);
  });
  const scavengeCluster = (cluster: string) => guard(async () => {
    await followCluster(cluster, await api.scavengeCluster(cluster, auth));
  });
  // A cluster scavenge started elsewhere (or before a reload) shows too.
  const showCluster = (cluster: string) => guard(async () => {
    const a = await api.clusterScavenge(cluster, auth);
    if (a.state !== 'None') await followCluster(cluster, a);
  });
  return { nodes, clusters, error, scavengeNode, scavengeCluster, showCluster };
}

export function MachinePage() {
  const store = useLiveStore();
  const { session } = useApp();
  const now = useNow();
  const [confirm, setConfirm] = useState<ConfirmRequest | null>(null);
  const [log_node, setLogNode] = useState<string | null>(null);
  const actions = useActions();
  const scavenges = useScavenges();
  const answer = store.nodes.value;
  const nodes = answer?.nodes ?? [];
  const clusters = [...new Set(nodes.map((n) => n.cluster))];
  const allowed = canOperate(session) && actions.pending === null;
  const cluster_key = clusters.join(',');
  useEffect(() => {
    if (canOperate(session)) clusters.forEach((c) => void scavenges.showCluster(c));
  }, [cluster_key, session?.authorization]);
  const askNode = (node: NodeInfo, action: NodeAction) => setConfirm({
    title: `${kActionLabels[action]} ${node.name}`,
    detail: `${kActionLabels[action]} node ${node.name} (pid ${node.pid ?? 'none'})?`,
    run: () => void actions.nodeAction(node, action),
  });
  const askRolling = (cluster: string) => setConfirm({
    title: `Rolling restart of ${cluster}`,
    detail: `Restart this machine's nodes of cluster ${cluster} one at a time, followers ` +
      'first and the leader last?',
    run: () => void actions.rolling(cluster),
  });
  const askScavengeNode = (node: NodeInfo) => setConfirm({
    title: `Scavenge ${node.name}`,
    detail: `Scavenge node ${node.name}: remove the events of deleted streams and those past ` +
      'their $maxCount, $maxAge or $tb, and give their space back? It runs in the background ' +
      'while the node keeps serving.',
    run: () => void scavenges.scavengeNode(node),
  });
  const askScavengeCluster = (cluster: string) => setConfirm({
    title: `Scavenge ${cluster}`,
    detail: `Scavenge this machine's nodes of cluster ${cluster} one at a time, followers ` +
      'first and the leader last, each after the previous one finished?',
    run: () => void scavenges.scavengeCluster(cluster),
  });
  return (
    <section>
      <div class="page-head">
        <h1>This machine</h1>
        <LastUpdated freshness={store.nodes} now={now} />
      </div>
      {answer && <ManagerPanel manager={answer.manager} />}
      <ErrorLine error={store.nodes.last_error} />
      {!canOperate(session) && (
        <p class="muted" data-testid="read-only">
          Read-only: <a href="#/login">log in</a> as a user of $admins or $ops to act.</p>
      )}
      <ActionStatus pending={actions.pending} result={actions.result} />
      <div class={`table-wrap ${isStale(store.nodes, now) ? 'stale-data' : ''}`}>
        <table class="cards" data-testid="nodes-table">
          <thead>
            <tr><th>Node</th><th>State</th><th>Role</th><th>PID</th><th>Uptime</th>
              <th>Restarts</th><th>Last exit</th><th>CPU</th><th>Memory</th><th>Data</th>
              <th>Actions</th></tr>
          </thead>
          <tbody>
            {nodes.map((n) => (
              <NodeRow key={n.name} node={n} allowed={allowed} onAction={askNode}
                       onScavenge={askScavengeNode} onLog={setLogNode}
                       cpu_load={store.history.latestRate(n.name, 'cpu_seconds')} />
            ))}
          </tbody>
        </table>
      </div>
      <div class="toolbar">
        {clusters.map((c) => (
          <button type="button" data-testid="action-rolling-restart" disabled={!allowed}
                  onClick={() => askRolling(c)}>Rolling restart: {c}</button>
        ))}
        {clusters.map((c) => (
          <button type="button" data-testid="action-scavenge-cluster" data-cluster={c}
                  disabled={!allowed} onClick={() => askScavengeCluster(c)}>
            Scavenge: {c}</button>
        ))}
      </div>
      <ScavengePanel nodes={scavenges.nodes} clusters={scavenges.clusters}
                     error={scavenges.error} />
      <DiskPanel nodes={nodes} />
      <div class="two-col">
        <HistoryPanel />
        <LogPanel node={log_node ?? nodes[0]?.name ?? null} nodes={nodes.map((n) => n.name)}
                  onSelect={setLogNode} />
      </div>
      <ConfirmDialog request={confirm} onClose={() => setConfirm(null)} />
    </section>
  );
}

function ManagerPanel({ manager: m }: { manager: ManagerInfo }) {
  return (
    <div class="summary">
      <div class="tile"><span class="label">Manager</span><span class="value">{m.name}</span></div>
      <div class="tile"><span class="label">Version</span>
        <span class="value">{m.version}</span></div>
      <div class="tile"><span class="label">Uptime</span>
        <span class="value">{formatDuration(m.uptimeSeconds)}</span></div>
      <div class="tile"><span class="label">Peers</span>
        <span class="value small">{m.peers?.length ? m.peers.join(', ') : 'none'}</span></div>
    </div>
  );
}

function ScavengePanel({ nodes, clusters, error }: {
  nodes: Record<string, NodeScavengeAnswer>; clusters: Record<string, ClusterScavengeAnswer>;
  error: string | null;
}) {
  const node_list = Object.values(nodes);
  const cluster_list = Object.values(clusters);
  if (!error && node_list.length === 0 && cluster_list.length === 0) return null;
  return (
    <div class="panel" data-testid="scavenge-panel">
      <h2>Scavenges</h2>
      {error && <p class="action-status failed" data-testid="scavenge-error">{error}</p>}
      {node_list.map((a) => (
        <p data-testid="scavenge-node" data-name={a.node}
           data-result={a.scavenge?.scavengeResult ?? ''}
           data-saved-bytes={a.scavenge?.spaceSavedBytes ?? ''}>
          {describeNodeScavenge(a)}</p>
      ))}
      {cluster_list.map((c) => (
        <div data-testid="scavenge-cluster" data-cluster={c.cluster} data-state={c.state}
             data-started={c.startedAt ?? ''}
             data-saved-bytes={c.spaceSavedBytes ?? ''}>
          <p>{describeClusterScavenge(c)}</p>
          <ul>
            {c.nodes.map((step) => (
              <li data-testid="scavenge-step" data-name={step.node} data-state={step.state}>
                <strong>{step.node}</strong>: {describeStep(step)}</li>
            ))}
          </ul>
        </div>
      ))}
    </div>
  );
}

// Each node's disk use (from its /stats) and the data volume's free space.
function DiskPanel({ nodes }: { nodes: NodeInfo[] }) {
  const volume = volumeSummary(nodes);
  return (
    <div class="panel" data-testid="disk-panel">
      <h2>Disk use</h2>
      <div class="summary">
        <div class={`tile ${volume?.low ? 'state-bad' : ''}`} data-testid="volume-free"
             data-free-bytes={volume?.free_bytes ?? ''}
             data-total-bytes={volume?.total_bytes ?? ''}>
          <span class="label">Data volume free</span>
          <span class="value">{volume ? `${formatBytes(volume.free_bytes)} of ` +
            `${formatBytes(volume.total_bytes)}` : '–'}</span>
          {volume?.low && <span class="sub">writes refused: below the minimum</span>}
        </div>
      </div>
      <div class="table-wrap">
        <table class="cards" data-testid="disk-table">
          <thead>
            <tr><th>Node</th><th>Database</th><th>Log</th><th>Indexes</th><th>WAL</th>
              <th>Reclaimable</th><th>Volume free</th></tr>
          </thead>
          <tbody>
            {nodes.map((n) => {
              const s = n.space;
              return (
                <tr data-testid="disk-row" data-name={n.name}
                    data-database-bytes={s?.databaseBytes ?? ''}
                    data-log-bytes={s?.logBytes ?? ''}
                    data-reclaimable-bytes={s?.reclaimableBytes ?? ''}>
                  <td data-label="Node"><strong>{n.name}</strong></td>
                  <td data-label="Database" class="num">{formatBytes(s?.databaseBytes)}</td>
                  <td data-label="Log" class="num"
                      title={s?.breakdownAt ? `measured ${formatTimeUtc(s.breakdownAt)}` : ''}>
                    {s?.breakdownAt ? formatBytes(s.logBytes) : '–'}</td>
                  <td data-label="Indexes" class="num">
                    {s?.breakdownAt ? formatBytes(s.indexBytes) : '–'}</td>
                  <td data-label="WAL" class="num">{formatBytes(s?.walBytes)}</td>
                  <td data-label="Reclaimable" class="num">{formatBytes(s?.reclaimableBytes)}</td>
                  <td data-label="Volume free" class="num">
                    {s && s.diskTotalBytes > 0 ? formatBytes(s.diskFreeBytes) : '–'}</td>
                </tr>
              );
            })}
          </tbody>
        </table>
      </div>
    </div>
  );
}

function ActionStatus({ pending, result }: { pending: string | null;
                                             result: ActionResult | null }) {
  if (pending) {
    return <p class="action-status pending" data-testid="action-pending">{pending}…</p>;
  }
  if (!result) return null;
  return (
    <p class={`action-status ${result.ok ? 'ok' : 'failed'}`} data-testid="action-result"
       data-ok={String(result.ok)}>{result.text}</p>
  );
}
