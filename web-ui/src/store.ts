// The dashboard's live data: one poller (every second) reads /api/nodes and /gossip from the
// manager, keeps their freshness, and keeps recent samples for current rates (CPU load),
// whatever page is open. Runs on
// the page's single thread; pages subscribe and re-render on each change.
import { ApiClient, type NodesAnswer } from './api';
import { leaderOf, nodeLag, parseGossip, type Member } from './cluster';
import { SampleHistory, type Sample } from './rates';
import type { Freshness } from './stale';

export const kPollIntervalMs = 1000;

export interface Polled<T> extends Freshness {
  value: T | null;
}

function polled<T>(): Polled<T> {
  return { value: null, last_success_ms: null, last_error: null };
}

export class LiveStore {
  nodes: Polled<NodesAnswer> = polled();
  gossip: Polled<Member[]> = polled();
  readonly history = new SampleHistory();
  private listeners_ = new Set<() => void>();
  private timer_: ReturnType<typeof setInterval> | null = null;
  private in_flight_ = false;
  // The cluster whose gossip the cluster page shows; null: the manager's default.
  private cluster_: string | null = null;

  constructor(private readonly api: ApiClient, private readonly now = () => Date.now()) {}

  subscribe(fn: () => void): () => void {
    this.listeners_.add(fn);
    return () => this.listeners_.delete(fn);
  }

  start(interval_ms = kPollIntervalMs): void {
    if (this.timer_) return;
    void this.poll();
    this.timer_ = setInterval(() => void this.poll(), interval_ms);
  }

  stop(): void {
    if (this.timer_) clearInterval(this.timer_);
    this.timer_ = null;
  }

  get cluster(): string | null {
    return this.cluster_;
  }

  // Shows another cluster's gossip from the next round on (the old view is dropped at once).
  setCluster(cluster: string | null): void {
    if (cluster === this.cluster_) return;
    this.cluster_ = cluster;
    this.gossip = polled();
    this.listeners_.forEach((fn) => fn());
    void this.poll();
  }

  // One round; a round still waiting for a slow manager is not overlapped by the next.
  async poll(): Promise<void> {
    if (this.in_flight_) return;
    this.in_flight_ = true;
    try {
      const [nodes_ok] = await Promise.all([this.pollNodes(), this.pollGossip()]);
      if (nodes_ok) this.recordSample();
    } finally {
      this.in_flight_ = false;
      this.listeners_.forEach((fn) => fn());
    }
  }

  private async pollNodes(): Promise<boolean> {
    try {
      this.nodes.value = await this.api.nodes();
      this.nodes.last_success_ms = this.now();
      this.nodes.last_error = null;
      return true;
    } catch (e) {
      this.nodes.last_error = e instanceof Error ? e.message : String(e);
      return false;
    }
  }

  private async pollGossip(): Promise<void> {
    try {
      const cluster = this.cluster_;
      const members = parseGossip(await this.api.gossip(cluster));
      if (cluster !== this.cluster_) return;
      this.gossip.value = members;
      this.gossip.last_success_ms = this.now();
      this.gossip.last_error = null;
    } catch (e) {
      this.gossip.last_error = e instanceof Error ? e.message : String(e);
    }
  }

  // The leader's writer checkpoint: from gossip (the leader may be on another machine), else
  // from this machine's nodes.
  leaderWriterCheckpoint(): number | null {
    const leader = this.gossip.value ? leaderOf(this.gossip.value) : null;
    if (leader?.writerCheckpoint != null) return leader.writerCheckpoint;
    const local = this.nodes.value?.nodes.find((n) => n.role === 'Leader');
    return local?.writerCheckpoint ?? null;
  }

  private recordSample(): void {
    const answer = this.nodes.value;
    if (!answer || this.nodes.last_success_ms === null) return;
    const leader_writer = this.leaderWriterCheckpoint();
    const sample: Sample = { at_ms: this.nodes.last_success_ms, nodes: {} };
    for (const n of answer.nodes) {
      sample.nodes[n.name] = {
        events_written: n.eventsWritten ?? null,
        events_read: n.eventsRead ?? null,
        lag_bytes: nodeLag(n, leader_writer),
        cpu_seconds: n.cpuSeconds ?? null,
      };
    }
    this.history.add(sample);
  }
}
