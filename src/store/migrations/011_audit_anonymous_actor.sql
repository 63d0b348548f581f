-- A failed sign-in is recorded, and nobody known made it: the audit log's actors gain
-- `anonymous` (named by the address it came from). SQLite cannot change a CHECK in place,
-- so the table is rebuilt with the same columns, rows and indexes.
CREATE TABLE audit_log_new (
    id          INTEGER PRIMARY KEY,
    at          TEXT NOT NULL,
    actor_kind  TEXT NOT NULL
        CHECK (actor_kind IN ('user', 'token', 'webhook', 'poller', 'system', 'anonymous')),
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
INSERT INTO audit_log_new
    SELECT id, at, actor_kind, actor, action, target_kind, target_id, target_name,
           project_id, detail, before_json, after_json
    FROM audit_log;
DROP TABLE audit_log;
ALTER TABLE audit_log_new RENAME TO audit_log;
CREATE INDEX audit_log_recent ON audit_log(id DESC);
CREATE INDEX audit_log_by_target ON audit_log(target_kind, target_id, id DESC);
