// The manager's HTTP API (docs/management-api.md) as typed calls. Every failure becomes an
// ApiError with the HTTP status (0 when the manager did not answer) and a readable message, so
// pages show one line instead of a stack. Reads take no credentials, except node logs and the
// restart history; those and changes send the session's Basic credentials.
import type { LastExit } from './format';

export interface ManagerInfo {
  name: string;
  version: string;
  intHttp: string;
  extHttp: string;
  peers: string[];
  uptimeSeconds: number;
}

export type SupervisorState = 'Running' | 'Starting' | 'Backoff' | 'Failed' | 'Stopped';

export interface NodeInfo {
  name: string;
  cluster: string;
  state: SupervisorState | string;
  pid: number | null;
  uptimeSeconds: number | null;
  restarts: number;
  lastExit: LastExit | null;
  nextStartInMs: number | null;
  ports: { intTcp: number; extTcp: number; intHttp: number; extHttp: number };
  ip: { int: string; ext: string };
  dataFolder: string;
  dataBytes: number | null;
  cpuSeconds: number | null;
  rssBytes: number | null;
  role: string | null;
  epochNumber: number | null;
  writerCheckpoint: number | null;
  chaserCheckpoint: number | null;
  commitCheckpoint: number | null;
  eventsWritten: number | null;
  eventsRead: number | null;
  // The node's disk use and its data volume's free space (its /stats storage.space); null for
  // a node that is not running or keeps its data in memory.
  space?: NodeSpace | null;
}

export interface NodeSpace {
  databaseBytes: number;
  walBytes: number;
  logBytes: number;
  indexBytes: number;
  otherBytes: number;
  reclaimableBytes: number;
  breakdownAt: string | null;
  diskFreeBytes: number;
  diskTotalBytes: number;
  minFreeDiskBytes: number;
  writesRefusedLowDisk: boolean;
}

// A node's scavenge as the node reports it (GET /admin/scavenge/{id}).
export interface ScavengeState {
  scavengeId: string;
  scavengeResult: 'InProgress' | 'Success' | 'Stopped' | 'Failed' | string;
  error: string;
  progressPercent: number;
  spaceSavedBytes: number;
  eventsExamined: number;
  eventsRemoved: number;
  timeTakenMs: number;
}

export interface NodeScavengeAnswer {
  node: string;
  scavenge: ScavengeState | null;
  error?: string;
}

export interface ClusterScavengeStep {
  node: string;
  state: 'Waiting' | 'Running' | 'Success' | 'Stopped' | 'Failed' | 'Skipped' | string;
  scavengeId: string | null;
  error: string;
  progressPercent: number;
  eventsExamined: number;
  eventsRemoved: number;
  spaceSavedBytes: number;
  timeTakenMs: number;
}

export interface ClusterScavengeAnswer {
  cluster: string;
  state: 'None' | 'Running' | 'Success' | 'Failed' | 'Stopped' | string;
  startedAt?: number;
  finishedAt?: number | null;
  spaceSavedBytes?: number;
  eventsRemoved?: number;
  nodes: ClusterScavengeStep[];
}

export interface NodesAnswer {
  manager: ManagerInfo;
  nodes: NodeInfo[];
}

export interface HistoryEvent {
  at: string;
  node: string;
  event: string;
  detail: string;
}

export interface RecentStream {
  stream: string;
  lastEventNumber: number;
  updated: string;
}

export interface AuthAnswer {
  login: string;
  groups: string[];
}

// One manager of the cluster as GET /api/machines lists it (this one first, then each peer).
export interface MachineInfo {
  address: string;
  self: boolean;
  reachable: boolean;
  error?: string;
  manager?: ManagerInfo;
  nodes?: NodeInfo[];
}

export interface RollingRestartAnswer {
  ok: boolean;
  steps?: { node: string; action: string; ms: number }[];
  error?: string;
}

export class ApiError extends Error {
  constructor(readonly status: number, message: string) {
    super(message);
    this.name = 'ApiError';
  }
}

// Reads answer within seconds or the manager is in trouble; operator actions (stop waits for the
// grace period, a rolling restart for every node) may legitimately take minutes.
export const kReadTimeoutMs = 5000;
export const kActionTimeoutMs = 15 * 60 * 1000;

export type FetchLike = (input: string, init?: RequestInit) => Promise<Response>;

