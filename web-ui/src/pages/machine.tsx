// This machine page (supervisord's process list, Nomad's allocation view): one row per virtual
// node with its supervisor state, process figures and actions; rolling restart per cluster; the
// restart history; a node's log tail with follow.
import { useState } from 'preact/hooks';
import { ApiError, type ManagerInfo, type NodeInfo } from '../api';
import { canOperate } from '../auth';
import { isStale } from '../stale';
import { Badge, ConfirmDialog, ErrorLine, LastUpdated, type ConfirmRequest } from '../components';
import { useApp, useLiveStore, useNow } from '../context';
import { supervisorStateClass } from '../cluster';
import { formatBytes, formatDuration, formatExit, formatTimeUtc } from '../format';
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

function NodeRow({ node, cpu_load, allowed, onAction, onLog }: {
  node: NodeInfo; cpu_load: number | null; allowed: boolean;
  onAction: (node: NodeInfo, action: NodeAction) => void; onLog: (name: string) => void;
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

export function MachinePage() {
  const store = useLiveStore();
  const { session } = useApp();
  const now = useNow();
  const [confirm, setConfirm] = useState<ConfirmRequest | null>(null);
  const [log_node, setLogNode] = useState<string | null>(null);
  const actions = useActions();
  const answer = store.nodes.value;
  const nodes = answer?.nodes ?? [];
  const clusters = [...new Set(nodes.map((n) => n.cluster))];
  const allowed = canOperate(session) && actions.pending === null;
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
                       onLog={setLogNode}
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
      </div>
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
