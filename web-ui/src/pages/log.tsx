// A node's log tail: the last lines, or, with follow on, a Server-Sent Events stream from the
// manager that appends each new line (the browser's EventSource reconnects by itself).
import { useEffect, useRef, useState } from 'preact/hooks';
import { ErrorLine } from '../components';
import { useApp } from '../context';
import { followUrl, LogBuffer, logLevel } from '../logs';

const kTailLines = 200;

function useLogTail(node: string | null, follow: boolean) {
  const { api } = useApp();
  const buffer = useRef(new LogBuffer());
  const [version, setVersion] = useState(0);
  const [error, setError] = useState<string | null>(null);
  const bump = () => setVersion((v) => v + 1);
  useEffect(() => {
    buffer.current.replace([]);
    bump();
    setError(null);
    if (!node) return undefined;
    if (follow) {
      const source = new EventSource(followUrl(node, kTailLines));
      let opened = false;
      source.onopen = () => {
        // After a reconnect the manager sends the tail again: start over to avoid doubles.
        if (opened) buffer.current.replace([]);
        opened = true;
        setError(null);
      };
      source.onmessage = (e: MessageEvent<string>) => {
        buffer.current.appendEventData(e.data);
        bump();
      };
      source.onerror = () => setError('log stream interrupted; reconnecting…');
      return () => source.close();
    }
    let live = true;
    api.log(node, kTailLines).then((answer) => {
      if (!live) return;
      buffer.current.replace(answer.lines ?? []);
      bump();
    }, (e: unknown) => live && setError(e instanceof Error ? e.message : String(e)));
    return () => { live = false; };
  }, [api, node, follow]);
  return { lines: buffer.current.lines, error, version };
}

export function LogPanel({ node, nodes, onSelect }: { node: string | null; nodes: string[];
                                                      onSelect: (name: string) => void }) {
  const [follow, setFollow] = useState(false);
  const { lines, error, version } = useLogTail(node, follow);
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
          <input type="checkbox" data-testid="log-follow" checked={follow}
                 onChange={(e) => setFollow((e.target as HTMLInputElement).checked)} />
          follow
        </label>
      </div>
      <ErrorLine error={error} />
      <pre class="log-box" ref={box} data-testid="log-box" data-lines={lines.length}>
        {lines.map((l) => <div class={`log-line log-${logLevel(l)}`}>{l}</div>)}
      </pre>
    </div>
  );
}
