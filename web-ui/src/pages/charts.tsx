// Charts page: writes/s, reads/s and replication lag per node over the last minutes, from the
// live store's one-second samples of /api/nodes, drawn with uPlot. Each chart carries the number
// of points it holds in data-points, for the browser tests.
import { useEffect, useRef } from 'preact/hooks';
import uPlot from 'uplot';
import { useLiveStore } from '../context';
import { formatBytes, formatRate } from '../format';

const kPalette = ['#2563eb', '#16a34a', '#dc2626', '#9333ea', '#ea580c', '#0891b2', '#ca8a04'];
const kChartHeightPx = 220;
// Lag is a whole number of bytes: ticks at 1-2-5 steps, never fractions of a byte.
const kWholeByteSteps = [1, 2, 5].flatMap((d) => [1, 10, 100, 1e3, 1e4, 1e5, 1e6, 1e7, 1e8, 1e9]
  .map((p) => d * p)).sort((a, b) => a - b);

type Metric = 'writes' | 'reads' | 'lag';

function options(names: string[], width: number, metric: Metric): uPlot.Options {
  const fmt = metric === 'lag' ? (v: number) => formatBytes(v) : (v: number) => formatRate(v);
  return {
    width,
    height: kChartHeightPx,
    legend: { live: true },
    scales: { x: { time: true }, y: { range: (_u, _min, max) => [0, Math.max(1, max)] } },
    axes: [{}, { size: 70, values: (_u, ticks) => ticks.map(fmt),
                 ...(metric === 'lag' ? { incrs: kWholeByteSteps } : {}) }],
    series: [{}, ...names.map((name, i) => ({
      label: name,
      stroke: kPalette[i % kPalette.length],
      width: 2,
      spanGaps: false,
      value: (_u: uPlot, v: number | null) => (v === null ? '–' : fmt(v)),
    }))],
  };
}

function pointsIn(data: (number | null)[][]): number {
  let n = 0;
  for (let k = 1; k < data.length; k++) n += data[k].filter((v) => v !== null).length;
  return n;
}

function Chart({ title, metric }: { title: string; metric: Metric }) {
  const store = useLiveStore();
  const box = useRef<HTMLDivElement>(null);
  const plot = useRef<{ chart: uPlot; key: string } | null>(null);
  const { names, data } = store.history.series(metric);
  const key = names.join(',');
  useEffect(() => {
    const el = box.current;
    if (!el) return;
    if (!plot.current || plot.current.key !== key) {
      plot.current?.chart.destroy();
      const chart = new uPlot(options(names, el.clientWidth || 600, metric),
        data as uPlot.AlignedData, el);
      plot.current = { chart, key };
    } else {
      plot.current.chart.setData(data as uPlot.AlignedData);
    }
  });
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
      <h2>{title}</h2>
      <div class="chart" ref={box} data-testid={`chart-${metric}`}
           data-points={pointsIn(data)} data-series={names.length} />
    </div>
  );
}

export function ChartsPage() {
  return (
    <section>
      <div class="page-head"><h1>Charts</h1>
        <span class="muted">this machine's nodes, sampled every second, last 5 minutes</span>
      </div>
      <div class="charts">
        <Chart title="Writes per second" metric="writes" />
        <Chart title="Reads per second" metric="reads" />
        <Chart title="Replication lag behind the leader" metric="lag" />
      </div>
    </section>
  );
}
