// Users page (admins only): the database's users from the node's users API, a form to create
// one, and per user: edit full name and groups, enable/disable, reset the password, delete.
// Disabling, resetting a password and deleting ask for confirmation first.
import { useEffect, useMemo, useState } from 'preact/hooks';
import { isAdmin } from '../auth';
import { ConfirmDialog, ErrorLine, type ConfirmRequest } from '../components';
import { useApp } from '../context';
import { formatTimeUtc } from '../format';
import {
  groupsProblem, newUserProblem, parseGroups, passwordProblem, UsersClient, type UserRow,
} from '../users';

interface Status { text: string; ok: boolean | null }

function message(e: unknown): string {
  return e instanceof Error ? e.message : String(e);
}

function field(set: (v: string) => void) {
  return (e: Event) => set((e.target as HTMLInputElement).value);
}

function CreateUser({ onCreate }: { onCreate: (u: { loginName: string; fullName: string;
                                                    groups: string[]; password: string })
                                     => Promise<boolean> }) {
  const [loginName, setLogin] = useState('');
  const [fullName, setFullName] = useState('');
  const [groupsText, setGroups] = useState('');
  const [password, setPassword] = useState('');
  const [confirmation, setConfirmation] = useState('');
  const [problem, setProblem] = useState<string | null>(null);
  const submit = async (e: Event) => {
    e.preventDefault();
    const why = newUserProblem({ loginName, fullName, groupsText, password, confirmation });
    setProblem(why);
    if (why) return;
    if (await onCreate({ loginName, fullName, groups: parseGroups(groupsText), password })) {
      setLogin(''); setFullName(''); setGroups(''); setPassword(''); setConfirmation('');
    }
  };
  return (
    <form class="panel user-form" onSubmit={submit} data-testid="user-create">
      <h2>New user</h2>
      <div class="inline-form">
        <input type="text" placeholder="login name" aria-label="login name" value={loginName}
               data-testid="user-create-login" onInput={field(setLogin)} />
        <input type="text" placeholder="full name" aria-label="full name" value={fullName}
               data-testid="user-create-fullname" onInput={field(setFullName)} />
        <input type="text" placeholder="groups, comma-separated ($admins, $ops, ...)"
               aria-label="groups" value={groupsText} data-testid="user-create-groups"
               onInput={field(setGroups)} />
        <input type="password" placeholder="password" aria-label="password" value={password}
               autoComplete="new-password" data-testid="user-create-password"
               onInput={field(setPassword)} />
        <input type="password" placeholder="password again" aria-label="password again"
               autoComplete="new-password" value={confirmation}
               data-testid="user-create-confirm" onInput={field(setConfirmation)} />
        <button type="submit" class="primary" data-testid="user-create-submit">Create</button>
      </div>
      <ErrorLine error={problem} />
    </form>
  );
}

interface RowActions {
  save: (login: string, fullName: string, groups: string[]) => Promise<boolean>;
  setDisabled: (login: string, disabled: boolean) => void;
  resetPassword: (login: string, password: string) => void;
  remove: (login: string) => void;
}

