// Resources a projects file manages: which marker belongs to a resource, and how to say
// where it comes from. The API refuses edits to them (409); the pages hide their edit
// controls and show this instead.
import type { Managed } from './types';

/** The marker of the resource `kind` `id`, or null when it is not managed. */
export function markerFor(
  markers: Managed[],
  kind: Managed['kind'],
  id: number | null | undefined
): Managed | null {
  return markers.find((m) => m.kind === kind && m.id === id) ?? null;
}

/** `deploy/projects.toml, line 12` (the file inside a folder named too). */
export function describeSource(marker: Managed): string {
  const where =
    marker.file === marker.origin ? marker.origin : `${marker.origin} (${marker.file})`;
  return `${where}, line ${marker.line}`;
}
