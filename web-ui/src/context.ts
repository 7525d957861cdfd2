// What every page reads: the API client, the live store, the session, and hooks to follow them.
import { createContext } from 'preact';
import { useContext, useEffect, useReducer, useState } from 'preact/hooks';
import type { ApiClient } from './api';
import type { Session } from './auth';
import type { LiveStore } from './store';

export interface AppContextValue {
  api: ApiClient;
  store: LiveStore;
  session: Session | null;
  setSession: (s: Session | null) => void;
}

export const AppContext = createContext<AppContextValue>(null as unknown as AppContextValue);

export function useApp(): AppContextValue {
  return useContext(AppContext);
}

// Re-renders the caller on every store change (once a second).
export function useLiveStore(): LiveStore {
  const { store } = useApp();
  const [, bump] = useReducer((n: number, _: null) => n + 1, 0);
  useEffect(() => store.subscribe(() => bump(null)), [store]);
  return store;
}

// The current time, refreshed every interval_ms, for "5 s ago" labels.
export function useNow(interval_ms = 1000): number {
  const [now, setNow] = useState(Date.now());
  useEffect(() => {
    const timer = setInterval(() => setNow(Date.now()), interval_ms);
    return () => clearInterval(timer);
  }, [interval_ms]);
  return now;
}
