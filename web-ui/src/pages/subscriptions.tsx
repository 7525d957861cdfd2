// Subscriptions page: the leader's persistent subscription groups with their state (Live,
// Behind, Paused, Stuck), consumers, in-flight and parked counts; one group's detail with its
// connections and settings; replay of parked messages and deletion, confirmed first and offered
// to $admins/$ops only (the node refuses them to others as well).
import { useEffect, useState } from 'preact/hooks';
import type { SubscriptionInfo, SubscriptionSummary } from '../api';
import { canOperate } from '../auth';
import { ConfirmDialog, ErrorLine, type ConfirmRequest } from '../components';
import { useApp } from '../context';
import { subscriptionHash } from '../route';

// The list and the open group are read again this often.
const kRefreshMs = 2000;

function statusClass(status: string): string {
  if (status === 'Live') return 'state-ok';
  if (status === 'Stuck') return 'state-bad';
  return 'state-warn';
}

function ageText(ms: number | undefined): string {
  if (!ms) return '—';
  const s = Math.round(ms / 1000);
  return s < 120 ? `${s} s` : s < 7200 ? `${Math.round(s / 60)} min` : `${Math.round(s / 3600)} h`;
}

// A consumer's extra statistics (the group's extraStatistics setting) in one line.
const kLatencyKeys = ['Mean', 'Median', '99%', 'Highest'];
function latencyText(stats: { key: string; value: number }[] | undefined,
  enabled: boolean): string {
  if (!enabled) return 'off (extraStatistics)';
  if (!stats || stats.length === 0) return 'no acks yet';
  const value = (key: string) => stats.find((m) => m.key === key)?.value;
  return kLatencyKeys.filter((k) => value(k) !== undefined)
    .map((k) => `${k.toLowerCase()} ${value(k)}`).join(' · ');
}

function usePolled<T>(load: () => Promise<T>, deps: unknown[]) {
  const [value, setValue] = useState<T | null>(null);
  const [error, setError] = useState<string | null>(null);
  const [tick, setTick] = useState(0);
  useEffect(() => {
    let live = true;
    load().then((v) => { if (live) { setValue(v); setError(null); } },
      (e: unknown) => live && setError(e instanceof Error ? e.message : String(e)));
    const timer = setTimeout(() => setTick((t) => t + 1), kRefreshMs);
    return () => { live = false; clearTimeout(timer); };
  }, [...deps, tick]);
  return { value, error, reload: () => setTick((t) => t + 1) };
}

function GroupList() {
  const { api, session } = useApp();
  const { value, error } = usePolled(() => api.subscriptions(session?.authorization ?? null),
    [api, session]);
  return (
    <div class="panel">
      <ErrorLine error={error} />
      <table class="compact" data-testid="subscriptions">
        <thead><tr><th>Stream</th><th>Group</th><th>State</th><th>Consumers</th>
          <th>In flight</th><th>Behind</th><th>Parked</th><th>Oldest parked</th>
          <th>Out/s</th></tr></thead>
        <tbody>
          {(value ?? []).map((g: SubscriptionSummary) => (
            <tr data-testid="subscription" data-stream={g.eventStreamId} data-group={g.groupName}>
              <td>{g.eventStreamId}</td>
              <td><a href={subscriptionHash(g.eventStreamId, g.groupName)}>{g.groupName}</a></td>
              <td><span class={`badge ${statusClass(g.status)}`} data-testid="subscription-status">
                {g.status}</span></td>
              <td class="num">{g.connectionCount}</td>
              <td class="num">{g.totalInFlightMessages}</td>
              <td class="num">{Math.max(0, g.lastKnownEventNumber - g.lastProcessedEventNumber)}</td>
              <td class="num" data-testid="subscription-parked">{g.parkedMessageCount ?? 0}</td>
              <td class="num">{ageText(g.oldestParkedMessageAgeMilliseconds)}</td>
              <td class="num">{g.averageItemsPerSecond.toFixed(1)}</td>
            </tr>
          ))}
        </tbody>
      </table>
      {value && value.length === 0 && <p class="muted">No persistent subscriptions (or none
        whose stream you may read; <a href="#/login">log in</a> to see more).</p>}
    </div>
  );
}

