// A node's log tail as the page shows it: a bounded buffer of lines (follow mode appends one
// Server-Sent Event per line) and the level of each line, parsed from the worker's format
// "<time> [Level] message", for colouring.

// Enough for several screens of history; older lines drop off so a chatty node cannot grow the
// page's memory without bound.
export const kLogLinesMax = 2000;

export class LogBuffer {
  private lines_: string[] = [];

  constructor(private readonly lines_max = kLogLinesMax) {}

  replace(lines: string[]): void {
    this.lines_ = lines.slice(-this.lines_max);
  }

  // One SSE message's data: normally one line, but a multi-line "data:" block arrives joined
  // with "\n", and each part is its own line.
  appendEventData(data: string): void {
    for (const line of splitEventData(data)) this.lines_.push(line);
    if (this.lines_.length > this.lines_max) {
      this.lines_.splice(0, this.lines_.length - this.lines_max);
    }
  }

  get lines(): readonly string[] {
    return this.lines_;
  }
}

export function splitEventData(data: string): string[] {
  const parts = data.split(/\r?\n/);
  if (parts.length > 1 && parts[parts.length - 1] === '') parts.pop();
  return parts;
}

export type LogLevel = 'verbose' | 'debug' | 'info' | 'warn' | 'error' | 'fatal' | 'plain';

const kLevels: Record<string, LogLevel> = {
  Verbose: 'verbose', Debug: 'debug', Information: 'info', Warning: 'warn', Error: 'error',
  Fatal: 'fatal',
};

export function logLevel(line: string): LogLevel {
  const match = /^\S+ \[(\w+)\]/.exec(line);
  return (match && kLevels[match[1]]) || 'plain';
}

// The URL of a follow stream; the manager sends the last `lines` lines, then each new one.
export function followUrl(node: string, lines = 200): string {
  return `/api/nodes/${encodeURIComponent(node)}/log?lines=${lines}&follow=true`;
}
