// Hash routes ("#/streams/orders"), so the manager serves one index.html for every page and a
// reload keeps the page.
export type Page = 'cluster' | 'machines' | 'machine' | 'streams' | 'subscriptions' | 'charts' |
  'projections' | 'users' | 'login';

export interface Route {
  page: Page;
  // For the streams page: the open stream (decoded), if any.
  stream: string | null;
  // For the subscriptions page: the open group ("#/subscriptions/<stream>/<group>"), if any.
  group?: { stream: string; group: string } | null;
  // For the projections page: the open projection ("#/projections/<name>"), if any.
  projection?: string | null;
}

const kPages: Page[] = ['cluster', 'machines', 'machine', 'streams', 'subscriptions', 'charts',
  'projections', 'users', 'login'];

export function parseRoute(hash: string): Route {
  const parts = hash.replace(/^#\/?/, '').split('/');
  const page = (kPages as string[]).includes(parts[0]) ? (parts[0] as Page) : 'cluster';
  let stream: string | null = null;
  if (page === 'streams' && parts.length > 1 && parts[1] !== '') {
    try {
      stream = decodeURIComponent(parts.slice(1).join('/'));
    } catch {
      stream = parts.slice(1).join('/');
    }
  }
  let group: { stream: string; group: string } | null = null;
  if (page === 'subscriptions' && parts.length === 3 && parts[1] !== '' && parts[2] !== '') {
    try {
      group = { stream: decodeURIComponent(parts[1]), group: decodeURIComponent(parts[2]) };
    } catch {
      group = null;
    }
  }
  if (page === 'projections') {
    let projection: string | null = null;
    if (parts.length > 1 && parts[1] !== '') {
      try {
        projection = decodeURIComponent(parts.slice(1).join('/'));
      } catch {
        projection = parts.slice(1).join('/');
      }
    }
    return { page, stream, projection };
  }
  return page === 'subscriptions' ? { page, stream, group } : { page, stream };
}

export function subscriptionHash(stream: string, group: string): string {
  return `#/subscriptions/${encodeURIComponent(stream)}/${encodeURIComponent(group)}`;
}

export function projectionHash(name: string): string {
  return `#/projections/${encodeURIComponent(name)}`;
}

export function streamHash(stream: string): string {
  return `#/streams/${encodeURIComponent(stream)}`;
}
