// The page frame: header with navigation, the login state and the manager's freshness, and the
// page the hash names.
import { useEffect, useState } from 'preact/hooks';
import type { ApiClient } from './api';
import { isAdmin, loadSession, saveSession, type Session } from './auth';
import { LastUpdated } from './components';
import { AppContext, useLiveStore, useNow } from './context';
import { ChartsPage } from './pages/charts';
import { ClusterPage } from './pages/cluster';
import { LoginPage } from './pages/login';
import { MachinePage } from './pages/machine';
import { MachinesPage } from './pages/machines';
import { ProjectionsPage } from './pages/projections';
import { StreamsPage } from './pages/streams';
import { SubscriptionsPage } from './pages/subscriptions';
import { UsersPage } from './pages/users';
import { parseRoute, type Page } from './route';
import type { LiveStore } from './store';

const kNav: { page: Page; label: string; admins_only?: boolean }[] = [
  { page: 'cluster', label: 'Cluster' },
  { page: 'machines', label: 'Machines' },
  { page: 'machine', label: 'This machine' },
  { page: 'streams', label: 'Streams' },
  { page: 'subscriptions', label: 'Subscriptions' },
  { page: 'projections', label: 'Projections' },
  { page: 'charts', label: 'Charts' },
  { page: 'users', label: 'Users', admins_only: true },
];

function useRoute() {
  const [hash, setHash] = useState(window.location.hash);
  useEffect(() => {
    const on_change = () => setHash(window.location.hash);
    window.addEventListener('hashchange', on_change);
    return () => window.removeEventListener('hashchange', on_change);
  }, []);
  return parseRoute(hash);
}

function Header({ page, session, onLogout }: { page: Page; session: Session | null;
                                               onLogout: () => void }) {
  const store = useLiveStore();
  const now = useNow();
  const manager = store.nodes.value?.manager;
  return (
    <header class="top">
      <div class="brand">
        <a href="#/cluster">Chorus</a>
        {manager && <span class="manager-name" data-testid="manager-name">{manager.name}</span>}
      </div>
      <nav>
        {kNav.filter((n) => !n.admins_only || isAdmin(session)).map((n) => (
          <a href={`#/${n.page}`} class={page === n.page ? 'active' : ''}
             data-testid={`nav-${n.page}`}>{n.label}</a>
        ))}
      </nav>
      <div class="top-right">
        <LastUpdated freshness={store.nodes} now={now} />
        {session ? (
          <span class="user">
            <span data-testid="session-user">{session.login}</span>
            <button type="button" class="link" data-testid="logout" onClick={onLogout}>
              Log out
            </button>
          </span>
        ) : (
          <a href="#/login" class="login-link" data-testid="nav-login">Log in</a>
        )}
      </div>
    </header>
  );
}

function CurrentPage({ page, stream, group, projection }: {
  page: Page; stream: string | null; group: { stream: string; group: string } | null;
  projection: string | null }) {
  switch (page) {
    case 'machine': return <MachinePage />;
    case 'machines': return <MachinesPage />;
    case 'streams': return <StreamsPage stream={stream} />;
    case 'subscriptions': return <SubscriptionsPage open={group} />;
    case 'projections': return <ProjectionsPage open={projection} />;
    case 'charts': return <ChartsPage />;
    case 'users': return <UsersPage />;
    case 'login': return <LoginPage />;
    default: return <ClusterPage />;
  }
}

export function App({ api, store }: { api: ApiClient; store: LiveStore }) {
  const [session, setSessionState] = useState<Session | null>(
    () => loadSession(window.sessionStorage));
  const setSession = (s: Session | null) => {
    saveSession(window.sessionStorage, s);
    setSessionState(s);
  };
  const route = useRoute();
  return (
    <AppContext.Provider value={{ api, store, session, setSession }}>
      <Header page={route.page} session={session} onLogout={() => setSession(null)} />
      <main data-testid={`page-${route.page}`}>
        <CurrentPage page={route.page} stream={route.stream} group={route.group ?? null}
                     projection={route.projection ?? null} />
      </main>
    </AppContext.Provider>
  );
}
