// Charts page: this machine's nodes over time, drawn with uPlot from the manager's chart history
// (one sample a second for the last hour, one a minute for the last day), so the page opens with
// the past; then the newest samples are fetched every second. Time axis labels are clock time.
// Each chart carries the number of points it holds in data-points, for the browser tests.
import { useEffect, useRef, useState } from 'preact/hooks';
import uPlot from 'uplot';
import { ChartHistory, clockLabel, kChartRanges, kClockIncrs, type ChartMetric,
  type ChartRange } from '../chartdata';
import { ErrorLine } from '../components';
import { useApp } from '../context';
import { formatBytes, formatCount, formatRate } from '../format';

const kPalette = ['#2563eb', '#16a34a', '#dc2626', '#9333ea', '#ea580c', '#0891b2', '#ca8a04'];
const kChartHeightPx = 220;
const kRefreshMs = 1000;
// Whole numbers (bytes, events, connections): ticks at 1-2-5 steps, never fractions.
const kWholeSteps = [1, 2, 5].flatMap((d) => [1, 10, 100, 1e3, 1e4, 1e5, 1e6, 1e7, 1e8, 1e9,
  1e10, 1e11, 1e12].map((p) => d * p)).sort((a, b) => a - b);

interface ChartSpec {
  metric: ChartMetric;
  title: string;
  format: (v: number) => string;
  whole: boolean;
}

const kCharts: ChartSpec[] = [
  { metric: 'writes', title: 'Writes per second', format: formatRate, whole: false },
  { metric: 'reads', title: 'Reads per second', format: formatRate, whole: false },
  { metric: 'writeP99', title: 'Write latency, 99th percentile',
    format: (v) => `${v < 10 ? v.toFixed(2) : Math.round(v)} ms`, whole: false },
  { metric: 'lagEvents', title: 'Replication lag (events)', format: formatCount, whole: true },
  { metric: 'lagMs', title: 'Replication lag (time)', format: (v) => `${Math.round(v)} ms`,
    whole: true },
  { metric: 'lagBytes', title: 'Replication lag (bytes)', format: formatBytes, whole: true },
  { metric: 'connections', title: 'Client connections (TCP)', format: formatCount, whole: true },
  { metric: 'disk', title: 'Disk use', format: formatBytes, whole: true },
];

function options(names: string[], width: number, spec: ChartSpec): uPlot.Options {
  return {
    width,
    height: kChartHeightPx,
    legend: { live: true },
    scales: { x: { time: true }, y: { range: (_u, _min, max) => [0, Math.max(1, max)] } },
    axes: [
      { incrs: kClockIncrs, space: 60,
        values: (u, ticks, _axis, _space, step) => {
          const labels = ticks.map((t) => clockLabel(t, step));
          u.root.dataset.timeLabels = labels.join(' ');  // for the browser tests
          return labels;
        } },
      { size: 80, values: (_u, ticks) => ticks.map(spec.format),
        ...(spec.whole ? { incrs: kWholeSteps } : {}) },
    ],
    series: [{ value: (_u: uPlot, t: number | null) => (t === null ? '–' : clockLabel(t, 1)) },
      ...names.map((name, i) => ({
        label: name,
        stroke: kPalette[i % kPalette.length],
        width: 2,
        spanGaps: false,
        value: (_u: uPlot, v: number | null) => (v === null ? '–' : spec.format(v)),
      }))],
  };
}

function pointsIn(data: (number | null)[][]): number {
  let n = 0;
  for (let k = 1; k < data.length; k++) n += data[k].filter((v) => v !== null).length;
  return n;
}

function Chart({ spec, history, version }: { spec: ChartSpec; history: ChartHistory;
                                             version: number }) {
  const box = useRef<HTMLDivElement>(null);
  const plot = useRef<{ chart: uPlot; key: string } | null>(null);
  const { names, data } = history.series(spec.metric);
  const key = names.join(',');
  useEffect(() => {
    const el = box.current;
    if (!el) return;
    if (!plot.current || plot.current.key !== key) {
      plot.current?.chart.destroy();
      const chart = new uPlot(options(names, el.clientWidth || 600, spec),
        data as uPlot.AlignedData, el);
      plot.current = { chart, key };
    } else {
      plot.current.chart.setData(data as uPlot.AlignedData);
    }
  }, [version, key]);
  useEffect(() => {
    const el = box.current;
    if (!el) return undefined;
    const observer = new ResizeObserver(() => {
      plot.current?.chart.setSize({ width: el.clientWidth, height: kChartHeightPx });
    });
    observer.observe(el);
    return () => { observer.disconnect(); plot.current?.chart.destroy(); plot.current = null; };
  }, []);
  return (
    <div class="panel chart-panel">
      <h2>{spec.title}</h2>
      <div class="chart" ref={box} data-testid={`chart-${spec.metric}`}
           data-points={pointsIn(data)} data-series={names.length}
           data-first-ms={data[0].length ? Math.round(data[0][0]! * 1000) : ''} />
    </div>
  );
}

// Loads the range's history once, then the samples after the newest every second.
function useChartHistory(range: ChartRange) {
  const { api } = useApp();
  const history = useRef(new ChartHistory(range.window_ms));
  const [version, setVersion] = useState(0);
  const [error, setError] = useState<string | null>(null);
  useEffect(() => {
    history.current = new ChartHistory(range.window_ms);
    setVersion((v) => v + 1);
    let live = true;
    let busy = false;
    const load = async () => {
      if (busy) return;
      busy = true;
      try {
        const since = history.current.lastTime() ?? Date.now() - range.window_ms;
        const doc = await api.metricsHistory(range.resolution, since);
        if (!live) return;
        history.current.merge(doc);
        setVersion((v) => v + 1);
        setError(null);
      } catch (e) {
        if (live) setError(e instanceof Error ? e.message : String(e));
      } finally {
        busy = false;
      }
    };
    void load();
    const timer = setInterval(load, range.resolution === '1s' ? kRefreshMs : 10 * kRefreshMs);
    return () => { live = false; clearInterval(timer); };
  }, [api, range]);
  return { history: history.current, version, error };
}

export function ChartsPage() {
  const [range, setRange] = useState<ChartRange>(kChartRanges[0]);
  const { history, version, error } = useChartHistory(range);
  return (
    <section>
      <div class="page-head"><h1>Charts</h1>
        <span class="muted">this machine's nodes, as the manager sampled them</span>
        <select data-testid="chart-range" value={range.id}
                onChange={(e) => setRange(kChartRanges.find(
                  (r) => r.id === (e.target as HTMLSelectElement).value) ?? kChartRanges[0])}>
          {kChartRanges.map((r) => <option value={r.id}>{r.label}</option>)}
        </select>
      </div>
      <ErrorLine error={error} />
      <div class="charts" data-testid="charts" data-samples={history.size}>
        {kCharts.map((spec) => <Chart spec={spec} history={history} version={version} />)}
      </div>
    </section>
  );
}
