import { sveltekit } from '@sveltejs/kit/vite';
import { defineConfig } from 'vitest/config';

export default defineConfig({
  plugins: [sveltekit()],
  server: {
    // `npm run dev` against a daemon on its default address.
    proxy: {
      '/api': { target: 'http://127.0.0.1:8080', changeOrigin: false },
      '/healthz': 'http://127.0.0.1:8080'
    }
  },
  test: {
    include: ['src/**/*.test.ts'],
    environment: 'node'
  }
});
