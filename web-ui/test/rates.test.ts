// Goal: current rates come from differences of counter samples, restarts and missing nodes give
// no rate (not spikes or negative rates), and the samples stay bounded.
import { describe, expect, it } from 'vitest';
import { counterRate, SampleHistory, type NodeSample } from '../src/rates';

function node(written: number | null, read: number | null, lag: number | null = 0,
              cpu: number | null = null): NodeSample {
  return { events_written: written, events_read: read, lag_bytes: lag, cpu_seconds: cpu };
}

describe('counterRate', () => {
  it('divides the counter difference by the elapsed seconds', () => {
    expect(counterRate(100, 0, 150, 1000)).toBe(50);
    expect(counterRate(100, 0, 150, 500)).toBe(100);
  });
  it('gives null for resets, unknown values and no elapsed time', () => {
    expect(counterRate(500, 0, 10, 1000)).toBeNull();
    expect(counterRate(null, 0, 10, 1000)).toBeNull();
    expect(counterRate(5, 1000, 10, 1000)).toBeNull();
  });
});

describe('SampleHistory', () => {
  it('gives no rate for a restarted node (the counter went down) or a missing one', () => {
    const h = new SampleHistory();
    h.add({ at_ms: 1000, nodes: { n1: node(1000, 0) } });
    h.add({ at_ms: 2000, nodes: { n1: node(3, 0) } });
    expect(h.latestRate('n1', 'events_written')).toBeNull();
    h.add({ at_ms: 3000, nodes: { n1: node(13, 0), n2: node(5, 0) } });
    expect(h.latestRate('n1', 'events_written')).toBe(10);
    expect(h.latestRate('n2', 'events_written')).toBeNull();
  });
  it('ignores samples that do not move time forward and keeps at most samples_max', () => {
    const h = new SampleHistory(3);
    for (let i = 1; i <= 5; i++) h.add({ at_ms: i * 1000, nodes: { n1: node(i, i) } });
    h.add({ at_ms: 5000, nodes: { n1: node(99, 99) } });
    expect(h.samples.map((s) => s.at_ms)).toEqual([3000, 4000, 5000]);
  });
  it('gives the latest rate of a counter, e.g. CPU load', () => {
    const h = new SampleHistory();
    expect(h.latestRate('n1', 'cpu_seconds')).toBeNull();
    h.add({ at_ms: 1000, nodes: { n1: node(0, 0, 0, 2.0) } });
    h.add({ at_ms: 3000, nodes: { n1: node(0, 0, 0, 2.5) } });
    expect(h.latestRate('n1', 'cpu_seconds')).toBeCloseTo(0.25);
    expect(h.latestRate('n9', 'cpu_seconds')).toBeNull();
  });
});
