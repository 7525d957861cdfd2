// Goal: the API client turns every failure (HTTP error with or without a JSON body, a manager
// that does not answer, a non-JSON answer, a timeout) into an ApiError with the status and a
// readable message, and sends credentials only where given.
import { describe, expect, it } from 'vitest';
import { ApiClient, ApiError, basicAuth, errorMessage, type FetchLike } from '../src/api';

function answering(status: number, body: string, status_text = ''): {
  fetch: FetchLike; calls: { url: string; init?: RequestInit }[];
} {
  const calls: { url: string; init?: RequestInit }[] = [];
  const fetch: FetchLike = async (url, init) => {
    calls.push({ url, init });
    return new Response(body === '' && (status === 204) ? null : body,
      { status, statusText: status_text });
  };
  return { fetch, calls };
}

async function failure(p: Promise<unknown>): Promise<ApiError> {
  try {
    await p;
  } catch (e) {
    expect(e).toBeInstanceOf(ApiError);
    return e as ApiError;
  }
  throw new Error('expected a failure');
}

describe('ApiClient', () => {
  it('parses JSON answers and sends no credentials on reads', async () => {
    const { fetch, calls } = answering(200, '{"manager":{"name":"a"},"nodes":[]}');
    const answer = await new ApiClient(fetch).nodes();
    expect(answer.manager.name).toBe('a');
    expect(calls[0].url).toBe('/api/nodes');
    const headers = calls[0].init?.headers as Record<string, string>;
    expect(headers.Authorization).toBeUndefined();
    expect(headers.Accept).toBe('application/json');
  });
  it('posts actions with the session credentials and escapes the node name', async () => {
    const { fetch, calls } = answering(200, '{"ok":true}');
    await new ApiClient(fetch).nodeAction('n 1', 'stop', 'Basic abc');
    expect(calls[0].url).toBe('/api/nodes/n%201/stop');
    expect(calls[0].init?.method).toBe('POST');
    expect((calls[0].init?.headers as Record<string, string>).Authorization).toBe('Basic abc');
  });
  it('reports the "error" field of a failed answer with the status', async () => {
    const { fetch } = answering(404, '{"error":"no node named x"}', 'Not Found');
    const e = await failure(new ApiClient(fetch).nodeAction('x', 'start', null));
    expect(e.status).toBe(404);
    expect(e.message).toBe('HTTP 404 Not Found: no node named x');
  });
  it('explains a 401 without a body', async () => {
    const { fetch } = answering(401, '');
    const e = await failure(new ApiClient(fetch).rollingRestart('default', null));
    expect(e.status).toBe(401);
    expect(e.message).toMatch(/log in/);
  });
  it('gives status 0 when the manager does not answer', async () => {
    const fetch: FetchLike = async () => { throw new TypeError('Failed to fetch'); };
    const e = await failure(new ApiClient(fetch).nodes());
    expect(e.status).toBe(0);
    expect(e.message).toBe('manager not reachable: Failed to fetch');
  });
  it('gives up on a read after its timeout', async () => {
    const fetch: FetchLike = (_url, init) => new Promise((_resolve, reject) => {
      init?.signal?.addEventListener('abort', () => reject(new Error('aborted')));
    });
    const e = await failure(new ApiClient(fetch).request('/api/nodes', { timeout_ms: 20 }));
    expect(e.status).toBe(0);
    expect(e.message).toMatch(/no answer within 20 ms/);
  });
  it('refuses an answer that is not JSON', async () => {
    const { fetch } = answering(200, '<html>');
    const e = await failure(new ApiClient(fetch).nodes());
    expect(e.message).toMatch(/not JSON/);
  });
});

describe('helpers', () => {
  it('keeps plain-text error bodies short', () => {
    expect(errorMessage(500, '', 'boom\n')).toBe('HTTP 500: boom');
    expect(errorMessage(502, 'Bad Gateway', '')).toBe('HTTP 502 Bad Gateway');
  });
  it('encodes Basic credentials as UTF-8', () => {
    expect(basicAuth('admin', 'changeit')).toBe('Basic YWRtaW46Y2hhbmdlaXQ=');
    expect(basicAuth('jos\u00e9', 'p')).toBe(`Basic ${Buffer.from('jos\u00e9:p').toString('base64')}`);
  });
});
