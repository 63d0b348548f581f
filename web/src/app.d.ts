// Types SvelteKit looks for; the app adds none of its own.
declare global {
  namespace App {}
}

export {};
