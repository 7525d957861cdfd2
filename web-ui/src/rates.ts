// Chart data from counter samples: the manager's /api/nodes gives cumulative eventsWritten and
// eventsRead per node; sampling it every second and differencing gives writes/s and reads/s. A
// counter that goes down (the node restarted) or a node that is missing gives a gap, not a spike.

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

  // Every node name seen in the window, sorted, so series keep their colours.
  nodeNames(): string[] {
    const names = new Set<string>();
    for (const s of this.samples_) Object.keys(s.nodes).forEach((n) => names.add(n));
    return [...names].sort();
  }

  // uPlot's column layout: [times in seconds, one column per node]. Rates start at the second
  // sample; lag is taken as is.
  series(metric: 'writes' | 'reads' | 'lag'): { names: string[]; data: (number | null)[][] } {
    const names = this.nodeNames();
    const times: number[] = [];
    const columns: (number | null)[][] = names.map(() => []);
    const first = metric === 'lag' ? 0 : 1;
    for (let i = first; i < this.samples_.length; i++) {
      const cur = this.samples_[i];
      times.push(cur.at_ms / 1000);
      names.forEach((name, k) => {
        columns[k].push(this.valueAt(i, name, metric));
      });
    }
    return { names, data: [times, ...columns] };
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

  private valueAt(i: number, name: string, metric: 'writes' | 'reads' | 'lag'): number | null {
    const cur = this.samples_[i];
    const now = cur.nodes[name];
    if (!now) return null;
    if (metric === 'lag') return now.lag_bytes;
    const prev_sample = this.samples_[i - 1];
    const before = prev_sample.nodes[name];
    if (!before) return null;
    const field = metric === 'writes' ? 'events_written' : 'events_read';
    return counterRate(before[field], prev_sample.at_ms, now[field], cur.at_ms);
  }
}
