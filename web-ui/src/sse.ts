// Server-Sent Events over fetch(): unlike EventSource, fetch can send the Authorization header
// that the manager's log follow requires. SseParser turns received text into the data of each
// event (pure, unit-tested); followEvents reads a stream and reconnects after a pause until it
// is aborted.

export class SseParser {
  private pending_ = '';
  private data_: string[] = [];

  // The data of every event completed by `chunk` (an event ends at a blank line; comment lines
  // such as keep-alives are skipped; several "data:" lines join with "\n").
  push(chunk: string): string[] {
    this.pending_ += chunk;
    const out: string[] = [];
    let nl: number;
    while ((nl = this.pending_.indexOf('\n')) >= 0) {
      const line = this.pending_.slice(0, nl).replace(/\r$/, '');
      this.pending_ = this.pending_.slice(nl + 1);
      if (line === '') {
        if (this.data_.length) out.push(this.data_.join('\n'));
        this.data_ = [];
      } else if (line.startsWith('data:')) {
        this.data_.push(line.slice(5).replace(/^ /, ''));
      }
    }
    return out;
  }
}

// Pause before a dropped stream is opened again.
export const kReconnectMs = 2000;

export interface FollowHandlers {
  onOpen: () => void;
  onData: (data: string) => void;
  onError: (message: string) => void;
}

// Reads `url` as an event stream with `headers` until `signal` aborts; a refusal (4xx) stops
// and reports, anything else reconnects after kReconnectMs.
export async function followEvents(url: string, headers: Record<string, string>,
                                   signal: AbortSignal, on: FollowHandlers): Promise<void> {
  while (!signal.aborted) {
    try {
      const response = await fetch(url, { headers, signal, cache: 'no-store' });
      if (response.status >= 400 && response.status < 500) {
        on.onError(`HTTP ${response.status}: ${(await response.text()).slice(0, 200)}`);
        return;
      }
      if (!response.ok || !response.body) throw new Error(`HTTP ${response.status}`);
      on.onOpen();
      const parser = new SseParser();
      const reader = response.body.pipeThrough(new TextDecoderStream()).getReader();
      for (;;) {
        const { value, done } = await reader.read();
        if (done) break;
        parser.push(value).forEach(on.onData);
      }
      on.onError('log stream ended; reconnecting…');
    } catch (e) {
      if (signal.aborted) return;
      on.onError('log stream interrupted; reconnecting…');
    }
    await new Promise((resolve) => setTimeout(resolve, kReconnectMs));
  }
}
