// The charts' data: samples of the manager's chart history (GET /api/metrics-history, one a
// second for the last hour, one a minute for the last day), merged as they arrive, bounded to
// the chosen window, and turned into uPlot columns: counters become rates, gauges are taken as
// they are. Also the clock-time labels of the time axis. Pure; no DOM, no clock of its own.
import { counterRate } from './rates';

export type Figure = 'eventsWritten' | 'eventsRead' | 'cpuSeconds' | 'writeP99Ms' | 'lagBytes' |
  'lagEvents' | 'lagMs' | 'tcpConnections' | 'dataBytes' | 'rssBytes';

export interface HistoryDoc {
  resolution: '1s' | '1m';
  intervalMs: number;
  nodes: string[];
  times: number[];
  series: Partial<Record<Figure, Record<string, (number | null)[]>>>;
}

export type ChartMetric = 'writes' | 'reads' | 'writeP99' | 'lagEvents' | 'lagMs' | 'lagBytes' |
  'connections' | 'disk';

// Which history figure each chart draws, and whether it is a counter (drawn as a rate).
export const kChartFigures: Record<ChartMetric, { figure: Figure; rate: boolean }> = {
  writes: { figure: 'eventsWritten', rate: true },
  reads: { figure: 'eventsRead', rate: true },
  writeP99: { figure: 'writeP99Ms', rate: false },
  lagEvents: { figure: 'lagEvents', rate: false },
  lagMs: { figure: 'lagMs', rate: false },
  lagBytes: { figure: 'lagBytes', rate: false },
  connections: { figure: 'tcpConnections', rate: false },
  disk: { figure: 'dataBytes', rate: false },
};

export interface ChartRange {
  id: '5m' | '1h' | '24h';
  label: string;
  resolution: '1s' | '1m';
  window_ms: number;
}

export const kChartRanges: ChartRange[] = [
  { id: '5m', label: 'last 5 minutes', resolution: '1s', window_ms: 5 * 60_000 },
  { id: '1h', label: 'last hour', resolution: '1s', window_ms: 60 * 60_000 },
  { id: '24h', label: 'last day (per minute)', resolution: '1m', window_ms: 24 * 60 * 60_000 },
];

interface Row {
  at_ms: number;
  values: Record<string, Partial<Record<Figure, number | null>>>;
}

function isDoc(doc: unknown): doc is HistoryDoc {
  const d = doc as HistoryDoc;
  return !!d && Array.isArray(d.nodes) && Array.isArray(d.times) && typeof d.series === 'object';
}

export class ChartHistory {
  private rows_: Row[] = [];
  private names_ = new Set<string>();

  constructor(private readonly window_ms: number) {}

  // Adds the document's samples that are later than the last one held, then drops those older
  // than the window before the newest. A malformed document throws (the page shows why).
  merge(doc: unknown): void {
    if (!isDoc(doc)) throw new Error('chart history answer has no "nodes", "times", "series"');
    doc.nodes.forEach((n) => this.names_.add(n));
    const last = this.lastTime();
    doc.times.forEach((at_ms, i) => {
      if (last !== null && at_ms <= last) return;
      const values: Row['values'] = {};
      for (const node of doc.nodes) {
        const v: Partial<Record<Figure, number | null>> = {};
        for (const [figure, by_node] of Object.entries(doc.series)) {
          v[figure as Figure] = by_node?.[node]?.[i] ?? null;
        }
        values[node] = v;
      }
      this.rows_.push({ at_ms, values });
    });
    const newest = this.lastTime();
    if (newest === null) return;
    const keep_from = this.rows_.findIndex((r) => r.at_ms >= newest - this.window_ms);
    if (keep_from > 0) this.rows_.splice(0, keep_from);
  }

  lastTime(): number | null {
    return this.rows_.length ? this.rows_[this.rows_.length - 1].at_ms : null;
  }

  get size(): number {
    return this.rows_.length;
  }

  // uPlot's column layout: [times in seconds, one column per node (sorted)]. Rates start at
  // the second sample; a counter that went down (a restart) gives a gap.
  series(metric: ChartMetric): { names: string[]; data: (number | null)[][] } {
    const { figure, rate } = kChartFigures[metric];
    const names = [...this.names_].sort();
    const times: number[] = [];
    const columns: (number | null)[][] = names.map(() => []);
    for (let i = rate ? 1 : 0; i < this.rows_.length; i++) {
      const cur = this.rows_[i];
      times.push(cur.at_ms / 1000);
      names.forEach((name, k) => {
        const now = cur.values[name]?.[figure] ?? null;
        if (!rate) {
          columns[k].push(now);
          return;
        }
        const prev = this.rows_[i - 1];
        const before = prev.values[name]?.[figure] ?? null;
        columns[k].push(counterRate(before, prev.at_ms, now, cur.at_ms));
      });
    }
    return { names, data: [times, ...columns] };
  }
}

// Tick spacings of the time axis in seconds: whole seconds and minutes, never fractions (which
// uPlot's default picks for short ranges and labels ":17.500").
export const kClockIncrs = [1, 2, 5, 10, 15, 30, 60, 120, 300, 600, 900, 1800, 3600, 7200,
  10800, 21600, 43200, 86400];

// A tick's label in the browser's clock time: "14:05:30" when ticks are seconds apart, "14:05"
// when they are minutes apart or more.
export function clockLabel(t_s: number, step_s: number): string {
  const d = new Date(t_s * 1000);
  const pad = (n: number) => String(n).padStart(2, '0');
  const hm = `${pad(d.getHours())}:${pad(d.getMinutes())}`;
  return step_s < 60 ? `${hm}:${pad(d.getSeconds())}` : hm;
}
