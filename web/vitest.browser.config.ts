// The browser walk (tests/browser/): the real daemon binary, a real Docker Engine and registry, and
// Debian's Chromium driven by playwright-core. Run by `./dev test` after the Rust build.
import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['tests/browser/**/*.test.ts'],
    environment: 'node',
    // One daemon and browser per file; files after one another so deploys don't compete
    // for the machine's two cores.
    fileParallelism: false,
    testTimeout: 300_000,
    hookTimeout: 180_000
  }
});
