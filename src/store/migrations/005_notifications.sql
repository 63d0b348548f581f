-- Notifications (#16): more channels, per-target event/project/stage filters and
-- templates, delivery status, and a persistent outbox. SQLite cannot change a CHECK
-- constraint in place, so notification_targets is rebuilt; ids are kept because each
-- sealed URL is bound to its row id. The three on_* flags become one `events` list.

CREATE TABLE notification_targets_new (
    id                   INTEGER PRIMARY KEY,
    name                 TEXT NOT NULL UNIQUE,
    kind                 TEXT NOT NULL CHECK (kind IN ('webhook', 'slack', 'discord', 'ntfy',
                             'telegram', 'gotify', 'email', 'matrix', 'pushover', 'teams', 'apprise')),
    url_sealed           TEXT NOT NULL,
    events_json          TEXT NOT NULL DEFAULT '["success","failure","rollback","approval_needed"]',
    projects_json        TEXT NOT NULL DEFAULT '[]',
    stages_json          TEXT NOT NULL DEFAULT '[]',
    poll_error_threshold INTEGER NOT NULL DEFAULT 3 CHECK (poll_error_threshold > 0),
    title_template       TEXT,
    body_template        TEXT,
    last_attempt_at      TEXT,
    last_success_at      TEXT,
    last_error           TEXT,
    created_at           TEXT NOT NULL
) STRICT;

INSERT INTO notification_targets_new (id, name, kind, url_sealed, events_json, created_at)
SELECT id, name, kind, url_sealed,
    (SELECT json_group_array(e) FROM (
        SELECT 'success' AS e WHERE on_success
        UNION ALL SELECT 'failure' WHERE on_failure
        UNION ALL SELECT 'rollback' WHERE on_rollback
        UNION ALL SELECT 'approval_needed')),
    created_at
FROM notification_targets;

DROP TABLE notification_targets;
ALTER TABLE notification_targets_new RENAME TO notification_targets;

-- One row per message still to deliver to one target; deleted once delivered or after a
-- day. `payload_json` is the event; it is rendered with the target's template when sent.
CREATE TABLE notification_outbox (
    id              INTEGER PRIMARY KEY,
    target_id       INTEGER NOT NULL REFERENCES notification_targets(id) ON DELETE CASCADE,
    payload_json    TEXT NOT NULL,
    attempts        INTEGER NOT NULL DEFAULT 0,
    next_attempt_at TEXT NOT NULL,
    last_error      TEXT,
    created_at      TEXT NOT NULL
) STRICT;

CREATE INDEX notification_outbox_due ON notification_outbox (next_attempt_at);