function GroupDetail({ stream, group }: { stream: string; group: string }) {
  const { api, session } = useApp();
  const auth = session?.authorization ?? null;
  const { value, error, reload } =
    usePolled(() => api.subscriptionInfo(stream, group, auth), [api, session, stream, group]);
  const [confirm, setConfirm] = useState<ConfirmRequest | null>(null);
  const [actionError, setActionError] = useState<string | null>(null);
  const [done, setDone] = useState<string | null>(null);
  const run = (what: string, action: () => Promise<unknown>, after?: () => void) => {
    setActionError(null);
    action().then(() => { setDone(what); reload(); after?.(); },
      (e: unknown) => setActionError(e instanceof Error ? e.message : String(e)));
  };
  const info: SubscriptionInfo | null = value;
  return (
    <div class="panel" data-testid="subscription-detail" data-stream={stream} data-group={group}>
      <div class="panel-head">
        <h2>{stream} :: {group}</h2>
        {canOperate(session) && (
          <div class="pager">
            <button type="button" data-testid="replay-parked" onClick={() => setConfirm({
              title: 'Replay parked messages',
              detail: `Deliver the ${info?.parkedMessageCount ?? 0} parked messages of ${group} ` +
                'to its consumers again?',
              run: () => run('replayed', () => api.replayParked(stream, group, auth)),
            })}>Replay parked</button>
            <button type="button" data-testid="delete-subscription"
                    onClick={() => setConfirm({
                      title: 'Delete group',
                      detail: `Delete ${group} on ${stream}? Its consumers are dropped and its ` +
                        'checkpoint is lost.',
                      run: () => run('deleted', () => api.deleteSubscription(stream, group, auth),
                        () => { window.location.hash = '#/subscriptions'; }),
                    })}>Delete</button>
          </div>
        )}
      </div>
      <ErrorLine error={error ?? actionError} />
      {done && <p class="muted" data-testid="action-done">Done: {done}.</p>}
      {info && (
        <>
          <table class="compact" data-testid="subscription-facts">
            <tbody>
              <tr><th>State</th><td data-testid="detail-status">{info.status}</td></tr>
              <tr><th>Last processed / known</th>
                <td>{info.lastProcessedEventNumber} / {info.lastKnownEventNumber}</td></tr>
              <tr><th>Last checkpoint</th><td>{info.lastCheckpointedEventNumber ?? '—'}</td></tr>
              <tr><th>Parked</th><td data-testid="detail-parked">{info.parkedMessageCount ?? 0}
                {' '}(oldest {ageText(info.oldestParkedMessageAgeMilliseconds)})</td></tr>
              <tr><th>After leader change</th><td data-testid="detail-failover">
                {info.resumedFromCheckpoint == null ? 'created or updated on this leader'
                  : `resumed after ${info.resumedFromCheckpoint}: ` +
                    `${info.failoverPossiblyRedelivered ?? 0} of at most ` +
                    `${info.failoverRedeliveryBound ?? 0} possibly redelivered`}</td></tr>
              <tr><th>Rate in / out</th><td>{(info.averageItemsPerSecondIn ?? 0).toFixed(1)} /
                {' '}{info.averageItemsPerSecond.toFixed(1)} per second</td></tr>
              <tr><th>Buffered / retrying / in flight</th><td>{info.readBufferCount} /
                {' '}{info.retryBufferCount} / {info.totalInFlightMessages}</td></tr>
            </tbody>
          </table>
          <h3>Consumers</h3>
          <table class="compact" data-testid="subscription-consumers">
            <thead><tr><th>From</th><th>User</th><th>In flight</th><th>Free slots</th>
              <th>Acked</th><th>Delivery to ack (ms)</th></tr></thead>
            <tbody>
              {info.connections.map((c) => (
                <tr data-testid="subscription-consumer"><td class="mono">{c.from}</td>
                  <td>{c.username}</td><td class="num">{c.inFlightMessages}</td>
                  <td class="num">{c.availableSlots}</td>
                  <td class="num">{c.totalItemsProcessed}</td>
                  <td data-testid="consumer-latency">{latencyText(c.extraStatistics,
                    info.config.extraStatistics === true)}</td></tr>
              ))}
            </tbody>
          </table>
          <h3>Settings</h3>
          <pre>{JSON.stringify(info.config, null, 2)}</pre>
        </>
      )}
      <ConfirmDialog request={confirm} onClose={() => setConfirm(null)} />
    </div>
  );
}

export function SubscriptionsPage({ open }: { open: { stream: string; group: string } | null }) {
  return (
    <section>
      <div class="page-head">
        <h1>Persistent subscriptions</h1>
        {open && <a href="#/subscriptions">All groups</a>}
      </div>
      {open ? <GroupDetail stream={open.stream} group={open.group} /> : <GroupList />}
    </section>
  );
}
