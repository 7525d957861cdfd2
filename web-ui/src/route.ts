// Hash routes ("#/streams/orders"), so the manager serves one index.html for every page and a
// reload keeps the page.
export type Page = 'cluster' | 'machines' | 'machine' | 'streams' | 'charts' | 'login';

export interface Route {
  page: Page;
  // For the streams page: the open stream (decoded), if any.
  stream: string | null;
}

const kPages: Page[] = ['cluster', 'machines', 'machine', 'streams', 'charts', 'login'];

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
  return { page, stream };
}

export function streamHash(stream: string): string {
  return `#/streams/${encodeURIComponent(stream)}`;
}
