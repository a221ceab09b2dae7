import { useEffect, useState } from 'preact/hooks';

/** Pages are addressed by the URL's hash (#/requests?route=chat), so the gateway serves only `/`. */
export interface Location {
  /** The path after '#', e.g. "/requests/abc". */
  path: string;
  params: URLSearchParams;
}

export function currentLocation(): Location {
  const hash = window.location.hash.replace(/^#/, '') || '/';
  const [path = '/', query = ''] = hash.split('?', 2);
  return { path, params: new URLSearchParams(query) };
}

export function useLocation(): Location {
  const [location, setLocation] = useState(currentLocation);
  useEffect(() => {
    const update = () => setLocation(currentLocation());
    window.addEventListener('hashchange', update);
    return () => window.removeEventListener('hashchange', update);
  }, []);
  return location;
}

/** "#/requests?route=chat" from a path and parameters; empty parameters are left out. */
export function href(path: string, params: Record<string, string | undefined | null> = {}): string {
  const search = new URLSearchParams();
  for (const [name, value] of Object.entries(params)) if (value) search.set(name, value);
  const query = search.toString();
  return `#${path}${query ? `?${query}` : ''}`;
}

export function navigate(path: string, params: Record<string, string | undefined | null> = {}): void {
  window.location.hash = href(path, params);
}

/** Changes the current page's parameters without a new history entry (filters, ranges). */
export function replaceParams(params: Record<string, string | undefined | null>): void {
  const { path } = currentLocation();
  window.history.replaceState(null, '', href(path, params));
  window.dispatchEvent(new HashChangeEvent('hashchange'));
}
