// Goal: the dashboard's formatting shows sizes, durations, rates, checkpoints, ages, times and JSON
// the way the pages promise, including the missing-value cases.
import { describe, expect, it } from 'vitest';
import {
  formatAgo, formatBytes, formatCheckpoints, formatCount, formatDuration, formatExit,
  formatRate, formatTimeUtc, parseIsoMs, prettyJson,
} from '../src/format';

describe('formatBytes', () => {
  it('uses binary units with one decimal below 100', () => {
    expect(formatBytes(0)).toBe('0 B');
    expect(formatBytes(1023)).toBe('1023 B');
    expect(formatBytes(1536)).toBe('1.5 KiB');
    expect(formatBytes(45678901)).toBe('43.6 MiB');
    expect(formatBytes(200 * 1024 * 1024)).toBe('200 MiB');
  });
  it('shows a dash for unknown sizes', () => {
    expect(formatBytes(null)).toBe('–');
    expect(formatBytes(undefined)).toBe('–');
    expect(formatBytes(Number.NaN)).toBe('–');
  });
});

describe('formatDuration', () => {
  it('shows the two largest units', () => {
    expect(formatDuration(10.2)).toBe('10s');
    expect(formatDuration(247)).toBe('4m 07s');
    expect(formatDuration(2 * 3600 + 5 * 60 + 9)).toBe('2h 05m');
    expect(formatDuration(3 * 86400 + 4 * 3600)).toBe('3d 04h');
  });
  it('shows a dash for null or negative', () => {
    expect(formatDuration(null)).toBe('–');
    expect(formatDuration(-1)).toBe('–');
  });
});

describe('small formats', () => {
  it('formats rates, counts and checkpoints', () => {
    expect(formatRate(12.345)).toBe('12.3/s');
    expect(formatRate(1234.4)).toBe('1234/s');
    expect(formatRate(null)).toBe('–');
    expect(formatCount(1234567)).toBe('1,234,567');
    expect(formatCheckpoints(100, 120, 110)).toBe('L100/W120/C110');
    expect(formatCheckpoints(-1, null, 5)).toBe('Ln/a/Wn/a/C5');
  });
  it('formats ages relative to now', () => {
    const now = 1_000_000;
    expect(formatAgo(now, now)).toBe('just now');
    expect(formatAgo(now - 5000, now)).toBe('5 s ago');
    expect(formatAgo(now - 180_000, now)).toBe('3 min ago');
    expect(formatAgo(null, now)).toBe('never');
  });
  it('reads ISO times with microseconds and prints them in UTC', () => {
    expect(parseIsoMs('2026-11-27T21:00:00.123456Z')).toBe(Date.UTC(2026, 10, 27, 21, 0, 0, 123));
    expect(parseIsoMs('garbage')).toBeNull();
    expect(formatTimeUtc('2026-11-27T21:00:00.000000Z')).toBe('2026-11-27 21:00:00Z');
    expect(formatTimeUtc(null)).toBe('–');
  });
  it('indents JSON text and leaves other text alone', () => {
    expect(prettyJson('{"a":1,"b":[1,2]}')).toBe('{\n  "a": 1,\n  "b": [\n    1,\n    2\n  ]\n}');
    expect(prettyJson('not json')).toBe('not json');
    expect(prettyJson('')).toBe('');
  });
  it('describes the last exit', () => {
    expect(formatExit(null)).toBe('–');
    expect(formatExit({ code: null, signal: 9, at: null, reason: null })).toBe('killed by signal 9');
    expect(formatExit({ code: 3, signal: null, at: null, reason: null })).toBe('exit code 3');
    expect(formatExit({ code: 0, signal: null, at: null, reason: 'stopped by operator' }))
      .toBe('stopped by operator');
  });
});
