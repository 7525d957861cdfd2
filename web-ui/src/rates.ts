// Rates from counter samples taken by the page's own poller: the manager's /api/nodes gives
// cumulative counters per node (CPU seconds, events written and read); differencing the last two
// gives the current rate (CPU seconds per second is CPU load). A counter that goes down (the
// node restarted) or a node that is missing gives no rate, not a spike. The charts' history comes
// from the manager instead (chartdata.ts).

export interface NodeSample {
  events_written: number | null;
  events_read: number | null;
  lag_bytes: number | null;
  cpu_seconds: number | null;
}

type CounterField = 'events_written' | 'events_read' | 'cpu_seconds';

export interface Sample {
  at_ms: number;
  nodes: Record<string, NodeSample>;
}

// Five minutes of one-second samples: what "the last minutes" means on the charts.
export const kSamplesMax = 300;

// The rate between two counter readings, per second; null when either is unknown, time did not
// advance, or the counter was reset.
export function counterRate(prev: number | null, prev_ms: number,
                            cur: number | null, cur_ms: number): number | null {
  if (prev === null || cur === null) return null;
  const dt_s = (cur_ms - prev_ms) / 1000;
  if (dt_s <= 0 || cur < prev) return null;
  return (cur - prev) / dt_s;
}

export class SampleHistory {
  private samples_: Sample[] = [];

  constructor(private readonly samples_max = kSamplesMax) {}

  add(sample: Sample): void {
    const last = this.samples_[this.samples_.length - 1];
    if (last && sample.at_ms <= last.at_ms) return;
    this.samples_.push(sample);
    if (this.samples_.length > this.samples_max) {
      this.samples_.splice(0, this.samples_.length - this.samples_max);
    }
  }

  get samples(): readonly Sample[] {
    return this.samples_;
  }

  // The rate of a counter between the last two samples (CPU seconds per second is CPU load).
  latestRate(name: string, field: CounterField): number | null {
    const n = this.samples_.length;
    if (n < 2) return null;
    const prev = this.samples_[n - 2];
    const cur = this.samples_[n - 1];
    const before = prev.nodes[name];
    const now = cur.nodes[name];
    if (!before || !now) return null;
    return counterRate(before[field], prev.at_ms, now[field], cur.at_ms);
  }
}
