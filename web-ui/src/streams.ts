// The stream browser's logic: a node's Atom feed (PROTOCOL.md E1, read with embed=body) as rows,
// and the feed's paging links turned into paths of the manager's /api/streams/ proxy.

export const kPageSize = 20;

export interface FeedEvent {
  eventNumber: number | null;
  eventType: string;
  eventId: string;
  streamId: string;
  updated: string | null;
  isJson: boolean;
  data: string;
  metadata: string;
  title: string;
}

export interface FeedPage {
  events: FeedEvent[];
  headOfStream: boolean;
  // Paths below /api/streams/ for the pager, or null when there is no such page.
  links: { first: string | null; previous: string | null; next: string | null;
           last: string | null };
}

// "orders" -> "orders/head/backward/20?embed=body"; names are escaped ("$all" -> "%24all").
export function headPath(stream: string, count = kPageSize): string {
  return `${encodeURIComponent(stream)}/head/backward/${count}?embed=body`;
}

// A node's absolute link ("http://127.0.0.1:2113/streams/orders/19/backward/20") as a path below
// the manager's /api/streams/, keeping embed=body. Links elsewhere give null.
export function proxyPath(uri: string): string | null {
  let url: URL;
  try {
    url = new URL(uri, 'http://node.invalid');
  } catch {
    return null;
  }
  const prefix = '/streams/';
  if (!url.pathname.startsWith(prefix)) return null;
  url.searchParams.set('embed', 'body');
  return url.pathname.slice(prefix.length) + url.search;
}

function text(v: unknown): string {
  if (v === undefined || v === null) return '';
  return typeof v === 'string' ? v : JSON.stringify(v);
}

export function parseFeed(answer: unknown): FeedPage {
  if (!answer || typeof answer !== 'object' || !Array.isArray((answer as any).entries)) {
    throw new Error('the answer is not a stream feed (no "entries")');
  }
  const feed = answer as { entries: Record<string, unknown>[]; headOfStream?: boolean;
                           links?: { uri: string; relation: string }[] };
  const link = (relation: string) => {
    const l = (feed.links ?? []).find((x) => x.relation === relation);
    return l ? proxyPath(l.uri) : null;
  };
  return {
    events: feed.entries.map((e) => ({
      eventNumber: typeof e.eventNumber === 'number' ? e.eventNumber : null,
      eventType: text(e.eventType),
      eventId: text(e.eventId),
      streamId: text(e.streamId),
      updated: typeof e.updated === 'string' ? e.updated : null,
      isJson: e.isJson === true,
      data: text(e.data),
      metadata: text(e.metaData),
      title: text(e.title),
    })),
    headOfStream: feed.headOfStream === true,
    links: { first: link('first'), previous: link('previous'), next: link('next'),
             last: link('last') },
  };
}
