// Projections page: every projection the leader runs (the standard ones and user projections)
// with its status, a progress bar and the rate it processes events at; one projection's detail
// with its query (read-only), state, result and statistics; enable, disable, reset and delete
// (confirmed first) and a form to create one, offered to $admins/$ops only (the node refuses
// them to others as well). Signed-in users may look; the node shows nothing to anonymous ones.
import { useEffect, useMemo, useRef, useState } from 'preact/hooks';
import { canOperate } from '../auth';
import { ConfirmDialog, ErrorLine, type ConfirmRequest } from '../components';
import { useApp } from '../context';
import {
  newProjectionProblem, processingRate, ProjectionsClient, statusClass,
  type NewProjection, type ProjectionCommand, type ProjectionMode, type ProjectionRow,
} from '../projections';
import { projectionHash } from '../route';

// The list and the open projection are read again this often.
const kRefreshMs = 2000;

interface Status { text: string; ok: boolean | null }

function message(e: unknown): string {
  return e instanceof Error ? e.message : String(e);
}

function CreateProjection({ onCreate }: { onCreate: (p: NewProjection) => Promise<boolean> }) {
  const [name, setName] = useState('');
  const [mode, setMode] = useState<ProjectionMode>('continuous');
  const [emit, setEmit] = useState(false);
  const [query, setQuery] = useState('');
  const [problem, setProblem] = useState<string | null>(null);
  const submit = async (e: Event) => {
    e.preventDefault();
    const p = { name: name.trim(), mode, emit, query };
    const why = newProjectionProblem(p);
    setProblem(why);
    if (!why && await onCreate(p)) { setName(''); setQuery(''); setEmit(false); }
  };
  return (
    <form class="panel" onSubmit={submit} data-testid="projection-create">
      <h2>New projection</h2>
      <div class="inline-form">
        <input type="text" placeholder="name" aria-label="name" value={name}
               data-testid="projection-create-name"
               onInput={(e) => setName((e.target as HTMLInputElement).value)} />
        <select aria-label="mode" value={mode} data-testid="projection-create-mode"
                onChange={(e) => setMode((e.target as HTMLSelectElement).value as ProjectionMode)}>
          <option value="continuous">Continuous</option>
          <option value="onetime">One-time</option>
          <option value="transient">Transient</option>
        </select>
        <label><input type="checkbox" checked={emit} data-testid="projection-create-emit"
                      onChange={(e) => setEmit((e.target as HTMLInputElement).checked)} />
          {' '}may emit</label>
        <button type="submit" class="primary" data-testid="projection-create-submit">
          Create</button>
      </div>
      <textarea class="query" rows={6} aria-label="query" value={query} spellcheck={false}
                placeholder="fromAll().when({ $init: function () { return {}; } })"
                data-testid="projection-create-query"
                onInput={(e) => setQuery((e.target as HTMLTextAreaElement).value)} />
      <ErrorLine error={problem} />
    </form>
  );
}

interface Actions {
  command: (name: string, command: ProjectionCommand) => void;
  remove: (name: string) => void;
}

function ProjectionLine({ p, rate, actions }: { p: ProjectionRow; rate: number | null;
                                                 actions: Actions | null }) {
  const running = p.status === 'Running';
  return (
    <tr data-testid="projection-row" data-name={p.name} data-status={p.status}>
      <td class="mono"><a href={projectionHash(p.name)}>{p.name}</a></td>
      <td>{p.mode}</td>
      <td><span class={`badge ${statusClass(p.status)}`} title={p.stateReason}
                data-testid="projection-status">{p.status}</span></td>
      <td>
        <div class="progress" title={`${p.progress.toFixed(1)} %`}>
          <div class="progress-bar" style={{ width: `${p.progress}%` }}
               data-testid="projection-progress" data-progress={p.progress.toFixed(1)} />
        </div>
      </td>
      <td class="num" data-testid="projection-rate">
        {rate === null ? '—' : `${rate.toFixed(rate < 10 ? 1 : 0)}/s`}</td>
      <td class="num">{p.eventsProcessed}</td>
      <td>{actions && <div class="actions">
        {running
          ? <button type="button" data-testid="projection-disable"
                    onClick={() => actions.command(p.name, 'disable')}>Disable</button>
          : <button type="button" data-testid="projection-enable"
                    onClick={() => actions.command(p.name, 'enable')}>Enable</button>}
        <button type="button" data-testid="projection-reset"
                onClick={() => actions.command(p.name, 'reset')}>Reset</button>
        {!p.name.startsWith('$') && <button type="button" data-testid="projection-delete"
                onClick={() => actions.remove(p.name)}>Delete</button>}
      </div>}</td>
    </tr>
  );
}

