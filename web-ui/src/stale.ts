// Freshness of polled data: the "last updated" mark turns stale when the manager has not
// answered for a while (a failed poll alone is not enough: one lost request is normal).

// Three missed one-second polls: long enough to ride out one slow answer, short enough that an
// operator sees a dead manager within a few seconds.
export const kStaleAfterMs = 3500;

export interface Freshness {
  last_success_ms: number | null;
  last_error: string | null;
}

export function isStale(f: Freshness, now_ms: number, stale_after_ms = kStaleAfterMs): boolean {
  if (f.last_success_ms === null) return f.last_error !== null;
  return now_ms - f.last_success_ms > stale_after_ms;
}
