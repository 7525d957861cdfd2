// Goal: the Projections page's logic: statistics lists are checked, standard projections come
// first, progress is clamped, the rate comes from two samples (and is unknown when the count
// went back), the create form is validated as the node would, names are escaped in paths, and
// each call sends EventStore's method, path and body (the query as plain text) with the
// session's credentials.
import { describe, expect, it } from 'vitest';
import { ApiClient, type FetchLike } from '../src/api';
import {
  newProjectionProblem, parseProjectionList, processingRate, projectionPath, ProjectionsClient,
} from '../src/projections';
import { parseRoute, projectionHash } from '../src/route';

function recording(status = 200, body = '') {
  const calls: { url: string; init?: RequestInit }[] = [];
  const fetch: FetchLike = async (url, init) => {
    calls.push({ url, init });
    return new Response(body, { status });
  };
  return { calls, client: new ProjectionsClient(new ApiClient(fetch), 'Basic YWRtaW46eA==') };
}

describe('parseProjectionList', () => {
  it('puts the standard projections first, clamps progress and keeps every field', () => {
    const rows = parseProjectionList({ projections: [
      { name: 'zeta', mode: 'Continuous', status: 'Running', progress: 140,
        eventsProcessedAfterRestart: 12, version: 2 },
      { name: '$by_category', status: 'Stopped', progress: -3 },
      { name: 'alpha', status: 'Faulted', stateReason: 'boom' },
    ] });
    expect(rows.map((r) => r.name)).toEqual(['$by_category', 'alpha', 'zeta']);
    expect(rows[2].progress).toBe(100);
    expect(rows[0].progress).toBe(0);
    expect(rows[1].stateReason).toBe('boom');
    expect(rows[2].raw.version).toBe(2);
  });
  it('refuses answers that are not a projection list', () => {
    expect(() => parseProjectionList({})).toThrow(/projection list/);
    expect(() => parseProjectionList({ projections: [{}] })).toThrow(/no name/);
  });
});

describe('processingRate', () => {
  it('is events per second between samples, unknown at first or when the count went back', () => {
    expect(processingRate(undefined, { events: 10, at_ms: 1000 })).toBeNull();
    expect(processingRate({ events: 10, at_ms: 1000 }, { events: 30, at_ms: 3000 })).toBe(10);
    expect(processingRate({ events: 30, at_ms: 1000 }, { events: 5, at_ms: 3000 })).toBeNull();
  });
});

describe('newProjectionProblem', () => {
  const base = { name: 'p', mode: 'continuous' as const, emit: false, query: 'fromAll()' };
  it('accepts a complete form and a one-time projection without a name', () => {
    expect(newProjectionProblem(base)).toBeNull();
    expect(newProjectionProblem({ ...base, name: '', mode: 'onetime' })).toBeNull();
  });
  it('says what the node would refuse', () => {
    expect(newProjectionProblem({ ...base, name: '' })).toMatch(/name/);
    expect(newProjectionProblem({ ...base, name: '$mine' })).toMatch(/system/);
    expect(newProjectionProblem({ ...base, query: '  ' })).toMatch(/query/);
    expect(newProjectionProblem({ ...base, mode: 'transient', emit: true })).toMatch(/emit/);
    expect(newProjectionProblem({ ...base, name: 'x'.repeat(201) })).toMatch(/200 bytes/);
  });
});

describe('ProjectionsClient', () => {
  it('sends the query as plain text and the options in the URL', async () => {
    const { calls, client } = recording(201, '{"name":"p"}');
    await client.create({ name: 'my p', mode: 'continuous', emit: true, query: 'fromAll()' });
    expect(calls[0].url).toBe('/api/projections/continuous?type=JS&name=my+p&emit=yes');
    expect(calls[0].init?.method).toBe('POST');
    expect(calls[0].init?.body).toBe('fromAll()');
    expect((calls[0].init?.headers as Record<string, string>)['Content-Type']).toBe('text/plain');
    expect((calls[0].init?.headers as Record<string, string>).Authorization)
      .toBe('Basic YWRtaW46eA==');
  });
  it('escapes names, posts commands and deletes with the checkpoint stream', async () => {
    const { calls, client } = recording(200, '{}');
    await client.command('$by_category', 'reset');
    await client.remove('a/b');
    expect(calls[0].url).toBe('/api/projection/%24by_category/command/reset');
    expect(calls[1].url).toBe('/api/projection/a%2Fb?deleteCheckpointStream=yes');
    expect(calls[1].init?.method).toBe('DELETE');
    expect(projectionPath('x y', '/state')).toBe('/api/projection/x%20y/state');
  });
  it('reads the query and state as text', async () => {
    const { client } = recording(200, 'fromAll().when({})');
    expect(await client.query('p')).toBe('fromAll().when({})');
  });
});

describe('routes', () => {
  it('opens a projection by its escaped name', () => {
    expect(parseRoute(projectionHash('$by_category'))).toEqual(
      { page: 'projections', stream: null, projection: '$by_category' });
    expect(parseRoute('#/projections')).toEqual(
      { page: 'projections', stream: null, projection: null });
  });
});
