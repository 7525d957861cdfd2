// Streams page (EventStore's Stream Browser): recently written streams, and one stream's events
// newest first, twenty a page, with data and metadata as indented JSON. $all is offered to
// admins (the node refuses it to others).
import { useEffect, useState } from 'preact/hooks';
import type { RecentStream } from '../api';
import { isAdmin } from '../auth';
import { ErrorLine } from '../components';
import { useApp } from '../context';
import { formatTimeUtc, prettyJson } from '../format';
import { streamHash } from '../route';
import { headPath, parseFeed, type FeedEvent, type FeedPage } from '../streams';

function RecentStreams() {
  const { api, session } = useApp();
  const [streams, setStreams] = useState<RecentStream[] | null>(null);
  const [error, setError] = useState<string | null>(null);
  useEffect(() => {
    if (!isAdmin(session)) return;
    api.recentStreams(session?.authorization ?? null).then(
      (a) => { setStreams(a.streams ?? []); setError(null); },
      (e: unknown) => setError(e instanceof Error ? e.message : String(e)));
  }, [api, session]);
  if (!isAdmin(session)) {
    return <p class="muted" data-testid="recent-needs-admin">
      <a href="#/login">Log in</a> as an admin to see recently written streams and $all.</p>;
  }
  return (
    <div class="panel">
      <h2>Recently written streams</h2>
      <ErrorLine error={error} />
      <table class="compact" data-testid="recent-streams">
        <tbody>
          {(streams ?? []).map((s) => (
            <tr data-testid="recent-stream" data-stream={s.stream}>
              <td><a href={streamHash(s.stream)}>{s.stream}</a></td>
              <td class="num">#{s.lastEventNumber}</td>
              <td class="mono nowrap">{formatTimeUtc(s.updated)}</td>
            </tr>
          ))}
        </tbody>
      </table>
      {streams && streams.length === 0 && <p class="muted">No streams written yet.</p>}
    </div>
  );
}

function OpenStream() {
  const { session } = useApp();
  const [name, setName] = useState('');
  const open = (e: Event) => {
    e.preventDefault();
    if (name.trim()) window.location.hash = streamHash(name.trim());
  };
  return (
    <form class="inline-form" onSubmit={open}>
      <input type="text" placeholder="stream name" value={name} data-testid="stream-input"
             aria-label="stream name"
             onInput={(e) => setName((e.target as HTMLInputElement).value)} />
      <button type="submit" data-testid="stream-open">Open</button>
      {isAdmin(session) && <a class="button" href={streamHash('$all')} data-testid="open-all">
        $all</a>}
    </form>
  );
}

function EventCard({ event }: { event: FeedEvent }) {
  return (
    <article class="event" data-testid="stream-event" data-number={event.eventNumber ?? ''}
             data-type={event.eventType}>
      <header>
        <span class="event-number">#{event.eventNumber ?? '?'}</span>
        <span class="event-type">{event.eventType}</span>
        {event.streamId && <span class="sub">{event.title || event.streamId}</span>}
        <span class="sub mono">{formatTimeUtc(event.updated)}</span>
      </header>
      <div class="event-body">
        <div><h4>Data</h4>
          <pre data-testid="event-data">{event.isJson ? prettyJson(event.data) : event.data}</pre>
        </div>
        {event.metadata && <div><h4>Metadata</h4>
          <pre data-testid="event-metadata">{prettyJson(event.metadata)}</pre></div>}
      </div>
    </article>
  );
}

function StreamView({ stream }: { stream: string }) {
  const { api, session } = useApp();
  const [path, setPath] = useState(headPath(stream));
  const [page, setPage] = useState<FeedPage | null>(null);
  const [error, setError] = useState<string | null>(null);
  useEffect(() => { setPath(headPath(stream)); }, [stream]);
  useEffect(() => {
    let live = true;
    setError(null);
    api.streamFeed(path, session?.authorization ?? null).then(
      (answer) => live && setPage(parseFeed(answer)),
      (e: unknown) => {
        if (!live) return;
        setPage(null);
        setError(e instanceof Error ? e.message : String(e));
      });
    return () => { live = false; };
  }, [api, session, path]);
  const go = (to: string | null) => to && setPath(to);
  return (
    <div class="panel" data-testid="stream-view" data-stream={stream}>
      <div class="panel-head">
        <h2>{stream}</h2>
        <div class="pager">
          <button type="button" data-testid="page-head" onClick={() => setPath(headPath(stream))}>
            Newest</button>
          <button type="button" data-testid="page-newer" disabled={!page?.links.previous}
                  onClick={() => go(page?.links.previous ?? null)}>Newer</button>
          <button type="button" data-testid="page-older" disabled={!page?.links.next}
                  onClick={() => go(page?.links.next ?? null)}>Older</button>
        </div>
      </div>
      <ErrorLine error={error} />
      {page && page.events.length === 0 && <p class="muted">No events on this page.</p>}
      {page?.events.map((e) => <EventCard event={e} />)}
    </div>
  );
}

export function StreamsPage({ stream }: { stream: string | null }) {
  return (
    <section>
      <div class="page-head">
        <h1>Streams</h1>
        {stream && <a href="#/streams">All streams</a>}
      </div>
      <OpenStream />
      {stream ? <StreamView stream={stream} /> : <RecentStreams />}
    </section>
  );
}
