// Goal: the Users page's logic: user-list answers are checked and sorted, group lists and the
// create form are validated as the node would (a '$' login, a ':' or a mismatched password is
// caught before sending), login names are escaped in paths, and each call uses EventStore's
// method, path and body with the session's credentials.
import { describe, expect, it } from 'vitest';
import { ApiClient, ApiError, type FetchLike } from '../src/api';
import {
  loginProblem, newUserProblem, parseGroups, parseUserList, passwordProblem, userPath,
  UsersClient, kUserGroupsMax, groupsProblem,
} from '../src/users';

function recording(status = 200, body = '{"success":true,"error":"Success"}') {
  const calls: { url: string; init?: RequestInit }[] = [];
  const fetch: FetchLike = async (url, init) => {
    calls.push({ url, init });
    return new Response(body, { status });
  };
  return { calls, client: new UsersClient(new ApiClient(fetch), 'Basic YWRtaW46eA==') };
}

describe('parseUserList', () => {
  it('turns the data array into rows sorted by login, with defaults for missing fields', () => {
    const rows = parseUserList({ success: true, data: [
      { loginName: 'ops', fullName: 'Ops', groups: ['$ops'], disabled: false,
        dateLastUpdated: '2026-01-01T00:00:00Z', links: [] },
      { loginName: 'admin', groups: ['$admins', 7] },
    ] });
    expect(rows.map((r) => r.loginName)).toEqual(['admin', 'ops']);
    expect(rows[0]).toEqual({ loginName: 'admin', fullName: '', groups: ['$admins'],
      disabled: false, dateLastUpdated: null });
    expect(rows[1].dateLastUpdated).toBe('2026-01-01T00:00:00Z');
  });
  it('refuses answers that are not a user list', () => {
    expect(() => parseUserList({ success: false })).toThrow(/not a user list/);
    expect(() => parseUserList(null)).toThrow();
    expect(() => parseUserList({ data: [{ fullName: 'x' }] })).toThrow(/loginName/);
  });
});

describe('form rules', () => {
  it('parses comma-separated groups without blanks or repeats', () => {
    expect(parseGroups(' dev, $ops,,dev , ')).toEqual(['dev', '$ops']);
    expect(parseGroups('')).toEqual([]);
  });
  it('refuses the login names the node refuses', () => {
    expect(loginProblem('ann')).toBeNull();
    expect(loginProblem('ann smith@example')).toBeNull();
    for (const bad of ['', '$admins', '$current', 'a:b', 'tab\there', 'x'.repeat(257)]) {
      expect(loginProblem(bad), bad).not.toBeNull();
    }
  });
  it('bounds groups and checks the password confirmation', () => {
    expect(groupsProblem(Array.from({ length: kUserGroupsMax + 1 }, (_, i) => `g${i}`)))
      .not.toBeNull();
    expect(groupsProblem(['dev'])).toBeNull();
    expect(passwordProblem('', '')).toMatch(/Enter/);
    expect(passwordProblem('a', 'b')).toMatch(/differ/);
    expect(passwordProblem('a', 'a')).toBeNull();
  });
  it('reports the first problem of a create form', () => {
    const ok = { loginName: 'ann', fullName: 'Ann', groupsText: 'dev', password: 'p',
      confirmation: 'p' };
    expect(newUserProblem(ok)).toBeNull();
    expect(newUserProblem({ ...ok, loginName: '$x' })).toMatch(/\$/);
    expect(newUserProblem({ ...ok, confirmation: 'q' })).toMatch(/differ/);
  });
});

describe('UsersClient', () => {
  it('escapes login names as one path segment', () => {
    expect(userPath()).toBe('/api/users');
    expect(userPath('ann smith/x')).toBe('/api/users/ann%20smith%2Fx');
    expect(userPath('ann', 'reset-password')).toBe('/api/users/ann/command/reset-password');
  });
  it('sends each call with its method, path, JSON body and the credentials', async () => {
    const { calls, client } = recording();
    await client.create({ loginName: 'ann', fullName: 'Ann', groups: ['dev'], password: 'p' });
    await client.update('ann', 'Ann B', ['dev', '$ops']);
    await client.command('ann', 'disable');
    await client.resetPassword('ann', 'n3w');
    await client.remove('ann');
    expect(calls.map((c) => `${c.init?.method} ${c.url}`)).toEqual([
      'POST /api/users', 'PUT /api/users/ann', 'POST /api/users/ann/command/disable',
      'POST /api/users/ann/command/reset-password', 'DELETE /api/users/ann']);
    expect(JSON.parse(calls[0].init?.body as string)).toEqual(
      { loginName: 'ann', fullName: 'Ann', groups: ['dev'], password: 'p' });
    expect(JSON.parse(calls[1].init?.body as string)).toEqual(
      { fullName: 'Ann B', groups: ['dev', '$ops'] });
    expect(calls[2].init?.body).toBeUndefined();
    expect(JSON.parse(calls[3].init?.body as string)).toEqual({ newPassword: 'n3w' });
    for (const c of calls) {
      const headers = c.init?.headers as Record<string, string>;
      expect(headers.Authorization).toBe('Basic YWRtaW46eA==');
    }
    expect((calls[0].init?.headers as Record<string, string>)['Content-Type'])
      .toBe('application/json');
  });
  it('turns a refusal into an ApiError with the node\'s error name', async () => {
    const { client } = recording(409, '{"loginName":"ann","success":false,"error":"Conflict"}');
    const failure = await client.create({ loginName: 'ann', fullName: '', groups: [],
      password: 'p' }).catch((e: unknown) => e);
    expect(failure).toBeInstanceOf(ApiError);
    expect((failure as ApiError).status).toBe(409);
    expect((failure as ApiError).message).toMatch(/Conflict/);
  });
});