function UserLine({ user, actions, self }: { user: UserRow; actions: RowActions;
                                             self: boolean }) {
  const [editing, setEditing] = useState(false);
  const [fullName, setFullName] = useState(user.fullName);
  const [groupsText, setGroups] = useState(user.groups.join(', '));
  const [resetting, setResetting] = useState(false);
  const [password, setPassword] = useState('');
  const [confirmation, setConfirmation] = useState('');
  const [problem, setProblem] = useState<string | null>(null);
  const save = async () => {
    const groups = parseGroups(groupsText);
    const why = groupsProblem(groups);
    setProblem(why);
    if (!why && await actions.save(user.loginName, fullName, groups)) setEditing(false);
  };
  const reset = (e: Event) => {
    e.preventDefault();
    const why = passwordProblem(password, confirmation);
    setProblem(why);
    if (why) return;
    actions.resetPassword(user.loginName, password);
    setResetting(false); setPassword(''); setConfirmation('');
  };
  return (
    <tr data-testid="user-row" data-login={user.loginName} data-disabled={String(user.disabled)}
        data-groups={user.groups.join(',')} class={user.disabled ? 'user-disabled' : ''}>
      <td class="mono">{user.loginName}{self && <span class="sub"> (you)</span>}</td>
      <td>{editing
        ? <input type="text" value={fullName} aria-label="full name"
                 data-testid="user-edit-fullname" onInput={field(setFullName)} />
        : user.fullName}</td>
      <td>{editing
        ? <input type="text" value={groupsText} aria-label="groups"
                 data-testid="user-edit-groups" onInput={field(setGroups)} />
        : user.groups.map((g) => <span class="badge state-stopped">{g}</span>)}</td>
      <td>{user.disabled
        ? <span class="badge state-bad">disabled</span>
        : <span class="badge state-ok">enabled</span>}</td>
      <td class="mono nowrap sub">{formatTimeUtc(user.dateLastUpdated)}</td>
      <td>
        <div class="actions">
          {editing ? <>
            <button type="button" class="primary" data-testid="user-save" onClick={save}>Save</button>
            <button type="button" onClick={() => { setEditing(false); setProblem(null); }}>
              Cancel</button>
          </> : <button type="button" data-testid="user-edit" onClick={() => {
            setFullName(user.fullName); setGroups(user.groups.join(', ')); setEditing(true);
          }}>Edit</button>}
          {user.disabled
            ? <button type="button" data-testid="user-enable"
                      onClick={() => actions.setDisabled(user.loginName, false)}>Enable</button>
            : <button type="button" data-testid="user-disable"
                      onClick={() => actions.setDisabled(user.loginName, true)}>Disable</button>}
          <button type="button" data-testid="user-reset"
                  onClick={() => setResetting(!resetting)}>Reset password</button>
          <button type="button" data-testid="user-delete"
                  onClick={() => actions.remove(user.loginName)}>Delete</button>
        </div>
        {resetting && <form class="inline-form reset-form" onSubmit={reset}>
          <input type="password" placeholder="new password" aria-label="new password"
                 autoComplete="new-password" value={password}
                 data-testid="user-reset-password" onInput={field(setPassword)} />
          <input type="password" placeholder="again" aria-label="new password again"
                 autoComplete="new-password" value={confirmation}
                 data-testid="user-reset-confirm" onInput={field(setConfirmation)} />
          <button type="submit" data-testid="user-reset-submit">Set</button>
        </form>}
        <ErrorLine error={problem} />
      </td>
    </tr>
  );
}

export function UsersPage() {
  const { api, session } = useApp();
  const client = useMemo(() => new UsersClient(api, session?.authorization ?? null),
    [api, session]);
  const [users, setUsers] = useState<UserRow[] | null>(null);
  const [error, setError] = useState<string | null>(null);
  const [status, setStatus] = useState<Status | null>(null);
  const [confirm, setConfirm] = useState<ConfirmRequest | null>(null);
  const admin = isAdmin(session);

  const reload = () => client.list().then(
    (rows) => { setUsers(rows); setError(null); },
    (e: unknown) => setError(message(e)));
  useEffect(() => { if (admin) void reload(); }, [client, admin]);

  // Runs one change, shows its outcome and reloads the list; true when it succeeded.
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
      await reload();
    }
  };

  if (!admin) {
    return <section><div class="page-head"><h1>Users</h1></div>
      <p class="muted" data-testid="users-needs-admin"><a href="#/login">Log in</a> as a user of
        $admins to manage users.</p></section>;
  }
  const actions: RowActions = {
    save: (login, fullName, groups) =>
      run(`Update ${login}`, () => client.update(login, fullName, groups)),
    setDisabled: (login, disabled) => {
      if (!disabled) { void run(`Enable ${login}`, () => client.command(login, 'enable')); return; }
      setConfirm({ title: `Disable ${login}`,
        detail: `${login} will be refused at once on every connection until enabled again.`,
        run: () => void run(`Disable ${login}`, () => client.command(login, 'disable')) });
    },
    resetPassword: (login, password) => setConfirm({ title: `Reset password of ${login}`,
      detail: `The old password of ${login} stops working at once.`,
      run: () => void run(`Reset password of ${login}`,
        () => client.resetPassword(login, password)) }),
    remove: (login) => setConfirm({ title: `Delete ${login}`,
      detail: `${login} is removed and can no longer log in. The login name may be created again.`,
      run: () => void run(`Delete ${login}`, () => client.remove(login)) }),
  };
  return (
    <section>
      <div class="page-head"><h1>Users</h1></div>
      <CreateUser onCreate={(u) => run(`Create ${u.loginName}`, () => client.create(u))} />
      {status && <p class={`action-status ${status.ok === null ? 'pending'
        : status.ok ? 'ok' : 'failed'}`} data-testid="user-action-result"
        data-ok={status.ok === null ? '' : String(status.ok)}>{status.text}</p>}
      <ErrorLine error={error} />
      <div class="table-wrap">
        <table data-testid="users-table">
          <thead><tr><th>Login</th><th>Full name</th><th>Groups</th><th>State</th>
            <th>Last updated</th><th>Actions</th></tr></thead>
          <tbody>
            {(users ?? []).map((u) => <UserLine key={u.loginName} user={u} actions={actions}
                                                self={u.loginName === session?.login} />)}
          </tbody>
        </table>
      </div>
      <ConfirmDialog request={confirm} onClose={() => setConfirm(null)} />
    </section>
  );
}
