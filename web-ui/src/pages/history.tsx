// Restart history: the manager's supervisor events, newest first, re-read every few seconds
// while shown. The manager shows it to a logged-in user of $admins or $ops only.
import { useEffect, useState } from 'preact/hooks';
import type { HistoryEvent } from '../api';
import { ErrorLine } from '../components';
import { useApp } from '../context';
import { formatTimeUtc } from '../format';

const kHistoryRefreshMs = 3000;
const kHistoryRows = 100;

const kEventClasses: Record<string, string> = {
  started: 'state-ok', exited: 'state-warn', restarting: 'state-transient', failed: 'state-bad',
  hung: 'state-bad', stopped: 'state-stopped',
};

export function HistoryPanel() {
  const { api, session } = useApp();
  const auth = session?.authorization ?? null;
  const [events, setEvents] = useState<HistoryEvent[]>([]);
  const [error, setError] = useState<string | null>(null);
  useEffect(() => {
    setEvents([]);
    setError(null);
    if (!auth) return undefined;
    let live = true;
    const load = async () => {
      try {
        const answer = await api.history(auth, kHistoryRows);
        if (live) { setEvents(answer.events ?? []); setError(null); }
      } catch (e) {
        if (live) setError(e instanceof Error ? e.message : String(e));
      }
    };
    void load();
    const timer = setInterval(load, kHistoryRefreshMs);
    return () => { live = false; clearInterval(timer); };
  }, [api, auth]);
  if (!auth) {
    return (
      <div class="panel">
        <h2>Restart history</h2>
        <p class="muted" data-testid="history-login">
          <a href="#/login">Log in</a> as a user of $admins or $ops to see the restart history.
        </p>
      </div>
    );
  }
  return (
    <div class="panel">
      <h2>Restart history</h2>
      <ErrorLine error={error} />
      <div class="scroll-box">
        <table class="compact" data-testid="history-table">
          <tbody>
            {events.map((e) => (
              <tr data-testid="history-row" data-node={e.node} data-event={e.event}>
                <td class="mono nowrap">{formatTimeUtc(e.at)}</td>
                <td>{e.node}</td>
                <td><span class={`badge ${kEventClasses[e.event] ?? ''}`}>{e.event}</span></td>
                <td class="wrap">{e.detail}</td>
              </tr>
            ))}
          </tbody>
        </table>
        {events.length === 0 && !error && <p class="muted">No events yet.</p>}
      </div>
    </div>
  );
}
