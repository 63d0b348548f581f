// What the dashboard shows per stage, put together from the API's lists: the tag that
// serves, its instances, and the newest deploy. Pure, so it is tested without a server.

import { outcomeStrip } from './history';
import type { Deploy, Instance, Project, Stage } from './types';

export interface StageOverview {
  stage: Stage;
  /** The tag of the newest running instance, else of the newest instance at all. */
  currentTag: string | null;
  /** Newest first. */
  instances: Instance[];
  lastDeploy: Deploy | null;
  /** The last (up to 10) deploys among those given, oldest first, for the outcome strip. */
  recent: Deploy[];
  /** Domains of the newest running instance: [its own, the stage's]. */
  domains: string[];
}

export interface ProjectOverview {
  project: Project;
  stages: StageOverview[];
}

export function buildOverview(
  projects: readonly Project[],
  stages: readonly Stage[],
  instances: readonly Instance[],
  deploys: readonly Deploy[]
): ProjectOverview[] {
  const newestDeploy = new Map<number, Deploy>();
  for (const deploy of deploys) {
    const seen = newestDeploy.get(deploy.stage_id);
    if (!seen || deploy.id > seen.id) newestDeploy.set(deploy.stage_id, deploy);
  }
  return [...projects]
    .sort((a, b) => a.name.localeCompare(b.name))
    .map((project) => ({
      project,
      stages: stages
        .filter((s) => s.project_id === project.id)
        .sort((a, b) => a.name.localeCompare(b.name))
        .map((stage) => {
          const own = instances
            .filter((i) => i.stage_id === stage.id)
            .sort((a, b) => b.id - a.id);
          const serving = own.find((i) => i.status === 'running') ?? null;
          return {
            stage,
            currentTag: (serving ?? own[0])?.tag ?? null,
            instances: own,
            lastDeploy: newestDeploy.get(stage.id) ?? null,
            recent: outcomeStrip(deploys, stage.id),
            domains: serving?.subdomains ?? []
          };
        })
    }));
}
