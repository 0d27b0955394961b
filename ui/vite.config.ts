/// <reference types="vitest/config" />
import { defineConfig, type Plugin } from 'vite';

/**
 * The built page carries a strict CSP: no inline script or style, no remote origin. Only at
 * build time, because the dev server injects CSS as <style> tags for hot reload. Inside
 * Tauri the app's own CSP (tauri.conf.json) applies as well; it must allow the same.
 */
const CSP = [
  "default-src 'self'",
  "script-src 'self'",
  "style-src 'self'",
  "img-src 'self' data:",
  "connect-src 'self' ipc: http://ipc.localhost",
  "object-src 'none'",
  "base-uri 'none'",
  "form-action 'none'",
].join('; ');

function strictCsp(): Plugin {
  return {
    name: 'lattice-strict-csp',
    apply: 'build',
    transformIndexHtml: () => [{ tag: 'meta', attrs: { 'http-equiv': 'Content-Security-Policy', content: CSP }, injectTo: 'head-prepend' }],
  };
}

// `LATTICE_API=http://127.0.0.1:8000 npm run dev` proxies /api (including the SSE stream)
// to a running node, so the page behaves exactly as when that node serves it at `/`.
const api = process.env.LATTICE_API;
const proxy = api ? { '/api': { target: api, changeOrigin: true } } : undefined;

export default defineConfig({
  // Relative asset paths: the same build works inside Tauri and served by a node at `/`.
  base: './',
  plugins: [strictCsp()],
  build: { outDir: 'dist', emptyOutDir: true, target: 'es2022', assetsInlineLimit: 0 },
  server: { proxy, strictPort: false },
  preview: { proxy },
  test: {
    environment: 'jsdom',
    include: ['test/**/*.test.ts'],
  },
});
