-- Issue 15 (release workflow): promotion, approvals, deploy windows, version policies and
-- the audit log.
--
-- Stages get their release rules. `promote_from` names the stage whose deploys this one
-- takes (then pushes and polls do not deploy here); a deleted source stage clears it.
ALTER TABLE stages ADD COLUMN policy TEXT NOT NULL DEFAULT 'any'
    CHECK (policy IN ('any', 'forward', 'patch', 'minor'));
ALTER TABLE stages ADD COLUMN prerelease INTEGER NOT NULL DEFAULT 1 CHECK (prerelease IN (0, 1));
ALTER TABLE stages ADD COLUMN promote_from INTEGER REFERENCES stages(id) ON DELETE SET NULL;
ALTER TABLE stages ADD COLUMN approvals_required INTEGER NOT NULL DEFAULT 0
    CHECK (approvals_required BETWEEN 0 AND 10);
ALTER TABLE stages ADD COLUMN approval_timeout_secs INTEGER NOT NULL DEFAULT 86400
    CHECK (approval_timeout_secs BETWEEN 1 AND 31536000);
ALTER TABLE stages ADD COLUMN windows_json TEXT NOT NULL DEFAULT '[]';
ALTER TABLE stages ADD COLUMN window_timezone TEXT NOT NULL DEFAULT 'UTC';

-- Deploys get the statuses of a request that waits (`awaiting_approval`, `scheduled`) and
-- the final ones of a request that never ran (`rejected`, `expired`); the trigger
-- `promotion`; where a promotion came from; when a wait for approval ends; and whether a
-- person chose to deploy outside the stage's windows. SQLite cannot change a CHECK in
-- place, so the table is rebuilt. The store runs migrations with foreign keys off (as
-- SQLite's documented rebuild asks), so dropping the old table deletes no logs; the keys
-- are checked after the copy.
CREATE TABLE deploys_new (
    id          INTEGER PRIMARY KEY,
    project_id  INTEGER NOT NULL REFERENCES projects(id) ON DELETE CASCADE,
    stage_id    INTEGER NOT NULL REFERENCES stages(id) ON DELETE CASCADE,
    tag         TEXT NOT NULL,
    digest      TEXT,
    trigger     TEXT NOT NULL CHECK (trigger IN ('webhook', 'poll', 'manual', 'api', 'promotion')),
    status      TEXT NOT NULL DEFAULT 'pending' CHECK (status IN (
                    'awaiting_approval', 'scheduled',
                    'pending', 'pulling', 'starting', 'configuring_proxy', 'health_checking',
                    'success', 'failed', 'rolled_back', 'superseded', 'rejected', 'expired')),
    failed_step TEXT,
    error       TEXT,
    instance_id INTEGER,
    detected_at TEXT,
    created_at  TEXT NOT NULL,
    started_at  TEXT,
    finished_at TEXT,
    promoted_from_stage_id  INTEGER REFERENCES stages(id) ON DELETE SET NULL,
    promoted_from_deploy_id INTEGER,
    approval_expires_at     TEXT,
    outside_window          INTEGER NOT NULL DEFAULT 0 CHECK (outside_window IN (0, 1))
) STRICT;

INSERT INTO deploys_new (id, project_id, stage_id, tag, digest, trigger, status, failed_step,
    error, instance_id, detected_at, created_at, started_at, finished_at)
SELECT id, project_id, stage_id, tag, digest, trigger, status, failed_step,
    error, instance_id, detected_at, created_at, started_at, finished_at
FROM deploys;

DROP TABLE deploys;
ALTER TABLE deploys_new RENAME TO deploys;
CREATE INDEX deploys_by_project ON deploys(project_id, id DESC);
CREATE INDEX deploys_by_stage ON deploys(stage_id, id DESC);
CREATE INDEX deploys_unfinished ON deploys(status)
    WHERE status NOT IN ('success', 'failed', 'rolled_back', 'superseded', 'rejected', 'expired');

-- One approval or rejection of a deploy by one user or token (`actor`, e.g. `user:admin`,
-- `token:ci`). Only approvals of the digest the deploy has now count.
CREATE TABLE deploy_approvals (
    id         INTEGER PRIMARY KEY,
    deploy_id  INTEGER NOT NULL REFERENCES deploys(id) ON DELETE CASCADE,
    actor      TEXT NOT NULL,
    decision   TEXT NOT NULL CHECK (decision IN ('approve', 'reject')),
    digest     TEXT,
    at         TEXT NOT NULL,
    UNIQUE (deploy_id, actor, decision)
) STRICT;

-- Who did what: every change and action. `actor_kind` is `user`, `token`, `webhook`,
-- `poller` or `system`; `before_json`/`after_json` hold a resource's settings (never a
-- secret) around a change.
CREATE TABLE audit_log (
    id          INTEGER PRIMARY KEY,
    at          TEXT NOT NULL,
    actor_kind  TEXT NOT NULL CHECK (actor_kind IN ('user', 'token', 'webhook', 'poller', 'system')),
    actor       TEXT NOT NULL,
    action      TEXT NOT NULL,
    target_kind TEXT NOT NULL,
    target_id   INTEGER,
    target_name TEXT,
    project_id  INTEGER,
    detail      TEXT NOT NULL DEFAULT '',
    before_json TEXT,
    after_json  TEXT
) STRICT;
CREATE INDEX audit_log_recent ON audit_log(id DESC);
CREATE INDEX audit_log_by_target ON audit_log(target_kind, target_id, id DESC);
