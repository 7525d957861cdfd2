// Pure formatting helpers for the dashboard: sizes, durations, rates, checkpoints, times and JSON.
// No DOM and no clock of their own (the caller passes "now"), so they are unit-tested directly.

const kByteUnits = ['B', 'KiB', 'MiB', 'GiB', 'TiB'];

export function formatBytes(bytes: number | null | undefined): string {
  if (bytes === null || bytes === undefined || !Number.isFinite(bytes)) return '–';
  let value = bytes;
  let unit_index = 0;
  while (Math.abs(value) >= 1024 && unit_index < kByteUnits.length - 1) {
    value /= 1024;
    unit_index++;
  }
  const digits = unit_index === 0 || value >= 100 ? 0 : 1;
  return `${value.toFixed(digits)} ${kByteUnits[unit_index]}`;
}

// A duration in seconds as its two largest units: "12s", "4m 07s", "2h 05m", "3d 04h".
export function formatDuration(seconds: number | null | undefined): string {
  if (seconds === null || seconds === undefined || !Number.isFinite(seconds) || seconds < 0) {
    return '–';
  }
  const total_s = Math.floor(seconds);
  const days = Math.floor(total_s / 86400);
  const hours = Math.floor((total_s % 86400) / 3600);
  const minutes = Math.floor((total_s % 3600) / 60);
  const secs = total_s % 60;
  const pad = (n: number) => String(n).padStart(2, '0');
  if (days > 0) return `${days}d ${pad(hours)}h`;
  if (hours > 0) return `${hours}h ${pad(minutes)}m`;
  if (minutes > 0) return `${minutes}m ${pad(secs)}s`;
  return `${secs}s`;
}

export function formatRate(per_second: number | null | undefined): string {
  if (per_second === null || per_second === undefined || !Number.isFinite(per_second)) return '–';
  if (per_second >= 100) return `${Math.round(per_second)}/s`;
  return `${per_second.toFixed(1)}/s`;
}

export function formatCount(n: number | null | undefined): string {
  if (n === null || n === undefined || !Number.isFinite(n)) return '–';
  return n.toLocaleString('en-US');
}

// EventStore's Cluster Status column: commit, writer and chaser checkpoints as L/W/C.
export function formatCheckpoints(commit: number | null | undefined,
                                  writer: number | null | undefined,
                                  chaser: number | null | undefined): string {
  const part = (v: number | null | undefined) =>
    v === null || v === undefined || v < 0 ? 'n/a' : String(v);
  return `L${part(commit)}/W${part(writer)}/C${part(chaser)}`;
}

// How long ago an instant was, relative to now_ms: "just now", "5 s ago", "3 min ago".
export function formatAgo(at_ms: number | null | undefined, now_ms: number): string {
  if (at_ms === null || at_ms === undefined || !Number.isFinite(at_ms)) return 'never';
  const age_s = Math.max(0, Math.round((now_ms - at_ms) / 1000));
  if (age_s < 1) return 'just now';
  if (age_s < 120) return `${age_s} s ago`;
  if (age_s < 7200) return `${Math.round(age_s / 60)} min ago`;
  return `${Math.round(age_s / 3600)} h ago`;
}

// An ISO-8601 time (microseconds allowed) as epoch milliseconds, or null when unreadable.
export function parseIsoMs(iso: string | null | undefined): number | null {
  if (!iso) return null;
  const ms = Date.parse(iso);
  return Number.isNaN(ms) ? null : ms;
}

// "2026-11-27 21:00:00Z": short, sortable, unambiguous (UTC).
export function formatTimeUtc(iso: string | null | undefined): string {
  const ms = parseIsoMs(iso);
  if (ms === null) return iso ?? '–';
  return new Date(ms).toISOString().replace('T', ' ').replace(/\.\d+Z$/, 'Z');
}

// Text that holds JSON, re-indented for reading; other text is returned unchanged.
export function prettyJson(text: string | null | undefined): string {
  if (text === null || text === undefined || text === '') return '';
  try {
    return JSON.stringify(JSON.parse(text), null, 2);
  } catch {
    return text;
  }
}

export interface LastExit {
  code: number | null;
  signal: number | null;
  at: string | null;
  reason: string | null;
}

export function formatExit(exit: LastExit | null | undefined): string {
  if (!exit) return '–';
  if (exit.reason) return exit.reason;
  if (exit.signal !== null && exit.signal !== undefined) return `killed by signal ${exit.signal}`;
  if (exit.code !== null && exit.code !== undefined) return `exit code ${exit.code}`;
  return 'exited';
}