function Detail({ client, row }: { client: ProjectionsClient; row: ProjectionRow }) {
  const [query, setQuery] = useState<string | null>(null);
  const [state, setState] = useState<string | null>(null);
  const [result, setResult] = useState<string | null>(null);
  const [error, setError] = useState<string | null>(null);
  useEffect(() => {
    let live = true;
    const user = !row.name.startsWith('$');
    Promise.all([client.query(row.name), user ? client.state(row.name) : Promise.resolve(''),
      user ? client.state(row.name, true) : Promise.resolve('')]).then(([q, s, r]) => {
      if (!live) return;
      setQuery(q); setState(s); setResult(r); setError(null);
    }, (e: unknown) => live && setError(message(e)));
    return () => { live = false; };
  }, [client, row.name, row.eventsProcessed, row.status]);
  return (
    <div class="panel" data-testid="projection-detail" data-name={row.name}>
      <h2>{row.name}</h2>
      <ErrorLine error={error} />
      {row.stateReason && <p class="error" data-testid="projection-reason">{row.stateReason}</p>}
      <h3>Query</h3>
      <textarea class="query" rows={8} readOnly value={query ?? ''} aria-label="query"
                data-testid="projection-query" />
      <div class="columns">
        <div><h3>State</h3><pre data-testid="projection-state">{state || '—'}</pre></div>
        <div><h3>Result</h3><pre data-testid="projection-result">{result || '—'}</pre></div>
      </div>
      <h3>Statistics</h3>
      <pre data-testid="projection-statistics">{JSON.stringify(row.raw, null, 2)}</pre>
    </div>
  );
}

export function ProjectionsPage({ open }: { open: string | null }) {
  const { api, session } = useApp();
  const client = useMemo(() => new ProjectionsClient(api, session?.authorization ?? null),
    [api, session]);
  const [rows, setRows] = useState<ProjectionRow[] | null>(null);
  const [rates, setRates] = useState<Map<string, number | null>>(new Map());
  const samples = useRef(new Map<string, { events: number; at_ms: number }>());
  const [error, setError] = useState<string | null>(null);
  const [status, setStatus] = useState<Status | null>(null);
  const [confirm, setConfirm] = useState<ConfirmRequest | null>(null);
  const [tick, setTick] = useState(0);
  const operator = canOperate(session);

  useEffect(() => {
    if (!session) return undefined;
    let live = true;
    client.list().then((list) => {
      if (!live) return;
      const now = Date.now();
      const next = new Map<string, number | null>();
      for (const p of list) {
        const sample = { events: p.eventsProcessed, at_ms: now };
        next.set(p.name, processingRate(samples.current.get(p.name), sample));
        samples.current.set(p.name, sample);
      }
      setRows(list); setRates(next); setError(null);
    }, (e: unknown) => live && setError(message(e)));
    const timer = setTimeout(() => setTick((t) => t + 1), kRefreshMs);
    return () => { live = false; clearTimeout(timer); };
  }, [client, session, tick]);

  if (!session) {
    return <section><div class="page-head"><h1>Projections</h1></div>
      <p class="muted" data-testid="projections-needs-login"><a href="#/login">Log in</a> to see
        the projections.</p></section>;
  }
  const run = async (what: string, change: () => Promise<unknown>): Promise<boolean> => {
    setStatus({ text: `${what}…`, ok: null });
    try {
      await change();
      setStatus({ text: `${what}: done.`, ok: true });
      return true;
    } catch (e) {
      setStatus({ text: `${what} failed: ${message(e)}`, ok: false });
      return false;
    } finally {
      setTick((t) => t + 1);
    }
  };
  const kWhat: Record<ProjectionCommand, string> = {
    enable: 'goes on from where it stopped.',
    disable: 'stops where it is and keeps its state until enabled again.',
    reset: 'starts again from the beginning of $all with a fresh state.',
  };
  const actions: Actions | null = operator ? {
    command: (name, command) => {
      const title = `${command[0].toUpperCase()}${command.slice(1)} ${name}`;
      setConfirm({ title, detail: `${name} ${kWhat[command]}`,
        run: () => void run(title, () => client.command(name, command)) });
    },
    remove: (name) => setConfirm({ title: `Delete ${name}`,
      detail: `${name} is stopped and removed with its checkpoints; the streams it emitted to ` +
        'stay.',
      run: () => void run(`Delete ${name}`, () => client.remove(name)) }),
  } : null;
  const openRow = open ? rows?.find((r) => r.name === open) : undefined;
  return (
    <section>
      <div class="page-head"><h1>Projections</h1></div>
      {operator && <CreateProjection onCreate={(p) =>
        run(`Create ${p.name || 'one-time projection'}`, () => client.create(p))} />}
      {status && <p class={`action-status ${status.ok === null ? 'pending'
        : status.ok ? 'ok' : 'failed'}`} data-testid="projection-action-result"
        data-ok={status.ok === null ? '' : String(status.ok)}>{status.text}</p>}
      <ErrorLine error={error} />
      <div class="table-wrap">
        <table data-testid="projections-table">
          <thead><tr><th>Name</th><th>Mode</th><th>Status</th><th>Progress</th><th>Rate</th>
            <th>Events</th><th>{operator ? 'Actions' : ''}</th></tr></thead>
          <tbody>
            {(rows ?? []).map((p) => <ProjectionLine key={p.name} p={p}
              rate={rates.get(p.name) ?? null} actions={actions} />)}
          </tbody>
        </table>
      </div>
      {openRow && <Detail client={client} row={openRow} />}
      {open && rows && !openRow && <p class="muted">No projection named {open}.</p>}
      <ConfirmDialog request={confirm} onClose={() => setConfirm(null)} />
    </section>
  );
}