export interface ApiOptions {
  method?: 'GET' | 'POST' | 'PUT' | 'DELETE';
  auth?: string | null;
  timeout_ms?: number;
  body?: unknown;  // sent as JSON
  text_body?: string;  // sent as it is (text/plain): a projection's query
  as_text?: boolean;   // the answer's body as it is, not parsed as JSON
}

// The message for a failed answer: the body's "error" field, else its text, else the status.
export function errorMessage(status: number, status_text: string, body: string): string {
  let detail = '';
  try {
    const parsed: unknown = JSON.parse(body);
    if (parsed && typeof parsed === 'object' && 'error' in parsed) {
      detail = String((parsed as { error: unknown }).error);
    }
  } catch {
    detail = body.trim().slice(0, 200);
  }
  if (status === 401 && !detail) detail = 'log in with a user of $admins or $ops';
  const head = `HTTP ${status}${status_text ? ' ' + status_text : ''}`;
  return detail ? `${head}: ${detail}` : head;
}

// A persistent subscription group as the node's /subscriptions list shows it.
export interface SubscriptionSummary {
  eventStreamId: string;
  groupName: string;
  status: string;
  averageItemsPerSecond: number;
  averageItemsPerSecondIn?: number;
  totalItemsProcessed: number;
  lastProcessedEventNumber: number;
  lastKnownEventNumber: number;
  lastCheckpointedEventNumber?: number;
  connectionCount: number;
  totalInFlightMessages: number;
  parkedMessageCount?: number;
  oldestParkedMessageAgeMilliseconds?: number;
  // Set when this leader loaded the group after a leader change (null: created or updated here).
  resumedFromCheckpoint?: number | null;
  failoverRedeliveryBound?: number;
  failoverPossiblyRedelivered?: number;
}

export interface SubscriptionInfo extends SubscriptionSummary {
  config: Record<string, unknown>;
  readBufferCount: number;
  retryBufferCount: number;
  connections: { from: string; username: string; inFlightMessages: number;
                 availableSlots: number; totalItemsProcessed: number;
                 // With the group's extraStatistics: EventStore's delivery-to-ack times (ms).
                 extraStatistics?: { key: string; value: number }[] }[];
}

export class ApiClient {
  constructor(private readonly fetch_fn: FetchLike, private readonly base_url = '') {}

  async request<T>(path: string, options: ApiOptions = {}): Promise<T> {
    const method = options.method ?? 'GET';
    const timeout_ms = options.timeout_ms ??
      (method === 'GET' ? kReadTimeoutMs : kActionTimeoutMs);
    const headers: Record<string, string> = { Accept: 'application/json' };
    if (options.auth) headers.Authorization = options.auth;
    if (options.body !== undefined) headers['Content-Type'] = 'application/json';
    if (options.text_body !== undefined) headers['Content-Type'] = 'text/plain';
    const controller = new AbortController();
    const timer = setTimeout(() => controller.abort(), timeout_ms);
    let response: Response;
    let body: string;
    try {
      response = await this.fetch_fn(this.base_url + path,
        { method, headers, signal: controller.signal, cache: 'no-store',
          body: options.text_body ??
            (options.body === undefined ? undefined : JSON.stringify(options.body)) });
      body = await response.text();
    } catch (e) {
      const reason = controller.signal.aborted ? `no answer within ${timeout_ms} ms`
        : (e instanceof Error ? e.message : String(e));
      throw new ApiError(0, `manager not reachable: ${reason}`);
    } finally {
      clearTimeout(timer);
    }
    if (!response.ok) throw new ApiError(response.status,
      errorMessage(response.status, response.statusText, body));
    if (options.as_text) return body as T;
    if (body === '') return undefined as T;
    try {
      return JSON.parse(body) as T;
    } catch {
      throw new ApiError(response.status, `answer is not JSON: ${body.slice(0, 80)}`);
    }
  }

  nodes(): Promise<NodesAnswer> {
    return this.request('/api/nodes');
  }

  // cluster: null for the manager's default cluster.
  gossip(cluster: string | null = null): Promise<unknown> {
    const query = cluster ? `&cluster=${encodeURIComponent(cluster)}` : '';
    return this.request(`/gossip?format=json${query}`);
  }

