-- Issue 17: a stage runs as single containers (no row here) or as a Docker Swarm service
-- with its replicas, placement constraints and rolling-update pace.
CREATE TABLE stage_targets (
    stage_id INTEGER PRIMARY KEY REFERENCES stages (id) ON DELETE CASCADE,
    kind TEXT NOT NULL CHECK (kind IN ('container', 'swarm')),
    replicas INTEGER NOT NULL DEFAULT 1 CHECK (replicas BETWEEN 1 AND 100),
    constraints_json TEXT NOT NULL DEFAULT '[]',
    update_parallelism INTEGER NOT NULL DEFAULT 1 CHECK (update_parallelism BETWEEN 0 AND 100),
    update_delay_ms INTEGER NOT NULL DEFAULT 0 CHECK (update_delay_ms BETWEEN 0 AND 3600000)
) STRICT;
