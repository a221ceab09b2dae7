import { fileURLToPath } from 'node:url';
import { defineConfig } from 'vite';

const here = (path: string) => fileURLToPath(new URL(path, import.meta.url));

/**
 * The web console's build: `npm run build` writes dist/console, which the gateway serves at `/`.
 * No Preact plugin: Vite's own transform (Oxc) compiles JSX for Preact's automatic runtime.
 */
export default defineConfig({
  root: here('.'),
  base: '/',
  // Vite's dev server would otherwise read a ./public folder; the console has none.
  publicDir: false,
  oxc: { jsx: { runtime: 'automatic', importSource: 'preact' } },
  build: {
    outDir: here('../../dist/console'),
    emptyOutDir: true,
    target: 'es2022',
    // The gateway serves every built file: keep it to index.html, one script and one stylesheet.
    modulePreload: { polyfill: false },
    reportCompressedSize: true,
    chunkSizeWarningLimit: 200,
  },
  server: {
    // `npx vite --config src/console/vite.config.ts` for live editing against a gateway on 7878.
    proxy: {
      '/api': 'http://127.0.0.1:7878',
      '/admin': 'http://127.0.0.1:7878',
    },
  },
});
