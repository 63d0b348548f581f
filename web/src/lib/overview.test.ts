import { describe, expect, it } from 'vitest';
import { buildOverview } from './overview';
import type { Deploy, Instance, Project, Stage } from './types';

const project = (id: number, name: string) => ({ id, name }) as Project;
const stage = (id: number, project_id: number, name: string) => ({ id, project_id, name }) as Stage;
const instance = (id: number, stage_id: number, tag: string, status: Instance['status'], subdomains: string[] = []) =>
  ({ id, stage_id, tag, status, subdomains }) as Instance;
const deploy = (id: number, stage_id: number, status: Deploy['status']) => ({ id, stage_id, status }) as Deploy;

describe('buildOverview', () => {
  it('puts each stage with its serving tag, instances and newest deploy', () => {
    const result = buildOverview(
      [project(2, 'shop'), project(1, 'api')],
      [stage(10, 2, 'prod'), stage(11, 2, 'dev'), stage(12, 1, 'dev')],
      [
        instance(100, 11, 'dev-1', 'running', ['a.example', 'stage.example']),
        instance(101, 11, 'dev-2', 'failed'),
        instance(102, 10, 'v1', 'stopped')
      ],
      [deploy(5, 11, 'failed'), deploy(3, 11, 'success'), deploy(4, 10, 'success')]
    );
    expect(result.map((p) => p.project.name)).toEqual(['api', 'shop']);
    const [dev, prod] = result[1].stages;
    expect(dev.stage.name).toBe('dev');
    expect(dev.currentTag).toBe('dev-1');
    expect(dev.instances.map((i) => i.id)).toEqual([101, 100]);
    expect(dev.lastDeploy?.id).toBe(5);
    expect(dev.recent.map((d) => d.id)).toEqual([3, 5]);
    expect(dev.domains).toEqual(['a.example', 'stage.example']);
    expect(prod.currentTag).toBe('v1');
    expect(prod.domains).toEqual([]);
    expect(result[0].stages[0]).toMatchObject({ currentTag: null, lastDeploy: null, instances: [] });
  });
});
