// SvelteKit builds a single-page app to static files in build/, which the Rust binary
// embeds (src/api/ui.rs). Every path the build has no file for gets index.html, and the
// client-side router takes it from there.
import adapter from '@sveltejs/adapter-static';

/** @type {import('@sveltejs/kit').Config} */
const config = {
  kit: {
    adapter: adapter({
      pages: 'build',
      assets: 'build',
      fallback: 'index.html',
      precompress: false,
      strict: true
    }),
    // No inline scripts beyond SvelteKit's own bootstrap, so a CSP can be added later.
    output: { bundleStrategy: 'split' }
  }
};

export default config;
