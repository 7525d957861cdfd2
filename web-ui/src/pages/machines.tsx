// Machines page: every manager of the cluster with its nodes' supervisor states and roles, as
// this manager reads them from its peer managers (GET /api/machines), re-read every few seconds.
// A peer that does not answer is shown as unreachable with the reason.
import { useEffect, useState } from 'preact/hooks';
import { Badge, ErrorLine } from '../components';
import { useApp } from '../context';
import { supervisorStateClass } from '../cluster';
import { formatDuration, formatExit } from '../format';
import { parseMachines, type MachineSummary } from '../machines';

const kRefreshMs = 2000;

function MachinePanel({ m }: { m: MachineSummary }) {
  return (
    <div class="panel" data-testid="machine" data-address={m.address} data-name={m.name}
         data-reachable={String(m.reachable)} data-self={String(m.self)}>
      <div class="panel-head">
        <h2>{m.name}{m.self && <span class="muted"> (this machine)</span>}</h2>
        <span class="mono muted">{m.address}</span>
        {m.reachable
          ? <Badge cls="state-ok">{m.running}/{m.nodes.length} running</Badge>
          : <Badge cls="state-bad">unreachable</Badge>}
      </div>
      {m.error && <p class="error" data-testid="machine-error">{m.error}</p>}
      {m.reachable && (
        <table class="compact">
          <thead><tr><th>Node</th><th>Cluster</th><th>State</th><th>Role</th><th>PID</th>
            <th>Uptime</th><th>Restarts</th><th>Last exit</th></tr></thead>
          <tbody>
            {m.nodes.map((n) => (
              <tr data-testid="machine-node" data-name={n.name} data-state={n.state}
                  data-role={n.role ?? ''}>
                <td><strong>{n.name}</strong></td>
                <td>{n.cluster}</td>
                <td><Badge cls={supervisorStateClass(n.state)}>{n.state}</Badge></td>
                <td>{n.role ?? '–'}</td>
                <td class="num">{n.pid ?? '–'}</td>
                <td class="num">{formatDuration(n.uptimeSeconds)}</td>
                <td class="num">{n.restarts}</td>
                <td class="wrap">{formatExit(n.lastExit)}</td>
              </tr>
            ))}
          </tbody>
        </table>
      )}
    </div>
  );
}

export function MachinesPage() {
  const { api } = useApp();
  const [machines, setMachines] = useState<MachineSummary[] | null>(null);
  const [error, setError] = useState<string | null>(null);
  useEffect(() => {
    let live = true;
    const load = async () => {
      try {
        const answer = parseMachines(await api.machines());
        if (live) { setMachines(answer); setError(null); }
      } catch (e) {
        if (live) setError(e instanceof Error ? e.message : String(e));
      }
    };
    void load();
    const timer = setInterval(load, kRefreshMs);
    return () => { live = false; clearInterval(timer); };
  }, [api]);
  return (
    <section>
      <div class="page-head"><h1>Machines</h1>
        <span class="muted">every manager of the cluster, reached through its peers</span>
      </div>
      <ErrorLine error={error} />
      <div data-testid="machines" data-count={machines?.length ?? 0}>
        {(machines ?? []).map((m) => <MachinePanel m={m} />)}
      </div>
    </section>
  );
}
