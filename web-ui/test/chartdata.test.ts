// Goal: prove that the charts' history merges the manager's samples in order without doubles,
// stays within its window, turns counters into rates (a restart is a gap, not a spike) and takes
// gauges as they are, and that time-axis labels are clock time without fractions of a second.
import { describe, expect, it } from 'vitest';
import { ChartHistory, clockLabel, kClockIncrs, type HistoryDoc } from '../src/chartdata';

process.env.TZ = 'UTC';

function doc(times: number[], written: Record<string, (number | null)[]>,
             lag: Record<string, (number | null)[]> = {}): HistoryDoc {
  return { resolution: '1s', intervalMs: 1000, nodes: Object.keys(written), times,
    series: { eventsWritten: written, lagMs: lag } };
}

describe('ChartHistory', () => {
  it('merges samples in order, skips what it already holds, and keeps its window', () => {
    const h = new ChartHistory(3000);
    h.merge(doc([1000, 2000], { n1: [0, 10] }));
    h.merge(doc([2000, 3000, 4000], { n1: [10, 30, 60] }));
    expect(h.size).toBe(4);
    expect(h.lastTime()).toBe(4000);
    h.merge(doc([5000], { n1: [100] }));
    expect(h.size).toBe(4);  // 2000..5000: three seconds before the newest and the newest
    const writes = h.series('writes');
    expect(writes.names).toEqual(['n1']);
    expect(writes.data[0]).toEqual([3, 4, 5]);
    expect(writes.data[1]).toEqual([20, 30, 40]);
  });

  it('gives a gap for a counter that went down and for unknown values', () => {
    const h = new ChartHistory(60_000);
    h.merge(doc([1000, 2000, 3000, 4000], { n1: [100, 5, 15, null], n2: [0, 1, 2, 3] }));
    const writes = h.series('writes');
    expect(writes.names).toEqual(['n1', 'n2']);
    expect(writes.data[1]).toEqual([null, 10, null]);
    expect(writes.data[2]).toEqual([1, 1, 1]);
  });

  it('takes gauges as they are, from the first sample', () => {
    const h = new ChartHistory(60_000);
    h.merge(doc([1000, 2000], { n1: [0, 0] }, { n1: [250, null] }));
    expect(h.series('lagMs').data).toEqual([[1, 2], [250, null]]);
    expect(h.series('disk').data).toEqual([[1, 2], [null, null]]);
  });

  it('refuses an answer that is not a history document', () => {
    const h = new ChartHistory(1000);
    expect(() => h.merge({ error: 'x' })).toThrow(/nodes/);
    expect(h.size).toBe(0);
  });
});

describe('clockLabel', () => {
  it('labels seconds ticks HH:MM:SS and minute ticks HH:MM, never fractions', () => {
    const t = Date.UTC(2026, 11, 2, 14, 5, 17) / 1000;
    expect(clockLabel(t, 5)).toBe('14:05:17');
    expect(clockLabel(t, 60)).toBe('14:05');
    expect(clockLabel(t + 0.5, 1)).toBe('14:05:17');
    expect(kClockIncrs.every((s) => Number.isInteger(s) && s >= 1)).toBe(true);
  });
});
