// A node's log tail: the last lines, or, with follow on, a Server-Sent Events stream from the
// manager that appends each new line. Both need a login of $admins or $ops: follow reads the
// stream with fetch (EventSource cannot send credentials) and reconnects by itself.
import { useEffect, useRef, useState } from 'preact/hooks';
import { ErrorLine } from '../components';
import { useApp } from '../context';
import { followUrl, LogBuffer, logLevel } from '../logs';
import { followEvents } from '../sse';

const kTailLines = 200;

function useLogTail(node: string | null, follow: boolean, auth: string | null) {
  const { api } = useApp();
  const buffer = useRef(new LogBuffer());
  const [version, setVersion] = useState(0);
  const [error, setError] = useState<string | null>(null);
  // Where the shown lines come from: the tail request, the follow stream, or nothing yet.
  const [source, setSource] = useState<'tail' | 'follow' | null>(null);
  const bump = () => setVersion((v) => v + 1);
  useEffect(() => {
    buffer.current.replace([]);
    bump();
    setError(null);
    setSource(null);
    if (!node || !auth) return undefined;
    if (follow) {
      const stop = new AbortController();
      void followEvents(followUrl(node, kTailLines), { Authorization: auth }, stop.signal, {
        // After a reconnect the manager sends the tail again: start over to avoid doubles.
        onOpen: () => { buffer.current.replace([]); bump(); setError(null); setSource('follow'); },
        onData: (data) => { buffer.current.appendEventData(data); bump(); },
        onError: setError,
      });
      return () => stop.abort();
    }
    let live = true;
    api.log(node, auth, kTailLines).then((answer) => {
      if (!live) return;
      buffer.current.replace(answer.lines ?? []);
      bump();
      setSource('tail');
    }, (e: unknown) => live && setError(e instanceof Error ? e.message : String(e)));
    return () => { live = false; };
  }, [api, node, follow, auth]);
  return { lines: buffer.current.lines, error, version, source };
}

export function LogPanel({ node, nodes, onSelect }: { node: string | null; nodes: string[];
                                                      onSelect: (name: string) => void }) {
  const { session } = useApp();
  const auth = session?.authorization ?? null;
  const [follow, setFollow] = useState(false);
  const { lines, error, version, source } = useLogTail(node, follow, auth);
  const box = useRef<HTMLPreElement>(null);
  useEffect(() => {
    const el = box.current;
    if (el) el.scrollTop = el.scrollHeight;
  }, [version]);
  return (
    <div class="panel">
      <div class="panel-head">
        <h2>Log</h2>
        <select data-testid="log-node" value={node ?? ''}
                onChange={(e) => onSelect((e.target as HTMLSelectElement).value)}>
          {nodes.map((n) => <option value={n}>{n}</option>)}
        </select>
        <label class="check">
          <input type="checkbox" data-testid="log-follow" checked={follow} disabled={!auth}
                 onChange={(e) => setFollow((e.target as HTMLInputElement).checked)} />
          follow
        </label>
      </div>
      {!auth ? (
        <p class="muted" data-testid="log-login">
          <a href="#/login">Log in</a> as a user of $admins or $ops to read the nodes' logs.
        </p>
      ) : (
        <>
          <ErrorLine error={error} />
          <pre class="log-box" ref={box} data-testid="log-box" data-lines={lines.length}
               data-source={source ?? ''}>
            {lines.map((l) => <div class={`log-line log-${logLevel(l)}`}>{l}</div>)}
          </pre>
        </>
      )}
    </div>
  );
}
