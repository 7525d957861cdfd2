// The Users page's logic: EventStore's users API (through the manager's /api/users proxy) as
// typed calls, its answers checked and turned into rows, and the form rules (login names the
// node would refuse, group lists, password confirmation) checked before anything is sent.
import type { ApiClient } from './api';

export interface UserRow {
  loginName: string;
  fullName: string;
  groups: string[];
  disabled: boolean;
  dateLastUpdated: string | null;
}

// The node's limits (worker/http/users_api.hpp), checked here so the form says why at once.
export const kUserTextMax = 256;
export const kUserGroupsMax = 64;

function asRow(item: unknown): UserRow {
  if (!item || typeof item !== 'object') throw new Error('a user entry is not an object');
  const o = item as Record<string, unknown>;
  if (typeof o.loginName !== 'string') throw new Error('a user entry has no loginName');
  const groups = Array.isArray(o.groups) ? o.groups.filter((g) => typeof g === 'string') : [];
  return {
    loginName: o.loginName,
    fullName: typeof o.fullName === 'string' ? o.fullName : '',
    groups: groups as string[],
    disabled: o.disabled === true,
    dateLastUpdated: typeof o.dateLastUpdated === 'string' ? o.dateLastUpdated : null,
  };
}

// GET /users answers {data: [...], success, error}.
export function parseUserList(answer: unknown): UserRow[] {
  const data = (answer as { data?: unknown } | null)?.data;
  if (!Array.isArray(data)) throw new Error('the answer is not a user list (no "data" array)');
  return data.map(asRow).sort((a, b) => a.loginName.localeCompare(b.loginName));
}

// "dev, $ops,dev" -> ["dev", "$ops"]: trimmed, no empties, first occurrence kept.
export function parseGroups(text: string): string[] {
  const out: string[] = [];
  for (const part of text.split(',')) {
    const g = part.trim();
    if (g && !out.includes(g)) out.push(g);
  }
  return out;
}

// Why the node would refuse this login name, or null.
export function loginProblem(login: string): string | null {
  if (!login) return 'Enter a login name.';
  if (new TextEncoder().encode(login).length > kUserTextMax) {
    return `A login name has at most ${kUserTextMax} bytes.`;
  }
  if (login === '$current' || login.startsWith('$')) {
    return "A login name cannot start with '$' (reserved for roles such as $admins).";
  }
  if (login.includes(':')) return "A login name cannot contain ':'.";
  if (/[\u0000-\u001f\u007f]/.test(login)) return 'A login name cannot hold control characters.';
  return null;
}

export function groupsProblem(groups: string[]): string | null {
  if (groups.length > kUserGroupsMax) return `A user has at most ${kUserGroupsMax} groups.`;
  const long = groups.find((g) => new TextEncoder().encode(g).length > kUserTextMax);
  return long ? `Group names have at most ${kUserTextMax} bytes.` : null;
}

export function passwordProblem(password: string, confirmation: string): string | null {
  if (!password) return 'Enter a password.';
  if (password !== confirmation) return 'The two passwords differ.';
  return null;
}

export interface NewUser {
  loginName: string;
  fullName: string;
  groupsText: string;
  password: string;
  confirmation: string;
}

// The first problem of a create form, or null when it may be sent.
export function newUserProblem(u: NewUser): string | null {
  return loginProblem(u.loginName) ?? groupsProblem(parseGroups(u.groupsText)) ??
    passwordProblem(u.password, u.confirmation);
}

// "/api/users/ann%20smith/command/disable"; logins are escaped as one path segment.
export function userPath(login?: string, command?: string): string {
  let path = '/api/users';
  if (login !== undefined) path += `/${encodeURIComponent(login)}`;
  if (command) path += `/command/${command}`;
  return path;
}

export type UserCommand = 'enable' | 'disable';

export class UsersClient {
  constructor(private readonly api: ApiClient, private readonly auth: string | null) {}

  async list(): Promise<UserRow[]> {
    return parseUserList(await this.api.request(userPath(), { auth: this.auth }));
  }

  create(u: { loginName: string; fullName: string; groups: string[]; password: string }) {
    return this.api.request(userPath(), { method: 'POST', auth: this.auth, body: u });
  }

  update(login: string, fullName: string, groups: string[]) {
    return this.api.request(userPath(login),
      { method: 'PUT', auth: this.auth, body: { fullName, groups } });
  }

  command(login: string, command: UserCommand) {
    return this.api.request(userPath(login, command), { method: 'POST', auth: this.auth });
  }

  resetPassword(login: string, newPassword: string) {
    return this.api.request(userPath(login, 'reset-password'),
      { method: 'POST', auth: this.auth, body: { newPassword } });
  }

  remove(login: string) {
    return this.api.request(userPath(login), { method: 'DELETE', auth: this.auth });
  }
}