  clusters(): Promise<{ clusters: string[] }> {
    return this.request('/api/clusters');
  }

  history(auth: string | null, limit = 100): Promise<{ events: HistoryEvent[] }> {
    return this.request(`/api/history?limit=${limit}`, { auth });
  }

  log(node: string, auth: string | null, lines = 200): Promise<{ lines: string[] }> {
    return this.request(`/api/nodes/${encodeURIComponent(node)}/log?lines=${lines}`, { auth });
  }

  machines(): Promise<{ machines: MachineInfo[] }> {
    return this.request('/api/machines');
  }

  // Chart samples after `since_ms` (Unix ms) at one a second ('1s') or one a minute ('1m').
  metricsHistory(resolution: '1s' | '1m', since_ms: number): Promise<unknown> {
    return this.request(`/api/metrics-history?resolution=${resolution}&since=${
      Math.max(0, Math.floor(since_ms))}`);
  }

  nodeAction(node: string, action: 'start' | 'stop' | 'restart' | 'resign',
             auth: string | null): Promise<{ ok: boolean }> {
    return this.request(`/api/nodes/${encodeURIComponent(node)}/${action}`,
      { method: 'POST', auth });
  }

  rollingRestart(cluster: string, auth: string | null): Promise<RollingRestartAnswer> {
    return this.request(`/api/cluster/rolling-restart?cluster=${encodeURIComponent(cluster)}`,
      { method: 'POST', auth });
  }

  // Scavenges ($admins or $ops): one node's, or this machine's nodes of a cluster one at a time.
  scavengeNode(node: string, auth: string | null): Promise<{ scavengeId: string }> {
    return this.request(`/api/nodes/${encodeURIComponent(node)}/scavenge`,
      { method: 'POST', auth, timeout_ms: kReadTimeoutMs * 3 });
  }

  nodeScavenge(node: string, auth: string | null): Promise<NodeScavengeAnswer> {
    return this.request(`/api/nodes/${encodeURIComponent(node)}/scavenge`, { auth });
  }

  scavengeCluster(cluster: string, auth: string | null): Promise<ClusterScavengeAnswer> {
    return this.request(`/api/cluster/scavenge?cluster=${encodeURIComponent(cluster)}`,
      { method: 'POST', auth, timeout_ms: kReadTimeoutMs * 3 });
  }

  clusterScavenge(cluster: string, auth: string | null): Promise<ClusterScavengeAnswer> {
    return this.request(`/api/cluster/scavenge?cluster=${encodeURIComponent(cluster)}`, { auth });
  }

  auth(auth: string): Promise<AuthAnswer> {
    return this.request('/api/auth', { auth });
  }

  recentStreams(auth: string | null): Promise<{ streams: RecentStream[] }> {
    return this.request('/api/recent-streams', { auth });
  }

  // Persistent subscriptions (the node's /subscriptions API through the manager).
  subscriptions(auth: string | null): Promise<SubscriptionSummary[]> {
    return this.request('/api/subscriptions', { auth });
  }

  subscriptionInfo(stream: string, group: string, auth: string | null):
    Promise<SubscriptionInfo> {
    return this.request(`/api/subscriptions/${encodeURIComponent(stream)}/` +
      `${encodeURIComponent(group)}/info`, { auth });
  }

  replayParked(stream: string, group: string, auth: string | null): Promise<unknown> {
    return this.request(`/api/subscriptions/${encodeURIComponent(stream)}/` +
      `${encodeURIComponent(group)}/replayParked`, { method: 'POST', auth });
  }

  deleteSubscription(stream: string, group: string, auth: string | null): Promise<unknown> {
    return this.request(`/api/subscriptions/${encodeURIComponent(stream)}/` +
      `${encodeURIComponent(group)}`, { method: 'DELETE', auth });
  }

  // path: a node HTTP API path below /streams/, e.g. "orders/head/backward/20?embed=body".
  streamFeed(path: string, auth: string | null): Promise<unknown> {
    return this.request(`/api/streams/${path}`, { auth });
  }
}

// "Basic base64(user:password)", UTF-8 safe.
export function basicAuth(user: string, password: string): string {
  const bytes = new TextEncoder().encode(`${user}:${password}`);
  let binary = '';
  bytes.forEach((b) => { binary += String.fromCharCode(b); });
  return `Basic ${btoa(binary)}`;
}
