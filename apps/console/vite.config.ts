import { defineConfig } from 'vite';
import react from '@vitejs/plugin-react';

/**
 * The browser console: a single-page app served by the platform at /console (same origin as the
 * API). `npm run build:console` writes it to dist/console. The served Content-Security-Policy
 * allows scripts and styles of its own origin only, so the build emits files, never inline code.
 * `npm run build:console -- --dev` serves it with hot reload, proxying the API to FASTGPU_URL.
 */
const root = new URL('.', import.meta.url).pathname;
const api = process.env.FASTGPU_URL ?? 'http://127.0.0.1:8080';

export default defineConfig({
  root,
  base: '/console/',
  plugins: [react()],
  build: {
    outDir: new URL('../../dist/console', import.meta.url).pathname,
    emptyOutDir: true,
    assetsInlineLimit: 0,
    chunkSizeWarningLimit: 1000,
  },
  server: { proxy: { '/v1': { target: api, changeOrigin: false }, '/docs': api } },
  preview: { proxy: { '/v1': { target: api, changeOrigin: false } } },
});
