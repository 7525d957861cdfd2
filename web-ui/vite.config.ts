// Vite builds the dashboard into static files (relative paths, so the manager can serve them from
// any folder); `npm run dev` proxies the API to a manager named by CHORUS_MANAGER_URL.
import { defineConfig } from 'vitest/config';

const manager_url = process.env.CHORUS_MANAGER_URL ?? 'http://127.0.0.1:30778';

export default defineConfig({
  base: './',
  esbuild: { jsx: 'automatic', jsxImportSource: 'preact' },
  build: { target: 'es2020', sourcemap: true, chunkSizeWarningLimit: 600 },
  server: {
    proxy: {
      '/api': manager_url,
      '/gossip': manager_url,
    },
  },
  test: { include: ['test/**/*.test.ts'], environment: 'node' },
});
