-- Resources a projects file manages (`docker-watcher apply`, `serve --projects`): the API
-- refuses to edit them and the UI shows where they come from. One row per resource, kept
-- apart from the resource tables so their schemas stay as they are; triggers drop a
-- marker with its row (also when a project's stages go with it), so an id SQLite hands
-- out again never inherits a stale marker.

CREATE TABLE managed_resources (
    kind        TEXT NOT NULL CHECK (kind IN ('registry', 'project', 'stage', 'notification', 'settings')),
    resource_id INTEGER NOT NULL,
    -- What was applied: the file or folder as given to apply or `serve --projects`.
    origin      TEXT NOT NULL,
    -- The file (inside a folder) and line the resource is written at.
    file        TEXT NOT NULL,
    line        INTEGER NOT NULL,
    applied_at  TEXT NOT NULL,
    PRIMARY KEY (kind, resource_id)
) STRICT;

CREATE TRIGGER managed_registry_gone AFTER DELETE ON registries BEGIN
    DELETE FROM managed_resources WHERE kind = 'registry' AND resource_id = OLD.id;
END;
CREATE TRIGGER managed_project_gone AFTER DELETE ON projects BEGIN
    DELETE FROM managed_resources WHERE kind = 'project' AND resource_id = OLD.id;
END;
CREATE TRIGGER managed_stage_gone AFTER DELETE ON stages BEGIN
    DELETE FROM managed_resources WHERE kind = 'stage' AND resource_id = OLD.id;
END;
CREATE TRIGGER managed_notification_gone AFTER DELETE ON notification_targets BEGIN
    DELETE FROM managed_resources WHERE kind = 'notification' AND resource_id = OLD.id;
END;
