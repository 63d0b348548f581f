-- Instances get the status `stopping`: taken off the proxy, their container stopping in
-- the background. SQLite cannot change a CHECK constraint in place, so the table is
-- rebuilt. No table references `instances` (deploys.instance_id has no foreign key), so
-- dropping the old table removes nothing else; its own foreign keys (stages, deploys) are
-- declared again and checked after the copy.

CREATE TABLE instances_new (
    id               INTEGER PRIMARY KEY,
    stage_id         INTEGER NOT NULL REFERENCES stages(id) ON DELETE CASCADE,
    deploy_id        INTEGER REFERENCES deploys(id) ON DELETE SET NULL,
    tag              TEXT NOT NULL,
    digest           TEXT,
    container_id     TEXT,
    container_name   TEXT NOT NULL UNIQUE,
    upstream         TEXT,
    subdomains_json  TEXT NOT NULL DEFAULT '[]',
    proxy_hosts_json TEXT NOT NULL DEFAULT '[]',
    status           TEXT NOT NULL CHECK (status IN (
                         'starting', 'running', 'stopping', 'stopped', 'failed', 'removing')),
    created_at       TEXT NOT NULL,
    updated_at       TEXT NOT NULL
) STRICT;

INSERT INTO instances_new (id, stage_id, deploy_id, tag, digest, container_id, container_name,
    upstream, subdomains_json, proxy_hosts_json, status, created_at, updated_at)
SELECT id, stage_id, deploy_id, tag, digest, container_id, container_name,
    upstream, subdomains_json, proxy_hosts_json, status, created_at, updated_at
FROM instances;

DROP TABLE instances;
ALTER TABLE instances_new RENAME TO instances;
CREATE INDEX instances_by_stage ON instances(stage_id, id);
