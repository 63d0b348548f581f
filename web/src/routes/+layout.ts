// A single-page app: nothing is rendered on a server or prerendered; the daemon serves
// index.html for every page path and the client-side router takes over.
export const ssr = false;
export const prerender = false;
export const trailingSlash = 'never';
