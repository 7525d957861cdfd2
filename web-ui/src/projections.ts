// The Projections page's logic: EventStore's projections API (through the manager's
// /api/projections and /api/projection relay, which a follower passes on to the leader) as typed
// calls, its statistics checked and turned into rows, the processing rate from two samples, and
// the create form's rules checked before anything is sent.
import type { ApiClient } from './api';

export interface ProjectionRow {
  name: string;
  mode: string;
  status: string;
  stateReason: string;
  progress: number;  // percent, 0..100
  position: string;
  lastCheckpoint: string;
  eventsProcessed: number;
  writesInProgress: number;
  version: number;
  raw: Record<string, unknown>;  // every field, for the statistics view
}

export type ProjectionMode = 'continuous' | 'onetime' | 'transient';
export type ProjectionCommand = 'enable' | 'disable' | 'reset';

// The node's limits (worker/services/user_projections.hpp, worker/projections/projection.hpp).
export const kProjectionNameBytesMax = 200;
export const kQueryBytesMax = 1024 * 1024;

const num = (v: unknown) => (typeof v === 'number' && Number.isFinite(v) ? v : 0);
const str = (v: unknown) => (typeof v === 'string' ? v : '');

export function asProjectionRow(item: unknown): ProjectionRow {
  if (!item || typeof item !== 'object') throw new Error('a projection entry is not an object');
  const o = item as Record<string, unknown>;
  if (typeof o.name !== 'string') throw new Error('a projection entry has no name');
  return {
    name: o.name,
    mode: str(o.mode),
    status: str(o.status),
    stateReason: str(o.stateReason),
    progress: Math.max(0, Math.min(100, num(o.progress))),
    position: str(o.position),
    lastCheckpoint: str(o.lastCheckpoint),
    eventsProcessed: num(o.eventsProcessedAfterRestart),
    writesInProgress: num(o.writesInProgress),
    version: num(o.version),
    raw: o,
  };
}

// GET /projections/any answers {projections: [...]}: standard ones ('$') first, then by name.
export function parseProjectionList(answer: unknown): ProjectionRow[] {
  const list = (answer as { projections?: unknown } | null)?.projections;
  if (!Array.isArray(list)) throw new Error('the answer is not a projection list');
  return list.map(asProjectionRow).sort((a, b) => {
    const sa = a.name.startsWith('$') ? 0 : 1;
    const sb = b.name.startsWith('$') ? 0 : 1;
    return sa !== sb ? sa - sb : a.name.localeCompare(b.name);
  });
}

// Events processed per second between two samples of the same projection (null: unknown, as
// at the first sample or after the count went back, when the leader changed).
export function processingRate(before: { events: number; at_ms: number } | undefined,
                               now: { events: number; at_ms: number }): number | null {
  if (!before || now.at_ms <= before.at_ms || now.events < before.events) return null;
  return ((now.events - before.events) * 1000) / (now.at_ms - before.at_ms);
}

export function statusClass(status: string): string {
  if (status === 'Running' || status === 'Completed') return 'state-ok';
  if (status === 'Faulted') return 'state-bad';
  return 'state-stopped';
}

export interface NewProjection {
  name: string;
  mode: ProjectionMode;
  emit: boolean;
  query: string;
}

// Why the node would refuse this form, or null.
export function newProjectionProblem(p: NewProjection): string | null {
  const bytes = (s: string) => new TextEncoder().encode(s).length;
  if (!p.name && p.mode !== 'onetime') return 'Enter a name.';
  if (p.name.startsWith('$')) return "Names starting with '$' are the system's.";
  if (bytes(p.name) > kProjectionNameBytesMax) {
    return `A name has at most ${kProjectionNameBytesMax} bytes.`;
  }
  if (!p.query.trim()) return 'Enter the query.';
  if (bytes(p.query) > kQueryBytesMax) return 'A query has at most 1 MiB.';
  if (p.emit && p.mode !== 'continuous') return 'Only continuous projections may emit.';
  return null;
}

// "/api/projection/%24by_category/command/reset"; names are escaped as one path segment.
export function projectionPath(name: string, rest = ''): string {
  return `/api/projection/${encodeURIComponent(name)}${rest}`;
}

export class ProjectionsClient {
  constructor(private readonly api: ApiClient, private readonly auth: string | null) {}

  async list(): Promise<ProjectionRow[]> {
    return parseProjectionList(await this.api.request('/api/projections/any',
      { auth: this.auth }));
  }

  // The query text, the state and the result (JSON text, '' when none).
  query(name: string): Promise<string> {
    return this.api.request(projectionPath(name, '/query'), { auth: this.auth, as_text: true });
  }

  state(name: string, result = false): Promise<string> {
    return this.api.request(projectionPath(name, result ? '/result' : '/state'),
      { auth: this.auth, as_text: true });
  }

  create(p: NewProjection) {
    const params = new URLSearchParams({ type: 'JS' });
    if (p.name) params.set('name', p.name);
    if (p.mode === 'continuous') params.set('emit', p.emit ? 'yes' : 'no');
    return this.api.request(`/api/projections/${p.mode}?${params.toString()}`,
      { method: 'POST', auth: this.auth, text_body: p.query, as_text: true });
  }

  command(name: string, command: ProjectionCommand) {
    return this.api.request(projectionPath(name, `/command/${command}`),
      { method: 'POST', auth: this.auth, as_text: true });
  }

  remove(name: string) {
    return this.api.request(projectionPath(name, '?deleteCheckpointStream=yes'),
      { method: 'DELETE', auth: this.auth, as_text: true });
  }
}
