import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import fastifyStatic from '@fastify/static';
import type { FastifyInstance } from 'fastify';

/** Where `npm run build` puts the console: dist/console at the package root (from src/http or dist/http alike). */
export const builtConsoleDir = fileURLToPath(new URL('../../dist/console/', import.meta.url));

// The console shows request bodies written by anyone: only its own scripts may run, and only its
// own origin may be called, so a hostile body can never read the key kept in sessionStorage.
const contentSecurityPolicy = [
  "default-src 'self'",
  "script-src 'self'",
  "style-src 'self'",
  "img-src 'self' data:",
  "connect-src 'self'",
  "object-src 'none'",
  "base-uri 'none'",
  "frame-ancestors 'none'",
].join('; ');

/**
 * Serves the web console at `/`: index.html and its hashed assets, nothing else. Pages are
 * addressed by the URL's hash (#/requests), so no other path is ever the console's and unknown
 * URLs still get the API's JSON 404.
 */
export function registerConsole(app: FastifyInstance, dir: string = builtConsoleDir): void {
  if (!existsSync(join(dir, 'index.html'))) {
    app.get('/', async (_request, reply) =>
      reply
        .code(503)
        .type('text/html; charset=utf-8')
        .send(
          '<!doctype html><title>Sluice</title><h1>The Sluice console is not built</h1>' +
            '<p>Run <code>npm run build</code> (or <code>npm ci</code>, which builds it) in the Sluice ' +
            'directory, then restart the gateway. The API works without it: see <code>/v1</code>, ' +
            '<code>/admin</code> and <code>/metrics</code>.</p>',
        ),
    );
    return;
  }
  app.register(fastifyStatic, {
    root: dir,
    prefix: '/',
    // One route per built file instead of a catch-all, so /v1, /admin and 404s stay the API's.
    wildcard: false,
    index: 'index.html',
    cacheControl: false,
    setHeaders(reply, path) {
      if (path.endsWith('.html')) {
        reply.header('cache-control', 'no-cache');
        reply.header('content-security-policy', contentSecurityPolicy);
        reply.header('x-content-type-options', 'nosniff');
        reply.header('referrer-policy', 'no-referrer');
      } else {
        // Vite names assets by content hash: a new build gets new names.
        reply.header('cache-control', 'public, max-age=31536000, immutable');
      }
    },
  });
}
