// Login: the database's users. The credentials are checked with GET /api/auth and kept for the
// tab's session; then the dashboard offers actions.
import { useState } from 'preact/hooks';
import { basicAuth } from '../api';
import { ErrorLine } from '../components';
import { useApp } from '../context';

export function LoginPage() {
  const { api, session, setSession } = useApp();
  const [user, setUser] = useState('');
  const [password, setPassword] = useState('');
  const [error, setError] = useState<string | null>(null);
  const [busy, setBusy] = useState(false);
  const submit = async (e: Event) => {
    e.preventDefault();
    setBusy(true);
    setError(null);
    const authorization = basicAuth(user, password);
    try {
      const answer = await api.auth(authorization);
      setSession({ login: answer.login ?? user, groups: answer.groups ?? [], authorization });
      window.location.hash = '#/machine';
    } catch (err) {
      const status = (err as { status?: number }).status;
      setError(status === 401 ? 'Wrong user name or password.'
        : err instanceof Error ? err.message : String(err));
    } finally {
      setBusy(false);
    }
  };
  return (
    <section class="login">
      <h1>Log in</h1>
      {session && <p>Logged in as <strong>{session.login}</strong>
        {session.groups.length ? ` (${session.groups.join(', ')})` : ''}.</p>}
      <form onSubmit={submit} class="login-form">
        <label>User<input type="text" autoComplete="username" value={user}
          data-testid="login-user" onInput={(e) => setUser((e.target as HTMLInputElement).value)} />
        </label>
        <label>Password<input type="password" autoComplete="current-password" value={password}
          data-testid="login-password"
          onInput={(e) => setPassword((e.target as HTMLInputElement).value)} /></label>
        <button type="submit" class="primary" disabled={busy || !user}
                data-testid="login-submit">Log in</button>
      </form>
      <ErrorLine error={error} />
      <p class="muted">Without logging in the dashboard is read-only.</p>
    </section>
  );
}
