// The logged-in user: Basic credentials proven by GET /api/auth, kept in sessionStorage (gone
// when the tab closes) so a reload keeps the login. Without one the dashboard is read-only.
export interface Session {
  login: string;
  groups: string[];
  authorization: string;
}

const kStorageKey = 'chorus.session';

export function loadSession(storage: Storage | undefined): Session | null {
  try {
    const raw = storage?.getItem(kStorageKey);
    if (!raw) return null;
    const s = JSON.parse(raw) as Session;
    if (typeof s.login !== 'string' || typeof s.authorization !== 'string' ||
        !Array.isArray(s.groups)) return null;
    return s;
  } catch {
    return null;
  }
}

export function saveSession(storage: Storage | undefined, session: Session | null): void {
  if (!storage) return;
  if (session) storage.setItem(kStorageKey, JSON.stringify(session));
  else storage.removeItem(kStorageKey);
}

export function isAdmin(session: Session | null): boolean {
  return !!session && session.groups.includes('$admins');
}

// The manager accepts changes from $admins and $ops.
export function canOperate(session: Session | null): boolean {
  return !!session && (session.groups.includes('$admins') || session.groups.includes('$ops'));
}
