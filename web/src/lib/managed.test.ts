import { describe, expect, it } from 'vitest';
import { describeSource, markerFor } from './managed';
import type { Managed } from './types';

const marker = (kind: Managed['kind'], id: number, file = 'deploy/projects.toml'): Managed => ({
  kind,
  id,
  origin: 'deploy/projects.toml',
  file,
  line: 12,
  applied_at: '2026-01-01T00:00:00Z'
});

describe('managed markers', () => {
  it('finds the marker of a resource by kind and id', () => {
    const markers = [marker('project', 1), marker('stage', 2)];
    expect(markerFor(markers, 'project', 1)?.id).toBe(1);
    expect(markerFor(markers, 'stage', 1)).toBeNull();
    expect(markerFor(markers, 'project', undefined)).toBeNull();
  });

  it('says which file and line a resource is written at', () => {
    expect(describeSource(marker('project', 1))).toBe('deploy/projects.toml, line 12');
    expect(describeSource(marker('project', 1, 'deploy/projects/shop.toml'))).toBe(
      'deploy/projects.toml (deploy/projects/shop.toml), line 12'
    );
  });
});
